"""The config schema: every setting's type, default, one-line doc and allowed values, declared once.

Hydra composes onto these dataclasses (registered in its ConfigStore: conf/config.yaml names
`base_config`, each algo option its `schema/algo/<name>`), so it checks types as it composes;
`acexp.config.validate` checks the ranges, `acexp.sweeps.batch` reads which settings may differ
within a batch, `acexp.logs.hparams` which reach TensorBoard's HPARAMS tab and with what type.
The YAML options in conf/ set what each option chooses; `python -m acexp --cfg job` shows all.
"""

import functools
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from acexp.algos.settings import ALGOS, Algo
from acexp.config.fields import (
    DEVICE,
    NUMBER,
    SIZES,
    Setting,
    above,
    at_least,
    between,
    box_actions,
    fixed,
    names_in,
    node,
    nullable,
    one_of,
    plain_type,
    setting,
    settings_of,
    when,
)

POSITIVE_INT = at_least(1, integer=True)


@dataclass
class Env:
    id: str = setting(MISSING, "gymnasium id, set by the env option; any registered id works")
    kwargs: dict[str, Any] = setting(
        {}, "keyword arguments for gymnasium.make",
        fixed(lambda v: isinstance(v, dict), "a mapping, e.g. {max_episode_steps: 100}"),
    )  # fmt: skip
    vectorization: str = setting(
        "auto",
        "auto (the env's own vector env: numpy-native, or ale-py's for Atari ids; else sync), "
        "sync, async or ale",
        one_of(names_in("acexp.envs.make", "VECTORIZATIONS")),
    )
    reward_threshold: float | None = setting(
        None, "running return that counts as solved; null: the env spec's", nullable(NUMBER)
    )
    atari: bool = setting(
        False, "Atari preprocessing: 84x84 grayscale, frame skip 4, up to 30 no-op starts"
    )
    frame_stack: int = setting(
        0,
        "stack this many observations, zero-padded at an episode's start",
        at_least(0, integer=True, note=" (0: no stacking)"),
    )
    obs_norm: str = setting(
        "none",
        "none, bounds (finite Box to [0, 1] by its bounds) or running (mean/std, in model.pt)",
        one_of(names_in("acexp.models.normalization", "OBS_NORMS")),
    )
    normalize_reward: bool = setting(
        False, "scale rewards by a running std of the discounted return (logged returns stay raw)"
    )
    reward_gamma: float = setting(
        0.99,
        "discount of the return whose running std scales rewards",
        between(0, 1),
        applies=when("env.normalize_reward", True),
    )
    clip_reward: float | None = setting(
        None, "clip (normalised) rewards to [-clip_reward, clip_reward]; null: no clipping",
        nullable(above(0)),
    )  # fmt: skip


@dataclass
class Arch:
    name: str = setting(
        MISSING, "the network, set by the arch option",
        one_of(names_in("acexp.algos.registry", "MODELS")),
    )  # fmt: skip
    hidden_sizes: list[int] = setting([64, 64], "widths of the hidden layers", SIZES)
    activation: str = setting(
        "tanh", "hidden activation", one_of(names_in("acexp.models.layers", "ACTIVATIONS"))
    )
    init: str = setting(
        "orthogonal",
        "orthogonal (SB3/CleanRL: gain sqrt 2, policy 0.01, value 1) or torch (its defaults)",
        one_of(["orthogonal", "torch"]),
    )
    log_std_init: float = setting(
        0.0, "initial log std of the Gaussian policy (Box actions only)", NUMBER,
        applies=box_actions,
    )  # fmt: skip


@dataclass
class OptimAdded:
    """Optimizer settings read only when added (`+optim.alpha=0.9`); else the defaults."""

    alpha: float = setting(
        0.99, "RMSprop's smoothing constant", between(0, 1), applies=when("optim.name", "rmsprop")
    )
    momentum: float = setting(0.0, "SGD's momentum", at_least(0), applies=when("optim.name", "sgd"))


@dataclass
class Optim:
    ADDED: ClassVar[type] = OptimAdded

    mode: str = setting(
        MISSING,
        "joint: one optimizer on actor + vf_coef*critic - ent_coef*entropy; separate: an "
        "actor optimizer (actor_lr, a shared trunk too) and a critic optimizer (critic_lr)",
        one_of(["joint", "separate"]),
    )
    name: str = setting("rmsprop", "the optimizer (rmsprop: alpha 0.99, as SB3's A2C)",
                        one_of(names_in("acexp.optim.modes", "OPTIMIZERS")))  # fmt: skip
    lr: float = setting(
        4e-3, "learning rate (joint); the default of actor_lr and critic_lr", above(0),
        member=True, applies=when("optim.mode", "joint"),
    )  # fmt: skip
    actor_lr: float = setting(
        "${.lr}", "the actor optimizer's learning rate (separate)", above(0),
        member=True, applies=when("optim.mode", "separate"),
    )  # fmt: skip
    critic_lr: float = setting(
        "${.lr}", "the critic optimizer's learning rate (separate)", above(0),
        member=True, applies=when("optim.mode", "separate"),
    )  # fmt: skip
    max_grad_norm: float | None = setting(
        0.5, "clip each optimizer's gradients to this global norm; null or 0: no clipping",
        nullable(at_least(0)), member=True,
    )  # fmt: skip
    eps: float = setting(
        1e-5, "optimizer epsilon (adam, rmsprop)", above(0),
        applies=when("optim.name", "adam", "rmsprop"),
    )  # fmt: skip


