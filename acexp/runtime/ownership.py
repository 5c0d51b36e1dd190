"""A run owns its directory: made fresh or checked empty of another run, then locked.

Two runs started in the same second would get the same default directory
(`outputs/runs/<date>/<H-M-S>`), and a directory named on the command line may hold a run
already; writing into it would mix two runs' files. So a run's directory is claimed before
Hydra writes anything there: a default one is made with `mkdir`, which only one process can do,
taking the next free suffix (`-1`, `-2`, ...) when the name is taken; a named one is refused in
one line if it holds another run. The process that trains a run holds a lock on its directory
(`filelock`, on `.acexp.lock` there) until it exits, so a second process, a `resume=` of a run
still going included, is refused. Sweep directories are claimed the same way, and each member of
a batched sweep is locked by the process that trains it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from acexp.errors import ConfigError, exit_config_error, os_advice
from acexp.runtime.job_end import resume_command

LOCK_NAME = ".acexp.lock"
RUN_MARKERS = (".hydra", "metrics.json", "checkpoints")  # what a run writes first and last
SWEEP_MARKERS = ("multirun.yaml", *RUN_MARKERS)
MAX_SUFFIX = 1000

_held: dict[Path, FileLock] = {}  # this process's locks: taking one twice is taking it once


class DirectoryTaken(ConfigError):
    """A run directory that holds another run, or that another process is using."""


def holds_run(path: Path, markers: tuple[str, ...] = RUN_MARKERS) -> bool:
    """Whether `path` holds files of a run (or of a sweep, with SWEEP_MARKERS)."""
    return any((path / name).exists() for name in markers)


def lock(run_dir: Path) -> None:
    """Hold `run_dir`'s lock until this process exits (or `release`); DirectoryTaken if another
    process holds it."""
    path = Path(run_dir).resolve()
    held = _held.get(path)
    if held is None:
        held = FileLock(path / LOCK_NAME, timeout=0)
    try:
        held.acquire()
    except Timeout:
        raise DirectoryTaken(
            f"{path} is in use by another acexp process (a run or sweep still going); "
            "wait for it to end, or stop it first"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot lock {path}: {exc.strerror or exc}{os_advice(exc)}") from None
    _held[path] = held


def release(run_dir: Path) -> None:
    """Undo one `lock` of `run_dir` by this process."""
    held = _held.get(Path(run_dir).resolve())
    if held is not None and held.is_locked:
        held.release()


@contextmanager
def locked(run_dirs: list[Path]) -> Iterator[None]:
    """Hold the locks of `run_dirs` within the block (those this process held before, it keeps)."""
    taken: list[Path] = []
    try:
        for run_dir in run_dirs:
            lock(run_dir)
            taken.append(run_dir)
        yield
    finally:
        for run_dir in taken:
            release(run_dir)


def claim(path: Path, *, named: bool, markers: tuple[str, ...] = RUN_MARKERS) -> Path:
    """Make `path` this process's own run (or sweep) directory and lock it; returns it.

    `named`: the user chose it (hydra.run.dir=...): it may exist, but not hold another run.
    Otherwise a taken name gets the first free suffix, `<path>-1`, `<path>-2`, ...
    """
    path = Path(path).absolute()
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(f"cannot make {path}: {blocking} is a file, not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if named:
            return _claim_named(path, markers)
        for n in range(MAX_SUFFIX):
            candidate = path if n == 0 else path.with_name(f"{path.name}-{n}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            lock(candidate)
            return candidate
    except OSError as exc:
        raise ConfigError(f"cannot make {path}: {exc.strerror or exc}{os_advice(exc)}") from None
    raise ConfigError(f"{path} and {MAX_SUFFIX - 1} suffixed names beside it are all taken")


def _claim_named(path: Path, markers: tuple[str, ...]) -> Path:
    """A named directory: refused before anything is written there if it holds a run."""
    if holds_run(path, markers):  # checked first, so that a finished run's files stay untouched
        _refuse_taken(path, markers)
    try:
        path.mkdir()
    except FileExistsError:
        if not path.is_dir():
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)) from None
    lock(path)
    if holds_run(path, markers):  # another process wrote its run there meanwhile
        release(path)
        _refuse_taken(path, markers)
    return path


def _refuse_taken(path: Path, markers: tuple[str, ...]) -> None:
    if (path / LOCK_NAME).exists():
        lock(path)  # DirectoryTaken while the run in it is still going
        release(path)
    if markers == SWEEP_MARKERS:
        what, then = "a sweep", "continue a job of it with: python -m acexp resume=<job dir>"
    else:
        what, then = "another run", f"continue it with: {resume_command(path)}"
    raise DirectoryTaken(f"{path} already holds {what}; choose another directory, or {then}")


def _named_on_command_line(config: DictConfig, key: str) -> bool:
    return any(str(o).startswith(f"{key}=") for o in config.hydra.overrides.hydra)


def _quoted(path: Path) -> str:
    """A Hydra override value: paths may hold '=', ',' or spaces."""
    return "'" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'"


class OwnDirectories(Callback):
    """Claims a run's directory (`hydra.run.dir`) or a sweep's (`hydra.sweep.dir`) before Hydra
    writes into it; a directory that is taken stops the command in one line."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(str(config.hydra.run.dir))
        if config.get("resume"):  # the run's own directory, checked by acexp.config.resume
            _or_exit(lambda: lock(run_dir))
            return
        named = _named_on_command_line(config, "hydra.run.dir")
        owned = _or_exit(lambda: claim(run_dir, named=named))
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.run.dir = str(owned)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        named = _named_on_command_line(config, "hydra.sweep.dir")
        owned = _or_exit(lambda: claim(sweep_dir, named=named, markers=SWEEP_MARKERS))
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweep.dir = str(owned)
            # each job's config is composed again from the overrides: it must name the same one
            config.hydra.overrides.hydra.append(f"hydra.sweep.dir={_quoted(owned)}")


def _or_exit(step: Any) -> Any:
    """`step()`, or its one-line ConfigError and exit 2, as for any bad command line."""
    try:
        return step()
    except ConfigError as exc:
        exit_config_error(exc)
