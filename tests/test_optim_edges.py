"""Optimizer modes and clipping on the cases their other tests leave open: forgetting one
member's state, optimizer state saved per parameter by a model of two parameters or before any
step, and the clip factor of tiny gradients."""

import copy

import pytest
import torch
from torch import nn

from acexp.optim.flat_params import FlatParameters
from acexp.optim.modes import NamedOptimizer, norm_after_clipping


def adam_over(params: list[nn.Parameter], lrs: list[float]) -> NamedOptimizer:
    flat = FlatParameters(params)
    named = NamedOptimizer("joint", torch.optim.Adam(flat.step_params, lr=lrs[0]), flat)
    named.set_lrs(lrs)
    return named


def step_once(named: NamedOptimizer, members: list[bool] | None = None) -> None:
    named.flat.zero_grad()
    sum(p.sum() for p in named.params).backward()
    named.step(members)


def test_reset_member_forgets_that_members_state_only() -> None:
    params = [nn.Parameter(torch.ones(3, 2)), nn.Parameter(torch.ones(3, 4))]  # 3 members
    named = adam_over(params, [0.1, 0.1, 0.1])
    named.reset_member(1)  # no state yet: nothing to forget, and no error
    step_once(named)
    named.reset_member(1)
    assert named.member_state_dict(1)["state"] == {}
    for k in (0, 2):
        assert named.member_state_dict(k)["state"][0]["step"].item() == 1
    step_once(named)
    steps = [named.member_state_dict(k)["state"][0]["step"].item() for k in range(3)]
    assert steps == [2, 1, 2]  # member 1 starts again, as a new optimizer would


def legacy_state(params: list[nn.Parameter], steps: int) -> dict:
    """An Adam state dict saved per parameter (as earlier acexp saved it) after `steps` steps."""
    adam = torch.optim.Adam(params, lr=0.1)
    for _ in range(steps):
        adam.zero_grad()
        sum((p * torch.arange(p.numel()).reshape(p.shape)).sum() for p in params).backward()
        adam.step()
    return copy.deepcopy(adam.state_dict())


@pytest.mark.parametrize("steps", [0, 2])
def test_state_saved_per_parameter_loads_for_two_parameters(steps: int) -> None:
    weight, bias = nn.Parameter(torch.zeros(2, 3)), nn.Parameter(torch.zeros(2))
    saved = legacy_state([weight, bias], steps)
    assert len(saved["param_groups"][0]["params"]) == 2
    ours = [nn.Parameter(weight.detach()[None].clone()), nn.Parameter(bias.detach()[None].clone())]
    named = adam_over(ours, [0.1])
    named.load_state_dict(saved)
    state = named.optimizer.state_dict()["state"]
    if steps == 0:
        assert state == {}  # nothing saved yet, nothing loaded
        return
    (flat_state,) = state.values()
    assert flat_state["step"].item() == steps
    moments = torch.cat([saved["state"][i]["exp_avg"].flatten() for i in (0, 1)])
    torch.testing.assert_close(flat_state["exp_avg"], moments)


def test_clipping_factor_of_a_tiny_norm() -> None:
    # 2e-6 over a bound of 1e-6: the factor is 1e-6 / (2e-6 + 1e-6) = 1/3, as clip_grad_norm_
    assert norm_after_clipping(2e-6, 1e-6) == pytest.approx(2e-6 / 3, rel=1e-9)
    assert norm_after_clipping(5.0, float("inf")) == 5.0
