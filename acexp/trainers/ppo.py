"""Proximal policy optimisation (PPO-clip) on A2C's rollouts.

Rollout collection, NEXT_STEP autoreset masking and GAE are A2C's (`A2CTrainer.learn` and
`collect`); only the update differs: `n_epochs` passes over the valid transitions in
`num_minibatches` shuffled minibatches, each a clipped-surrogate step, optionally with a
clipped value loss, linear learning-rate annealing and early stopping on approximate KL.
"""

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from acexp.losses import normalize, total_loss
from acexp.optim import apply_update
from acexp.ppo_losses import (
    clipped_surrogate_loss,
    clipped_value_loss,
    explained_variance,
    policy_shift,
)
from acexp.registry import register_trainer
from acexp.trainers.a2c import A2CTrainer


@register_trainer("ppo")
class PPOTrainer(A2CTrainer):
    def __init__(self, cfg: DictConfig, out_dir: Path) -> None:
        super().__init__(cfg, out_dir)
        # The log-probs taken while acting are the old policy's, so no forward pass over the
        # rollout is needed; except when running observation statistics moved during the
        # rollout: then they are recomputed with the new statistics, so the ratio starts at 1.
        self.stores_log_probs = not self.model.has_running_obs_norm
        self.initial_lrs = [
            [group["lr"] for group in named.optimizer.param_groups] for named in self.optimizers
        ]

    def anneal_lr(self, rollout_steps: int) -> None:
        """lr = initial lr * fraction of the step budget left before this rollout (CleanRL)."""
        done_before = self.env_steps - rollout_steps
        frac = max(1.0 - done_before / self.cfg.total_steps, 0.0)
        for named, lrs in zip(self.optimizers, self.initial_lrs, strict=True):
            for group, lr in zip(named.optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr * frac

    def train(self, advantages: torch.Tensor, returns: torch.Tensor) -> None:
        """Several clipped-surrogate epochs over the valid transitions of the rollout."""
        algo = self.algo
        if algo.anneal_lr:
            self.anneal_lr(int(np.count_nonzero(self.valid)))
        obs, actions, advantages, returns, old_values, old_log_probs = self.valid_batch(
            self.obs, self.actions, advantages, returns, self.values, self.log_probs
        )
        if not self.stores_log_probs:
            with torch.no_grad():
                old_log_probs = self.model.evaluate_actions(obs, actions)[0]

        rollout = (obs, actions, advantages, returns, old_values, old_log_probs)
        for _ in range(algo.n_epochs):
            # One shuffle per epoch, then minibatches are contiguous slices (views, no copies).
            order = torch.randperm(obs.shape[0], device=self.device)
            # index_select: several times faster than tensor[order] on image batches
            shuffled = [tensor.index_select(0, order) for tensor in rollout]
            splits = min(algo.num_minibatches, obs.shape[0])
            for batch_obs, batch_actions, adv, ret, old_v, old_lp in zip(
                *(tensor.tensor_split(splits) for tensor in shuffled), strict=True
            ):
                log_prob, entropy, values = self.model.evaluate_actions(batch_obs, batch_actions)
                if algo.normalize_advantage:
                    adv = normalize(adv)
                actor, log_ratio = clipped_surrogate_loss(log_prob, old_lp, adv, algo.clip_range)
                critic = clipped_value_loss(values, old_v, ret, algo.clip_range_vf)
                entropy = entropy.mean()
                loss = total_loss(actor, critic, entropy, algo.vf_coef, algo.ent_coef)
                grad_norms = apply_update(loss, self.optimizers, self.max_grad_norm)
            # on the epoch's last minibatch: what early stopping and the logs read (CleanRL)
            approx_kl, clipfrac = policy_shift(log_ratio, algo.clip_range)
            if algo.target_kl is not None and float(approx_kl) > algo.target_kl:
                break  # the policy moved too far from the one that collected the data

        losses = {  # the last minibatch's values, as CleanRL logs them
            "actor": actor.detach(),
            "critic": critic.detach(),
            "entropy": entropy.detach(),
            "approx_kl": approx_kl,
            "clipfrac": clipfrac,
            "explained_variance": explained_variance(old_values, returns),
        }
        self.log_update(losses, grad_norms)
