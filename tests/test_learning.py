"""Real learning: the default configuration solves CartPole-v1."""

from pathlib import Path

import torch

from acexp.run import run
from tests.conftest import make_cfg

PINNED_TORCH = "2.13.0"  # the build .ci/run installs


def test_default_run_solves_cartpole(tmp_path: Path) -> None:
    """Seed 0 solves on the pinned torch build. Another build rounds differently, which moves
    every run after its first updates: there a seed that misses is followed by two more, and a
    learning bug still fails, as it misses with all three."""
    for seed in (0, 1, 2):
        cfg = make_cfg("log.progress=false", f"seed={seed}")
        metrics = run(cfg, out_dir=tmp_path / f"seed={seed}")
        if metrics["solved"] or torch.__version__.split("+")[0] == PINNED_TORCH:
            break
    assert metrics["solved"], metrics
    assert metrics["running_return"] > 475
    assert metrics["steps_to_solve"] <= cfg.total_steps
    assert metrics["seconds_to_solve"] < metrics["wall_seconds"] + 1e-9
    # the default shared 64-64 net: trunk 4*64+64 + 64*64+64, actor head 64*2+2, critic 64+1
    assert metrics["parameters"] == 320 + 4160 + 130 + 65
