"""The live pipeline without Qt: 2D keypoints (detected, or given by the demo) → cleaned, optionally
undistorted, normalised → the streaming lifter → a 3D pose, with per-stage timing, a buffer of
recent 2D for Adapt, adapted-weight swapping, and recording for export.

Used by the GUI's live thread (through `feed.LiveFeed`), `distpose process`, benchmarks and soak
tests. Everything here runs on the caller's thread; only `CaptureThread` (capture.py) has its own.
Which joints are seen and which frames tracked: tracking.py. Recording: recorder.py. Timing:
stats.py. The lifter's frame rate and the root's place in camera space: motion.py.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from distpose_app.core.errors import DistposeError, WeightsError
from distpose_app.core.skeleton import NUM_JOINTS
from distpose_app.lens.models import Intrinsics, Lens, undistort_pixels
from distpose_app.lens.plumb_line import PictureSampler
from distpose_app.lens.screen import normalize_screen_coordinates
from distpose_app.live.capture import Frame
from distpose_app.live.motion import LifterClock, RootTracker
from distpose_app.live.recorder import Recorder
from distpose_app.live.stats import StageStats
from distpose_app.live.tracking import (
    SEEN_CONFIDENCE,
    fill_dropouts,
    is_tracked,
    plausible_pose,
    seen_with_hysteresis,
)


@dataclass
class FrameResult:
    """What the pipeline returns for one input frame.

    index, timestamp_s: the input frame's number and time (s). image: its picture (BGR uint8) or
    None. keypoints_2d: (17, 2) pixels as detected in the (distorted) image, NaN where missing,
    or None when no person was found; confidence: (17,) in [0, 1] (zeros where not seen). seen:
    (17,) bool, the joints given to the lifter (see tracking.py). tracked: a person was
    found in this input frame (the tracking rule holds).

    pose_3d: (17, 3) float metres, camera axes (x right, y down, z forward), root-relative (joint
    0 at the origin); finite or None (no pose yet: lifter warming up or a long gap). It is the
    pose of frame pose_index at pose_timestamp_s, which trails the input by the lifter's
    lookahead (0 frames for a causal model). pose_tracked: that frame had a person (False: a
    held pose during a short gap). pose_confidence: (17,) its 2D confidence. pose_seen: (17,)
    bool, the joints seen in that frame (False: the lifter guessed the joint from the others);
    for a held pose, those of the frame held.
    The lifter runs at lifter.MODEL_FPS: inputs at another rate are resampled (motion.py), so a
    pose frame's timestamp is a time on the lifter's grid (the input's own at 30 fps); an input
    that completes no grid time repeats the last pose (not recorded again).
    root_3d: (3,) metres, camera axes: where the pose's root is, from the pose and its 2D
    (export.trajectory), unsmoothed (what is recorded: the exporter smooths it with look-ahead),
    or None; root_smoothed_3d: the same smoothed without look-ahead, for display.
    pose_rays: (17, 2) image rays (x/z, y/z) of the 2D the pose was lifted from, NaN unseen.
    truth_3d: (17, 3) metres, ground truth of the pose frame (demo source), else None;
    mpjpe_mm: root-relative MPJPE of pose_3d against it, mm; unadapted_mpjpe_mm: while adapted
    weights are in use, the same for the weights the pipeline was built with, lifted from the
    same 2D alongside (so the two compare on the same frames), else None; error_readout: the
    steady text a LiveFeed sets from them (`demo.ErrorReadout`), "" without truth. world_3d:
    MediaPipe's own 3D of the input frame (detect.Detection.world_3d) or None. timings: seconds
    spent per stage on this frame ("capture" = time the frame waited before processing,
    "mediapipe", "lifter").
    """

    index: int
    timestamp_s: float
    image: np.ndarray | None = None
    keypoints_2d: np.ndarray | None = None
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(NUM_JOINTS))
    tracked: bool = False
    seen: np.ndarray = field(default_factory=lambda: np.zeros(NUM_JOINTS, bool))
    pose_3d: np.ndarray | None = None
    pose_index: int = -1
    pose_timestamp_s: float = float("nan")
    pose_tracked: bool = False
    pose_confidence: np.ndarray = field(default_factory=lambda: np.zeros(NUM_JOINTS))
    pose_seen: np.ndarray = field(default_factory=lambda: np.zeros(NUM_JOINTS, bool))
    root_3d: np.ndarray | None = None
    root_smoothed_3d: np.ndarray | None = None
    pose_rays: np.ndarray | None = None
    truth_3d: np.ndarray | None = None
    mpjpe_mm: float | None = None
    unadapted_mpjpe_mm: float | None = None
    error_readout: str = ""
    world_3d: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)


class AdaptTicket:
    """One background adaptation: `model` (a private copy) and `keypoints_2d` (T, 17, 2) the
    Adapt buffer it adapts on, for stream `stream_id`, and `pictures`, frames of the camera's
    picture over that span (empty when none: the demo, a known lens). `whole_picture`: the
    source gives a camera's whole picture (a camera, the demo; set by the app), not a video
    that may be cropped. `should_cancel()` is what iso_adapt polls; cancel(reason) is
    thread-safe."""

    def __init__(self, ticket_id: int, stream_id: int, model, keypoints_2d: np.ndarray,
                 pictures: list | None = None):  # fmt: skip
        self.id, self.stream_id = ticket_id, stream_id
        self.model, self.keypoints_2d = model, keypoints_2d
        self.pictures = pictures or []  # frames of the picture: its straight edges show a lens
        self.whole_picture = False
        self.reason = ""
        self._cancel = threading.Event()

    def cancel(self, reason: str = "cancelled") -> None:
        if not self._cancel.is_set():
            self.reason = reason
            self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def should_cancel(self) -> bool:
        return self._cancel.is_set()


@dataclass
class _Pending:
    """Per-push bookkeeping, paired with the lifter's output `output_lag` pushes later."""

    index: int
    timestamp_s: float
    tracked: bool
    confidence: np.ndarray
    seen: np.ndarray
    truth_3d: np.ndarray | None
    rays: np.ndarray | None = None  # (17, 2) image rays of the 2D, NaN unseen


class LivePipeline:
    """Lifts a stream of frames or 2D keypoints to 3D poses. Not thread-safe: call it from one
    thread (the GUI queues its commands onto the live thread).

    model: a TemporalModel (distpose_app.lifter.model), moved to `device` ("auto", "cpu", "cuda");
    the weights passed in are kept as the unadapted ones for `revert()`. The pipeline uses this
    object in place: an accepted adaptation is loaded into it, so a caller that lifts several
    inputs with one model object gives each pipeline its own copy (copy.deepcopy).
    size: (width, height) pixels of the frames; None takes it from intrinsics or the first frame.
    intrinsics, known_lens: a known lens undistorts the 2D before lifting (intrinsics default
    to Intrinsics.from_hfov(hfov_deg, width, height)); None leaves the 2D as seen (the lens is
    then unknown and Adapt is the remedy).
    detector: something with detect(image_bgr) -> Detection | None; built (MediaPipe, tracking
    mode) on the first frame that has no keypoints of its own.
    pad_start: after a (re)start, pretend the past repeated the first frame (VideoPose3D's edge
    padding) so a pose comes at once instead of after a receptive field of frames.
    hold_frames: longest gap (frames) bridged by feeding the last 2D again.
    buffer_frames: how many recent tracked frames of normalised 2D `adapt_buffer()` keeps.
    margin, seen_confidence: a joint is seen inside the image enlarged by `margin` (fraction of
    width and height) with a confidence of at least `seen_confidence`, or of at least
    tracking.LOST_CONFIDENCE when it was seen in the previous frame or the segment starts
    (hysteresis, see tracking.py).
    recorder: a Recorder to record into (default: a new one); pass the old pipeline's to keep a
    take going across pipelines.

    Streams and adaptations: `stream_id` changes whenever the 2D stream changes meaning (reset,
    new source, new lens); an adaptation begun with `begin_adaptation()` is only applied by
    `finish_adaptation()` if the stream is still the one it was computed for. After adapted
    weights are applied, a pose that comes out non-finite or absurd (> tracking.MAX_POSE_M)
    reverts them at once; `warnings` collects such events for the window (`take_warnings()`).
    """

    def __init__(
        self,
        model,
        device: str = "auto",
        size: tuple[int, int] | None = None,
        intrinsics: Intrinsics | None = None,
        known_lens: Lens | None = None,
        hfov_deg: float = 70.0,
        detector=None,
        pad_start: bool = True,
        hold_frames: int = 5,
        buffer_frames: int = 900,
        margin: float = 0.1,
        recorder: Recorder | None = None,
        seen_confidence: float = SEEN_CONFIDENCE,
    ):
        from distpose_app.lifter.model import StreamingLifter, resolve_device

        self.device = resolve_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self._original_state = copy.deepcopy(self.model.state_dict())
        self.is_adapted = False
        self.lifter = StreamingLifter(self.model, self.device)
        self.hfov_deg = hfov_deg
        self.size = tuple(size) if size is not None else None
        if self.size is None and intrinsics is not None:
            self.size = (intrinsics.width, intrinsics.height)
        self.intrinsics = intrinsics
        self.known_lens = known_lens
        self.detector = detector
        self._own_detector = False
        self.pad_start = pad_start
        self.hold_frames = hold_frames
        self.margin = margin
        self.seen_confidence = seen_confidence
        self.stats = StageStats()
        self.recorder = recorder if recorder is not None else Recorder()
        self.stream_id = 0
        self.warnings: list[str] = []
        self._previous_state: tuple | None = None  # (weights, is_adapted) before set_model_state
        self._adaptation: AdaptTicket | None = None  # the one running, if any
        self._tickets = 0
        self._intrinsics_given = intrinsics is not None
        self._adapt_2d: deque[np.ndarray] = deque(maxlen=buffer_frames)
        # a few frames of the picture over the buffer's span, for Adapt's straight-edge check
        self.pictures = PictureSampler(keep=8, every=max(1, buffer_frames // 8))
        self._recent: deque[np.ndarray] = deque(maxlen=self.lifter.receptive_field)
        self._pending: deque[_Pending] = deque(maxlen=self.lifter.receptive_field)
        self._last_px: np.ndarray | None = None  # each joint's last seen position, pixels
        self._frames_unseen = np.zeros(NUM_JOINTS, int)  # frames since each joint was seen
        self._last_norm: np.ndarray | None = None  # last lifter input
        self._last_seen = np.zeros(NUM_JOINTS, bool)  # its seen flags
        self._gap = 0  # consecutive untracked frames
        self._started = False  # the lifter has history since the last reset
        self.clock = LifterClock()  # inputs -> the lifter's frame rate
        self.root_tracker = RootTracker()
        self._shown: FrameResult | None = None  # the last pose, repeated between grid times
        # While adapted and the frames carry ground truth (the demo): the unadapted weights
        # lifting the same 2D, for the error readout's comparison (unadapted_mpjpe_mm).
        self._unadapted_lifter = None
        self._unadapted_pose: np.ndarray | None = None
        self._index = 0
        self.frames_processed = 0
        self.frames_tracked = 0
        if self.size is not None:
            self._check_intrinsics()

    # -- configuration ------------------------------------------------------------------------
    @property
    def receptive_field(self) -> int:
        return self.lifter.receptive_field

    @property
    def output_lag(self) -> int:
        """Frames by which pose_3d trails the input (the model's lookahead)."""
        return self.lifter.output_lag

    def _check_intrinsics(self) -> None:
        if self.known_lens is None:
            return
        width, height = self.size
        if self.intrinsics is None:
            self.intrinsics = Intrinsics.from_hfov(self.hfov_deg, width, height)
        elif (self.intrinsics.width, self.intrinsics.height) != (width, height):
            raise DistposeError(
                f"the lens calibration is for {self.intrinsics.width}x{self.intrinsics.height} "
                f"images but the frames are {width}x{height}"
            )

    def set_known_lens(self, lens: Lens | None, intrinsics: Intrinsics | None = None) -> None:
        """Undistort with `lens` from now on (None: unknown lens, no undistortion). The lifter
        and the Adapt buffer restart, since the 2D they hold was prepared differently."""
        self.known_lens, self.intrinsics = lens, intrinsics
        self._intrinsics_given = intrinsics is not None
        if self.size is not None:
            self._check_intrinsics()
        self.reset()

    def reset(self) -> None:
        """Forget the stream (new source or lens): lifter history, gap state, Adapt buffer. A
        running adaptation (computed on the old buffer) is cancelled; stream_id changes."""
        self.stream_id += 1
        self.cancel_adaptation("the source or lens changed")
        self._restart_lifter()
        self._adapt_2d.clear()
        self.pictures.clear()
        self._last_px = None
        self._last_norm = None
        self._gap = 0

    def begin_stream(self, size: tuple[int, int] | None = None) -> None:
        """A new source (another camera, a reconnected one): the poses still owed are recorded,
        then the stream is forgotten (see reset) including its image size (None: taken from the
        next frame; a lens calibration given explicitly keeps its own), and the recorder
        continues after a gap. Weights, adapted or not, are kept."""
        self.flush()
        if not self._intrinsics_given:
            self.intrinsics = None
        self.size = tuple(size) if size is not None else None
        if self.size is None and self._intrinsics_given and self.intrinsics is not None:
            self.size = (self.intrinsics.width, self.intrinsics.height)
        if self.size is not None:
            self._check_intrinsics()
        self.reset()
        self.recorder.new_segment()

    def _restart_lifter(self) -> None:
        self.lifter.reset()
        if self._unadapted_lifter is not None:
            self._unadapted_lifter.reset()
        self._pending.clear()
        self._recent.clear()
        self._started = False
        self.clock.reset()
        self.root_tracker.reset()
        self._shown = None

    # -- weights ------------------------------------------------------------------------------
    def set_model_state(self, state_dict: dict) -> None:
        """Use adapted weights (e.g. AdaptResult.state_dict) from the next frame on. The
        lifter is refilled with the recent frames, so the pose does not blink out. Weights that
        are non-finite or do not fit the model raise WeightsError and leave the current ones."""
        import torch

        from distpose_app.lifter.model import check_state

        bad = [k for k, v in state_dict.items() if torch.is_tensor(v) and not v.isfinite().all()]
        if bad:
            raise WeightsError(f"adapted weights are not finite ({bad[0]}); previous weights kept")
        check_state(state_dict, "adapted weights")  # also an input lens out of range
        previous = copy.deepcopy(self.model.state_dict())
        try:
            self.model.load_state_dict(state_dict)
        except (RuntimeError, KeyError, TypeError) as exc:
            self.model.load_state_dict(previous)
            detail = " ".join(str(exc).split())[:200]
            raise WeightsError(f"adapted weights do not fit the model: {detail}") from None
        self._previous_state = (previous, self.is_adapted)
        self.model.eval()
        self.is_adapted = True
        self._refresh_lifter()
        self._unadapted_lifter = None  # rebuilt, with the recent history, on the next frame

    def _compare_unadapted(self):
        """The lifter with the original weights, fed the recent frames (None when not adapted)."""
        from distpose_app.lifter.model import StreamingLifter

        if not self.is_adapted:
            self._unadapted_lifter = None
        elif self._unadapted_lifter is None:
            self._unadapted_lifter = StreamingLifter(self.model_copy(original=True), self.device)
            for norm in self._recent:
                self._unadapted_lifter.push(norm)
        return self._unadapted_lifter

    def revert(self) -> None:
        """Back to the weights the pipeline was built with."""
        self.model.load_state_dict(self._original_state)
        self.is_adapted = False
        self._previous_state = None
        self._unadapted_lifter = None
        self._refresh_lifter()

    def take_warnings(self) -> list[str]:
        """The warnings since the last call (auto-reverted adaptations...), oldest first."""
        out, self.warnings = self.warnings, []
        return out

    def _diverged(self) -> None:
        """Adapted weights gave a non-finite or absurd pose: back to the weights before them."""
        state, adapted = self._previous_state or (self._original_state, False)
        self.model.load_state_dict(state)
        self.is_adapted = adapted
        self._previous_state = None
        self.warnings.append("the adapted weights diverged (non-finite or absurd poses): reverted")
        self._refresh_lifter()

    # -- adaptation bookkeeping ----------------------------------------------------------------
    def begin_adaptation(self) -> AdaptTicket:
        """Snapshot for a background adaptation: a private model copy and the Adapt buffer,
        tagged with this stream. Raises DistposeError while another one is running (pressing
        Adapt twice); pass the ticket's should_cancel to iso_adapt and the result to
        finish_adaptation() on this (the live) thread."""
        if self._adaptation is not None and not self._adaptation.cancelled:
            raise DistposeError("an adaptation is already running: wait for it or cancel it")
        self._tickets += 1
        ticket = AdaptTicket(self._tickets, self.stream_id, self.model_copy(), self.adapt_buffer(),
                             self.pictures.pictures())  # fmt: skip
        self._adaptation = ticket
        return ticket

    def cancel_adaptation(self, reason: str = "cancelled") -> None:
        """Cancel the running adaptation (its result will be refused); no-op when none."""
        if self._adaptation is not None:
            self._adaptation.cancel(reason)
            self._adaptation = None

    def finish_adaptation(self, ticket: AdaptTicket, result) -> tuple[bool, str]:
        """Apply an AdaptResult computed for `ticket` if it still may be -> (applied, message).
        Refused, with the current weights kept, when it was cancelled, superseded, computed for
        a stream that has since changed, rejected by the adaptation's guard, None (the
        adaptation failed), or its weights do not load."""
        current = self._adaptation is ticket
        if current:
            self._adaptation = None
        if ticket.cancelled:
            why = "" if ticket.reason == "cancelled" else f" ({ticket.reason})"
            return False, f"adaptation cancelled{why}: previous weights kept"
        if not current:
            return False, "a newer adaptation replaced this one: previous weights kept"
        if ticket.stream_id != self.stream_id:
            return False, "the source changed while adapting: result discarded"
        if result is None:
            return False, "the adaptation failed: previous weights kept"
        if not result.accepted:  # the reason in plain words, e.g. the person stayed central
            return False, f"adaptation rejected: {result.reason}; previous weights kept"
        try:
            self.set_model_state(result.state_dict)
        except DistposeError as exc:
            return False, str(exc)
        return True, "adapted"

    def model_copy(self, original: bool = False):
        """A deep copy of the current (or original) model on the pipeline's device, for a
        background adaptation that must not touch the live weights."""
        model = copy.deepcopy(self.model)
        if original:
            model.load_state_dict(self._original_state)
        return model.eval()

    def _refresh_lifter(self) -> None:
        recent = list(self._recent)
        self.lifter.refresh()
        self._recent.clear()
        for norm in recent:  # replay: the history (and output timing) carries over
            self.lifter.push(norm)
            self._recent.append(norm)

    @property
    def buffer_frames(self) -> int:
        """How many frames adapt_buffer() would return (cheap, for a status display)."""
        return len(self._adapt_2d)

    def adapt_buffer(self) -> np.ndarray:
        """(T, 17, 2) float32 normalised screen coordinates (as fed to the lifter: undistorted
        when a lens is known, NaN for unseen joints) of the last T tracked frames, oldest
        first, for iso_adapt."""
        if not self._adapt_2d:
            return np.zeros((0, NUM_JOINTS, 2), np.float32)
        return np.stack(self._adapt_2d).astype(np.float32)

    # -- processing ---------------------------------------------------------------------------
    def process_frame(self, frame: Frame, captured_at: float | None = None) -> FrameResult:
        """Detect (unless the frame carries keypoints, as the demo's do) and lift one frame.
        captured_at: time.monotonic() when the frame arrived, for the capture latency (default:
        frame.received_s, which CaptureThread sets)."""
        start = time.monotonic()
        captured_at = frame.received_s if captured_at is None else captured_at
        height, width = frame.image.shape[:2]
        if self.size is None:
            self.size = (width, height)
            self._check_intrinsics()
        elif self.size != (width, height):
            raise DistposeError(
                f"frame {frame.index} is {width}x{height}, the stream was {self.size[0]}x"
                f"{self.size[1]}"
            )
        timings = {}
        if captured_at is not None:
            timings["capture"] = max(start - captured_at, 0.0)
            self.stats.add("capture", timings["capture"], start)
        world = None
        if frame.keypoints_2d is not None:
            kp, conf = frame.keypoints_2d, frame.confidence
        else:
            if self.known_lens is None:  # a known lens is undone already: nothing to measure
                self.pictures.offer(frame.image)
            if self.detector is None:
                from distpose_app.live.detect import PoseDetector

                self.detector = PoseDetector(static_image_mode=False)
                self._own_detector = True
            t = time.monotonic()
            detection = self.detector.detect(frame.image)
            timings["mediapipe"] = time.monotonic() - t
            self.stats.add("mediapipe", timings["mediapipe"])
            kp = conf = None
            if detection is not None:
                kp, conf, world = detection.keypoints_2d, detection.confidence, detection.world_3d
        result = self.process_keypoints(
            kp, conf, frame.timestamp_s, frame.index, frame.truth_3d, timings=timings
        )
        result.image = frame.image
        result.world_3d = world
        return result

    def process_keypoints(
        self,
        keypoints_px: np.ndarray | None,
        confidence: np.ndarray | None = None,
        timestamp_s: float | None = None,
        index: int | None = None,
        truth_3d: np.ndarray | None = None,
        timings: dict | None = None,
    ) -> FrameResult:
        """Lift one frame's 2D. keypoints_px: (17, 2) pixels in the (distorted) image, NaN for
        joints not seen, or None for no person; confidence (17,) in [0, 1] (None: ones);
        timestamp_s seconds (None: index / 30); truth_3d (17, 3) camera metres (demo)."""
        if self.size is None:
            raise DistposeError("the image size is unknown: give size= or intrinsics=")
        index = self._index if index is None else int(index)
        self._index = index + 1
        timestamp_s = index / 30.0 if timestamp_s is None else float(timestamp_s)
        timings = {} if timings is None else timings
        t0 = time.monotonic()

        kp_out, conf = None, np.zeros(NUM_JOINTS)
        seen = np.zeros(NUM_JOINTS, bool)
        detected = seen
        norm = None
        if keypoints_px is not None:
            kp_out = np.array(keypoints_px, dtype=np.float64).reshape(NUM_JOINTS, 2)
            conf = (
                np.ones(NUM_JOINTS)
                if confidence is None
                else np.nan_to_num(np.asarray(confidence, np.float64).reshape(NUM_JOINTS))
            )
            kp_out[~np.isfinite(kp_out).all(-1)] = np.nan
            was_seen = None  # a segment's start: no previous frame
            if self._last_px is not None:
                was_seen = (self._frames_unseen == 0) & np.isfinite(self._last_px).all(-1)
            detected = seen_with_hysteresis(kp_out, conf, self.size, was_seen, self.margin,
                                            self.seen_confidence)  # fmt: skip
            filled, seen = fill_dropouts(kp_out, detected, self._last_px, self._frames_unseen)
            if is_tracked(seen, detected):
                norm = self._normalise(filled)
                # a joint the lens model cannot undistort (outside its range) is not seen
                seen &= np.isfinite(norm).all(-1)
                norm[~seen] = np.nan
            if not is_tracked(seen, detected & seen):
                norm, seen = None, np.zeros(NUM_JOINTS, bool)
            conf = np.where(seen, conf, 0.0)
        tracked = norm is not None
        self._remember_seen(kp_out, detected if tracked else np.zeros(NUM_JOINTS, bool))

        if tracked:
            if self._gap > self.hold_frames:
                self._restart_lifter()
            self._gap = 0
            self._last_norm = norm
            self._last_seen = seen
            self._adapt_2d.append(norm)
            self.frames_tracked += 1
        else:
            self._gap += 1
            if self._gap <= self.hold_frames and self._last_norm is not None:
                norm = self._last_norm  # keep the lifter's clock: hold the last 2D
            elif self._started or self._last_norm is not None:
                self._end_segment()  # a long gap: finish the segment, start afresh later

        poses = []
        if self.recorder.is_recording:
            self.recorder.note_input(timestamp_s)
        if norm is not None:
            meta = _Pending(
                index,
                timestamp_s,
                tracked,
                conf,
                seen if tracked else self._last_seen,
                truth_3d,
                self._rays(norm) if tracked else None,
            )
            for tick_norm, tick_meta in self.clock.ticks(norm, meta):
                pose, pose_meta = self._push(tick_norm, tick_meta)
                if pose is not None and pose_meta is not None:
                    poses.append((pose, pose_meta))  # fmt: skip
        timings["lifter"] = time.monotonic() - t0
        self.stats.add("lifter", timings["lifter"])
        self.frames_processed += 1

        result = FrameResult(index, timestamp_s, None, kp_out, conf, tracked, seen, timings=timings)
        for pose, pose_meta in poses:
            self._fill_pose(result, pose, pose_meta)
        if not poses and norm is not None and self._shown is not None:
            self._show_last(result)  # between two lifter frames: keep showing the last pose
        elif norm is None and self.recorder.is_recording:
            self.recorder.add(result)  # no person and nothing pending: an untracked row now
        return result

    def _rays(self, norm: np.ndarray) -> np.ndarray:
        """(17, 2) image rays of the lifter input `norm` (undistorted when the lens is known),
        through the known intrinsics or a pinhole of the assumed field of view (hfov_deg)."""
        from distpose_app.export.trajectory import hfov_intrinsics, screen_rays

        width, height = self.size
        if self.intrinsics is not None:
            i = self.intrinsics
            K = np.array([i.fx, i.fy, i.cx, i.cy], dtype=np.float64)
        else:
            K = hfov_intrinsics(self.hfov_deg, width, height)
        return screen_rays(np.asarray(norm, dtype=np.float64), width, height, K)

    def _show_last(self, result: FrameResult) -> None:
        shown = self._shown
        for name in ("pose_3d", "pose_index", "pose_timestamp_s", "pose_tracked",
                     "pose_confidence", "pose_seen", "root_3d", "root_smoothed_3d",
                     "pose_rays", "truth_3d", "mpjpe_mm"):  # fmt: skip
            setattr(result, name, getattr(shown, name))

    def _remember_seen(self, keypoints_px: np.ndarray | None, detected: np.ndarray) -> None:
        """Update each joint's last seen position and how long ago it was seen."""
        if self._last_px is None:
            self._last_px = np.full((NUM_JOINTS, 2), np.nan)
        if detected.any():
            self._last_px[detected] = keypoints_px[detected]
        self._frames_unseen = np.where(detected, 0, self._frames_unseen + 1)

    def _normalise(self, keypoints_px: np.ndarray) -> np.ndarray:
        px = np.array(keypoints_px, dtype=np.float64, copy=True)
        if self.known_lens is not None and not self.known_lens.is_identity:
            seen = np.isfinite(px).all(-1)  # unseen joints stay NaN, never enter the solver
            px[seen] = undistort_pixels(px[seen], self.intrinsics, self.known_lens)
        return normalize_screen_coordinates(px, *self.size).astype(np.float32)

    def _push(self, norm: np.ndarray, meta: _Pending) -> tuple[np.ndarray | None, _Pending | None]:
        lag = self.output_lag
        shadow = self._compare_unadapted() if meta.truth_3d is not None else None
        if not self._started and self.pad_start:
            for _ in range(self.receptive_field - 1 - lag):
                self.lifter.push(norm)
                if shadow is not None:
                    shadow.push(norm)
                self._recent.append(norm)
        self._started = True
        pose = self.lifter.push(norm)
        self._unadapted_pose = None if shadow is None else shadow.push(norm)
        self._recent.append(norm)
        self._pending.append(meta)
        if pose is None or len(self._pending) <= lag:
            return None, None
        pose = np.asarray(pose, dtype=np.float64)
        if not plausible_pose(pose):
            if self.is_adapted:  # the adaptation diverged: undo it at once
                self._diverged()
            return None, None  # broken weights: never show or record NaN
        return pose, self._pending[-(lag + 1)]

    def _fill_pose(self, result: FrameResult, pose: np.ndarray, meta: _Pending) -> None:
        result.pose_3d = pose
        result.pose_index = meta.index
        result.pose_timestamp_s = meta.timestamp_s
        result.pose_tracked = meta.tracked
        result.pose_confidence = meta.confidence
        result.pose_seen = meta.seen
        result.pose_rays = meta.rays
        result.root_3d = result.root_smoothed_3d = None
        if meta.tracked:
            result.root_3d, result.root_smoothed_3d = self.root_tracker.place(
                pose, meta.rays, meta.timestamp_s
            )
        if meta.truth_3d is not None:
            truth = np.asarray(meta.truth_3d, dtype=np.float64)
            truth = truth - truth[:1]
            result.truth_3d = truth
            result.mpjpe_mm = 1000.0 * float(np.linalg.norm(pose - truth, axis=-1).mean())
            other = self._unadapted_pose
            if other is not None and np.isfinite(other).all():
                error = np.linalg.norm(np.asarray(other, np.float64) - truth, axis=-1).mean()
                result.unadapted_mpjpe_mm = 1000.0 * float(error)
        if self.recorder.is_recording:
            self.recorder.add(result)
        self._shown = copy.copy(result)

    def flush(self) -> list[FrameResult]:
        """At the end of a stream (or of a tracked segment): the poses still owed for the last
        output_lag frames by a model with lookahead, got by repeating the last input
        (VideoPose3D's edge padding); recorded when recording. The lifter then starts afresh."""
        return self._end_segment()

    def _end_segment(self) -> list[FrameResult]:
        out = []
        waiting = list(self._pending)[-self.output_lag :] if self.output_lag else []
        self._unadapted_pose = None  # the comparison stops at the segment's end
        if self._started and self._last_norm is not None:
            for meta in waiting:
                pose = self.lifter.push(self._last_norm)
                result = FrameResult(meta.index, meta.timestamp_s)
                if pose is not None and plausible_pose(pose):
                    self._fill_pose(result, np.asarray(pose, dtype=np.float64), meta)
                    out.append(result)
                elif self.recorder.is_recording:
                    self.recorder.add(result)
        self._restart_lifter()
        self._last_px = None  # the person may reappear elsewhere: no filling from stale joints
        self._last_norm = None
        return out

    def close(self) -> None:
        """Release the detector if the pipeline built it."""
        if self._own_detector and self.detector is not None:
            self.detector.close()
            self.detector = None
