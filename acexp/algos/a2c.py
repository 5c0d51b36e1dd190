"""Synchronous advantage actor-critic (A2C): one gradient step per rollout.

The on-policy engine (`on_policy.py`) collects `n_steps` transitions from each of `num_envs`
environments and computes GAE(lambda) advantages and returns (with gae_lambda 1, the n-step
bootstrapped returns). A2C then takes one step, per member, on

    loss = actor + vf_coef * critic - ent_coef * entropy
    actor  = mean over valid steps of -log pi(a|s) * A      (A optionally standardised)
    critic = mean over valid steps of (V(s) - G)^2          (or smooth L1)

where valid steps are those that are not the reset step of NEXT_STEP autoreset.
"""

import torch

from acexp.algos.losses import actor_loss, batch_mean, critic_loss, explained_variance, normalize
from acexp.algos.on_policy import OnPolicyTrainer
from acexp.algos.registry import register_trainer


@register_trainer("a2c")
class A2CTrainer(OnPolicyTrainer):
    def train(self, advantages: torch.Tensor, returns: torch.Tensor) -> None:
        """One gradient step on the valid transitions of the rollout."""
        (obs, actions, advantages, returns), mask = self.member_batch(
            self.obs, self.actions, advantages, returns
        )
        if self.algo.normalize_advantage:
            advantages = normalize(advantages, mask=mask)
        log_prob, entropy, values = self.model.evaluate_actions(obs, actions)
        losses = {
            "actor": actor_loss(log_prob, advantages, mask=mask),
            "critic": critic_loss(values, returns, self.algo.critic_loss, mask=mask),
            "entropy": batch_mean(entropy, mask),
        }
        if self.any_logger_due():  # a diagnostic: computed only when it is written
            losses["explained_variance"] = explained_variance(values.detach(), returns, mask)
        self.optimize(losses)
