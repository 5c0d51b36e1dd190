"""A `-m` sweep as a whole: its launcher's head start, its run names, and the line it ends with.

The head start: `start_launcher` lets the sweep's launcher start its workers while this process
still checks the command line (see its doc); the batched launcher's take seconds to start.

Run names: Hydra names each job's directory by its overrides (`hydra.job.override_dirname`),
so every run of `-m arch=shared,unshared seed=0,1 total_steps=20000` would carry
`total_steps=20000`, which TensorBoard repeats in every run name and legend. `run_name_overrides`
leaves the overrides that are the same in every job out of the names (the full overrides stay
in each job's `.hydra/overrides.yaml`, which the report reads).

The end: `SweepSummary`, a Hydra callback, declares the sweep's HParams (acexp/logs/hparams.py) and
prints one line: how many jobs completed, which failed and why, and where the results are;
the exit status is 1 if a job failed. A sweep stopped by a signal ends with one line too, from
the sweep's process (`stopped_jobs`): the jobs of a worker pool (joblib's, submitit's) stop
without a line of their own (`in_sweep_worker`).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from acexp.config.overrides import CONF, single_runs
from acexp.sweeps.hydra_internals import BASIC_SWEEPER
from acexp.sweeps.jobs import JOB_RECORD, job_dirs

log = logging.getLogger("acexp")

EXCLUDE_KEY = "hydra.job.config.override_dirname.exclude_keys"
SHOWN_FAILURES = 3  # failed jobs named in the summary line; the report lists them all
SWEEP_PID = "ACEXP_SWEEP_PID"  # the sweep's process; its launcher's worker processes inherit it

# The sweep this process runs, once Hydra has started it: its directory, and the jobs that were
# there before it with the time Hydra wrote their overrides (jobs of an earlier sweep).
_running: list[tuple[Path, dict[Path, float]]] = []


def mark_sweep_process() -> None:
    """Name this process the sweep's own, for `in_sweep_worker` in its launcher's workers."""
    os.environ[SWEEP_PID] = str(os.getpid())


def in_sweep_worker() -> bool:
    """Whether this process runs jobs for a sweep whose own process is another one (a worker of
    joblib's or submitit's pool): that process says how the sweep ended, for all its jobs."""
    return os.environ.get(SWEEP_PID, str(os.getpid())) != str(os.getpid())


def stopped_jobs() -> list[Path] | None:
    """The jobs of this process's sweep that a signal stopped and that continue from a
    checkpoint (interrupted, or killed by their pool before they could say so), in name order;
    None if this process runs no sweep."""
    from acexp.runtime.checkpoint import list_checkpoints  # torch: only once the sweep has run

    started = _started_jobs()
    if started is None:
        return None
    return [
        job
        for job in started
        if _status(job) in ("interrupted", None) and list_checkpoints(job / "checkpoints")
    ]


def _started_jobs() -> list[Path] | None:
    """The job directories this process's sweep has written, in name order (a job of an
    earlier sweep in the same directory only if this one wrote it again); None if none runs."""
    if not _running:
        return None
    sweep_dir, before = _running[-1]
    return sorted(job for job, t in _jobs(sweep_dir).items() if before.get(job) != t)


def _status(job: Path) -> str | None:
    """A job's status in its metrics.json; None without a readable one (killed, or running)."""
    try:
        return str(json.loads((job / "metrics.json").read_text()).get("status"))
    except (OSError, ValueError, AttributeError):
        return None


def start_launcher(hydra_cfg: DictConfig) -> None:
    """Call the sweep's launcher class's `start_early(**settings)`, if it has one.

    `python -m acexp -m` calls this with the first job's Hydra config before it imports torch
    to check the values: the batched launcher starts its fork server here, which imports torch
    in a process of its own meanwhile (hydra_plugins/acexp_batched_launcher/_batches.py).
    """
    launcher = hydra_cfg.get("launcher")
    try:
        start_early = getattr(get_class(str(launcher._target_)), "start_early", None)
        settings = OmegaConf.to_container(launcher, resolve=True)
    except Exception:  # a head start only: Hydra reports a launcher it cannot make, as it makes it
        return
    if start_early is not None:
        start_early(**{k: v for k, v in settings.items() if k != "_target_"})


