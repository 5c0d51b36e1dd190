"""`python -m acexp [overrides]`: a thin Hydra entry point around `acexp.run.run`."""

import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from acexp.checkpoint import save_failure
from acexp.cli_checks import check_overrides
from acexp.errors import ConfigError, NonFiniteError
from acexp.objective import objective
from acexp.resume import resume_argv
from acexp.run import record_failure, run
from acexp.validate import check_device


def _train(cfg: DictConfig) -> dict:
    """`run(cfg)`, after checking that this machine has the run's device (a resumed run's
    device is in its saved config)."""
    saved = Path(cfg.resume) / ".hydra" / "config.yaml" if cfg.get("resume") else None
    check_device(OmegaConf.load(saved).get("device", "cpu") if saved else cfg.device)
    return run(cfg)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Returns the configured objective (acexp/objective.py), which sweepers such as Optuna use."""
    try:
        metrics = _train(cfg)
    except Exception as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            record_failure(exc)  # the sweep report lists the job as failed, with this error
            raise  # Hydra records the failed job and goes on with the others
        fault = save_failure(exc, Path(HydraConfig.get().runtime.output_dir))
        if fault is None and not isinstance(exc, ConfigError | NonFiniteError):
            raise  # a bug: keep its traceback
        print(f"acexp: error: {fault or exc}", file=sys.stderr)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    if metrics["status"] == "interrupted":
        print(
            f"acexp: interrupted at env step {metrics['env_steps']}; continue with: "
            f"python -m acexp resume={HydraConfig.get().runtime.output_dir}",
            file=sys.stderr,
        )
        # 128 + signal number, as a shell reports it; this stops a sweep too (each job resumes)
        sys.exit(128 + signal.Signals[metrics.get("signal", "SIGINT")])
    return objective(metrics, cfg)


def cli() -> None:
    """Check the command line before Hydra makes a run directory, then hand it to Hydra."""
    try:
        sys.argv[1:] = resume_argv(sys.argv[1:])
        check_overrides(sys.argv[1:])
    except ConfigError as exc:
        print(f"acexp: error: {exc}", file=sys.stderr)
        sys.exit(2)
    main()


if __name__ == "__main__":
    cli()
