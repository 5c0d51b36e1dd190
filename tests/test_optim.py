"""Joint vs separate optimizers move exactly the expected parameters; clipping is logged."""

import gymnasium as gym
import pytest
import torch
from omegaconf import OmegaConf

from acexp.models import SharedActorCritic, UnsharedActorCritic
from acexp.optim import apply_update, build_optimizers, norm_after_clipping

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
    optimizers = build_optimizers(model, optim_cfg("joint", 0.5))
    _, value = model(torch.randn(8, 4))
    loss = (value - 1000.0).pow(2).mean()  # a huge gradient
    norms = apply_update(loss, optimizers, 0.5)
    before = norms["joint"].item()
    after = norm_after_clipping(before, 0.5)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    grad_norm = torch.nn.utils.get_total_norm(grads).item()
    assert before > 100.0
    assert after == pytest.approx(0.5, rel=1e-4)
    assert grad_norm == pytest.approx(after, rel=1e-4)


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
