"""Optimizer modes and clipping on the cases their other tests leave open: forgetting one
member's state, optimizer state saved per parameter by a model of two parameters or before any
step, and the clip factor of tiny gradients."""

import copy

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from acexp.errors import ConfigError
from acexp.optim.flat_params import FlatParameters
from acexp.optim.modes import NamedOptimizer, apply_update, build_optimizers, norm_after_clipping


def adam_over(params: list[nn.Parameter], lrs: list[float]) -> NamedOptimizer:
    flat = FlatParameters(params)
    named = NamedOptimizer("joint", torch.optim.Adam(flat.step_params, lr=lrs[0]), flat)
    named.set_lrs(lrs)
    return named


def step_once(named: NamedOptimizer, members: list[bool] | None = None, first: int = 1) -> None:
    """One step on a loss whose gradient is k + `first` for every weight of member k."""
    named.flat.zero_grad()
    scales = [torch.arange(first, first + p.shape[0]).view(-1, *[1] * (p.dim() - 1))
              for p in named.params]  # fmt: skip
    sum((p * scale).sum() for p, scale in zip(named.params, scales, strict=True)).backward()
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
        step_once(single, first=2)  # member 1's gradient in the batch
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


class Holder(nn.Module):
    """Parameters of one member (leading dimension 1), as a model's are laid out."""

    def __init__(self, *shapes: tuple[int, ...]) -> None:
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(1, *s)) for s in shapes)


def cfg(name: str, **settings: float) -> OmegaConf:
    return OmegaConf.create({"mode": "joint", "name": name, "lr": 0.01, "max_grad_norm": None,
                             "eps": 1e-5, **settings})  # fmt: skip


@pytest.mark.parametrize(
    ("name", "settings", "reference"),
    [("rmsprop", {"alpha": 0.9}, lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-5)),
     ("rmsprop", {}, lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-5)),
     ("sgd", {"momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)),
     ("sgd", {}, lambda p: torch.optim.SGD(p, lr=0.01)),
     ("adam", {}, lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-5))],
    ids=["rmsprop-alpha", "rmsprop-default-alpha", "sgd-momentum", "sgd-default", "adam"],
)  # fmt: skip
def test_each_optimizer_takes_its_settings_from_the_config(name, settings, reference) -> None:
    """Gradients of about 1e-5, where eps (1e-5 here, 1e-8 by torch's default) and alpha
    change each step by far more than rounding."""
    torch.manual_seed(0)
    ours = Holder((3,), (2, 2))
    theirs = Holder((3,), (2, 2))
    theirs.load_state_dict(ours.state_dict())
    (named,) = build_optimizers(ours, cfg(name, **settings))
    torch_optimizer = reference(list(theirs.parameters()))
    for step in range(4):
        scale = 1e-5 * (step + 1)
        apply_update(sum((p * scale).sum() for p in ours.parameters()), [named], None)
        torch_optimizer.zero_grad()
        sum((p * scale).sum() for p in theirs.parameters()).backward()
        torch_optimizer.step()
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_an_unknown_optimizer_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"^optim.name='adamw' is not known; known: adam, "
                                          r"rmsprop, sgd$"):  # fmt: skip
        build_optimizers(Holder((2,)), cfg("adamw"))


def test_a_new_learning_rate_reaches_the_optimizer() -> None:
    (named,) = build_optimizers(Holder((2,)), cfg("sgd"))
    named.set_lrs([0.5])  # as annealing sets it each update
    assert named.optimizer.param_groups[0]["lr"] == 0.5 and named.lrs() == [0.5]


def test_clipping_a_tiny_gradient_in_an_update() -> None:
    # a gradient of norm 2e-6 against a bound of 1e-6: scaled by 1e-6 / (2e-6 + 1e-6) = 1/3
    holder = Holder((1,))
    (named,) = build_optimizers(holder, cfg("sgd"))
    (param,) = holder.parameters()
    apply_update((param * 2e-6).sum(), [named], 1e-6)
    assert param.grad.item() == pytest.approx(2e-6 / 3, rel=1e-6)


def test_flat_parameters_refuse_what_one_buffer_cannot_hold() -> None:
    one = nn.Parameter(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="^flat parameters need one device and one dtype$"):
        FlatParameters([one, nn.Parameter(torch.zeros(2, 3, dtype=torch.float64))])
    with pytest.raises(ValueError, match="^flat parameters need the same leading member dim"):
        FlatParameters([one, nn.Parameter(torch.zeros(3, 3))])
    conv = nn.Parameter(torch.zeros(1, 4, 3, 5, 5)[..., ::2])  # a member neither layout holds
    with pytest.raises(ValueError, match=r"^flat parameters need dense \(contiguous or"):
        FlatParameters([conv])
    with pytest.raises(ValueError, match=r"^optim.mode='both' is not known; known: joint, sep"):
        build_optimizers(Holder((2,)), OmegaConf.merge(cfg("sgd"), {"mode": "both"}))


def test_flat_parameters_keep_the_parameters_dtype() -> None:
    params = [nn.Parameter(torch.ones(2, 3, dtype=torch.float64)) for _ in range(2)]
    flat = FlatParameters(params)
    assert flat.flat.dtype == torch.float64 and flat.members == 2 and flat.row == 6
    assert params[1].dtype == torch.float64 and params[1].sum().item() == 6.0
