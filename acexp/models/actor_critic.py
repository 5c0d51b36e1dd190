"""The two architectures: a shared trunk with two heads, or two separate networks."""

from typing import NamedTuple

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Distribution

from acexp.algos.registry import register_model
from acexp.models.layers import MLP, make_policy_head, orthogonal_init, tower
from acexp.models.member_layers import MemberLinear
from acexp.models.normalization import RunningNormalizer, make_normalizer


class Arch(NamedTuple):
    """The `arch` settings a model's networks are built from."""

    hidden_sizes: list[int]
    activation: str
    log_std_init: float


class ActorCritic(nn.Module):
    """forward(obs) -> (action distribution, value), for one run or a batch of runs (members).

    Every parameter and buffer has a leading member dimension: member k's slice is the
    model of run k, and a single run is a batch of one. Inputs are [members, batch, ...];
    an input without the member dimension is taken as a batch of one member, and the
    outputs then have none either. The subclasses implement the member-first `_features`,
    `_act`, `_evaluate` and `_value`.

    `actor_parameters()` and `critic_parameters()` partition the parameters between the two
    optimizers of `optim=separate`; a shared trunk belongs to the actor side.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: list[int],
        activation: str,
        init: str = "orthogonal",
        obs_norm: str = "none",
        log_std_init: float = 0.0,
        members: int = 1,
    ) -> None:
        super().__init__()
        self.members = members
        self.obs_ndim = len(observation_space.shape or ())
        self.obs_norm = make_normalizer(observation_space, obs_norm, members)
        self.build(observation_space, action_space, Arch(hidden_sizes, activation, log_std_init))
        if init == "orthogonal":
            orthogonal_init(self, self.actor_head, self.critic_head)

    def build(self, observation_space: gym.Space, action_space: gym.Space, arch: Arch) -> None:
        """Make the networks: `actor_head`, `critic_head` and what feeds them."""
        raise NotImplementedError

    def tower(self, observation_space: gym.Space, arch: Arch) -> tuple[nn.Module, int]:
        """An encoder for the observations and an MLP of `arch`, and its output width."""
        return tower(observation_space, arch.hidden_sizes, arch.activation, self.members)

    def _lift(self, obs: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """`obs` with the member dimension, and whether it had to be added."""
        if obs.dim() == self.obs_ndim + 2:
            return obs, False
        return obs.unsqueeze(0), True

    def forward(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        obs, lifted = self._lift(obs)
        actor_features, critic_features = self._features(obs)
        dist = self.actor_head(actor_features, one_member=lifted)
        value = self.critic_head(critic_features).squeeze(-1)
        return dist, value[0] if lifted else value

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        obs, lifted = self._lift(obs)
        value = self._value(obs)
        return value[0] if lifted else value

    def act(
        self, obs: torch.Tensor, with_log_prob: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(sampled action, value, its log-prob or None) for collecting rollouts.

        No distribution object is built: acting is the hot path of A2C on small envs.
        """
        obs, lifted = self._lift(obs)
        action, value, log_prob = self._act(obs, with_log_prob)
        if not lifted:
            return action, value, log_prob
        return action[0], value[0], None if log_prob is None else log_prob[0]

    def evaluate_actions(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log pi(a|s), entropy, V(s)) for training: the numbers of `forward`, built cheaper."""
        obs, lifted = self._lift(obs)
        outputs = self._evaluate(obs, actions.unsqueeze(0) if lifted else actions)
        return tuple(x[0] for x in outputs) if lifted else outputs  # type: ignore[return-value]

    def observe(self, obs: torch.Tensor, members: torch.Tensor | None = None) -> None:
        """Update running observation statistics (env.obs_norm=running) with a collected
        batch; only those of the members marked in `members` ([members] bool) when given."""
        if self.has_running_obs_norm:
            self.obs_norm.update(self._lift(obs)[0], members)

    @property
    def has_running_obs_norm(self) -> bool:
        """Whether the input statistics move while a rollout is collected."""
        return isinstance(self.obs_norm, RunningNormalizer)

    def member_state_dict(self, member: int) -> dict[str, torch.Tensor]:
        """Member `member`'s weights and statistics as a single run's `model.pt` holds them."""
        return {name: t[member].clone() for name, t in self.state_dict().items()}

    def load_member_state_dict(self, member: int, state: dict[str, torch.Tensor]) -> None:
        """Load a single run's weights (`member_state_dict`'s form, or the older layout of
        runs saved before acexp 0.2) into member `member`; RuntimeError when they do not fit."""
        state = dict(state)
        for prefix, module in self.named_modules():
            if isinstance(module, MLP):
                module.rename_sequential_keys(state, f"{prefix}.")
        own = self.state_dict()  # views of the parameters and buffers
        if own.keys() != state.keys():
            raise RuntimeError(f"keys differ: {sorted(own.keys() ^ state.keys())}")
        for name, tensor in own.items():
            if tensor[member].shape != state[name].shape:
                raise RuntimeError(
                    f"size mismatch for {name}: {tuple(state[name].shape)} given, "
                    f"{tuple(tensor[member].shape)} here"
                )
        with torch.no_grad():
            for name, tensor in own.items():
                tensor[member].copy_(state[name])

    def actor_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def critic_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError


def stack_members(models: list[ActorCritic], batched: ActorCritic) -> ActorCritic:
    """`batched` (a model of len(models) members) holding each model's weights as a member."""
    for member, model in enumerate(models):
        batched.load_member_state_dict(member, model.member_state_dict(0))
    return batched


