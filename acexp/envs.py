"""Environment construction: vectorised Gymnasium environments from the `env` config group."""

import difflib

import gymnasium as gym
import numpy as np
from omegaconf import DictConfig, OmegaConf

from acexp.errors import ConfigError


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of an id; an unknown id fails with close matches."""
    try:
        return gym.spec(env_id)
    except gym.error.Error as exc:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"env.id='{env_id}' is not a registered environment ({exc}){hint}"
        ) from None


def make_vector_env(cfg: DictConfig, num_envs: int, seed: int) -> gym.vector.VectorEnv:
    """N copies of `cfg.id` behind gymnasium's vector API, seeded and reset once.

    Uses the environment's own numpy-native vector implementation where it has one
    (CartPole), otherwise `cfg.vectorization` (sync or async). Autoreset is NEXT_STEP, which
    every gymnasium vector env supports: the step after an episode ends is a reset step.
    """
    spec = env_spec(cfg.id)
    kwargs = OmegaConf.to_container(cfg.kwargs, resolve=True) if cfg.get("kwargs") else {}
    mode = cfg.get("vectorization", "auto")
    if mode == "auto":
        mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    envs = gym.make_vec(cfg.id, num_envs=num_envs, vectorization_mode=mode, **kwargs)
    envs = EpisodeReturns(envs)
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    return envs


def make_env(cfg: DictConfig, seed: int) -> gym.Env:
    """One environment, for per-episode trainers and evaluation."""
    env_spec(cfg.id)
    kwargs = OmegaConf.to_container(cfg.kwargs, resolve=True) if cfg.get("kwargs") else {}
    env = gym.make(cfg.id, **kwargs)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def reward_threshold(cfg: DictConfig) -> float | None:
    """The threshold a running return must pass to count as solved (config, else the spec)."""
    if cfg.get("reward_threshold") is not None:
        return float(cfg.reward_threshold)
    return env_spec(cfg.id).reward_threshold


class EpisodeReturns(gym.vector.VectorWrapper):
    """Raw episode returns and lengths in `info["episode"]` / `info["_episode"]`.

    The same keys as gymnasium's RecordEpisodeStatistics for NEXT_STEP autoreset, without its
    per-episode timing and queues, which cost more than a CartPole step (measured).
    """

    def reset(self, **kwargs):  # type: ignore[override]
        obs, info = self.env.reset(**kwargs)
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._prev_done = np.zeros(self.num_envs, dtype=bool)
        return obs, info

    def step(self, actions):  # type: ignore[override]
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        live = ~self._prev_done  # a reset step belongs to no episode
        self._returns = np.where(live, self._returns + rewards, 0.0)
        self._lengths = np.where(live, self._lengths + 1, 0)
        self._prev_done = terminated | truncated
        if self._prev_done.any():
            info = {**info, "episode": {"r": self._returns, "l": self._lengths}}
            info["_episode"] = self._prev_done
        return obs, rewards, terminated, truncated, info
