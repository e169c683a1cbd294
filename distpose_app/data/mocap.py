"""Motion capture skeletons -> Human3.6M-17 joints in metres, and the Bandai-Namco archive.

Two skeletons are recognised by their joint names (see `SKELETONS`; docs/mocap.md gives the
mapping joint by joint):
- Bandai-Namco Research Motion Dataset 1 and 2 (22 joints, centimetres, Y up);
- CMU-style names (Hips, LeftUpLeg, LeftLeg, LeftFoot, Neck, Head, LeftArm, LeftForeArm,
  LeftHand, ...), as in the CMU BVH conversions and Mixamo ("mixamorig:" prefixes are ignored).

Outputs stay in the file's world axes (Y up for both), only scaled to metres.
"""

from __future__ import annotations

import hashlib
import lzma
import re
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import numpy as np

from distpose_app.core.errors import DataFormatError, DistposeError
from distpose_app.core.fileio import savez_atomic
from distpose_app.core.progress import Progress
from distpose_app.core.skeleton import BONE_NAMES, NUM_JOINTS, bone_lengths
from distpose_app.data.bvh import Bvh, forward_kinematics, iter_archive_bvh
from distpose_app.data.definitions import RigMapping, apply_rig_mapping

# The crown lies this far beyond the mocap head joint along the neck -> head direction: neither
# skeleton has a joint at the top of the head, which H36M's joint 10 is.
HEAD_TOP_EXTENSION_M = 0.15

# Per H36M joint (in JOINT_NAMES order): the source joints whose mean gives it. Joint 10 (the
# head top) is derived from joints 8 and 9 in `to_h36m`, so its entry is empty.
SKELETONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "bandai": (
        ("Hips",),  # 0 Hip
        ("UpperLeg_R",),  # 1 RHip
        ("LowerLeg_R",),  # 2 RKnee
        ("Foot_R",),  # 3 RFoot (ankle)
        ("UpperLeg_L",),  # 4 LHip
        ("LowerLeg_L",),  # 5 LKnee
        ("Foot_L",),  # 6 LFoot
        ("Spine", "Chest"),  # 7 Spine: midway up the back
        ("Neck",),  # 8 Thorax: base of the neck
        ("Head",),  # 9 Neck/Nose
        (),  # 10 Head (top): Head + HEAD_TOP_EXTENSION_M along Neck -> Head
        ("UpperArm_L",),  # 11 LShoulder (Shoulder_L is the clavicle)
        ("LowerArm_L",),  # 12 LElbow
        ("Hand_L",),  # 13 LWrist
        ("UpperArm_R",),  # 14 RShoulder
        ("LowerArm_R",),  # 15 RElbow
        ("Hand_R",),  # 16 RWrist
    ),
    "cmu": (
        ("Hips",),
        ("RightUpLeg",),
        ("RightLeg",),
        ("RightFoot",),
        ("LeftUpLeg",),
        ("LeftLeg",),
        ("LeftFoot",),
        # Variants have 1 to 3 spine joints at different heights (CMU: LowerBack, Spine, Spine1;
        # Mixamo: Spine, Spine1, Spine2): midway between pelvis and neck fits them all.
        ("Hips", "Neck"),
        ("Neck",),
        ("Head",),
        (),
        ("LeftArm",),
        ("LeftForeArm",),
        ("LeftHand",),
        ("RightArm",),
        ("RightForeArm",),
        ("RightHand",),
    ),
}

# Units a mocap file may be in (metres per file unit). CMU's BVH conversions use 1/0.45 inch.
UNIT_SCALES_TO_M: dict[str, float] = {
    "m": 1.0,
    "dm": 0.1,
    "cm": 0.01,
    "mm": 0.001,
    "inch": 0.0254,
    "cmu": 0.0254 / 0.45,
}
# Ankle -> hip + hip -> neck + neck -> head joint of an adult (1.5-1.9 m tall), metres: the
# reference `detect_scale_to_m` compares a skeleton with (Bandai-Namco: about 1.27).
_REFERENCE_CHAIN_M = 1.35

BANDAI_NAME = re.compile(r"^dataset-(\d+)_([^_]+)_([^_]+)_(\d+)$")
CACHE_VERSION = 2

# The rig's torso, head and knee joints moved onto Human3.6M's definitions
# (`definitions.RigMapping`), fitted by scripts/measure_rig_mapping.py; docs/mocap.md shows the
# fit and its residual. The CMU-style rigs share it: their joints are the same anatomical centres.
BANDAI_MAPPING = RigMapping(
    hip_up=0.0306, hip_fwd=0.0, hip_half_width=0.415, spine=(0.5048, -0.1238),
    thorax=(1.0363, -0.0499), nose=(1.1941, 0.1507), head=(2.5408, -0.0387), knee_in=0.0875,
)  # fmt: skip