@dataclass
class Checkpoint:
    every_steps: int = setting(
        50000, "env steps between checkpoints (one is also written at the end and on a signal)",
        POSITIVE_INT,
    )  # fmt: skip
    keep: int = setting(2, "newest checkpoint files kept in <run dir>/checkpoints/", POSITIVE_INT)


@dataclass
class Eval:
    every_steps: int = setting(
        0, "env steps between evaluations of the greedy policy (eval/return)",
        at_least(0, integer=True, note=" (0: no evaluation)"),
    )  # fmt: skip
    episodes: int = setting(
        10, "episodes per evaluation, on envs of their own (seed + 1000003)", POSITIVE_INT
    )


@dataclass
class Log:
    every_steps: Any = setting(
        "auto", "env steps between loss / grad-norm / lr / SPS scalars; auto: total_steps / 250",
        fixed(lambda v: v == "auto" or POSITIVE_INT.allows(v), "auto or an integer >= 1"),
        member=True,
    )  # fmt: skip
    console_every_seconds: float = setting(
        10, "period of log lines when stderr is not a terminal", above(0), member=True
    )
    progress: Any = setting(
        "auto", "tqdm bar: auto (on a terminal), true or false",
        fixed(lambda v: v == "auto" or isinstance(v, bool), "auto, true or false"), member=True,
    )  # fmt: skip


@dataclass
class Config:
    """The root: conf/config.yaml composes the groups' options onto it."""

    seed: int = setting(
        0, "seeds python, numpy, torch and the environments",
        fixed(lambda v: type(v) is int and 0 <= v < 2**32, "an integer in [0, 2**32)"),  # numpy's
        member=True, label=True,
    )  # fmt: skip
    device: str = setting("cpu", "torch device: cpu, cuda, cuda:N or mps", DEVICE)
    total_steps: int = setting(
        200000, "env-step budget, the same meaning for every trainer", POSITIVE_INT, member=True
    )
    stop_on_solve: bool = setting(
        True, "stop once the running return passes the env's reward threshold", member=True
    )
    torch_threads: int = setting(
        1, "intra-op threads; one is fastest for small nets and lets jobs run side by side",
        POSITIVE_INT,
    )  # fmt: skip
    objective: str = setting(
        "final_return", "what a sweeper gets back (higher is better)",
        one_of(names_in("acexp.runtime.objective", "OBJECTIVES")), member=True, hparam=False,
    )  # fmt: skip
    resume: str | None = setting(
        None, "a run directory to continue from its latest checkpoint (no other overrides)",
        fixed(lambda v: v is None or isinstance(v, str), "null or a run directory"),
        hparam=False,
    )  # fmt: skip
    checkpoint: Checkpoint = node(Checkpoint, "checkpoints", hparam=False)
    eval: Eval = node(Eval, "evaluation of the greedy policy during training")
    log: Log = node(Log, "TensorBoard scalars and console lines", hparam=False)
    env: Env = node(Env, "the environment (conf/env/)")
    arch: Arch = node(Arch, "the network (conf/arch/)")
    optim: Optim = node(Optim, "the optimizers (conf/optim/)")
    algo: Any = setting(MISSING, "the algorithm (conf/algo/), by its name", chosen_by_name=True)


def settings(cfg: DictConfig | dict) -> dict[str, Setting]:
    """Every setting of this config's schema by dotted key: the root's, and its algorithm's (by
    `algo.name`; only `algo.name` itself when that names none)."""
    node = OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg
    name = OmegaConf.select(node, "algo.name", default=None)
    return dict(_settings(name if isinstance(name, str) else None))


@functools.cache
def _settings(algo: str | None) -> dict[str, Setting]:
    return settings_of(Config) | settings_of(ALGOS.get(algo, Algo), "algo.")


def setting_at(key: str, node_type: Any = None) -> Setting | None:
    """The setting at dotted `key`, where the node holding it has the schema `node_type` (an
    algorithm's, for algo.*: from a type error Hydra raised while composing); None: no such
    setting."""
    algo = next((name for name, schema in ALGOS.items() if schema is node_type), None)
    return _settings(algo).get(key)


def addable(key: str, found: dict[str, Setting]) -> bool:
    """Whether `+key=value` sets something acexp reads: an opt-in setting, or a key inside a
    mapping setting (`+env.kwargs.max_episode_steps=50`)."""
    if key in found:
        return found[key].opt_in
    return any(
        key.startswith(f"{k}.") and typing.get_origin(plain_type(s.type)) is dict
        for k, s in found.items()
    )


def _register() -> None:
    store = ConfigStore.instance()
    store.store(name="base_config", node=Config)
    for name, schema in ALGOS.items():
        store.store(group="schema/algo", name=name, node=schema)


_register()
