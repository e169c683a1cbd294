"""Which joints count as seen and which frames as tracked: the rules the live pipeline applies
to each frame's 2D before lifting.

Seen joints: a joint is *seen* in a frame when its 2D is finite, inside the image enlarged by
`margin` (10 % of width and height on each side: MediaPipe's joints at the edge of a limb that
leaves the picture) and its confidence (MediaPipe's visibility) is at least SEEN_CONFIDENCE = 0.5
(MediaPipe's own drawing threshold), with hysteresis: a joint seen in the previous frame stays seen
down to LOST_CONFIDENCE = 0.3, and at the start of a segment (no previous frame) a joint in that
band counts as seen (`seen_with_hysteresis`). MediaPipe's visibility of a joint hovers around 0.5
for seconds, and its run at another frame rate lands either side of it; the start matters most,
because the lifter's past is padded with the first frame, so a joint left out there is left out of
the lifter's whole receptive field (a 25 and a 50 fps copy of the street clip lifted different
bodies for a second). A joint the detector saw within the last FILL_FRAMES = 3 frames and lost now
(a flicker around the threshold) is filled from its last seen position and still counts as seen;
any other unseen joint goes to the lifter as NaN (the lifter's contract: NaN = unseen) and is never
invented. The lifter still gives all 17 joints; each pose carries its frame's `seen` flags (17,) so
the view and the exports can tell guessed joints from observed ones. Derived joints inherit this
through their confidence (`skeleton.mediapipe_to_h36m` takes the minimum of the sources): hips out
of the picture make the pelvis and the spine unseen too.

Tracking rule: a frame is *tracked* when both shoulders are detected in it (the top of the torso:
the lifter's anchor when the hips are under a desk or below the image; not filled) and at least
MIN_SEEN_JOINTS = 5 of the 17 joints are seen: the shoulders, the thorax between them and two more,
e.g. a head-and-shoulders view (the ears give Neck and Head) of someone talking at a desk with the
hands below the picture (the first 34 frames of the upper-body test clip: with 6 they were lost), or
the shoulders and one arm with the head turned away. Shoulders alone, or with one more joint, are
too little to place a body. Otherwise (no person, NaN, far outside the image) the frame is
*untracked*. During a short gap (<= hold_frames) the last 2D is fed again so the lifter's clock
keeps running and the held pose is shown, but recorded as untracked; after a longer gap the lifter
starts afresh.
"""

from __future__ import annotations

import numpy as np

# Joints that must be seen for a frame to count as tracked: both shoulders (the torso's top).
CORE_JOINTS: tuple[int, ...] = (11, 14)
# ... and at least this many of the 17 joints (see the module docstring).
MIN_SEEN_JOINTS = 5
# A joint with a lower confidence (MediaPipe's visibility, in [0, 1]) is not seen.
SEEN_CONFIDENCE = 0.5
# A joint seen in the previous frame (or any joint at a segment's start) stays seen down to this.
LOST_CONFIDENCE = 0.3
# A seen joint lost for at most this many frames is filled from its last seen position.
FILL_FRAMES = 3
# A root-relative pose with a joint farther than this (metres) from the root is garbage.
MAX_POSE_M = 100.0


def plausible_pose(pose: np.ndarray) -> bool:
    """A lifted pose (17, 3) metres that may be shown and recorded: finite and not absurd."""
    return bool(np.isfinite(pose).all() and np.abs(pose).max() <= MAX_POSE_M)


def valid_joints(
    keypoints_px: np.ndarray, size: tuple[int, int], margin: float = 0.1
) -> np.ndarray:
    """(17,) bool: joints that are finite and within the image enlarged by `margin` (a fraction
    of width and height) on each side. keypoints_px (17, 2) pixels; size (width, height)."""
    kp = np.asarray(keypoints_px, dtype=np.float64)
    width, height = size
    finite = np.isfinite(kp).all(axis=-1)
    with np.errstate(invalid="ignore"):
        inside = (
            (kp[:, 0] >= -margin * width)
            & (kp[:, 0] <= (1 + margin) * width)
            & (kp[:, 1] >= -margin * height)
            & (kp[:, 1] <= (1 + margin) * height)
        )
    return finite & inside


def seen_joints(
    keypoints_px: np.ndarray,
    confidence: np.ndarray,
    size: tuple[int, int],
    margin: float = 0.1,
    min_confidence: float = SEEN_CONFIDENCE,
) -> np.ndarray:
    """(17,) bool: joints the detector saw in this frame: valid_joints (finite, inside the image
    enlarged by `margin`) with confidence (17,) in [0, 1] at least `min_confidence`.
    keypoints_px (17, 2) pixels; size (width, height) pixels."""
    conf = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0)
    return valid_joints(keypoints_px, size, margin) & (conf >= min_confidence)


def seen_with_hysteresis(
    keypoints_px: np.ndarray,
    confidence: np.ndarray,
    size: tuple[int, int],
    was_seen: np.ndarray | None,
    margin: float = 0.1,
    min_confidence: float = SEEN_CONFIDENCE,
    lost_confidence: float = LOST_CONFIDENCE,
) -> np.ndarray:
    """(17,) bool: `seen_joints` with hysteresis. A joint becomes seen at `min_confidence`; one
    seen in the previous frame (was_seen (17,) bool) stays seen while its confidence is at least
    `lost_confidence`; at a segment's start (was_seen None) every joint at `lost_confidence` or
    more is seen. keypoints_px (17, 2) pixels, confidence (17,) in [0, 1], size (width, height)."""
    lost = min(lost_confidence, min_confidence)
    low = seen_joints(keypoints_px, confidence, size, margin, lost)
    if was_seen is None:
        return low
    high = seen_joints(keypoints_px, confidence, size, margin, min_confidence)
    return high | (low & np.asarray(was_seen, bool))


def fill_dropouts(
    keypoints: np.ndarray,
    seen: np.ndarray,
    last_seen: np.ndarray | None,
    frames_unseen: np.ndarray,
    max_frames: int = FILL_FRAMES,
) -> tuple[np.ndarray, np.ndarray]:
    """Bridge short dropouts, leave the rest unseen.

    keypoints (17, D) this frame; seen (17,) bool the joints seen in it; last_seen (17, D) each
    joint's last seen position (NaN never seen; None: no history); frames_unseen (17,) int the
    frames since each was last seen, before this one. A joint unseen now but seen within the
    last `max_frames` frames takes its last seen position. Returns (keypoints (17, D) with NaN
    where unseen, seen (17,) bool including the filled joints)."""
    out = np.array(keypoints, dtype=np.float64, copy=True)
    fill = np.zeros(len(out), bool)
    if last_seen is not None:
        fill = ~seen & (np.asarray(frames_unseen) < max_frames)
        fill &= np.isfinite(last_seen).all(axis=-1)
        out[fill] = last_seen[fill]
    seen = np.asarray(seen, bool) | fill
    out[~seen] = np.nan
    return out, seen


def is_tracked(seen: np.ndarray, detected: np.ndarray | None = None) -> bool:
    """The tracking rule: both shoulders detected in this frame (detected (17,) bool; None: as
    seen) and >= MIN_SEEN_JOINTS joints seen (seen (17,) bool, short dropouts filled)."""
    detected = seen if detected is None else detected
    return bool(detected[list(CORE_JOINTS)].all() and seen.sum() >= MIN_SEEN_JOINTS)
