"""Evaluate a trained policy on fresh episodes of its environment, with raw rewards."""

import torch
from omegaconf import DictConfig

from acexp.envs import make_env, to_env_action
from acexp.models import ActorCritic


def policy_action(model: ActorCritic, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
    """The greedy action (the distribution's mode: argmax or Gaussian mean) or a sample."""
    dist, _ = model(obs)
    return dist.mode if deterministic else dist.sample()


def evaluate_policy(
    model: ActorCritic, cfg: DictConfig, episodes: int, deterministic: bool, seed: int
) -> list[float]:
    """Undiscounted returns of `episodes` episodes, one env reset with `seed` then run on.

    `cfg` is the run's whole config or its `env` group. The env gets the same observation
    wrappers as in training but no reward normalisation; running observation statistics in
    the model are used as saved (frozen). The model is put in eval mode.
    """
    env_cfg = cfg.env if "env" in cfg and "id" not in cfg else cfg
    device = next(model.parameters()).device
    model.eval()
    env = make_env(env_cfg, seed)
    returns = []
    try:
        obs, _ = env.reset(seed=seed)
        for _ in range(episodes):
            total, done = 0.0, False
            while not done:
                with torch.inference_mode():
                    batch = torch.as_tensor(obs, device=device).unsqueeze(0)
                    action = policy_action(model, batch, deterministic)
                obs, reward, terminated, truncated, _ = env.step(to_env_action(action.squeeze(0)))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            obs, _ = env.reset()
    finally:
        env.close()
    return returns
