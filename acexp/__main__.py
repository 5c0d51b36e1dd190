"""`python -m acexp [overrides]`: a thin Hydra entry point around `acexp.run.run`.

What imports torch (acexp.run, the checks' registries) is imported where it is used: a sweep's
launcher gets its start before this process spends a second and more importing torch
(acexp.sweeps.multirun.start_launcher).
"""

import logging
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from acexp.config.overrides import CONF, check_overrides
from acexp.config.resume import resume_argv
from acexp.errors import ConfigError, NonFiniteError, SaveError
from acexp.runtime.objective import objective
from acexp.sweeps.multirun import job_label, reports_failures, run_name_overrides, start_launcher

log = logging.getLogger("acexp")


def _train(cfg: DictConfig) -> dict:
    """`run(cfg)`, after checking that this machine has the run's device (a resumed run's
    device is in its saved config)."""
    from acexp.config.validate import check_device
    from acexp.run import run

    saved = Path(cfg.resume) / ".hydra" / "config.yaml" if cfg.get("resume") else None
    check_device(OmegaConf.load(saved).get("device", "cpu") if saved else cfg.device)
    return run(cfg)


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Returns the configured objective (runtime/objective.py), for sweepers such as Optuna."""
    from acexp.logs.logger import job_name
    from acexp.run import record_failure
    from acexp.runtime.checkpoint import save_failure

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        with job_name(job_label(hydra_cfg.job)):
            try:
                metrics = _train(cfg)
            except Exception as exc:
                try:
                    record_failure(exc)  # the sweep report and summary list it, with this error
                except SaveError:
                    log.error("failed: %s: %s", type(exc).__name__, exc)  # a full disk
                if reports_failures(hydra_cfg):
                    raise  # e.g. Optuna marks the trial failed
                return None  # the sweep goes on; it ends with a summary line (sweeps/multirun.py)
    else:
        try:
            metrics = _train(cfg)
        except Exception as exc:
            fault = save_failure(exc, out_dir)
            if fault is None and not isinstance(exc, ConfigError | NonFiniteError):
                raise  # a bug: keep its traceback
            print(f"acexp: error: {fault or exc}", file=sys.stderr)
            sys.exit(2 if isinstance(exc, ConfigError) else 1)
    if metrics["status"] == "interrupted":
        print(
            f"acexp: interrupted at env step {metrics['env_steps']}; continue with: "
            f"python -m acexp resume={out_dir}",
            file=sys.stderr,
        )
        # 128 + signal number, as a shell reports it; this stops a sweep too (each job resumes)
        sys.exit(128 + signal.Signals[metrics.get("signal", "SIGINT")])
    return objective(metrics, cfg)


def cli() -> None:
    """Check the command line before Hydra makes a run directory, then hand it to Hydra."""
    try:
        try:
            args = resume_argv(sys.argv[1:])
            check_overrides(args, launching=start_launcher)
            sys.argv[1:] = args + run_name_overrides(args)
        except ConfigError as exc:
            print(f"acexp: error: {exc}", file=sys.stderr)
            sys.exit(2)
        main()
    except KeyboardInterrupt:  # no run's handler took it (starting up, or a second Ctrl-C)
        print(
            "acexp: interrupted (SIGINT) before a checkpoint could be written; a run that saved "
            "one earlier continues with: python -m acexp resume=<run dir>",
            file=sys.stderr,
        )
        sys.exit(128 + signal.SIGINT)


if __name__ == "__main__":
    cli()
