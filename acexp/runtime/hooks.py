"""Hooks: what the training loop calls at fixed points, so that the loop itself stays short
(Stable-Baselines3's callbacks are the model).

A trainer calls every hook, in order, after each gradient update (`on_update`), at its loop's
safe point, where its state is whole (`on_safe_point`: the top of each iteration), and when
a member ends (`on_member_end`). Checkpoints, evaluation, update scalars, progress and the
check for non-finite weights are hooks; `default_hooks` lists them.
"""

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from omegaconf import OmegaConf

from acexp.envs.make import make_env
from acexp.envs.state import generator_state, set_generator_state
from acexp.errors import NonFiniteError
from acexp.models import ActorCritic
from acexp.optim.modes import learning_rates, norm_after_clipping
from acexp.runtime.evaluation import play_member_episodes
from acexp.runtime.member import Member, eval_every

if TYPE_CHECKING:
    from acexp.algos.base import Trainer

log = logging.getLogger("acexp")
EVAL_SEED_OFFSET = 1_000_003  # evaluation envs are seeded apart from the training envs


@dataclass
class Update:
    """One gradient update: its losses ([members] each, detached), each optimizer's gradient
    norms before clipping ([members]), and the active members it stepped."""

    losses: dict[str, torch.Tensor]
    grad_norms: dict[str, torch.Tensor]
    members: list[Member]


class Hook:
    """A callback of the training loop; each method does nothing unless overridden."""

    def on_update(self, trainer: "Trainer", update: Update) -> None:
        """After a gradient update."""

    def on_safe_point(self, trainer: "Trainer", ready: list[Member]) -> None:
        """At the loop's safe point, for the active members `ready` there."""

    def on_member_end(self, trainer: "Trainer", member: Member, metrics: dict) -> None:
        """As `member` ends (its status set, its checkpoint written), before its metrics.json
        is: a hook may add to `metrics`."""

    def state_dict(self, k: int) -> dict:
        """What member k's checkpoint needs of this hook to continue exactly (plain data)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` put in a single run's checkpoint."""

    def close(self) -> None:
        """Release what the hook holds (environments)."""


class NonFiniteCheck(Hook):
    """Fails each member whose weights went non-finite (`Trainer.fail_non_finite`): after
    every update in a batch, so that one member's NaN actions never reach its envs; in a
    single run only when its update scalars are due, which keeps a host sync off the hot path
    (a run with NaN weights fails then, with the step and the parameter)."""

    def __init__(self, every_update: bool) -> None:
        self.every_update = every_update

    def on_update(self, trainer: "Trainer", update: Update) -> None:
        if self.every_update or any(m.logger.due(m.env_steps) for m in update.members):
            trainer.fail_non_finite()


class UpdateScalars(Hook):
    """Writes the update's losses, gradient norms (before and after clipping), learning rates
    and running return for each member whose logger is due; a member whose loss is not
    finite fails instead."""

    def on_update(self, trainer: "Trainer", update: Update) -> None:
        due = [m for m in update.members if m.active and m.logger.due(m.env_steps)]
        if not due:
            return
        values = {name: value.reshape(-1).tolist() for name, value in update.losses.items()}
        norms = {name: norm.tolist() for name, norm in update.grad_norms.items()}
        lrs = learning_rates(trainer.optimizers)
        for member in due:
            k = member.index
            losses = {name: value[k] for name, value in values.items()}
            bad = [name for name, value in losses.items() if not math.isfinite(value)]
            if bad:
                error = f"losses/{bad[0]} is {losses[bad[0]]} at env step {member.env_steps}"
                trainer.fail_member(member, NonFiniteError(error))
                continue
            member_norms = {
                name: (norm[k], norm_after_clipping(norm[k], member.clip_bound))
                for name, norm in norms.items()
            }
            member_lrs = {name: lr[k] for name, lr in lrs.items()}
            running = member.stats.running_return
            member.logger.update(member.env_steps, losses, member_norms, member_lrs, running)


class Checkpointing(Hook):
    """Writes each member's checkpoint every `checkpoint.every_steps` env steps."""

    def on_safe_point(self, trainer: "Trainer", ready: list[Member]) -> None:
        for member in ready:
            if member.env_steps >= member.next_checkpoint_step:
                trainer.save_checkpoint(member.index)


