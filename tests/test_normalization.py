"""Observation normalisers by hand: which spaces they touch, per-member bounds and running
statistics (their members mask, clip and eps), and the errors of make_normalizer."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from acexp.errors import ConfigError
from acexp.models.normalization import (
    BoundsNormalizer,
    RunningNormalizer,
    has_finite_bounds,
    is_image,
    make_normalizer,
    normalize_observation,
)


def test_what_counts_as_an_image_and_as_bounded() -> None:
    assert is_image(gym.spaces.Box(0, 255, (84, 84), np.uint8))
    assert is_image(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8))
    assert not is_image(gym.spaces.Box(0, 255, (128,), np.uint8))  # Atari RAM: a vector
    assert not is_image(gym.spaces.Box(0, 255, (2, 4, 84, 84), np.uint8))
    assert not is_image(gym.spaces.Box(0.0, 1.0, (84, 84, 3), np.float32))
    assert not is_image(gym.spaces.Discrete(4))
    assert has_finite_bounds(gym.spaces.Box(-1.0, 1.0, (3,)))
    low, high = np.array([-1.0, -np.inf]), np.array([1.0, 1.0])
    assert not has_finite_bounds(gym.spaces.Box(low, high))  # one infinite low
    assert not has_finite_bounds(gym.spaces.Box(-high, np.array([1.0, np.inf])))  # one high
    assert not has_finite_bounds(gym.spaces.Discrete(3))


def test_bounds_normalizer_scales_each_member_by_the_bounds() -> None:
    space = gym.spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 10.0]))
    norm = BoundsNormalizer(space, members=2)
    assert norm.low.shape == norm.range.shape == (2, 2)
    obs = torch.tensor([[[0.0, 5.0], [2.0, 0.0]], [[-2.0, 10.0], [1.0, 2.5]]])  # [2, 2, 2]
    assert norm(obs).tolist() == [[[0.5, 0.5], [1.0, 0.0]], [[0.0, 1.0], [0.75, 0.25]]]
    assert set(norm.state_dict()) == {"low", "range"}  # saved with the model


def test_running_normalizer_updates_only_the_members_marked() -> None:
    norm = RunningNormalizer((1,), members=2)
    assert norm.count.tolist() == [1e-8, 1e-8] and norm.var.tolist() == [[1.0], [1.0]]
    batch = torch.tensor([[[1.0], [3.0]], [[10.0], [30.0]]])
    norm.update(batch, torch.tensor([False, True]))
    assert norm.mean[0].item() == 0.0 and norm.var[0].item() == 1.0  # left as it was
    assert norm.count[0].item() == 1e-8
    assert norm.mean[1].item() == pytest.approx(20.0) and norm.var[1].item() == pytest.approx(100)
    assert norm.count[1].item() == pytest.approx(2.0)
    norm.update(batch)  # both members: member 1 now holds 10, 30, 10, 30
    assert norm.mean[0].item() == pytest.approx(2.0) and norm.var[0].item() == pytest.approx(1.0)
    assert norm.mean[1].item() == pytest.approx(20.0) and norm.var[1].item() == pytest.approx(100)
    assert norm.count.tolist() == pytest.approx([2.0, 4.0])


def test_running_normalizer_combines_batches_as_one_sample() -> None:
    # Chan et al.: 2, 4 then 6, 8, 10 give the mean 6 and the (biased) variance 8 of all five
    norm = RunningNormalizer((1,))
    norm.update(torch.tensor([[[2.0], [4.0]]]))
    norm.update(torch.tensor([[[6.0], [8.0], [10.0]]]))
    assert norm.mean.item() == pytest.approx(6.0) and norm.var.item() == pytest.approx(8.0)
    assert norm.count.item() == pytest.approx(5.0)


def test_running_normalizer_output_eps_and_clip() -> None:
    norm = RunningNormalizer((2,), eps=3.0, clip=1.5)
    with torch.no_grad():
        norm.mean.fill_(1.0)
        norm.var.fill_(1.0)
    out = norm(torch.tensor([[[3.0, 100.0]]]))  # (3 - 1) / sqrt(1 + 3) = 1; 99 / 2 clipped
    assert out.dtype == torch.float32 and out.tolist() == [[[1.0, 1.5]]]
    assert norm(torch.tensor([[[-100.0, 1.0]]])).tolist() == [[[-1.5, 0.0]]]
    default = RunningNormalizer((1,))
    assert default(torch.tensor([[[1e6]]])).item() == 10.0  # clipped to 10 by default
    assert default(torch.tensor([[[0.5]]])).item() == pytest.approx(0.5 / math.sqrt(1 + 1e-8))


def test_make_normalizer_picks_by_mode_and_space() -> None:
    box = gym.spaces.Box(-1.0, 1.0, (3,))
    unbounded = gym.spaces.Box(-np.inf, np.inf, (3,))
    assert isinstance(make_normalizer(box, "none"), nn.Identity)
    assert isinstance(make_normalizer(box, "bounds"), BoundsNormalizer)
    running = make_normalizer(unbounded, "running", members=4)
    assert isinstance(running, RunningNormalizer) and running.mean.shape == (4, 3)
    assert make_normalizer(box, "bounds", members=3).low.shape == (3, 3)
    image = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert isinstance(make_normalizer(image, "running"), nn.Identity)  # the CNN scales it
    assert isinstance(make_normalizer(gym.spaces.Discrete(5), "bounds"), nn.Identity)
    with pytest.raises(ConfigError, match=r"^env.obs_norm='zscore' is not known; known: none, "):
        make_normalizer(box, "zscore")
    with pytest.raises(
        ConfigError, match=r"needs finite bounds, but .*; use env.obs_norm=running$"
    ):
        make_normalizer(unbounded, "bounds")


def test_defaults_dtypes_of_a_float64_space_and_one_member() -> None:
    """Bounds come out as float32 whatever the space's dtype; running statistics are held in
    float64 (a long run's sums would lose digits in float32); one member unless told."""
    space = gym.spaces.Box(np.array([0.0, -1.0]), np.array([2.0, 1.0]), dtype=np.float64)
    obs = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    scaled = normalize_observation(obs, space)
    assert scaled.dtype == torch.float32 and scaled.tolist() == [[0.5, 0.5]]
    bounds = BoundsNormalizer(space)
    assert bounds.low.shape == (1, 2) and bounds.low.dtype == bounds.range.dtype == torch.float32
    assert bounds(obs[None]).dtype == torch.float32
    running = RunningNormalizer((2,))
    assert running.mean.dtype == running.var.dtype == running.count.dtype == torch.float64
    assert running.mean.shape == (1, 2)
    assert make_normalizer(space, "bounds").low.shape == (1, 2)
