"""run(cfg): train one configuration and write its results into the output directory."""

import logging
import random
import shlex
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

import acexp.algos.components  # noqa: F401  (fills the registries)
from acexp.algos.base import Trainer
from acexp.algos.registry import TRAINERS
from acexp.config.resume import load_run
from acexp.config.validate import validate
from acexp.errors import ConfigError
from acexp.runtime.checkpoint import save_json
from acexp.runtime.ownership import locked
from acexp.runtime.signals import StoppedAtOnce, stop_on_signals

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


def train_members(
    cfgs: list[DictConfig], out_dirs: list[Path], checkpoint: dict | None = None
) -> Trainer:
    """Build the trainer of these members (one run, or a batch) and train them to their end.

    Every member ends with its own `metrics.json` (completed, interrupted or failed, with
    its error): the trainer's `results`, and its `errors` (the exceptions of failed members).
    SIGINT/SIGTERM stop the members at the next update with a checkpoint: `interrupted`; a
    second one stops them at once, without one (`Trainer.stop_at_once`).
    This process holds each member's directory lock meanwhile (acexp/runtime/ownership.py).
    """
    for out_dir in out_dirs:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    with locked([Path(d) for d in out_dirs]):
        return _train_members(cfgs, out_dirs, checkpoint)


def _train_members(
    cfgs: list[DictConfig], out_dirs: list[Path], checkpoint: dict | None
) -> Trainer:
    cfg = cfgs[0]
    torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    trainer: Trainer = TRAINERS.get(cfg.algo.name)(cfgs, out_dirs)
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint)
        log.info("resumed from %s at env step %d", checkpoint["path"], trainer.env_steps[0])
    try:
        with stop_on_signals(trainer.request_stop):  # the members' ends too: a second signal
            trainer.learn()  # while they checkpoint stops them at once as well
            trainer.end_all("interrupted" if trainer.stop_requested is not None else "completed")
    except StoppedAtOnce as stop:
        trainer.stop_at_once(stop.signum)
    except Exception as exc:
        trainer.fail_non_finite()  # e.g. sampling from NaN logits fails first: name the NaN
        trainer.end_all("failed", exc)
    finally:
        trainer.close()
    return trainer


def run(cfg: DictConfig, out_dir: Path | None = None) -> dict:
    """Validate, build, train one run; returns the metrics also written to `metrics.json`.

    A failed or interrupted run still writes `metrics.json`, with its status and error; a
    failed run then raises its error. With `cfg.resume` set, the run of that directory
    continues from its latest checkpoint.
    """
    checkpoint = None
    if cfg.get("resume"):
        out_dir, cfg, checkpoint = load_run(cfg.resume)
    validate(cfg)
    out_dir = Path(out_dir) if out_dir is not None else output_dir()
    trainer = train_members([cfg], [out_dir], checkpoint)
    (metrics,), (error,) = trainer.results, trainer.errors
    if error is not None:
        raise error
    if trainer.stopped_at_once is not None:  # no checkpoint now: the console line says so
        raise StoppedAtOnce(trainer.stopped_at_once, out_dir)
    log.info(
        "%s: %d env steps, final_return %s, %s; results in %s, curves: tensorboard --logdir %s",
        metrics["status"],
        metrics["env_steps"],
        metrics["final_return"],
        trainer.members[0].stats.outcome(),
        out_dir / "metrics.json",
        shlex.quote(str(out_dir)),
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
