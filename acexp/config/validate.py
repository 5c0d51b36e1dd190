"""Check the whole config before anything is built: one readable line per mistake."""

import re
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

import acexp.algos.components  # noqa: F401  (the registries must be full before RULES lists them)
from acexp.algos.registry import MODELS, TRAINERS
from acexp.envs.make import VECTORIZATIONS, check_env, vectorization
from acexp.errors import ConfigError
from acexp.models.layers import ACTIVATIONS
from acexp.models.normalization import OBS_NORMS
from acexp.optim.modes import OPTIMIZERS
from acexp.runtime.objective import OBJECTIVES


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(v: Any) -> bool:
    return _number(v) and v > 0


def _non_negative(v: Any) -> bool:
    return _number(v) and v >= 0


def _unit(v: Any) -> bool:
    return _number(v) and 0 <= v <= 1


def _positive_int(v: Any) -> bool:
    return _integer(v) and v >= 1


def _sizes(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(_positive_int(x) for x in v)


def _one_of(options: list[str]) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in options), f"one of {', '.join(options)}"


# key -> (check, allowed values); keys absent from the config are skipped (trainer-specific).
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "total_steps": (_positive_int, "an integer >= 1"),
    "device": (
        lambda v: isinstance(v, str) and re.fullmatch(r"cpu|cuda(:\d+)?|mps", v) is not None,
        "cpu, cuda, cuda:N or mps",
    ),
    "torch_threads": (_positive_int, "an integer >= 1"),
    "stop_on_solve": (lambda v: isinstance(v, bool), "true or false"),
    "arch.name": _one_of(MODELS.names()),
    "arch.hidden_sizes": (_sizes, "a non-empty list of integers >= 1, e.g. [64,64]"),
    "arch.activation": _one_of(list(ACTIVATIONS)),
    "arch.init": _one_of(["orthogonal", "torch"]),
    "optim.mode": _one_of(["joint", "separate"]),
    "optim.name": _one_of(list(OPTIMIZERS)),
    "optim.lr": (_positive, "a number > 0"),
    "optim.actor_lr": (_positive, "a number > 0"),
    "optim.critic_lr": (_positive, "a number > 0"),
    "optim.max_grad_norm": (lambda v: v is None or _non_negative(v), "null or a number >= 0"),
    "optim.eps": (_positive, "a number > 0"),
    "optim.alpha": (_unit, "a number in [0, 1]"),
    "optim.momentum": (_non_negative, "a number >= 0"),
    "algo.name": _one_of(TRAINERS.names()),
    "algo.gamma": (_unit, "a number in [0, 1]"),
    "algo.gae_lambda": (_unit, "a number in [0, 1]"),
    "algo.num_envs": (_positive_int, "an integer >= 1"),
    "algo.n_steps": (_positive_int, "an integer >= 1"),
    "algo.ent_coef": (_non_negative, "a number >= 0"),
    "algo.vf_coef": (_non_negative, "a number >= 0"),
    "algo.max_episodes": (_positive_int, "an integer >= 1"),
    "algo.max_episode_steps": (_positive_int, "an integer >= 1"),
    "algo.critic_loss": _one_of(["mse", "smooth_l1"]),
    "algo.loss_reduction": _one_of(["mean", "sum"]),
    "log.every_steps": (lambda v: v == "auto" or _positive_int(v), "auto or an integer >= 1"),
    "log.console_every_seconds": (_positive, "a number > 0"),
    "log.progress": (lambda v: v == "auto" or isinstance(v, bool), "auto, true or false"),
    "eval.every_steps": (lambda v: _integer(v) and v >= 0, "an integer >= 0 (0: no evaluation)"),
    "eval.episodes": (_positive_int, "an integer >= 1"),
    "checkpoint.every_steps": (_positive_int, "an integer >= 1"),
    "checkpoint.keep": (_positive_int, "an integer >= 1"),
    "resume": (lambda v: v is None or isinstance(v, str), "null or a run directory"),
    # ppo
    "algo.n_epochs": (_positive_int, "an integer >= 1"),
    "algo.num_minibatches": (_positive_int, "an integer >= 1"),
    "algo.clip_range": (_positive, "a number > 0"),
    "algo.clip_range_vf": (lambda v: v is None or _positive(v), "null or a number > 0"),
    "algo.anneal_lr": (lambda v: isinstance(v, bool), "true or false"),
    "algo.target_kl": (lambda v: v is None or _positive(v), "null or a number > 0"),
    # env wrappers and normalisation
    "env.obs_norm": _one_of(OBS_NORMS),
    "env.vectorization": _one_of(VECTORIZATIONS),
    "env.atari": (lambda v: isinstance(v, bool), "true or false"),
    "env.frame_stack": (lambda v: _integer(v) and v >= 0, "an integer >= 0 (0: no stacking)"),
    "env.normalize_reward": (lambda v: isinstance(v, bool), "true or false"),
    "env.clip_reward": (lambda v: v is None or _positive(v), "null or a number > 0"),
    "objective": _one_of(list(OBJECTIVES)),
}

# Keys acexp reads with a default when the config lacks them: the only keys that `+key=value`
# may add (any other added key would be silently ignored). A prefix ending in "." covers a node.
OPTIONAL_KEYS = ("optim.alpha", "optim.momentum", "env.kwargs.")


def is_optional_key(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in OPTIONAL_KEYS)


# Keys every run reads, whatever its trainer; a saved run from an older acexp may lack some.
REQUIRED = [
    "seed", "total_steps", "device", "torch_threads", "stop_on_solve", "env.id", "arch.name",
    "arch.hidden_sizes", "arch.activation", "arch.init", "optim.mode", "optim.name",
    "algo.name", "log.every_steps", "checkpoint.every_steps", "checkpoint.keep",
]  # fmt: skip

_MISSING = object()


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first bad key, its value and what is allowed."""
    for key in REQUIRED:
        if OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
            raise ConfigError(
                f"{key} is missing from the config (a run saved by an older acexp lacks the "
                "keys added since; start it again with this version)"
            )
    for key, (check, allowed) in RULES.items():
        try:
            value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
        except Exception as exc:  # an interpolation that does not resolve
            raise ConfigError(f"{key}: {exc}") from None
        if value is _MISSING:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not check(value):
            raise ConfigError(f"{key}={value!r} is invalid; expected {allowed}")
    check_env(cfg.env)
    vectorization(cfg.env)  # env.vectorization=ale on an env it does not cover fails here


def check_device(device: str) -> None:
    """ConfigError unless this machine has `device` (validate() checks only its spelling: a
    saved run is validated on machines that will not train it, e.g. by acexp.evaluate)."""
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = (
                f"this torch ({torch.__version__}) is built without CUDA"
                if torch.version.cuda is None
                else "no CUDA device is visible"
            )
            raise ConfigError(f"device={device}: CUDA is not available ({why}); use device=cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(
                f"device={device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
            )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={device}: MPS (Apple GPU) is not available; use device=cpu")
