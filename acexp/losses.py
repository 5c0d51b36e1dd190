"""Pure tensor functions for returns, advantages and the actor-critic losses (SPEC A3, D)."""

import numpy as np
import torch
import torch.nn.functional as F


def actor_loss(
    log_prob: torch.Tensor, advantage: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Policy-gradient loss -(log_prob * advantage), averaged (SPEC A3) or summed (SPEC D).

    The advantage is detached: the actor loss never moves the critic.
    """
    loss = -(log_prob * advantage.detach())
    return loss.sum() if reduction == "sum" else loss.mean()


def critic_loss(
    value: torch.Tensor, target: torch.Tensor, kind: str = "mse", reduction: str = "mean"
) -> torch.Tensor:
    """Value regression loss: "mse" (SPEC A3) or "smooth_l1" (the tutorial of SPEC D)."""
    if kind == "mse":
        return F.mse_loss(value, target, reduction=reduction)
    if kind == "smooth_l1":
        return F.smooth_l1_loss(value, target, reduction=reduction)
    raise ValueError(f"unknown critic loss '{kind}'; known: mse, smooth_l1")


def total_loss(
    actor: torch.Tensor,
    critic: torch.Tensor,
    entropy: torch.Tensor,
    vf_coef: float = 1.0,
    ent_coef: float = 0.01,
) -> torch.Tensor:
    """actor + vf_coef * critic - ent_coef * entropy: the entropy bonus is subtracted.

    With ent_coef 0 the entropy term is left out of the graph: the same gradient, fewer
    autograd nodes on the hot path of PPO's many small minibatch steps.
    """
    loss = actor + vf_coef * critic
    return loss - ent_coef * entropy if ent_coef else loss


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Returns G_t = r_t + gamma * G_{t+1} of one finished episode (no bootstrap)."""
    returns = []
    running = 0.0
    for reward in reversed(rewards.tolist()):  # python floats: far cheaper than tensor indexing
        running = reward + gamma * running
        returns.append(running)
    return torch.tensor(returns[::-1], dtype=rewards.dtype)


def normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / (std + eps), the tutorial's return normalisation (unbiased std).

    A single element has no spread, so it is only centred (the tutorial would give NaN).
    """
    if x.numel() < 2:
        return x - x.mean()
    return (x - x.mean()) / (x.std() + eps)


def gae(
    rewards: np.ndarray | torch.Tensor,
    values: np.ndarray | torch.Tensor,
    next_values: np.ndarray | torch.Tensor,
    terminated: np.ndarray | torch.Tensor,
    done: np.ndarray | torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a [T, N] rollout (CPU arrays or tensors).

    `next_values[t]` is V(s_{t+1}) as observed after step t; when step t was truncated, that
    is the value of the episode's final observation, so truncation bootstraps while
    termination does not. `done[t]` (terminated or truncated) stops the recursion.
    With gae_lambda = 1 the advantages plus values are the n-step bootstrapped returns.
    Returns (advantages, returns) as float32 tensors.
    """
    # numpy throughout: at rollout sizes per-op torch dispatch costs more than the arithmetic.
    values = np.asarray(values, dtype=np.float32)
    not_terminated = 1.0 - np.asarray(terminated, dtype=np.float32)
    not_done = 1.0 - np.asarray(done, dtype=np.float32)
    next_values = np.asarray(next_values, dtype=np.float32)
    deltas = np.asarray(rewards, dtype=np.float32) + gamma * next_values * not_terminated - values
    decay = gamma * gae_lambda * not_done
    advantages = np.empty_like(deltas)
    last = np.zeros_like(deltas[0])
    for t in range(deltas.shape[0] - 1, -1, -1):
        last = deltas[t] + decay[t] * last
        advantages[t] = last
    return torch.from_numpy(advantages), torch.from_numpy(advantages + values)
