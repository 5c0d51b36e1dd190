"""run(cfg): train one configuration and write its results into the output directory."""

import logging
import random
import signal
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

import acexp.components  # noqa: F401  (fills the registries)
from acexp.checkpoint import save_json, save_torch
from acexp.errors import ConfigError, NonFiniteError
from acexp.hparams import hyperparameters
from acexp.registry import TRAINERS
from acexp.resume import load_run
from acexp.signals import stop_on_signals
from acexp.trainers.base import Trainer
from acexp.validate import validate

log = logging.getLogger("acexp")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def output_dir() -> Path:
    """The Hydra run directory when running under Hydra, else the working directory."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def run(cfg: DictConfig, out_dir: Path | None = None) -> dict:
    """Validate, build, train; returns the metrics also written to `metrics.json`.

    A failed or interrupted run still writes `metrics.json`, with its status and error.
    With `cfg.resume` set, the run of that directory continues from its latest checkpoint.
    SIGINT/SIGTERM stop the run at its next update with a checkpoint: status `interrupted`.
    """
    checkpoint = None
    if cfg.get("resume"):
        out_dir, cfg, checkpoint = load_run(cfg.resume)
    validate(cfg)
    out_dir = Path(out_dir) if out_dir is not None else output_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    trainer: Trainer = TRAINERS.get(cfg.algo.name)(cfg, out_dir)
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint)
        log.info("resumed from %s at env step %d", checkpoint["path"], trainer.env_steps)
    status, error = "completed", None
    try:
        with stop_on_signals(trainer.request_stop):
            trainer.learn()
        if trainer.stop_requested is not None:
            status = "interrupted"
        trainer.save_checkpoint()
    except KeyboardInterrupt:
        status = "interrupted"
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        try:
            trainer.check_parameters()  # e.g. sampling from NaN logits fails first
        except NonFiniteError as non_finite:
            error = f"NonFiniteError: {non_finite}"
            raise non_finite from exc
        raise
    finally:
        metrics = {"status": status, **trainer.metrics()}
        if trainer.stop_requested is not None:
            metrics["signal"] = signal.Signals(trainer.stop_requested).name
        if error:
            metrics["error"] = error
        save_json(metrics, out_dir / "metrics.json")
        if status == "completed":
            save_torch(trainer.model.state_dict(), out_dir / "model.pt")
            trainer.logger.hparams(hyperparameters(cfg), metrics)
        trainer.close()
    log.info(
        "%s: %d env steps, final_return %s, solved %s; results in %s, curves: tensorboard "
        "--logdir %s",
        status,
        metrics["env_steps"],
        metrics["final_return"],
        metrics["solved"],
        out_dir / "metrics.json",
        out_dir,
    )
    return metrics


def record_failure(exc: BaseException) -> None:
    """Write `metrics.json` with status failed for a job that stopped before `run` wrote one.

    A sweep job that fails validation never reaches the trainer; this lets the sweep report list
    it as failed with its error instead of as still running.
    """
    path = output_dir() / "metrics.json"
    if not path.exists():
        save_json({"status": "failed", "error": f"{type(exc).__name__}: {exc}"}, path)
    log.error("failed: %s: %s", type(exc).__name__, exc)


__all__ = ["ConfigError", "record_failure", "run"]
