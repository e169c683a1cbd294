"""Crash-safe recording: the recovery files the `Recorder` appends every frame to, and finding,
loading and discarding them after a crash.

A recovery file is one take: a text line `DISTPOSE-RECOVERY 1`, a JSON header line (metadata,
source, start time, process id), then fixed-size binary frame records (`RECORD`: kind, tracked,
timestamp seconds, positions (17, 3) float32 metres, confidence (17,) float32, seen (17,) uint8
0/1, image rays (17, 2) float32, CRC-32; version 1 files, written before seen flags existed,
have no seen field and still load, with seen = confidence > 0, which is what the pipeline
recorded then; version 2 files have no rays and load without them). Records
are only ever appended, and written + fsync'ed at least every `FLUSH_INTERVAL_S` seconds, so a
killed process loses at most that much; a torn last record (the kill hit mid-write) fails its
length or CRC check and is dropped on loading. While a take is being written its file holds an
exclusive `flock`, released by the kernel when the process dies, so `find_recoverable` never
offers another running instance's take.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import stat
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from distpose_app.core import paths
from distpose_app.core.errors import DataFormatError
from distpose_app.core.fileio import to_jsonable
from distpose_app.core.skeleton import NUM_JOINTS

try:  # POSIX only; elsewhere a live take is told apart by its process id
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MAGIC = b"DISTPOSE-RECOVERY 1\n"
SUFFIX = ".dprec"
FLUSH_INTERVAL_S = 0.5  # at most this much of a take is lost when the process is killed
FLUSH_FRAMES = 1000  # ... or this many frames (bounds the queue at high frame rates)
KIND_FRAME, KIND_END = b"FR", b"EN"
VERSION = 3
_FIELDS = [
    ("kind", "S2"),
    ("tracked", "u1"),
    ("reserved", "u1"),
    ("t", "<f8"),
    ("pos", "<f4", (NUM_JOINTS, 3)),
    ("conf", "<f4", (NUM_JOINTS,)),
]
_SEEN = ("seen", "u1", (NUM_JOINTS,))
RECORD = np.dtype([*_FIELDS, _SEEN, ("rays", "<f4", (NUM_JOINTS, 2)), ("crc", "<u4")])  # 441 B
RECORD_V2 = np.dtype([*_FIELDS, _SEEN, ("crc", "<u4")])  # 305 bytes, no rays
RECORD_V1 = np.dtype([*_FIELDS, ("crc", "<u4")])  # 288 bytes, no seen flags
_counter = itertools.count()


def default_dir() -> Path:
    """Where recovery files go: `core.paths.recovery_dir()` (the user's data folder, shared by
    the app and the CLI; ~/.local/share/distpose/recovery on Linux)."""
    return paths.recovery_dir()


def make_record(
    timestamp_s: float,
    positions: np.ndarray,
    confidence: np.ndarray,
    tracked: bool,
    seen: np.ndarray | None = None,
    rays: np.ndarray | None = None,
) -> np.ndarray:
    """One frame as a RECORD (shape ()): positions (17, 3) metres (NaN when untracked),
    confidence (17,), timestamp seconds, seen (17,) bool the joints the detector saw (None:
    confidence > 0), rays (17, 2) the image rays of the 2D the pose was lifted from (NaN: not
    seen; None: unknown); the CRC covers everything before it."""
    rec = np.zeros((), RECORD)
    rec["kind"], rec["tracked"], rec["t"] = KIND_FRAME, bool(tracked), timestamp_s
    rec["pos"], rec["conf"] = positions, confidence
    rec["seen"] = np.asarray(confidence) > 0 if seen is None else np.asarray(seen, bool)
    rec["rays"] = np.nan if rays is None else rays
    rec["crc"] = zlib.crc32(rec.tobytes()[: RECORD.itemsize - 4])
    return rec


def _end_record() -> bytes:
    rec = np.zeros((), RECORD)
    rec["kind"] = KIND_END
    rec["crc"] = zlib.crc32(rec.tobytes()[: RECORD.itemsize - 4])
    return rec.tobytes()


class RecoveryWriter:
    """Appends one take's records to `<folder>/take-<time>-<pid>-<n>.dprec`. Raises OSError
    (folder not creatable, disk full); the Recorder catches it and records on in memory."""

    def __init__(self, folder: str | os.PathLike, metadata: dict | None = None):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = folder / f"take-{stamp}-{os.getpid()}-{next(_counter)}{SUFFIX}"
        metadata = dict(metadata or {})
        header = {
            "format": "distpose-recovery",
            "version": VERSION,
            "started": datetime.now().astimezone().isoformat(timespec="seconds"),
            "pid": os.getpid(),
            "source": str(metadata.get("source", "unknown")),
            "record_size": RECORD.itemsize,
            "metadata": metadata,
        }
        text = json.dumps(header, default=to_jsonable, ensure_ascii=True)
        self._file = open(self.path, "xb")  # noqa: SIM115 - held open for the whole take
        try:
            if fcntl is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._file.write(MAGIC + text.encode("ascii") + b"\n")
            self._pending = bytearray()
            self._pending_frames = 0
            self.frames_written = 0
            self.flush()
            with contextlib.suppress(OSError):  # make the new name itself durable
                fd = os.open(folder, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except BaseException:
            self._close_file()  # closing flushes again and may fail again (disk full)
            self.path.unlink(missing_ok=True)  # never leave an empty take behind
            raise
        self._last_flush = time.monotonic()

    def append(self, record: np.ndarray) -> None:
        """Queue one RECORD; written out when FLUSH_INTERVAL_S or FLUSH_FRAMES have passed."""
        self._pending += record.tobytes()
        self._pending_frames += 1
        self.flush_if_due()

    def flush_if_due(self) -> None:
        due = time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S
        if self._pending and (due or self._pending_frames >= FLUSH_FRAMES):
            self.flush()

    def flush(self) -> None:
        """Write what is queued and fsync (survives a killed process and a power cut)."""
        if self._pending:
            self._file.write(self._pending)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.frames_written += self._pending_frames
        self._pending.clear()
        self._pending_frames = 0
        self._last_flush = time.monotonic()

    def finish(self, keep: bool = False) -> None:
        """End the take: delete the file (a clean stop), or with keep=True mark it as stopped
        and keep it until `discard` (an unsaved take stays recoverable)."""
        try:
            if keep:
                self._pending += _end_record()
                self.flush()
        finally:
            self.close()
            if not keep:
                self.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close without ending the take (the file stays recoverable). Never raises: this is
        also how a writer that failed (disk full) is dropped."""
        if not self._file.closed:
            with contextlib.suppress(OSError, ValueError):
                if self._pending:
                    self.flush()
        self._close_file()

    def _close_file(self) -> None:
        """Close the file even when its buffered bytes cannot be written: a buffered file's
        close() flushes first and re-raises the write error (ENOSPC) after closing the
        descriptor; what did not reach the disk is dropped (the take is also in memory)."""
        try:
            self._file.close()
        except (OSError, ValueError):
            if not self._file.closed:  # pragma: no cover - CPython closes the raw file anyway
                with contextlib.suppress(OSError):
                    os.close(self._file.fileno())


