"""Environment construction: vectorised Gymnasium environments from the `env` config group."""

import difflib

import gymnasium as gym
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
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
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
