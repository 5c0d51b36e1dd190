"""The two architectures of SPEC A: a shared trunk with two heads, or two separate networks."""

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Distribution

from acexp.models.layers import make_policy_head, orthogonal_init, tower
from acexp.normalization import RunningNormalizer, make_normalizer
from acexp.registry import register_model


class ActorCritic(nn.Module):
    """forward(obs) -> (action distribution, value [batch]).

    `actor_parameters()` and `critic_parameters()` partition the parameters between the two
    optimizers of `optim=separate`; a shared trunk belongs to the actor side.
    """

    def forward(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        raise NotImplementedError

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)[1]

    def act(
        self, obs: torch.Tensor, with_log_prob: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(sampled action, value, its log-prob or None) for collecting rollouts.

        No distribution object is built: acting is the hot path of A2C on small envs.
        """
        raise NotImplementedError

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log pi(a|s), entropy, V(s)) for training: the numbers of `forward`, built cheaper."""
        raise NotImplementedError

    def observe(self, obs: torch.Tensor) -> None:
        """Update running observation statistics (env.obs_norm=running) with a collected batch."""
        if self.has_running_obs_norm:
            self.obs_norm.update(obs)

    @property
    def has_running_obs_norm(self) -> bool:
        """Whether the input statistics move while a rollout is collected."""
        return isinstance(self.obs_norm, RunningNormalizer)

    def actor_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def critic_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError


@register_model("shared")
class SharedActorCritic(ActorCritic):
    """One trunk (encoder + MLP) feeding an actor head and a critic head."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: list[int],
        activation: str,
        init: str = "orthogonal",
        obs_norm: str = "none",
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.obs_norm = make_normalizer(observation_space, obs_norm)
        self.trunk, width = tower(observation_space, hidden_sizes, activation)
        self.actor_head = make_policy_head(action_space, width, log_std_init)
        self.critic_head = nn.Linear(width, 1)
        if init == "orthogonal":
            orthogonal_init(self, self.actor_head, self.critic_head)

    def forward(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        features = self.trunk(self.obs_norm(obs))
        return self.actor_head(features), self.critic_head(features).squeeze(-1)

    def act(
        self, obs: torch.Tensor, with_log_prob: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        features = self.trunk(self.obs_norm(obs))
        action, log_prob = self.actor_head.sample(features, with_log_prob)
        return action, self.critic_head(features).squeeze(-1), log_prob

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.trunk(self.obs_norm(obs))
        log_prob, entropy = self.actor_head.evaluate(features, actions)
        return log_prob, entropy, self.critic_head(features).squeeze(-1)

    def actor_parameters(self) -> list[nn.Parameter]:
        # The trunk is stepped once per update, by the actor optimizer, with the gradient
        # of the whole loss (actor + vf_coef * critic - ent_coef * entropy).
        return [*self.trunk.parameters(), *self.actor_head.parameters()]

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic_head.parameters())


@register_model("unshared")
class UnsharedActorCritic(ActorCritic):
    """Two complete networks: the actor and the critic share no parameters."""

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: list[int],
        activation: str,
        init: str = "orthogonal",
        obs_norm: str = "none",
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.obs_norm = make_normalizer(observation_space, obs_norm)
        self.actor, width = tower(observation_space, hidden_sizes, activation)
        self.actor_head = make_policy_head(action_space, width, log_std_init)
        self.critic, width = tower(observation_space, hidden_sizes, activation)
        self.critic_head = nn.Linear(width, 1)
        if init == "orthogonal":
            orthogonal_init(self, self.actor_head, self.critic_head)

    def forward(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        obs = self.obs_norm(obs)
        dist = self.actor_head(self.actor(obs))
        return dist, self.critic_head(self.critic(obs)).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic_head(self.critic(self.obs_norm(obs))).squeeze(-1)

    def act(
        self, obs: torch.Tensor, with_log_prob: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        obs = self.obs_norm(obs)
        action, log_prob = self.actor_head.sample(self.actor(obs), with_log_prob)
        return action, self.critic_head(self.critic(obs)).squeeze(-1), log_prob

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        obs = self.obs_norm(obs)
        log_prob, entropy = self.actor_head.evaluate(self.actor(obs), actions)
        return log_prob, entropy, self.critic_head(self.critic(obs)).squeeze(-1)

    def actor_parameters(self) -> list[nn.Parameter]:
        return [*self.actor.parameters(), *self.actor_head.parameters()]

    def critic_parameters(self) -> list[nn.Parameter]:
        return [*self.critic.parameters(), *self.critic_head.parameters()]
