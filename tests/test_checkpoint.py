"""Checkpoint files: atomic, pruned, tensors only, and a damaged newest file falls back."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from acexp.checkpoint import (
    UnsafeCheckpointError,
    latest_checkpoint,
    list_checkpoints,
    save_checkpoint,
    save_torch,
)
from acexp.state import rng_state, set_rng_state


class Custom:
    """A class torch would have to unpickle as code."""


def test_keeps_the_newest_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    for step in (10, 200, 3000):
        save_checkpoint({"step": step}, tmp_path, step, keep=2)
    kept = ["step_000000200.pt", "step_000003000.pt"]
    assert [p.name for p in list_checkpoints(tmp_path)] == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == kept  # no temporaries left behind
    path, state = latest_checkpoint(tmp_path)
    assert path.name == "step_000003000.pt" and state == {"step": 3000}


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(
    tmp_path: Path, damage: str
) -> None:
    save_checkpoint({"w": torch.ones(1000)}, tmp_path, 1, keep=3)
    newest = save_checkpoint({"w": torch.zeros(1000)}, tmp_path, 2, keep=3)
    data = newest.read_bytes()
    newest.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"\x00" * len(data), "empty": b""}[damage]
    )
    path, state = latest_checkpoint(tmp_path)
    assert path.name == "step_000000001.pt" and torch.equal(state["w"], torch.ones(1000))


def test_a_checkpoint_carrying_pickled_code_is_refused(tmp_path: Path) -> None:
    save_torch({"model": {}, "extra": Custom()}, tmp_path / "step_000000005.pt")
    save_checkpoint({"fine": 1}, tmp_path, 1, keep=5)
    with pytest.raises(UnsafeCheckpointError, match=r"pickled objects.*Custom"):
        latest_checkpoint(tmp_path)  # never silently skipped for an older one


def test_no_checkpoint_gives_none(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "missing") is None


def test_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_checkpoint({"rng": rng_state()}, tmp_path, 1, keep=1)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(latest_checkpoint(tmp_path)[1]["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
