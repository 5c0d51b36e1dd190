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
    # the default shared 64-64 net: trunk 4*64+64 + 64*64+64, actor head 64*2+2, critic 64+1
    assert metrics["parameters"] == 320 + 4160 + 130 + 65
