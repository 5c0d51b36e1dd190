"""Building blocks chosen from the observation and action spaces."""

import itertools
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, Distribution

from acexp.errors import ConfigError
from acexp.models.cnn import NatureCNN
from acexp.models.gaussian import GaussianHead
from acexp.models.member_layers import MemberConv2d, MemberLinear
from acexp.models.normalization import is_image

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "elu": F.elu,
}

# Argument validation costs more than the sampling itself at these sizes.
Distribution.set_default_validate_args(False)


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation '{name}'; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Linear layers, each followed by the activation, computed in one module call.

    At RL sizes (a batch of 16, width 64) a module call costs as much as its arithmetic, so
    the layers are applied functionally rather than as a Sequential of Linear and Tanh.
    """

    def __init__(self, in_dim: int, hidden_sizes: list[int], act: str, members: int = 1) -> None:
        super().__init__()
        self.activation = activation(act)
        sizes = [in_dim, *hidden_sizes]
        self.layers = nn.ModuleList(
            MemberLinear(a, b, members) for a, b in itertools.pairwise(sizes)
        )
        self.out_dim = sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = self.activation(torch.baddbmm(layer.bias, x, layer.weight))
        return x

    def rename_sequential_keys(self, state_dict: dict, prefix: str) -> None:
        """Runs saved before acexp 0.2 hold Sequential(Linear, act, Linear, act, ...) keys:
        rename them, in place, to this module's."""
        for i in range(len(self.layers)):
            for name in ("weight", "bias"):
                if f"{prefix}{2 * i}.{name}" in state_dict:
                    value = state_dict.pop(f"{prefix}{2 * i}.{name}")
                    state_dict[f"{prefix}layers.{i}.{name}"] = value

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        self.rename_sequential_keys(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class OneHot(nn.Module):
    """Encodes Discrete observations [members, batch] (integers) as one-hot float vectors."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(obs.long(), self.n).float()


class FlattenFloat(nn.Module):
    """Flattens vector Box observations to [members, batch, features] float32."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.reshape(obs.shape[0], obs.shape[1], -1).float()


SUPPORTED_OBSERVATIONS = "Discrete, Box (vectors, flattened) or uint8 image Box (H,W[,C] or C,H,W)"
SUPPORTED_ACTIONS = "Discrete (categorical) or Box (Gaussian)"


def make_encoder(space: gym.Space, members: int = 1) -> tuple[nn.Module, int]:
    """The input layer for an observation space and its output width."""
    if isinstance(space, gym.spaces.Discrete):
        return OneHot(int(space.n)), int(space.n)
    if is_image(space):
        cnn = NatureCNN(space, members)
        return cnn, cnn.out_dim
    if isinstance(space, gym.spaces.Box):
        return FlattenFloat(), int(np.prod(space.shape))
    raise ConfigError(f"unsupported observation space {space}; supported: {SUPPORTED_OBSERVATIONS}")


class CategoricalHead(nn.Module):
    """Logits over a Discrete action space."""

    def __init__(self, in_dim: int, n: int, members: int = 1) -> None:
        super().__init__()
        self.logits = MemberLinear(in_dim, n, members)

    def forward(self, features: torch.Tensor, one_member: bool = False) -> Distribution:
        """The distribution over [members, batch], or over [batch] for `one_member`."""
        logits = self.logits(features)
        return Categorical(logits=logits[0] if one_member else logits)

    def evaluate(
        self, features: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi(a) and the entropy, as `self(features)` gives them, with fewer autograd nodes."""
        log_p = self.logits(features).log_softmax(-1)
        return _pick(log_p, actions), -(log_p.exp() * log_p).sum(-1)

    def sample(
        self, features: torch.Tensor, with_log_prob: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """An action by the Gumbel-max trick, argmax(logits + Gumbel noise); its log-prob if asked.

        The same distribution as `self(features).sample()`, at about half the cost, because
        no normalised Categorical is built on the acting path.
        """
        logits = self.logits(features)
        action = (logits - torch.empty_like(logits).exponential_().log()).argmax(-1)
        if not with_log_prob:
            return action, None
        return action, _pick(logits.log_softmax(-1), action)


def _pick(log_p: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log_p[..., actions]: each row's log-probability of its action."""
    return log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def make_policy_head(
    space: gym.Space, in_dim: int, log_std_init: float = 0.0, members: int = 1
) -> nn.Module:
    """The actor's output layer for an action space; it returns a torch Distribution."""
    if isinstance(space, gym.spaces.Discrete):
        return CategoricalHead(in_dim, int(space.n), members)
    if isinstance(space, gym.spaces.Box):
        return GaussianHead(in_dim, space, log_std_init, members)
    raise ConfigError(f"unsupported action space {space}; supported: {SUPPORTED_ACTIONS}")


def tower(
    space: gym.Space, hidden_sizes: list[int], act: str, members: int = 1
) -> tuple[nn.Sequential, int]:
    """Encoder for the observation space followed by an MLP; returns it and its output width."""
    encoder, width = make_encoder(space, members)
    body = MLP(width, hidden_sizes, act, members)
    return nn.Sequential(encoder, body), body.out_dim


def orthogonal_init(model: nn.Module, policy_head: nn.Module, value_head: nn.Module) -> None:
    """Orthogonal weights, zero biases; small policy logits, unit-gain value (SB3, CleanRL)."""
    for module, gain in ((model, 2**0.5), (policy_head, 0.01), (value_head, 1.0)):
        for layer in module.modules():
            if isinstance(layer, MemberLinear | MemberConv2d):
                # via a contiguous copy: orthogonal_ cannot view channels-last conv weights
                with torch.no_grad():
                    for weight in layer.weights():  # each member's own orthogonal matrix
                        weight.copy_(nn.init.orthogonal_(torch.empty(weight.shape), gain))
                nn.init.zeros_(layer.bias)
