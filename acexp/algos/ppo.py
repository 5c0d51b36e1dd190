"""Proximal policy optimisation (PPO-clip) on A2C's rollouts.

Rollout collection, NEXT_STEP autoreset masking and GAE are A2C's (`A2CTrainer.learn` and
`collect`); only the update differs: `n_epochs` passes over the valid transitions in
`num_minibatches` shuffled minibatches, each a clipped-surrogate step, optionally with a
clipped value loss, linear learning-rate annealing and early stopping on approximate KL.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from acexp.algos.a2c import A2CTrainer
from acexp.algos.losses import batch_mean, normalize, total_loss
from acexp.algos.ppo_losses import (
    clipped_surrogate_loss,
    clipped_value_loss,
    explained_variance,
    policy_shift,
)
from acexp.algos.registry import register_trainer
from acexp.optim.modes import apply_update

Minibatch = tuple[list[torch.Tensor], torch.Tensor | None]


@register_trainer("ppo")
class PPOTrainer(A2CTrainer):
    def __init__(self, cfgs: list[DictConfig], out_dirs: list[Path]) -> None:
        super().__init__(cfgs, out_dirs)
        # The log-probs taken while acting are the old policy's, so no forward pass over the
        # rollout is needed; except when running observation statistics moved during the
        # rollout: then they are recomputed with the new statistics, so the ratio starts at 1.
        self.stores_log_probs = not self.model.has_running_obs_norm
        self.clip_range = self.algo_coef("clip_range")
        if isinstance(self.clip_range, torch.Tensor):
            self.clip_range = self.clip_range.unsqueeze(1)  # against ratios [members, batch]

    def anneal_lr(self, rollout_steps: np.ndarray) -> None:
        """lr = initial lr * fraction of the step budget left before this rollout (CleanRL),
        per member."""
        done_before = self.env_steps - rollout_steps
        self.set_lr_fractions(np.maximum(1.0 - done_before / self.total_steps, 0.0))

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
                    log_prob, old_lp, adv, self.clip_range, mask
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
            "explained_variance": explained_variance(old_values, returns, valid),
        }
        self.log_update(losses, grad_norms)
