"""Evaluate a trained policy on fresh episodes of its environment, with raw rewards."""

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig

from acexp.envs.make import make_env, to_env_actions
from acexp.models import ActorCritic


def policy_action(model: ActorCritic, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
    """The greedy action (the distribution's mode: argmax or Gaussian mean) or a sample."""
    dist, _ = model(obs)
    return dist.mode if deterministic else dist.sample()


@torch.inference_mode()
def play_member_episodes(
    model: ActorCritic,
    envs: list[gym.Env | None],
    episodes: int,
    deterministic: bool,
    seeds: list[int | None],
) -> list[list[float]]:
    """Undiscounted returns of `episodes` full episodes of each member of `model`, member k
    in `envs[k]` (None: member k does not play), all stepped together; each member's first
    reset is seeded with `seeds[k]`. A member that has played its episodes waits."""
    device = next(model.parameters()).device
    playing = [k for k, env in enumerate(envs) if env is not None]
    obs = {k: envs[k].reset(seed=seeds[k])[0] for k in playing}
    returns: dict[int, list[float]] = {k: [] for k in playing}
    totals = dict.fromkeys(playing, 0.0)
    idle = obs[playing[0]] if playing else None  # what a member that does not play is shown
    while playing:
        batch = torch.as_tensor(np.stack([obs.get(k, idle) for k in range(len(envs))]))
        batch = batch.to(device).unsqueeze(1)  # [members, 1, ...]
        actions = policy_action(model, batch, deterministic)
        env_actions = to_env_actions(actions[:, 0])
        for k in list(playing):
            obs[k], reward, terminated, truncated, _ = envs[k].step(env_actions[k])
            totals[k] += float(reward)
            if terminated or truncated:
                returns[k].append(totals[k])
                totals[k] = 0.0
                if len(returns[k]) == episodes:
                    playing.remove(k)
                else:
                    obs[k] = envs[k].reset()[0]
    return [returns.get(k, []) for k in range(len(envs))]


def play_episodes(
    model: ActorCritic, env: gym.Env, episodes: int, deterministic: bool, seed: int
) -> list[float]:
    """Undiscounted returns of `episodes` full episodes; the first reset is seeded with `seed`."""
    return play_member_episodes(model, [env], episodes, deterministic, [seed])[0]


def evaluate_policy(
    model: ActorCritic, cfg: DictConfig, episodes: int, deterministic: bool, seed: int
) -> list[float]:
    """Returns of `episodes` episodes on a fresh env of the run's config (or its `env` group).

    The env gets the same observation wrappers as in training but no reward normalisation;
    running observation statistics in the model are used as saved (frozen). The model is put
    in eval mode.
    """
    env_cfg = cfg.env if "env" in cfg and "id" not in cfg else cfg
    model.eval()
    env = make_env(env_cfg, seed)
    try:
        return play_episodes(model, env, episodes, deterministic, seed)
    finally:
        env.close()