@dataclass(frozen=True)
class RecoveryInfo:
    """A take that can be recovered. path: its recovery file; frames: readable frame records;
    started: ISO time the take started; source: what was recorded (camera, file, demo);
    complete: it was stopped cleanly but never saved (False: the process died while recording);
    duration_s: seconds between its first and last frame."""

    path: Path
    frames: int
    started: str
    source: str
    complete: bool = False
    duration_s: float = 0.0


def _header(data: bytes, path: Path) -> tuple[dict, int, np.dtype]:
    """(header dict, offset of the first record, record dtype); DataFormatError otherwise."""
    if not data.startswith(MAGIC):
        raise DataFormatError(f"{path}: not a distpose recovery file")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise DataFormatError(f"{path}: recovery file header is incomplete")
    try:
        header = json.loads(data[len(MAGIC) : end])
    except ValueError:
        raise DataFormatError(f"{path}: recovery file header is damaged") from None
    if not isinstance(header, dict):
        raise DataFormatError(f"{path}: recovery file header is not a JSON object")
    size = header.get("record_size")
    known = {d.itemsize: d for d in (RECORD, RECORD_V2, RECORD_V1)}
    dtype = known.get(size) if isinstance(size, int) and not isinstance(size, bool) else None
    if dtype is None:
        raise DataFormatError(f"{path}: recovery records of {str(size)[:20]} bytes, "
                              f"this distpose reads {RECORD.itemsize}")  # fmt: skip
    return header, end + 1, dtype


