"""Pure tensor functions of PPO (Schulman et al. 2017) and the explained-variance diagnostic."""

import torch

from acexp.algos.losses import Coef, batch_mean


def clipped_surrogate_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantage: torch.Tensor,
    clip_range: Coef,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's policy loss mean(max(-A r, -A clip(r, 1-e, 1+e))), r = pi/pi_old; and log r.

    Means are over the last dimension (per member; `clip_range` one or [members, 1]) and
    over the entries `mask` keeps.
    """
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    advantage = advantage.detach()
    unclipped = -advantage * ratio
    clipped = -advantage * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    return batch_mean(torch.max(unclipped, clipped), mask), log_ratio


@torch.no_grad()
def policy_shift(
    log_ratio: torch.Tensor, clip_range: Coef, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """How far the policy moved: the approximate KL(old || new), mean((r - 1) - log r)
    (Schulman's k3, as in CleanRL), and the fraction of ratios outside the clip range."""
    ratio = log_ratio.exp()
    approx_kl = batch_mean((ratio - 1) - log_ratio, mask)
    clipfrac = batch_mean(((ratio - 1).abs() > clip_range).float(), mask)
    return approx_kl, clipfrac


def clipped_value_loss(
    value: torch.Tensor,
    old_value: torch.Tensor,
    target: torch.Tensor,
    clip_range: float | None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared error of the value; with a clip range, the max of the clipped and unclipped error.

    The clipped prediction is old_value + clip(value - old_value, -c, c) (PPO2, CleanRL).
    No 1/2 factor: the same MSE as A2C's critic loss, so vf_coef means the same in both.
    """
    error = (value - target).square()
    if clip_range is None:
        return batch_mean(error, mask)
    clipped = old_value + torch.clamp(value - old_value, -clip_range, clip_range)
    return batch_mean(torch.max(error, (clipped - target).square()), mask)


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
