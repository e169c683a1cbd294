"""The evaluation protocol behind `distpose evaluate`.

Lens table (`evaluate`, `evaluate_lens`). For each test lens, the sequences are split into a fixed
evaluation half E (even positions in sequence order) and an adaptation half A (odd positions):
same lens, disjoint frames and files. Every method is scored on the same frames of E:

- `baseline`, `augmented`, `meta`: the trained models, no adaptation;
- `meta+iso`: ISO on the unlabelled 2D of A (the first `adapt_seconds`) with the inner loop that
  meta-training used (`meta_iso_config`); `augmented+iso`: ISO with `iso_config` (default
  `adapt.IsoConfig`, batch-norm parameters);
- `meta+fewshot`: supervised adaptation on K labelled frames of A;
- `oracle`: E's 2D undistorted with the true lens (and true camera), then `baseline` (perfect
  calibration);
- adaptation variants `<model>+<variant>` for any model (`adapted_methods`, `--adapt`):
  `weights` = ISO on all weights (the paper's), `bn` = ISO on batch-norm parameters, `lens` =
  `lens_adapt.lens_adapt` fits a screen-space undistortion in front of the frozen model, which
  then lifts the undistorted 2D, `lens+bn` = that lens, then ISO (bn) on the undistorted buffer,
  `fewshot` = K labelled frames; `truelens` = the model fed the truly undistorted 2D (the
  oracle's input): the ceiling of lens adaptation for that model, which `gap_closed` scores
  like an adaptation. Adapted rows carry `seconds` and `accepted` (the guard's verdict).

Imaging strings: a lens string (`lens.parse_lens`) with optional modifiers, `<lens>[@pp=dx,dy]
[@hfov=deg]`, such as `brown:-0.3,0.05@pp=0.08,0.05` or `none@hfov=150`:
- `@pp=dx,dy`: the true principal point is (cx + dx·width, cy + dy·height) while the models
  see the raw pixels normalised about the image centre (a user's uncalibrated camera);
- `@hfov=deg`: the true focal length gives `deg` degrees horizontal field of view on the same
  image (training drew 50–120°, the evaluation webcam has 90°): the person gets smaller.
The 3D, and so the normalised camera coordinates x/z, y/z, stay those of the data. The oracle
undistorts with the true lens and true camera (focal and principal point), then reprojects with
the data's own camera (centred principal point, evaluation focal): exactly the ideal pinhole
projection the models were trained on.

Pose families (`evaluate_poses`). Every sequence is scored (no adaptation halves),
grouped by `data.synthetic.pose_family` of its name (standing, seated, crouching, bending_forward,
kneeling, and "all"), with the 2D unmasked and with each joint group of `masking.MASK_GROUPS`
masked (NaN = unseen) in every frame. Rows give MPJPE, P-MPJPE and N-MPJPE on all 17 joints,
MPJPE on `masking.UPPER_BODY` (root-relative like every error here), `vs_standing` (MPJPE over
the standing family's, same model and mask) and `upper_vs_unmasked` (upper-body MPJPE over the
unmasked one, same model and family). `pose_targets` checks the pose-family targets on them.

`data` is a `ExternalData` (the external `.npz` format): positions_3d (N, 17, 3) metres
in camera coordinates, sequence (N,), fps, intrinsics (S, 4), image_size (S, 2), optional
keypoints_2d (N, 17, 2) undistorted pixel detections, names (S,) (needed per family). Errors are
reported in millimetres on root-relative poses.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from distpose_app.core import metrics
from distpose_app.core.errors import DistposeError, LensError
from distpose_app.core.validate import HFOV_RANGE_DEG
from distpose_app.lens.models import Intrinsics, Lens, NoLens
from distpose_app.lens.screen import normalize_screen_coordinates
from distpose_app.lens.strings import parse_lens
from distpose_app.lifter import MODEL_FPS

if TYPE_CHECKING:  # torch is imported where it is used, so `distpose --help` stays quick
    import torch


DEFAULT_LENSES = ("none", "mild", "moderate", "strong", "pincushion", "fisheye")
# Named lens sets (`--lenses`). "in": the presets, inside the shipped training sampler's ranges.
# "out": beyond them (checked against the model's stored sampler by `distpose evaluate`):
# barrel and pincushion stronger than the sampler's extremes, a fisheye with k1 below its range,
# 4x its largest tangential terms, the division model (a family the sampler never draws), a
# principal point 8 % / 5 % off-centre (alone and behind a strong barrel), and fields of view
# far beyond training's 50-120° (150° pinhole, 140° equidistant fisheye). All stay monotonic
# over the evaluation webcam's image (division:-0.3 moves its corners by 23 % of their radius).
LENS_SETS = {
    "in": DEFAULT_LENSES,
    "out": (
        "brown:-0.6,0.25",
        "brown:0.3",
        "fisheye:-0.15",
        "brown:-0.3,0.05,0,0.008,-0.008",
        "division:-0.3",
        "none@pp=0.08,0.05",
        "brown:-0.3,0.05@pp=0.08,0.05",
        "none@hfov=150",
        "fisheye@hfov=140",
    ),
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
# Which trained model each fixed method needs; "<model>+<variant>" needs <model>.
METHOD_MODEL = {
    "baseline": "baseline",
    "augmented": "augmented",
    "meta": "meta",
    "meta+iso": "meta",
    "augmented+iso": "augmented",
    "meta+fewshot": "meta",
    "oracle": "baseline",
}
MODELS = ("baseline", "augmented", "meta")
# `--adapt` variants (see the module docstring) and the models they adapt by default.
ADAPTATIONS = ("weights", "bn", "lens", "lens+bn", "fewshot")
ADAPT_MODELS = ("augmented", "meta")
VARIANTS = (*ADAPTATIONS, "iso", "truelens")


def method_model(method: str) -> str:
    """The trained model a method needs: METHOD_MODEL, or <model> of "<model>+<variant>"."""
    if method in METHOD_MODEL:
        return METHOD_MODEL[method]
    model, plus, variant = method.partition("+")
    if model in MODELS and plus and variant in VARIANTS:
        return model
    raise DistposeError(
        f"unknown method {method!r}: use {', '.join(METHODS)} or <model>+<variant> with model "
        f"in {MODELS} and variant in {VARIANTS}"
    )


def adapted_methods(variants, models=ADAPT_MODELS) -> tuple[str, ...]:
    """Method names "<model>+<variant>" for every model and `--adapt` variant, model-major."""
    for v in variants:
        if v not in ADAPTATIONS:
            raise DistposeError(f"unknown adaptation {v!r}: use {', '.join(ADAPTATIONS)}")
    return tuple(f"{m}+{v}" for m in models for v in variants)


# --------------------------------------------------------------------------------------------
# Imaging: a lens plus principal-point and focal-length modifiers
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Imaging:
    """What a test camera does beyond the data's own intrinsics: `lens` on normalised camera
    coordinates, the principal point moved by `pp_offset` (fractions of width, height), and the
    focal length replaced by that of `hfov_deg` degrees horizontal FOV (None: unchanged)."""

    text: str
    lens: Lens
    pp_offset: tuple[float, float] = (0.0, 0.0)
    hfov_deg: float | None = None

    @property
    def modified(self) -> bool:
        """True when the camera differs from the data's beyond the lens."""
        return self.pp_offset != (0.0, 0.0) or self.hfov_deg is not None

    def keeps_whole_picture(self, data) -> bool:
        """Data marked `whole_picture` (the Demo's) stay a whole picture unless the centre moves."""
        return bool(getattr(data, "whole_picture", False)) and self.pp_offset == (0.0, 0.0)

    def true_camera(self, cam: Intrinsics) -> Intrinsics:
        """The camera that takes the picture, from the data's camera `cam` (pixels)."""
        fx, fy = cam.fx, cam.fy
        if self.hfov_deg is not None:
            scale = 0.5 * cam.width / math.tan(math.radians(self.hfov_deg) / 2.0) / cam.fx
            fx, fy = fx * scale, fy * scale
        dx, dy = self.pp_offset
        return Intrinsics(fx, fy, cam.cx + dx * cam.width, cam.cy + dy * cam.height,
                          cam.width, cam.height)  # fmt: skip


