"""Diagonal Gaussian policy head for Box action spaces."""

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal


class GaussianHead(nn.Module):
    """A mean from the features and a state-independent log std parameter (PPO, SB3, CleanRL).

    The distribution is `Independent(Normal, 1)`: log-prob and entropy are summed over the
    action dimensions. Samples are unbounded; the env wrapper clips them when stepping.
    """

    def __init__(self, in_dim: int, space: gym.spaces.Box, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.shape = space.shape
        dim = int(torch.tensor(space.shape).prod())
        self.mean = nn.Linear(in_dim, dim)
        self.log_std = nn.Parameter(torch.full((dim,), float(log_std_init)))

    def forward(self, features: torch.Tensor) -> Distribution:
        mean = self.mean(features).reshape(-1, *self.shape)
        std = self.log_std.exp().reshape(self.shape).expand_as(mean)
        return Independent(Normal(mean, std), len(self.shape))

    def sample(self, features: torch.Tensor) -> torch.Tensor:
        """An action for acting (the same as `self(features).sample()`)."""
        return self(features).sample()
