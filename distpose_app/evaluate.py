"""The evaluation protocol behind `distpose evaluate`.

For each test lens, the sequences are split into a fixed evaluation half E (even positions in
sequence order) and an adaptation half A (odd positions): same lens, disjoint frames and files.
Every method is scored on the same frames of E:

- `baseline`, `augmented`, `meta`: the trained models, no adaptation;
- `meta+iso`, `augmented+iso`: ISO on the unlabelled 2D of A (the first `adapt_seconds`);
- `meta+fewshot`: supervised adaptation on K labelled frames of A;
- `oracle`: E's 2D undistorted with the true lens, then `baseline` (perfect calibration).

`data` is a `dataset.ExternalData` (the external `.npz` format): positions_3d (N, 17, 3) metres
in camera coordinates, sequence (N,), fps, intrinsics (S, 4), image_size (S, 2), optional
keypoints_2d (N, 17, 2) undistorted pixel detections. Errors are reported in millimetres on
root-relative poses.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from distpose_app import metrics
from distpose_app.errors import DistposeError
from distpose_app.lens import Intrinsics, Lens, NoLens, normalize_screen_coordinates, parse_lens

if TYPE_CHECKING:  # torch is imported where it is used, so `distpose --help` stays quick
    import torch

MODEL_FPS = 30.0  # the shipped models' frame rate (the mocap's native rate); see train.py

DEFAULT_LENSES = ("none", "mild", "moderate", "strong", "pincushion", "fisheye")
# Named lens sets (`--lenses`). "in": the presets, inside the shipped training sampler's ranges.
# "out": beyond them (checked against the model's stored sampler by `distpose evaluate`):
# barrel and pincushion stronger than the sampler's extremes, a fisheye with k1 below its range,
# and 4x its largest tangential terms. All stay monotonic over the evaluation webcam's image.
LENS_SETS = {
    "in": DEFAULT_LENSES,
    "out": ("brown:-0.6,0.25", "brown:0.3", "fisheye:-0.15", "brown:-0.3,0.05,0,0.008,-0.008"),
}
METHODS = (
    "baseline",
    "augmented",
    "meta",
    "meta+iso",
    "augmented+iso",
    "meta+fewshot",
    "oracle",
)
# Which trained model each method needs.
METHOD_MODEL = {
    "baseline": "baseline",
    "augmented": "augmented",
    "meta": "meta",
    "meta+iso": "meta",
    "augmented+iso": "augmented",
    "meta+fewshot": "meta",
    "oracle": "baseline",
}


def _camera(data, s: int) -> Intrinsics:
    return Intrinsics.from_array(data.intrinsics[s], data.image_size[s])


def _ranges(data) -> list[tuple[int, int, int]]:
    """(sequence id, first frame, end frame) of every sequence, in frame order."""
    from distpose_app.dataset import sequence_bounds

    starts, ends = sequence_bounds(data.sequence)
    return [(int(data.sequence[a]), int(a), int(b)) for a, b in zip(starts, ends)]


def distorted_pixels(data, lens: Lens, input_2d: str = "projected") -> np.ndarray:
    """2D input for one lens: (N, 17, 2) pixels. `projected`: positions_3d through intrinsics and
    lens; `detections`: the file's undistorted keypoints_2d pushed through the lens."""
    out = np.empty(data.positions_3d.shape[:-1] + (2,))
    for s, a, b in _ranges(data):
        cam = _camera(data, s)
        if input_2d == "projected":
            xyz = data.positions_3d[a:b].astype(np.float64)
            ideal = xyz[..., :2] / xyz[..., 2:3]
        elif input_2d == "detections":
            if data.keypoints_2d is None:
                raise DistposeError("--input-2d detections needs keypoints_2d in the data file")
            ideal = cam.to_normalized(data.keypoints_2d[a:b])
        else:
            raise DistposeError(f"unknown --input-2d {input_2d!r}: use projected or detections")
        out[a:b] = cam.to_pixels(lens.distort(ideal))
    return out


def _normalised(data, px: np.ndarray, s: int, a: int, b: int) -> np.ndarray:
    w, h = data.image_size[s]
    return normalize_screen_coordinates(px[a:b], float(w), float(h))


