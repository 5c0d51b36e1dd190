"""`python -m acexp [overrides]`: a thin Hydra entry point around `acexp.run.run`.

Every error ends in one line on stderr (acexp/errors.py): Hydra is told to let exceptions
through (HYDRA_FULL_ERROR), so that they reach that one handler rather than Hydra's printer.

What imports torch (acexp.run, the checks' registries) is imported where it is used: a sweep's
launcher gets its start before this process spends a second and more importing torch
(acexp.sweeps.multirun.start_launcher).
"""

# ruff: noqa: E402  (a Ctrl-C handler is installed before the imports: Hydra's take a while)
import os
import signal
import sys

STARTING = (
    "acexp: interrupted ({}) before a checkpoint could be written; a run that saved one earlier "
    "continues with: {}"
)
CLOSING = "acexp: interrupted ({}) while closing, after the run had ended; its results are in {}"


def _interrupted_outside_training(signum: int, frame: object) -> None:
    """Ctrl-C before a run's own handler takes it, or after the run has ended and saved its
    results (while the process closes): one line and 130, wherever it lands (a
    KeyboardInterrupt raised inside a finalizer or callback would be printed and ignored)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    signals = sys.modules.get("acexp.runtime.signals")  # imported once a run is built
    ended = signals.ended_runs if signals is not None else []
    if ended:
        line = CLOSING.format("SIGINT", ended[-1] / "metrics.json")
    else:
        line = STARTING.format("SIGINT", "python -m acexp resume=<run dir>")
    os.write(2, (line + "\n").encode())
    os._exit(128 + signum)


signal.signal(signal.SIGINT, _interrupted_outside_training)  # first: importing Hydra takes a while

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from acexp.config.overrides import CONF, check_overrides
from acexp.config.resume import resume_argv, saved_config
from acexp.errors import (
    ConfigError,
    NonFiniteError,
    SaveError,
    exit_config_error,
    one_line_errors,
    record_traceback,
    unexpected,
    warnings_to_stderr,
)
from acexp.runtime.job_end import exit_interrupted, job_end, resume_command
from acexp.sweeps.multirun import (
    in_sweep_worker,
    job_label,
    mark_sweep_process,
    reports_failures,
    run_name_overrides,
    start_launcher,
    stopped_jobs,
)

log = logging.getLogger("acexp")


def _train(cfg: DictConfig) -> dict:
    """`run(cfg)`, after checking that this machine has the run's device (a resumed run's
    device is in its saved config)."""
    from acexp.config.validate import check_device
    from acexp.run import run

    saved = saved_config(Path(cfg.resume)) if cfg.get("resume") else cfg
    check_device(saved.get("device", "cpu"))
    return run(cfg)


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Returns the configured objective (runtime/objective.py), for sweepers such as Optuna."""
    from acexp.logs.logger import job_name
    from acexp.run import record_failure

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    warnings_to_stderr()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        with job_name(job_label(hydra_cfg.job)):
            try:
                metrics = _train(cfg)
            except Exception as exc:
                if not _known(exc, out_dir):
                    record_traceback(exc)  # into the job's log file
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
        except ConfigError as exc:
            exit_config_error(exc)
        except Exception as exc:
            line = _known(exc, out_dir) or unexpected(exc)  # unexpected: traceback in the log
            print(f"acexp: error: {line}", file=sys.stderr)
            sys.exit(1)
    end = job_end(metrics, cfg)
    if end.status == "interrupted" and in_sweep_worker():
        return None  # its log says so; the sweep's process names every stopped job in one line
    if end.status == "interrupted":  # this stops a sweep too; each of its jobs resumes
        exit_interrupted(end.exit_code - 128, [out_dir], env_step=metrics["env_steps"])
    return end.objective


def _known(exc: Exception, out_dir: Path) -> str | None:
    """The line of an error acexp knows (a refused write, a NaN), or None."""
    from acexp.runtime.checkpoint import save_failure

    fault = save_failure(exc, out_dir)
    return fault or (str(exc) if isinstance(exc, ConfigError | NonFiniteError) else None)


def cli() -> None:
    """Check the command line before Hydra makes a run directory, then hand it to Hydra."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises what escapes: one_line_errors says it
    try:
        with one_line_errors():
            args = resume_argv(sys.argv[1:])
            check_overrides(args, launching=start_launcher)
            sys.argv[1:] = args + run_name_overrides(args)
            if any(arg in ("-m", "--multirun") for arg in args):
                # a sweep's launcher stops its jobs on Ctrl-C itself (joblib's and submitit's
                # pools, batched workers): it needs Python's KeyboardInterrupt, not an exit
                signal.signal(signal.SIGINT, signal.default_int_handler)
                mark_sweep_process()
            main()
    except KeyboardInterrupt as stop:  # a second signal, or a sweep's pool stopped by Ctrl-C
        signum = getattr(stop, "signum", signal.SIGINT)
        run_dir = getattr(stop, "run_dir", None)
        if run_dir is None and (stopped := stopped_jobs()) is not None:
            exit_interrupted(signum, stopped)  # a sweep's pool: name its jobs, not a run
        where = resume_command(run_dir) if run_dir else "python -m acexp resume=<run dir>"
        print(STARTING.format(signal.Signals(signum).name, where), file=sys.stderr)
        sys.exit(128 + signum)


if __name__ == "__main__":
    cli()
