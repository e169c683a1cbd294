"""Crash-safe recording: the recovery files the `Recorder` appends every frame to, and finding,
loading and discarding them after a crash.

A recovery file is one take: a text line `DISTPOSE-RECOVERY 1`, a JSON header line (metadata,
source, start time, process id), then fixed-size binary frame records (`RECORD`: kind, tracked,
timestamp seconds, positions (17, 3) float32 metres, confidence (17,) float32, seen (17,) uint8
0/1, CRC-32; version 1 files, written before seen flags existed, have no seen field and still
load, with seen = confidence > 0, which is what the pipeline recorded then). Records
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
VERSION = 2
_FIELDS = [
    ("kind", "S2"),
    ("tracked", "u1"),
    ("reserved", "u1"),
    ("t", "<f8"),
    ("pos", "<f4", (NUM_JOINTS, 3)),
    ("conf", "<f4", (NUM_JOINTS,)),
]
RECORD = np.dtype([*_FIELDS, ("seen", "u1", (NUM_JOINTS,)), ("crc", "<u4")])  # 305 bytes
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
) -> np.ndarray:
    """One frame as a RECORD (shape ()): positions (17, 3) metres (NaN when untracked),
    confidence (17,), timestamp seconds, seen (17,) bool the joints the detector saw (None:
    confidence > 0); the CRC covers everything before it."""
    rec = np.zeros((), RECORD)
    rec["kind"], rec["tracked"], rec["t"] = KIND_FRAME, bool(tracked), timestamp_s
    rec["pos"], rec["conf"] = positions, confidence
    rec["seen"] = np.asarray(confidence) > 0 if seen is None else np.asarray(seen, bool)
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
            self._file.close()
            self.path.unlink(missing_ok=True)
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
        """Close without ending the take (the file stays recoverable)."""
        if not self._file.closed:
            with contextlib.suppress(OSError):
                if self._pending:
                    self.flush()
            self._file.close()


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


def _read(path: Path) -> tuple[dict, np.ndarray, bool]:
    """(header, frame records (N,) RECORD or RECORD_V1 (an old file), ended cleanly). Stops at
    the first torn record."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise DataFormatError(f"{path}: not a distpose recovery file")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise DataFormatError(f"{path}: recovery file header is incomplete")
    try:
        header = json.loads(data[len(MAGIC) : end])
    except ValueError:
        raise DataFormatError(f"{path}: recovery file header is damaged") from None
    dtype = {RECORD.itemsize: RECORD, RECORD_V1.itemsize: RECORD_V1}.get(header.get("record_size"))
    if dtype is None:
        raise DataFormatError(f"{path}: recovery records of {header.get('record_size')} bytes, "
                              f"this distpose reads {RECORD.itemsize}")  # fmt: skip
    body = data[end + 1 :]
    whole = len(body) // dtype.itemsize  # a torn tail is shorter than a record: dropped
    records = np.frombuffer(body, dtype, count=whole)
    raw = np.frombuffer(body, np.uint8, count=whole * dtype.itemsize)
    raw = raw.reshape(whole, dtype.itemsize)
    good, ended = whole, False
    for i in range(whole):
        if zlib.crc32(raw[i, :-4].tobytes()) != int(records["crc"][i]):
            good = i  # a record the kill tore (or later garbage): keep what came before
            break
        if records["kind"][i] == KIND_END:
            good, ended = i, True
            break
        if records["kind"][i] != KIND_FRAME:
            good = i
            break
    return header, records[:good], ended


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
    oldest first; takes still being written by a running process are left out. Files with no
    frame are deleted when cleanup_empty (nothing to lose); unreadable files are skipped."""
    folder = Path(folder) if folder is not None else default_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            if _is_live(path):
                continue
            header, records, ended = _read(path)
        except (OSError, DataFormatError):
            continue
        if len(records) == 0:
            if cleanup_empty:
                discard(path)
            continue
        t = records["t"]
        found.append(
            RecoveryInfo(path, len(records), str(header.get("started", "")),
                         str(header.get("source", "unknown")), ended, float(t[-1] - t[0]))
        )  # fmt: skip
    return found


def load(path: str | os.PathLike):
    """The take in recovery file `path` as an export `Recording` (positions (F, 17, 3) metres,
    NaN where untracked; timestamps_s (F,); confidence (F, 17); tracked (F,); seen (F, 17), for
    an old file without flags confidence > 0); a torn last record is dropped. metadata gets
    "recovered_from". Raises DataFormatError naming the file when it is not a readable recovery
    file."""
    from distpose_app.export import Recording

    path = Path(path)
    try:
        header, records, _ = _read(path)
    except FileNotFoundError:
        raise DataFormatError(f"recovery file not found: {path}") from None
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
    metadata = dict(header.get("metadata") or {})
    metadata["recovered_from"] = str(path)
    return Recording(positions, records["t"].astype(np.float64), confidence, tracked, seen,
                     metadata=metadata)  # fmt: skip


def discard(path: str | os.PathLike) -> None:
    """Delete a recovery file (after its take was saved, or the user declined to recover it)."""
    Path(path).unlink(missing_ok=True)
