"""SIGINT and SIGTERM (Ctrl-C, SLURM preemption) ask a run to stop at its next safe point."""

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(request_stop: Callable[[int], None]) -> Iterator[None]:
    """Within the block, a first SIGINT/SIGTERM calls `request_stop(signum)`; nothing is raised
    from inside torch. A second one raises KeyboardInterrupt, for a user who cannot wait.

    Handlers can only be installed from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received:
            raise KeyboardInterrupt
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
