"""Real learning: the default configuration solves CartPole-v1."""

from pathlib import Path

from acexp.run import run
from tests.conftest import make_cfg


def test_default_run_solves_cartpole(tmp_path: Path) -> None:
    cfg = make_cfg("log.progress=false")
    metrics = run(cfg, out_dir=tmp_path)
    assert metrics["solved"], metrics
    assert metrics["running_return"] > 475
    assert metrics["steps_to_solve"] <= cfg.total_steps
    assert metrics["seconds_to_solve"] < metrics["wall_seconds"] + 1e-9
