"""Observation normalisation, as modules whose state travels in the model's state dict.

`env.obs_norm` picks one: `none`, `bounds` (scale a finite Box to [0, 1] by its bounds) or
`running` (running mean/std, updated on every collected batch, frozen at evaluation). Images
are always scaled by 1/255 in the CNN encoder, once, so no mode touches them here.
"""

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from acexp.errors import ConfigError

OBS_NORMS = ["none", "bounds", "running"]


def is_image(space: gym.Space) -> bool:
    """A uint8 Box of rank 2 (H, W) or 3 (channels first or last): pixels for a CNN."""
    return (
        isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) in (2, 3)
    )


def has_finite_bounds(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and bool(
        np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
    )


def normalize_observation(obs: torch.Tensor, space: gym.Space) -> torch.Tensor:
    """uint8 images / 255; a finite Box to [0, 1] by its bounds, per element; else as is."""
    if isinstance(space, gym.spaces.Box) and space.dtype == np.uint8:
        # a fresh float tensor, divided in place: half the memory traffic of float() / 255
        return obs.to(torch.float32, copy=True).div_(255.0)
    if has_finite_bounds(space):
        low = torch.as_tensor(space.low, dtype=torch.float32, device=obs.device)
        high = torch.as_tensor(space.high, dtype=torch.float32, device=obs.device)
        return (obs.float() - low) / (high - low)
    return obs


class BoundsNormalizer(nn.Module):
    """`normalize_observation` with the bounds held as per-member buffers (`.to(device)`
    moves them; a member's run saves them in its model.pt)."""

    def __init__(self, space: gym.spaces.Box, members: int = 1) -> None:
        super().__init__()
        low = torch.as_tensor(space.low, dtype=torch.float32)
        span = torch.as_tensor(space.high - space.low, dtype=torch.float32)
        self.register_buffer("low", low.expand(members, *low.shape).clone())
        self.register_buffer("range", span.expand(members, *span.shape).clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs.float() - self.low.unsqueeze(1)) / self.range.unsqueeze(1)


class RunningNormalizer(nn.Module):
    """(obs - mean) / sqrt(var + eps), clipped to +-clip; statistics as state-dict buffers.

    Each member keeps its own statistics ([members, *shape]). They change only through
    `update()`, which the trainer calls on each batch it collects (Chan et al.'s parallel
    mean/variance, as gymnasium's NormalizeObservation).
    """

    def __init__(
        self, shape: tuple[int, ...], eps: float = 1e-8, clip: float = 10.0, members: int = 1
    ) -> None:
        super().__init__()
        self.eps, self.clip = eps, clip
        self.register_buffer("mean", torch.zeros((members, *shape), dtype=torch.float64))
        self.register_buffer("var", torch.ones((members, *shape), dtype=torch.float64))
        self.register_buffer("count", torch.full((members,), eps, dtype=torch.float64))

    @torch.no_grad()
    def update(self, obs: torch.Tensor, members: torch.Tensor | None = None) -> None:
        """Fold in a batch [members, batch, *shape]; only the members marked in `members`
        ([members] bool) when given."""
        batch = obs.to(self.mean.device, torch.float64)
        batch_mean, batch_var, n = batch.mean(1), batch.var(1, unbiased=False), batch.shape[1]
        count = self.count.reshape(-1, *([1] * (batch_mean.dim() - 1)))
        delta, total = batch_mean - self.mean, count + n
        m2 = self.var * count + batch_var * n + delta.square() * count * n / total
        mean, var, new_count = self.mean + delta * n / total, m2 / total, self.count + n
        if members is not None:
            keep = members.to(self.mean.device).reshape(count.shape)
            mean, var = torch.where(keep, mean, self.mean), torch.where(keep, var, self.var)
            new_count = torch.where(keep.flatten(), new_count, self.count)
        self.mean.copy_(mean)
        self.var.copy_(var)
        self.count.copy_(new_count)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean.unsqueeze(1), self.var.unsqueeze(1)
        scaled = (obs.to(torch.float64) - mean) / torch.sqrt(var + self.eps)
        return scaled.clamp(-self.clip, self.clip).float()


def make_normalizer(space: gym.Space, mode: str, members: int = 1) -> nn.Module:
    """The observation normaliser for `env.obs_norm`; Identity where there is nothing to do."""
    if mode not in OBS_NORMS:
        raise ConfigError(f"env.obs_norm='{mode}' is not known; known: {', '.join(OBS_NORMS)}")
    if mode == "none" or is_image(space) or not isinstance(space, gym.spaces.Box):
        return nn.Identity()  # images: the CNN scales by 1/255; Discrete: one-hot
    if mode == "bounds":
        if not has_finite_bounds(space):
            raise ConfigError(
                f"env.obs_norm=bounds needs finite bounds, but the observation space is {space}; "
                "use env.obs_norm=running"
            )
        return BoundsNormalizer(space, members)
    return RunningNormalizer(space.shape, members=members)
