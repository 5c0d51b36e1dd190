"""Checkpoint files: atomic, pruned, tensors only, and a damaged newest file falls back."""

import random
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from acexp.envs.make import make_vector_env
from acexp.envs.state import (
    exact_env_state,
    rng_state,
    set_rng_state,
    set_vector_env_state,
    vector_env_state,
)
from acexp.runtime.checkpoint import (
    UnsafeCheckpointError,
    latest_checkpoint,
    list_checkpoints,
    save_checkpoint,
    save_torch,
)
from tests.conftest import make_cfg


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


def _saved_and_loaded(obj: object, tmp_path: Path) -> object:
    save_checkpoint({"x": obj}, tmp_path, 1, keep=1)
    return latest_checkpoint(tmp_path)[1]["x"]


def _normalised_envs(vectorization: str, seed: int) -> gym.vector.VectorEnv:
    cfg = make_cfg(f"env.vectorization={vectorization}").env
    return gym.wrappers.vector.NormalizeReward(make_vector_env(cfg, 4, seed))


def test_a_numpy_native_vector_env_continues_exactly_after_a_restore(tmp_path: Path) -> None:
    envs, actions = _normalised_envs("auto", seed=0), np.random.default_rng(0).integers(0, 2, 60)
    assert exact_env_state(envs)
    for a in actions[:30]:
        envs.step(np.full(4, a))
    state = _saved_and_loaded(vector_env_state(envs), tmp_path)
    expected = [envs.step(np.full(4, a))[:2] for a in actions[30:]]
    other = _normalised_envs("auto", seed=123)
    set_vector_env_state(other, state)
    for (obs, reward), a in zip(expected, actions[30:], strict=True):
        got_obs, got_reward = other.step(np.full(4, a))[:2]
        np.testing.assert_array_equal(got_obs, obs)
        np.testing.assert_array_equal(got_reward, reward)


def test_sync_vector_envs_are_not_exact_but_keep_their_running_statistics(tmp_path: Path) -> None:
    envs = _normalised_envs("sync", seed=0)
    assert not exact_env_state(envs)
    for _ in range(25):
        envs.step(np.ones(4, dtype=np.int64))
    state = _saved_and_loaded(vector_env_state(envs), tmp_path)
    other = _normalised_envs("sync", seed=1)
    set_vector_env_state(other, state, statistics_only=True)
    assert other.return_rms.count == envs.return_rms.count > 25
    assert other.return_rms.var == envs.return_rms.var != 1.0
