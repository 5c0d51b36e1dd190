"""A member: one run of a batch, as one record.

A trainer trains a batch of runs that differ only in per-member scalars (seed, budget,
learning rates, coefficients): one model whose weights carry a leading member dimension, one
optimizer step for all. Everything else of a run is its own and lives here: its config and
directory, its episode statistics and logger, its schedules (learning-rate fraction, gradient
clipping bound, next checkpoint and evaluation) and how it ended. A single run is a batch of
one member.
"""

import math
import signal
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from acexp.envs.make import reward_threshold
from acexp.logs.hparams import hyperparameters
from acexp.logs.logger import RunLogger
from acexp.runtime.checkpoint import save_json, save_torch
from acexp.runtime.signals import ended_runs
from acexp.runtime.tracking import EpisodeStats


@dataclass(eq=False)
class Member:
    """One run of a batch. Its env-step count is an entry of the batch's counter array
    (`counters`), which the training loop advances for every member in one operation."""

    index: int
    cfg: DictConfig
    run_dir: Path
    algo: SimpleNamespace  # its algo settings as plain values: DictConfig access is slow
    stats: EpisodeStats
    logger: RunLogger
    counters: np.ndarray = field(repr=False)
    total_steps: int
    stop_on_solve: bool
    clip_bound: float | None  # its gradient-norm bound as logged; None: no clipping
    next_checkpoint_step: int
    next_eval_step: int
    base_lrs: dict[str, float] = field(default_factory=dict)  # per optimizer, as configured
    lr_fraction: float = 1.0  # of base_lrs (PPO anneals it)
    initial_weights: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    last_checkpoint_step: int | None = None
    last_eval: tuple[int, float, float] | None = None  # step, mean, std
    status: str | None = None  # None while training; then completed, interrupted or failed
    result: dict | None = None  # its metrics.json
    error: BaseException | None = None

    @classmethod
    def create(
        cls, index: int, cfg: DictConfig, run_dir: Path, counters: np.ndarray, console: bool
    ) -> "Member":
        """Member `index` of a batch; `console`: whether its logger shows its own progress
        (a single run's bar or lines; a batch shows one line for all its members)."""
        logger = RunLogger(
            Path(run_dir),
            cfg.total_steps,
            every_steps=cfg.log.every_steps,
            console_every_seconds=cfg.log.console_every_seconds if console else math.inf,
            progress=cfg.log.progress if console else False,
        )
        return cls(
            index=index,
            cfg=cfg,
            run_dir=Path(run_dir),
            algo=SimpleNamespace(**OmegaConf.to_container(cfg.algo, resolve=True)),
            stats=EpisodeStats(reward_threshold(cfg.env)),
            logger=logger,
            counters=counters,
            total_steps=int(cfg.total_steps),
            stop_on_solve=bool(cfg.stop_on_solve),
            clip_bound=cfg.optim.max_grad_norm or None,
            next_checkpoint_step=int(cfg.checkpoint.every_steps),
            next_eval_step=eval_every(cfg),
        )

    @property
    def env_steps(self) -> int:
        return int(self.counters[self.index])

    @property
    def active(self) -> bool:
        return self.status is None

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def done(self) -> bool:
        """Its budget is spent, or it solved the task and stops on solving."""
        return self.env_steps >= self.total_steps or (self.stop_on_solve and self.stats.solved)

    def sps(self) -> float:
        return self.env_steps / max(self.stats.elapsed(), 1e-9)

    def metrics(self, parameters: int) -> dict:
        """What its metrics.json reports of its training (without status and extras)."""
        wall = self.stats.elapsed()
        return {
            "env_steps": self.env_steps,
            **self.stats.summary(),
            "wall_seconds": wall,
            "sps": self.env_steps / max(wall, 1e-9),
            "parameters": parameters,
        }

    def write_end(
        self, metrics: dict, weights: dict[str, torch.Tensor], stop_signal: int | None
    ) -> None:
        """Its end on disk: metrics.json and, when completed, model.pt and its HParams entry."""
        if stop_signal is not None and self.status == "interrupted":
            metrics["signal"] = signal.Signals(stop_signal).name
        if self.error is not None:
            metrics["error"] = f"{type(self.error).__name__}: {self.error}"
        save_json(metrics, self.run_dir / "metrics.json")
        if self.status == "completed":
            save_torch(weights, self.run_dir / "model.pt")
            self.logger.hparams(hyperparameters(self.cfg), metrics)
        self.logger.flush()
        self.result = metrics
        ended_runs.append(self.run_dir)


def eval_every(cfg: DictConfig) -> int:
    """Env steps between evaluations of the greedy policy; 0 for none."""
    return int(OmegaConf.select(cfg, "eval.every_steps", default=0) or 0)


def member_values(members: list[Member], key: str) -> np.ndarray:
    """The algo setting `key` of every member, as an array [members]."""
    return np.array([float(getattr(m.algo, key)) for m in members])


def member_tensor(
    members: list[Member], key: str, device: torch.device, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The algo setting `key` of every member, as a tensor [members]."""
    return torch.tensor(member_values(members, key), dtype=dtype, device=device)


def batch_seed(members: list[Member]) -> int:
    """The seed of what a batch's members draw together (the sampling and shuffling stream,
    a vector env they share): one number from all their seeds."""
    seeds = [int(m.cfg.seed) for m in members]
    return int(np.random.SeedSequence(seeds).generate_state(1)[0])
