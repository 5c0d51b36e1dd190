"""Pure tensor functions for returns, advantages, the actor-critic losses every trainer uses
and the explained-variance diagnostic (PPO's own clipped losses are in ppo.py)."""

import numpy as np
import torch
import torch.nn.functional as F

Coef = float | torch.Tensor  # one value, or one per member ([members])


def batch_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The mean over the last (batch) dimension, of the entries where `mask` is true.

    Over [members, batch] this is one mean per member; with no mask, `x.mean(-1)`.
    """
    if mask is None:
        return x.mean(-1)
    return (x * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def _reduce(x: torch.Tensor, reduction: str, mask: torch.Tensor | None) -> torch.Tensor:
    if reduction == "sum":
        return (x if mask is None else x * mask).sum(-1)
    return batch_mean(x, mask)


def actor_loss(
    log_prob: torch.Tensor,
    advantage: torch.Tensor,
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Policy-gradient loss -(log_prob * advantage), averaged (A2C) or summed (the tutorial's
    per-episode loss) over the last dimension (per member), over the entries `mask` keeps.

    The advantage is detached: the actor loss never moves the critic.
    """
    return _reduce(-(log_prob * advantage.detach()), reduction, mask)


def critic_loss(
    value: torch.Tensor,
    target: torch.Tensor,
    kind: str = "mse",
    reduction: str = "mean",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Value regression loss: "mse" (A2C's) or "smooth_l1" (the tutorial's),
    reduced over the last dimension (per member), over the entries `mask` keeps."""
    if kind == "mse":
        error = F.mse_loss(value, target, reduction="none")
    elif kind == "smooth_l1":
        error = F.smooth_l1_loss(value, target, reduction="none")
    else:
        raise ValueError(f"unknown critic loss '{kind}'; known: mse, smooth_l1")
    return _reduce(error, reduction, mask)


def total_loss(
    actor: torch.Tensor,
    critic: torch.Tensor,
    entropy: torch.Tensor,
    vf_coef: Coef = 1.0,
    ent_coef: Coef | None = 0.01,
) -> torch.Tensor:
    """actor + vf_coef * critic - ent_coef * entropy: the entropy bonus is subtracted.

    The coefficients are numbers or one per member. With ent_coef 0 or None (no bonus) the
    entropy term is left out of the graph: the same gradient, fewer autograd nodes on the hot
    path of PPO's many small minibatch steps.
    """
    loss = actor + vf_coef * critic
    if not isinstance(ent_coef, torch.Tensor) and not ent_coef:
        return loss
    return loss - ent_coef * entropy


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Returns G_t = r_t + gamma * G_{t+1} of one finished episode (no bootstrap)."""
    returns = []
    running = 0.0
    for reward in reversed(rewards.tolist()):  # python floats: far cheaper than tensor indexing
        running = reward + gamma * running
        returns.append(running)
    return torch.tensor(returns[::-1], dtype=rewards.dtype)


def normalize(x: torch.Tensor, eps: float = 1e-8, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(x - mean) / (std + eps) over the last dimension (per member), the tutorial's return
    normalisation (unbiased std); with `mask`, over the entries it keeps.

    A single element has no spread, so it is only centred (the tutorial would give NaN).
    """
    if mask is None:
        if x.shape[-1] < 2:
            return x - x.mean(-1, keepdim=True)
        return (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps)
    count = mask.sum(-1, keepdim=True)
    centred = (x - (x * mask).sum(-1, keepdim=True) / count.clamp(min=1)) * mask
    var = centred.square().sum(-1, keepdim=True) / (count - 1).clamp(min=1)
    return torch.where(count < 2, centred, centred / (var.sqrt() + eps))


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


def explained_variance(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """1 - Var(target - prediction) / Var(target): 1 is perfect, 0 no better than a constant.

    Over the last dimension (per member), of the entries `mask` keeps. Zero when the target
    has no variance (SB3 gives NaN there, which would stop training).
    """

    def variance(x: torch.Tensor) -> torch.Tensor:
        return batch_mean((x - batch_mean(x, mask).unsqueeze(-1)).square(), mask)

    var_target = variance(target)
    ev = 1 - variance(target - prediction) / var_target
    return torch.where(var_target > 0, ev, torch.zeros_like(ev))
