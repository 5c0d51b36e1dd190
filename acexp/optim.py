"""Optimizer modes of SPEC A4 and gradient clipping of SPEC A5.

`joint`: one optimizer steps every parameter on the summed loss.
`separate`: an actor optimizer (actor_lr) steps the actor-side parameters and a critic
optimizer (critic_lr) the critic-side ones. Both modes backpropagate the same summed loss
once; because the two parameter sets are disjoint, each optimizer sees exactly the gradient
of its own loss term, and a shared trunk (actor side) is stepped once per update.
"""

from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import nn

from acexp.errors import ConfigError
from acexp.flat_params import FlatParameters
from acexp.models import ActorCritic

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}


@dataclass
class NamedOptimizer:
    """An optimizer with its name (joint, actor, critic) and the parameters it clips and steps.

    The optimizer steps `flat.flat`, one buffer holding all of `params` (see flat_params).
    """

    name: str
    optimizer: torch.optim.Optimizer
    flat: FlatParameters

    @property
    def params(self) -> list[nn.Parameter]:
        return self.flat.params

    def load_state_dict(self, state: dict) -> None:
        """Load optimizer state, also as saved per parameter by earlier acexp."""
        (group,) = state["param_groups"]
        if len(group["params"]) > 1:
            per_param = [state["state"][i] for i in group["params"] if i in state["state"]]
            flat_state = {0: self.flat.flatten_state(per_param)} if per_param else {}
            state = {"state": flat_state, "param_groups": [{**group, "params": [0]}]}
        self.optimizer.load_state_dict(state)


def _make(
    name: str, kind: str, params: list[nn.Parameter], lr: float, cfg: DictConfig
) -> NamedOptimizer:
    """The optimizer `kind` with cfg's settings over `params`, moved into one flat buffer."""
    if kind not in OPTIMIZERS:
        raise ConfigError(f"optim.name='{kind}' is not known; known: {', '.join(OPTIMIZERS)}")
    kwargs: dict = {"lr": lr}
    if kind == "adam":
        # The fused kernel steps about 3x faster than foreach on small CPU models.
        kwargs.update(eps=float(cfg.eps), fused=True)
    elif kind == "rmsprop":
        kwargs.update(eps=float(cfg.eps), alpha=float(cfg.get("alpha", 0.99)), foreach=True)
    else:
        kwargs.update(momentum=float(cfg.get("momentum", 0.0)), foreach=True)
    flat = FlatParameters(params)
    return NamedOptimizer(name, OPTIMIZERS[kind]([flat.flat], **kwargs), flat)


def build_optimizers(model: ActorCritic, cfg: DictConfig) -> list[NamedOptimizer]:
    """One optimizer (mode joint) or an actor and a critic optimizer (mode separate)."""
    if cfg.mode == "joint":
        params = list(model.parameters())
        return [_make("joint", cfg.name, params, float(cfg.lr), cfg)]
    if cfg.mode == "separate":
        groups = {
            "actor": (model.actor_parameters(), float(cfg.actor_lr)),
            "critic": (model.critic_parameters(), float(cfg.critic_lr)),
        }
        return [_make(name, cfg.name, params, lr, cfg) for name, (params, lr) in groups.items()]
    raise ConfigError(f"optim.mode='{cfg.mode}' is not known; known: joint, separate")


def apply_update(
    loss: torch.Tensor, optimizers: list[NamedOptimizer], max_grad_norm: float | None
) -> dict[str, torch.Tensor]:
    """Backpropagate once, clip each optimizer's gradients by global norm, step.

    Returns each optimizer's gradient norm before clipping, as a tensor, so that the caller
    decides when to pay for a host sync (`norm_after_clipping` gives the norm after).
    """
    for named in optimizers:
        named.flat.zero_grad()
    loss.backward()
    norms: dict[str, torch.Tensor] = {}
    for named in optimizers:
        grad = named.flat.grad  # every parameter's gradient, in one tensor
        norm = torch.linalg.vector_norm(grad)
        if max_grad_norm:  # as clip_grad_norm_: scale by max / (norm + 1e-6) when below 1
            grad.mul_((max_grad_norm / (norm + 1e-6)).clamp_(max=1.0))
        norms[named.name] = norm
        named.optimizer.step()
    return norms


def norm_after_clipping(norm: float, max_grad_norm: float | None) -> float:
    """The gradient norm after clip_grad_norm_, which scales by max / (norm + 1e-6) if below 1."""
    if not max_grad_norm:
        return norm
    return norm * min(max_grad_norm / (norm + 1e-6), 1.0)


def learning_rates(optimizers: list[NamedOptimizer]) -> dict[str, float]:
    return {named.name: named.optimizer.param_groups[0]["lr"] for named in optimizers}
