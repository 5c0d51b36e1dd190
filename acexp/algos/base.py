"""What every trainer shares: its members, the model and optimizers, the loop's safe point,
the update, a member's failure and end, and checkpoint state.

A trainer trains a batch of runs (members, `acexp.runtime.member`) that differ only in
per-member scalars: one model whose weights carry a leading member dimension, one optimizer
step for all, and per member its own envs, seed, statistics, logger, checkpoints and stop.
A single run is a batch of one. Checkpoints, evaluation, logging and progress are hooks
(`acexp.runtime.hooks`) that the loop calls at fixed points.
"""

from abc import ABC, abstractmethod
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from acexp.algos.losses import total_loss
from acexp.envs.state import rng_state, set_rng_state
from acexp.errors import NonFiniteError
from acexp.models.build import build_member_model
from acexp.optim.modes import apply_update, build_optimizers
from acexp.runtime.checkpoint import load_weights, save_checkpoint
from acexp.runtime.hooks import Update, default_hooks
from acexp.runtime.member import Member, batch_seed, member_tensor
from acexp.runtime.non_finite import non_finite_members


class Trainer(ABC):
    """Template for a training loop: subclasses make their envs and implement `learn()`.

    `learn()` runs until every member has ended: its `total_steps` env steps, solved when its
    `stop_on_solve`, or failed; or until `stop_requested` is set (by a signal handler). Its
    loop calls `finished()` at the top of every iteration, where the trainer's state is whole:
    that is where the hooks write checkpoints and evaluate, and members end, so a trainer whose
    loop is `while not self.finished()` gets them for free. `active` marks the members still
    training; `env_steps` counts each member's env steps, advanced by the loop.
    """

    def __init__(self, cfgs: list[DictConfig], out_dirs: list[Path]) -> None:
        self.cfg = cfgs[0]  # what every member shares: its env, algorithm and model
        # Plain python values: DictConfig attribute access is slow on the hot path.
        self.algo = SimpleNamespace(**OmegaConf.to_container(self.cfg.algo, resolve=True))
        self.device = torch.device(self.cfg.device)
        self.env_steps = np.zeros(len(cfgs), dtype=np.int64)
        self.active = np.ones(len(cfgs), dtype=bool)
        # The one place a single run and a batch part: a single run draws from the generators
        # `acexp.run` seeded with its seed, so that its numbers stay those it always gave, and
        # shows its own progress, checking its weights when it logs; a batch seeds what its
        # members draw together (the sampling stream, a shared vector env) from all their
        # seeds, shows one line for all, and checks every member's weights after each update.
        self.alone = len(cfgs) == 1
        self.members = [
            Member.create(k, cfg, Path(out_dir), self.env_steps, console=self.alone)
            for k, (cfg, out_dir) in enumerate(zip(cfgs, out_dirs, strict=True))
        ]
        observation_space, action_space = self.make_envs()
        self.model = build_member_model(cfgs, observation_space, action_space)
        if not self.alone:  # a batch samples and shuffles from a stream of its own
            torch.manual_seed(batch_seed(self.members))
        self.optimizers = build_optimizers(self.model, [c.optim for c in cfgs])
        for member in self.members:
            member.initial_weights = self.model.member_state_dict(member.index)
            member.base_lrs = {named.name: named.lrs()[member.index] for named in self.optimizers}
        # per-member scalars as tensors: the gradient bound [members, 1] (inf: none) against
        # each member's row of gradients, the loss weights [members]
        bounds = [[member.clip_bound or float("inf")] for member in self.members]
        self.max_grad_norm = torch.tensor(bounds, device=self.device)
        self.vf_coef = member_tensor(self.members, "vf_coef", self.device)
        ent_coef = member_tensor(self.members, "ent_coef", self.device)
        # None when no member has an entropy bonus: the term then stays out of the graph
        self.ent_coef = ent_coef if bool(ent_coef.any()) else None
        self.hooks = default_hooks(self.members, self.alone)
        self.stop_requested: int | None = None  # the signal number that asked to stop
        self.stopped_at_once: int | None = None  # the second signal, which stopped it at once
        self.resumed = False

    @abstractmethod
    def make_envs(self) -> tuple[gym.Space, gym.Space]:
        """Create each member's environments; return the single-env spaces."""

    @abstractmethod
    def learn(self) -> None:
        """Train until `finished()`."""

    def close(self) -> None:
        for hook in self.hooks:
            hook.close()
        for member in self.members:
            member.logger.close()

    @property
    def results(self) -> list[dict | None]:
        """Each member's metrics.json, once it has ended."""
        return [member.result for member in self.members]

    @property
    def errors(self) -> list[BaseException | None]:
        """Each member's error, when it failed."""
        return [member.error for member in self.members]

    # -- the loop -----------------------------------------------------------------------------

    def finished(self, members: np.ndarray | None = None) -> bool:
        """The loop's safe point: the hooks run (evaluation, checkpoints, progress) and the
        members that are done end, of every member or of those `members` marks (the members
        at a safe point, for a trainer whose members are not all at one at once); then
        whether to stop (a signal, or no member left)."""
        ready = [m for m in self.members if m.active and (members is None or members[m.index])]
        for hook in self.hooks:
            hook.on_safe_point(self, ready)
        for member in ready:
            if member.active and self.should_end(member):
                self.end_member(member, "completed")
        return self.stop_requested is not None or not self.active.any()

    def should_end(self, member: Member) -> bool:
        """Whether `member` has reached its end (see `Member.done`)."""
        return member.done

    def request_stop(self, signum: int) -> None:
        """Stop at the next `finished()`, with a checkpoint; safe to call from a signal handler."""
        self.stop_requested = signum

    def end_episode(self, k: int, episode_return: float, length: int) -> None:
        member = self.members[k]
        member.stats.record(episode_return, member.env_steps)
        member.logger.episode(episode_return, length, member.env_steps)

    def start_clocks(self) -> None:
        for member in self.members:
            member.stats.start_clock()

    # -- updates ------------------------------------------------------------------------------

    def optimize(self, losses: dict[str, torch.Tensor], members: np.ndarray | None = None) -> None:
        """One step on actor + vf_coef * critic - ent_coef * entropy, per member (every member,
        or those `members` marks); every entry ([members]) is logged."""
        loss = total_loss(
            losses["actor"], losses["critic"], losses["entropy"], self.vf_coef, self.ent_coef
        )
        grad_norms = apply_update(loss, self.optimizers, self.max_grad_norm, members)
        self.updated({name: value.detach() for name, value in losses.items()}, grad_norms, members)

    def updated(
        self,
        losses: dict[str, torch.Tensor],
        grad_norms: dict[str, torch.Tensor],
        members: np.ndarray | None = None,
    ) -> None:
        """Hand an update (of every member, or those `members` marks) to the hooks."""
        stepped = [m for m in self.members if m.active and (members is None or members[m.index])]
        update = Update(losses, grad_norms, stepped)
        for hook in self.hooks:
            hook.on_update(self, update)

    def apply_lrs(self) -> None:
        """Each member's learning rates at its `lr_fraction` of its configured ones; 0 for a
        member that has ended, which freezes it."""
        for named in self.optimizers:
            named.set_lrs(
                [m.base_lrs[named.name] * m.lr_fraction if m.active else 0.0 for m in self.members]
            )

    # -- a member's failure and end -----------------------------------------------------------

    def fail_non_finite(self) -> None:
        """Fail every active member whose weights hold a NaN or Inf."""
        for k, what in non_finite_members(self.model, self.optimizers, self.active).items():
            self.fail_member(
                self.members[k], NonFiniteError(f"{what} at env step {self.env_steps[k]}")
            )

    def fail_member(self, member: Member, error: BaseException) -> None:
        """End `member` as failed, alone: its error goes into its metrics.json; its slice is
        reset to its initial weights and frozen, so that it cannot disturb the batch."""
        member.error = error
        self.end_member(member, "failed")
        self.model.load_member_state_dict(member.index, member.initial_weights)
        for named in self.optimizers:
            named.reset_member(member.index)

    def end_member(self, member: Member, status: str) -> None:
        """`member` stops: its checkpoint (unless failed), metrics.json, and when completed its
        model.pt and HParams entry; the hooks add to its metrics (the final evaluation). The
        other members go on."""
        if not member.active:
            return
        if status != "failed":
            what = non_finite_members(self.model, self.optimizers, self.active).get(member.index)
            if what:  # its end would save NaNs: it fails instead
                self.fail_member(member, NonFiniteError(f"{what} at env step {member.env_steps}"))
                return
            self.save_checkpoint(member.index)
        member.status = status
        self.active[member.index] = False
        metrics = {"status": status, **member.metrics(self.member_parameters)}
        for hook in self.hooks:
            hook.on_member_end(self, member, metrics)
        member.write_end(metrics, self.model.member_state_dict(member.index), self.stop_requested)
        self.apply_lrs()  # its learning rate is now 0

    def stop_at_once(self, signum: int) -> None:
        """A second signal: every member still training stops now, without a checkpoint (the
        state may be mid-update) and without figures of that state; its metrics.json says so,
        and `resume=` continues it from its last checkpoint."""
        self.stopped_at_once = signum
        for member in self.members:
            if member.active:
                member.status = "interrupted"
                self.active[member.index] = False
                note = "stopped at once by a second signal, without a checkpoint at the stop"
                member.write_end({"status": "interrupted", "note": note}, {}, signum)

    def end_all(self, status: str, error: BaseException | None = None) -> None:
        """End every member still active (training stopped: by a signal, or by an error)."""
        for member in self.members:
            if member.active:
                if error is not None:
                    member.error = error
                self.end_member(member, status)

    # -- checkpoints --------------------------------------------------------------------------

    def state_dict(self, k: int = 0) -> dict:
        """Member k's state as a single run's checkpoint holds it: tensors and plain
        containers only. Subclasses add their own state (envs, rollout position)."""
        member = self.members[k]
        hooks = {key: value for hook in self.hooks for key, value in hook.state_dict(k).items()}
        return {
            **hooks,
            "model": self.model.member_state_dict(k),
            "optimizers": {named.name: named.member_state_dict(k) for named in self.optimizers},
            "env_steps": member.env_steps,
            "next_checkpoint_step": int(member.next_checkpoint_step),
            "next_eval_step": int(member.next_eval_step),
            "stats": member.stats.state_dict(),
            "logger": member.logger.state_dict(),
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue a single run from a checkpoint written by `state_dict()` (a batch's member
        resumes as a single run)."""
        (member,) = self.members  # a checkpoint continues one run
        load_weights(self.model, state["model"], Path(state.get("path", "the checkpoint")))
        for named in self.optimizers:
            named.load_state_dict(state["optimizers"][named.name])
        # base_lrs stay the config's: the saved lr is the annealed one of that moment
        self.env_steps[0] = state["env_steps"]
        member.next_checkpoint_step = state["next_checkpoint_step"]
        member.next_eval_step = state.get("next_eval_step", member.next_eval_step)
        member.last_checkpoint_step = member.env_steps
        member.stats.load_state_dict(state["stats"])
        member.logger.load_state_dict(state["logger"], resume_step=member.env_steps)
        set_rng_state(state["rng"])
        for hook in self.hooks:
            hook.load_state_dict(state)
        self.resumed = True

    def save_checkpoint(self, k: int = 0) -> None:
        """Write member k's `checkpoints/step_<env steps>.pt` atomically (never with NaNs)."""
        member = self.members[k]
        every = member.cfg.checkpoint.every_steps
        member.next_checkpoint_step = (member.env_steps // every + 1) * every
        if member.last_checkpoint_step == member.env_steps:
            return
        what = non_finite_members(self.model, self.optimizers, self.active).get(k)
        if what:  # a checkpoint never stores NaNs
            self.fail_member(member, NonFiniteError(f"{what} at env step {member.env_steps}"))
            return
        member.logger.flush()  # curves up to the checkpoint survive a kill -9
        keep = member.cfg.checkpoint.keep
        save_checkpoint(self.state_dict(k), member.run_dir / "checkpoints", member.env_steps, keep)
        member.last_checkpoint_step = member.env_steps

    @property
    def member_parameters(self) -> int:
        """Trainable parameters of one member's model: what a set-up costs in size."""
        return sum(p[0].numel() for p in self.model.parameters())  # each has a member dim
