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

VECTORIZATIONS = ["auto", "sync", "async", "ale"]

# The Atari preprocessing both paths apply (gymnasium's wrappers and ale-py's vector env).
ATARI_FRAME_SKIP = 4  # max-pooled over the last two frames
ATARI_NOOP_MAX = 30  # up to 30 no-op actions after each reset
# The ALE id's keyword arguments that ale_py.AtariVectorEnv takes under the same name.
ALE_VECTOR_KWARGS = ("repeat_action_probability", "full_action_space", "max_num_frames_per_episode")


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
        # 84x84 grayscale, max-pooled frame skip 4 (the id must not skip itself), no-op starts
        wrappers.append(
            partial(
                gym.wrappers.AtariPreprocessing,
                noop_max=ATARI_NOOP_MAX,
                frame_skip=ATARI_FRAME_SKIP,
            )
        )
    if cfg.get("frame_stack"):
        # zero padding at an episode's start, as ale-py's vector env (and SB3's VecFrameStack)
        wrappers.append(
            partial(
                gym.wrappers.FrameStackObservation,
                stack_size=int(cfg.frame_stack),
                padding_type="zero",
            )
        )
    return wrappers


def ale_vector_covers(cfg: DictConfig) -> bool:
    """Whether ale-py's own vector env gives exactly what the wrapper path gives for `cfg`.

    So for an ALE id that does not skip frames itself (e.g. PongNoFrameskip-v4) with
    `env.atari` preprocessing and stacked frames (the vector env always stacks), pixel
    observations, and only the `env.kwargs` that the vector env takes too.
    """
    if not cfg.get("atari") or not cfg.get("frame_stack"):
        return False
    spec, options = env_spec(cfg.id), _env_options(cfg)
    return (
        str(spec.entry_point).startswith("ale_py")
        and options.get("frameskip") == 1
        and options.get("obs_type", "rgb") == "rgb"
        and set(options) <= {"game", "obs_type", "frameskip", *ALE_VECTOR_KWARGS}
    )


def _make_kwargs(cfg: DictConfig) -> dict:
    """`env.kwargs` as the plain dict gymnasium.make takes."""
    return OmegaConf.to_container(cfg.kwargs, resolve=True) if cfg.get("kwargs") else {}


def _env_options(cfg: DictConfig) -> dict:
    """The id's registered keyword arguments, updated by `env.kwargs`."""
    return {**env_spec(cfg.id).kwargs, **_make_kwargs(cfg)}


def vectorization(cfg: DictConfig) -> str:
    """The vectorization mode `env.vectorization` resolves to for this env.

    auto: the env's own numpy-native vector env where it has one and no wrapper is needed
    (CartPole), ale-py's vector env for the Atari ids it covers, else gymnasium's sync.
    """
    mode = cfg.get("vectorization", "auto")
    if mode == "ale" and not ale_vector_covers(cfg):
        raise ConfigError(
            f"env.vectorization=ale needs an ALE id that does not skip frames (e.g. "
            f"PongNoFrameskip-v4) with env.atari=true and env.frame_stack >= 1, and env.kwargs "
            f"among {', '.join(ALE_VECTOR_KWARGS)}; got env.id={cfg.id}, "
            f"env.atari={cfg.get('atari')}, env.frame_stack={cfg.get('frame_stack')}"
        )
    if mode != "auto":
        return mode
    if env_spec(cfg.id).vector_entry_point is not None and not env_wrappers(cfg):
        return "vector_entry_point"
    return "ale" if ale_vector_covers(cfg) else "sync"


def _make_ale_vector_env(cfg: DictConfig, num_envs: int) -> gym.vector.VectorEnv:
    """ale-py's C++ vector env with the preprocessing of `env_wrappers` built in.

    Rewards are left raw (acexp clips them outside, after the episode statistics) and there is
    no fire reset, as with gymnasium's AtariPreprocessing.
    """
    from ale_py import AtariVectorEnv

    options = _env_options(cfg)
    envs = AtariVectorEnv(
        options["game"],
        num_envs,
        frameskip=ATARI_FRAME_SKIP,
        noop_max=ATARI_NOOP_MAX,
        stack_num=int(cfg.frame_stack),
        reward_clipping=False,
        use_fire_reset=False,
        **{key: options[key] for key in ALE_VECTOR_KWARGS if key in options},
    )
    return AleVectorInputs(envs)


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

    So for numpy-native vector envs (CartPole) and ale-py's, where one call steps any number
    of envs, and no wrapper keeps statistics across them (reward normalisation must stay per
    member).
    """
    if cfg.get("normalize_reward"):
        return False
    return vectorization(cfg) in ("vector_entry_point", "ale")


def make_vector_env(cfg: DictConfig, num_envs: int, seed: int) -> gym.vector.VectorEnv:
    """N copies of `cfg.id` behind gymnasium's vector API, seeded and reset once.

    `vectorization` picks the implementation: the environment's own numpy-native vector env
    (CartPole), ale-py's (Atari), or gymnasium's sync or async around `env_wrappers`.
    Autoreset is NEXT_STEP, which all of them support: the step after an episode ends is a
    reset step.

    Episode statistics are recorded right after the env, so the logged returns are raw; Box
    actions are clipped to their bounds and rewards normalised or clipped outside that.
    """
    check_env(cfg)
    mode = vectorization(cfg)
    with extra_needed(cfg.id):
        if mode == "ale":
            envs = _make_ale_vector_env(cfg, num_envs)
        else:
            wrappers = env_wrappers(cfg) or None
            envs = gym.make_vec(
                cfg.id,
                num_envs=num_envs,
                vectorization_mode=mode,
                wrappers=wrappers,
                **_make_kwargs(cfg),
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
    with extra_needed(cfg.id):
        env = gym.make(cfg.id, **_make_kwargs(cfg))
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


class AleVectorInputs(gym.vector.VectorWrapper):
    """ale-py's vector env with the inputs and outputs of gymnasium's: actions in any
    sequence (its step takes a numpy array only), any int seed (it takes seeds below 2**31
    only; sub-env i gets (seed + i) mod (2**31 - 1), gymnasium's give seed + i), and float
    rewards (its int32 rewards would clip to 0 in [-0.5, 0.5])."""

    def reset(self, *, seed: int | None = None, options: dict | None = None):  # type: ignore[override]
        if seed is not None:
            seed = (seed + np.arange(self.num_envs, dtype=np.int64)) % (2**31 - 1)
        return self.env.reset(seed=seed, options=options)

    def step(self, actions):  # type: ignore[override]
        obs, rewards, terminated, truncated, info = self.env.step(np.asarray(actions))
        return obs, rewards.astype(np.float64), terminated, truncated, info


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
