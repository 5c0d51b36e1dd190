"""A NaN or Inf stops the run with the step and the quantity; the last good checkpoint stays."""

import json
from pathlib import Path

import pytest
import torch

from acexp.algos.a2c import A2CTrainer
from acexp.errors import NonFiniteError
from acexp.run import run
from acexp.runtime.checkpoint import latest_checkpoint, list_checkpoints
from tests.conftest import make_cfg


def test_a_nan_parameter_fails_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = A2CTrainer.train
    poisoned: list[int] = []

    def train_then_poison(self: A2CTrainer, *args: torch.Tensor) -> None:
        train(self, *args)
        if self.env_steps[0] > 1500 and not poisoned:
            poisoned.append(self.env_steps[0])
            with torch.no_grad():
                self.model.critic_head.bias.fill_(float("nan"))

    monkeypatch.setattr(A2CTrainer, "train", train_then_poison)
    cfg = make_cfg("total_steps=4000", "checkpoint.every_steps=500", "checkpoint.keep=10")
    cfg.log.every_steps, cfg.log.progress = 400, False
    with pytest.raises(NonFiniteError, match=r"parameter critic_head.bias holds nan at env step"):
        run(cfg, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "critic_head.bias holds nan" in metrics["error"]
    failed_at = int(metrics["error"].rsplit(" ", 1)[1])
    assert poisoned[0] <= failed_at < poisoned[0] + 400 + 80  # found at the next log step
    steps = [int(p.stem.split("_")[1]) for p in list_checkpoints(tmp_path / "checkpoints")]
    assert steps and max(steps) < poisoned[0]  # no checkpoint after the NaN
    _, state = latest_checkpoint(tmp_path / "checkpoints")
    assert all(t.isfinite().all() for t in state["model"].values())
    assert not (tmp_path / "model.pt").exists()


def test_a_learning_rate_of_1e30_is_reported_as_non_finite(tmp_path: Path) -> None:
    cfg = make_cfg("optim.lr=1e30", "total_steps=3000", "log.progress=false")
    with pytest.raises(NonFiniteError, match=r"(parameter|losses/).* at env step \d+"):
        run(cfg, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "failed"
