"""Proximal policy optimisation (PPO-clip, Schulman et al. 2017).

The on-policy engine (`on_policy.py`) collects the rollouts and their GAE advantages, as for
A2C; PPO's update differs: `n_epochs` passes over the valid transitions in `num_minibatches`
shuffled minibatches, each a step on the clipped surrogate, optionally with a clipped value
loss, linear learning-rate annealing and early stopping on approximate KL.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from acexp.algos.losses import Coef, batch_mean, explained_variance, normalize, total_loss
from acexp.algos.on_policy import OnPolicyTrainer
from acexp.algos.registry import register_trainer
from acexp.optim.modes import apply_update
from acexp.runtime.member import member_tensor

Minibatch = tuple[list[torch.Tensor], torch.Tensor | None]


def clipped_surrogate_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantage: torch.Tensor,
    ratio_bounds: tuple[Coef, Coef],
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's policy loss mean(max(-A r, -A clip(r, 1-e, 1+e))), r = pi/pi_old; and log r.

    `ratio_bounds` is (1 - e, 1 + e): numbers, or [members, 1] each. Means are over the last
    dimension (per member) and over the entries `mask` keeps.
    """
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    advantage = advantage.detach()
    unclipped = -advantage * ratio
    clipped = -advantage * torch.clamp(ratio, *ratio_bounds)
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


@register_trainer("ppo")
class PPOTrainer(OnPolicyTrainer):
    def __init__(self, cfgs: list[DictConfig], out_dirs: list[Path]) -> None:
        super().__init__(cfgs, out_dirs)
        # The log-probs taken while acting are the old policy's, so no forward pass over the
        # rollout is needed; except when running observation statistics moved during the
        # rollout: then they are recomputed with the new statistics, so the ratio starts at 1.
        self.stores_log_probs = not self.model.has_running_obs_norm
        # [members, 1] against ratios [members, batch]; the bounds 1 -+ clip_range from the
        # configured numbers, rounded once (as a number's would be when torch clamps by it)
        clip_range = member_tensor(self.members, "clip_range", self.device, torch.float64)
        self.clip_range = clip_range.float().unsqueeze(1)
        self.ratio_bounds = ((1 - clip_range).float()[:, None], (1 + clip_range).float()[:, None])

    def anneal_lr(self, rollout_steps: np.ndarray) -> None:
        """lr = initial lr * fraction of the step budget left before this rollout (CleanRL),
        per member."""
        for member, steps in zip(self.members, rollout_steps, strict=True):
            done_before = member.env_steps - int(steps)
            member.lr_fraction = max(1.0 - done_before / member.total_steps, 0.0)
        self.apply_lrs()

    def minibatches(
        self, rollout: list[torch.Tensor], valid: torch.Tensor | None
    ) -> Iterator[Minibatch]:
        """One epoch's minibatches: each member's valid transitions, shuffled, in
        `num_minibatches` even parts; each [members, part, ...] with the mask of entries a
        member really has (None when every member has the whole part)."""
        members, size = rollout[0].shape[:2]
        keys = torch.rand(members, size, device=self.device)
        if valid is not None:
            keys.masked_fill_(~valid, 2.0)  # each member's valid transitions first
        order = keys.argsort(dim=1) + torch.arange(members, device=self.device).unsqueeze(1) * size
        # index_select: several times faster than tensor[order] on image batches
        shuffled = [t.flatten(0, 1).index_select(0, order.flatten()) for t in rollout]
        whole = [t.view(members, size, *t.shape[1:]) for t in shuffled]
        counts = np.full(members, size) if valid is None else valid.sum(1).cpu().numpy()
        active = np.flatnonzero(self.active)
        counts[~self.active] = counts[active[0]]  # an ended member's rows are not used
        splits = int(min(self.algo.num_minibatches, max(1, counts.min())))
        parts = np.arange(splits + 1)[None]  # as tensor_split: the first n % splits one larger
        bounds = parts * (counts // splits)[:, None] + np.minimum(parts, (counts % splits)[:, None])
        for lo, hi in zip(bounds[:, :-1].T, bounds[:, 1:].T, strict=True):
            if (lo == lo[0]).all() and (hi == hi[0]).all():  # views: every member the same part
                yield [t[:, lo[0] : hi[0]] for t in whole], None
                continue
            width = int((hi - lo).max())
            position = lo[:, None] + np.arange(width)[None]
            mask = torch.from_numpy(position < hi[:, None]).to(self.device)
            index = np.minimum(position, size - 1) + np.arange(members)[:, None] * size
            index = torch.from_numpy(index).flatten().to(self.device)
            yield (
                [t.index_select(0, index).view(members, width, *t.shape[1:]) for t in shuffled],
                mask,
            )

    def train(self, advantages: torch.Tensor, returns: torch.Tensor) -> None:
        """Several clipped-surrogate epochs over the valid transitions of the rollout."""
        algo = self.algo
        if algo.anneal_lr:
            self.anneal_lr(self.valid.sum(axis=(0, 2)))
        (obs, actions, advantages, returns, old_values, old_log_probs), valid = self.member_batch(
            self.obs, self.actions, advantages, returns, self.values, self.log_probs
        )
        if not self.stores_log_probs:
            with torch.no_grad():
                old_log_probs = self.model.evaluate_actions(obs, actions)[0]

        rollout = [obs, actions, advantages, returns, old_values, old_log_probs]
        for _ in range(algo.n_epochs):
            for batch, mask in self.minibatches(rollout, valid):
                batch_obs, batch_actions, adv, ret, old_v, old_lp = batch
                log_prob, entropy, values = self.model.evaluate_actions(batch_obs, batch_actions)
                if algo.normalize_advantage:
                    adv = normalize(adv, mask=mask)
                actor, log_ratio = clipped_surrogate_loss(
                    log_prob, old_lp, adv, self.ratio_bounds, mask
                )
                critic = clipped_value_loss(values, old_v, ret, algo.clip_range_vf, mask)
                entropy = batch_mean(entropy, mask)
                loss = total_loss(actor, critic, entropy, self.vf_coef, self.ent_coef)
                grad_norms = apply_update(loss, self.optimizers, self.max_grad_norm)
            # on the epoch's last minibatch: what early stopping and the logs read (CleanRL)
            approx_kl, clipfrac = policy_shift(log_ratio, self.clip_range, mask)
            # a batch never holds target_kl runs (acexp.sweeps.batch): their epochs stop separately
            if algo.target_kl is not None and float(approx_kl.max()) > algo.target_kl:
                break  # the policy moved too far from the one that collected the data

        losses = {  # the last minibatch's values, as CleanRL logs them
            "actor": actor.detach(),
            "critic": critic.detach(),
            "entropy": entropy.detach(),
            "approx_kl": approx_kl,
            "clipfrac": clipfrac,
        }
        if self.any_logger_due():  # a diagnostic: computed only when it is written, as A2C's
            losses["explained_variance"] = explained_variance(old_values, returns, valid)
        self.updated(losses, grad_norms)
