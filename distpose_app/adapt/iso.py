"""Test-time adaptation of a lifter to an unknown lens.

- `iso_adapt`: Inference Stage Optimisation (Cho et al., scenario 2): a few gradient steps on
  unlabelled 2D minimising bone-length symmetry + consistency (+ an anchor to the unadapted
  prediction), with a guard that reverts a degenerate or non-improving adaptation.
- `fewshot_adapt`: scenario 1, K labelled frames (a mocap sensor is available): supervised MPJPE.
- `adapt_model`: what the app's Adapt and `distpose process --adapt` run, by name
  (ADAPTATIONS): "lens" (`lens_fit.lens_adapt`: a radial undistortion fitted in front of the
  frozen lifter and accepted only on evidence, returned as the model's `input_lens` buffer),
  "bn" / "weights" (ISO over the batch-norm or all parameters) or "lens+bn".
  DEFAULT_ADAPTATION is the one the evaluation chose (README). `adaptation_message` says in
  plain words what an AdaptResult did.

Both work on a copy: the model passed in is never modified. Batch norm stays in eval mode (the
running statistics of training; one video's statistics are too few and too correlated to
replace them) and dropout is off, so an adaptation step is deterministic.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from distpose_app.adapt import lens_fit
from distpose_app.core import metrics
from distpose_app.core.errors import DistposeError, WeightsError
from distpose_app.lifter import losses
from distpose_app.lifter.inference import edge_padded, lift_sequence
from distpose_app.lifter.model import check_state

#: Fewest frames with a person that Adapt accepts (2 s at 30 fps).
MIN_ADAPT_FRAMES = 60

PARAM_GROUPS = ("bn", "last", "all")


@dataclass
class IsoConfig:
    """ISO settings. Defaults are the measured best of `distpose evaluate` (see README)."""

    steps: int = 20
    lr: float = 1e-4
    params: str = "bn"  # which parameters move: "bn" (batch-norm affine), "last", "all"
    optimizer: str = "adam"  # "adam", or "sgd" (plain steps, as MAML's inner loop takes them)
    crop_frames: int = 32  # output frames per crop
    crops_per_step: int = 8
    symmetry_weight: float = 1.0
    consistency_weight: float = 1.0
    anchor_weight: float = 0.1
    collapse_ratio: float = 0.9  # revert if mean bone length falls below this x the unadapted
    seed: int = 0

    def validate(self) -> None:
        if self.params not in PARAM_GROUPS:
            raise DistposeError(f"unknown parameter group {self.params!r}; use {PARAM_GROUPS}")
        if self.optimizer not in ("adam", "sgd"):
            raise DistposeError(f"unknown optimizer {self.optimizer!r}; use adam or sgd")
        if self.steps < 0 or self.lr <= 0 or self.crop_frames < 1 or self.crops_per_step < 1:
            raise DistposeError("ISO steps must be >= 0, lr > 0, crops >= 1")


@dataclass
class AdaptResult:
    """What an adaptation returns. `state_dict` is the adapted model's (or, when not accepted,
    the unadapted one's); `reason` is "adapted" or, when not accepted, why, in plain words (for
    the user: see `adaptation_message`); `before`/`after` hold pose statistics of the whole
    buffer."""

    state_dict: dict
    accepted: bool
    reason: str
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    config: dict = field(default_factory=dict)
    # The lens fit's evidence (`lens_fit.LensAdaptResult.evidence`: coverage, improvement and
    # its noise, the k1 interval, the skeleton's consistency), {} for other methods.
    evidence: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-able statistics (no weights), for sidecars and logs."""
        out = asdict(self)
        out.pop("state_dict")
        return out


#: Background adaptation settings (see `lower_background_priority`).
BACKGROUND_THREADS = 1
BACKGROUND_NICE = 10


