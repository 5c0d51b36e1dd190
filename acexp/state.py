"""Random-number and environment state as tensors and plain containers, for checkpoints.

Everything here survives `torch.load(..., weights_only=True)`: numpy arrays become tensors,
numpy's and gymnasium's generators are saved as their (plain dict) bit-generator states.
"""

import random

import gymnasium as gym
import numpy as np
import torch


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


def vector_env_state(envs: gym.vector.VectorEnv) -> list[dict] | None:
    """The numeric arrays and generator of every layer of a numpy-native vector env.

    A numpy-native vector env (e.g. CartPole's `vector_entry_point`) keeps its whole state
    (physics, step counters, autoreset flags) in numpy arrays and one Generator, as do the
    wrappers above it (RecordEpisodeStatistics). Sync and async vector envs hold sub-envs
    whose state (Box2D worlds, MuJoCo data, other processes) cannot be captured: None.
    """
    layers = _layers(envs)
    if isinstance(layers[-1], gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv):
        return None
    state = []
    for layer in layers:
        entry: dict = {"arrays": {}, "np_random": None}
        for name, value in vars(layer).items():
            if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
                entry["arrays"][name] = torch.from_numpy(value.copy())
            elif name == "_np_random" and isinstance(value, np.random.Generator):
                entry["np_random"] = value.bit_generator.state
        state.append(entry)
    return state


def set_vector_env_state(envs: gym.vector.VectorEnv, state: list[dict]) -> None:
    """Restore what `vector_env_state` saved into an env built from the same config."""
    for layer, entry in zip(_layers(envs), state, strict=True):
        for name, value in entry["arrays"].items():
            setattr(layer, name, value.numpy().copy())
        if entry["np_random"] is not None:
            layer._np_random.bit_generator.state = entry["np_random"]


def generator_state(env: gym.Env) -> dict:
    """The env's own Generator: between episodes it is all a reset depends on."""
    return env.unwrapped.np_random.bit_generator.state


def set_generator_state(env: gym.Env, state: dict) -> None:
    env.unwrapped.np_random.bit_generator.state = state
