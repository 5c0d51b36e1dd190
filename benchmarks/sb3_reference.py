"""Stable-Baselines3 reference side of acexp's speed benchmarks.

Every figure acexp publishes is a ratio against one of these references, measured in the same
invocation, because absolute times on the shared 2-core machine are noise. SB3 is a benchmark-only
dependency (``pip install acexp[bench]``); the ``acexp`` package never imports it.

All runs use one torch thread and ``device="cpu"``.

Run ``python benchmarks/sb3_reference.py`` for a short smoke test of every function, or see
``--help`` for the individual measurements.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack

CARTPOLE = "CartPole-v1"
SOLVED_RETURN = 475.0  # CartPole-v1's reward_threshold
EMA_WEIGHT = 0.05

# rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1: n_timesteps 1e5, and both learning_rate
# (lin_0.001) and clip_range (lin_0.2) decay linearly to 0 over those 1e5 steps.
PPO_CARTPOLE_SCHEDULE_STEPS = 100_000

VEC_ENV_CLASSES: dict[str, type[DummyVecEnv] | type[SubprocVecEnv]] = {
    "dummy": DummyVecEnv,
    "subproc": SubprocVecEnv,
}

# Defaults for sb3_ppo_throughput, per environment.
# Pong: the zoo's ``atari`` PPO entry (8 envs, n_steps 128, batch 256, 4 epochs, ent_coef 0.01,
# vf_coef 0.5; lr 2.5e-4 and clip 0.1 held constant: the zoo decays them over 1e7 steps, which
# is constant to within 0.2 % over a throughput run and costs the same per update).
# HalfCheetah: SB3's PPO defaults (batch 64, 10 epochs, lr 3e-4) with n_steps 256 per env, so that
# 8 envs give SB3's default rollout of 2048 samples per update. Stock MlpPolicy (64-64 tanh), no
# VecNormalize (the zoo uses 256-256 ReLU, VecNormalize and 1 env for HalfCheetah).
PPO_THROUGHPUT_DEFAULTS: dict[str, dict[str, Any]] = {
    "HalfCheetah-v5": dict(
        policy="MlpPolicy",
        n_steps=256,
        batch_size=64,
        n_epochs=10,
        vec_env="dummy",
    ),
    "PongNoFrameskip-v4": dict(
        policy="CnnPolicy",
        n_steps=128,
        batch_size=256,
        n_epochs=4,
        learning_rate=2.5e-4,
        clip_range=0.1,
        ent_coef=0.01,
        vf_coef=0.5,
        vec_env="dummy",
    ),
}


def linear_schedule(initial: float, budget: int, horizon: int) -> Callable[[float], float]:
    """Zoo's ``lin_<initial>``: decays linearly to 0 over ``horizon`` env steps.

    SB3 calls a schedule with ``progress_remaining = 1 - num_timesteps / budget`` where ``budget``
    is what was passed to ``learn``. The zoo passes its own ``n_timesteps``, so its schedule is
    ``initial * progress_remaining``. Taking ``horizon`` separately keeps the zoo's schedule when
    ``learn`` gets a different budget.
    """

    def schedule(progress_remaining: float) -> float:
        steps_done = (1.0 - progress_remaining) * budget
        return initial * max(0.0, 1.0 - steps_done / horizon)

    return schedule


class SolveTimer(BaseCallback):
    """Times training until acexp's "solved" criterion holds, then stops training.

    Criterion: a running return ``running = 0.05 * episode_return + 0.95 * running``, initialised
    with the first finished episode's return and updated once per finished episode, in env-index
    order within a vector step; solved as soon as an update takes it above ``threshold``.

    The clock starts in ``_on_training_start``: after model construction and the env reset done
    by ``learn``'s setup, immediately before the first rollout's first policy forward and env
    step (so the first step is included). It stops inside the ``_on_step`` of the solving step.
    """

    def __init__(self, threshold: float = SOLVED_RETURN, weight: float = EMA_WEIGHT) -> None:
        super().__init__()
        self.threshold = threshold
        self.weight = weight
        self.running: float | None = None
        self.episodes = 0
        self.start = 0.0
        self.seconds: float | None = None
        self.steps: int | None = None

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()

    def _on_step(self) -> bool:
        dones = self.locals["dones"]
        infos = self.locals["infos"]
        for i in np.flatnonzero(dones):
            episode_return = float(infos[i]["episode"]["r"])  # from SB3's Monitor wrapper
            self.episodes += 1
            if self.running is None:
                self.running = episode_return
            else:
                self.running = self.weight * episode_return + (1.0 - self.weight) * self.running
            if self.running > self.threshold:
                self.seconds = time.perf_counter() - self.start
                self.steps = self.num_timesteps  # env steps over all envs, this step included
                return False
        return True


def _timed_learn(model: BaseAlgorithm, total_steps: int) -> dict[str, Any]:
    """Runs ``model.learn`` and returns env steps per second of it, construction excluded."""
    start = time.perf_counter()
    model.learn(total_steps)
    seconds = time.perf_counter() - start
    return {"sps": model.num_timesteps / seconds, "steps": model.num_timesteps, "seconds": seconds}


def sb3_time_to_solve(
    algo: str,
    seed: int,
    max_steps: int = 500_000,
    *,
    schedule_steps: int = PPO_CARTPOLE_SCHEDULE_STEPS,
) -> dict[str, Any]:
    """Wall time and env steps for SB3 to solve CartPole-v1 with the zoo's hyperparameters.

    ``algo`` is ``"a2c"`` (zoo: 8 envs, ent_coef 0.0, SB3 defaults otherwise) or ``"ppo"`` (zoo:
    8 envs, n_steps 32, batch 256, gae_lambda 0.8, gamma 0.98, 20 epochs, ent_coef 0.0, lr and
    clip range linear from 1e-3 and 0.2 to 0 over ``schedule_steps``). PPO's budget is capped at
    ``schedule_steps``: past it the zoo stops and the learning rate is 0 anyway.

    Returns ``seconds`` and ``steps`` to solve (``None`` if not solved within the budget),
    ``episodes`` finished up to the solve, and ``sps`` = steps / seconds (``None`` if unsolved).
    """
    torch.set_num_threads(1)
    env = make_vec_env(CARTPOLE, n_envs=8, seed=seed)  # DummyVecEnv with Monitor per env
    model: BaseAlgorithm
    if algo == "a2c":
        budget = max_steps
        model = A2C("MlpPolicy", env, ent_coef=0.0, seed=seed, device="cpu")
    elif algo == "ppo":
        budget = min(max_steps, schedule_steps)
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=32,
            batch_size=256,
            gae_lambda=0.8,
            gamma=0.98,
            n_epochs=20,
            ent_coef=0.0,
            learning_rate=linear_schedule(1e-3, budget, schedule_steps),
            clip_range=linear_schedule(0.2, budget, schedule_steps),
            seed=seed,
            device="cpu",
        )
    else:
        raise ValueError(f"algo must be 'a2c' or 'ppo', got {algo!r}")
    timer = SolveTimer()
    model.learn(budget, callback=timer)
    env.close()
    seconds, steps = timer.seconds, timer.steps
    sps = steps / seconds if seconds is not None and steps is not None else None
    return {
        "algo": algo,
        "seed": seed,
        "seconds": seconds,
        "steps": steps,
        "episodes": timer.episodes,
        "sps": sps,
        "steps_run": model.num_timesteps,
    }


def sb3_throughput(
    total_steps: int, num_envs: int = 16, n_steps: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Env steps per second of SB3 A2C on CartPole-v1, learning without stopping.

    Separate 64-64 tanh actor and critic (SB3's default MlpPolicy, spelled out), all other A2C
    settings SB3's defaults. ``steps`` is rounded up to whole rollouts of ``num_envs * n_steps``.
    """
    torch.set_num_threads(1)
    env = make_vec_env(CARTPOLE, n_envs=num_envs, seed=seed)
    model = A2C(
        "MlpPolicy",
        env,
        n_steps=n_steps,
        policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh),
        seed=seed,
        device="cpu",
    )
    result = _timed_learn(model, total_steps)
    env.close()
    return result


