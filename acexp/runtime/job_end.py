"""How a job ends, for `python -m acexp` and the batched launcher alike: the objective a
sweeper gets, the exit code, and the command (quoted for a shell) that continues a stopped run."""

from __future__ import annotations

import shlex
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from omegaconf import DictConfig


def resume_command(run_dir: Path | str) -> str:
    """The command that continues the run in `run_dir`, quoted for a shell to paste."""
    return f"python -m acexp {shlex.quote(f'resume={run_dir}')}"


@dataclass(frozen=True)
class JobEnd:
    """A job's end, read from its metrics (`metrics.json`)."""

    status: str  # completed, interrupted or failed
    objective: float | None  # for sweepers (acexp/runtime/objective.py); completed jobs only
    exit_code: int  # 0 completed, 1 failed, 128 + signal number interrupted (as a shell says)


def job_end(metrics: dict, cfg: DictConfig | None) -> JobEnd:
    """The end of a job whose metrics are `metrics` and config `cfg`."""
    from acexp.runtime.objective import objective

    status = metrics.get("status", "failed")
    if status == "completed":
        return JobEnd(status, objective(metrics, cfg) if cfg is not None else None, 0)
    if status == "interrupted":
        return JobEnd(status, None, 128 + signal.Signals[metrics.get("signal", "SIGINT")])
    return JobEnd("failed", None, 1)


def exit_interrupted(
    signum: int, run_dirs: list[Path], *, env_step: int | None = None, not_started: int = 0
) -> NoReturn:
    """Say in one line how to continue the interrupted run(s), and exit 128 + signal.

    One run (`env_step` given) names its own command; a sweep names the command for each of
    its interrupted jobs, with the first as an example, or says to run it again if none of
    them saved a checkpoint.
    """
    if env_step is not None:
        line = f"interrupted at env step {env_step}; continue with: {resume_command(run_dirs[0])}"
    elif run_dirs:
        unstarted = f"; {not_started} jobs had not started" if not_started else ""
        line = (
            f"sweep stopped by {signal.Signals(signum).name}; continue each of its "
            f"{len(run_dirs)} interrupted jobs with: python -m acexp resume=<job dir>, "
            f"e.g. {resume_command(run_dirs[0])}{unstarted}"
        )
    else:
        line = (
            f"sweep stopped by {signal.Signals(signum).name} before any of its jobs saved a "
            "checkpoint; run the sweep again"
        )
    print(f"acexp: {line}", file=sys.stderr)
    sys.exit(128 + signum)
