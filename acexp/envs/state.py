"""Random-number and environment state as tensors and plain containers, for checkpoints.

Everything here survives `torch.load(..., weights_only=True)`: numpy arrays become tensors,
numpy's and gymnasium's generators are saved as their (plain dict) bit-generator states.
"""

import random

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers.utils import RunningMeanStd


def rng_state() -> dict:
    """The global generators of python, numpy and torch (and CUDA when it is in use)."""
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = torch.from_numpy(np_state["state"]["key"].copy())
    return {
        "python": random.getstate(),
        "numpy": np_state,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np_state = dict(state["numpy"])
    np_state["state"] = {**np_state["state"], "key": np_state["state"]["key"].numpy()}
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def _layers(env: gym.Env | gym.vector.VectorEnv) -> list:
    """The wrapper stack, outermost first."""
    layers = [env]
    while hasattr(layers[-1], "env"):
        layers.append(layers[-1].env)
    return layers


def exact_env_state(envs: gym.vector.VectorEnv) -> bool:
    """Whether `vector_env_state` captures the envs' whole state.

    Gymnasium's numpy-native vector envs (e.g. CartPole's `vector_entry_point`, defined in
    gymnasium.envs) keep their physics, step counters and autoreset flags in numpy arrays and
    one Generator, as do the wrappers above them. Sync and async vector envs hold sub-envs
    whose state (Box2D worlds, MuJoCo data, other processes) gymnasium cannot snapshot, and
    ale-py's vector env keeps its emulators in C++.
    """
    return type(_layers(envs)[-1]).__module__.startswith("gymnasium.envs.")


def vector_env_state(envs: gym.vector.VectorEnv, part: slice | None = None) -> list[dict]:
    """Per wrapper layer: its numeric arrays, its Generator and its running statistics
    (RunningMeanStd, e.g. NormalizeReward's `return_rms`).

    With `part`, only those sub-envs: arrays whose last axis runs over the sub-envs are cut
    to them (the state of one member's envs in a vector env that several members share).
    """
    state = []
    for layer in _layers(envs):
        entry: dict = {"arrays": {}, "np_random": None, "running": {}}
        for name, value in vars(layer).items():
            if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
                if part is not None and value.ndim and value.shape[-1] == envs.num_envs:
                    value = value[..., part]
                entry["arrays"][name] = torch.from_numpy(value.copy())
            elif name == "_np_random" and isinstance(value, np.random.Generator):
                entry["np_random"] = value.bit_generator.state
            elif isinstance(value, RunningMeanStd):
                entry["running"][name] = {
                    "mean": torch.from_numpy(np.array(value.mean)),
                    "var": torch.from_numpy(np.array(value.var)),
                    "count": float(value.count),
                }
        state.append(entry)
    return state


def set_vector_env_state(
    envs: gym.vector.VectorEnv, state: list[dict], statistics_only: bool = False
) -> None:
    """Restore what `vector_env_state` saved into envs built from the same config.

    `statistics_only` restores the running statistics alone: for envs that were reset
    because their episodes could not be saved (see `exact_env_state`).
    """
    for layer, entry in zip(_layers(envs), state, strict=True):
        for name, stats in entry["running"].items():
            rms = getattr(layer, name)
            rms.mean, rms.var = stats["mean"].numpy().copy(), stats["var"].numpy().copy()
            rms.count = stats["count"]
        if statistics_only:
            continue
        for name, value in entry["arrays"].items():
            setattr(layer, name, value.numpy().copy())
        if entry["np_random"] is not None:
            layer._np_random.bit_generator.state = entry["np_random"]


def generator_state(env: gym.Env) -> dict:
    """The env's own Generator: between episodes it is all a reset depends on."""
    return env.unwrapped.np_random.bit_generator.state


def set_generator_state(env: gym.Env, state: dict) -> None:
    env.unwrapped.np_random.bit_generator.state = state
