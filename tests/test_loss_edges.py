"""Returns, GAE and the losses on the cases the by-hand tests leave open: masks, a batch of
members, one- and two-element batches, the defaults, dtypes, and the other side of each clip."""

import math

import numpy as np
import pytest
import torch

from acexp.algos.losses import (
    actor_loss,
    batch_mean,
    critic_loss,
    discounted_returns,
    explained_variance,
    gae,
    normalize,
    total_loss,
)
from acexp.algos.ppo import clipped_surrogate_loss, clipped_value_loss

# two members (rows) of four transitions; the second member's last two are reset steps
MASK = torch.tensor([[True, True, True, True], [True, True, False, False]])


def test_batch_mean_is_over_the_last_dimension_of_the_kept_entries() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0], [4.0, 8.0, 100.0, -100.0]])
    assert batch_mean(x).tolist() == [3.0, 3.0]
    assert batch_mean(x, MASK).tolist() == [3.0, 6.0]
    one = torch.tensor([[True, False, False, False]] * 2)
    assert batch_mean(x, one).tolist() == [1.0, 4.0]  # a single kept entry is its own mean
    assert batch_mean(x, torch.zeros_like(MASK)).tolist() == [0.0, 0.0]  # none kept: 0, not NaN
    cube = torch.arange(24.0).reshape(2, 3, 4)  # [members, envs, steps]: over the last only
    assert batch_mean(cube).shape == (2, 3) and batch_mean(cube)[1, 2].item() == 21.5
    assert batch_mean(cube, torch.ones(2, 3, 4)).tolist() == batch_mean(cube).tolist()


def test_masked_losses_leave_the_reset_steps_out() -> None:
    log_prob = torch.tensor([[-1.0, -2.0, -1.0, -2.0], [-1.0, -3.0, 50.0, 50.0]])
    advantage = torch.ones(2, 4)
    assert actor_loss(log_prob, advantage, mask=MASK).tolist() == [1.5, 2.0]
    assert actor_loss(log_prob, advantage, "sum", MASK).tolist() == [6.0, 4.0]
    value, target = torch.zeros(2, 4), torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 4.0, 9.0, 9.0]])
    assert critic_loss(value, target, mask=MASK).tolist() == [5.0, 10.0]
    # smooth L1: |e| - 1/2 beyond 1: 0.5, 0.5, 2.5, 2.5 and 1.5, 3.5
    assert critic_loss(value, target, "smooth_l1", mask=MASK).tolist() == [1.5, 2.5]
    with pytest.raises(ValueError, match="unknown critic loss 'huber'; known: mse, smooth_l1"):
        critic_loss(value, target, "huber")


def test_total_loss_defaults_weigh_the_critic_1_and_the_entropy_001() -> None:
    loss = total_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(10.0))
    assert loss.item() == pytest.approx(1.0 + 2.0 - 0.1)


def test_discounted_returns_keep_the_rewards_dtype() -> None:
    rewards = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert discounted_returns(rewards, 0.5).dtype == torch.float64
    assert discounted_returns(rewards, 0.5).tolist() == [2.0, 2.0]


def test_normalize_two_values_per_member_with_eps() -> None:
    # two values: unbiased std |a - b| / sqrt(2), so each is sqrt(1/2) from the mean in stds
    rows = torch.tensor([[1.0, 3.0], [10.0, 30.0]])
    half = math.sqrt(0.5)
    assert normalize(rows, eps=0.0).tolist() == [
        pytest.approx([-half, half]),
        pytest.approx([-half, half]),
    ]
    # eps is added to the std: (1 - 2) / (1 + 1) for 1, 2, 3 with eps 1
    assert normalize(torch.tensor([1.0, 2.0, 3.0]), eps=1.0).tolist() == [-0.5, 0.0, 0.5]
    assert normalize(torch.tensor([[5.0], [7.0]])).tolist() == [[0.0], [0.0]]  # centred only
    masked = normalize(torch.tensor([[1.0, 2.0, 3.0, 9.0], [2.0, 6.0, 0.0, 0.0]]), 1.0, MASK)
    # member 0: mean 3.75, unbiased std sqrt(38.75 / 3); member 1 keeps 2, 6: mean 4, std sqrt(8)
    std = math.sqrt(38.75 / 3)
    assert masked[0].tolist() == pytest.approx([(v - 3.75) / (std + 1) for v in (1, 2, 3, 9)])
    std = math.sqrt(8.0)
    assert masked[1].tolist() == pytest.approx([-2 / (std + 1), 2 / (std + 1), 0.0, 0.0])
    single = normalize(torch.tensor([[4.0, 1.0]]), 1.0, torch.tensor([[True, False]]))
    assert single.tolist() == [[0.0, 0.0]]  # one kept value: centred, no spread to divide by


