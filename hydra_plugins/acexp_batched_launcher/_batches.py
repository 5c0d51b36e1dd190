"""Train batches in this process or side by side in worker processes, and stop them on a signal.

A worker is a process in its own process group: a terminal's Ctrl-C reaches only the sweep
process, which passes each SIGINT/SIGTERM on to every worker once, so a batch sees a signal
once and stops at its next safe point with a checkpoint (a second one stops it at once).
A worker outlives no sweep: it holds the read end of a pipe whose other end only the sweep
process holds; when the sweep process dies, however it dies (an out-of-memory kill, SIGKILL),
the worker stops as on SIGTERM, with a checkpoint (its members resume), and exits quietly.

Workers fork from multiprocessing's fork server, which imports torch and acexp once
(`WORKER_IMPORTS`); `start_fork_server()` starts it early, so that those imports overlap the
sweeper composing the jobs and a worker starts in a fraction of a second, not in seconds.
Where there is no fork server (Windows), workers are spawned.
"""

import json
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing import forkserver, resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from hydra.core.utils import configure_log, setup_globals
from omegaconf import DictConfig

from acexp.errors import quiet_background_failures, record_traceback, warnings_to_stderr
from acexp.runtime.signals import STOP_SIGNALS, handling, stop_when_closed

from ._held_signals import HeldSignals

READY = "ready"  # a worker's first message: it holds signals now, so they may be passed on
# what every worker imports, what torch.optim imports at its first step (torch._dynamo), and
# the fork server's quick exit, last
WORKER_IMPORTS = ["acexp.run", "torch._dynamo", __name__, f"{__package__}._quick_exit"]


@dataclass
class Batch:
    """Jobs that train together: their numbers in this launch, configs and run directories."""

    jobs: list[int]
    cfgs: list[DictConfig]
    out_dirs: list[Path]
    hydra_cfg: DictConfig  # the first job's Hydra config: how to log (hydra/job_logging)


@dataclass
class Trained:
    """A batch that ran, with each member's metrics (`metrics.json`), in job order."""

    batch: Batch
    results: list[dict]


def failure(error: str) -> dict:
    """The metrics of a member that could not report its own."""
    return {"status": "failed", "error": error}


def died(out_dir: Path, how: str) -> dict:
    """The metrics of a member whose process died: those it wrote if it had ended, else failed,
    with how it died and how to continue it from its last checkpoint."""
    from acexp.runtime.checkpoint import list_checkpoints
    from acexp.runtime.job_end import resume_command

    with suppress(OSError, ValueError):
        return json.loads((out_dir / "metrics.json").read_text())
    saved = list_checkpoints(out_dir / "checkpoints")
    if not saved:
        return failure(f"{how} before its first checkpoint; it must start again")
    return failure(f"{how}; its last checkpoint is {saved[-1].name}") | {
        "resume": resume_command(out_dir)
    }


def interruption(results: list[dict]) -> int | None:
    """The signal that interrupted a member of the batch, if one was."""
    for result in results:
        if result.get("status") == "interrupted":
            return signal.Signals[result.get("signal", "SIGINT")]
    return None


def train(batch: Batch) -> list[dict]:
    """Train one batch in this process; returns each member's metrics."""
    from acexp.sweeps.batch import run_batch

    _log_to_every_job(batch)
    warnings_to_stderr()
    return run_batch(batch.cfgs, batch.out_dirs)


def _log_to_every_job(batch: Batch) -> None:
    """Log as Hydra does for a job (hydra/job_logging), with the first job's log file copied
    into every member's directory: each job's log is the log of its batch."""
    hydra = batch.hydra_cfg.hydra
    configure_log(hydra.job_logging, hydra.verbose)
    root = logging.getLogger()
    first = Path(batch.out_dirs[0])
    for handler in list(root.handlers):
        if not isinstance(handler, logging.FileHandler):
            continue
        path = Path(handler.baseFilename)
        if path.parent != first:
            continue  # a log file outside the run directory is shared already
        for out_dir in batch.out_dirs[1:]:
            copy = logging.FileHandler(Path(out_dir) / path.name, encoding=handler.encoding)
            copy.setLevel(handler.level)
            copy.setFormatter(handler.formatter)
            root.addHandler(copy)


def run_batches(batches: Iterator[Batch], workers: int) -> tuple[list[Trained], int | None]:
    """Train batches, `workers` at a time (1: in this process, one after another).

    `batches` is consumed lazily: once a signal arrives, no further batch is taken from it.
    Returns the batches that ran and the signal that stopped the sweep, if one did.
    """
    if workers == 1:
        return _in_this_process(batches)
    return _in_workers(batches, workers)


