"""What every trainer shares: model and optimizers from the config, episode stats, logging."""

import math
from abc import ABC, abstractmethod
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import torch
from omegaconf import DictConfig, OmegaConf

from acexp.checkpoint import load_weights, save_checkpoint
from acexp.envs import reward_threshold
from acexp.errors import NonFiniteError
from acexp.logger import RunLogger
from acexp.losses import total_loss
from acexp.models import ActorCritic
from acexp.optim import apply_update, build_optimizers, learning_rates, norm_after_clipping
from acexp.registry import MODELS
from acexp.state import rng_state, set_rng_state
from acexp.tracking import EpisodeStats


def build_model(
    cfg: DictConfig, observation_space: gym.Space, action_space: gym.Space
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
    )
    return model.to(cfg.device)


class Trainer(ABC):
    """Template for a training loop: subclasses make their envs and implement `learn()`.

    `learn()` runs until `total_steps` env steps, or until solved when `stop_on_solve`, or
    until `stop_requested` is set (by a signal handler). Its loop calls `finished()` at the
    top of every iteration, where the trainer's state is whole: that is where checkpoints are
    written, so a trainer whose loop is `while not self.finished()` gets them for free.
    """

    def __init__(self, cfg: DictConfig, out_dir: Path) -> None:
        self.cfg = cfg
        # Plain python values: DictConfig attribute access is slow on the hot path.
        self.algo = SimpleNamespace(**OmegaConf.to_container(cfg.algo, resolve=True))
        self.total_steps = int(cfg.total_steps)
        self.stop_on_solve = bool(cfg.stop_on_solve)
        self.out_dir = out_dir
        self.device = torch.device(cfg.device)
        observation_space, action_space = self.make_envs()
        self.model = build_model(cfg, observation_space, action_space)
        self.optimizers = build_optimizers(self.model, cfg.optim)
        self.max_grad_norm = cfg.optim.max_grad_norm
        self.stats = EpisodeStats(reward_threshold(cfg.env))
        self.env_steps = 0
        self.logger = RunLogger(
            out_dir,
            cfg.total_steps,
            every_steps=cfg.log.every_steps,
            console_every_seconds=cfg.log.console_every_seconds,
            progress=cfg.log.progress,
        )
        self.checkpoint_dir = out_dir / "checkpoints"
        self.next_checkpoint_step = cfg.checkpoint.every_steps
        self.last_checkpoint_step: int | None = None
        self.stop_requested: int | None = None  # the signal number that asked to stop
        self.resumed = False

    @abstractmethod
    def make_envs(self) -> tuple[gym.Space, gym.Space]:
        """Create the environments; return the single-env observation and action spaces."""

    @abstractmethod
    def learn(self) -> None:
        """Train until `finished()`."""

    def close(self) -> None:
        self.logger.close()

    def finished(self) -> bool:
        """Write a checkpoint when one is due; then whether to stop (signal, budget, solved)."""
        if self.env_steps >= self.next_checkpoint_step:
            self.save_checkpoint()
        if self.stop_requested is not None:
            return True
        if self.env_steps >= self.total_steps:
            return True
        return self.stop_on_solve and self.stats.solved

    def request_stop(self, signum: int) -> None:
        """Stop at the next `finished()`, with a checkpoint; safe to call from a signal handler."""
        self.stop_requested = signum

    def end_episode(self, episode_return: float, length: int) -> None:
        self.stats.record(episode_return, self.env_steps)
        self.logger.episode(episode_return, length, self.env_steps)

    def optimize(self, losses: dict[str, torch.Tensor]) -> None:
        """One step on actor + vf_coef * critic - ent_coef * entropy; every entry is logged."""
        loss = total_loss(
            losses["actor"], losses["critic"], losses["entropy"],
            self.algo.vf_coef, self.algo.ent_coef,
        )  # fmt: skip
        self.update({name: value.detach() for name, value in losses.items()}, loss)

    def update(self, losses: dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        """One gradient step on `loss`; scalars are written only when the logger is due."""
        grad_norms = apply_update(loss, self.optimizers, self.max_grad_norm)
        self.log_update(losses, grad_norms)

    def log_update(
        self, losses: dict[str, torch.Tensor], grad_norms: dict[str, torch.Tensor]
    ) -> None:
        """Write update scalars when the logger is due (for trainers that step several times)."""
        if self.logger.due(self.env_steps):
            self.check_finite(losses)
            self.check_parameters()
            lrs = learning_rates(self.optimizers)
            running = self.stats.running_return
            norms = {}
            for name, norm in grad_norms.items():
                before = float(norm)
                norms[name] = (before, norm_after_clipping(before, self.max_grad_norm))
            self.logger.update(self.env_steps, losses, norms, lrs, running)
        self.logger.progress(self.env_steps, self.stats.running_return, self.sps())

    def check_finite(self, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            if not math.isfinite(float(value)):
                raise NonFiniteError(
                    f"losses/{name} is {float(value)} at env step {self.env_steps}"
                )

    def check_parameters(self) -> None:
        """Raise NonFiniteError naming the first parameter or buffer holding a NaN or Inf."""
        tensors = [(n, t) for n, t in self.model.state_dict().items() if t.is_floating_point()]
        if not tensors or bool(torch.stack([t.isfinite().all() for _, t in tensors]).all()):
            return  # one host sync when all is well
        for name, tensor in tensors:
            if not bool(tensor.isfinite().all()):
                bad = tensor[~tensor.isfinite()].flatten()[0].item()
                raise NonFiniteError(f"parameter {name} holds {bad} at env step {self.env_steps}")

    def state_dict(self) -> dict:
        """Everything a resumed run needs, as tensors and plain containers only.

        Subclasses add their own state (envs, rollout position) with `super().state_dict()`.
        """
        return {
            "model": self.model.state_dict(),
            "optimizers": {named.name: named.optimizer.state_dict() for named in self.optimizers},
            "env_steps": self.env_steps,
            "next_checkpoint_step": self.next_checkpoint_step,
            "stats": self.stats.state_dict(),
            "logger": self.logger.state_dict(),
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint written by `state_dict()` of a trainer of the same config."""
        load_weights(self.model, state["model"], Path(state.get("path", "the checkpoint")))
        for named in self.optimizers:
            named.load_state_dict(state["optimizers"][named.name])
        self.env_steps = state["env_steps"]
        self.next_checkpoint_step = state["next_checkpoint_step"]
        self.last_checkpoint_step = self.env_steps
        self.stats.load_state_dict(state["stats"])
        self.logger.load_state_dict(state["logger"], resume_step=self.env_steps)
        set_rng_state(state["rng"])
        self.resumed = True

    def save_checkpoint(self) -> None:
        """Check the parameters, then write `checkpoints/step_<env steps>.pt` atomically."""
        every = self.cfg.checkpoint.every_steps
        self.next_checkpoint_step = (self.env_steps // every + 1) * every
        if self.last_checkpoint_step == self.env_steps:
            return
        self.check_parameters()  # a checkpoint never stores NaNs
        self.logger.flush()  # curves up to the checkpoint survive a kill -9
        save_checkpoint(
            self.state_dict(), self.checkpoint_dir, self.env_steps, self.cfg.checkpoint.keep
        )
        self.last_checkpoint_step = self.env_steps

    def sps(self) -> float:
        return self.env_steps / max(self.stats.elapsed(), 1e-9)

    def metrics(self) -> dict:
        wall = self.stats.elapsed()
        return {
            "env_steps": self.env_steps,
            **self.stats.summary(),
            "wall_seconds": wall,
            "sps": self.env_steps / max(wall, 1e-9),
        }
