"""The tutorial algorithm of SPEC D: one actor-critic update per finished episode.

One environment; Monte Carlo discounted returns, normalised by their mean and std; advantage
= return - value; the policy and value losses are summed over the episode (smooth L1 for the
value, by default) and added. An episode ends on termination or on the env's time limit.
"""

import gymnasium as gym
import torch

from acexp.envs import make_env, to_env_action
from acexp.losses import actor_loss, critic_loss, discounted_returns, normalize
from acexp.registry import register_trainer
from acexp.state import generator_state, set_generator_state
from acexp.trainers.base import Trainer


@register_trainer("episodic")
class EpisodicTrainer(Trainer):
    def make_envs(self) -> tuple[gym.Space, gym.Space]:
        self.env = make_env(self.cfg.env, self.cfg.seed)
        return self.env.observation_space, self.env.action_space

    def close(self) -> None:
        self.env.close()
        super().close()

    def state_dict(self) -> dict:
        """Checkpoints fall between episodes: the env's generator is all its next reset uses."""
        return {**super().state_dict(), "env_rng": generator_state(self.env)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        set_generator_state(self.env, state["env_rng"])

    def learn(self) -> None:
        self.stats.start_clock()
        while not self.finished() and self.stats.episodes < self.algo.max_episodes:
            self.run_episode()

    def run_episode(self) -> None:
        obs, _ = self.env.reset()
        log_probs, values, entropies, rewards = [], [], [], []
        for _ in range(self.algo.max_episode_steps):
            batch = torch.as_tensor(obs, device=self.device).unsqueeze(0)
            self.model.observe(batch)  # running observation statistics, when env.obs_norm=running
            dist, value = self.model(batch)
            action = dist.sample()
            log_probs.append(dist.log_prob(action))
            entropies.append(dist.entropy())
            values.append(value)
            obs, reward, terminated, truncated, _ = self.env.step(to_env_action(action.squeeze(0)))
            rewards.append(float(reward))
            self.env_steps += 1
            if terminated or truncated:
                self.end_episode(sum(rewards), len(rewards))
                break
            if self.env_steps >= self.cfg.total_steps:
                break
        self.train(torch.cat(log_probs), torch.cat(values), torch.cat(entropies), rewards)

    def train(
        self,
        log_probs: torch.Tensor,
        values: torch.Tensor,
        entropies: torch.Tensor,
        rewards: list[float],
    ) -> None:
        returns = discounted_returns(torch.tensor(rewards), self.algo.gamma).to(self.device)
        if self.algo.normalize_returns:
            returns = normalize(returns, self.algo.return_norm_eps)
        reduction = self.algo.loss_reduction
        losses = {
            "actor": actor_loss(log_probs, returns - values.detach(), reduction),
            "critic": critic_loss(values, returns, self.algo.critic_loss, reduction),
            "entropy": entropies.mean(),
        }
        self.optimize(losses)
