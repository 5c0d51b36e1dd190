"""Diagonal Gaussian policy head for Box action spaces."""

import math

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def standard_log_prob(z: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(a; mean, std) summed over the action dims, given z = (a - mean) / std."""
    return (-0.5 * z.square() - log_std - HALF_LOG_2PI).flatten(1).sum(-1)


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

    def evaluate(
        self, features: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi(a) and the entropy, as `self(features)` gives them, with fewer autograd nodes."""
        mean = self.mean(features).reshape(-1, *self.shape)
        log_std = self.log_std.reshape(self.shape)
        log_prob = standard_log_prob((actions - mean) * torch.exp(-log_std), log_std)
        entropy = (0.5 + HALF_LOG_2PI + log_std).sum().expand(mean.shape[0])
        return log_prob, entropy

    def sample(
        self, features: torch.Tensor, with_log_prob: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """An action mean + std * noise (as `self(features).sample()`); its log-prob if asked."""
        mean = self.mean(features).reshape(-1, *self.shape)
        log_std = self.log_std.reshape(self.shape)
        noise = torch.randn_like(mean)
        action = mean + log_std.exp() * noise
        if not with_log_prob:
            return action, None
        return action, standard_log_prob(noise, log_std)
