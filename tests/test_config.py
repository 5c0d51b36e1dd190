"""Every option of every config group composes, validates, builds and trains a few steps."""

import json
from pathlib import Path

import pytest

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
