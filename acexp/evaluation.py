"""Evaluate a trained policy on fresh episodes of its environment, with raw rewards."""

import gymnasium as gym
import torch
from omegaconf import DictConfig

from acexp.envs import make_env, to_env_action
from acexp.models import ActorCritic


def policy_action(model: ActorCritic, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
    """The greedy action (the distribution's mode: argmax or Gaussian mean) or a sample."""
    dist, _ = model(obs)
    return dist.mode if deterministic else dist.sample()


@torch.inference_mode()
def play_episodes(
    model: ActorCritic, env: gym.Env, episodes: int, deterministic: bool, seed: int
) -> list[float]:
    """Undiscounted returns of `episodes` full episodes; the first reset is seeded with `seed`."""
    device = next(model.parameters()).device
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        total, done = 0.0, False
        while not done:
            batch = torch.as_tensor(obs, device=device).unsqueeze(0)
            action = policy_action(model, batch, deterministic)
            obs, reward, terminated, truncated, _ = env.step(to_env_action(action.squeeze(0)))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


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
