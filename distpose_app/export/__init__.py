"""Export recordings as BVH (animation tools) and CSV (analysis), each with a JSON sidecar.

    from distpose_app.export import ExportOptions, Recording, export_recording
    export_recording(Recording(positions, timestamps), "take.bvh", "take.csv")

See docs/export.md for the formats, axes and clean-up options.
"""

from .bvh_writer import BVH_JOINT_NAMES, bvh_text, unwrap_euler
from .csv_writer import csv_columns, csv_text
from .exporter import export_recording
from .filters import one_euro_filter
from .motion import Motion, prepare_motion
from .recording import (
    CHANNEL_ORDERS,
    ExportOptions,
    Recording,
    resample_recording,
    sidecar_path,
)
from .skeleton_fit import fit_skeleton, robust_bone_lengths
from .targets import ExistingFilesError, check_targets, existing_targets

__all__ = [
    "BVH_JOINT_NAMES",
    "CHANNEL_ORDERS",
    "ExistingFilesError",
    "ExportOptions",
    "Motion",
    "Recording",
    "bvh_text",
    "check_targets",
    "csv_columns",
    "csv_text",
    "existing_targets",
    "export_recording",
    "fit_skeleton",
    "one_euro_filter",
    "prepare_motion",
    "resample_recording",
    "robust_bone_lengths",
    "sidecar_path",
    "unwrap_euler",
]
