"""Where an export may write: never onto one of its inputs, never two outputs on one path (the
JSON sidecars included), and onto an existing file only when the caller says so (the CLI's
--force; the app asks first, on its GUI thread, through `existing_targets`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from distpose_app.core.errors import DistposeError
from distpose_app.core.validate import check_output_file, same_file

from .recording import sidecar_path


class ExistingFilesError(DistposeError):
    """Files an export would replace without permission; `paths` lists them."""

    def __init__(self, paths: list[Path]):
        self.paths = list(paths)
        names = ", ".join(str(p) for p in self.paths)
        super().__init__(f"{names} already exist{'s' if len(self.paths) == 1 else ''}")


def export_targets(
    bvh_path: str | os.PathLike | None, csv_path: str | os.PathLike | None
) -> list[tuple[str, Path]]:
    """[(what, path)] of every file an export writes: each format's file and its sidecar."""
    targets = []
    for fmt, path in (("BVH", bvh_path), ("CSV", csv_path)):
        if path is not None:
            targets += [(f"the {fmt}", Path(path)), (f"the {fmt}'s sidecar", sidecar_path(path))]
    return targets


def check_targets(
    bvh_path: str | os.PathLike | None,
    csv_path: str | os.PathLike | None,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> list[Path]:
    """DistposeError (one line) when a target's folder is missing, a target is a folder, two
    targets are one file, or a target is one of `inputs` (the video, weights, calibration or
    recovery file the take came from). Returns the targets that exist already."""
    targets = export_targets(bvh_path, csv_path)
    sources = [Path(p) for p in inputs if p is not None and str(p)]
    for i, (what, path) in enumerate(targets):
        check_output_file(what, path)
        for other, path2 in targets[:i]:
            if same_file(path, path2):
                raise DistposeError(f"{other} and {what} would be one file: {path}")
        for source in sources:
            if same_file(path, source):
                raise DistposeError(f"{what} {path} would overwrite the input {source}")
    return [path for _, path in targets if path.exists()]


def existing_targets(
    bvh_path: str | os.PathLike | None,
    csv_path: str | os.PathLike | None,
    inputs: Iterable[str | os.PathLike | None] = (),
    confirmed: Iterable[str | os.PathLike] = (),
) -> list[Path]:
    """The existing files an export would replace that the user has not yet agreed to replace
    (`check_targets` first: DistposeError for a forbidden target). `confirmed`: files the user
    already agreed to replace (a save dialog asks about the file it returns, when it exists);
    agreeing to an existing file covers its sidecar. The app asks about the rest, then calls
    export_recording with overwrite=True."""
    existing = check_targets(bvh_path, csv_path, inputs)
    agreed = [Path(p) for p in confirmed if Path(p).is_file()]  # only an existing file was asked
    agreed += [sidecar_path(p) for p in agreed]
    return [p for p in existing if not any(same_file(p, a) for a in agreed)]
