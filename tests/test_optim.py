"""Joint vs separate optimizers move exactly the expected parameters; clipping is logged."""

import copy

import gymnasium as gym
import pytest
import torch
from omegaconf import OmegaConf

from acexp.models import SharedActorCritic, UnsharedActorCritic
from acexp.optim.modes import apply_update, build_optimizers, norm_after_clipping

OBS = gym.spaces.Box(-1.0, 1.0, (4,))
ACT = gym.spaces.Discrete(2)


def optim_cfg(mode: str, max_grad_norm: float | None = None) -> OmegaConf:
    return OmegaConf.create(
        {
            "mode": mode,
            "name": "sgd",
            "lr": 0.1,
            "actor_lr": 0.1,
            "critic_lr": 0.2,
            "max_grad_norm": max_grad_norm,
            "eps": 1e-5,
        }
    )


def changed_after(model: torch.nn.Module, mode: str, loss_of: str) -> set[str]:
    """Names of parameters that change when only `loss_of` (actor|critic) is optimised."""
    torch.manual_seed(0)
    optimizers = build_optimizers(model, optim_cfg(mode))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    dist, value = model(torch.randn(8, 4))
    loss = -dist.log_prob(torch.zeros(8)).mean() if loss_of == "actor" else value.pow(2).mean()
    apply_update(loss, optimizers, None)
    return {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}


def test_separate_optimizers_own_disjoint_parameters() -> None:
    model = SharedActorCritic(OBS, ACT, [16], "relu")
    actor, critic = build_optimizers(model, optim_cfg("separate"))
    actor_ids = {id(p) for p in actor.params}
    critic_ids = {id(p) for p in critic.params}
    assert actor_ids.isdisjoint(critic_ids)
    assert actor_ids | critic_ids == {id(p) for p in model.parameters()}
    assert actor.optimizer.param_groups[0]["lr"] == 0.1
    assert critic.optimizer.param_groups[0]["lr"] == 0.2


@pytest.mark.parametrize("mode", ["joint", "separate"])
def test_unshared_actor_loss_moves_only_the_actor(mode: str) -> None:
    model = UnsharedActorCritic(OBS, ACT, [16], "relu")
    assert changed_after(model, mode, "actor") == {
        n for n, _ in model.named_parameters() if n.startswith("actor")
    }
    assert changed_after(model, mode, "critic") == {
        n for n, _ in model.named_parameters() if n.startswith("critic")
    }


def test_shared_trunk_is_moved_by_both_losses_through_the_actor_optimizer() -> None:
    model = SharedActorCritic(OBS, ACT, [16], "relu")
    trunk = {n for n, _ in model.named_parameters() if n.startswith("trunk")}
    assert changed_after(model, "separate", "critic") == trunk | {
        "critic_head.weight",
        "critic_head.bias",
    }
    assert changed_after(model, "separate", "actor") == trunk | {
        "actor_head.logits.weight",
        "actor_head.logits.bias",
    }


def test_clipping_caps_the_norm_and_reports_the_pre_clip_norm() -> None:
    model = UnsharedActorCritic(OBS, ACT, [16], "relu")
    unclipped = copy.deepcopy(model)  # the same loss, differentiated without an optimizer
    obs = torch.randn(8, 4)
    (unclipped.value(obs) - 1000.0).pow(2).mean().backward()  # a huge gradient
    pre_clip = torch.nn.utils.get_total_norm([p.grad for p in unclipped.critic_parameters()])
    optimizers = build_optimizers(model, optim_cfg("joint", 0.5))
    _, value = model(obs)
    norms = apply_update((value - 1000.0).pow(2).mean(), optimizers, 0.5)
    before = norms["joint"].item()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    grad_norm = torch.nn.utils.get_total_norm(grads).item()
    assert pre_clip.item() > 100.0 and before == pytest.approx(pre_clip.item(), rel=1e-5)
    assert grad_norm == pytest.approx(0.5, rel=1e-4)  # the optimizer stepped a clipped gradient
    assert norm_after_clipping(before, 0.5) == pytest.approx(grad_norm, rel=1e-4)


def test_no_clipping_leaves_the_gradient() -> None:
    model = UnsharedActorCritic(OBS, ACT, [16], "relu")
    optimizers = build_optimizers(model, optim_cfg("separate", None))
    _, value = model(torch.randn(8, 4))
    norms = apply_update((value - 1000.0).pow(2).mean(), optimizers, None)
    before = norms["critic"].item()
    assert norm_after_clipping(before, None) == before > 100.0
    assert norms["actor"].item() == 0.0
    grads = [p.grad for p in model.critic_parameters()]
    assert torch.nn.utils.get_total_norm(grads).item() == pytest.approx(before)  # untouched


def test_norm_after_clipping_by_hand() -> None:
    assert norm_after_clipping(2.0, 0.5) == pytest.approx(0.5, rel=1e-5)
    assert norm_after_clipping(0.25, 0.5) == 0.25  # below the cap: unchanged
    assert norm_after_clipping(3.0, None) == 3.0


