"""Small file helpers shared by checkpoints, adaptations and reports: JSON conversion of numpy
values and atomic writes (a temporary file in the same folder, then os.replace, so that a crash
or a full disk never leaves half a file under the real name)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def to_jsonable(value):
    """`json.dumps(default=...)` hook: numpy scalars and arrays, and paths, as plain JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def torch_save_atomic(payload, path: str | Path) -> Path:
    """torch.save `payload` to `path` atomically; creates the folder. Returns the path."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def savez_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez (uncompressed) `arrays` to `path` atomically; creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
