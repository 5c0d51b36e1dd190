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
from acexp.losses import actor_loss, batch_mean, critic_loss, gae, normalize
from acexp.ppo_losses import explained_variance
from acexp.registry import register_trainer
from acexp.state import exact_env_state, set_vector_env_state, vector_env_state
from acexp.trainers.base import Trainer


@register_trainer("a2c")
class A2CTrainer(Trainer):
    # Whether rollouts store log pi(a|s) of the acting policy (PPO's ratio denominator).
    stores_log_probs = False

    def make_envs(self) -> tuple[gym.Space, gym.Space]:
        """Each member's own vector env, seeded with its seed, as a single run makes it."""
        self.envs = [make_vector_env(c.env, self.algo.num_envs, c.seed) for c in self.cfgs]
        return self.envs[0].single_observation_space, self.envs[0].single_action_space

    def close(self) -> None:
        for envs in self.envs:
            envs.close()
        super().close()

    def _allocate(self) -> None:
        """Rollout storage [n_steps, members, num_envs, ...], allocated once and overwritten
        every update; per-column discounts for GAE over [n_steps, members * num_envs]."""
        n_envs = self.algo.num_envs
        obs_space, act_space = (
            self.envs[0].single_observation_space,
            self.envs[0].single_action_space,
        )
        shape = (self.algo.n_steps, self.members, n_envs)
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
        self.gamma = np.repeat(self.member_values("gamma"), n_envs).astype(np.float32)
        self.gae_lambda = np.repeat(self.member_values("gae_lambda"), n_envs).astype(np.float32)

    @torch.inference_mode()
    def collect(
        self, next_obs: np.ndarray, prev_done: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fill the rollout storage; return the next observation, done flags and V(next)."""
        active = np.flatnonzero(self.active)
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
            self.valid[t] = ~prev_done & self.active[:, None]
            for k in active:
                self.step_member(k, t, action[k], next_obs, prev_done)
        next_value = self.model.value(torch.from_numpy(next_obs).to(self.device))
        return next_obs, prev_done, next_value.cpu().numpy()

    def step_member(
        self, k: int, t: int, action: np.ndarray, next_obs: np.ndarray, prev_done: np.ndarray
    ) -> None:
        """Step member k's envs: its row of the rollout, of `next_obs` and of `prev_done`."""
        if not self.active[k]:
            return  # it failed earlier in this rollout
        try:
            obs, reward, terminated, truncated, info = self.envs[k].step(action)
        except Exception as exc:  # e.g. MuJoCo's instability on NaN actions: this member's
            self.fail_member(k, exc)
            self.valid[t, k] = False
            return
        next_obs[k] = obs
        prev_done[k] = terminated | truncated
        self.rewards[t, k] = reward
        self.terminated[t, k] = terminated
        self.done[t, k] = prev_done[k]
        self.env_steps[k] += int(np.count_nonzero(self.valid[t, k]))
        if "_episode" in info:
            for i in np.flatnonzero(info["_episode"]):
                self.end_episode(k, float(info["episode"]["r"][i]), int(info["episode"]["l"][i]))

    def learn(self) -> None:
        self._allocate()
        if not self.resumed:
            self.next_obs = np.stack(
                [envs.reset(seed=c.seed)[0] for envs, c in zip(self.envs, self.cfgs, strict=True)]
            )
            self.prev_done = np.zeros((self.members, self.algo.num_envs), dtype=bool)
        self.start_clocks()
        columns = (self.algo.n_steps, -1)  # GAE runs over [n_steps, members * num_envs]
        while not self.finished():
            self.next_obs, self.prev_done, next_value = self.collect(self.next_obs, self.prev_done)
            next_values = np.concatenate((self.values[1:], next_value[None]))
            advantages, returns = gae(
                self.rewards.reshape(columns),
                self.values.reshape(columns),
                next_values.reshape(columns),
                self.terminated.reshape(columns),
                self.done.reshape(columns),
                self.gamma,
                self.gae_lambda,
            )
            if self.active.any():  # unless the last members failed in this rollout
                self.train(advantages.view(self.values.shape), returns.view(self.values.shape))

    def state_dict(self, k: int = 0) -> dict:
        """Adds where member k's rollout stands and, for numpy-native vector envs, the envs'
        state."""
        return {
            **super().state_dict(k),
            "next_obs": torch.from_numpy(self.next_obs[k].copy()),
            "prev_done": torch.from_numpy(self.prev_done[k].copy()),
            "envs": vector_env_state(self.envs[k]),
            "envs_exact": exact_env_state(self.envs[k]),
        }

    def load_state_dict(self, state: dict) -> None:
        """Exact for numpy-native vector envs; other envs restart their episodes (see docs)."""
        super().load_state_dict(state)
        (envs,) = self.envs
        if state["envs_exact"]:
            set_vector_env_state(envs, state["envs"])
            self.next_obs = state["next_obs"].numpy()[None].copy()
            self.prev_done = state["prev_done"].numpy()[None].copy()
        else:
            # Sub-env state (Box2D, MuJoCo, processes) is not saved: new episodes, seeded
            # from the run's seed and the checkpoint step so that a resume is repeatable;
            # wrappers' running statistics (reward normalisation) carry over.
            seed = np.random.SeedSequence([self.cfg.seed, int(self.env_steps[0])])
            self.next_obs = envs.reset(seed=int(seed.generate_state(1)[0]))[0][None]
            self.prev_done = np.zeros((1, self.algo.num_envs), dtype=bool)
            set_vector_env_state(envs, state["envs"], statistics_only=True)

    def member_batch(
        self, *rollout: np.ndarray | torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Each [n_steps, members, num_envs, ...] rollout array as a [members, batch, ...]
        tensor on the training device (views for a single run), and the mask of valid
        (non-reset) steps, or None when every step is valid."""
        tensors = [torch.as_tensor(array).transpose(0, 1).flatten(1, 2) for array in rollout]
        mask = None
        if not self.valid.all():
            mask = torch.from_numpy(self.valid).transpose(0, 1).flatten(1, 2).to(self.device)
        return [tensor.to(self.device) for tensor in tensors], mask

    def any_logger_due(self) -> bool:
        return any(self.loggers[k].due(self.env_steps[k]) for k in np.flatnonzero(self.active))

    def train(self, advantages: torch.Tensor, returns: torch.Tensor) -> None:
        """One gradient step on the valid transitions of the rollout."""
        (obs, actions, advantages, returns), mask = self.member_batch(
            self.obs, self.actions, advantages, returns
        )
        if self.algo.normalize_advantage:
            advantages = normalize(advantages, mask=mask)
        log_prob, entropy, values = self.model.evaluate_actions(obs, actions)
        losses = {
            "actor": actor_loss(log_prob, advantages, mask=mask),
            "critic": critic_loss(values, returns, self.algo.critic_loss, mask=mask),
            "entropy": batch_mean(entropy, mask),
        }
        if self.any_logger_due():  # a diagnostic: computed only when it is written
            losses["explained_variance"] = explained_variance(values.detach(), returns, mask)
        self.optimize(losses)