def _canonical(name: str) -> str:
    """Joint name without a namespace prefix ("mixamorig:LeftArm" -> "LeftArm")."""
    return name.rsplit(":", 1)[-1]


def detect_skeleton(names: list[str]) -> str:
    """'bandai' or 'cmu' from a file's joint names; DataFormatError listing the missing joints of
    the closest skeleton when neither fits."""
    present = {_canonical(n) for n in names}
    missing = {
        kind: sorted({src for srcs in table for src in srcs} - present)
        for kind, table in SKELETONS.items()
    }
    for kind, lacks in missing.items():
        if not lacks:
            return kind
    kind = min(missing, key=lambda k: len(missing[k]))
    raise DataFormatError(
        f"unknown mocap skeleton: closest is {kind}, which lacks joints {', '.join(missing[kind])}"
    )


def _h36m_in_file_units(bvh: Bvh, kind: str, positions: np.ndarray) -> np.ndarray:
    """(F, J, 3) FK positions -> (F, 17, 3) in file units, joint 10 still empty (NaN)."""
    index = {_canonical(n): j for j, n in enumerate(bvh.names)}
    out = np.full(positions.shape[:1] + (NUM_JOINTS, 3), np.nan)
    for joint, sources in enumerate(SKELETONS[kind]):
        if sources:
            out[:, joint] = positions[:, [index[s] for s in sources]].mean(axis=1)
    return out


def _reference_chain(h36m: np.ndarray) -> float:
    """Median over frames of mean(ankle -> knee -> hip) + pelvis -> thorax + thorax -> head joint,
    in the input's units: a pose-independent measure of body size."""
    length = lambda a, b: np.linalg.norm(h36m[:, a] - h36m[:, b], axis=-1)  # noqa: E731
    legs = 0.5 * (length(3, 2) + length(2, 1) + length(6, 5) + length(5, 4))
    chain = legs + length(0, 8) + length(8, 9)
    return float(np.median(chain))


def detect_scale_to_m(bvh: Bvh) -> float:
    """Metres per file unit for a recognised skeleton: the entry of UNIT_SCALES_TO_M that brings
    its ankle-to-head-joint chain (`_reference_chain`) closest to an adult's, in ratio."""
    kind = detect_skeleton(bvh.names)
    frames = bvh.motion[: min(bvh.num_frames, 30)]
    sample = Bvh(bvh.names, bvh.parents, bvh.offsets, bvh.channels, bvh.end_sites, 1.0, frames)
    chain = _reference_chain(_h36m_in_file_units(sample, kind, forward_kinematics(sample)[0]))
    if not chain > 0:
        raise DataFormatError("cannot find the skeleton's size: zero-length legs and spine")
    scales = np.array(list(UNIT_SCALES_TO_M.values()))
    return float(scales[np.argmin(np.abs(np.log(chain * scales / _REFERENCE_CHAIN_M)))])


def to_h36m(bvh: Bvh, scale_to_m: float | None = None, definitions: bool = True) -> np.ndarray:
    """H36M-17 joints of every frame of a mocap file. -> (F, 17, 3) float64 metres, in the
    file's world axes (Y up for Bandai-Namco and CMU).

    The skeleton is recognised by joint names (`detect_skeleton`); scale_to_m is metres per file
    unit (0.01 for centimetres), detected from the skeleton's size when None. definitions: move
    the torso and head joints onto Human3.6M's definitions (`BANDAI_MAPPING`); False keeps the
    rig's own joints (its neck in the Thorax slot, its head joint in the Neck/Nose slot).
    """
    kind = detect_skeleton(bvh.names)
    if scale_to_m is None:
        scale_to_m = detect_scale_to_m(bvh)
    positions, _ = forward_kinematics(bvh)
    out = _h36m_in_file_units(bvh, kind, positions) * scale_to_m
    neck_to_head = out[:, 9] - out[:, 8]
    norm = np.linalg.norm(neck_to_head, axis=-1, keepdims=True)
    direction = neck_to_head / np.where(norm > 0, norm, 1.0)
    out[:, 10] = out[:, 9] + HEAD_TOP_EXTENSION_M * direction
    if definitions:
        out = apply_rig_mapping(out, out[:, 8].copy(), out[:, 9].copy(), BANDAI_MAPPING)
    return out


