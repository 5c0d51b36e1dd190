"""What every trainer shares: the members, model and optimizers, episode stats, logging, and
each member's own end (metrics.json, model.pt, checkpoints).

A trainer trains a batch of runs (members) that differ only in per-member scalars
(`acexp.sweeps.batch.MEMBER_KEYS`): one model whose weights carry a leading member dimension, one
optimizer step for all, and per member its own envs, seed, statistics, logger, checkpoints
and stop. A single run is a batch of one.
"""

import logging
import math
import signal
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from acexp.algos.losses import total_loss
from acexp.algos.registry import MODELS
from acexp.envs.make import make_env, reward_threshold
from acexp.envs.state import rng_state, set_rng_state
from acexp.errors import NonFiniteError
from acexp.logs.hparams import hyperparameters
from acexp.logs.logger import RunLogger
from acexp.models import ActorCritic
from acexp.models.actor_critic import stack_members
from acexp.optim.modes import apply_update, build_optimizers, learning_rates, norm_after_clipping
from acexp.runtime.checkpoint import load_weights, save_checkpoint, save_json, save_torch
from acexp.runtime.evaluation import play_member_episodes
from acexp.runtime.tracking import EpisodeStats

log = logging.getLogger("acexp")
EVAL_SEED_OFFSET = 1_000_003  # evaluation envs are seeded apart from the training envs


def build_model(
    cfg: DictConfig, observation_space: gym.Space, action_space: gym.Space, members: int = 1
) -> ActorCritic:
    """The `arch` model for these spaces (spaces are runtime values, never written to cfg)."""
    model_cls = MODELS.get(cfg.arch.name)
    hidden = list(OmegaConf.to_container(cfg.arch.hidden_sizes, resolve=True))
    model = model_cls(
        observation_space,
        action_space,
        hidden,
        cfg.arch.activation,
        cfg.arch.init,
        obs_norm=cfg.env.get("obs_norm", "none"),
        log_std_init=float(cfg.arch.get("log_std_init", 0.0)),
        members=members,
    )
    return model.to(cfg.device)


def build_member_model(
    cfgs: list[DictConfig], observation_space: gym.Space, action_space: gym.Space
) -> ActorCritic:
    """One model for all members, member k initialised as a single run seeded with its seed.

    A single run draws from the generators as `run` seeded them; a batch seeds each member,
    then the batch's own stream (sampling, shuffling) from all its seeds.
    """
    if len(cfgs) == 1:
        return build_model(cfgs[0], observation_space, action_space)
    models = []
    for cfg in cfgs:
        torch.manual_seed(cfg.seed)
        models.append(build_model(cfg, observation_space, action_space))
    batched = build_model(cfgs[0], observation_space, action_space, members=len(cfgs))
    torch.manual_seed(int(np.random.SeedSequence([c.seed for c in cfgs]).generate_state(1)[0]))
    return stack_members(models, batched)


def member_coef(values: list[float], device: torch.device) -> float | torch.Tensor:
    """One number when every member has it (the single-run path stays scalar), else one per
    member as a tensor [members]."""
    if len(set(values)) == 1:
        return float(values[0])
    return torch.tensor(values, dtype=torch.float32, device=device)


