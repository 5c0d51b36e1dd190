"""Environment construction: vectorised Gymnasium environments from the `env` config group."""

import contextlib
import difflib
from collections.abc import Callable, Iterator
from functools import partial

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from acexp.errors import ConfigError, MissingExtraError

# Where an env's code lives (its spec's entry point) -> the pip extra that installs its needs.
EXTRAS = {"gymnasium.envs.box2d": "box2d", "gymnasium.envs.mujoco": "mujoco", "ale_py": "atari"}


def register_atari() -> bool:
    """Register the ALE ids (e.g. PongNoFrameskip-v4) with gymnasium; False without ale-py."""
    try:
        import ale_py
    except ImportError:
        return False
    gym.register_envs(ale_py)
    return True


def check_env(cfg: DictConfig) -> gym.envs.registration.EnvSpec:
    """The `env` group is usable: its extra is installed and its id is registered."""
    if cfg.get("atari") and not register_atari():
        raise MissingExtraError(f"env.id={cfg.id} (Atari, env.atari=true)", "atari")
    return env_spec(cfg.id)


@contextlib.contextmanager
def extra_needed(env_id: str) -> Iterator[None]:
    """Turn gymnasium's 'dependency not installed' into one line naming our pip extra."""
    try:
        yield
    except (gym.error.DependencyNotInstalled, ImportError) as exc:
        entry = str(env_spec(env_id).entry_point)
        extra = next((e for prefix, e in EXTRAS.items() if entry.startswith(prefix)), None)
        if extra is None:
            raise
        raise MissingExtraError(f"env.id={env_id}", extra) from exc


def env_wrappers(cfg: DictConfig) -> list[Callable[[gym.Env], gym.Env]]:
    """Per-environment wrappers chosen by the env config (applied inside each vector slot)."""
    wrappers: list[Callable[[gym.Env], gym.Env]] = []
    if cfg.get("atari"):
        # 84x84 grayscale, max-pooled frame skip 4 (the id must not skip itself), 30 no-op starts
        wrappers.append(partial(gym.wrappers.AtariPreprocessing, noop_max=30, frame_skip=4))
    if cfg.get("frame_stack"):
        wrappers.append(
            partial(gym.wrappers.FrameStackObservation, stack_size=int(cfg.frame_stack))
        )
    return wrappers


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of an id; an unknown id fails with close matches."""
    if env_id not in gym.registry:
        register_atari()  # ALE ids exist only once ale-py has registered them
    try:
        return gym.spec(env_id)
    except gym.error.Error as exc:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"env.id='{env_id}' is not a registered environment ({exc}){hint}"
        ) from None


def shares_vector_env(cfg: DictConfig) -> bool:
    """Whether the members of a batch can share one vector env of all their sub-envs.

    So for numpy-native vector envs (CartPole), where one call steps any number of envs, and
    no wrapper keeps statistics across them (reward normalisation must stay per member).
    """
    if cfg.get("vectorization", "auto") != "auto" or cfg.get("normalize_reward"):
        return False
    return env_spec(cfg.id).vector_entry_point is not None and not env_wrappers(cfg)


def make_vector_env(cfg: DictConfig, num_envs: int, seed: int) -> gym.vector.VectorEnv:
    """N copies of `cfg.id` behind gymnasium's vector API, seeded and reset once.

    Uses the environment's own numpy-native vector implementation where it has one
    (CartPole), otherwise `cfg.vectorization` (sync or async). Autoreset is NEXT_STEP, which
    every gymnasium vector env supports: the step after an episode ends is a reset step.

    Episode statistics are recorded right after the env, so the logged returns are raw; Box
    actions are clipped to their bounds and rewards normalised or clipped outside that.
    """
    spec = check_env(cfg)
    kwargs = OmegaConf.to_container(cfg.kwargs, resolve=True) if cfg.get("kwargs") else {}
    wrappers = env_wrappers(cfg)
    mode = cfg.get("vectorization", "auto")
    if mode == "auto":
        native = spec.vector_entry_point is not None and not wrappers
        mode = "vector_entry_point" if native else "sync"
    with extra_needed(cfg.id):
        envs = gym.make_vec(
            cfg.id, num_envs=num_envs, vectorization_mode=mode, wrappers=wrappers or None, **kwargs
        )
    envs = EpisodeReturns(envs)
    if isinstance(envs.single_action_space, gym.spaces.Box):
        envs = gym.wrappers.vector.ClipAction(envs)
    if cfg.get("normalize_reward"):
        gamma = float(cfg.get("reward_gamma", 0.99))
        envs = gym.wrappers.vector.NormalizeReward(envs, gamma=gamma)
    if cfg.get("clip_reward"):
        bound = float(cfg.clip_reward)
        envs = gym.wrappers.vector.ClipReward(envs, -bound, bound)
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    return envs


def make_env(cfg: DictConfig, seed: int) -> gym.Env:
    """One environment, for per-episode trainers and evaluation: raw rewards, clipped actions."""
    check_env(cfg)
    kwargs = OmegaConf.to_container(cfg.kwargs, resolve=True) if cfg.get("kwargs") else {}
    with extra_needed(cfg.id):
        env = gym.make(cfg.id, **kwargs)
    for wrapper in env_wrappers(cfg):
        env = wrapper(env)
    if isinstance(env.action_space, gym.spaces.Box):
        env = gym.wrappers.ClipAction(env)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def reward_threshold(cfg: DictConfig) -> float | None:
    """The threshold a running return must pass to count as solved (config, else the spec)."""
    if cfg.get("reward_threshold") is not None:
        return float(cfg.reward_threshold)
    return env_spec(cfg.id).reward_threshold


def to_env_actions(actions: torch.Tensor) -> list[int] | list[np.ndarray]:
    """Each env's action as the env expects it, one per row of `actions` ([envs, ...]): a
    Python int for Discrete (which `Discrete.contains` checks fastest), else a numpy array.
    One copy to numpy for all the envs: a copy per env costs more than a CartPole step."""
    array = actions.cpu().numpy()
    return array.tolist() if array.ndim == 1 else list(array)


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