def adam_cfg(mode: str) -> OmegaConf:
    cfg = optim_cfg(mode, max_grad_norm=0.5)
    cfg.name, cfg.lr, cfg.actor_lr, cfg.critic_lr = "adam", 1e-3, 1e-3, 2e-3
    return cfg


def reference_optimizers(model: torch.nn.Module, mode: str) -> list[torch.optim.Optimizer]:
    """What acexp stepped before flat buffers: torch's Adam over the parameters one by one."""
    if mode == "joint":
        groups = [(list(model.parameters()), 1e-3)]
    else:
        groups = [(model.actor_parameters(), 1e-3), (model.critic_parameters(), 2e-3)]
    return [torch.optim.Adam(params, lr=lr, eps=1e-5) for params, lr in groups]


def a2c_like_loss(model: torch.nn.Module, step: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(step)
    obs = torch.randn(16, 4, generator=generator)
    actions = torch.randint(0, 2, (16,), generator=generator)
    log_prob, entropy, value = model.evaluate_actions(obs, actions)
    return -(log_prob * obs[:, 0]).mean() + (value - 3.0).pow(2).mean() - 0.01 * entropy.mean()


@pytest.mark.parametrize("mode", ["joint", "separate"])
def test_flat_buffers_step_as_torch_adam_with_clip_grad_norm(mode: str) -> None:
    torch.manual_seed(0)
    ours = SharedActorCritic(OBS, ACT, [16, 16], "tanh")
    reference = SharedActorCritic(OBS, ACT, [16, 16], "tanh")
    reference.load_state_dict(ours.state_dict())
    optimizers = build_optimizers(ours, adam_cfg(mode))
    torch_optimizers = reference_optimizers(reference, mode)
    for step in range(20):
        norms = apply_update(a2c_like_loss(ours, step), optimizers, 0.5)
        for optimizer in torch_optimizers:
            optimizer.zero_grad()
        a2c_like_loss(reference, step).backward()
        for optimizer, named in zip(torch_optimizers, optimizers, strict=True):
            params = optimizer.param_groups[0]["params"]
            norm = torch.nn.utils.clip_grad_norm_(params, 0.5)
            assert norms[named.name].item() == pytest.approx(norm.item(), rel=1e-5)
            optimizer.step()
    for (name, p), q in zip(ours.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_parameters_and_gradients_live_in_the_flat_buffers() -> None:
    model = UnsharedActorCritic(OBS, ACT, [16], "relu")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    (named,) = build_optimizers(model, optim_cfg("joint"))
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n])  # moving them kept their values
    flat = named.flat.flat
    assert all(
        p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr() for p in named.params
    )
    model.zero_grad(set_to_none=True)  # detaches the views; the next update reattaches them
    _, value = model(torch.randn(8, 4))
    apply_update(value.pow(2).mean(), [named], None)
    grads = torch.cat([p.grad.flatten() for p in named.params])
    assert grads.abs().sum() > 0
    assert torch.equal(grads, named.flat.grad)  # SGD stepped exactly these gradients
    flat_before = flat.detach().clone()
    model.load_state_dict({n: torch.zeros_like(v) for n, v in model.state_dict().items()})
    assert flat.abs().sum() == 0 < flat_before.abs().sum()  # loading weights writes the buffer


def test_channels_last_weights_keep_their_layout() -> None:
    from acexp.models.member_layers import MemberConv2d
    from acexp.optim.flat_params import FlatParameters

    conv = MemberConv2d(4, 8, 3, 1, members=2)
    weight = conv.weight.detach().clone()
    flat = FlatParameters(list(conv.parameters()))
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv.weight)
    assert torch.equal(conv.weight, weight)
    conv(torch.randn(2, 2 * 4, 6, 6)).sum().backward()  # [batch, members * channels, H, W]
    assert conv.weight.grad.data_ptr() == flat.grad.data_ptr()


def test_optimizer_state_saved_per_parameter_still_loads() -> None:
    """Checkpoints of earlier acexp hold Adam moments per parameter: they resume the same."""
    torch.manual_seed(0)
    ours = UnsharedActorCritic(OBS, ACT, [16], "tanh")
    reference = UnsharedActorCritic(OBS, ACT, [16], "tanh")
    reference.load_state_dict(ours.state_dict())
    (torch_adam,) = reference_optimizers(reference, "joint")
    for step in range(3):
        torch_adam.zero_grad()
        a2c_like_loss(reference, step).backward()
        torch_adam.step()
    ours.load_state_dict(reference.state_dict())
    (named,) = build_optimizers(ours, adam_cfg("joint"))
    named.load_state_dict(copy.deepcopy(torch_adam.state_dict()))  # as if read from a file
    for step in range(3, 6):
        apply_update(a2c_like_loss(ours, step), [named], None)
        torch_adam.zero_grad()
        a2c_like_loss(reference, step).backward()
        torch_adam.step()
    for p, q in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
