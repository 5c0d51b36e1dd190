"""benchmarks.censored: an unsolved run counts as still improving only on a rising trend."""

from pathlib import Path

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from acexp.analysis.runs import EPISODES_TAG, RETURN_TAG
from benchmarks.censored import trend


def write_episodes(job_dir: Path, returns: np.ndarray) -> None:
    """One episode per logged point, as the per-episode trainer logs them."""
    writer = SummaryWriter(str(job_dir))
    steps = np.cumsum(np.maximum(returns, 1).astype(int))
    for episode, (step, value) in enumerate(zip(steps, returns, strict=True), start=1):
        writer.add_scalar(RETURN_TAG, value, int(step))
        writer.add_scalar(EPISODES_TAG, episode, int(step))
    writer.close()


def test_rising_returns_are_improving_and_flat_or_collapsed_ones_are_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rising = np.linspace(100, 300, 400) + rng.normal(0, 20, 400)
    write_episodes(tmp_path / "rising", rising)
    early, late, improving = trend(tmp_path / "rising", window=300)
    assert improving
    # the window is the last 300 episodes: its first and last 30 average near 150 and 290
    stored = rising.astype(np.float32)  # event files hold float32
    assert early == pytest.approx(stored[100:130].mean()) and late == pytest.approx(
        stored[-30:].mean()
    )

    write_episodes(tmp_path / "flat", 200 + rng.normal(0, 20, 400))
    assert not trend(tmp_path / "flat", window=300)[2]
    write_episodes(tmp_path / "collapsed", np.full(400, 9.0))  # no spread: no trend
    assert not trend(tmp_path / "collapsed", window=300)[2]