def resample(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """(T, ...) at fps_in -> fps_out by linear interpolation (`mocap.resample`); `x` itself when
    the rates are equal, so callers can tell that nothing was resampled."""
    from distpose_app.mocap import resample as resample_in_time

    if abs(fps_in - fps_out) < 1e-9 or len(x) < 2:
        return x
    return resample_in_time(x, fps_in, fps_out)


def lift(model: torch.nn.Module, keypoints: np.ndarray, fps: float) -> np.ndarray:
    """Lift one sequence (T, 17, 2) normalised at `fps` → (T, 17, 3) metres at the same frames,
    resampling to the model's rate and back when they differ."""
    from distpose_app import adapt

    at_model_rate = resample(keypoints, fps, MODEL_FPS)
    poses = adapt.lift_sequence(model, at_model_rate)
    if at_model_rate is keypoints:
        return poses
    back = resample(poses, MODEL_FPS, fps)[: len(keypoints)]
    # The model-rate clip may end up to a data frame early: hold its last pose there.
    return np.concatenate([back, np.repeat(back[-1:], len(keypoints) - len(back), axis=0)])


def _with_state(model: torch.nn.Module, state: dict) -> torch.nn.Module:
    out = copy.deepcopy(model)
    out.load_state_dict(state)
    return out.eval()


def evaluate_lens(
    models: dict[str, torch.nn.Module],
    data,
    lens_text: str,
    methods: tuple[str, ...] = METHODS,
    input_2d: str = "projected",
    adapt_seconds: float = 20.0,
    fewshot_k: int = 50,
    iso_config=None,
    meta_iso_config=None,
    seed: int = 0,
    noise_px: float = 0.0,
) -> list[dict]:
    """Score every method on lens `lens_text`; one result dict per method (mm, frames).
    noise_px > 0 adds detector-like noise to the 2D (dataset.add_detector_noise: that sigma,
    larger on wrists and ankles and on fast joints), the same draw for every method."""
    from distpose_app import adapt

    lens = parse_lens(lens_text, max_radius=None) if lens_text != "none" else NoLens()
    px = distorted_pixels(data, lens, input_2d)
    if noise_px > 0:
        from distpose_app.dataset import NoiseConfig, add_detector_noise

        px, _ = add_detector_noise(
            np.random.default_rng(seed), px, data.sequence, NoiseConfig(sigma_px=noise_px)
        )
    seqs = _ranges(data)
    eval_half, adapt_half = seqs[0::2], seqs[1::2]
    if not eval_half or not adapt_half:
        raise DistposeError("evaluation needs at least two sequences (an E and an A half)")
    gt = data.positions_3d - data.positions_3d[..., :1, :]

    # The adaptation buffer: A's first `adapt_seconds` of 2D (and 3D for few-shot).
    budget = int(round(adapt_seconds * data.fps))
    buf_2d, buf_3d = [], []
    for s, a, b in adapt_half:
        take = min(b - a, budget - sum(len(x) for x in buf_2d))
        if take <= 0:
            break
        buf_2d.append(resample(_normalised(data, px, s, a, b)[:take], data.fps, MODEL_FPS))
        buf_3d.append(resample(gt[a : a + take], data.fps, MODEL_FPS))
    adapt_2d, adapt_3d = np.concatenate(buf_2d), np.concatenate(buf_3d)

    eval_idx = np.concatenate([np.arange(a, b) for _, a, b in eval_half])
    results = []
    for method in methods:
        model = models.get(METHOD_MODEL[method])
        if model is None:
            continue
        info: dict = {}
        if method.endswith("+iso"):
            config = meta_iso_config if method.startswith("meta") else iso_config
            res = adapt.iso_adapt(model, adapt_2d, config)
            model = _with_state(model, res.state_dict)
            info = {"accepted": res.accepted, "reason": res.reason, "seconds": res.seconds}
        elif method == "meta+fewshot":
            rng = np.random.default_rng(seed)
            k = min(fewshot_k, len(adapt_2d))
            labelled = np.sort(rng.choice(len(adapt_2d), size=k, replace=False))
            res = adapt.fewshot_adapt(model, adapt_2d, adapt_3d, labelled)
            model = _with_state(model, res.state_dict)
            info = {"accepted": res.accepted, "seconds": res.seconds, "k": int(k)}
        preds = np.empty_like(gt)
        for s, a, b in eval_half:
            if method == "oracle":
                cam = _camera(data, s)
                ideal_px = cam.to_pixels(lens.undistort(cam.to_normalized(px[a:b])))
                kp = normalize_screen_coordinates(ideal_px, *map(float, data.image_size[s]))
            else:
                kp = _normalised(data, px, s, a, b)
            preds[a:b] = lift(model, kp, data.fps)
        p, t = preds[eval_idx], gt[eval_idx]
        results.append(
            {
                "lens": lens_text,
                "method": method,
                "mpjpe_mm": 1000 * metrics.mpjpe(p, t),
                "p_mpjpe_mm": 1000 * metrics.p_mpjpe(p, t),
                "n_mpjpe_mm": 1000 * metrics.n_mpjpe(p, t),
                "frames": int(len(eval_idx)),
                **info,
            }
        )
    return results


def evaluate(
    models: dict[str, torch.nn.Module],
    data,
    lenses: tuple[str, ...] = DEFAULT_LENSES,
    methods: tuple[str, ...] = METHODS,
    progress: Callable[[str], None] | None = None,
    **kwargs,
) -> list[dict]:
    """Run `evaluate_lens` for every lens; returns the flat list of result rows."""
    rows = []
    for lens_text in lenses:
        if progress is not None:
            progress(lens_text)
        rows.extend(evaluate_lens(models, data, lens_text, methods, **kwargs))
    return rows


def markdown_table(rows: list[dict]) -> str:
    """MPJPE (P-MPJPE) in mm, lenses as rows and methods as columns."""
    lenses = list(dict.fromkeys(r["lens"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["lens"], r["method"]): r for r in rows}
    lines = ["| lens | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for lens in lenses:
        vals = []
        for m in methods:
            r = cell.get((lens, m))
            vals.append(f"{r['mpjpe_mm']:.1f} ({r['p_mpjpe_mm']:.1f})" if r else "–")
        lines.append(f"| {lens} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def gap_closed(rows: list[dict], start: str = "augmented", end: str = "oracle") -> list[dict]:
    """For every lens and adapted method ("<model>+<adaptation>"): the MPJPE its adaptation
    removes from its own unadapted model, as a share of the gap from `start` (no adaptation) to
    `end` (perfect calibration): 1 = the whole gap, 0 = nothing, < 0 = worse than not adapting.
    Measured against the method's own model, so a better-trained model gets no credit for
    adapting. Lenses where the gap is under 0.5 mm are skipped (no gap to close)."""
    cell = {(r["lens"], r["method"]): r["mpjpe_mm"] for r in rows}
    out = []
    for lens in dict.fromkeys(r["lens"] for r in rows):
        a, o = cell.get((lens, start)), cell.get((lens, end))
        if a is None or o is None or abs(a - o) < 0.5:
            continue
        for method in dict.fromkeys(r["method"] for r in rows):
            base = method.split("+")[0]
            if "+" in method and (lens, method) in cell and (lens, base) in cell:
                share = (cell[(lens, base)] - cell[(lens, method)]) / (a - o)
                out.append({"lens": lens, "method": method, "gap_closed": share})
    return out


def plot(rows: list[dict], path: str) -> None:
    """PNG of MPJPE per method across lenses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lenses = list(dict.fromkeys(r["lens"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    width = 0.8 / max(len(methods), 1)
    values = []
    for i, m in enumerate(methods):
        vals = [next((r["mpjpe_mm"] for r in rows if r["lens"] == lz and r["method"] == m), np.nan)
                for lz in lenses]  # fmt: skip
        values += vals
        ax.bar(np.arange(len(lenses)) + i * width, vals, width, label=m)
    ax.set_xticks(np.arange(len(lenses)) + 0.4 - width / 2, lenses)
    low, high = np.nanmin(values), np.nanmax(values)
    ax.set_ylim(max(0.0, low - 0.15 * (high - low) - 2), high + 0.1 * (high - low) + 1)
    ax.set_ylabel("MPJPE (mm)")
    ax.set_title(
        "Held-out MPJPE per method and lens (lower is better; the axis does not start at 0)"
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(methods), loc="upper center", bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
