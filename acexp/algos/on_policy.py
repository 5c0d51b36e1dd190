"""The on-policy engine that A2C and PPO share: vectorised rollouts, GAE, and the loop.

Each iteration collects `n_steps` transitions from each of `num_envs` environments of every
member, computes GAE(lambda) advantages with bootstrapping on truncation, and hands the
rollout to the algorithm's `train()` (`a2c.py`: one gradient step; `ppo.py`: clipped epochs).

Vector envs use NEXT_STEP autoreset: the step after an episode ends only resets that env.
Such reset steps are masked out of the loss, and the value computed on them is V(final
observation), which is exactly what a truncated episode bootstraps from.
"""

from abc import abstractmethod

import gymnasium as gym
import numpy as np
import torch

from acexp.algos.base import Trainer
from acexp.algos.losses import gae
from acexp.envs.make import make_vector_env, shares_vector_env
from acexp.envs.state import exact_env_state, set_vector_env_state, vector_env_state
from acexp.runtime.member import batch_seed, member_values


class OnPolicyTrainer(Trainer):
    """Collects rollouts and their advantages; subclasses implement `train()`."""

    # Whether rollouts store log pi(a|s) of the acting policy (PPO's ratio denominator).
    stores_log_probs = False

    def make_envs(self) -> tuple[gym.Space, gym.Space]:
        """Each member's vector env, seeded with its seed, as a single run makes it; or, in a
        batch whose envs one call steps any number of (`shares_vector_env`), one vector env
        of every member's envs, seeded from all their seeds (then a member's episodes are its
        own draws, but not those of its single run). `env_groups` lists (first member,
        members, env)."""
        n, members = self.algo.num_envs, len(self.members)
        if not self.alone and shares_vector_env(self.cfg.env):
            seed = batch_seed(self.members)
            self.env_seeds = [seed]
            self.env_groups = [(0, members, make_vector_env(self.cfg.env, members * n, seed))]
        else:
            self.env_seeds = [m.cfg.seed for m in self.members]
            self.env_groups = [
                (m.index, 1, make_vector_env(m.cfg.env, n, m.cfg.seed)) for m in self.members
            ]
        envs = self.env_groups[0][2]
        return envs.single_observation_space, envs.single_action_space

    def close(self) -> None:
        for _, _, envs in self.env_groups:
            envs.close()
        super().close()

    def member_envs(self, k: int) -> tuple[gym.vector.VectorEnv, slice]:
        """Member k's vector env, and its sub-envs there (all of them unless it shares one)."""
        for first, count, envs in self.env_groups:
            if first <= k < first + count:
                n = self.algo.num_envs
                return envs, slice((k - first) * n, (k - first + 1) * n)
        raise IndexError(k)

    def _allocate(self) -> None:
        """Rollout storage [n_steps, members, num_envs, ...], allocated once and overwritten
        every update; per-column discounts for GAE over [n_steps, members * num_envs]."""
        n_envs = self.algo.num_envs
        envs = self.env_groups[0][2]
        obs_space, act_space = envs.single_observation_space, envs.single_action_space
        shape = (self.algo.n_steps, len(self.members), n_envs)
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
        self.gamma = np.repeat(member_values(self.members, "gamma"), n_envs).astype(np.float32)
        lambdas = member_values(self.members, "gae_lambda")
        self.gae_lambda = np.repeat(lambdas, n_envs).astype(np.float32)

    def learn(self) -> None:
        self._allocate()
        if not self.resumed:
            groups = zip(self.env_seeds, self.env_groups, strict=True)
            obs = np.concatenate([envs.reset(seed=seed)[0] for seed, (_, _, envs) in groups])
            self.next_obs = obs.reshape(len(self.members), self.algo.num_envs, *obs.shape[1:])
            self.prev_done = np.zeros((len(self.members), self.algo.num_envs), dtype=bool)
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
            self.valid[t] = ~prev_done & self.active[:, None]
            for first, count, envs in self.env_groups:
                if self.active[first : first + count].any():
                    self.step_group(t, first, count, envs, action, next_obs, prev_done)
        next_value = self.model.value(torch.from_numpy(next_obs).to(self.device))
        return next_obs, prev_done, next_value.cpu().numpy()

    def step_group(
        self,
        t: int,
        first: int,
        count: int,
        envs: gym.vector.VectorEnv,
        action: np.ndarray,
        next_obs: np.ndarray,
        prev_done: np.ndarray,
    ) -> None:
        """Step the vector env of members first..first+count-1: their rows of the rollout,
        of `next_obs` and of `prev_done`. Ended members' envs step on, unrecorded."""
        members = slice(first, first + count)
        try:
            obs, reward, terminated, truncated, info = envs.step(
                action[members].reshape(-1, *action.shape[2:])
            )
        except Exception as exc:  # e.g. MuJoCo's instability on NaN actions: these members'
            for member in self.members[first : first + count]:
                if member.active:
                    self.fail_member(member, exc)
            self.valid[t, members] = False
            return
        rows = (count, -1)
        next_obs[members] = obs.reshape(count, -1, *obs.shape[1:])
        prev_done[members] = (terminated | truncated).reshape(rows)
        self.rewards[t, members] = reward.reshape(rows)
        self.terminated[t, members] = terminated.reshape(rows)
        self.done[t, members] = prev_done[members]
        self.env_steps[members] += np.count_nonzero(self.valid[t, members], axis=1)
        if "_episode" in info:
            n = self.algo.num_envs
            for i in np.flatnonzero(info["_episode"]):
                k = first + i // n
                if self.active[k]:
                    self.end_episode(
                        k, float(info["episode"]["r"][i]), int(info["episode"]["l"][i])
                    )

    @abstractmethod
    def train(self, advantages: torch.Tensor, returns: torch.Tensor) -> None:
        """Update on the rollout in storage, with its advantages and returns, each
        [n_steps, members, num_envs]."""

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
        return any(m.logger.due(m.env_steps) for m in self.members if m.active)

    def state_dict(self, k: int = 0) -> dict:
        """Adds where member k's rollout stands and, for numpy-native vector envs, the envs'
        state."""
        return {
            **super().state_dict(k),
            "next_obs": torch.from_numpy(self.next_obs[k].copy()),
            "prev_done": torch.from_numpy(self.prev_done[k].copy()),
            "envs": vector_env_state(*self.member_envs(k)),
            "envs_exact": exact_env_state(self.member_envs(k)[0]),
        }

    def load_state_dict(self, state: dict) -> None:
        """Exact for numpy-native vector envs; other envs restart their episodes (see docs)."""
        super().load_state_dict(state)
        ((_, _, envs),) = self.env_groups
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
