"""BatchedLauncher: a sweep's jobs that differ only in per-member settings train as one batch.

Every job gets the run directory any Hydra launcher gives it (`.hydra/`, its log), made by
Hydra's own `run_job`; `acexp.sweeps.batch.run_batch` then trains each group of compatible jobs
(`acexp.sweeps.batch.group_batches`) and writes each job's results into its directory. Each job
returns its objective (acexp/runtime/objective.py), so sweepers such as Optuna work unchanged.
"""

import copy
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from acexp.sweeps.hydra_internals import KeptCompositions

from ._batches import Batch, Trained, run_batches, start_fork_server

log = logging.getLogger(__name__)


class JobFailed(RuntimeError):
    """A job of a batch failed; the message is the error in its `metrics.json`."""


class BatchedLauncher(Launcher):
    def __init__(self, max_batch_size: int = 64, n_jobs: int = -1) -> None:
        self.max_batch_size = max_batch_size
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self.compositions: KeptCompositions | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """The task function is not called: acexp.sweeps.batch trains the jobs instead."""
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context
        self.compositions = KeptCompositions(hydra_context.config_loader)
        self.start_early(
            self.n_jobs
        )  # if `python -m acexp` has not (acexp.sweeps.multirun.start_launcher)

    @staticmethod
    def start_early(n_jobs: int = -1, **settings: Any) -> None:
        """Start the fork server the workers fork from (_batches.py), unless the batches train
        in this process (n_jobs=1). Its imports (torch: about 3 s) overlap whatever this process
        does meanwhile: checking the command line, composing the jobs. Starting it twice is
        starting it once."""
        if n_jobs != 1:
            start_fork_server()

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Compose and check every job, then train them batch by batch; one JobReturn each.

        A bad value in any job stops the sweep before anything trains. After SIGINT/SIGTERM
        every running batch stops with a checkpoint and the sweep exits (128 + signal).
        """
        from acexp.sweeps.batch import (
            group_batches,  # torch: imported to launch, not to scan plugins
        )

        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        n_jobs = self._n_jobs()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        configs = [self._compose(initial_job_idx + i, o) for i, o in enumerate(job_overrides)]
        self.compositions.forget()
        groups = group_batches(_checked(configs), self.max_batch_size, n_jobs)
        workers = max(1, min(n_jobs, len(groups)))
        log.info(
            f"Batched launcher: {len(configs)} jobs in {len(groups)} batches "
            f"(at most {self.max_batch_size} jobs each), {workers} at a time; "
            f"sweep output dir: {sweep_dir}"
        )
        returns: list[JobReturn | None] = [None] * len(configs)
        trained, stopped = run_batches(self._prepared(groups, configs, returns), workers)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        for done in trained:
            batch = done.batch
            for job, cfg, result in zip(batch.jobs, batch.cfgs, done.results, strict=True):
                self._finish(cast(JobReturn, returns[job]), configs[job], cfg, result)
        if stopped is not None:
            _exit_interrupted(stopped, trained, not_started=returns.count(None))
        return cast(list[JobReturn], returns)

    def _n_jobs(self) -> int:
        """Batches to train side by side; a bad setting stops the sweep in one line."""
        if self.max_batch_size < 1 or (self.n_jobs < 1 and self.n_jobs != -1):
            _exit_error(
                f"hydra.launcher.max_batch_size={self.max_batch_size}, "
                f"hydra.launcher.n_jobs={self.n_jobs}: expected an integer >= 1 for both "
                "(n_jobs=-1: one per core)"
            )
        return self.n_jobs if self.n_jobs != -1 else (os.cpu_count() or 1)

    def _compose(self, idx: int, overrides: Sequence[str]) -> DictConfig:
        """A job's full config, composed as Hydra's own launchers compose it."""
        assert self.config is not None and self.compositions is not None
        config = self.compositions.take(self.config, overrides)
        with open_dict(config):
            config.hydra.job.id = f"{config.hydra.job.name}_{idx}"
            config.hydra.job.num = idx
        log.info(f"\t#{idx} : {' '.join(o for o in overrides if not o.startswith('hydra.'))}")
        return config

    def _prepared(
        self, groups: list[list[int]], configs: list[DictConfig], returns: list[JobReturn | None]
    ) -> Iterator[Batch]:
        """Each group as a Batch, its jobs' directories made only when it is about to train, so
        that jobs a signal keeps from starting leave nothing behind."""
        for number, group in enumerate(groups, 1):
            jobs, cfgs, out_dirs = [], [], []
            for job in group:
                returns[job] = ret = self._record(configs[job])
                if ret.status == JobStatus.FAILED:
                    self._finish(ret, configs[job], None, None)
                    continue
                jobs.append(job)
                cfgs.append(ret.return_value)
                out_dirs.append(Path(ret.hydra_cfg.hydra.runtime.output_dir))
            if jobs:
                names = " ".join(out_dir.name for out_dir in out_dirs)
                log.info(f"batch {number}/{len(groups)} ({len(jobs)} jobs): {names}")
                first = cast(JobReturn, returns[jobs[0]])
                yield Batch(jobs=jobs, cfgs=cfgs, out_dirs=out_dirs, hydra_cfg=first.hydra_cfg)

    def _record(self, config: DictConfig) -> JobReturn:
        """Make the job's directory and `.hydra/` files with Hydra's own run_job.

        Its task function only returns the job's resolved config, for training later;
        `on_job_end` callbacks wait until the job has trained.
        """
        assert self.hydra_context is not None
        context = HydraContext(
            config_loader=self.hydra_context.config_loader,
            callbacks=_StartOnly(self.hydra_context.callbacks),  # type: ignore[arg-type]
        )
        return run_job(
            hydra_context=context,
            config=config,
            task_function=_resolved,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
            configure_logging=False,  # the batch logs into every job's directory (_batches.py)
        )

    def _finish(
        self, ret: JobReturn, config: DictConfig, cfg: DictConfig | None, result: dict | None
    ) -> None:
        """Fill a job's JobReturn from its metrics and make sure `metrics.json` says how it
        ended (a batch that crashed writes none); then call `on_job_end`."""
        from acexp.runtime.checkpoint import save_json
        from acexp.runtime.job_end import job_end
        from acexp.sweeps.multirun import reports_failures

        out_dir = Path(ret.hydra_cfg.hydra.runtime.output_dir)
        if result is None:  # run_job failed: the task function could not resolve the config
            exc = ret._return_value
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        if out_dir.is_dir() and not (out_dir / "metrics.json").exists():
            save_json(result, out_dir / "metrics.json")
        end = job_end(result, cfg)
        if end.status == "completed":
            ret.status = JobStatus.COMPLETED
            ret.return_value = end.objective
        else:
            log.error(f"{out_dir.name}: {result['status']}: {result.get('error', '')}")
            if reports_failures(config.hydra):  # e.g. Optuna marks the trial failed
                ret.status = JobStatus.FAILED
                ret.return_value = JobFailed(f"{out_dir.name}: {result.get('error', end.status)}")
            else:  # as `python -m acexp` returns: the sweep goes on and ends with its summary
                ret.status = JobStatus.COMPLETED
                ret.return_value = None
        assert self.hydra_context is not None
        self.hydra_context.callbacks.on_job_end(config=config, job_return=ret)


class _StartOnly:
    """Hydra's callbacks with `on_job_end` held back: run_job would call it before training."""

    def __init__(self, callbacks: Any) -> None:
        self._callbacks = callbacks

    def on_job_start(self, **kwargs: Any) -> None:
        self._callbacks.on_job_start(**kwargs)

    def on_job_end(self, **kwargs: Any) -> None:
        pass


