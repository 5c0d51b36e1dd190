"""SIGINT and SIGTERM (Ctrl-C, SLURM preemption) ask a run to stop at its next safe point."""

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# The run directories whose end (metrics.json, model.pt) this process has written. A Ctrl-C that
# comes after the run's own handler is gone, while the process closes, names where they are
# rather than saying that the run stopped before a checkpoint (acexp/__main__.py).
ended_runs: list[Path] = []


class StoppedAtOnce(KeyboardInterrupt):
    """A second SIGINT/SIGTERM: stop now, without a checkpoint (the state may be mid-update).

    `run_dir` is the run that stopped, once known (acexp.run names it for the console line).
    """

    def __init__(self, signum: int, run_dir: object = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.run_dir = signum, run_dir


@contextmanager
def stop_on_signals(request_stop: Callable[[int], None]) -> Iterator[None]:
    """Within the block, a first SIGINT/SIGTERM calls `request_stop(signum)`; nothing is raised
    from inside torch. A second one raises StoppedAtOnce, for a user who cannot wait.

    Handlers can only be installed from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received:
            raise StoppedAtOnce(signum)
        received.append(signum)
        request_stop(signum)

    with handling(handler):
        yield


@contextmanager
def handling(handler: Callable[[int, object], None]) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM go to `handler`; the previous handlers come back."""
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_when_closed(lifeline: Connection, signum: int = signal.SIGTERM) -> threading.Event:
    """Send this process `signum` once the other end of `lifeline` is closed: held by the
    process this one works for, it closes when that process exits, however it dies (even by
    SIGKILL, even while it is a zombie). Returns an event set when that has happened."""
    gone = threading.Event()

    def watch() -> None:
        with suppress(OSError, EOFError):
            lifeline.poll(None)  # nothing is ever sent: this returns at end of file
        gone.set()
        os.kill(os.getpid(), signum)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
    return gone
