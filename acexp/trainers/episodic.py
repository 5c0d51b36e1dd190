"""The tutorial algorithm of SPEC D: one actor-critic update per finished episode.

One environment per member; Monte Carlo discounted returns, normalised by their mean and
std; advantage = return - value; the policy and value losses are summed over the episode
(smooth L1 for the value, by default) and added. An episode ends on termination or on the
env's time limit.

In a batch, members play their episodes side by side, one batched step at a time; a member
whose episode has ended waits for the round to end, so that every member performs exactly
the per-episode algorithm: one update per episode of its own.
"""

import gymnasium as gym
import numpy as np
import torch

from acexp.envs import make_env, to_env_actions
from acexp.losses import actor_loss, batch_mean, critic_loss, discounted_returns, normalize
from acexp.registry import register_trainer
from acexp.state import generator_state, set_generator_state
from acexp.trainers.base import Trainer


@register_trainer("episodic")
class EpisodicTrainer(Trainer):
    def make_envs(self) -> tuple[gym.Space, gym.Space]:
        self.envs = [make_env(c.env, c.seed) for c in self.cfgs]
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

    def finished(self) -> bool:
        """As every trainer's, and a member also ends at the tutorial's episode cap."""
        for k in np.flatnonzero(self.active):
            if self.stats[k].episodes >= self.algo.max_episodes:
                self.end_member(k, "completed")
        return super().finished()

    def learn(self) -> None:
        self.start_clocks()
        while not self.finished():
            self.run_round()

    def run_round(self) -> None:
        """One episode of every active member, stepped together; then one update.

        Acting builds no graph: the update evaluates the round's observations and actions in
        one forward pass over [members, steps], with the weights that acted (they change only
        in the update), which gives the gradient of a forward pass per step for less. Running
        observation statistics (env.obs_norm=running) are those at the round's end, as in
        A2C's update."""
        playing = self.active.copy()
        obs = [env.reset()[0] if playing[k] else None for k, env in enumerate(self.envs)]
        idle = next(o for o in obs if o is not None)  # what a member that does not play is shown
        obs = [idle if o is None else o for o in obs]
        observations, actions, masks = [], [], []
        rewards: list[list[float]] = [[] for _ in self.envs]
        for _ in range(self.algo.max_episode_steps):
            batch = torch.as_tensor(np.stack(obs), device=self.device).unsqueeze(1)
            with torch.no_grad():  # not inference_mode: the actions are used again in training
                # running observation statistics (env.obs_norm=running) of the members playing
                self.model.observe(batch, None if playing.all() else torch.from_numpy(playing))
                action = self.model.act(batch)[0]
            observations.append(batch)
            actions.append(action)
            masks.append(torch.from_numpy(playing.copy()))
            env_actions = to_env_actions(action[:, 0])
            for k in np.flatnonzero(playing):
                obs[k], reward, terminated, truncated, _ = self.envs[k].step(env_actions[k])
                rewards[k].append(float(reward))
                self.env_steps[k] += 1
                if terminated or truncated:
                    self.end_episode(k, sum(rewards[k]), len(rewards[k]))
                    playing[k] = False
                elif self.env_steps[k] >= self.total_steps[k]:
                    playing[k] = False
            if not playing.any():
                break
        log_probs, entropies, values = self.model.evaluate_actions(
            torch.cat(observations, 1), torch.cat(actions, 1)
        )
        self.train(log_probs, values, entropies, rewards, torch.stack(masks, 1).to(self.device))

    def train(
        self,
        log_probs: torch.Tensor,
        values: torch.Tensor,
        entropies: torch.Tensor,
        rewards: list[list[float]],
        mask: torch.Tensor,
    ) -> None:
        """One update per member on its episode: [members, steps] tensors, `mask` marking the
        steps each member played (a single run's episode fills its row)."""
        returns = torch.zeros(mask.shape)
        for k, member_rewards in enumerate(rewards):
            if member_rewards:
                returns[k, : len(member_rewards)] = discounted_returns(
                    torch.tensor(member_rewards), float(self.cfgs[k].algo.gamma)
                )
        returns = returns.to(self.device)
        if bool(mask.all()):
            mask = None  # every member played every step (always so in a single run)
        if self.algo.normalize_returns:
            returns = normalize(returns, self.algo.return_norm_eps, mask)
        reduction = self.algo.loss_reduction
        losses = {
            "actor": actor_loss(log_probs, returns - values.detach(), reduction, mask),
            "critic": critic_loss(values, returns, self.algo.critic_loss, reduction, mask),
            "entropy": batch_mean(entropies, mask),
        }
        self.optimize(losses)
