"""Hold SIGINT/SIGTERM until a batch's own handlers are in place, then pass them on.

`run_batch` installs its handlers (acexp.runtime.signals.stop_on_signals) only once it has built the
batch. A signal that arrives earlier, while a worker imports torch or the batch builds its
environments, would otherwise kill the process or be ignored; held here, it reaches those
handlers as soon as they exist, and the batch stops at its first safe point with a checkpoint.
"""

import os
import signal
import threading
from types import FrameType, TracebackType

from acexp.runtime.signals import STOP_SIGNALS

POLL_SECONDS = 0.05  # how often a held signal checks whether the batch's handler is in place


class HeldSignals:
    """Within the block, the first SIGINT/SIGTERM is recorded in `received` and delivered
    again once another handler (the batch's) replaces this one; later ones are dropped, so a
    signal that reaches a worker twice (from the terminal and from the sweep) counts once.

    Handlers can only be installed from the main thread; elsewhere this does nothing.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "HeldSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._hold) for sig in STOP_SIGNALS}
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closed.set()  # a signal still held now is not delivered: the caller has seen it
        for thread in self._threads:
            thread.join()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            return
        self.received.append(signum)
        thread = threading.Thread(target=self._deliver, args=(signum,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _deliver(self, signum: int) -> None:
        while not self._closed.wait(POLL_SECONDS):
            if signal.getsignal(signum) != self._hold:
                os.kill(os.getpid(), signum)
                return