# ---------------------------------------------------------------------------------------
# Sequences and the Bandai-Namco archive
# ---------------------------------------------------------------------------------------
@dataclass
class MocapSequence:
    """One converted mocap file. positions: (F, 17, 3) float32 metres, world axes (Y up, the
    floor at y = 0 for Bandai-Namco); fps: frames per second. name: the file stem;
    dataset: "bandai-1" / "bandai-2"; content and style as in the file name ('' if unknown)."""

    name: str
    dataset: str
    content: str
    style: str
    positions: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])


def parse_bandai_name(name: str) -> tuple[str, str, str]:
    """(dataset, content, style) from `dataset-N_{content}_{style}_{id}[.bvh]` (folders ignored),
    e.g. ("bandai-2", "walk-turn-left", "elderly"). DataFormatError for another name."""
    stem = Path(name).name
    stem = stem[:-4] if stem.lower().endswith(".bvh") else stem
    match = BANDAI_NAME.match(stem)
    if match is None:
        raise DataFormatError(f"{name}: not a Bandai-Namco name dataset-N_content_style_id")
    return f"bandai-{match.group(1)}", match.group(2), match.group(3)


def sequence_from_bvh(bvh: Bvh, name: str, scale_to_m: float | None = None,
                      definitions: bool = True) -> MocapSequence:  # fmt: skip
    """A MocapSequence from a parsed file; `name` is its file name or stem; definitions as in
    `to_h36m`."""
    stem = Path(name).name
    stem = stem[:-4] if stem.lower().endswith(".bvh") else stem
    try:
        dataset, content, style = parse_bandai_name(stem)
    except DataFormatError:
        dataset, content, style = "", "", ""
    positions = to_h36m(bvh, scale_to_m, definitions).astype(np.float32)
    return MocapSequence(stem, dataset, content, style, positions, bvh.fps)


class _CountingReader:
    """A binary file wrapper that counts the bytes read (compressed progress of a tar.xz)."""

    def __init__(self, raw):
        self.raw, self.count = raw, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


