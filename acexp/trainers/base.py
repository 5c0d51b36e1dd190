"""What every trainer shares: model and optimizers from the config, episode stats, logging."""

import math
from abc import ABC, abstractmethod
from pathlib import Path

import gymnasium as gym
import torch
from omegaconf import DictConfig, OmegaConf

from acexp.envs import reward_threshold
from acexp.errors import NonFiniteError
from acexp.logger import RunLogger
from acexp.models import ActorCritic
from acexp.optim import apply_update, build_optimizers, learning_rates
from acexp.registry import MODELS
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

    `learn()` runs until `total_steps` env steps, or until solved when `stop_on_solve`.
    """

    def __init__(self, cfg: DictConfig, out_dir: Path) -> None:
        self.cfg = cfg
        self.algo = cfg.algo
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

    @abstractmethod
    def make_envs(self) -> tuple[gym.Space, gym.Space]:
        """Create the environments; return the single-env observation and action spaces."""

    @abstractmethod
    def learn(self) -> None:
        """Train until `finished()`."""

    def close(self) -> None:
        self.logger.close()

    def finished(self) -> bool:
        if self.env_steps >= self.cfg.total_steps:
            return True
        return bool(self.cfg.stop_on_solve) and self.stats.solved

    def end_episode(self, episode_return: float, length: int) -> None:
        self.stats.record(episode_return, self.env_steps)
        self.logger.episode(episode_return, length, self.stats.running_return, self.env_steps)

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
            self.logger.update(self.env_steps, losses, grad_norms, learning_rates(self.optimizers))
        self.logger.progress(self.env_steps, self.stats.running_return, self.sps())

    def check_finite(self, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            if not math.isfinite(float(value)):
                raise NonFiniteError(
                    f"losses/{name} is {float(value)} at env step {self.env_steps}"
                )

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