def _valid_at(body: bytes, offset: int, dtype: np.dtype) -> bool:
    """True when a whole record with a good CRC and a known kind starts at `offset`."""
    raw = body[offset : offset + dtype.itemsize]
    if len(raw) < dtype.itemsize or raw[:2] not in (KIND_FRAME, KIND_END):
        return False
    return zlib.crc32(raw[:-4]) == int.from_bytes(raw[-4:], "little")


def _scan(body: bytes, dtype: np.dtype) -> tuple[np.ndarray, bool, int]:
    """(good frame records, ended cleanly, bytes skipped as damaged). Records are fixed-size:
    a record that fails its CRC (a bit flip, a torn write) is skipped, and reading resumes at
    the next record boundary, or, when the damage shifted the boundaries (a partial write
    followed by more records), at the next byte offset where a valid record starts."""
    size = dtype.itemsize
    whole = len(body) // size
    if whole == 0:
        return np.zeros(0, dtype), False, len(body)
    records = np.frombuffer(body, dtype, count=whole)
    raw = np.frombuffer(body, np.uint8, count=whole * size).reshape(whole, size)
    crc = np.fromiter((zlib.crc32(r[:-4].tobytes()) for r in raw), np.uint32, whole)
    kind_ok = np.isin(records["kind"], (KIND_FRAME, KIND_END))
    if (kind_ok & (crc == records["crc"])).all() and len(body) == whole * size:
        # the common case (an intact file): no per-byte search
        kinds = records["kind"]
        ends = np.flatnonzero(kinds == KIND_END)
        stop = int(ends[0]) if len(ends) else whole
        return records[:stop].copy(), bool(len(ends)), 0
    good: list[bytes] = []
    offset, skipped, ended = 0, 0, False
    while offset + size <= len(body):
        if _valid_at(body, offset, dtype):
            if body[offset : offset + 2] == KIND_END:
                ended = True
                break
            good.append(body[offset : offset + size])
            offset += size
            continue
        # resync: the next boundary first (a flipped bit), then byte by byte (a shifted stream)
        nxt = offset + size
        if not _valid_at(body, nxt, dtype):
            nxt = offset + 1
            while nxt + size <= len(body) and not _valid_at(body, nxt, dtype):
                nxt += 1
        skipped += min(nxt, len(body)) - offset
        offset = nxt
    if not ended:
        skipped += max(0, len(body) - offset)  # a torn tail
    frames = np.frombuffer(b"".join(good), dtype) if good else np.zeros(0, dtype)
    return frames, ended, skipped


def _read(path: Path) -> tuple[dict, np.ndarray, bool, int]:
    """(header, frame records (N,) RECORD, or RECORD_V2 / RECORD_V1 (an old file), ended
    cleanly, bytes skipped as damaged). Damaged records are skipped, not the rest of the take."""
    data = _read_regular(path)
    header, start, dtype = _header(data, path)
    records, ended, skipped = _scan(data[start:], dtype)
    return header, records, ended, skipped


