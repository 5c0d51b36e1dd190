"""Atomic file writes (a reader never sees a half-written file) and training checkpoints."""

import json
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from acexp.errors import ConfigError

log = logging.getLogger("acexp")


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_torch(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same directory, fsync, then rename."""
    _atomic_write(path, lambda handle: torch.save(obj, handle))


def save_json(obj: Any, path: Path) -> None:
    _atomic_write(path, lambda handle: handle.write(json.dumps(obj, indent=2).encode() + b"\n"))


def load_torch(path: Path) -> Any:
    """Loads tensors and plain containers only; pickled code is refused by torch."""
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
    return path


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