def lower_background_priority(threads: int = BACKGROUND_THREADS, nice: int = BACKGROUND_NICE):
    """Call first thing on a thread that adapts beside a live pipeline: `threads` torch threads
    for this thread (OpenMP keeps the setting per thread) and `nice` more niceness for it (its
    OpenMP workers inherit it). On 2 cores this kept the live frame rate at 0.87 of normal
    during back-to-back adaptations instead of 0.63 (`distpose bench`); one adaptation then takes
    about 3 s instead of 0.8 s. Failing to renice (not Linux, no permission) is harmless."""
    import os
    import threading

    if threads:
        torch.set_num_threads(threads)
    if nice:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except (AttributeError, OSError):
            pass


def release_freed_memory() -> None:
    """Hand freed heap memory back to the OS (glibc's malloc_trim; a no-op elsewhere). Each
    background adaptation runs on a new thread whose malloc arena keeps what it freed: over a
    20-minute soak with 20 adaptations the process grew by 192 MB without this and by 26 MB
    with it (scripts/soak.py). Call it when an adaptation or a long export has finished."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def select_parameters(model: torch.nn.Module, group: str) -> list[torch.nn.Parameter]:
    """The parameters that adapt: batch-norm affine ("bn"), the output layer ("last"), "all"."""
    if group == "all":
        return list(model.parameters())
    if group == "bn":
        return [
            p
            for m in model.modules()
            if isinstance(m, torch.nn.BatchNorm1d)
            for p in (m.weight, m.bias)
            if p is not None
        ]
    if group == "last":
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
        return list(convs[-1].parameters())
    raise DistposeError(f"unknown parameter group {group!r}; use {PARAM_GROUPS}")


def pose_statistics(poses: np.ndarray) -> dict:
    """Label-free statistics of lifted poses (T, 17, 3) metres: symmetry and consistency in mm,
    consistency as a percentage of bone length, and the mean bone length in mm."""
    from distpose_app.core.skeleton import bone_lengths

    return {
        "symmetry_mm": 1000 * metrics.bone_symmetry_error(poses),
        "consistency_mm": 1000 * metrics.bone_consistency(poses),
        "consistency_pct": 100 * metrics.bone_consistency_ratio(poses),
        "mean_bone_mm": 1000 * float(np.mean(bone_lengths(poses))),
    }


def _crops(x: torch.Tensor, rf: int, crop_frames: int, count: int, rng: np.random.Generator):
    """`count` random windows (count, rf - 1 + crop_frames, 17, 2) of x (T, 17, 2)."""
    length = min(rf - 1 + crop_frames, x.shape[0])
    starts = rng.integers(0, x.shape[0] - length + 1, size=count)
    return torch.stack([x[s : s + length] for s in starts])


def _frozen_copy(model: torch.nn.Module, group: str) -> tuple[torch.nn.Module, list]:
    adapted = copy.deepcopy(model)
    adapted.eval()
    for p in adapted.parameters():
        p.requires_grad_(False)
    params = select_parameters(adapted, group)
    for p in params:
        p.requires_grad_(True)
    return adapted, params


def iso_adapt(
    model: torch.nn.Module,
    keypoints_2d: np.ndarray,
    config: IsoConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> AdaptResult:
    """Adapt `model` to the lens behind `keypoints_2d` with the paper's self-supervised losses.

    keypoints_2d: (T, 17, 2) normalised screen coordinates of frames with a person (T >=
    MIN_ADAPT_FRAMES and >= the receptive field). Returns an AdaptResult; the guard rejects the
    adaptation (accepted=False, the unadapted weights returned) when the loss did not fall, the
    bones collapsed (mean length below `collapse_ratio` x the unadapted), or anything became
    non-finite. `should_cancel()` is polled every step; cancelling returns the unadapted weights.
    """
    config = config or IsoConfig()
    config.validate()
    start = time.perf_counter()
    kp = np.asarray(keypoints_2d, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (17, 2):
        raise DistposeError(f"keypoints must have shape (T, 17, 2), got {kp.shape}")
    kp = kp[np.isfinite(kp).all(-1).any(-1)]  # unseen joints (NaN) are the lifter's business
    rf = model.receptive_field
    needed = max(MIN_ADAPT_FRAMES, rf)
    if kp.shape[0] < needed:
        raise DistposeError(
            f"too few frames with a person to adapt: {kp.shape[0]} (need at least {needed})"
        )
    original_state = copy.deepcopy(model.state_dict())
    device = next(model.parameters()).device
    base_poses = lift_sequence(model, kp)
    before = pose_statistics(base_poses)

    adapted, params = _frozen_copy(model, config.params)
    opt_class = torch.optim.Adam if config.optimizer == "adam" else torch.optim.SGD
    optimiser = opt_class(params, lr=config.lr)
    rng = np.random.default_rng(config.seed)
    x = torch.as_tensor(kp, device=device)
    # Fixed crops for the acceptance test, so "did the loss fall" compares like with like.
    eval_crops = _crops(x, rf, config.crop_frames, config.crops_per_step, rng)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        eval_anchor = model(eval_crops)

    def loss_on(crops: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        return losses.iso_loss(
            adapted(crops),
            anchor,
            config.symmetry_weight,
            config.consistency_weight,
            config.anchor_weight,
        )

    with torch.no_grad():
        loss_before = float(loss_on(eval_crops, eval_anchor))

    def rejected(reason: str, steps: int) -> AdaptResult:
        return AdaptResult(
            original_state, False, reason, before, before, steps,
            time.perf_counter() - start, asdict(config),
        )  # fmt: skip

    for step in range(config.steps):
        if should_cancel is not None and should_cancel():
            return rejected("cancelled", step)
        crops = _crops(x, rf, config.crop_frames, config.crops_per_step, rng)
        with torch.no_grad():
            anchor = model(crops) if config.anchor_weight > 0 else None
        optimiser.zero_grad(set_to_none=True)
        loss = loss_on(crops, anchor)
        if not torch.isfinite(loss):
            return rejected("the loss became non-finite", step)
        loss.backward()
        optimiser.step()
        if progress is not None:
            progress(step + 1, config.steps)

    with torch.no_grad():
        loss_after = float(loss_on(eval_crops, eval_anchor))
    model.train(was_training)
    for p in adapted.parameters():
        p.requires_grad_(False)
    poses = lift_sequence(adapted, kp)
    after = pose_statistics(poses)
    if not np.isfinite(poses).all() or not np.isfinite(loss_after):
        return rejected("the adapted output is not finite", config.steps)
    if after["mean_bone_mm"] < config.collapse_ratio * before["mean_bone_mm"]:
        return rejected(
            f"degenerate: bones shrank from {before['mean_bone_mm']:.0f} to "
            f"{after['mean_bone_mm']:.0f} mm on average",
            config.steps,
        )
    if config.steps > 0 and not loss_after < loss_before:
        return rejected(
            f"the self-supervised loss did not fall ({1000 * loss_before:.2f} -> "
            f"{1000 * loss_after:.2f} mm)",
            config.steps,
        )
    after["loss_before_mm"] = 1000 * loss_before
    after["loss_after_mm"] = 1000 * loss_after
    return AdaptResult(
        copy.deepcopy(adapted.state_dict()),
        True,
        "adapted",
        before,
        after,
        config.steps,
        time.perf_counter() - start,
        asdict(config),
    )


def fewshot_adapt(
    model: torch.nn.Module,
    keypoints_2d: np.ndarray,
    positions_3d: np.ndarray,
    labelled: np.ndarray,
    steps: int = 30,
    lr: float = 1e-3,
    params: str = "bn",
    holdout_every: int = 5,
    seed: int = 0,
) -> AdaptResult:
    """Scenario 1: supervised adaptation from K labelled frames under the same lens.

    keypoints_2d (T, 17, 2) normalised screen coordinates; positions_3d (T, 17, 3) metres
    root-relative (only rows in `labelled` are read); labelled (K,) frame indices. Each step
    fits every labelled frame (its receptive-field window, edge-padded, as input) except every
    `holdout_every`-th, which is held out: the adaptation is accepted only if the held-out error
    falls, since with K ~ 50 frames the fit alone says nothing about overfitting (measured: all
    weights at lr 1e-4 for 50 steps fit the labels and raised the test MPJPE by 50%).
    """
    start = time.perf_counter()
    rf = model.receptive_field
    padded = edge_padded(model, torch.as_tensor(np.asarray(keypoints_2d, np.float32)))
    idx = np.asarray(labelled, dtype=int)
    if idx.size == 0:
        raise DistposeError("few-shot adaptation needs at least one labelled frame")
    windows = torch.stack([padded[i : i + rf] for i in idx])
    target = torch.as_tensor(np.asarray(positions_3d, np.float32)[idx])[:, None]
    held = np.zeros(len(idx), bool)
    if holdout_every > 1 and len(idx) >= 2 * holdout_every:
        held[holdout_every - 1 :: holdout_every] = True
    fit = ~held if held.any() else np.ones(len(idx), bool)
    check = held if held.any() else fit
    adapted, trainable = _frozen_copy(model, params)
    optimiser = torch.optim.Adam(trainable, lr=lr)
    torch.manual_seed(seed)

    def error(mask) -> float:
        with torch.no_grad():
            return float(losses.mpjpe_loss(adapted(windows[mask]), target[mask]))

    check_before = error(check)
    for _ in range(steps):
        optimiser.zero_grad(set_to_none=True)
        loss = losses.mpjpe_loss(adapted(windows[fit]), target[fit])
        loss.backward()
        optimiser.step()
    check_after = error(check)
    accepted = bool(np.isfinite(check_after) and check_after < check_before)
    state = copy.deepcopy((adapted if accepted else model).state_dict())
    before = {"check_mpjpe_mm": 1000 * check_before, "check_frames": int(check.sum())}
    after = {"check_mpjpe_mm": 1000 * check_after, "fit_frames": int(fit.sum())}
    reason = "adapted" if accepted else "the held-out labelled error did not fall"
    return AdaptResult(state, accepted, reason, before, after, steps, time.perf_counter() - start)


ADAPTATIONS = ("lens", "bn", "weights", "lens+bn")
# The evaluation's choice (README, "Adaptation"): the only one that closes most of the gap on
# lenses beyond the training sampler without costing anything on lenses inside it.
DEFAULT_ADAPTATION = "lens"


def adapt_model(
    model: torch.nn.Module,
    keypoints_2d: np.ndarray,
    method: str | IsoConfig | None = DEFAULT_ADAPTATION,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    iso_config: IsoConfig | None = None,
    pictures=None,
    whole_picture: bool = False,
) -> AdaptResult:
    """Adapt `model` to the buffer with one of ADAPTATIONS; same contract as `iso_adapt`.
    method: a name, None (DEFAULT_ADAPTATION) or an IsoConfig (weight-space ISO with it).
    iso_config: ISO's settings for "bn", "weights" and "lens+bn" (default IsoConfig()); its
    parameter group is the method's. pictures: optional frames of the camera's picture for the
    lens methods (`lens_fit.lens_adapt`: their straight edges measure the lens). whole_picture:
    the 2D comes from a camera's whole picture (a live camera, the Demo), whose centre is the
    lens's, so the lens fit does not weigh shifts of the centre (a cropped or pasted video's).

    keypoints_2d (T, 17, 2) normalised screen coordinates as observed (NaN = unseen). The model
    is not modified; the result's state_dict is the whole adapted state (for "lens": the
    model's weights with `input_lens` set to the fitted undistortion), the unadapted state
    when not accepted. A lens already in the model is discarded first: the buffer is raw 2D.
    """
    if isinstance(method, IsoConfig):
        return iso_adapt(model, keypoints_2d, method, progress, should_cancel)
    method = DEFAULT_ADAPTATION if method is None else method
    if method not in ADAPTATIONS:
        raise DistposeError(f"unknown adaptation {method!r}: choose from {ADAPTATIONS}")
    start = time.perf_counter()
    iso = iso_config or IsoConfig()  # its settings; the method decides the parameter group
    if method in ("bn", "weights"):
        config = replace(iso, params="all" if method == "weights" else "bn")
        return iso_adapt(model, keypoints_2d, config, progress, should_cancel)
    unadapted = copy.deepcopy(model.state_dict())
    work = copy.deepcopy(model)
    work.input_lens.zero_()
    kp = np.asarray(keypoints_2d, np.float32)
    config = lens_fit.LensAdaptConfig.for_model(model)
    if whole_picture:
        config = replace(config, centre_shifts=())
    fitted = lens_fit.lens_adapt(work, kp, config, cancel=should_cancel, progress=progress,
                                 pictures=pictures)  # fmt: skip
    before = pose_statistics(lift_sequence(work, kp))
    info = {"method": method, "lens_adapt": fitted.summary(), "k1_offset": config.k1_offset}
    if not fitted.accepted:
        return AdaptResult(unadapted, False, fitted.reason, before, before, fitted.steps,
                           time.perf_counter() - start, info, fitted.evidence)  # fmt: skip
    with torch.no_grad():
        work.input_lens.copy_(fitted.lens.params_tensor())
    reason = "adapted"
    if method == "lens+bn":
        res = iso_adapt(work, kp, replace(iso, params="bn"), None, should_cancel)
        work.load_state_dict(res.state_dict)
        info["bn"] = {"accepted": res.accepted, "reason": res.reason}
        reason = f"lens adapted; batch norm {res.reason}"
    after = pose_statistics(lift_sequence(work, kp))
    return AdaptResult(copy.deepcopy(work.state_dict()), True, reason, before, after,
                       fitted.steps, time.perf_counter() - start, info,
                       fitted.evidence)  # fmt: skip


def adaptation_message(result: AdaptResult) -> str:
    """One plain line for the user (the app's status, `distpose process`'s log): what Adapt
    did, the fitted lens, and how much of the picture the person covered (a lens shows only
    away from the middle), or why nothing was changed."""
    lens = result.config.get("lens_adapt", {}).get("lens", {}) if result.config else {}
    cover = result.evidence.get("coverage") if result.evidence else None
    seen = (f"; the person reached {100 * cover['reach']:.0f}% of the way to the sides and "
            f"{100 * cover['area']:.0f}% of the picture" if cover else "")  # fmt: skip
    if result.accepted:
        what = f"lens k1 {lens['k1']:+.2f}" if lens else "weights adapted"
        return f"adapted: {what} ({result.reason}, {result.seconds:.1f} s){seen}"
    return f"not adapted, nothing changed: {result.reason}{seen}"


def load_saved_adaptation(path, model: torch.nn.Module) -> tuple[dict | None, str | None]:
    """A saved per-camera adaptation for `model`, or (None, warning) when it no longer loads.

    path: a torch file holding a state_dict, or {"state_dict": ...} (what the window saves).
    Returns (state_dict, None) when every tensor is finite and it fits `model` exactly (same
    keys and shapes); (None, None) when there is no such file; (None, one-line warning naming
    the file and the problem) otherwise: a stale adaptation is ignored, never fatal. `model`
    is not modified.
    """
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        return None, None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged zip, pickle, truncated file: torch raises many types
        return None, f"saved adaptation {path} ignored: unreadable ({type(exc).__name__})"
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        return None, f"saved adaptation {path} ignored: not a weights file"
    expected = model.state_dict()
    if "input_lens" in expected and "input_lens" not in state:  # saved before the input lens
        state = {**state, "input_lens": torch.zeros_like(expected["input_lens"])}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        which = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        return None, f"saved adaptation {path} ignored: made for another model ({which})"
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            shapes = f"{key} is {tuple(state[key].shape)}, the model has {tuple(value.shape)}"
            return None, f"saved adaptation {path} ignored: made for another model ({shapes})"
        if state[key].is_floating_point() and not torch.isfinite(state[key]).all():
            return None, f"saved adaptation {path} ignored: non-finite weights ({key})"
    try:
        check_state(state, f"saved adaptation {path} ignored")  # e.g. an absurd input lens
    except WeightsError as exc:
        return None, str(exc)
    return {k: v.to(expected[k].device, expected[k].dtype) for k, v in state.items()}, None
