"""The per-episode actor-critic of the PyTorch tutorial: one update per finished episode.

One environment per member; Monte Carlo discounted returns, normalised by their mean and
std; advantage = return - value; the policy and value losses are summed over the episode
(smooth L1 for the value, by default) and added. An episode ends on termination or on the
env's time limit.

In a batch, members play side by side, one batched step at a time, each on its own clock: a
member whose episode has ended waits until half the members in an episode have ended theirs
(or none plays on); those members then update together, and the optimizer leaves the others'
weights and state alone (`NamedOptimizer.step`). Each member starts its next episode after
its own update, so every member performs exactly the per-episode algorithm, one update per
episode of its own, and a short episode does not wait for the longest of its batch.
"""

import gymnasium as gym
import numpy as np
import torch

from acexp.algos.base import Trainer
from acexp.algos.losses import actor_loss, batch_mean, critic_loss, discounted_returns, normalize
from acexp.algos.registry import register_trainer
from acexp.envs.make import make_env, to_env_actions
from acexp.envs.state import generator_state, set_generator_state
from acexp.runtime.member import Member


@register_trainer("episodic")
class EpisodicTrainer(Trainer):
    def make_envs(self) -> tuple[gym.Space, gym.Space]:
        self.envs = [make_env(m.cfg.env, m.cfg.seed) for m in self.members]
        return self.envs[0].observation_space, self.envs[0].action_space

    def close(self) -> None:
        for env in self.envs:
            env.close()
        super().close()

    def state_dict(self, k: int = 0) -> dict:
        """Checkpoints fall between episodes: the env's generator is all its next reset uses."""
        return {**super().state_dict(k), "env_rng": generator_state(self.envs[k])}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        set_generator_state(self.envs[0], state["env_rng"])

    def should_end(self, member: Member) -> bool:
        """As every trainer's, and a member also ends at the tutorial's episode cap."""
        return member.done or member.stats.episodes >= self.algo.max_episodes

    def learn(self) -> None:
        """Play and update until `finished()`; checkpoints, evaluations and a member's end
        fall between its episodes (`resting`), and a stop lets the episodes in play end."""
        self.start_clocks()
        self.episodes = Episodes(len(self.members))
        resting = np.ones(len(self.members), dtype=bool)  # between episodes
        playing = np.zeros(len(self.members), dtype=bool)
        while True:
            stop = self.finished(resting)
            starting = np.zeros_like(resting) if stop else resting & self.active
            for k in np.flatnonzero(starting):
                self.episodes.begin(k, self.envs[k].reset()[0])
            playing |= starting
            resting &= ~starting
            if resting.all():
                return
            while playing.any() and not update_due(playing, resting):
                self.step(playing)
            waiting = ~playing & ~resting
            self.train(waiting)
            self.episodes.forget_before(playing)
            resting |= waiting

    def step(self, playing: np.ndarray) -> None:
        """One env step of every member `playing`, acting from one batched forward pass
        without a graph; a member leaves `playing` when its episode ends, its budget is spent
        or its episode reaches the step cap."""
        episodes = self.episodes
        batch = torch.as_tensor(np.stack(episodes.shown()), device=self.device).unsqueeze(1)
        with torch.no_grad():  # not inference_mode: the actions are used again in training
            # running observation statistics (env.obs_norm=running) of the members playing
            self.model.observe(batch, None if playing.all() else torch.from_numpy(playing))
            action = self.model.act(batch)[0]
        episodes.record(batch, action)
        env_actions = to_env_actions(action[:, 0])
        for k in np.flatnonzero(playing):
            obs, reward, terminated, truncated, _ = self.envs[k].step(env_actions[k])
            rewards = episodes.rewards[k]
            episodes.obs[k] = obs
            rewards.append(float(reward))
            self.env_steps[k] += 1
            if terminated or truncated:
                self.end_episode(k, sum(rewards), len(rewards))
                playing[k] = False
            elif (
                self.env_steps[k] >= self.members[k].total_steps
                or len(rewards) >= self.algo.max_episode_steps
            ):
                playing[k] = False  # budget spent, or the step cap: trained on as it stands

    def train(self, members: np.ndarray) -> None:
        """One update of each member `members` marks, on its episode. Acting built no graph:
        the update evaluates the episodes' observations and actions in one forward pass over
        [members, steps] with the weights that acted (a member's weights change only at its
        own update), which gives the gradient of a forward pass per step for less. Running
        observation statistics (env.obs_norm=running) are those at the episode's end."""
        episodes = self.episodes
        first = int(episodes.start[members].min())
        observations, actions = episodes.since(first)
        log_probs, entropies, values = self.model.evaluate_actions(observations, actions)
        returns = torch.zeros(log_probs.shape)
        mask = torch.zeros(log_probs.shape, dtype=torch.bool)
        for k in np.flatnonzero(members):
            begin, rewards = int(episodes.start[k]) - first, episodes.rewards[k]
            gamma = float(self.members[k].algo.gamma)
            returns[k, begin : begin + len(rewards)] = discounted_returns(
                torch.tensor(rewards), gamma
            )
            mask[k, begin : begin + len(rewards)] = True
        # no mask when every member played every step (always so in a single run)
        mask = None if bool(mask.all()) else mask.to(self.device)
        returns = returns.to(self.device)
        if self.algo.normalize_returns:
            returns = normalize(returns, self.algo.return_norm_eps, mask)
        reduction = self.algo.loss_reduction
        losses = {
            "actor": actor_loss(log_probs, returns - values.detach(), reduction, mask),
            "critic": critic_loss(values, returns, self.algo.critic_loss, reduction, mask),
            "entropy": batch_mean(entropies, mask),
        }
        self.optimize(losses, None if members.all() else members)