def run_name_overrides(args: list[str]) -> list[str]:
    """The Hydra override that leaves out of run names what every job of this sweep shares.

    Empty unless `args` is a sweep (`-m`) in which something varies (on the command line or
    in a preset's `hydra.sweeper.params`): a one-job sweep keeps its full name. Command lines
    with other flags, or that set the excluded keys themselves, go to Hydra as they are.
    """
    if not any(a in ("-m", "--multirun") for a in args):
        return []
    rest = [a for a in args if a not in ("-m", "--multirun")]
    if any(a.startswith("-") or a.startswith(f"{EXCLUDE_KEY}=") for a in rest):
        return []
    overrides = [
        o for o in OverridesParser.create().parse_overrides(rest)
        if not o.key_or_group.startswith("hydra")
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=single_runs(rest)[0], return_hydra_config=True)
    exclude = list(cfg.hydra.job.config.override_dirname.exclude_keys)
    swept_in_config = bool(cfg.hydra.sweeper.get("params"))
    if not swept_in_config and not any(o.is_sweep_override() for o in overrides):
        return []
    same = [o.key_or_group for o in overrides if not o.is_sweep_override()]
    keys = exclude + [k for k in same if k not in exclude]
    if keys == exclude:
        return []
    quoted = ",".join("'" + k.replace("'", "\\'") + "'" for k in keys)
    return [f"{EXCLUDE_KEY}=[{quoted}]"]


def job_label(hydra_job: DictConfig) -> str:
    """How a sweep job is named on the console: its run name, else its number."""
    return str(hydra_job.override_dirname or f"job {hydra_job.num}")


def reports_failures(hydra_cfg: DictConfig) -> bool:
    """Whether this sweep's sweeper needs a failed job to raise: Optuna marks the trial failed
    and stops past `max_failure_rate`; Hydra's basic sweeper would only stop there with a
    traceback, so under it a failed job returns and the summary reports it."""
    return hydra_cfg.sweeper.get("_target_") != BASIC_SWEEPER


def summary_line(sweep_dir: Path, jobs: list[Path]) -> tuple[str, bool]:
    """(the sweep's one-line summary, whether a job did not complete: it failed, was
    interrupted, or left no metrics.json)."""
    from acexp.analysis.report import load_run

    runs = [load_run(job) for job in jobs]
    completed = sum(r.status == "completed" for r in runs)
    bad = [r for r in runs if r.status != "completed"]
    line = f"acexp: sweep of {len(runs)} job(s): {completed} completed"
    if bad:
        named, resumes = [], []
        for r in bad[:SHOWN_FAILURES]:
            # the resume command goes whole at the end, not cut off with the error
            why = r.note or str(r.metrics.get("signal") or f"status {r.status}")
            named.append(f"{r.path.relative_to(sweep_dir)} ({why[:120]})")
            resumes += [r.resume] if r.resume else []
        more = f" and {len(bad) - SHOWN_FAILURES} more" if len(bad) > SHOWN_FAILURES else ""
        interrupted = sum(r.status == "interrupted" for r in bad)
        failed = len(bad) - interrupted
        counts = [f"{failed} failed"] if failed else []
        if interrupted:
            counts.append(f"{interrupted} interrupted")
        line += f", {', '.join(counts)}: {'; '.join(named)}{more}"
        if len(resumes) == 1:
            line += f"; continue it from its checkpoint with: {resumes[0]}"
        elif resumes:
            line += (
                "; continue each from its checkpoint with: python -m acexp resume=<job dir>, "
                f"e.g. {resumes[0]}"
            )
    line += (
        f"; report: python -m acexp.report {shlex.quote(str(sweep_dir))}; "
        f"curves: tensorboard --logdir {shlex.quote(str(sweep_dir))}"
    )
    return line, bool(bad)


def _jobs(sweep_dir: Path) -> dict[Path, float]:
    """Job directories under `sweep_dir` with the time Hydra wrote their overrides."""
    return {job: (job / JOB_RECORD).stat().st_mtime for job in job_dirs(sweep_dir)}


class SweepSummary(Callback):
    """Ends a sweep with its HParams declaration and one summary line (exit 1 on failures)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        _running.append((sweep_dir, _jobs(sweep_dir)))  # with the jobs of an earlier sweep there

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from acexp.logs.hparams import write_experiment  # tensorboard: not before a launcher starts

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return  # e.g. no job ran
        try:
            write_experiment(sweep_dir)
        except Exception as exc:  # a declaration that fails must not hide the summary
            log.warning("could not declare the HParams of %s: %s", sweep_dir, exc)
        line, failed = summary_line(sweep_dir, _started_jobs() or [])
        print(line, file=sys.stderr)
        if failed:
            raise SystemExit(1)
