"""Diagonal Gaussian policy head for Box action spaces."""

import math

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from acexp.models.member_layers import MemberLinear

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def standard_log_prob(z: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(a; mean, std) summed over the action dims, given z = (a - mean) / std.

    z is [members, batch, *action shape]; the result [members, batch].
    """
    return (-0.5 * z.square() - log_std - HALF_LOG_2PI).flatten(2).sum(-1)


class GaussianHead(nn.Module):
    """A mean from the features and a state-independent log std parameter (PPO, SB3, CleanRL).

    The distribution is `Independent(Normal, 1)`: log-prob and entropy are summed over the
    action dimensions. Samples are unbounded; the env wrapper clips them when stepping.
    """

    def __init__(
        self, in_dim: int, space: gym.spaces.Box, log_std_init: float = 0.0, members: int = 1
    ) -> None:
        super().__init__()
        self.shape = space.shape
        dim = int(torch.tensor(space.shape).prod())
        self.mean = MemberLinear(in_dim, dim, members)
        self.log_std = nn.Parameter(torch.full((members, dim), float(log_std_init)))

    def _mean_and_log_std(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean [members, batch, *shape] and the log std [members, 1, *shape]."""
        members, batch = features.shape[:2]
        mean = self.mean(features).reshape(members, batch, *self.shape)
        return mean, self.log_std.reshape(members, 1, *self.shape)

    def forward(self, features: torch.Tensor, one_member: bool = False) -> Distribution:
        """The distribution over [members, batch], or over [batch] for `one_member`."""
        mean, log_std = self._mean_and_log_std(features)
        if one_member:
            mean, log_std = mean[0], log_std[0]
        return Independent(Normal(mean, log_std.exp().expand_as(mean)), len(self.shape))

    def evaluate(
        self, features: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi(a) and the entropy, as `self(features)` gives them, with fewer autograd nodes."""
        mean, log_std = self._mean_and_log_std(features)
        log_prob = standard_log_prob((actions - mean) * torch.exp(-log_std), log_std)
        entropy = (0.5 + HALF_LOG_2PI + log_std).flatten(1).sum(-1, keepdim=True)
        return log_prob, entropy.expand(mean.shape[:2])

    def sample(
        self, features: torch.Tensor, with_log_prob: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """An action mean + std * noise (as `self(features).sample()`); its log-prob if asked."""
        mean, log_std = self._mean_and_log_std(features)
        noise = torch.randn_like(mean)
        action = mean + log_std.exp() * noise
        if not with_log_prob:
            return action, None
        return action, standard_log_prob(noise, log_std)