def iter_bandai_bvh(
    path: str | Path, limit: int | None = None, progress: bool = False
) -> Iterator[tuple[str, Bvh]]:
    """(member name, Bvh) for the BVH files of the Bandai-Namco archive (.tar.xz), streaming in
    archive order (the first few files come in well under a second); at most `limit` files.

    The one reader of the archive: it reads it once front to back (tarfile mode 'r|xz': no
    random access, which xz makes slow). The progress bar (stderr) counts compressed megabytes
    read. A missing archive raises DistposeError, a broken one DataFormatError.
    """
    path = Path(path)
    if not path.is_file():
        raise DistposeError(f"mocap archive not found: {path}")
    total_mb = max(1, int(np.ceil(path.stat().st_size / 1e6)))
    with open(path, "rb") as raw, Progress(total_mb, "mocap MB", enabled=progress) as bar:
        counter = _CountingReader(raw)
        try:
            with tarfile.open(fileobj=cast(IO[bytes], counter), mode="r|xz") as archive:
                files = 0
                for name, bvh in iter_archive_bvh(archive, str(path)):
                    if limit is not None and files >= limit:
                        return
                    files += 1
                    bar.update(counter.count // 1_000_000 - bar.n, postfix=f"{files} files")
                    yield name, bvh
        except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as exc:
            raise DataFormatError(f"{path}: broken archive ({exc})") from exc


def iter_bandai_archive(path: str | Path, progress: bool = True,
                        definitions: bool = True) -> Iterator[MocapSequence]:  # fmt: skip
    """Convert every BVH file of the Bandai-Namco archive (.tar.xz), streaming in archive order
    (`iter_bandai_bvh`). Yields MocapSequence with positions (F, 17, 3) float32 metres, Y up,
    30 fps; definitions as in `to_h36m`."""
    for name, bvh in iter_bandai_bvh(path, progress=progress):
        # Bandai-Namco files are in centimetres (their README).
        yield sequence_from_bvh(bvh, name, 0.01, definitions)


def _cache_path(archive: Path, cache_dir: Path) -> Path:
    stat = archive.stat()
    mapping = sorted(BANDAI_MAPPING.to_dict().items())
    key = f"{stat.st_size}|{int(stat.st_mtime)}|{CACHE_VERSION}|{HEAD_TOP_EXTENSION_M}|{mapping}"
    return cache_dir / f"bandai-h36m-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"


def load_bandai(
    path: str | Path, cache_dir: str | Path = ".cache", progress: bool = True
) -> list[MocapSequence]:
    """Every sequence of the Bandai-Namco archive as H36M-17 (see `iter_bandai_archive`), cached.

    The first call converts the archive (about a minute) and writes one .npz into cache_dir
    (git-ignored), keyed by the archive's size and time and the mapping's version; later calls
    load that file. Returns the sequences in archive order.
    """
    path, cache_dir = Path(path), Path(cache_dir)
    if not path.is_file():
        raise DistposeError(f"mocap archive not found: {path}")
    cache = _cache_path(path, cache_dir)
    if cache.is_file():
        return _load_cache(cache)
    start = time.monotonic()
    sequences = list(iter_bandai_archive(path, progress=progress))
    savez_atomic(
        cache,
        {
            "positions": np.concatenate([s.positions for s in sequences]).astype(np.float32),
            "lengths": np.array([s.num_frames for s in sequences], dtype=np.int64),
            "names": np.array([s.name for s in sequences]),
            "datasets": np.array([s.dataset for s in sequences]),
            "contents": np.array([s.content for s in sequences]),
            "styles": np.array([s.style for s in sequences]),
            "fps": np.array([s.fps for s in sequences], dtype=np.float64),
            "convert_seconds": np.float64(time.monotonic() - start),
        },
    )
    return sequences


def _load_cache(cache: Path) -> list[MocapSequence]:
    try:
        with np.load(cache, allow_pickle=False) as data:
            positions = data["positions"]
            ends = np.cumsum(data["lengths"])
            columns = [data[k].tolist() for k in ("names", "datasets", "contents", "styles", "fps")]
    except (OSError, KeyError, ValueError) as exc:
        raise DataFormatError(f"{cache}: broken mocap cache, delete it ({exc})") from exc
    chunks = np.split(positions, ends[:-1])
    return [
        MocapSequence(name, dataset, content, style, chunk, fps)
        for name, dataset, content, style, fps, chunk in zip(*columns, chunks)
    ]


def rig_sequences(path: str | Path, cache_dir: str | Path = ".cache", step: int = 10
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Every `step`-th frame of the archive with the rig's own joints (`to_h36m` with
    definitions=False), for fitting BANDAI_MAPPING: (joints (F, 17, 3), neck (F, 3), head (F, 3))
    metres, the rig's neck and head joints."""
    del cache_dir  # the rig-joint conversion is read straight from the archive (about a minute)
    frames = [s.positions[::step] for s in iter_bandai_archive(path, definitions=False)]
    rig = np.concatenate(frames).astype(np.float64)
    return rig, rig[:, 8].copy(), rig[:, 9].copy()


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------
def resample(positions: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Resample in time by linear interpolation. positions: (F, ...) at fps_in ->
    (F', ...) at fps_out, F' = floor((F - 1) * fps_out / fps_in) + 1, frame 0 kept at t = 0."""
    positions = np.asarray(positions)
    if not (fps_in > 0 and fps_out > 0):
        raise ValueError(f"frame rates must be positive, got {fps_in} -> {fps_out}")
    F = positions.shape[0]
    if F == 0 or fps_in == fps_out:
        return positions.copy()
    count = int(np.floor((F - 1) * fps_out / fps_in + 1e-9)) + 1
    t = np.minimum(np.arange(count) * (fps_in / fps_out), F - 1)  # source frame of each output
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, F - 1)
    w = (t - i0).reshape((-1,) + (1,) * (positions.ndim - 1))
    return ((1 - w) * positions[i0] + w * positions[i1]).astype(positions.dtype, copy=False)


def mean_bone_lengths_cm(sequences: list[MocapSequence]) -> dict[str, float]:
    """Mean length of every H36M bone over all frames of all sequences (frame-weighted), in cm,
    keyed by skeleton.BONE_NAMES ("Hip-RHip", ...)."""
    total = np.zeros(len(BONE_NAMES))
    frames = 0
    for seq in sequences:
        total += bone_lengths(np.asarray(seq.positions, np.float64)).sum(axis=0)
        frames += seq.num_frames
    if frames == 0:
        raise ValueError("no frames to measure")
    return {name: float(100 * v / frames) for name, v in zip(BONE_NAMES, total)}


__all__ = [
    "HEAD_TOP_EXTENSION_M",
    "MocapSequence",
    "SKELETONS",
    "UNIT_SCALES_TO_M",
    "detect_scale_to_m",
    "detect_skeleton",
    "iter_bandai_archive",
    "iter_bandai_bvh",
    "load_bandai",
    "mean_bone_lengths_cm",
    "parse_bandai_name",
    "resample",
    "sequence_from_bvh",
    "to_h36m",
]
