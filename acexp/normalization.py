"""Observation normalisation of SPEC C, as modules whose state travels in the model's state dict.

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
    """SPEC C: uint8 images / 255; a finite Box to [0, 1] by its bounds, per element; else as is."""
    if isinstance(space, gym.spaces.Box) and space.dtype == np.uint8:
        # a fresh float tensor, divided in place: half the memory traffic of float() / 255
        return obs.to(torch.float32, copy=True).div_(255.0)
    if has_finite_bounds(space):
        low = torch.as_tensor(space.low, dtype=torch.float32, device=obs.device)
        high = torch.as_tensor(space.high, dtype=torch.float32, device=obs.device)
        return (obs.float() - low) / (high - low)
    return obs


class BoundsNormalizer(nn.Module):
    """`normalize_observation` with the bounds held as buffers (so `.to(device)` moves them)."""

    def __init__(self, space: gym.spaces.Box) -> None:
        super().__init__()
        self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32))
        self.register_buffer("range", torch.as_tensor(space.high - space.low, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs.float() - self.low) / self.range


class RunningNormalizer(nn.Module):
    """(obs - mean) / sqrt(var + eps), clipped to +-clip; statistics as state-dict buffers.

    The statistics change only through `update()`, which the trainer calls on each batch it
    collects (Chan et al.'s parallel mean/variance, as gymnasium's NormalizeObservation).
    """

    def __init__(self, shape: tuple[int, ...], eps: float = 1e-8, clip: float = 10.0) -> None:
        super().__init__()
        self.eps, self.clip = eps, clip
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))

    @torch.no_grad()
    def update(self, obs: torch.Tensor) -> None:
        batch = obs.to(self.mean.device, torch.float64)
        batch_mean, batch_var, n = batch.mean(0), batch.var(0, unbiased=False), batch.shape[0]
        delta, total = batch_mean - self.mean, self.count + n
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.mean.add_(delta * n / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        scaled = (obs.to(torch.float64) - self.mean) / torch.sqrt(self.var + self.eps)
        return scaled.clamp(-self.clip, self.clip).float()


def make_normalizer(space: gym.Space, mode: str) -> nn.Module:
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
        return BoundsNormalizer(space)
    return RunningNormalizer(space.shape)