class Trainer(ABC):
    """Template for a training loop: subclasses make their envs and implement `learn()`.

    `learn()` runs until every member has ended: its `total_steps` env steps, solved when its
    `stop_on_solve`, or failed; or until `stop_requested` is set (by a signal handler). Its
    loop calls `finished()` at the top of every iteration, where the trainer's state is whole:
    that is where checkpoints are written and members end, so a trainer whose loop is
    `while not self.finished()` gets them for free. `active` marks the members still training.
    """

    def __init__(self, cfgs: list[DictConfig], out_dirs: list[Path]) -> None:
        self.cfgs, self.cfg, self.out_dirs = cfgs, cfgs[0], [Path(d) for d in out_dirs]
        self.members = len(cfgs)
        # Plain python values: DictConfig attribute access is slow on the hot path.
        self.algo = SimpleNamespace(**OmegaConf.to_container(self.cfg.algo, resolve=True))
        self.total_steps = np.array([int(c.total_steps) for c in cfgs])
        self.stop_on_solve = [bool(c.stop_on_solve) for c in cfgs]
        self.device = torch.device(self.cfg.device)
        observation_space, action_space = self.make_envs()
        self.model = build_member_model(cfgs, observation_space, action_space)
        self.initial_weights = [self.model.member_state_dict(k) for k in range(self.members)]
        self.optimizers = build_optimizers(self.model, [c.optim for c in cfgs])
        self.base_lrs = {named.name: named.lrs() for named in self.optimizers}
        self.lr_fractions = np.ones(self.members)  # of base_lrs, as PPO anneals them
        # each member's clipping bound, None for none (null or 0), as logged
        self.clip_bounds = [c.optim.max_grad_norm or None for c in cfgs]
        norms = [bound or math.inf for bound in self.clip_bounds]
        self.max_grad_norm = (
            None if all(map(math.isinf, norms)) else member_coef(norms, self.device)
        )
        if isinstance(self.max_grad_norm, torch.Tensor):
            self.max_grad_norm = self.max_grad_norm.unsqueeze(1)  # scales [members, P] rows
        self.vf_coef = self.algo_coef("vf_coef")
        self.ent_coef = self.algo_coef("ent_coef")
        self.stats = [EpisodeStats(reward_threshold(c.env)) for c in cfgs]
        self.env_steps = np.zeros(self.members, dtype=np.int64)
        self.loggers = [self._make_logger(c, d) for c, d in zip(cfgs, self.out_dirs, strict=True)]
        self.next_checkpoint_step = np.array([c.checkpoint.every_steps for c in cfgs])
        self.last_checkpoint_step: list[int | None] = [None] * self.members
        self.active = np.ones(self.members, dtype=bool)
        self.results: list[dict | None] = [None] * self.members
        self.errors: list[BaseException | None] = [None] * self.members
        self.eval_every = int(OmegaConf.select(self.cfg, "eval.every_steps", default=0) or 0)
        self.eval_episodes = int(OmegaConf.select(self.cfg, "eval.episodes", default=10))
        self.eval_envs: list[gym.Env] = []
        if self.eval_every:
            self.eval_envs = [make_env(c.env, c.seed + EVAL_SEED_OFFSET) for c in cfgs]
        self.next_eval_step = np.full(self.members, self.eval_every)
        self.last_eval: dict[int, tuple[int, float, float]] = {}  # step, mean, std
        self.stop_requested: int | None = None  # the signal number that asked to stop
        self.resumed = False
        self.last_batch_line = time.perf_counter()

    def _make_logger(self, cfg: DictConfig, out_dir: Path) -> RunLogger:
        one = self.members == 1  # a batch reports one progress line for all its members
        return RunLogger(
            out_dir,
            cfg.total_steps,
            every_steps=cfg.log.every_steps,
            console_every_seconds=cfg.log.console_every_seconds if one else math.inf,
            progress=cfg.log.progress if one else False,
        )

    def algo_coef(self, key: str) -> float | torch.Tensor:
        """The algo setting `key` of every member (see `member_coef`)."""
        return member_coef(self.member_values(key).tolist(), self.device)

    def member_values(self, key: str) -> np.ndarray:
        """The algo setting `key` of every member, as an array [members]."""
        return np.array([float(c.algo[key]) for c in self.cfgs])

    @abstractmethod
    def make_envs(self) -> tuple[gym.Space, gym.Space]:
        """Create each member's environments; return the single-env spaces."""

    @abstractmethod
    def learn(self) -> None:
        """Train until `finished()`."""

    def close(self) -> None:
        for env in self.eval_envs:
            env.close()
        for logger in self.loggers:
            logger.close()

    # -- the loop's bookkeeping ---------------------------------------------------------------

    def finished(self, members: np.ndarray | None = None) -> bool:
        """Evaluate, write the checkpoints that are due and end the members that are done, of
        every member or of those `members` marks (the members at a safe point, for a trainer
        whose members are not all at one at once); then whether to stop (a signal, or no
        member left)."""
        ready = self.active if members is None else self.active & members
        due = self.next_eval_step <= self.env_steps
        if self.eval_every and (due & ready).any():
            self.evaluate(np.flatnonzero(due & ready))
        for k in np.flatnonzero(ready):
            if self.env_steps[k] >= self.next_checkpoint_step[k]:
                self.save_checkpoint(k)
            budget_spent = self.env_steps[k] >= self.total_steps[k]
            if budget_spent or (self.stop_on_solve[k] and self.stats[k].solved):
                self.end_member(k, "completed")
        self.report_progress()
        return self.stop_requested is not None or not self.active.any()

    def request_stop(self, signum: int) -> None:
        """Stop at the next `finished()`, with a checkpoint; safe to call from a signal handler."""
        self.stop_requested = signum

    def end_episode(self, k: int, episode_return: float, length: int) -> None:
        self.stats[k].record(episode_return, int(self.env_steps[k]))
        self.loggers[k].episode(episode_return, length, int(self.env_steps[k]))

    def start_clocks(self) -> None:
        for stats in self.stats:
            stats.start_clock()

    def evaluate(self, members: list[int]) -> dict[int, tuple[float, float]]:
        """Evaluate these members' greedy policies on their own evaluation envs (seeded apart
        from training; running observation statistics frozen), side by side; log each
        member's eval/return. Returns each member's (mean, std) of returns."""
        envs = [env if k in members else None for k, env in enumerate(self.eval_envs)]
        returns = play_member_episodes(
            self.model, envs, self.eval_episodes, True, [None] * self.members
        )
        for k in members:
            every = self.eval_every
            self.next_eval_step[k] = (self.env_steps[k] // every + 1) * every
            self.loggers[k].evaluation(int(self.env_steps[k]), returns[k])
            self.last_eval[k] = (
                int(self.env_steps[k]),
                float(np.mean(returns[k])),
                float(np.std(returns[k])),
            )
        return {int(k): self.last_eval[k][1:] for k in members}

    # -- updates ------------------------------------------------------------------------------

    def optimize(self, losses: dict[str, torch.Tensor], members: np.ndarray | None = None) -> None:
        """One step on actor + vf_coef * critic - ent_coef * entropy, per member (every member,
        or those `members` marks); every entry ([members]) is logged."""
        loss = total_loss(
            losses["actor"], losses["critic"], losses["entropy"], self.vf_coef, self.ent_coef
        )
        self.update({name: value.detach() for name, value in losses.items()}, loss, members)

    def update(
        self, losses: dict[str, torch.Tensor], loss: torch.Tensor, members: np.ndarray | None = None
    ) -> None:
        """One gradient step on `loss` ([members]) for every member, or those `members` marks
        (the others stay as they were); scalars are written when a logger is due."""
        grad_norms = apply_update(loss, self.optimizers, self.max_grad_norm, members)
        self.log_update(losses, grad_norms, members)

    def log_update(
        self,
        losses: dict[str, torch.Tensor],
        grad_norms: dict[str, torch.Tensor],
        members: np.ndarray | None = None,
    ) -> None:
        """Write update scalars for the members updated (all, or those `members` marks) whose
        logger is due (for trainers that step several times). In a batch, a member whose
        weights went non-finite fails here alone, after every update, before its NaN actions
        reach its envs."""
        updated = self.active if members is None else self.active & members
        due = [k for k in np.flatnonzero(updated) if self.loggers[k].due(self.env_steps[k])]
        if due or self.members > 1:
            self.fail_non_finite()
        due = [k for k in due if self.active[k]]
        if due:
            values = {name: value.reshape(-1).tolist() for name, value in losses.items()}
            norms = {name: norm.tolist() for name, norm in grad_norms.items()}
            lrs = learning_rates(self.optimizers)
            for k in due:
                member_losses = {name: value[k] for name, value in values.items()}
                bad = [name for name, value in member_losses.items() if not math.isfinite(value)]
                if bad:
                    self.fail_member(
                        k,
                        NonFiniteError(
                            f"losses/{bad[0]} is {member_losses[bad[0]]} at env step "
                            f"{self.env_steps[k]}"
                        ),
                    )
                    continue
                bound = self.clip_bounds[k]
                member_norms = {
                    name: (norm[k], norm_after_clipping(norm[k], bound))
                    for name, norm in norms.items()
                }
                member_lrs = {name: lr[k] for name, lr in lrs.items()}
                running = self.stats[k].running_return
                self.loggers[k].update(
                    int(self.env_steps[k]), member_losses, member_norms, member_lrs, running
                )
        if self.members == 1:
            self.loggers[0].progress(
                int(self.env_steps[0]), self.stats[0].running_return, self.sps(0)
            )

    def set_lr_fractions(self, fractions: np.ndarray) -> None:
        """Each member's learning rates at `fractions` of their configured values (0 freezes
        a member that has ended)."""
        self.lr_fractions = fractions
        fractions = np.where(self.active, fractions, 0.0)
        for named in self.optimizers:
            named.set_lrs(
                [lr * f for lr, f in zip(self.base_lrs[named.name], fractions, strict=True)]
            )

    # -- failures -----------------------------------------------------------------------------

    def non_finite_members(self) -> dict[int, str]:
        """Active members whose parameters or buffers hold a NaN or Inf, with the first such
        tensor's name and value (one host sync when all is well)."""
        rows = [named.flat.rows(named.flat.flat.detach()) for named in self.optimizers]
        buffers = [b for b in self.model.buffers() if b.is_floating_point()]
        finite = [t.isfinite().reshape(self.members, -1).all(1) for t in rows + buffers]
        finite = torch.stack(finite).all(0)
        bad = np.flatnonzero(~finite.cpu().numpy() & self.active)
        found: dict[int, str] = {}
        if not bad.size:
            return found
        tensors = [(n, t) for n, t in self.model.state_dict().items() if t.is_floating_point()]
        for k in bad:
            for name, tensor in tensors:
                if not bool(tensor[k].isfinite().all()):
                    value = tensor[k][~tensor[k].isfinite()].flatten()[0].item()
                    found[int(k)] = f"parameter {name} holds {value}"
                    break
        return found

    def fail_non_finite(self) -> None:
        for k, what in self.non_finite_members().items():
            self.fail_member(k, NonFiniteError(f"{what} at env step {self.env_steps[k]}"))

    def fail_member(self, k: int, error: BaseException) -> None:
        """End member k as failed, alone: its error goes into its metrics.json; its slice is
        reset to its initial weights and frozen, so that it cannot disturb the batch."""
        self.errors[k] = error
        self.end_member(k, "failed", f"{type(error).__name__}: {error}")
        if self.members > 1:
            self.model.load_member_state_dict(k, self.initial_weights[k])
            for named in self.optimizers:
                named.reset_member(k)

    # -- a member's end -----------------------------------------------------------------------

    def end_member(self, k: int, status: str, error: str | None = None) -> None:
        """Member k stops: its checkpoint (unless failed), metrics.json, and when completed its
        model.pt and HParams entry. The other members go on."""
        if not self.active[k]:
            return
        if status != "failed":
            non_finite = self.non_finite_members()
            if k in non_finite:  # its end would save NaNs: it fails instead
                error = f"{non_finite[k]} at env step {self.env_steps[k]}"
                self.fail_member(k, NonFiniteError(error))
                return
            self.save_checkpoint(k)
        self.active[k] = False
        metrics = {"status": status, **self.metrics(k)}
        if status == "completed" and self.eval_every:  # the final evaluation, once a step
            step, *evaluation = self.last_eval.get(k, (None,))
            if step != self.env_steps[k]:
                evaluation = self.evaluate([k])[k]
            metrics["eval_return"], metrics["eval_return_std"] = evaluation
        if self.stop_requested is not None and status == "interrupted":
            metrics["signal"] = signal.Signals(self.stop_requested).name
        if error:
            metrics["error"] = error
        save_json(metrics, self.out_dirs[k] / "metrics.json")
        if status == "completed":
            save_torch(self.model.member_state_dict(k), self.out_dirs[k] / "model.pt")
            self.loggers[k].hparams(hyperparameters(self.cfgs[k]), metrics)
        self.loggers[k].flush()
        self.results[k] = metrics
        if self.members > 1:
            self.set_lr_fractions(self.lr_fractions)  # its rate is now 0
            log.info("member %s: %s", self.out_dirs[k].name, _summary(metrics, self.stats[k]))

    def end_all(self, status: str, error: BaseException | None = None) -> None:
        """End every member still active (training stopped: by a signal, or by an error)."""
        for k in np.flatnonzero(self.active):
            if error is None:
                self.end_member(k, status)
            else:
                self.errors[k] = error
                self.end_member(k, status, f"{type(error).__name__}: {error}")

    def report_progress(self) -> None:
        """In a batch, one console line now and then for all its members."""
        now = time.perf_counter()
        if self.members == 1 or now - self.last_batch_line < self.cfg.log.console_every_seconds:
            return
        self.last_batch_line = now
        solved = sum(s.solved for s in self.stats)
        elapsed = max(max(s.elapsed() for s in self.stats), 1e-9)
        log.info(
            "batch of %d: %d training, %d solved, %d env steps, %.0f steps/s",
            self.members,
            int(self.active.sum()),
            solved,
            int(self.env_steps.sum()),
            self.env_steps.sum() / elapsed,
        )

    # -- checkpoints --------------------------------------------------------------------------

    def state_dict(self, k: int = 0) -> dict:
        """Member k's state as a single run's checkpoint holds it: tensors and plain
        containers only. Subclasses add their own state (envs, rollout position)."""
        return {
            "model": self.model.member_state_dict(k),
            "optimizers": {named.name: named.member_state_dict(k) for named in self.optimizers},
            "env_steps": int(self.env_steps[k]),
            "next_checkpoint_step": int(self.next_checkpoint_step[k]),
            "next_eval_step": int(self.next_eval_step[k]),
            "stats": self.stats[k].state_dict(),
            "logger": self.loggers[k].state_dict(),
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue a single run from a checkpoint written by `state_dict()` (a batch's member
        resumes as a single run)."""
        if self.members != 1:
            raise ValueError("a checkpoint continues one run")
        load_weights(self.model, state["model"], Path(state.get("path", "the checkpoint")))
        for named in self.optimizers:
            named.load_state_dict(state["optimizers"][named.name])
        # base_lrs stay the config's: the saved lr is the annealed one of that moment
        self.env_steps[0] = state["env_steps"]
        self.next_checkpoint_step[0] = state["next_checkpoint_step"]
        self.next_eval_step[0] = state.get("next_eval_step", self.eval_every)
        self.last_checkpoint_step[0] = int(self.env_steps[0])
        self.stats[0].load_state_dict(state["stats"])
        self.loggers[0].load_state_dict(state["logger"], resume_step=int(self.env_steps[0]))
        set_rng_state(state["rng"])
        self.resumed = True

    def save_checkpoint(self, k: int = 0) -> None:
        """Write member k's `checkpoints/step_<env steps>.pt` atomically (never with NaNs)."""
        every = self.cfgs[k].checkpoint.every_steps
        self.next_checkpoint_step[k] = (self.env_steps[k] // every + 1) * every
        if self.last_checkpoint_step[k] == self.env_steps[k]:
            return
        non_finite = self.non_finite_members()
        if k in non_finite:  # a checkpoint never stores NaNs
            self.fail_member(k, NonFiniteError(f"{non_finite[k]} at env step {self.env_steps[k]}"))
            return
        self.loggers[k].flush()  # curves up to the checkpoint survive a kill -9
        save_checkpoint(
            self.state_dict(k),
            self.out_dirs[k] / "checkpoints",
            int(self.env_steps[k]),
            self.cfgs[k].checkpoint.keep,
        )
        self.last_checkpoint_step[k] = int(self.env_steps[k])

    # -- figures ------------------------------------------------------------------------------

    def sps(self, k: int = 0) -> float:
        return self.env_steps[k] / max(self.stats[k].elapsed(), 1e-9)

    def metrics(self, k: int = 0) -> dict:
        wall = self.stats[k].elapsed()
        return {
            "env_steps": int(self.env_steps[k]),
            **self.stats[k].summary(),
            "wall_seconds": wall,
            "sps": int(self.env_steps[k]) / max(wall, 1e-9),
            "parameters": self.member_parameters,
        }

    @property
    def member_parameters(self) -> int:
        """Trainable parameters of one member's model: what a set-up costs in size."""
        return sum(p[0].numel() for p in self.model.parameters())  # each has a member dim


def _summary(metrics: dict, stats: EpisodeStats) -> str:
    return (
        f"{metrics['status']}, {metrics['env_steps']} env steps, final_return "
        f"{metrics['final_return']}, {stats.outcome()}"
    )