class Evaluation(Hook):
    """Evaluates the greedy policies every `every` env steps, each member on envs of its own
    (seeded apart from training; running observation statistics frozen), side by side, and
    once more as a member completes, for its metrics.json (unless it was just evaluated)."""

    def __init__(self, members: list[Member], every: int, episodes: int) -> None:
        self.every, self.episodes = every, episodes
        self.envs = [make_env(m.cfg.env, m.cfg.seed + EVAL_SEED_OFFSET) for m in members]

    def on_safe_point(self, trainer: "Trainer", ready: list[Member]) -> None:
        due = [m for m in ready if m.next_eval_step <= m.env_steps]
        if due:
            self.evaluate(trainer.model, due)
        for member in due:
            member.next_eval_step = (member.env_steps // self.every + 1) * self.every

    def on_member_end(self, trainer: "Trainer", member: Member, metrics: dict) -> None:
        if metrics["status"] != "completed":
            return
        if member.last_eval is None or member.last_eval[0] != member.env_steps:
            self.evaluate(trainer.model, [member])
        metrics["eval_return"], metrics["eval_return_std"] = member.last_eval[1:]

    def evaluate(self, model: ActorCritic, members: list[Member]) -> None:
        """Play these members' evaluation episodes; log and keep each one's mean and std."""
        envs = [None] * len(self.envs)
        for member in members:
            envs[member.index] = self.envs[member.index]
        returns = play_member_episodes(model, envs, self.episodes, True, [None] * len(envs))
        for member in members:
            own = returns[member.index]
            member.logger.evaluation(member.env_steps, own)
            member.last_eval = (member.env_steps, float(np.mean(own)), float(np.std(own)))

    def state_dict(self, k: int) -> dict:
        """Member k's evaluation env's generator: evaluations end between episodes, so it is
        all the next evaluation's resets draw from, and a resumed run evaluates on the
        episodes the uninterrupted one would."""
        return {"eval_env_rng": generator_state(self.envs[k])}

    def load_state_dict(self, state: dict) -> None:
        if "eval_env_rng" in state:  # absent from a checkpoint of a run without evaluation
            (env,) = self.envs
            set_generator_state(env, state["eval_env_rng"])

    def close(self) -> None:
        for env in self.envs:
            env.close()


class RunProgress(Hook):
    """Each member shows its own progress after every update: a bar on a terminal, else a
    line now and then (RunLogger.progress)."""

    def on_update(self, trainer: "Trainer", update: Update) -> None:
        for member in trainer.members:
            member.logger.progress(member.env_steps, member.stats.running_return, member.sps())


class BatchProgress(Hook):
    """One console line now and then for all the members of a batch, and one as each ends."""

    def __init__(self, every_seconds: float) -> None:
        self.every_seconds = every_seconds
        self.last_line = time.perf_counter()

    def on_safe_point(self, trainer: "Trainer", ready: list[Member]) -> None:
        now = time.perf_counter()
        if now - self.last_line < self.every_seconds:
            return
        self.last_line = now
        members = trainer.members
        steps = sum(m.env_steps for m in members)
        elapsed = max(max(m.stats.elapsed() for m in members), 1e-9)
        log.info(
            "batch of %d: %d training, %d solved, %d env steps, %.0f steps/s",
            len(members),
            sum(m.active for m in members),
            sum(m.stats.solved for m in members),
            steps,
            steps / elapsed,
        )

    def on_member_end(self, trainer: "Trainer", member: Member, metrics: dict) -> None:
        log.info(
            "member %s: %s, %s env steps, final_return %s, %s",
            member.name,
            metrics["status"],
            metrics["env_steps"],
            metrics["final_return"],
            member.stats.outcome(),
        )


def default_hooks(members: list[Member], alone: bool) -> list[Hook]:
    """The hooks of every trainer, in the order they run. A single run (`alone`) shows its
    own progress and checks its weights when it logs; a batch shows one line for all its
    members and checks their weights after every update."""
    hooks: list[Hook] = [NonFiniteCheck(every_update=not alone), UpdateScalars()]
    cfg = members[0].cfg
    if eval_every(cfg):
        episodes = int(OmegaConf.select(cfg, "eval.episodes", default=10))
        hooks.append(Evaluation(members, eval_every(cfg), episodes))
    hooks.append(Checkpointing())
    hooks.append(RunProgress() if alone else BatchProgress(cfg.log.console_every_seconds))
    return hooks