def _modifier_values(text: str, key: str, rest: str, count: int) -> list[float]:
    parts = rest.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise LensError(f"{text!r}: @{key} takes {count} number(s), got {rest!r}")
    return values


def parse_imaging(text: str) -> Imaging:
    """`<lens>[@pp=dx,dy][@hfov=deg]` → Imaging. dx, dy: principal point offset as fractions of
    the image width and height (|d| < 0.5); deg: horizontal field of view in [1, 179].
    Raises LensError naming the problem."""
    if not isinstance(text, str) or not text.strip():
        raise LensError("empty lens string")
    lens_text, *mods = "".join(text.split()).lower().split("@")
    lens = NoLens() if lens_text == "none" else parse_lens(lens_text, max_radius=None)
    pp, hfov, seen = (0.0, 0.0), None, set()
    for mod in mods:
        key, eq, rest = mod.partition("=")
        if not eq or key not in ("pp", "hfov"):
            raise LensError(f"{text!r}: unknown modifier @{mod}; use @pp=dx,dy or @hfov=degrees")
        if key in seen:
            raise LensError(f"{text!r}: @{key} given twice")
        seen.add(key)
        if key == "pp":
            dx, dy = _modifier_values(text, key, rest, 2)
            if max(abs(dx), abs(dy)) >= 0.5:
                raise LensError(f"{text!r}: @pp offsets must lie in (-0.5, 0.5) of the image")
            pp = (dx, dy)
        else:
            (hfov,) = _modifier_values(text, key, rest, 1)
            if not HFOV_RANGE_DEG[0] <= hfov <= HFOV_RANGE_DEG[1]:
                raise LensError(f"{text!r}: @hfov={hfov} is not in [{HFOV_RANGE_DEG[0]:g}, "
                                f"{HFOV_RANGE_DEG[1]:g}] degrees")  # fmt: skip
    return Imaging(text.strip(), lens, pp, hfov)


