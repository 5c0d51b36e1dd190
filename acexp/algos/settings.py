"""Each algorithm's settings, with its defaults: the `algo` node of the config, chosen by
`algo.name` (conf/algo/<name>.yaml names its schema `schema/algo/<name>`).

Settings that several algorithms share are declared once, below, with each algorithm's default.
They live beside the algorithms, so that adding one touches acexp/algos/ and conf/algo/ only;
this module imports no torch, since the command line is checked before torch is imported.
"""

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from acexp.config.fields import above, at_least, between, names_in, nullable, one_of, setting

POSITIVE_INT = at_least(1, integer=True)


def _name(default: str) -> Any:
    return setting(default, "the algorithm", one_of(names_in("acexp.algos.registry", "TRAINERS")))


def _gamma(default: float) -> Any:
    return setting(default, "discount", between(0, 1), member=True)


def _ent_coef(default: float) -> Any:
    return setting(default, "entropy bonus weight", at_least(0), member=True)


def _vf_coef(default: float) -> Any:
    return setting(default, "critic loss weight in the summed loss", at_least(0), member=True)


def _critic_loss(default: str) -> Any:
    return setting(default, "the value loss", one_of(["mse", "smooth_l1"]))


def _num_envs(default: int) -> Any:
    return setting(default, "parallel environments", POSITIVE_INT)


def _n_steps(default: int) -> Any:
    return setting(default, "steps per env per rollout (one update, or PPO's epochs)", POSITIVE_INT)


def _gae_lambda(default: float) -> Any:
    return setting(default, "GAE lambda; 1.0 gives n-step bootstrapped returns", between(0, 1),
                   member=True)  # fmt: skip


def _normalize_advantage(default: bool) -> Any:
    return setting(default, "standardise advantages (per update; PPO: per minibatch)")


@dataclass
class Algo:
    """What every algorithm has: its name (a config whose algo.name names none has only this)."""

    name: str = _name(MISSING)


@dataclass
class OnPolicy(Algo):
    """What the on-policy engine reads (algos/on_policy.py), at A2C's defaults."""

    num_envs: int = _num_envs(32)
    n_steps: int = _n_steps(5)
    gamma: float = _gamma(0.99)
    gae_lambda: float = _gae_lambda(1.0)
    ent_coef: float = _ent_coef(0.0)
    # small, so that a shared trunk is not dominated by the critic
    vf_coef: float = _vf_coef(0.05)
    normalize_advantage: bool = _normalize_advantage(False)


@dataclass
class A2C(OnPolicy):
    """Synchronous advantage actor-critic over vectorised envs."""

    name: str = _name("a2c")
    critic_loss: str = _critic_loss("mse")


@dataclass
class PPO(OnPolicy):
    """PPO-clip on A2C's rollouts: several minibatch epochs per rollout; its own defaults for
    the on-policy settings (CleanRL's and Stable-Baselines3's)."""

    name: str = _name("ppo")
    num_envs: int = _num_envs(8)
    n_steps: int = _n_steps(128)
    gae_lambda: float = _gae_lambda(0.95)
    vf_coef: float = _vf_coef(0.5)
    normalize_advantage: bool = _normalize_advantage(True)
    n_epochs: int = setting(4, "passes over each rollout", POSITIVE_INT)
    num_minibatches: int = setting(
        4, "minibatches per pass (batch = num_envs * n_steps)", POSITIVE_INT
    )
    clip_range: float = setting(
        0.2, "policy ratio clipped to [1 - clip_range, 1 + clip_range]", above(0), member=True
    )
    clip_range_vf: float | None = setting(
        None, "clip the value change to +-this; null: a plain value loss", nullable(above(0))
    )
    anneal_lr: bool = setting(True, "decay learning rates linearly to zero over total_steps")
    target_kl: float | None = setting(
        None, "stop an update's epochs once the approximate KL exceeds this; null: never",
        nullable(above(0)), trains_alone=True,  # each run's epochs end at their own time
    )  # fmt: skip


@dataclass
class Episodic(Algo):
    """The PyTorch actor-critic tutorial's algorithm: one env, one update per finished episode."""

    name: str = _name("episodic")
    gamma: float = _gamma(0.99)
    normalize_returns: bool = setting(True, "standardise each episode's returns (the tutorial)")
    return_norm_eps: float = setting(
        1.1920929e-07, "added to the returns' std (the tutorial's: float32 machine epsilon)",
        above(0), applies=lambda flat: bool(flat.get("algo.normalize_returns")),
    )  # fmt: skip
    critic_loss: str = _critic_loss("smooth_l1")
    loss_reduction: str = setting(
        "sum", "mean or sum of the per-step losses (the tutorial sums)", one_of(["mean", "sum"])
    )
    vf_coef: float = _vf_coef(1.0)
    ent_coef: float = _ent_coef(0.0)
    max_episodes: int = setting(20000, "the run ends after this many episodes", POSITIVE_INT)
    max_episode_steps: int = setting(
        9999, "steps per episode at most (the env's time limit may come first)", POSITIVE_INT
    )


ALGOS: dict[str, type] = {"a2c": A2C, "ppo": PPO, "episodic": Episodic}
