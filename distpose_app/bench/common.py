"""What `distpose bench` measures and on what: its settings (`BenchSettings`), the machine's
description, and the timing helpers every measurement shares."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class BenchSettings:
    """How much to measure. `quick()` keeps a whole run under ~30 s (tests); the default takes a
    few minutes on a 2-core CPU."""

    lifter_pushes: int = 300  # timed pushes per lifter (after RF + lifter_warmup)
    lifter_warmup: int = 30
    batch_frames: int = 5000  # frames per offline batch (lift_sequence)
    batch_repeats: int = 5
    clip_frames: int | None = None  # frames of a clip to use (None: all)
    clip_warmup: int = 10  # first frames of each pass not timed (detector start, caches)
    adapt_rounds: int = 3  # interleaved rounds of passes with / without adaptation
    iso_repeats: int = 3
    iso_warmup: int = 1
    train_steps: int = 6
    train_warmup: int = 1
    train_batch: int | None = None  # None: TrainConfig's default
    meta_tasks: int | None = None
    lifter_only_seconds: float = 4.0  # lifter-only passes loop the 2D for at least this long
    comparison_clips: bool = True  # also detect the second real clip
    adapt_variants: bool = True  # also measure the remedies in ADAPT_VARIANTS (real clip only)

    @classmethod
    def quick(cls) -> BenchSettings:
        return cls(lifter_pushes=30, lifter_warmup=5, batch_frames=400, batch_repeats=2,
                   clip_frames=20, clip_warmup=3, adapt_rounds=1, iso_repeats=1, iso_warmup=1,
                   train_steps=1, train_warmup=1, train_batch=16, meta_tasks=2,
                   lifter_only_seconds=0.3, comparison_clips=False,
                   adapt_variants=False)  # fmt: skip


def machine_info(device: str = "cpu") -> dict:
    """Processor, cores, memory, library versions and the CUDA device (if any) as strings."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "processor": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_start": load_average(),
    }
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        from importlib.metadata import version

        info["mediapipe"] = version("mediapipe")
    except Exception:  # not installed: the clip sections are skipped anyway
        info["mediapipe"] = None
    return info


def median_ms(seconds) -> float:
    return 1000.0 * float(np.median(seconds))


def sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def log(message: str) -> None:
    import sys

    print(f"distpose bench: {message}", file=sys.stderr, flush=True)


def load_average() -> float | None:
    """1-minute load average: other processes' CPU use pollutes every timing here."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None
