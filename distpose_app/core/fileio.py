"""File helpers shared by every stage: the one JSON conversion of numpy values and the one atomic
write (a temporary file in the same folder, flushed and synced, then os.replace, so that a crash
or a full disk never leaves half a file under the real name)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from distpose_app.core.errors import DistposeError


def to_jsonable(value: Any) -> Any:
    """`json.dumps(default=...)` hook: numpy scalars and arrays as plain JSON, paths as strings,
    anything else as its str() (metadata must never make a save fail)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def strict_json(value: Any) -> Any:
    """Numpy -> Python and NaN/inf -> None, recursively (dict keys as strings), so that
    json.dumps(..., allow_nan=False) writes strict JSON."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return strict_json(value.tolist())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike, mode: str = "wb", make_folder: bool = True
) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing ("wb", or "w": UTF-8 text with "\\n"
    line ends). When the block ends cleanly the file is flushed, synced, given ordinary
    permissions (0666 less the umask; mkstemp's are private) and renamed onto `path`; when it
    raises, the temporary file is removed and `path` is untouched. make_folder: create the
    folder first (else a missing folder raises FileNotFoundError). OSError propagates."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if make_folder:
        folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        binary = "b" in mode
        encoding, newline = (None, None) if binary else ("utf-8", "\n")
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to `path` atomically (`atomic_file`); returns the path.

    The folder must exist: a missing or unwritable folder, or a full disk, raises DistposeError
    naming the path, and leaves no file under `path` (and no temporary file)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DistposeError(f"cannot write {path}: folder {folder} does not exist")
    try:
        with atomic_file(path, "w" if isinstance(data, str) else "wb", make_folder=False) as f:
            f.write(data)
    except OSError as exc:
        raise DistposeError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def _save_atomic(path: str | os.PathLike, save: Callable[[IO], None]) -> Path:
    path = Path(path)
    with atomic_file(path) as f:
        save(f)
    return path


def savez_atomic(path: str | os.PathLike, arrays: dict[str, Any]) -> Path:
    """np.savez (uncompressed) `arrays` to `path` atomically; creates the folder."""
    return _save_atomic(path, lambda f: np.savez(f, **arrays))


def torch_save_atomic(payload: Any, path: str | os.PathLike) -> Path:
    """torch.save `payload` to `path` atomically; creates the folder. Returns the path."""
    import torch

    return _save_atomic(path, lambda f: torch.save(payload, f))
