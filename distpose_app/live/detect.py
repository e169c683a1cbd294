"""2D pose detection with MediaPipe Pose (BlazePose), mapped to the H36M-17 skeleton.

Only `model_complexity=1` is used: its model ships inside the mediapipe 0.10.21 wheel, while
complexities 0 and 2 download theirs at construction (and fail offline). mediapipe is imported
when a detector is built, not when this module is imported (it is slow and pulls matplotlib).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distpose_app.core.skeleton import mediapipe_to_h36m


@dataclass
class Detection:
    """One person found in one image.

    keypoints_2d: (17, 2) pixels, H36M-17 order, as seen in the (possibly distorted) image;
        MediaPipe extrapolates joints outside the picture, so values may lie outside it.
    confidence: (17,) in [0, 1], MediaPipe's visibility (a derived joint takes the minimum of
        the landmarks it is built from, so hips out of the picture take the pelvis and spine
        with them). The pipeline counts a joint below tracking.SEEN_CONFIDENCE (0.5; with
        hysteresis, see live/tracking.py) or outside the image as unseen.
    landmarks_2d: (33, 2) pixels, MediaPipe's own landmarks; visibility: (33,).
    world_3d: (17, 3) metres, MediaPipe's own 3D estimate (pose_world_landmarks, hip-centred,
        axes as the image: x right, y down, z away from the camera) mapped to H36M-17; None when
        MediaPipe gives none. For comparing our lifter with MediaPipe's 3D.
    """

    keypoints_2d: np.ndarray
    confidence: np.ndarray
    landmarks_2d: np.ndarray
    visibility: np.ndarray
    world_3d: np.ndarray | None = None


class PoseDetector:
    """MediaPipe Pose, one person. static_image_mode=False tracks between video frames (faster,
    about 25-30 ms a frame on 2 CPU cores); True detects afresh in every image (photos)."""

    def __init__(
        self,
        static_image_mode: bool = False,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ):
        import mediapipe as mp

        self.static_image_mode = static_image_mode
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=static_image_mode,
            model_complexity=1,  # the only one bundled in the wheel; 0 and 2 download
            smooth_landmarks=True,
            enable_segmentation=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )

    def detect(self, image_bgr: np.ndarray) -> Detection | None:
        """Detect the person in `image_bgr` ((H, W, 3) uint8, BGR); None when there is none."""
        import cv2

        if self._pose is None:
            raise RuntimeError("PoseDetector is closed")
        image = np.asarray(image_bgr)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected a (H, W, 3) uint8 BGR image, got {image.shape} {image.dtype}"
            )
        height, width = image.shape[:2]
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False  # lets MediaPipe use the buffer without copying
        result = self._pose.process(rgb)
        if result.pose_landmarks is None:
            return None
        marks = result.pose_landmarks.landmark
        landmarks = np.array([[m.x * width, m.y * height] for m in marks], dtype=np.float64)
        visibility = np.clip(np.array([m.visibility for m in marks], dtype=np.float64), 0, 1)
        keypoints, confidence = mediapipe_to_h36m(landmarks, visibility)
        world = None
        if result.pose_world_landmarks is not None:
            wl = result.pose_world_landmarks.landmark
            world_33 = np.array([[m.x, m.y, m.z] for m in wl], dtype=np.float64)
            world, _ = mediapipe_to_h36m(world_33, visibility)
        return Detection(keypoints, confidence, landmarks, visibility, world)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self) -> PoseDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