def _as_imaging(lens: Lens | Imaging | str) -> Imaging:
    if isinstance(lens, Imaging):
        return lens
    if isinstance(lens, str):
        return parse_imaging(lens)
    return Imaging(lens.spec(), lens)


# --------------------------------------------------------------------------------------------
# 2D inputs
# --------------------------------------------------------------------------------------------
def _camera(data, s: int) -> Intrinsics:
    return Intrinsics.from_array(data.intrinsics[s], data.image_size[s])


def _ranges(data) -> list[tuple[int, int, int]]:
    """(sequence id, first frame, end frame) of every sequence, in frame order."""
    from distpose_app.data.splits import sequence_bounds

    starts, ends = sequence_bounds(data.sequence)
    return [(int(data.sequence[a]), int(a), int(b)) for a, b in zip(starts, ends)]


def distorted_pixels(data, lens: Lens | Imaging | str, input_2d: str = "projected") -> np.ndarray:
    """2D input for one lens (a Lens, an Imaging or an imaging string): (N, 17, 2) pixels of the
    true camera. `projected`: positions_3d through the lens; `detections`: the file's
    undistorted keypoints_2d (pixels of the data's camera) pushed through the lens."""
    imaging = _as_imaging(lens)
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
        out[a:b] = imaging.true_camera(cam).to_pixels(imaging.lens.distort(ideal))
    return out


def _normalised(data, px: np.ndarray, s: int, a: int, b: int) -> np.ndarray:
    w, h = data.image_size[s]
    return normalize_screen_coordinates(px[a:b], float(w), float(h))


def oracle_input(data, px: np.ndarray, lens: Lens | Imaging | str, s: int, a: int, b: int):
    """Frames a:b of sequence s undistorted with the true lens and camera, reprojected with the
    data's camera: (b - a, 17, 2) normalised screen coordinates (the ideal pinhole's)."""
    imaging, cam = _as_imaging(lens), _camera(data, s)
    ideal = imaging.lens.undistort(imaging.true_camera(cam).to_normalized(px[a:b]))
    return normalize_screen_coordinates(cam.to_pixels(ideal), *map(float, data.image_size[s]))