def _make_ale_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make`` for an Atari id, registering ALE first.

    Registration must happen in the process that builds the env: SubprocVecEnv's forkserver
    workers do not inherit the parent's ``gym.register_envs(ale_py)``.
    """
    import ale_py

    gym.register_envs(ale_py)
    return gym.make(env_id, **kwargs)


def _make_ppo_env(env_id: str, num_envs: int, seed: int, vec_env_cls: type[VecEnv]) -> VecEnv:
    """Vector env for ``sb3_ppo_throughput``: SB3's Atari pipeline for Atari ids, else plain."""
    if "NoFrameskip" in env_id:
        make_env = functools.partial(_make_ale_env, env_id)
        env = make_atari_env(make_env, n_envs=num_envs, seed=seed, vec_env_cls=vec_env_cls)
        return VecFrameStack(env, n_stack=4)
    return make_vec_env(env_id, n_envs=num_envs, seed=seed, vec_env_cls=vec_env_cls)


def sb3_ppo_throughput(
    env_id: str,
    total_steps: int,
    num_envs: int = 8,
    n_steps: int | None = None,
    batch_size: int | None = None,
    n_epochs: int | None = None,
    seed: int = 0,
    vec_env: str | None = None,
) -> dict[str, Any]:
    """Env steps per second of SB3 PPO on ``HalfCheetah-v5`` or ``PongNoFrameskip-v4``.

    ``None`` arguments take the per-env defaults in ``PPO_THROUGHPUT_DEFAULTS``. Pong uses
    ``make_atari_env`` (SB3's AtariWrapper: no-op reset, frame skip 4, 84x84 grey, life loss as
    episode end, reward clipping) and ``VecFrameStack(4)`` with CnnPolicy. ``vec_env`` is
    ``"dummy"`` or ``"subproc"``; the default is what measured faster here (2 cores, torch 1
    thread, 20480 steps, 2026-11-21; shared machine, load 0.3 to 2.5, so only rough):

    - HalfCheetah-v5: dummy 2204 SPS, subproc 1407 SPS (back to back). Dummy wins: 8 cheap
      MuJoCo steps cost less than the pipe round trips, and the update takes ~75 % of the time.
    - PongNoFrameskip-v4: dummy 183 and 139 SPS (two runs), subproc 151 SPS. No clear winner:
      the CnnPolicy update on one thread takes ~80 % of the time, so dummy (simpler) is kept.
    """
    if env_id not in PPO_THROUGHPUT_DEFAULTS:
        raise ValueError(f"env_id must be one of {sorted(PPO_THROUGHPUT_DEFAULTS)}, got {env_id!r}")
    config = dict(PPO_THROUGHPUT_DEFAULTS[env_id])
    policy = config.pop("policy")
    default_vec_env = config.pop("vec_env")
    vec_env = vec_env or default_vec_env
    for key, value in (("n_steps", n_steps), ("batch_size", batch_size), ("n_epochs", n_epochs)):
        if value is not None:
            config[key] = value
    torch.set_num_threads(1)
    env = _make_ppo_env(env_id, num_envs, seed, VEC_ENV_CLASSES[vec_env])
    model = PPO(policy, env, seed=seed, device="cpu", **config)
    result = _timed_learn(model, total_steps)
    env.close()
    return {"env_id": env_id, "vec_env": vec_env, **result}


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("smoke", help="run every function briefly (the default)")
    solve = sub.add_parser("solve", help="time to solve CartPole-v1")
    solve.add_argument("--algo", choices=["a2c", "ppo"], required=True)
    solve.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    solve.add_argument("--max-steps", type=int, default=500_000)
    a2c = sub.add_parser("a2c-sps", help="A2C throughput on CartPole-v1")
    a2c.add_argument("--steps", type=int, default=200_000)
    ppo = sub.add_parser("ppo-sps", help="PPO throughput on HalfCheetah-v5 or Pong")
    ppo.add_argument("--env", choices=sorted(PPO_THROUGHPUT_DEFAULTS), required=True)
    ppo.add_argument("--steps", type=int, default=20_480)
    ppo.add_argument("--vec-env", choices=sorted(VEC_ENV_CLASSES), default=None)
    args = parser.parse_args()

    def show(result: dict[str, Any]) -> None:
        print(json.dumps(result), flush=True)

    if args.command == "solve":
        for seed in args.seeds:
            show(sb3_time_to_solve(args.algo, seed, args.max_steps))
    elif args.command == "a2c-sps":
        show(sb3_throughput(args.steps))
    elif args.command == "ppo-sps":
        show(sb3_ppo_throughput(args.env, args.steps, vec_env=args.vec_env))
    else:
        show(sb3_time_to_solve("a2c", seed=0, max_steps=20_000))
        show(sb3_time_to_solve("ppo", seed=0, max_steps=20_000))
        show(sb3_throughput(20_000))
        show(sb3_ppo_throughput("HalfCheetah-v5", 2048))
        show(sb3_ppo_throughput("PongNoFrameskip-v4", 1024))


if __name__ == "__main__":
    _main()
