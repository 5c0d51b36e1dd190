"""Losses, returns and GAE against numbers computed by hand."""

import math

import pytest
import torch

from acexp.algos.losses import (
    actor_loss,
    critic_loss,
    discounted_returns,
    gae,
    normalize,
    total_loss,
)


def test_actor_loss_by_hand() -> None:
    log_prob = torch.tensor([-0.5, -1.0, -2.0])
    advantage = torch.tensor([2.0, -1.0, 0.5])
    # -(−1.0 + 1.0 − 1.0) / 3 = 1/3
    assert actor_loss(log_prob, advantage).item() == pytest.approx(1 / 3)
    assert actor_loss(log_prob, advantage, "sum").item() == pytest.approx(1.0)


def test_actor_loss_does_not_move_the_critic() -> None:
    value = torch.tensor([1.0, 2.0], requires_grad=True)
    log_prob = torch.tensor([-0.1, -0.2], requires_grad=True)
    returns = torch.tensor([3.0, 1.0])
    actor_loss(log_prob, returns - value).backward()
    assert value.grad is None
    # d/dlogp of -(logp * adv).mean() = -adv / 2 with adv = [2, -1]
    assert log_prob.grad.tolist() == pytest.approx([-1.0, 0.5])


def test_critic_losses_by_hand() -> None:
    value = torch.tensor([1.0, 2.0, 0.0])
    target = torch.tensor([3.0, 2.5, 0.0])
    # squared errors 4, 0.25, 0 -> mean 1.4166...
    assert critic_loss(value, target).item() == pytest.approx(4.25 / 3)
    # smooth L1: |2| -> 1.5, |0.5| -> 0.125, 0 -> 0; summed 1.625
    assert critic_loss(value, target, "smooth_l1", "sum").item() == pytest.approx(1.625)


def test_total_loss_subtracts_the_entropy_bonus() -> None:
    total = total_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0.7), 0.5, 0.01)
    assert total.item() == pytest.approx(1.0 + 1.0 - 0.007)
    entropy = torch.tensor(0.7, requires_grad=True)
    total_loss(
        torch.tensor(1.0, requires_grad=True), torch.tensor(2.0), entropy, 0.5, 0.0
    ).backward()
    assert entropy.grad is None  # ent_coef 0: the entropy is not part of the loss at all


def test_discounted_returns_by_hand() -> None:
    returns = discounted_returns(torch.tensor([1.0, 1.0, 1.0]), 0.9)
    assert returns.tolist() == pytest.approx([2.71, 1.9, 1.0])


def test_normalize_by_hand() -> None:
    out = normalize(torch.tensor([1.0, 2.0, 3.0]), eps=0.0)
    assert out.tolist() == pytest.approx([-1.0, 0.0, 1.0])  # unbiased std of 1,2,3 is 1
    assert normalize(torch.tensor([5.0])).tolist() == [0.0]


def test_gae_n_step_returns_with_lambda_one() -> None:
    # one env, 3 steps, nothing ends: returns are bootstrapped n-step returns
    rewards = torch.tensor([[1.0], [1.0], [1.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    next_values = torch.tensor([[0.4], [0.3], [2.0]])
    no = torch.zeros(3, 1, dtype=torch.bool)
    adv, ret = gae(rewards, values, next_values, no, no, gamma=0.5, gae_lambda=1.0)
    # G2 = 1 + 0.5*2 = 2; G1 = 1 + 0.5*2 = 2; G0 = 1 + 0.5*2 = 2
    assert ret.flatten().tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert adv.flatten().tolist() == pytest.approx([1.5, 1.6, 1.7])


def test_gae_lambda_by_hand() -> None:
    rewards = torch.tensor([[1.0], [0.0]])
    values = torch.tensor([[1.0], [2.0]])
    next_values = torch.tensor([[2.0], [3.0]])
    no = torch.zeros(2, 1, dtype=torch.bool)
    adv, _ = gae(rewards, values, next_values, no, no, gamma=0.9, gae_lambda=0.5)
    delta1 = 0.0 + 0.9 * 3.0 - 2.0  # 0.7
    delta0 = 1.0 + 0.9 * 2.0 - 1.0  # 1.8
    assert adv.flatten().tolist() == pytest.approx([delta0 + 0.45 * delta1, delta1])


def test_gae_bootstraps_truncation_but_not_termination() -> None:
    # env 0 terminates at t=0, env 1 is truncated at t=0; next_values[0] holds V(final obs)=10
    rewards = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    values = torch.zeros(2, 2)
    next_values = torch.tensor([[10.0, 10.0], [0.0, 0.0]])
    terminated = torch.tensor([[True, False], [False, False]])
    done = torch.tensor([[True, True], [False, False]])
    adv, ret = gae(rewards, values, next_values, terminated, done, gamma=0.9, gae_lambda=0.95)
    assert ret[0].tolist() == pytest.approx([1.0, 1.0 + 0.9 * 10.0])
    # the done flag stops the recursion: step 1 does not leak into step 0
    assert adv[1].tolist() == pytest.approx([1.0, 1.0])
    assert not any(math.isnan(x) for x in adv.flatten().tolist())