def _in_this_process(batches: Iterator[Batch]) -> tuple[list[Trained], int | None]:
    trained: list[Trained] = []
    stopped: int | None = None
    with HeldSignals() as held:
        while stopped is None and (batch := next(batches, None)) is not None:
            results = train(batch)
            trained.append(Trained(batch, results))
            stopped = interruption(results)
            if stopped is None and held.received:
                stopped = held.received[0]
    return trained, stopped


class _Worker:
    """One batch in a worker process; messages come back over a pipe."""

    def __init__(self, context: multiprocessing.context.BaseContext, batch: Batch) -> None:
        self.batch = batch
        self.ready = False
        self.conn, child_end = context.Pipe(duplex=False)
        lifeline, self.lifeline = context.Pipe(duplex=False)  # this end closes as we exit
        self.process: BaseProcess = context.Process(
            target=_worker_main, args=(batch, child_end, lifeline)
        )
        resource_tracker.ensure_running()  # starting it would unblock the signals below
        with _signals_blocked():  # the worker starts with them blocked too, until it holds them
            self.process.start()
        child_end.close()  # so that the pipe reads as closed once the worker has gone
        lifeline.close()

    def send_signal(self, signum: int) -> None:
        if self.ready and self.process.pid is not None:
            with suppress(ProcessLookupError):  # it has just finished
                os.kill(self.process.pid, signum)

    def receive(self) -> str | list[dict]:
        """The next message; a worker that died without reporting fails its members that had
        not ended, each naming the checkpoint it can resume from."""
        try:
            return self.conn.recv()
        except EOFError:
            self.join()
            code = self.process.exitcode
            how = f"exited with code {code}"
            if code is not None and code < 0:
                how = f"was killed by {signal.Signals(-code).name}"
            return [died(Path(out_dir), f"its batch's worker process {how}")
                    for out_dir in self.batch.out_dirs]  # fmt: skip

    def join(self) -> None:
        self.process.join()
        self.lifeline.close()


def _context() -> multiprocessing.context.BaseContext:
    """Fork server where there is one (preloading WORKER_IMPORTS), else spawn: never plain
    fork, whose child would inherit the sweep process's threads and state."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_IMPORTS)
    return context


def start_fork_server() -> None:
    """Start the fork server now, in the background (see the module's doc). It and the
    workers forked from it start with SIGINT/SIGTERM blocked, as a worker must start."""
    if isinstance(_context(), multiprocessing.context.ForkServerContext):
        resource_tracker.ensure_running()
        with _signals_blocked():
            forkserver.ensure_running()


def _in_workers(batches: Iterator[Batch], workers: int) -> tuple[list[Trained], int | None]:
    context = _context()
    running: dict[Connection, _Worker] = {}
    trained: list[Trained] = []
    stop: list[int] = []

    def request_stop(signum: int) -> None:
        stop.append(signum)
        for worker in running.values():
            worker.send_signal(signum)

    try:
        with handling(lambda signum, frame: request_stop(signum)):
            while True:
                while not stop and len(running) < workers:
                    batch = next(batches, None)
                    if batch is None:
                        break
                    worker = _Worker(context, batch)
                    running[worker.conn] = worker
                if not running:
                    break
                for conn in wait(list(running)):
                    worker = running[conn]
                    message = worker.receive()
                    if message == READY:
                        worker.ready = True
                        if stop:
                            worker.send_signal(stop[0])
                        continue
                    del running[conn]
                    worker.join()
                    trained.append(Trained(worker.batch, message))
                    signum = interruption(message)
                    if signum is not None and not stop:  # signalled directly, not through us
                        request_stop(signum)
    finally:
        for worker in running.values():  # only after an error here: stop them as a signal would
            if worker.ready:
                worker.send_signal(signal.SIGTERM)
            else:
                worker.process.kill()  # still starting: it has trained nothing
            worker.join()
    return trained, (stop or [None])[0]


def _worker_main(batch: Batch, conn: Connection, lifeline: Connection) -> None:
    """A worker process: hold signals, say so, train the batch and send its results; stop as on
    SIGTERM if the sweep process dies meanwhile (then nobody reads the results)."""
    os.setpgrp()  # a terminal's Ctrl-C now reaches the sweep process only, which passes it on
    setup_globals()
    quiet_background_failures()
    with HeldSignals():
        orphaned = stop_when_closed(lifeline)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked while starting
        with suppress(OSError):  # the sweep process has gone already
            conn.send(READY)
        try:
            results = train(batch)
        except Exception as exc:  # run_batch itself failed: every member did
            record_traceback(exc)  # into the members' log
            results = [failure(f"{type(exc).__name__}: {exc}")] * len(batch.jobs)
    if not orphaned.is_set():
        with suppress(OSError):  # it died just now
            conn.send(results)
    conn.close()


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """SIGINT/SIGTERM wait until the end of the block, and a process started in it inherits
    them blocked: a terminal's Ctrl-C cannot kill a worker before it can hold signals."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
