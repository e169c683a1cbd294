"""Train/val/test splits of the Bandai-Namco mocap by file, clips of sequences, and the frame
ranges of the sequences in a flat array.

Splits are by file: whole styles are held out for testing (`TEST_STYLES`), so no frame of a test
sequence is ever trained on. See docs/data.md for the counts.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

# Held-out styles. "elderly" (dataset 2, all ten contents: walk, walk-turn, run, wave and raise-up
# with either or both hands) and its dataset-1 counterpart "old" (walk, walk-back/left/right, run,
# dash, bow, bye, byebye, guide): 14.7% of the archive's frames, an unseen way of moving (stooped,
# slow) rather than unseen frames of a seen motion.
TEST_STYLES: frozenset[str] = frozenset({"elderly", "old"})
# One training file in VAL_MODULUS goes to validation (early stopping), chosen by a hash of the
# file name so that it never depends on the order or the number of files read.
VAL_MODULUS = 20
SPLITS = ("train", "val", "test")


def file_stem(name: str) -> str:
    """File name without folders and extension: 'dataset-2_walk_elderly_001'."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name[:-4] if name.lower().endswith(".bvh") else name


def style_of(name: str) -> str:
    """Style from a Bandai-Namco file name `dataset-N_{content}_{style}_{id}`, '' if not one."""
    parts = file_stem(name).split("_")
    return parts[2] if len(parts) == 4 else ""


def sequence_bounds(sequence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First frame and end frame (exclusive) of every run of equal ids in `sequence` (N,), in
    frame order: the sequences of a SyntheticSet or an external file. -> (starts, ends) int."""
    sequence = np.asarray(sequence)
    bounds = np.flatnonzero(np.diff(sequence)) + 1
    return np.concatenate([[0], bounds]).astype(int), np.concatenate(
        [bounds, [len(sequence)]]
    ).astype(int)


CLIP_SEPARATOR = "#"
# Training and evaluation cut every file into 3 s clips (see `clips`).
DEFAULT_CLIP_FRAMES = 90


def clips(sequences: Sequence[Any], clip_frames: int, min_frames: int | None = None) -> list:
    """Cut mocap sequences into consecutive clips of `clip_frames` frames (the remainder kept
    when it has at least `min_frames`, default half a clip), named `<file>#<k>`.

    Why: a webcam sees a person for seconds from 1-3 m, not a 10 m walk from far enough away to
    keep all of it in frame. Each clip gets its own virtual cameras, so the person can stand
    close and off-centre, where a lens matters. Clips keep their file's split.
    """
    min_frames = clip_frames // 2 if min_frames is None else min_frames
    out = []
    for seq in sequences:
        n = len(seq.positions)
        for k, start in enumerate(range(0, n, clip_frames)):
            part = seq.positions[start : start + clip_frames]
            if len(part) >= min_frames:
                name = f"{seq.name}{CLIP_SEPARATOR}{k:02d}"
                out.append(dataclasses.replace(seq, name=name, positions=part))
    return out


def split_of(sequence: Any) -> str:
    """'train', 'val' or 'test' for a mocap sequence (a `MocapSequence` or its file name).

    Test: every file whose style is in TEST_STYLES. Val: one file in VAL_MODULUS of the rest, by
    a CRC-32 of the file's stem. Train: everything else. Disjoint by file by construction.
    """
    if isinstance(sequence, str):
        name, style = sequence, style_of(sequence)
    else:
        name = sequence.name
        style = getattr(sequence, "style", "") or style_of(name)
    if style in TEST_STYLES:
        return "test"
    source_file = file_stem(name).split(CLIP_SEPARATOR)[0]  # every clip of a file shares its split
    if zlib.crc32(source_file.encode()) % VAL_MODULUS == 0:
        return "val"
    return "train"