def update_due(playing: np.ndarray, resting: np.ndarray) -> bool:
    """Whether the members whose episode has ended update now: once they are half of the
    members in an episode. Waiting costs them nothing while others play (a batched step
    costs about the same for any number of players), and updating less often saves updates;
    so a short episode waits for a few others, not for the longest."""
    waiting = (~playing & ~resting).sum()
    return 2 * waiting >= (~resting).sum()


class Episodes:
    """The members' episodes in play: each member's last observation, rewards so far and
    first batched step; and the batched steps (what every member was shown, what it did)
    from the first step of the oldest episode still needed."""

    def __init__(self, members: int) -> None:
        self.obs: list[np.ndarray | None] = [None] * members
        self.rewards: list[list[float]] = [[] for _ in range(members)]
        self.start = np.zeros(members, dtype=np.int64)
        self.observations: list[torch.Tensor] = []  # [members, 1, ...] per batched step
        self.actions: list[torch.Tensor] = []
        self.first = 0  # the batched step of observations[0]
        self.now = 0  # batched steps so far

    def begin(self, k: int, obs: np.ndarray) -> None:
        self.obs[k], self.rewards[k], self.start[k] = obs, [], self.now

    def shown(self) -> list[np.ndarray]:
        """What every member is shown: its last observation; a member that never played is
        shown another's (acting on it changes nothing)."""
        idle = next(o for o in self.obs if o is not None)
        return [idle if o is None else o for o in self.obs]

    def record(self, observations: torch.Tensor, actions: torch.Tensor) -> None:
        self.observations.append(observations)
        self.actions.append(actions)
        self.now += 1

    def since(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The observations and actions of the batched steps from `step` on, [members, steps]."""
        index = step - self.first
        return torch.cat(self.observations[index:], 1), torch.cat(self.actions[index:], 1)

    def forget_before(self, playing: np.ndarray) -> None:
        """Drop the steps that no episode still in play needs."""
        keep = int(self.start[playing].min()) if playing.any() else self.now
        del self.observations[: keep - self.first], self.actions[: keep - self.first]
        self.first = keep