@register_model("shared")
class SharedActorCritic(ActorCritic):
    """One trunk (encoder + MLP) feeding an actor head and a critic head."""

    def build(self, observation_space: gym.Space, action_space: gym.Space, arch: Arch) -> None:
        self.trunk, width = self.tower(observation_space, arch)
        self.actor_head = make_policy_head(action_space, width, arch.log_std_init, self.members)
        self.critic_head = MemberLinear(width, 1, self.members)

    def _features(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(self.obs_norm(obs))
        return features, features

    def _value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic_head(self.trunk(self.obs_norm(obs))).squeeze(-1)

    def _act(
        self, obs: torch.Tensor, with_log_prob: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        features = self.trunk(self.obs_norm(obs))
        action, log_prob = self.actor_head.sample(features, with_log_prob)
        return action, self.critic_head(features).squeeze(-1), log_prob

    def _evaluate(
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

    def build(self, observation_space: gym.Space, action_space: gym.Space, arch: Arch) -> None:
        self.actor, width = self.tower(observation_space, arch)
        self.actor_head = make_policy_head(action_space, width, arch.log_std_init, self.members)
        self.critic, width = self.tower(observation_space, arch)
        self.critic_head = MemberLinear(width, 1, self.members)

    def _features(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        obs = self.obs_norm(obs)
        return self.actor(obs), self.critic(obs)

    def _value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic_head(self.critic(self.obs_norm(obs))).squeeze(-1)

    def _act(
        self, obs: torch.Tensor, with_log_prob: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        obs = self.obs_norm(obs)
        action, log_prob = self.actor_head.sample(self.actor(obs), with_log_prob)
        return action, self.critic_head(self.critic(obs)).squeeze(-1), log_prob

    def _evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        obs = self.obs_norm(obs)
        log_prob, entropy = self.actor_head.evaluate(self.actor(obs), actions)
        return log_prob, entropy, self.critic_head(self.critic(obs)).squeeze(-1)

    def actor_parameters(self) -> list[nn.Parameter]:
        return [*self.actor.parameters(), *self.actor_head.parameters()]

    def critic_parameters(self) -> list[nn.Parameter]:
        return [*self.critic.parameters(), *self.critic_head.parameters()]
