"""The bench report's targets and its markdown and JSON forms."""

from __future__ import annotations

import json

import numpy as np

from distpose_app.core.fileio import to_jsonable

TARGETS = {  # key: (comparison, bound); docs/bench.md "Targets"
    "lifter_ms_per_frame": ("<=", 1.0),
    "pipeline_overhead_ratio": ("<=", 0.10),
    "iso_seconds": ("<=", 3.0),
    "iso_seconds_1_thread": ("<=", 3.0),
    "adapt_fps_ratio": (">=", 0.8),
}


def check_targets(report: dict) -> dict:
    """{key: {"value", "target" (e.g. "<= 1.0"), "met" (bool, None when unmeasured)}}."""
    out = {}
    for key, (op, bound) in TARGETS.items():
        value = report.get(key)
        met = None if value is None else (value <= bound if op == "<=" else value >= bound)
        out[key] = {"value": value, "target": f"{op} {bound:g}", "met": met}
    return out


# -- output -----------------------------------------------------------------------------------
def _f(value, fmt: str = ".2f", none: str = "—") -> str:
    return none if value is None or not np.isfinite(value) else format(value, fmt)


def markdown_report(report: dict) -> str:
    """The report as markdown tables (headline with targets, per model, pipeline, training,
    label-free comparison, GPU, machine)."""
    m = report["machine"]
    lines = [
        f"Machine: {m['processor']}, {m['cores']} cores ({m['torch_threads']} torch threads), "
        f"{m.get('memory_gib', '?')} GiB, {m['platform']}; Python {m['python']}, torch "
        f"{m['torch']}, numpy {m['numpy']}, mediapipe {m.get('mediapipe')}. Load average "
        f"(other processes) {m.get('load_average_start')} at the start, "
        f"{report.get('load_average_end')} at the end.",
        f"Live model: `{report['live_model']}`. Clip: {report['clip']}.",
        "",
        "| measure (live model, CPU) | value | target | met |",
        "|---|---|---|---|",
    ]
    t = report["targets"]

    def row(label, key, fmt, unit=""):
        target = t.get(key, {})
        met = {True: "yes", False: "**no**", None: "—"}[target.get("met")]
        value = _f(report.get(key), fmt)
        lines.append(f"| {label} | {value}{unit} | {target.get('target', '')} | {met} |")

    row("lifter, streaming (ms/frame)", "lifter_ms_per_frame", ".3f")
    row("lifter, naive whole window (ms/frame)", "lifter_naive_ms_per_frame", ".3f")
    row("lifter, offline batch (frames/s)", "lifter_batch_fps", ".0f")
    row("MediaPipe pose, video mode (ms/frame)", "mediapipe_ms_per_frame", ".1f")
    row("pipeline (frames/s)", "pipeline_fps", ".1f")
    row("pipeline overhead over MediaPipe (ratio)", "pipeline_overhead_ratio", ".3f")
    row("Adapt, default method (lens) (s)", "iso_seconds", ".2f")
    row("Adapt, default method (lens), 1 torch thread (s)", "iso_seconds_1_thread", ".2f")
    row("frame rate during adaptation / without", "adapt_fps_ratio", ".2f")
    row("supervised training (frames/s)", "train_frames_per_s", ".0f")
    row("meta-training (frames/s)", "meta_train_frames_per_s", ".0f")
    pipe = report["pipeline"]
    lo = pipe["lifter_only"]
    lines += ["", f"Pipeline measured as: {pipe['source']}."]
    if "with_adapt" in pipe:
        off = pipe["without_adapt"]
        lines.append(
            f"Full pipeline: {np.mean([p['fps'] for p in off]):.1f} frames/s without "
            f"adaptation ({len(off)} passes); its MediaPipe stage "
            f"{np.mean([p['mediapipe_ms'] for p in off]):.1f} ms, lifter stage "
            f"{np.mean([p['lifter_ms'] for p in off]):.2f} ms a frame."
        )
    lines.append(
        f"Lifter-only pipeline (2D precomputed): {lo['without_adapt']['fps']:.0f} frames/s "
        f"without, {lo['with_adapt']['fps']:.0f} during adaptation (ratio "
        f"{lo['adapt_fps_ratio']:.2f}; {lo['with_adapt']['adaptations']} adaptations)."
    )
    if "with_adapt" in pipe:
        lines += ["", "| Adapt in the background | frames/s | ratio (median) | ratio per round "
                  "| adaptations done | s each |", "|---|---|---|---|---|---|"]  # fmt: skip
        for v in [pipe["with_adapt"], *pipe.get("variants", [])]:
            per_round = ", ".join(f"{r:.2f}" for r in v["ratios"])
            lines.append(
                f"| {v['label']} | {v['fps_with']:.1f} | {v['adapt_fps_ratio']:.2f} | "
                f"{per_round} | {v['adaptations']} | {_f(v['adapt_seconds'])} |"
            )
    lines += [
        "",
        "| model | device | RF | channels | streaming ms/frame | naive ms/frame | naive/stream "
        "| batch frames/s | Adapt s | Adapt s, 1 thread |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, per_device in report["models"].items():
        for dev, r in per_device.items():
            iso = report["iso"].get(name, {})
            one = iso.get("cpu_1_thread", {}).get("seconds") if dev == "cpu" else None
            lines.append(
                f"| {name} | {dev} | {r['receptive_field']} | {r['channels']} | "
                f"{r['stream_ms']:.3f} | {r['naive_ms']:.3f} | {r['naive_over_stream']:.1f}x | "
                f"{r['batch_fps']:.0f} | {_f(iso.get(dev, {}).get('seconds'))} | {_f(one)} |"
            )
    tr = report["training"]
    lines += [
        "",
        "| training step (CPU) | frames/s | ms/step | batch |",
        "|---|---|---|---|",
        f"| supervised (augmented) | {tr['supervised']['frames_per_s']:.0f} | "
        f"{tr['supervised']['step_ms']:.0f} | {tr['supervised']['batch_windows']} windows x "
        f"{tr['supervised']['chunk_frames']} frames |",
        f"| meta (first-order MAML) | {tr['meta']['frames_per_s']:.0f} | "
        f"{tr['meta']['step_ms']:.0f} | {tr['meta']['tasks_per_batch']} tasks x "
        f"{tr['meta']['windows_per_task']} windows x {tr['meta']['chunk_frames']} frames |",
    ]
    if report["clips"]:
        lines += [
            "",
            "| clip | 3D from | frames | symmetry mm | consistency mm | consistency % "
            "| jitter m/s² | mean bone mm |",
            "|---|---|---|---|---|---|---|---|",
        ]
        notes = []
        for clip, comp in report["clips"].items():
            if comp["basis"] != "common frames":
                have = ", ".join(f"{k} {v}" for k, v in comp["frames_with_pose"].items())
                notes.append(f"{clip}: {comp['basis']}; frames with a pose of {comp['frames']}: "
                             f"{have}.")  # fmt: skip
            for source, s in comp.items():
                if source in ("basis", "frames_with_pose") or not isinstance(s, dict):
                    continue
                label = "MediaPipe world landmarks" if source == "mediapipe" else f"ours: {source}"
                lines.append(
                    f"| {clip} | {label} | {s['frames']} | {_f(s.get('symmetry_mm'), '.1f')} | "
                    f"{_f(s.get('consistency_mm'), '.1f')} | "
                    f"{_f(s.get('consistency_pct'), '.1f')} | {_f(s.get('jitter_m_s2'), '.2f')} "
                    f"| {_f(s.get('mean_bone_mm'), '.0f')} |"
                )
        lines += [""] + notes if notes else []
    else:
        lines += ["", "MediaPipe 3D comparison: skipped (no real clip; synthetic source)."]
    gpu = report["gpu"]
    lines += ["", f"GPU: {gpu if isinstance(gpu, str) else gpu['device']}"]
    return "\n".join(lines) + "\n"


def report_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=to_jsonable) + "\n"
