"""Atomic file writes (a reader never sees a half-written file) and training checkpoints.

Files get the permissions the user's umask gives a new file (0644 under umask 022), as `open`
would give them, so that colleagues sharing a cluster can read results the user shares.
"""

import json
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acexp.errors import REMEDIES, ConfigError, SaveError, remedy
from acexp.runtime.job_end import resume_command

log = logging.getLogger("acexp")


def _file_mode() -> int:
    """The mode `open` gives a new file under the current umask (read back, then restored)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_write(path: Path, write: Any) -> None:
    """Write into a temporary file beside `path`, fsync, rename: `path` is whole or as before.

    A write the system refuses (a full disk, a quota, a read-only mount) raises SaveError.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise SaveError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), _file_mode())  # mkstemp makes it 0600
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        # torch.save reports a failed write as a RuntimeError whose context is the OSError
        refused = exc if isinstance(exc, OSError) else exc.__context__
        if isinstance(refused, OSError):
            raise SaveError(f"cannot write {path}: {refused.strerror or refused}") from exc
        raise


def save_torch(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same directory, fsync, then rename."""
    _atomic_write(path, lambda handle: torch.save(obj, handle))


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode() + b"\n"


def save_json(obj: Any, path: Path) -> None:
    _atomic_write(path, lambda handle: handle.write(_json_bytes(obj)))


def save_json_beside(obj: Any, path: Path) -> Path:
    """Write `obj` whole to `path`, or, when that name is taken, to the first free
    `<stem>-1.json`, `<stem>-2.json`, ...; returns the path written. A file already there is
    never replaced: the finished temporary file is hard-linked to its name, which fails on a
    name taken meanwhile (by a concurrent writer too)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    _atomic_write(tmp, lambda handle: handle.write(_json_bytes(obj)))
    try:
        for n in range(1000):
            candidate = path if n == 0 else path.with_name(f"{path.stem}-{n}{path.suffix}")
            try:
                os.link(tmp, candidate)
            except FileExistsError:
                continue
            except OSError as exc:
                raise SaveError(f"cannot write {candidate}: {exc.strerror or exc}") from exc
            return candidate
    finally:
        tmp.unlink(missing_ok=True)
    raise SaveError(f"cannot write {path}: it and 999 numbered names beside it are taken")


# numpy scalars are data, not code: checkpoints of PPO runs written before the annealed
# learning rate was kept a python float hold one, and must still resume. (A scalar pickles
# as numpy's `scalar` function, whose module moved in numpy 2; the reduce finds it in both.)
NUMPY_SCALARS = [
    np.float64(0).__reduce__()[0],
    np.dtype,
    *map(type, map(np.dtype, "?bhilqBHILQefdgFDG")),
]


def load_torch(path: Path) -> Any:
    """Loads tensors, plain containers and numpy scalars only; pickled code is refused by
    torch."""
    with torch.serialization.safe_globals(NUMPY_SCALARS):
        return torch.load(path, map_location="cpu", weights_only=True)


class CheckpointError(ConfigError):
    """A checkpoint that cannot be used: unreadable or truncated."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that carries pickled objects (code) rather than tensors and containers."""


def load_weights(model: torch.nn.Module, weights: dict, source: Path) -> None:
    """A run's weights (`model.pt`, a checkpoint's "model") into a model of one member,
    failing in one line when they do not fit it."""
    try:
        model.load_member_state_dict(0, weights)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{source} does not fit this run's model: {detail}") from None


def load_checkpoint(path: Path) -> dict:
    """One checkpoint; raises CheckpointError naming the file and what is wrong with it."""
    try:
        return load_torch(path)
    except pickle.UnpicklingError as exc:
        culprit = [line for line in str(exc).splitlines() if "GLOBAL" in line][:1]
        if not culprit:  # not a checkpoint at all: JSON, an event file, text
            raise CheckpointError(
                f"{path} is not a checkpoint (torch.load cannot read it)"
            ) from None
        raise UnsafeCheckpointError(
            f"{path} holds pickled objects, not only tensors and plain containers; refusing to "
            f"load it with torch.load(weights_only=True) ({' '.join(culprit).strip()})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is truncated or corrupted: {exc}".splitlines()[0]) from None


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step_{step:09d}.pt"


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in `directory`, oldest first (the step is in the name)."""
    return sorted(directory.glob("step_*.pt"))


def save_checkpoint(state: dict, directory: Path, step: int, keep: int) -> Path:
    """Write `state` atomically as `step_<step>.pt`, then delete all but the newest `keep`."""
    path = checkpoint_path(directory, step)
    save_torch(state, path)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    for stale in directory.glob(".step_*.pt.*.tmp"):  # a write killed (kill -9) mid-way
        stale.unlink(missing_ok=True)
    return path


def save_failure(exc: BaseException, run_dir: Path) -> str | None:
    """One line for a run stopped because the system refused a write, or None for other errors.

    It names the first write that failed (a full disk often fails the metrics.json written
    after it too), says which checkpoint is intact, what to do about the cause (a full disk, a
    read-only or missing directory, a permission) and how to go on from it.
    """
    chain = _chain(exc)
    saves = [e for e in chain if isinstance(e, SaveError)]  # each wraps its OSError
    faults = saves or [e for e in chain if _disk_errno(e)]
    if not faults:
        return None
    first = faults[-1]
    what = str(first) if saves else f"cannot write: {first}"
    refused = next((e for e in _chain(first) if isinstance(e, OSError)), None)
    cause = remedy(refused) or "fix what refused the write"
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    if checkpoints:
        then = (
            f"the last checkpoint, {checkpoints[-1].name}, is intact; {cause}, then "
            f"continue with: {resume_command(run_dir)}"
        )
    else:
        then = f"no checkpoint had been written yet; {cause} and start the run again"
    return f"{what}; {then}"


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or during, newest first."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _disk_errno(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in REMEDIES


def latest_checkpoint(directory: Path) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads; unreadable ones are skipped with a warning.

    A checkpoint with pickled code is never skipped silently: UnsafeCheckpointError propagates.
    """
    for path in reversed(list_checkpoints(directory)):
        try:
            return path, load_checkpoint(path)
        except UnsafeCheckpointError:
            raise
        except CheckpointError as exc:
            log.warning("skipping %s", exc)
    return None
