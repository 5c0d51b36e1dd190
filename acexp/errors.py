"""What goes wrong, said in one line: the errors acexp knows, and one handler for the rest.

Known errors (bad input, a refused write, a NaN) carry a message written for the user. Any
other exception that escapes a command becomes one line too, `acexp: error: <type>: <message>`,
naming the file that holds its full traceback: the run's log file when there is one, else a
file in the temporary directory. ACEXP_TRACEBACK=1 also prints the traceback on the console.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NoReturn

TRACEBACK_ENV = "ACEXP_TRACEBACK"  # set to 1: tracebacks are printed on stderr as well


class ConfigError(ValueError):
    """Bad input: an unknown option, a wrong type, a value out of range, an unsupported space."""


class MissingExtraError(ConfigError):
    """An optional dependency is missing; the message names the pip extra that installs it."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs an optional dependency: pip install 'acexp[{extra}]'")


class NonFiniteError(RuntimeError):
    """A loss or parameter became NaN or Inf during training."""


class SaveError(RuntimeError):
    """A file of the run could not be written (a full disk, a quota, a read-only mount).

    The message says which file, why, and what is still intact; files are written atomically,
    so nothing saved before is lost.
    """


# What to do about a file the system refused, by its errno.
REMEDIES = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some space (or raise your disk quota)",
    errno.EFBIG: "free some space (the file system limits a file's size)",
    errno.EROFS: "make the file system writable (it is mounted read-only)",
    errno.EACCES: "give yourself write permission there",
    errno.EPERM: "give yourself write permission there",
    errno.ENOENT: "make sure the directory still exists",
    errno.ENOTDIR: "a file stands where a directory should be; move it away",
}


def remedy(exc: BaseException | None) -> str | None:
    """What the user can do about an OSError, or None when acexp cannot tell."""
    return REMEDIES.get(exc.errno) if isinstance(exc, OSError) else None


def os_advice(exc: BaseException) -> str:
    """`remedy(exc)` as the end of a sentence ("; free some space"), or ""."""
    what = remedy(exc)
    return f"; {what}" if what else ""


def exit_config_error(exc: BaseException, prog: str = "acexp") -> NoReturn:
    """A known error's own line, and exit 2 as for any bad command line."""
    print(f"{prog}: error: {exc}", file=sys.stderr)
    sys.exit(2)


def unexpected(exc: BaseException) -> str:
    """One line for an exception nobody expected: what it was, and where its traceback went."""
    where = record_traceback(exc)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if isinstance(exc, MemoryError) and not lines:  # raised with no message
        lines = ["out of memory (fewer or smaller envs, networks or batches need less)"]
    what = type(exc).__name__ + (f": {'; '.join(lines)}" if lines else "")
    seen = f"traceback in {where}" if where else "its traceback could not be written"
    return f"{what} ({seen}; {TRACEBACK_ENV}=1 prints it here)"


def record_traceback(
    exc: BaseException, thread: str | None = None, run_dir: Path | None = None
) -> Path | None:
    """Append `exc`'s traceback to the run's log file (that of `run_dir`, among a batch's), else
    to a new file in the temporary directory; the file, or None if nothing could be written
    (a full disk)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    header = f"--- acexp: unexpected error{f' in thread {thread}' if thread else ''}, "
    header += f"{time.strftime('%Y-%m-%d %H:%M:%S')} ---\n"
    if os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
        sys.stderr.write(text)
    for path in [
        p for p in _log_files() if run_dir is None or p.parent == Path(run_dir).absolute()
    ]:
        with suppress(OSError):
            with path.open("a", encoding="utf-8") as log_file:
                log_file.write(header + text)
            return path
    with suppress(OSError):
        fd, name = tempfile.mkstemp(prefix="acexp-traceback-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(header + text)
        return Path(name)
    return None


def _log_files() -> list[Path]:
    """The files the root logger writes to (Hydra's job log: `<run dir>/<job name>.log`)."""
    handlers = logging.getLogger().handlers
    return [Path(h.baseFilename) for h in handlers if isinstance(h, logging.FileHandler)]


def quiet_background_failures() -> None:
    """A thread's uncaught exception (TensorBoard's writer on a full disk) goes to the traceback
    file, not the console: the main thread meets the same error and says it in one line. A log
    line that cannot be written (its file on a full disk) is dropped without a traceback."""
    threading.excepthook = lambda args: (
        None
        if args.exc_value is None or isinstance(args.exc_value, SystemExit)
        else record_traceback(args.exc_value, getattr(args.thread, "name", None))
    )
    logging.raiseExceptions = False


class _Only(logging.Filter):
    """Passes records of one level only (`keep`), or all but that level."""

    def __init__(self, level: int, keep: bool) -> None:
        super().__init__()
        self.level, self.keep = level, keep

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno == self.level) == self.keep


def warnings_to_stderr() -> None:
    """Warnings logged for the console go to stderr, not to stdout with the progress lines
    (Hydra's console handler writes to stdout). Idempotent."""
    root = logging.getLogger()
    if any(getattr(h, "acexp_warnings", False) for h in root.handlers):
        return
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.addFilter(_Only(logging.WARNING, keep=False))
            warnings = logging.StreamHandler(sys.stderr)
            warnings.setFormatter(handler.formatter)
            warnings.addFilter(_Only(logging.WARNING, keep=True))
            warnings.acexp_warnings = True  # type: ignore[attr-defined]
            root.addHandler(warnings)


@contextmanager
def one_line_errors(prog: str = "acexp") -> Iterator[None]:
    """Around a command: a ConfigError is its own line and exit 2; any other exception is one
    line (`unexpected`) and exit 1. SystemExit and KeyboardInterrupt pass."""
    quiet_background_failures()
    try:
        yield
    except ConfigError as exc:
        exit_config_error(exc, prog)
    except Exception as exc:
        print(f"acexp: error: {unexpected(exc)}", file=sys.stderr)
        sys.exit(1)
