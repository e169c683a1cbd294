"""CSV text: one row per frame, positions in metres (world axes, Y up), confidences, flags,
per-joint seen flags, foot contacts."""

from __future__ import annotations

import numpy as np

from .bvh_writer import BVH_JOINT_NAMES

# Feet with a contact column, right then left (the BVH's names of H36M joints 3 and 6).
CONTACT_FEET: tuple[str, ...] = ("RightFoot", "LeftFoot")


def csv_columns() -> list[str]:
    """Header: frame, timestamp_s, <joint>_x/_y/_z (17 x 3), <joint>_conf (17), tracked,
    interpolated, <joint>_seen (17), RightFoot_contact, LeftFoot_contact. Joint names are the
    BVH's. Newer columns come last so that the columns before them keep their positions."""
    xyz = [f"{name}_{axis}" for name in BVH_JOINT_NAMES for axis in "xyz"]
    conf = [f"{name}_conf" for name in BVH_JOINT_NAMES]
    seen = [f"{name}_seen" for name in BVH_JOINT_NAMES]
    contact = [f"{name}_contact" for name in CONTACT_FEET]
    return ["frame", "timestamp_s", *xyz, *conf, "tracked", "interpolated", *seen, *contact]


def _fmt(values: np.ndarray, spec: str) -> np.ndarray:
    """Format a float array; NaN/inf become empty cells (pandas reads them as NaN)."""
    text = np.char.mod(spec, np.where(np.isfinite(values), values, 0.0))
    return np.where(np.isfinite(values), text, "")


def csv_text(
    positions: np.ndarray,
    timestamps_s: np.ndarray,
    confidence: np.ndarray,
    tracked: np.ndarray,
    interpolated: np.ndarray,
    seen: np.ndarray | None = None,
    contacts: np.ndarray | None = None,
) -> str:
    """The whole CSV file as text.

    positions: (F, 17, 3) metres, world axes; NaN for frames left as gaps (written as empty
    cells). timestamps_s: (F,) seconds. confidence: (F, 17) in [0, 1]. tracked, interpolated:
    (F,) bool, written as 1/0. seen: (F, 17) bool, 1 where the detector saw the joint (None:
    all 0). contacts: (F, 2) bool right and left foot planted, 1/0 (None: all 0). Coordinates
    have 6 decimals (micrometres).
    """
    F = positions.shape[0]
    seen = np.zeros((F, positions.shape[1]), bool) if seen is None else np.asarray(seen, bool)
    contacts = np.zeros((F, 2), bool) if contacts is None else np.asarray(contacts, bool)
    cells = np.concatenate(
        [
            np.arange(F).astype(str)[:, None],
            _fmt(np.asarray(timestamps_s, dtype=np.float64), "%.6f")[:, None],
            _fmt(positions.reshape(F, -1), "%.6f"),
            _fmt(np.asarray(confidence, dtype=np.float64), "%.4f"),
            np.asarray(tracked, dtype=bool).astype(int).astype(str)[:, None],
            np.asarray(interpolated, dtype=bool).astype(int).astype(str)[:, None],
            seen.astype(int).astype(str),
            contacts.astype(int).astype(str),
        ],
        axis=1,
    )
    rows = [",".join(csv_columns())] + [",".join(row) for row in cells.tolist()]
    return "\n".join(rows) + "\n"
