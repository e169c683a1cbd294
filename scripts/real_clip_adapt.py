"""Adapt on real footage through known lenses: build the real-clip test set, measure Adapt on it.

Recipe (a camera whose lens we know, on real people and a real detector):
- every video of ../shared/media is pasted, scaled, into a 1920x1080 grey canvas: off-centre,
  at a fixed place or panning across the picture over the clip (PLACEMENTS). The canvas is the
  image of an ideal 90-degree pinhole camera;
- the canvas is warped through a known lens (LENSES; `none` leaves it lens-free) with
  cv2.remap, as that camera with that lens would have seen it;
- MediaPipe (as `distpose process`) detects the person in every warped frame. Detections are
  cached in $DISTPOSE_CACHE/realclips (about 25 ms a frame to recompute).

Then, per case, the 2D goes through `distpose process`'s pipeline three ways: unadapted, with
the true lens given (`--lens`, the ceiling), and adapted (`--adapt`, the app's adapt_model).
Each output is compared, frame by frame over the frames tracked in both, with the reference:
the unadapted output on the lens-free canvas of the same clip and placement, over the frames
where MediaPipe found the person the same way on both (`matched_frames`). Distances are the
mean joint distance of the root-relative 3D, mm. The bars (issue "Adapt that never invents a
lens"): lens-free inputs, Adapt declines or moves the output by < 5 mm; warped inputs, adapted
<= true lens + 1 mm and < unadapted; two runs agree within 1 mm (`--runs 2 --busy`).

    python scripts/real_clip_adapt.py --weights pretrained/meta.pt --busy --markdown real.md

prints one row per case and the summary; --json keeps every number. Rerun it on new weights
after `distpose adapt-calibrate`.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import multiprocessing
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RECIPE_VERSION = 1
CANVAS = (1920, 1080)
CANVAS_HFOV = 90.0
BACKGROUND = 110  # grey level of the canvas around the pasted clip
CLIPS = ("openpose_street_walk.avi", "mediapipe_gesture_upper_body.mp4")


@dataclass(frozen=True)
class Placement:
    """Where the clip goes on the canvas: `scale` of its own size, its centre moving linearly
    from `start` to `end` (fractions of the canvas width and height) over the clip."""

    name: str
    scale: float
    start: tuple[float, float]
    end: tuple[float, float]

    def offset(self, size: tuple[int, int], t: float) -> tuple[int, int]:
        """Top-left corner (pixels) of a clip of `size` at fraction t in [0, 1] of the clip."""
        w, h = int(round(size[0] * self.scale)), int(round(size[1] * self.scale))
        cx = (self.start[0] + t * (self.end[0] - self.start[0])) * CANVAS[0]
        cy = (self.start[1] + t * (self.end[1] - self.start[1])) * CANVAS[1]
        return int(round(cx - w / 2)), int(round(cy - h / 2))


# MediaPipe loses the street walk's far-away start when the clip is scaled below about 1.0 of a
# 1920x1080 canvas (28 of its first 80 frames found at 0.75, all at 1.0), so it stays full size.
PLACEMENTS = {
    "openpose_street_walk.avi": (
        Placement("right", 1.0, (0.66, 0.5), (0.66, 0.5)),
        Placement("bottomleft", 1.0, (0.34, 0.66), (0.34, 0.66)),
        Placement("pan", 1.0, (0.34, 0.4), (0.66, 0.6)),
        Placement("edge", 1.0, (0.8, 0.55), (0.8, 0.55)),
        Placement("across", 1.0, (0.15, 0.5), (0.85, 0.5)),
    ),
    "mediapipe_gesture_upper_body.mp4": (
        Placement("topleft", 0.7, (0.25, 0.3), (0.25, 0.3)),
        Placement("right", 0.7, (0.75, 0.5), (0.75, 0.5)),
        Placement("pan", 0.7, (0.25, 0.65), (0.75, 0.35)),
    ),
}
LENSES = ("none", "brown:-0.3", "fisheye", "brown:0.12")


def cache_dir() -> Path:
    from distpose_app.core import paths  # DISTPOSE_CACHE or the checkout's .cache

    return paths.CACHE_DIR / "realclips"


def media_dir() -> Path:
    from distpose_app.core import paths  # DISTPOSE_SHARED or ../shared, as everywhere

    return paths.SHARED / "media"


_MAPS: dict = {}  # the last lens's remap tables (slow to invert for a fisheye)


class WarpedSource:
    """A FrameSource: the clip's frames pasted into the canvas (`placement`) and warped through
    `lens` (a lens string) by a camera of CANVAS pixels and CANVAS_HFOV degrees."""

    is_live = False

    def __init__(self, path: Path, placement: Placement, lens: str):
        from distpose_app.lens.models import Intrinsics
        from distpose_app.lens.strings import parse_lens
        from distpose_app.live.capture import VideoFileSource

        self.video = VideoFileSource(path)
        self.placement = placement
        self.lens = parse_lens(lens, max_radius=None)
        self.intrinsics = Intrinsics.from_hfov(CANVAS_HFOV, *CANVAS)
        self.name = f"{path.name} {placement.name} {lens}"

    @property
    def size(self) -> tuple[int, int]:
        return CANVAS

    @property
    def fps(self) -> float:
        return self.video.fps

    @property
    def frame_count(self) -> int:
        return getattr(self.video, "frame_count", 0)

    def open(self) -> None:
        self.video.open()
        self._total = max(1, self.frame_count - 1)

    def close(self) -> None:
        self.video.close()

    def maps(self):
        """cv2.remap maps: for each pixel of the lensed image, where it comes from on the
        canvas (the ideal pinhole image); (-1, -1) where the lens cannot be inverted."""
        key = (self.lens.spec(), CANVAS, CANVAS_HFOV)
        if key not in _MAPS:
            w, h = CANVAS
            xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
            px = np.stack([xs, ys], -1).reshape(-1, 2)
            k = self.intrinsics
            ideal = k.to_pixels(self.lens.undistort(k.to_normalized(px))) - 0.5
            ideal[~np.isfinite(ideal).all(-1)] = -1.0
            ideal = ideal.reshape(h, w, 2).astype(np.float32)
            _MAPS.clear()  # one lens at a time: 16 MB each
            _MAPS[key] = (ideal[..., 0].copy(), ideal[..., 1].copy())
        return _MAPS[key]

    def canvas(self, image: np.ndarray, index: int) -> np.ndarray:
        import cv2

        h0, w0 = image.shape[:2]
        w, h = int(round(w0 * self.placement.scale)), int(round(h0 * self.placement.scale))
        small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        out = np.full((CANVAS[1], CANVAS[0], 3), BACKGROUND, np.uint8)
        x, y = self.placement.offset((w0, h0), min(1.0, index / self._total))
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(CANVAS[0], x + w), min(CANVAS[1], y + h)
        out[y0:y1, x0:x1] = small[y0 - y : y1 - y, x0 - x : x1 - x]
        return out

    def read(self):
        import cv2

        frame = self.video.read()
        if frame is None:
            return None
        image = self.canvas(frame.image, frame.index)
        if not self.lens.is_identity:
            mx, my = self.maps()
            image = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        frame.image = image
        return frame


def case_key(clip: str, placement: Placement, lens: str) -> str:
    path = media_dir() / clip
    stat = path.stat()
    text = json.dumps([RECIPE_VERSION, clip, stat.st_size, placement.__dict__, lens,
                       CANVAS, CANVAS_HFOV, BACKGROUND])  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_path(clip: str, placement: Placement, lens: str) -> Path:
    name = f"{Path(clip).stem}-{placement.name}-{lens.replace(':', '_')}"
    return cache_dir() / f"{name}-{case_key(clip, placement, lens)}.npz"


def detections(clip: str, placement: Placement, lens: str, quiet: bool = True) -> dict:
    """MediaPipe on the warped clip (cached): keypoints (F, 17, 2) pixels of the lensed image,
    NaN where no person; confidence (F, 17); timestamps_s (F,)."""
    from distpose_app.cli.process import detect_all

    path = cache_path(clip, placement, lens)
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    source = WarpedSource(media_dir() / clip, placement, lens)
    kp, conf, ts, _, error = detect_all(source, None, quiet)
    if error is not None:
        raise error
    out = {"keypoints": kp, "confidence": conf, "timestamps_s": ts}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **out)
    tmp.replace(path)
    return out


def lens_in_2d(lens_free: dict, lens: str) -> dict:
    """The lens-free canvas's detections moved through `lens` in 2D (`--lens-in-2d`): real
    MediaPipe keypoints and a known lens, without a second detection on the warped picture
    (whose differences from the first are measured by the default mode)."""
    from distpose_app.lens.models import Intrinsics, distort_pixels
    from distpose_app.lens.strings import parse_lens

    kp = np.array(lens_free["keypoints"], np.float64, copy=True)
    if lens != "none":
        k = Intrinsics.from_hfov(CANVAS_HFOV, *CANVAS)
        seen = np.isfinite(kp).all(-1)
        kp[seen] = distort_pixels(kp[seen], k, parse_lens(lens, max_radius=None))
    return dict(lens_free, keypoints=kp)


def case_pictures(clip: str, placement: Placement, lens: str) -> list:
    """Frames of the warped canvas as `distpose process --adapt` keeps them for the
    straight-edge check (`PictureSampler(keep=8, every=15, recent=False)` over every frame)."""
    import cv2

    from distpose_app.lens.plumb_line import PictureSampler

    sampler = PictureSampler(keep=8, every=15, recent=False)
    source = WarpedSource(media_dir() / clip, placement, lens)
    source.open()
    try:
        while (frame := source.video.read()) is not None:
            image = None
            if sampler.wants_next():
                image = source.canvas(frame.image, frame.index)
                if not source.lens.is_identity:
                    image = cv2.remap(image, *source.maps(), cv2.INTER_LINEAR,
                                      borderValue=(0, 0, 0))  # fmt: skip
            sampler.offer(image)
    finally:
        source.close()
    return sampler.pictures()


def lift_case(model, data: dict, lens: str | None = None, adapt: str | None = None,
              pictures=None):  # fmt: skip
    """`distpose process`'s second pass over cached detections: (positions (F, 17, 3) metres
    root-relative at the input frames, NaN where no pose; the AdaptResult or None). lens: the
    known lens given to the pipeline (as `--lens` with `--hfov` CANVAS_HFOV); adapt: an
    adapt_model method."""
    from distpose_app.adapt import adapt_model
    from distpose_app.cli.process import lift_all
    from distpose_app.lens.strings import parse_lens
    from distpose_app.live.pipeline import LivePipeline

    known = parse_lens(lens, max_radius=None) if lens and lens != "none" else None
    n = len(data["timestamps_s"])
    # a copy: the pipeline loads an accepted adaptation into the model it is given, and the
    # next case must start from the unadapted weights
    pipeline = LivePipeline(copy.deepcopy(model), "cpu", size=CANVAS, known_lens=known,
                            hfov_deg=CANVAS_HFOV, buffer_frames=n)  # fmt: skip
    pipeline.recorder.recovery_dir = None
    result = None
    if adapt:
        lift_all(pipeline, data["keypoints"], data["confidence"], data["timestamps_s"])
        result = adapt_model(pipeline.model_copy(), pipeline.adapt_buffer(), adapt,
                             pictures=pictures)  # fmt: skip
        if result.accepted:
            pipeline.set_model_state(result.state_dict)
    recording = lift_all(pipeline, data["keypoints"], data["confidence"], data["timestamps_s"])
    return on_input_frames(recording, data["timestamps_s"]), result


def on_input_frames(recording, timestamps_s: np.ndarray) -> np.ndarray:
    """The recording's poses (on the lifter's 30 fps clock), root-relative (the recording may
    carry the root's trajectory), placed at the input frames nearest their times: (F, 17, 3),
    NaN where no pose (so that outputs of different cases compare frame by frame)."""
    ts = np.asarray(timestamps_s, np.float64)
    out = np.full((len(ts), 17, 3), np.nan)
    nearest = np.abs(np.asarray(recording.timestamps_s)[:, None] - ts[None]).argmin(1)
    positions = np.asarray(recording.positions, np.float64)
    out[nearest] = positions - positions[:, :1]
    return out


#: A frame is compared when MediaPipe found the same person the same way on the lensed and the
#: lens-free canvas: after undoing the true lens, its joints lie within this share of the
#: person's height of the lens-free ones (median over joints). MediaPipe sometimes locks onto
#: another pedestrian or loses a limb on one of the two; such frames measure the detector.
MATCH_SHARE = 0.05


def matched_frames(warped: dict, lens_free: dict, lens: str) -> np.ndarray:
    """(F,) bool: frames whose detections agree (MATCH_SHARE) once the true lens is undone."""
    from distpose_app.lens.models import Intrinsics, undistort_pixels
    from distpose_app.lens.strings import parse_lens

    k = Intrinsics.from_hfov(CANVAS_HFOV, *CANVAS)
    # A copy: the cached detections are float64 already, and undoing the lens in place would
    # hand the caller's "unadapted" 2D over with the true lens undone.
    kp = np.array(warped["keypoints"], np.float64, copy=True)
    ref = np.asarray(lens_free["keypoints"], np.float64)
    n = min(len(kp), len(ref))
    kp, ref = kp[:n], ref[:n]
    if lens != "none":
        seen = np.isfinite(kp).all(-1)
        kp[seen] = undistort_pixels(kp[seen], k, parse_lens(lens, max_radius=None))
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # frames without a person
        warnings.simplefilter("ignore", RuntimeWarning)
        height = np.nanmax(ref[..., 1], -1) - np.nanmin(ref[..., 1], -1)
        apart = np.nanmedian(np.linalg.norm(kp - ref, axis=-1), axis=-1)
        ok = apart < MATCH_SHARE * height
    return np.concatenate([ok & np.isfinite(apart), np.zeros(len(warped["keypoints"]) - n, bool)])


def joint_distance_mm(a: np.ndarray, b: np.ndarray, frames: np.ndarray | None = None) -> float:
    """Mean joint distance (mm) between two (F, 17, 3) outputs over the frames posed in both
    (and in `frames`, (F,) bool, when given)."""
    both = np.isfinite(a).all((1, 2)) & np.isfinite(b).all((1, 2))
    if frames is not None:
        both &= frames[: len(both)]
    if not both.any():
        return float("nan")
    return 1000.0 * float(np.linalg.norm(a[both] - b[both], axis=-1).mean())


def _busy(stop) -> None:
    """Keep one core busy until `stop` is set (the "other core kept busy" determinism run)."""
    x = 0
    while not stop.is_set():
        for _ in range(100000):
            x += 1


def measure_case(model, clip: str, placement: Placement, lens: str, reference, runs: int,
                 busy: bool, in_2d: bool = False, use_pictures: bool = True) -> dict:  # fmt: skip
    """One row: distances (mm) to the reference of the unadapted, true-lens and adapted outputs,
    what Adapt decided and why, and the agreement of repeated runs (the last one with a busy
    core when `busy`). in_2d: the lens applied to the lens-free detections (`lens_in_2d`; then
    the picture has no lens and Adapt gets none). use_pictures: give Adapt the warped frames
    (as `distpose process --adapt` does), else the 2D alone."""
    if in_2d:
        data = lens_in_2d(detections(clip, placement, "none"), lens)
    else:
        data = detections(clip, placement, lens)
    same = matched_frames(data, detections(clip, placement, "none"), lens)
    unadapted, _ = lift_case(model, data)
    truelens = lift_case(model, data, lens=lens)[0] if lens != "none" else unadapted
    pictures = case_pictures(clip, placement, lens) if use_pictures and not in_2d else None
    outputs, results, seconds = [], [], []
    for run in range(runs):
        stop = multiprocessing.Event()
        worker = None
        if busy and run == runs - 1 and runs > 1:
            worker = multiprocessing.Process(target=_busy, args=(stop,), daemon=True)
            worker.start()
        try:
            start = time.perf_counter()
            out, res = lift_case(model, data, adapt="lens", pictures=pictures)
            seconds.append(time.perf_counter() - start)
        finally:
            stop.set()
            if worker is not None:
                worker.join()
        outputs.append(out)
        results.append(res)
    res = results[0]
    lens_fit = res.config.get("lens_adapt", {})
    cover = res.evidence.get("coverage", {})
    row = {
        "clip": clip, "placement": placement.name, "lens": lens,
        "frames": int(np.isfinite(unadapted).all((1, 2)).sum()),
        "compared": int((same & np.isfinite(unadapted).all((1, 2))).sum()),
        "reach": cover.get("reach"), "area": cover.get("area"),
        "accepted": bool(res.accepted), "reason": res.reason,
        "k1": lens_fit.get("lens", {}).get("k1", 0.0),
        "k2": lens_fit.get("lens", {}).get("k2", 0.0),
        # the fitted k1 before the evidence checks (None: refused before fitting) and its
        # 5-95% interval over resamples: where the objective's minimum lies on this input
        "fit_k1": res.evidence.get("k1"), "k1_interval": res.evidence.get("k1_interval"),
        # what decided: "picture" (its straight edges) or "2d" (the reprojection objective)
        "signal": res.evidence.get("source", "2d"), "lines": res.evidence.get("lines"),
        "fit_k2": res.evidence.get("k2"),
        "strength_interval": res.evidence.get("strength_interval"),
        "unadapted_mm": joint_distance_mm(unadapted, reference, same),
        "truelens_mm": joint_distance_mm(truelens, reference, same),
        "adapted_mm": joint_distance_mm(outputs[0], reference, same),
        "unadapted_all_mm": joint_distance_mm(unadapted, reference),
        "runs_apart_mm": max((joint_distance_mm(o, outputs[0]) for o in outputs[1:]),
                             default=0.0),
        "runs_agree": all(r.accepted == res.accepted and r.reason == res.reason
                          for r in results[1:]),
        "seconds": seconds,
    }  # fmt: skip
    if lens == "none":
        row["bar"] = (not res.accepted) or row["adapted_mm"] < 5.0
    else:
        row["bar"] = (row["adapted_mm"] <= row["truelens_mm"] + 1.0
                      and row["adapted_mm"] < row["unadapted_mm"])  # fmt: skip
    row["bar"] = bool(row["bar"] and row["runs_apart_mm"] < 1.0)
    return row


def markdown(rows: list[dict]) -> str:
    head = ("| clip | placement | lens | frames (compared) | reach | signal | fit k1 (5-95%) | "
            "Adapt | k1 | unadapted | true lens | adapted | runs apart | bar |")  # fmt: skip
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        fit = "—"
        if r.get("signal") == "picture":
            low, high = r["strength_interval"]
            fit = (f"{r['fit_k1']:+.2f}, k2 {r['fit_k2']:+.2f} (strength {100 * low:+.0f}…"
                   f"{100 * high:+.0f}%)")  # fmt: skip
        elif r.get("fit_k1") is not None:
            low, high = r["k1_interval"]
            fit = f"{r['fit_k1']:+.2f} ({low:+.2f}…{high:+.2f})"
        fitted = f"{r['k1']:+.2f}" + (f", k2 {r['k2']:+.2f}" if r.get("k2") else "")
        lines.append(
            f"| {Path(r['clip']).stem} | {r['placement']} | `{r['lens']}` | {r['frames']} "
            f"({r['compared']}) | {r['reach']:.2f} | {r.get('signal', '2d')} | {fit} | "
            f"{'accepted' if r['accepted'] else 'declined'} | "
            f"{fitted} | {r['unadapted_mm']:.1f} | {r['truelens_mm']:.1f} | "
            f"{r['adapted_mm']:.1f} | {r['runs_apart_mm']:.1f} | "
            f"{'met' if r['bar'] else 'NOT met'} |"
        )
    lines.append("")
    lines.append("Reasons given:")
    for r in rows:
        lines.append(f"- {Path(r['clip']).stem} {r['placement']} `{r['lens']}`: {r['reason']}")
    return "\n".join(lines)


def summarise(rows: list[dict]) -> str:
    """The bars' counts, then where the warped cases stand: comparable (some frame where both
    canvases' detections agree), among them those where the true lens brings the output closer
    to the lens-free reference than no correction (only there can a lens fit meet "< unadapted"
    by being right), and the adapted output within 1 mm of the true lens's."""
    lens_free = [r for r in rows if r["lens"] == "none"]
    warped = [r for r in rows if r["lens"] != "none"]
    comparable = [
        r for r in warped if np.isfinite(r["truelens_mm"]) and np.isfinite(r["unadapted_mm"])
    ]
    helps = [r for r in comparable if r["truelens_mm"] < r["unadapted_mm"]]
    near = [r for r in comparable if r["adapted_mm"] <= r["truelens_mm"] + 1.0]
    return (
        f"lens-free: {sum(r['bar'] for r in lens_free)} of {len(lens_free)} met (declined "
        f"{sum(not r['accepted'] for r in lens_free)}); warped: {sum(r['bar'] for r in warped)} "
        f"of {len(warped)} met (accepted {sum(r['accepted'] for r in warped)}); runs apart at "
        f"most {max((r['runs_apart_mm'] for r in rows), default=0.0):.2f} mm\n"
        f"warped cases: {len(comparable)} comparable ({len(warped) - len(comparable)} with no "
        f"frame where the two canvases' detections agree); adapted within 1 mm of the true lens "
        f"in {len(near)} of {len(comparable)}; the true lens closer to the reference than no "
        f"correction in {len(helps)}, where Adapt met the bar in {sum(r['bar'] for r in helps)}"
    )


def main() -> int:
    import torch

    from distpose_app.lifter.model import load_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="pretrained/meta.pt", help="lifter checkpoint")
    p.add_argument("--clips", nargs="+", default=list(CLIPS))
    p.add_argument("--lenses", nargs="+", default=list(LENSES))
    p.add_argument("--placements", nargs="+", help="placement names (default: all)")
    p.add_argument("--runs", type=int, default=2, help="Adapt runs per case (agreement)")
    p.add_argument("--busy", action="store_true", help="keep the other core busy in the last")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--cached-only", action="store_true", help="skip cases not detected yet")
    p.add_argument("--lens-in-2d", action="store_true",
                   help="move the lens-free detections through each lens instead of detecting "
                   "the warped videos")  # fmt: skip
    p.add_argument(
        "--no-pictures",
        action="store_true",
        help="Adapt on the 2D alone, without the frames' straight edges",
    )
    p.add_argument("--json", help="write every number here")
    p.add_argument("--markdown", help="write the table here")
    args = p.parse_args()
    if not media_dir().is_dir():
        print(f"no media folder {media_dir()} (set DISTPOSE_SHARED)", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.weights)
    model.eval()
    rows = []
    for clip in args.clips:
        for placement in PLACEMENTS[clip]:
            if args.placements and placement.name not in args.placements:
                continue
            reference, _ = lift_case(model, detections(clip, placement, "none"))
            for lens in args.lenses:
                if (args.cached_only and not args.lens_in_2d
                        and not cache_path(clip, placement, lens).exists()):  # fmt: skip
                    continue
                row = measure_case(model, clip, placement, lens, reference, args.runs, args.busy,
                                   args.lens_in_2d, not args.no_pictures)  # fmt: skip
                rows.append(row)
                print(markdown([row]).splitlines()[2], flush=True)
    summary = summarise(rows)
    table = markdown(rows) + "\n\n" + summary + "\n"
    print(summary)
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.json:
        out = {"weights": args.weights, "lens_in_2d": args.lens_in_2d,
               "pictures": not args.no_pictures, "rows": rows,
               "summary": summary}  # fmt: skip
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
