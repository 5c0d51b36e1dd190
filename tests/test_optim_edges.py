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


def test_a_members_optimizer_state_is_a_single_runs() -> None:
    """member_state_dict(k): member k's moments and step count as a single run's Adam holds
    them, with member k's own learning rate, and copies, not views of the batch's state."""
    torch.manual_seed(0)
    rows = torch.randn(2, 3)
    batch = adam_over([nn.Parameter(rows.clone())], [0.1, 0.3])
    assert batch.member_state_dict(1)["state"] == {}  # not stepped yet
    single = adam_over([nn.Parameter(rows[1:].clone())], [0.3])
    for _ in range(2):
        step_once(batch)
        step_once(single)
    own, alone = batch.member_state_dict(1), single.optimizer.state_dict()
    assert own["param_groups"][0]["params"] == [0]
    assert own["param_groups"][0]["lr"] == pytest.approx(0.3)  # (held as a float32 tensor)
    assert batch.member_state_dict(0)["param_groups"][0]["lr"] == pytest.approx(0.1)
    assert own["state"].keys() == alone["state"].keys() == {0}
    for key, value in alone["state"][0].items():
        torch.testing.assert_close(own["state"][0][key], value, msg=key)
    own["state"][0]["exp_avg"].zero_()  # a copy: the batch's moments stay
    assert batch.member_state_dict(1)["state"][0]["exp_avg"].abs().sum() > 0
    fresh = adam_over([nn.Parameter(rows[1:].clone())], [0.3])
    fresh.load_state_dict(batch.member_state_dict(1))  # resumes as a single run
    assert fresh.optimizer.state_dict()["state"][0]["step"].item() == 2


def test_state_saved_per_parameter_whose_first_parameter_has_two_values() -> None:
    weight, bias = nn.Parameter(torch.zeros(1, 2)), nn.Parameter(torch.zeros(1))
    saved = legacy_state([weight, bias], 1)
    named = adam_over([nn.Parameter(weight.detach()[None].clone()),
                       nn.Parameter(bias.detach()[None].clone())], [0.1])  # fmt: skip
    named.load_state_dict(saved)
    (flat_state,) = named.optimizer.state_dict()["state"].values()
    assert flat_state["exp_avg"].shape == (3,)  # 2 weights and the bias, laid out flat