def _read_regular(path: Path) -> bytes:
    """The bytes of `path` if it is a regular file; a fifo, device or folder named like a
    recovery file raises DataFormatError without being opened (opening a fifo blocks)."""
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise DataFormatError(f"{path}: not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _is_live(path: Path, header: dict | None = None) -> bool:
    """True when a running process is still writing `path` (holds its lock)."""
    if fcntl is not None:
        try:
            with open(path, "rb") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False
        except BlockingIOError:
            return True
        except OSError:
            return False
    pid = (header or {}).get("pid")  # pragma: no cover - Windows
    if not pid or pid == os.getpid():
        return bool(pid)
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def find_recoverable(
    folder: str | os.PathLike | None = None, cleanup_empty: bool = True
) -> list[RecoveryInfo]:
    """Takes in `folder` (default `default_dir()`) left by a crash (or kept after a stop),
    oldest first; takes still being written by a running process are left out. A file holding
    a valid header and no frame at all is deleted when cleanup_empty (nothing to lose); a file
    that cannot be read (not a recovery file, a damaged header, damage where frames should be)
    is moved aside into `<folder>/damaged/` (`set_aside`), never deleted, and the other takes
    are still offered. Fifos, devices and links named like recovery files are left alone."""
    folder = Path(folder) if folder is not None else default_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode) or _is_live(path):
                continue
            header, records, ended, skipped = _read(path)
        except DataFormatError:
            set_aside(path)
            continue
        except OSError:  # vanished or unreadable (permissions): leave it where it is
            continue
        if len(records) == 0:
            if skipped:
                set_aside(path)  # bytes that might be frames: kept for a human to look at
            elif cleanup_empty:
                discard(path)
            continue
        t = records["t"]
        found.append(
            RecoveryInfo(path, len(records), str(header.get("started", "")),
                         str(header.get("source", "unknown")), ended, float(t[-1] - t[0]))
        )  # fmt: skip
    return found


def set_aside(path: str | os.PathLike) -> Path | None:
    """Move an unreadable recovery file into `damaged/` beside it (out of the start-up offer,
    kept for a human); returns the new path, or None when it could not be moved."""
    path = Path(path)
    target_dir = path.parent / "damaged"
    try:
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        n = 1
        while target.exists():
            target = target_dir / f"{path.stem}-{n}{path.suffix}"
            n += 1
        os.replace(path, target)
        return target
    except OSError:
        return None


def load(path: str | os.PathLike):
    """The take in recovery file `path` as an export `Recording` (positions (F, 17, 3) metres,
    NaN where untracked; timestamps_s (F,); confidence (F, 17); tracked (F,); seen (F, 17), for
    an old file without flags confidence > 0; rays (F, 17, 2), None for a file without them); a
    torn last record is dropped. metadata gets
    "recovered_from". Raises DataFormatError naming the file when it is not a readable recovery
    file."""
    from distpose_app.export import Recording

    path = Path(path)
    try:
        header, records, _, _ = _read(path)
    except FileNotFoundError:
        raise DataFormatError(f"recovery file not found: {path}") from None
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    positions = records["pos"].astype(np.float64)
    tracked = records["tracked"].astype(bool)
    tracked &= np.isfinite(positions).all(axis=(1, 2))  # never hand NaN out as tracked
    positions[~tracked] = np.nan
    confidence = np.nan_to_num(records["conf"].astype(np.float64))
    if "seen" in records.dtype.names:
        seen = records["seen"].astype(bool)
    else:  # version 1: the pipeline zeroed the confidence of the joints it did not see
        seen = confidence > 0
    seen &= tracked[:, None]
    rays = records["rays"].astype(np.float64) if "rays" in records.dtype.names else None
    metadata = dict(header.get("metadata") or {})
    metadata["recovered_from"] = str(path)
    return Recording(positions, records["t"].astype(np.float64), confidence, tracked, seen,
                     metadata=metadata, rays=rays)  # fmt: skip


def discard(path: str | os.PathLike) -> None:
    """Delete a recovery file (after its take was saved, or the user declined to recover it)."""
    Path(path).unlink(missing_ok=True)