# --------------------------------------------------------------------------------------------
# Lifting
# --------------------------------------------------------------------------------------------
def resample(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """(T, ...) at fps_in -> fps_out by linear interpolation (`mocap.resample`); `x` itself when
    the rates are equal, so callers can tell that nothing was resampled."""
    from distpose_app.data.mocap import resample as resample_in_time

    if abs(fps_in - fps_out) < 1e-9 or len(x) < 2:
        return x
    return resample_in_time(x, fps_in, fps_out)


def lift(model: torch.nn.Module, keypoints: np.ndarray, fps: float) -> np.ndarray:
    """Lift one sequence (T, 17, 2) normalised at `fps` → (T, 17, 3) metres at the same frames,
    resampling to the model's rate and back when they differ."""
    from distpose_app.lifter.inference import lift_sequence

    at_model_rate = resample(keypoints, fps, MODEL_FPS)
    poses = lift_sequence(model, at_model_rate)
    if at_model_rate is keypoints:
        return poses
    back = resample(poses, MODEL_FPS, fps)[: len(keypoints)]
    # The model-rate clip may end up to a data frame early: hold its last pose there.
    return np.concatenate([back, np.repeat(back[-1:], len(keypoints) - len(back), axis=0)])


def lift_many(
    model: torch.nn.Module, sequences: list[np.ndarray], fps: float, batch: int = 64
) -> list[np.ndarray]:
    """`lift` for many sequences (each (T_i, 17, 2) normalised, NaN = unseen) → (T_i, 17, 3)
    metres each. At the model's rate, sequences of equal length go through the network in
    batches (the held-out clips all have one length), which is what makes a full per-family
    run affordable; the result equals lifting each alone (batch norm is in eval mode)."""
    if abs(fps - MODEL_FPS) > 1e-9:
        return [lift(model, kp, fps) for kp in sequences]
    import torch

    from distpose_app.lifter.inference import edge_padded

    out: list = [None] * len(sequences)
    by_length: dict[int, list[int]] = {}
    for i, kp in enumerate(sequences):
        by_length.setdefault(len(kp), []).append(i)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for idx in by_length.values():
            for k in range(0, len(idx), batch):
                chunk = idx[k : k + batch]
                x = torch.stack([edge_padded(model, torch.as_tensor(sequences[i],
                                 dtype=torch.float32)) for i in chunk])  # fmt: skip
                for i, y in zip(chunk, model(x.to(device)).cpu().numpy()):
                    out[i] = y
    model.train(was_training)
    return out


def _with_state(model: torch.nn.Module, state: dict) -> torch.nn.Module:
    out = copy.deepcopy(model)
    out.load_state_dict(state)
    return out.eval()


def _adapt(method, model, adapt_2d, adapt_3d, iso_config, meta_iso_config, fewshot_k, seed,
           whole_picture=False):  # fmt: skip
    """Adapt `model` for `method` on the A buffer (model-rate 2D (T, 17, 2), 3D (T, 17, 3) m)
    with the app's `adapt.adapt_model` (and its whole_picture; few-shot: `adapt.fewshot_adapt`).
    Returns the model to lift with and the row's extra fields."""
    from distpose_app.adapt import iso as adapt

    variant = method.partition("+")[2]
    if variant == "fewshot":
        rng = np.random.default_rng(seed)
        k = min(fewshot_k, len(adapt_2d))
        labelled = np.sort(rng.choice(len(adapt_2d), size=k, replace=False))
        res = adapt.fewshot_adapt(model, adapt_2d, adapt_3d, labelled)
        info = {"accepted": res.accepted, "seconds": res.seconds, "k": int(k)}
        return _with_state(model, res.state_dict), info
    if variant == "iso":  # ISO as configured: meta's own inner loop, else `iso_config`
        how = (meta_iso_config if method.startswith("meta") else iso_config) or adapt.IsoConfig()
    elif variant in adapt.ADAPTATIONS:
        how = variant
    else:  # no adaptation (the trained models, the oracle, truelens)
        return model, {}
    res = adapt.adapt_model(model, adapt_2d, how, iso_config=iso_config,
                            whole_picture=whole_picture)  # fmt: skip
    info = {"accepted": res.accepted, "reason": res.reason, "seconds": res.seconds,
            "whole_picture": whole_picture}  # fmt: skip
    if "lens_adapt" in res.config:  # the fitted lens and the bias it was shifted by
        info.update(fitted_lens=res.config["lens_adapt"]["lens"],
                    k1_offset=res.config["k1_offset"],
                    lens_evidence=res.config["lens_adapt"]["evidence"])  # fmt: skip
    if "bn" in res.config:
        info.update(bn_accepted=res.config["bn"]["accepted"])
    return _with_state(model, res.state_dict), info


_SCORE_KEYS = ("mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm", "upper_mpjpe_mm")


def _scores(p: np.ndarray, t: np.ndarray) -> dict:
    """MPJPE, P-MPJPE, N-MPJPE in mm of predictions p against targets t, (N, 17, 3) metres."""
    return {
        "mpjpe_mm": 1000 * metrics.mpjpe(p, t),
        "p_mpjpe_mm": 1000 * metrics.p_mpjpe(p, t),
        "n_mpjpe_mm": 1000 * metrics.n_mpjpe(p, t),
    }


def _noisy(data, px: np.ndarray, noise_px: float, seed: int, drop_prob: float = 0.0):
    """px (N, 17, 2) with detector-like noise of noise_px (`add_detector_noise`) and each
    joint of each frame dropped (NaN: unseen, as the live pipeline passes it) with drop_prob."""
    if noise_px <= 0 and drop_prob <= 0:
        return px
    from distpose_app.data.synthetic import NoiseConfig, add_detector_noise

    config = NoiseConfig(sigma_px=noise_px, drop_prob=drop_prob,
                         speed_gain=NoiseConfig.speed_gain if noise_px > 0 else 0.0)  # fmt: skip
    noisy, seen = add_detector_noise(np.random.default_rng(seed), px, data.sequence, config)
    noisy[~seen] = np.nan
    return noisy


# --------------------------------------------------------------------------------------------
# The lens table
# --------------------------------------------------------------------------------------------
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
    drop_prob: float = 0.0,
) -> list[dict]:
    """Score every method on imaging string `lens_text` (a lens string, optionally with @pp /
    @hfov); one result dict per method (mm, frames). noise_px > 0 adds detector-like noise to
    the 2D (data.synthetic.add_detector_noise: that sigma, larger on wrists and ankles and on fast
    joints), the same draw for every method. Adapt as the app's (`Imaging.keeps_whole_picture`)."""
    imaging = parse_imaging(lens_text)
    px = _noisy(data, distorted_pixels(data, imaging, input_2d), noise_px, seed, drop_prob)
    seqs = _ranges(data)
    eval_half, adapt_half = seqs[0::2], seqs[1::2]
    if not eval_half or not adapt_half:
        raise DistposeError("evaluation needs at least two sequences (an E and an A half)")
    gt = data.positions_3d - data.positions_3d[..., :1, :]

    # The adaptation buffer: A's first `adapt_seconds` of 2D (and 3D for few-shot).
    budget = int(round(adapt_seconds * data.fps))
    buf_2d: list[np.ndarray] = []
    buf_3d: list[np.ndarray] = []
    for s, a, b in adapt_half:
        take = min(b - a, budget - sum(len(x) for x in buf_2d))
        if take <= 0:
            break
        buf_2d.append(resample(_normalised(data, px, s, a, b)[:take], data.fps, MODEL_FPS))
        buf_3d.append(resample(gt[a : a + take], data.fps, MODEL_FPS))
    adapt_2d, adapt_3d = np.concatenate(buf_2d), np.concatenate(buf_3d)

    eval_idx = np.concatenate([np.arange(a, b) for _, a, b in eval_half])
    observed = [_normalised(data, px, s, a, b) for s, a, b in eval_half]
    ideal = None  # the oracle's input, computed once when a method needs it
    results = []
    for method in methods:
        model = models.get(method_model(method))
        if model is None:
            continue
        model, info = _adapt(method, model, adapt_2d, adapt_3d, iso_config, meta_iso_config,
                             fewshot_k, seed, imaging.keeps_whole_picture(data))  # fmt: skip
        inputs = observed
        if method == "oracle" or method.endswith("+truelens"):
            if ideal is None:
                ideal = [oracle_input(data, px, imaging, s, a, b) for s, a, b in eval_half]
            inputs = ideal
        preds = np.concatenate(lift_many(model, inputs, data.fps))
        results.append({"lens": lens_text, "method": method, **_scores(preds, gt[eval_idx]),
                        "frames": int(len(eval_idx)), **info})  # fmt: skip
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
    """MPJPE (P-MPJPE, N-MPJPE) in mm, lenses as rows and methods as columns."""
    lenses = list(dict.fromkeys(r["lens"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["lens"], r["method"]): r for r in rows}
    lines = ["| lens: MPJPE (P-MPJPE, N-MPJPE) mm | " + " | ".join(methods) + " |",
             "|---" * (len(methods) + 1) + "|"]  # fmt: skip
    for lens in lenses:
        vals = []
        for m in methods:
            r = cell.get((lens, m))
            vals.append(
                f"{r['mpjpe_mm']:.1f} ({r['p_mpjpe_mm']:.1f}, {r['n_mpjpe_mm']:.1f})" if r else "–"
            )
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


# --------------------------------------------------------------------------------------------
# Pose families, with and without masked joints
# --------------------------------------------------------------------------------------------
POSE_FAMILIES = ("standing", "seated", "crouching", "bending_forward", "kneeling")
POSE_MASKS = ("none", "legs", "lower_body")
# Pose-family targets: seated and crouching within 1.3x standing MPJPE; with legs masked, the
# upper body within 1.2x its unmasked error.
FAMILY_RATIO_TARGET = 1.3
MASKED_UPPER_RATIO_TARGET = 1.2


def sequence_families(data) -> np.ndarray:
    """(S,) str: the pose family (`pose_family`) of every sequence, from data.names."""
    from distpose_app.data.synthetic import pose_family

    if data.names is None:
        raise DistposeError("per-family evaluation needs sequence names ('names') in the data")
    return np.array([pose_family(n) for n in np.asarray(data.names)], dtype=object)


def sequence_actions(data) -> np.ndarray:
    """(S,) str: the action of every sequence from names '<subject>/<action> <take>/<camera>'
    (Human3.6M files of `distpose data h36m-external`): 'S8/Walking 1/cam0' -> 'Walking'."""
    from distpose_app.data.h36m_external import sequence_action

    if data.names is None:
        raise DistposeError("per-action evaluation needs sequence names ('names') in the data")
    return np.array([sequence_action(n) for n in np.asarray(data.names)], dtype=object)


GROUP_BY = {"family": sequence_families, "action": sequence_actions}


def evaluate_poses(
    models: dict[str, torch.nn.Module],
    data,
    lens_text: str = "none",
    masks: tuple[str, ...] = POSE_MASKS,
    input_2d: str = "projected",
    noise_px: float = 0.0,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    group_by: str = "family",
) -> list[dict]:
    """Score every model per group of sequences and unseen-joint group on imaging string
    `lens_text`. group_by: "family" (pose families) or "action" (Human3.6M actions).

    masks: "none" and names of `masking.MASK_GROUPS` (NaN in every frame of every sequence).
    Returns one row per (model, mask, group), group "all" (every frame) included, and for
    actions "mean" (the unweighted mean over actions, as Human3.6M tables average): lens, model,
    <group_by> (the group), mask, mpjpe_mm / p_mpjpe_mm / n_mpjpe_mm (17 joints, root-relative;
    P-MPJPE after a per-frame Procrustes alignment), upper_mpjpe_mm (masking.UPPER_BODY joints),
    vs_standing, upper_vs_unmasked (None where the reference is missing), frames, sequences."""
    from distpose_app.data.masking import MASK_GROUPS, UPPER_BODY, apply_mask, group_mask

    masks = tuple(dict.fromkeys(("none", *masks)))
    for m in masks:
        if m != "none" and m not in MASK_GROUPS:
            raise DistposeError(f"unknown mask {m!r}: use none or one of {', '.join(MASK_GROUPS)}")
    if group_by not in GROUP_BY:
        raise DistposeError(f"unknown grouping {group_by!r}: use {' or '.join(GROUP_BY)}")
    fam_of = GROUP_BY[group_by](data)
    px = _noisy(data, distorted_pixels(data, parse_imaging(lens_text), input_2d), noise_px, seed)
    seqs = _ranges(data)
    order = np.concatenate([np.arange(a, b) for _, a, b in seqs])
    gt = (data.positions_3d - data.positions_3d[..., :1, :])[order]
    frame_family = np.concatenate([np.full(b - a, fam_of[s], dtype=object) for s, a, b in seqs])
    seq_family = np.array([fam_of[s] for s, _, _ in seqs], dtype=object)
    present = [f for f in POSE_FAMILIES if f in set(seq_family)]
    families = present + sorted(set(seq_family) - set(present)) + ["all"]
    observed = [_normalised(data, px, s, a, b) for s, a, b in seqs]
    upper = list(UPPER_BODY)

    rows = []
    for name, model in models.items():
        for mask in masks:
            if progress is not None:
                progress(f"{name}, {mask} masked")
            inputs = observed
            if mask != "none":
                inputs = [apply_mask(kp, group_mask(mask, kp.shape[:1])) for kp in observed]
            preds = np.concatenate(lift_many(model, inputs, data.fps))
            mine = []
            for family in families:
                sel = slice(None) if family == "all" else frame_family == family
                p, t = preds[sel], gt[sel]
                mine.append({
                    "lens": lens_text, "model": name, group_by: family, "mask": mask,
                    **_scores(p, t),
                    "upper_mpjpe_mm": 1000 * metrics.mpjpe(p[:, upper], t[:, upper]),
                    "frames": int(len(p)),
                    "sequences": int(len(seq_family) if family == "all"
                                     else (seq_family == family).sum()),
                })  # fmt: skip
            if group_by == "action":
                groups = mine[:-1]
                mean = {k: float(np.mean([r[k] for r in groups])) for k in _SCORE_KEYS}
                mine.append({**mine[-1], group_by: "mean", **mean})
            rows.extend(mine)
    cell = {(r["model"], r[group_by], r["mask"]): r for r in rows}
    for r in rows:
        standing = cell.get((r["model"], "standing", r["mask"]))
        unmasked = cell[(r["model"], r[group_by], "none")]
        r["vs_standing"] = r["mpjpe_mm"] / standing["mpjpe_mm"] if standing else None
        r["upper_vs_unmasked"] = r["upper_mpjpe_mm"] / unmasked["upper_mpjpe_mm"]
    return rows


def pose_targets(rows: list[dict]) -> list[dict]:
    """The pose-family targets per model from `evaluate_poses` rows: the worst of seated and
    crouching MPJPE over standing (unmasked) against FAMILY_RATIO_TARGET, and the worst family's
    upper-body MPJPE with legs masked over unmasked against MASKED_UPPER_RATIO_TARGET (None and
    no verdict where those rows are missing)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model and r["family"] != "all"]
        fam = [
            r["vs_standing"]
            for r in mine
            if r["mask"] == "none"
            and r["family"] in ("seated", "crouching")
            and r["vs_standing"] is not None
        ]
        legs = [r["upper_vs_unmasked"] for r in mine if r["mask"] == "legs"]  # fmt: skip
        worst_fam, worst_legs = max(fam, default=None), max(legs, default=None)
        out.append({
            "model": model,
            "worst_seated_crouching_vs_standing": worst_fam,
            "family_target_met": None if worst_fam is None else worst_fam <= FAMILY_RATIO_TARGET,
            "worst_upper_legs_masked_vs_unmasked": worst_legs,
            "masking_target_met": None if worst_legs is None
            else worst_legs <= MASKED_UPPER_RATIO_TARGET,
        })  # fmt: skip
    return out


def pose_markdown_table(rows: list[dict]) -> str:
    """One line per model and group (family or action): frames, MPJPE (P-MPJPE, N-MPJPE) mm
    unmasked, MPJPE over standing's (families), upper-body MPJPE unmasked and under every other
    mask (with its ratio)."""
    key = "action" if rows and "action" in rows[0] else "family"
    masks = [m for m in dict.fromkeys(r["mask"] for r in rows) if m != "none"]
    cell = {(r["model"], r[key], r["mask"]): r for r in rows}
    head = ["model", key, "frames", "MPJPE (P-, N-MPJPE) mm"]
    head += ["× standing", "upper mm"] if key == "family" else []
    head += [f"upper, {m.replace('_', ' ')} masked (×)" for m in masks]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        if r["mask"] != "none":
            continue
        vs = "–" if r["vs_standing"] is None else f"{r['vs_standing']:.2f}"
        scores = f"{r['mpjpe_mm']:.1f} ({r['p_mpjpe_mm']:.1f}, {r['n_mpjpe_mm']:.1f})"
        vals = [r["model"], r[key], str(r["frames"]), scores]
        vals += [vs, f"{r['upper_mpjpe_mm']:.1f}"] if key == "family" else []
        for m in masks:
            q = cell.get((r["model"], r[key], m))
            vals.append(f"{q['upper_mpjpe_mm']:.1f} ({q['upper_vs_unmasked']:.2f})" if q else "–")
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


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
