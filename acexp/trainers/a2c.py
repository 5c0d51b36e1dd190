"""Synchronous advantage actor-critic (A2C) over N vectorised environments.

Each update collects `n_steps` transitions from each of `num_envs` environments, computes
GAE(lambda) advantages with bootstrapping on truncation, and takes one gradient step.

Vector envs use NEXT_STEP autoreset: the step after an episode ends only resets that env.
Such reset steps are masked out of the loss, and the value computed on them is V(final
observation), which is exactly what a truncated episode bootstraps from.
"""

import gymnasium as gym
import numpy as np
import torch

from acexp.envs import make_vector_env
from acexp.losses import actor_loss, critic_loss, gae, normalize, total_loss
from acexp.ppo_losses import explained_variance
from acexp.registry import register_trainer
from acexp.trainers.base import Trainer


@register_trainer("a2c")
class A2CTrainer(Trainer):
    def make_envs(self) -> tuple[gym.Space, gym.Space]:
        self.envs = make_vector_env(self.cfg.env, self.algo.num_envs, self.cfg.seed)
        return self.envs.single_observation_space, self.envs.single_action_space

    def close(self) -> None:
        self.envs.close()
        super().close()

    def _allocate(self) -> None:
        """Rollout storage, allocated once and overwritten every update."""
        n_steps, n_envs = self.algo.n_steps, self.algo.num_envs
        obs_space, act_space = self.envs.single_observation_space, self.envs.single_action_space
        obs_dtype = torch.from_numpy(np.zeros(1, dtype=obs_space.dtype)).dtype
        act_dtype = torch.from_numpy(np.zeros(1, dtype=act_space.dtype)).dtype
        shape = (n_steps, n_envs)
        self.obs = torch.zeros(shape + obs_space.shape, dtype=obs_dtype)
        self.actions = torch.zeros(shape + act_space.shape, dtype=act_dtype)
        self.rewards = torch.zeros(shape)
        self.values = torch.zeros(shape)
        self.terminated = torch.zeros(shape, dtype=torch.bool)
        self.done = torch.zeros(shape, dtype=torch.bool)
        self.valid = torch.zeros(shape, dtype=torch.bool)

    def collect(
        self, next_obs: np.ndarray, prev_done: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        """Fill the rollout storage; return the next observation, done flags and V(next)."""
        for t in range(self.algo.n_steps):
            obs = torch.from_numpy(next_obs)
            self.model.observe(obs)  # running observation statistics, when env.obs_norm=running
            with torch.inference_mode():
                dist, value = self.model(obs.to(self.device))
                action = dist.sample().cpu()
            self.obs[t] = obs
            self.actions[t] = action
            self.values[t] = value.cpu()
            valid = ~prev_done
            self.valid[t] = torch.from_numpy(valid)
            next_obs, reward, terminated, truncated, info = self.envs.step(action.numpy())
            prev_done = terminated | truncated
            self.rewards[t] = torch.from_numpy(reward)
            self.terminated[t] = torch.from_numpy(terminated)
            self.done[t] = torch.from_numpy(prev_done)
            self.env_steps += int(np.count_nonzero(valid))
            if "_episode" in info:
                for i in np.flatnonzero(info["_episode"]):
                    self.end_episode(float(info["episode"]["r"][i]), int(info["episode"]["l"][i]))
        with torch.inference_mode():
            next_value = self.model.value(torch.from_numpy(next_obs).to(self.device)).cpu()
        return next_obs, prev_done, next_value

    def learn(self) -> None:
        self._allocate()
        next_obs, _ = self.envs.reset(seed=self.cfg.seed)
        prev_done = np.zeros(self.algo.num_envs, dtype=bool)
        self.stats.start_clock()
        while not self.finished():
            next_obs, prev_done, next_value = self.collect(next_obs, prev_done)
            next_values = torch.cat((self.values[1:], next_value.unsqueeze(0)))
            advantages, returns = gae(
                self.rewards,
                self.values,
                next_values,
                self.terminated,
                self.done,
                self.algo.gamma,
                self.algo.gae_lambda,
            )
            self.train(advantages, returns)

    def train(self, advantages: torch.Tensor, returns: torch.Tensor) -> None:
        """One gradient step on the valid transitions of the rollout."""
        keep = self.valid.flatten()
        obs = self.obs.flatten(0, 1)[keep].to(self.device)
        actions = self.actions.flatten(0, 1)[keep].to(self.device)
        advantages = advantages.flatten()[keep].to(self.device)
        returns = returns.flatten()[keep].to(self.device)
        if self.algo.normalize_advantage:
            advantages = normalize(advantages)
        dist, values = self.model(obs)
        losses = {
            "actor": actor_loss(dist.log_prob(actions), advantages),
            "critic": critic_loss(values, returns, self.algo.critic_loss),
            "entropy": dist.entropy().mean(),
            "explained_variance": explained_variance(values.detach(), returns),
        }
        loss = total_loss(
            losses["actor"],
            losses["critic"],
            losses["entropy"],
            self.algo.vf_coef,
            self.algo.ent_coef,
        )
        self.update({name: value.detach() for name, value in losses.items()}, loss)
