"""BVH motion capture files: reader and forward kinematics.

BVH conventions, as followed here (and by Blender, MotionBuilder and the CMU / Bandai-Namco files):
- A joint's position is its parent's position plus the parent's global rotation applied to the
  joint's translation: the OFFSET, or, where the joint has position channels, those channels
  (the Bandai-Namco files give every joint position channels equal to its OFFSET).
- A joint's local rotation is the product of its rotation channels in the order they are listed:
  `CHANNELS 3 Zrotation Xrotation Yrotation` means R = Rz(z) @ Rx(x) @ Ry(y) (intrinsic axes),
  acting on column vectors. Angles are degrees in the file and radians in this module's API.
- Lengths stay in the file's units (centimetres for Bandai-Namco); `data.mocap` converts.

Euler angles <-> rotation matrices are `core.rotations.euler_to_matrix` / `matrix_to_euler`,
shared with the BVH writer (`distpose_app.export`).
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from distpose_app.core.errors import DataFormatError
from distpose_app.core.rotations import AXIS_INDEX, axis_rotation, euler_to_matrix

POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")


@dataclass
class Bvh:
    """One BVH file. J joints (ROOT and JOINTs in file order, parents before children), F frames,
    C channels in all.

    names: J joint names. parents: (J,) int, -1 for the root. offsets: (J, 3) file units.
    channels: per joint its channel names in file order (may be empty). end_sites: joint index ->
    (3,) End Site offset in that joint's frame, file units. frame_time: seconds per frame.
    motion: (F, C) float64, the MOTION block as in the file (angles in degrees).
    """

    names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    channels: list[list[str]]
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)
    frame_time: float = 1.0 / 30.0
    motion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        """Frames per second, 1 / frame_time, rounded to the nearest integer when within 0.01
        (files write 1/30 as 0.0333333)."""
        fps = 1.0 / self.frame_time
        return float(round(fps)) if abs(fps - round(fps)) < 0.01 else fps

    def joint_index(self, name: str) -> int:
        return self.names.index(name)

    def channel_columns(self) -> list[np.ndarray]:
        """Per joint, the (len(channels[j]),) column indices of its channels in `motion`."""
        columns, start = [], 0
        for chans in self.channels:
            columns.append(np.arange(start, start + len(chans)))
            start += len(chans)
        return columns


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------
# Largest |value| accepted in OFFSET and MOTION: 1e7 is 100 km in centimetres or 10^7 degrees;
# anything beyond is corruption, and near 1e308 forward kinematics overflows to inf and NaN.
MAX_BVH_VALUE = 1e7
# Frame times a BVH may state, seconds: 0.1 ms (10 kHz) to 10 s per frame.
FRAME_TIME_RANGE_S = (1e-4, 10.0)


def read_bvh(path: str | Path, name: str | None = None) -> Bvh:
    """Read and parse the BVH file at `path` (UTF-8, an optional byte-order mark).

    Any hierarchy and channel order; position channels on any joint. `name` labels error messages
    (default: the path). Raises DataFormatError naming the file and the problem. The argument is
    always a path: text goes to `parse_bvh`, so a file's content is never taken for a file name.
    """
    if isinstance(path, str) and "\n" in path:
        raise TypeError("read_bvh takes a path; parse BVH text with parse_bvh(text, name)")
    label = name or str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataFormatError(f"{label}: cannot read BVH file ({exc.strerror or exc})") from exc
    return parse_bvh_bytes(data, label)


def parse_bvh_bytes(data: bytes, name: str = "<BVH>") -> Bvh:
    """Parse a BVH file's bytes (e.g. an archive member): UTF-8 with an optional byte-order
    mark. Binary content (NUL bytes, not UTF-8) raises DataFormatError naming `name`."""
    if b"\0" in data:
        raise DataFormatError(f"{name}: binary data, not a BVH file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # names in a legacy encoding; the numbers are ASCII
    return parse_bvh(text, name)


def parse_bvh(text: str, name: str = "<BVH text>") -> Bvh:
    """Parse BVH `text` (the content of a file; a leading byte-order mark is ignored). `name`
    labels error messages. Raises DataFormatError naming it and the problem."""
    return _parse(text.removeprefix("\ufeff"), name)


MAX_MEMBER_BYTES = 512 * 1024 * 1024  # a BVH member larger than this is not a mocap file


def iter_archive_bvh(archive: tarfile.TarFile, label: str) -> Iterator[tuple[str, Bvh]]:
    """(member name, Bvh) for every `.bvh` regular file of an open tar `archive`, in archive
    order (works on streams, mode 'r|*'). Members are parsed as text, never used as paths; links
    and other members are skipped. DataFormatError naming `label` and the member for a member
    that is not a BVH file, and when the archive holds no `.bvh` file at all."""
    found = 0
    for member in archive:
        if not (member.isfile() and member.name.lower().endswith(".bvh")):
            continue
        if member.size > MAX_MEMBER_BYTES:
            raise DataFormatError(f"{label}: member {member.name} is {member.size} bytes, "
                                  "too large for a BVH file")  # fmt: skip
        handle = archive.extractfile(member)
        data = handle.read() if handle is not None else b""
        found += 1
        yield member.name, parse_bvh_bytes(data, f"{label}: {member.name}")
    if not found:
        raise DataFormatError(f"{label}: the archive holds no .bvh file")


def _parse(text: str, label: str) -> Bvh:
    def fail(problem: str) -> DataFormatError:
        return DataFormatError(f"{label}: {problem}")

    match = re.search(r"^\s*MOTION\b", text, flags=re.MULTILINE)
    if match is None:
        raise fail("no MOTION section")
    tokens = text[: match.start()].split()
    if not tokens or tokens[0] != "HIERARCHY":
        raise fail("does not start with HIERARCHY")

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_sites: dict[int, np.ndarray] = {}
    stack: list[int] = []  # open joints; -2 marks an open End Site
    i = 1

    def numbers(at: int, count: int, what: str) -> list[float]:
        try:
            return [float(t) for t in tokens[at : at + count]] if at + count <= len(tokens) else []
        except ValueError:
            raise fail(f"bad {what} values {tokens[at : at + count]}") from None

    while i < len(tokens):
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            if i + 2 >= len(tokens) or tokens[i + 2] != "{":
                raise fail(f"{tok} without a name and '{{'")
            if tok == "ROOT" and stack:
                raise fail("ROOT inside another joint")
            if tok == "JOINT" and (not stack or stack[-1] < 0):
                raise fail(f"JOINT {tokens[i + 1]} outside a joint")
            parents.append(stack[-1] if stack else -1)
            names.append(tokens[i + 1])
            offsets.append([0.0, 0.0, 0.0])
            channels.append([])
            stack.append(len(names) - 1)
            i += 3
        elif tok == "End":
            if i + 2 >= len(tokens) or tokens[i + 1] != "Site" or tokens[i + 2] != "{":
                raise fail("'End' not followed by 'Site {'")
            if not stack or stack[-1] < 0:
                raise fail("End Site outside a joint")
            stack.append(-2)
            i += 3
        elif tok == "OFFSET":
            values = numbers(i + 1, 3, "OFFSET")
            if len(values) != 3 or not stack:
                raise fail("OFFSET needs 3 numbers inside a joint")
            if stack[-1] == -2:
                end_sites[stack[-2]] = np.array(values)
            else:
                offsets[stack[-1]] = values
            i += 4
        elif tok == "CHANNELS":
            if not stack or stack[-1] < 0:
                raise fail("CHANNELS outside a joint")
            try:
                count = int(tokens[i + 1])
            except (IndexError, ValueError):
                raise fail("CHANNELS without a count") from None
            chans = tokens[i + 2 : i + 2 + count]
            joint = names[stack[-1]]
            if len(chans) != count:
                raise fail(f"joint {joint}: CHANNELS {count} lists {len(chans)} channels")
            for ch in chans:
                if ch not in POSITION_CHANNELS and ch not in ROTATION_CHANNELS:
                    raise fail(f"joint {joint}: bad channel name {ch!r} in CHANNELS {count}")
            if len(set(chans)) != len(chans):
                raise fail(f"joint {joint}: repeated channel in {chans}")
            channels[stack[-1]] = chans
            i += 2 + count
        elif tok == "}":
            if not stack:
                raise fail("unbalanced '}' in HIERARCHY")
            stack.pop()
            i += 1
        else:
            raise fail(f"unexpected token {tok!r} in HIERARCHY")
    if stack:
        raise fail("HIERARCHY ends with an unclosed '{'")
    if not names:
        raise fail("HIERARCHY has no ROOT")
    if parents.count(-1) != 1:
        raise fail("HIERARCHY has more than one ROOT")

    header = re.match(
        r"\s*MOTION\s+Frames:\s*(\S+)\s+Frame\s+Time:\s*(\S+)[ \t]*\r?\n?",
        text[match.start() :],
    )
    if header is None:
        raise fail("MOTION lacks 'Frames:' and 'Frame Time:' lines")
    try:
        frames, frame_time = int(header.group(1)), float(header.group(2))
    except ValueError:
        raise fail(f"bad Frames/Frame Time values {header.groups()}") from None
    lo, hi = FRAME_TIME_RANGE_S
    if frames < 0 or not lo <= frame_time <= hi:
        raise fail(f"bad Frames {frames} or Frame Time {frame_time} (expected {lo:g} to {hi:g} s)")

    body = text[match.start() + header.end() :]
    num_channels = sum(len(c) for c in channels)
    try:
        motion = np.array(body.split(), dtype=np.float64)
    except ValueError as exc:
        raise fail(f"non-numeric MOTION data ({exc})") from None
    lines = sum(1 for line in body.splitlines() if line.strip())
    if lines != frames or motion.size != frames * num_channels:
        raise fail(
            f"frame count mismatch: header says {frames} frames of {num_channels} channels, "
            f"MOTION has {lines} lines and {motion.size} values"
        )
    for what, array in (
        ("OFFSET", np.asarray(offsets, dtype=np.float64)),
        ("MOTION", motion),
        ("End Site", np.asarray(list(end_sites.values()), dtype=np.float64)),
    ):
        bad = ~(np.abs(array) <= MAX_BVH_VALUE)  # NaN fails the comparison too
        if bad.any():
            first = array.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]]
            raise fail(f"{int(bad.sum())} {what} values are NaN, infinite or beyond "
                       f"±{MAX_BVH_VALUE:g} (first: {first})")  # fmt: skip
    return Bvh(
        names=names,
        parents=np.array(parents, dtype=np.int64),
        offsets=np.array(offsets, dtype=np.float64).reshape(-1, 3),
        channels=channels,
        end_sites=end_sites,
        frame_time=frame_time,
        motion=motion.reshape(frames, num_channels),
    )


# ---------------------------------------------------------------------------------------
# Forward kinematics
# ---------------------------------------------------------------------------------------
def local_rotations(bvh: Bvh) -> np.ndarray:
    """Each joint's rotation relative to its parent. -> (F, J, 3, 3); identity without rotation
    channels. Joints that share a channel order are converted in one vectorised call."""
    F, J = bvh.num_frames, len(bvh.names)
    out = np.broadcast_to(np.eye(3), (F, J, 3, 3)).copy()
    groups: dict[str, list[tuple[int, np.ndarray]]] = {}
    for j, (chans, cols) in enumerate(zip(bvh.channels, bvh.channel_columns())):
        rot = [(ch[0], c) for ch, c in zip(chans, cols) if ch in ROTATION_CHANNELS]
        if not rot:
            continue
        axes = "".join(a for a, _ in rot)
        groups.setdefault(axes, []).append((j, np.array([c for _, c in rot])))
    for axes, members in groups.items():
        joints = [j for j, _ in members]
        cols = np.stack([c for _, c in members])  # (n, k)
        angles = np.radians(bvh.motion[:, cols])  # (F, n, k)
        if len(axes) == 3:
            out[:, joints] = euler_to_matrix(angles, axes)
        else:  # one or two rotation channels: multiply them in file order
            r = out[:, joints]
            for a in range(len(axes)):
                r = r @ axis_rotation(angles[..., a], AXIS_INDEX[axes[a]])
            out[:, joints] = r
    return out


def local_translations(bvh: Bvh) -> np.ndarray:
    """Each joint's translation from its parent, in the parent's frame. -> (F, J, 3) file units:
    the OFFSET, with any component that has a position channel replaced by that channel."""
    F, J = bvh.num_frames, len(bvh.names)
    out = np.broadcast_to(bvh.offsets, (F, J, 3)).copy()
    for j, (chans, cols) in enumerate(zip(bvh.channels, bvh.channel_columns())):
        for ch, c in zip(chans, cols):
            if ch in POSITION_CHANNELS:
                out[:, j, AXIS_INDEX[ch[0]]] = bvh.motion[:, c]
    return out


def forward_kinematics(bvh: Bvh) -> tuple[np.ndarray, np.ndarray]:
    """Global joint positions and rotations in the file's world frame.

    Returns (positions (F, J, 3) file units, global_rotations (F, J, 3, 3)), where
    position_j = position_parent + R_parent @ translation_j and R_j = R_parent @ local_j.
    """
    local = local_rotations(bvh)
    trans = local_translations(bvh)
    positions = np.empty_like(trans)
    rotations = np.empty_like(local)
    for j, p in enumerate(bvh.parents):
        if p < 0:
            positions[:, j] = trans[:, j]
            rotations[:, j] = local[:, j]
        else:
            positions[:, j] = positions[:, p] + np.einsum(
                "fab,fb->fa", rotations[:, p], trans[:, j]
            )
            rotations[:, j] = rotations[:, p] @ local[:, j]
    return positions, rotations


def end_site_positions(
    bvh: Bvh, positions: np.ndarray, rotations: np.ndarray
) -> dict[int, np.ndarray]:
    """World positions of the End Sites: joint index -> (F, 3) file units, from the outputs of
    `forward_kinematics`."""
    return {
        j: positions[:, j] + rotations[:, j] @ np.asarray(offset, dtype=np.float64)
        for j, offset in bvh.end_sites.items()
    }