def _resolved(cfg: DictConfig) -> DictConfig:
    """The job's config with interpolations resolved while Hydra's config is the job's."""
    resolved = copy.deepcopy(cfg)
    with read_write(resolved):
        OmegaConf.resolve(resolved)
    return resolved


def _task_config(config: DictConfig) -> DictConfig:
    """The job's own config, without the `hydra` node, as its task function would get it."""
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def _checked(configs: list[DictConfig]) -> list[DictConfig]:
    """Every job's config, validated; a bad value, or a job directory that holds another run,
    stops the sweep naming the job's directory."""
    from acexp.errors import ConfigError
    from acexp.runtime.ownership import holds_run
    from acexp.sweeps.batch import validate_members

    tasks = []
    saved = HydraConfig.instance().cfg
    try:
        for config in configs:
            HydraConfig.instance().set_config(config)  # the subdir may read hydra.job.*
            task = _task_config(config)
            subdir = Path(str(config.hydra.sweep.dir), str(config.hydra.sweep.subdir))
            validate_members([task], [subdir])
            if holds_run(subdir):  # e.g. two jobs of one name: neither may overwrite the other
                raise ConfigError(f"job {subdir.name}: {subdir} already holds another run")
            tasks.append(task)
    except ConfigError as exc:
        _exit_error(str(exc))
    finally:
        HydraConfig.instance().cfg = saved
    return tasks


def _exit_error(message: str) -> None:
    """One line on stderr and exit 2, as `python -m acexp` does for a bad value."""
    print(f"acexp: error: {message}", file=sys.stderr)
    sys.exit(2)


def _exit_interrupted(signum: int, trained: list[Trained], not_started: int) -> None:
    """Say in one line how to continue the interrupted jobs, and exit 128 + signal."""
    from acexp.runtime.job_end import exit_interrupted

    stopped = sorted(  # in job order
        (job, out_dir)
        for done in trained
        for job, out_dir, result in zip(
            done.batch.jobs, done.batch.out_dirs, done.results, strict=True
        )
        if result.get("status") == "interrupted"
    )
    interrupted = [out_dir for _, out_dir in stopped]
    for out_dir in interrupted:
        log.info(f"interrupted: {out_dir}")
    exit_interrupted(signum, interrupted, not_started=not_started)
