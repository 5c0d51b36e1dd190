"""Atomic file writes: a reader never sees a half-written file."""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


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
