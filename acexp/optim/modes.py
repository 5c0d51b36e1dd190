"""Optimizer modes (`optim.mode`) and gradient clipping (`optim.max_grad_norm`).

`joint`: one optimizer steps every parameter on the summed loss.
`separate`: an actor optimizer (actor_lr) steps the actor-side parameters and a critic
optimizer (critic_lr) the critic-side ones. Both modes backpropagate the same summed loss
once; because the two parameter sets are disjoint, each optimizer sees exactly the gradient
of its own loss term, and a shared trunk (actor side) is stepped once per update.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch import nn

from acexp.errors import ConfigError
from acexp.models import ActorCritic
from acexp.optim.flat_params import FlatParameters

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}


@dataclass
class NamedOptimizer:
    """An optimizer with its name (joint, actor, critic) and the parameters it clips and steps.

    The optimizer steps one buffer holding all of `params`, as one tensor or one row per
    member (see flat_params); `member_lrs` is set when the members of a batch have different
    learning rates.
    """

    name: str
    optimizer: torch.optim.Optimizer
    flat: FlatParameters
    member_lrs: torch.Tensor | None = None

    @property
    def params(self) -> list[nn.Parameter]:
        return self.flat.params

    def set_lrs(self, lrs: Sequence[float]) -> None:
        """Each member's learning rate.

        torch.optim takes one learning rate per param group, and Adam, RMSprop and SGD move
        each element by lr times a step that does not depend on lr; so members with different
        rates step at lr 1 and each member's row of the step is scaled by its own rate.
        """
        (group,) = self.optimizer.param_groups
        # python floats: a numpy scalar in the optimizer's state is pickled as an object, and
        # weights_only loading of the checkpoint would refuse it
        lrs = [float(lr) for lr in lrs]
        if len(set(lrs)) == 1:
            group["lr"], self.member_lrs = lrs[0], None
            return
        group["lr"] = 1.0
        self.member_lrs = torch.tensor(
            lrs, dtype=self.flat.flat.dtype, device=self.flat.flat.device
        )
        self.member_lrs = self.member_lrs.unsqueeze(1)

    def lrs(self) -> list[float]:
        if self.member_lrs is None:
            return [self.optimizer.param_groups[0]["lr"]] * self.flat.members
        return self.member_lrs.squeeze(1).tolist()

    def step(self, members: Sequence[bool] | None = None) -> None:
        """Step every member, or the members `members` marks: the others' parameters and
        optimizer state (moments, Adam's step count) stay exactly as they were."""
        skipped = [] if members is None else [
            param for param, stepped in zip(self.flat.step_params, members, strict=True)
            if not stepped
        ]  # fmt: skip
        for param in skipped:
            param.grad = None  # torch.optim leaves a parameter without a gradient alone
        if self.member_lrs is None:
            self.optimizer.step()
        else:
            rows = self.flat.rows(self.flat.flat.data)
            before = rows.clone()
            self.optimizer.step()  # at lr 1
            rows.sub_(before).mul_(self.member_lrs).add_(before)
        if skipped:
            self.flat.attach_grads()

    def member_state_dict(self, member: int) -> dict:
        """Member `member`'s optimizer state as a single run's optimizer holds it."""
        state = self.optimizer.state_dict()  # keyed by step parameter: member k's is k
        own = state["state"].get(member, {})
        own = {
            key: value.clone() if torch.is_tensor(value) else value for key, value in own.items()
        }
        (group,) = state["param_groups"]
        return {
            "state": {0: own} if own else {},
            "param_groups": [{**group, "params": [0], "lr": self.lrs()[member]}],
        }

    def reset_member(self, member: int) -> None:
        """Forget member `member`'s optimizer state, as a new optimizer has none."""
        self.optimizer.state.pop(self.flat.step_params[member], None)

    def load_state_dict(self, state: dict) -> None:
        """Load a single run's optimizer state, also as saved per parameter by earlier acexp."""
        (group,) = state["param_groups"]
        if len(group["params"]) > 1:
            per_param = [state["state"][i] for i in group["params"] if i in state["state"]]
            flat_state = {0: self.flat.flatten_state(per_param)} if per_param else {}
            state = {"state": flat_state, "param_groups": [{**group, "params": [0]}]}
        self.optimizer.load_state_dict(state)


def _make(
    name: str, kind: str, params: list[nn.Parameter], lrs: list[float], cfg: DictConfig
) -> NamedOptimizer:
    """The optimizer `kind` with cfg's settings over `params`, moved into one flat buffer."""
    if kind not in OPTIMIZERS:
        raise ConfigError(f"optim.name='{kind}' is not known; known: {', '.join(OPTIMIZERS)}")
    kwargs: dict = {"lr": lrs[0]}
    if kind == "adam":
        # The fused kernel steps about 3x faster than foreach on small CPU models.
        kwargs.update(eps=float(cfg.eps), fused=True)
    elif kind == "rmsprop":
        kwargs.update(eps=float(cfg.eps), alpha=float(cfg.get("alpha", 0.99)), foreach=True)
    else:
        kwargs.update(momentum=float(cfg.get("momentum", 0.0)), foreach=True)
    flat = FlatParameters(params)
    named = NamedOptimizer(name, OPTIMIZERS[kind](flat.step_params, **kwargs), flat)
    named.set_lrs(lrs)
    return named


def build_optimizers(
    model: ActorCritic, cfg: DictConfig | Sequence[DictConfig]
) -> list[NamedOptimizer]:
    """One optimizer (mode joint) or an actor and a critic optimizer (mode separate).

    `cfg` is the `optim` group, or one per member of a batch: they may differ only in their
    learning rates.
    """
    cfgs = [cfg] if isinstance(cfg, DictConfig) else list(cfg)
    first = cfgs[0]
    if first.mode == "joint":
        params = list(model.parameters())
        return [_make("joint", first.name, params, [float(c.lr) for c in cfgs], first)]
    if first.mode == "separate":
        groups = {
            "actor": (model.actor_parameters(), [float(c.actor_lr) for c in cfgs]),
            "critic": (model.critic_parameters(), [float(c.critic_lr) for c in cfgs]),
        }
        return [
            _make(name, first.name, params, lrs, first) for name, (params, lrs) in groups.items()
        ]
    raise ConfigError(f"optim.mode='{first.mode}' is not known; known: joint, separate")


def apply_update(
    loss: torch.Tensor,
    optimizers: list[NamedOptimizer],
    max_grad_norm: float | torch.Tensor | None,
    members: Sequence[bool] | None = None,
) -> dict[str, torch.Tensor]:
    """Backpropagate once, clip each member's gradients by their global norm, step every
    member or those `members` marks.

    `loss` is summed over the members: their parameters are disjoint, so each member's
    gradient is that of its own loss. `max_grad_norm` is one per member ([members, 1], inf
    for none), one bound for all, or None (no clipping). Returns each optimizer's gradient
    norms before clipping, one per member, as a tensor, so that the caller decides when to
    pay for a host sync (`norm_after_clipping` gives the norm after).
    """
    for named in optimizers:
        named.flat.zero_grad()
    loss.sum().backward()
    norms: dict[str, torch.Tensor] = {}
    for named in optimizers:
        grad = named.flat.rows(named.flat.grad)  # each member's gradients, in one row
        norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
        # as clip_grad_norm_: scale by max / (norm + 1e-6) when below 1, computed as torch
        # divides a number by a tensor (1 / x, times max), so that a bound given as a tensor
        # scales exactly as the same bound given as a number
        if isinstance(max_grad_norm, torch.Tensor) or max_grad_norm:
            grad.mul_((norm + 1e-6).reciprocal_().mul_(max_grad_norm).clamp_(max=1.0))
        norms[named.name] = norm.squeeze(1)
        named.step(members)
    return norms


def norm_after_clipping(norm: float, max_grad_norm: float | None) -> float:
    """The gradient norm after clip_grad_norm_, which scales by max / (norm + 1e-6) if below 1."""
    if not max_grad_norm or math.isinf(max_grad_norm):
        return norm
    return norm * min(max_grad_norm / (norm + 1e-6), 1.0)


def learning_rates(optimizers: list[NamedOptimizer]) -> dict[str, list[float]]:
    """Each optimizer's learning rate, one per member."""
    return {named.name: named.lrs() for named in optimizers}
