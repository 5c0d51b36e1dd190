"""What reaches TensorBoard's HPARAMS tab: every setting that applies, with its schema's type;
the sweep's columns and metrics (read back through TensorBoard itself in
tests/test_tensorboard.py)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from acexp.logs.hparams import hparam_info, hyperparameters
from tests.conftest import make_cfg


def _leaves(node: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# Bookkeeping (where a run writes, how it logs, what a sweeper reads) never reaches HParams.
BOOKKEEPING_KEYS = ("resume", "objective", "checkpoint", "log")
DISCRETE = {"arch.log_std_init", "env.reward_gamma"}  # a Gaussian head; reward normalisation
JOINT = {"optim.actor_lr", "optim.critic_lr"}  # one optimizer: the per-net rates do not apply


@pytest.mark.parametrize(
    ("overrides", "left_out"),
    [((), DISCRETE | JOINT),
     (("optim=separate",), DISCRETE | {"optim.lr"}),  # two rates: lr is only their default
     (("algo=ppo",), DISCRETE | JOINT),
     (("algo=episodic", "optim.name=sgd"), DISCRETE | JOINT | {"optim.eps"}),  # Adam's eps
     (("env=pong",), DISCRETE | JOINT),
     (("env.normalize_reward=true", "+env.kwargs.max_episode_steps=50"),
      {"arch.log_std_init"} | JOINT),
     (("env=halfcheetah",), {"env.reward_gamma"} | JOINT),
     (("env=lunarlander", "+env.kwargs.continuous=true"), {"env.reward_gamma"} | JOINT)],
    ids=["a2c", "separate", "ppo", "episodic-sgd", "pong", "env-keys", "halfcheetah",
         "lunarlander-continuous"],
)  # fmt: skip
def test_every_setting_that_applies_reaches_hparams_with_its_type(overrides, left_out) -> None:
    cfg = make_cfg(*overrides)
    params = hyperparameters(cfg)
    leaves = _leaves(OmegaConf.to_container(cfg, resolve=True))
    assert set(params) <= set(leaves)
    for key, value in leaves.items():
        if key.split(".")[0] in BOOKKEEPING_KEYS or value is None or key in left_out:
            assert key not in params, key
        elif key == "seed" or isinstance(value, list):
            assert params[key] == str(value)
        else:
            assert params[key] == value and type(params[key]) is type(value), key
    assert isinstance(params["stop_on_solve"], bool) and isinstance(params["total_steps"], int)
    assert isinstance(params["algo.gamma"], float)


def test_the_schemas_types_hold_for_a_config_saved_by_an_older_acexp() -> None:
    """A float setting written as 1 (before the schema typed it) reaches the tab as 1.0, so
    that its column has one type across old and new runs; the seed stays text."""
    cfg = OmegaConf.create(OmegaConf.to_container(make_cfg("env.clip_reward=1")))
    cfg.env.clip_reward, cfg.optim.lr = 1, 1
    params = hyperparameters(cfg)
    assert (params["env.clip_reward"], params["optim.lr"], params["seed"]) == (1.0, 1.0, "0")
    assert type(params["env.clip_reward"]) is float and type(params["optim.lr"]) is float
    assert type(params["algo.num_envs"]) is int


def test_what_applies_is_read_from_the_settings() -> None:
    joint, separate = hyperparameters(make_cfg()), hyperparameters(make_cfg("optim=separate"))
    assert "optim.lr" in joint and "optim.actor_lr" not in joint
    assert "optim.lr" not in separate and separate["optim.critic_lr"] == 4e-3
    assert "optim.alpha" not in joint  # opt-in, not added
    assert hyperparameters(make_cfg("+optim.alpha=0.9"))["optim.alpha"] == 0.9  # rmsprop
    assert "optim.alpha" not in hyperparameters(make_cfg("+optim.alpha=0.9", "optim.name=adam"))
    assert "optim.eps" not in hyperparameters(make_cfg("optim.name=sgd"))
    assert "env.reward_gamma" not in joint
    assert hyperparameters(make_cfg("env.normalize_reward=true"))["env.reward_gamma"] == 0.99


@pytest.mark.parametrize(
    ("overrides", "gaussian"),
    [((), False), (("env=pong",), False), (("env=halfcheetah",), True),
     (("env=lunarlander",), False), (("env=lunarlander", "+env.kwargs.continuous=true"), True)],
)  # fmt: skip
def test_the_gaussian_policys_log_std_shows_only_for_box_actions(overrides, gaussian) -> None:
    assert ("arch.log_std_init" in hyperparameters(make_cfg(*overrides))) is gaussian


def test_a_column_is_typed_and_says_whether_it_differs() -> None:
    info = hparam_info("env.obs_norm", ["none", "running", "none"])
    assert info.differs and list(info.domain_discrete) == ["none", "running"]
    info = hparam_info("stop_on_solve", [True, True])
    assert not info.differs and list(info.domain_discrete) == [True]
    info = hparam_info("optim.lr", [3e-4, 3e-2, 3e-4])
    assert info.differs and list(info.domain_discrete) == [3e-4, 3e-2]
    info = hparam_info("optim.lr", [i / 100 for i in range(20)])  # a random search
    assert (info.domain_interval.min_value, info.domain_interval.max_value) == (0.0, 0.19)
