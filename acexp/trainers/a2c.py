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
from acexp.losses import actor_loss, critic_loss, gae, normalize
from acexp.ppo_losses import explained_variance
from acexp.registry import register_trainer
from acexp.state import exact_env_state, set_vector_env_state, vector_env_state
from acexp.trainers.base import Trainer


@register_trainer("a2c")
class A2CTrainer(Trainer):
    # Whether rollouts store log pi(a|s) of the acting policy (PPO's ratio denominator).
    stores_log_probs = False

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
        shape = (n_steps, n_envs)
        # numpy: a row write costs a microsecond, a tensor's setitem several; the update reads
        # the rollout through torch.from_numpy views of the same memory.
        self.obs = np.zeros(shape + obs_space.shape, dtype=obs_space.dtype)
        self.actions = np.zeros(shape + act_space.shape, dtype=act_space.dtype)
        self.values = np.zeros(shape, dtype=np.float32)
        self.log_probs = np.zeros(shape, dtype=np.float32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.done = np.zeros(shape, dtype=bool)
        self.valid = np.zeros(shape, dtype=bool)

    @torch.inference_mode()
    def collect(
        self, next_obs: np.ndarray, prev_done: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fill the rollout storage; return the next observation, done flags and V(next)."""
        for t in range(self.algo.n_steps):
            obs = torch.from_numpy(next_obs)
            self.model.observe(obs)  # running observation statistics, when env.obs_norm=running
            action, value, log_prob = self.model.act(obs.to(self.device), self.stores_log_probs)
            action = action.cpu().numpy()
            self.obs[t] = next_obs
            self.actions[t] = action
            self.values[t] = value.cpu().numpy()
            if log_prob is not None:
                self.log_probs[t] = log_prob.cpu().numpy()
            self.valid[t] = ~prev_done
            next_obs, reward, terminated, truncated, info = self.envs.step(action)
            prev_done = terminated | truncated
            self.rewards[t] = reward
            self.terminated[t] = terminated
            self.done[t] = prev_done
            self.env_steps += int(np.count_nonzero(self.valid[t]))
            if "_episode" in info:
                for i in np.flatnonzero(info["_episode"]):
                    self.end_episode(float(info["episode"]["r"][i]), int(info["episode"]["l"][i]))
        next_value = self.model.value(torch.from_numpy(next_obs).to(self.device))
        return next_obs, prev_done, next_value.cpu().numpy()

    def learn(self) -> None:
        self._allocate()
        if not self.resumed:
            self.next_obs, _ = self.envs.reset(seed=self.cfg.seed)
            self.prev_done = np.zeros(self.algo.num_envs, dtype=bool)
        self.stats.start_clock()
        while not self.finished():
            self.next_obs, self.prev_done, next_value = self.collect(self.next_obs, self.prev_done)
            next_values = np.concatenate((self.values[1:], next_value[None]))
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

    def state_dict(self) -> dict:
        """Adds where the rollout stands and, for numpy-native vector envs, the envs' state."""
        return {
            **super().state_dict(),
            "next_obs": torch.from_numpy(self.next_obs.copy()),
            "prev_done": torch.from_numpy(self.prev_done.copy()),
            "envs": vector_env_state(self.envs),
            "envs_exact": exact_env_state(self.envs),
        }

    def load_state_dict(self, state: dict) -> None:
        """Exact for numpy-native vector envs; other envs restart their episodes (see docs)."""
        super().load_state_dict(state)
        if state["envs_exact"]:
            set_vector_env_state(self.envs, state["envs"])
            self.next_obs = state["next_obs"].numpy().copy()
            self.prev_done = state["prev_done"].numpy().copy()
        else:
            # Sub-env state (Box2D, MuJoCo, processes) is not saved: new episodes, seeded
            # from the run's seed and the checkpoint step so that a resume is repeatable;
            # wrappers' running statistics (reward normalisation) carry over.
            seed = int(np.random.SeedSequence([self.cfg.seed, self.env_steps]).generate_state(1)[0])
            self.next_obs, _ = self.envs.reset(seed=seed)
            self.prev_done = np.zeros(self.algo.num_envs, dtype=bool)
            set_vector_env_state(self.envs, state["envs"], statistics_only=True)

    def valid_batch(self, *rollout: np.ndarray | torch.Tensor) -> list[torch.Tensor]:
        """Each [n_steps, num_envs, ...] rollout array as a [batch, ...] tensor of its valid
        (non-reset) steps on the training device; views, not copies, when all are valid."""
        tensors = [torch.as_tensor(array).flatten(0, 1) for array in rollout]
        if not self.valid.all():
            keep = torch.from_numpy(self.valid).flatten()
            tensors = [tensor[keep] for tensor in tensors]
        return [tensor.to(self.device) for tensor in tensors]

    def train(self, advantages: torch.Tensor, returns: torch.Tensor) -> None:
        """One gradient step on the valid transitions of the rollout."""
        obs, actions, advantages, returns = self.valid_batch(
            self.obs, self.actions, advantages, returns
        )
        if self.algo.normalize_advantage:
            advantages = normalize(advantages)
        log_prob, entropy, values = self.model.evaluate_actions(obs, actions)
        losses = {
            "actor": actor_loss(log_prob, advantages),
            "critic": critic_loss(values, returns, self.algo.critic_loss),
            "entropy": entropy.mean(),
        }
        if self.logger.due(self.env_steps):  # a diagnostic: computed only when it is written
            losses["explained_variance"] = explained_variance(values.detach(), returns)
        self.optimize(losses)
