"""Every option of every config group composes, validates, builds and trains a few steps; the
schema declares every key the options compose to."""

import json
from pathlib import Path

import pytest
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from acexp.algos.settings import ALGOS
from acexp.config.schema import settings
from acexp.run import run
from tests.conftest import CONF, make_cfg

GROUPS = ["env", "arch", "algo", "optim", "experiment"]
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_trains(group: str, option: str, small, tmp_path: Path) -> None:
    override = f"+experiment={option}" if group == "experiment" else f"{group}={option}"
    # presets may pick an algo without num_envs (episodic)
    shrink = "algo.num_envs=2" if group not in ("algo", "experiment") else "seed=0"
    # one short evaluation episode: a preset's full evaluation (10 Pong games) says nothing more
    # about whether it composes
    cfg = make_cfg(
        override, *small, shrink, "eval.episodes=1", "++env.kwargs.max_episode_steps=100"
    )
    metrics = run(cfg, out_dir=tmp_path)
    assert metrics["status"] == "completed"
    assert metrics["env_steps"] >= cfg.total_steps == 400  # the whole budget, not a step of it
    assert json.loads((tmp_path / "metrics.json").read_text())["env_steps"] == metrics["env_steps"]
    assert (tmp_path / "model.pt").exists()


def test_episodic_sets_the_tutorial_defaults() -> None:
    cfg = make_cfg("algo=episodic")
    assert (cfg.optim.lr, cfg.seed, list(cfg.arch.hidden_sizes)) == (3e-2, 543, [128])
    assert cfg.arch.activation == "relu" and cfg.optim.max_grad_norm is None
    # command-line overrides still win over the algo's defaults
    cfg = make_cfg("algo=episodic", "optim.lr=3e-4", "seed=1", "arch=unshared")
    assert (cfg.optim.lr, cfg.seed, cfg.arch.name) == (3e-4, 1, "unshared")


def test_separate_learning_rates_default_to_lr() -> None:
    cfg = make_cfg("optim=separate", "optim.lr=1e-3")
    assert (cfg.optim.actor_lr, cfg.optim.critic_lr) == (1e-3, 1e-3)
    cfg = make_cfg("optim=separate", "optim.actor_lr=1e-3", "optim.critic_lr=5e-3")
    assert (cfg.optim.actor_lr, cfg.optim.critic_lr) == (1e-3, 5e-3)


COMPOSED = [(), ("algo=ppo",), ("algo=episodic", "optim=separate"), ("+experiment=pong_ppo",)]


@pytest.mark.parametrize("overrides", COMPOSED, ids=[" ".join(o) or "default" for o in COMPOSED])
def test_the_schema_declares_every_key_of_the_composed_config(overrides: tuple[str, ...]) -> None:
    """`--cfg job` shows exactly the schema's settings (those not opt-in), each with a doc."""
    cfg = make_cfg(*overrides)
    declared = settings(cfg)
    leaves = set(_leaves(OmegaConf.to_container(cfg)))
    assert leaves == {key for key, setting in declared.items() if not setting.opt_in}
    assert all(s.doc and "\n" not in s.doc for s in declared.values())
    assert OmegaConf.get_type(cfg.algo) is ALGOS[cfg.algo.name]  # typed as it composes


def _leaves(node: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and key != "kwargs":  # env.kwargs: one setting, a mapping
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_algorithm_has_a_schema_and_an_option() -> None:
    import acexp.algos.components  # noqa: F401  (fills the registries)
    from acexp.algos.registry import TRAINERS

    assert set(ALGOS) == set(TRAINERS.names()) == {p.stem for p in (CONF / "algo").glob("*.yaml")}


def test_hydra_checks_types_as_it_composes() -> None:
    with pytest.raises(HydraException) as error:
        make_cfg("algo.num_envs=2.5")
    assert isinstance(error.value.__cause__, ValidationError)
    cfg = make_cfg("optim.lr=1", "env.clip_reward=2", "algo.gamma=1")  # ints to float settings
    assert (type(cfg.optim.lr), type(cfg.env.clip_reward), cfg.algo.gamma) == (float, float, 1.0)
    assert cfg.optim.actor_lr == 1.0  # ${.lr}, an interpolation, typed too


def test_opt_in_settings_are_absent_until_added() -> None:
    assert "alpha" not in make_cfg().optim
    assert make_cfg("+optim.alpha=0.9").optim.alpha == 0.9
    assert make_cfg("+env.kwargs.max_episode_steps=50").env.kwargs == {"max_episode_steps": 50}