def test_gae_gives_float32_for_any_input_and_takes_a_one_step_rollout() -> None:
    rewards = np.array([[1.0, 2.0]], dtype=np.float64)  # [T=1, N=2]
    values = np.array([[0.5, 0.5]], dtype=np.float64)
    next_values = np.array([[1.0, 1.0]], dtype=np.float64)
    terminated = np.array([[False, True]])
    advantages, returns = gae(rewards, values, next_values, terminated, terminated, 0.9, 0.95)
    assert advantages.dtype == returns.dtype == torch.float32
    # env 0: 1 + 0.9 * 1 - 0.5; env 1 terminated: 2 - 0.5
    assert advantages.tolist() == [pytest.approx([1.4, 1.5])]
    assert returns.tolist() == [pytest.approx([1.9, 2.0])]


def test_clipped_surrogate_clips_a_ratio_below_one_for_a_negative_advantage() -> None:
    # r = 0.5, A = -1: unclipped -A r = 0.5, clipped -A clip(r, 0.8, 1.2) = 0.8: the max is 0.8
    old = torch.zeros(1)
    loss, _ = clipped_surrogate_loss(old + math.log(0.5), old, -torch.ones(1), (0.8, 1.2))
    assert loss.item() == pytest.approx(0.8)


def test_ppo_losses_leave_masked_steps_out() -> None:
    old = torch.zeros(2, 4)
    log_prob = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 5.0, 5.0]])
    loss, _ = clipped_surrogate_loss(log_prob, old, torch.ones(2, 4), (0.8, 1.2), MASK)
    assert loss.tolist() == [-1.0, -1.0]  # the masked ratios e^5 would count otherwise
    value, target = torch.zeros(2, 4), torch.tensor([[1.0] * 4, [1.0, 1.0, 9.0, 9.0]])
    assert clipped_value_loss(value, old, target, None, MASK).tolist() == [1.0, 1.0]
    assert clipped_value_loss(value, old, target, 0.2, MASK).tolist() == [1.0, 1.0]
    prediction = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 50.0, -50.0]])
    target = torch.tensor([[1.0, 2.0, 3.0, 6.0], [1.0, 3.0, 0.0, 0.0]])
    # member 1 keeps [1, 2] against [1, 3]: Var(target) = 1, Var(residual [0, 1]) = 1/4
    assert explained_variance(prediction, target, MASK)[1].item() == pytest.approx(0.75)


def test_clipped_value_loss_clips_both_ways_around_the_old_value() -> None:
    # old value 5: value 3 is clipped up to 4.8, value 7 down to 5.2; target 4 (then 6)
    old, c = torch.tensor([5.0, 5.0]), 0.2
    value = torch.tensor([3.0, 7.0])
    # errors (3 - 4)^2 = 1 against (4.8 - 4)^2 = 0.64; (7 - 6)^2 = 1 against (5.2 - 6)^2 = 0.64
    loss = clipped_value_loss(value, old, torch.tensor([4.0, 6.0]), c)
    assert loss.item() == pytest.approx(1.0)
    # value 3, target 2: (3 - 2)^2 = 1 against (4.8 - 2)^2 = 7.84: the clipped one counts
    loss = clipped_value_loss(value[:1], old[:1], torch.tensor([2.0]), c)
    assert loss.item() == pytest.approx(7.84)
    # value 7, target 8: 1 against (5.2 - 8)^2 = 7.84
    loss = clipped_value_loss(value[1:], old[1:], torch.tensor([8.0]), c)
    assert loss.item() == pytest.approx(7.84)


def test_explained_variance_of_a_target_with_variance_below_one() -> None:
    # target [0, 0.5]: Var 1/16; prediction [0, 0.25]: residual [0, 0.25], Var 1/64: 1 - 1/4
    ev = explained_variance(torch.tensor([0.0, 0.25]), torch.tensor([0.0, 0.5]))
    assert ev.item() == pytest.approx(0.75)


def test_normalize_default_eps_is_tiny_and_the_mask_works_over_the_last_dimension() -> None:
    assert normalize(torch.tensor([1.0, 2.0, 3.0])).tolist() == pytest.approx([-1.0, 0.0, 1.0])
    # [members, envs, steps]: each row of the last dimension on its own, masked or not
    x = torch.tensor([[[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]], [[0.0, 5.0, 10.0], [4.0, 4.0, 8.0]]])
    mask = torch.ones_like(x, dtype=torch.bool)
    torch.testing.assert_close(normalize(x, 0.0, mask), normalize(x, 0.0))
    assert normalize(x, 0.0)[0, 1].tolist() == pytest.approx([-1.0, 0.0, 1.0])
