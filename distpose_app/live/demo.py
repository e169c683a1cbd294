"""A demo source that needs no camera and no data: a procedurally animated person (walking a
circle, then spinning on the spot and waving) seen by a virtual camera through a chosen
lens. Each frame carries its 2D keypoints (pixels, through the lens) and the ground-truth 3D in
camera coordinates, so the app can lift without MediaPipe and show a live MPJPE.

The motion is forward kinematics with constant bone lengths; everything is a smooth function of
time with period `CYCLE_S`, so the animation loops seamlessly and is deterministic.
"""

from __future__ import annotations

import math

import numpy as np

from distpose_app.core.skeleton import LEFT_JOINTS, NUM_JOINTS, PARENTS, RIGHT_JOINTS
from distpose_app.lens.models import Intrinsics, Lens, NoLens, project_points
from distpose_app.lens.strings import parse_lens
from distpose_app.live.capture import Frame, SizeAndRate

# Bone lengths, metres (an adult of about 1.75 m, close to Human3.6M's subjects).
PELVIS_HALF_WIDTH = 0.13  # Hip -> RHip / LHip
THIGH = 0.45
SHIN = 0.44
HIP_TO_SPINE = 0.23
SPINE_TO_THORAX = 0.25
THORAX_TO_NECK = 0.17  # Thorax -> head centre (H36M's Neck/Nose)
NECK_TO_HEAD = 0.12  # head centre -> crown
SHOULDER_HALF_WIDTH = 0.16  # Thorax -> shoulder
UPPER_ARM = 0.28
FOREARM = 0.25

CIRCLE_RADIUS = 1.5  # m, walking circle around the world origin
WALK_S = 12.0  # one lap (0.79 m/s)
WAVE_S = 8.0  # stand, turn to the camera, wave, turn back
CYCLE_S = WALK_S + WAVE_S
STEP_PERIOD_S = CYCLE_S / 18  # a full gait cycle (two steps), 1.11 s; whole cycles per loop
BLEND_S = 0.8  # walk <-> stand transition
CAMERA_HEIGHT = 1.1  # m above the floor
TARGET_HEIGHT = 0.9  # the camera looks at this height above the circle's centre


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def demo_motion(t_s: np.ndarray) -> np.ndarray:
    """The demo person at times t_s (T,) seconds → joints (T, 17, 3) metres, world coordinates
    (Y up, floor at y = 0), H36M-17 order. Bone lengths are constant; the motion repeats every
    CYCLE_S seconds: a lap of a circle of radius CIRCLE_RADIUS around the origin, then standing,
    spinning once on the spot and waving the right hand towards +z (the demo camera)."""
    t = np.asarray(t_s, dtype=np.float64).reshape(-1)
    s = np.mod(t, CYCLE_S)
    up = np.array([0.0, 1.0, 0.0])

    # Walking weight: 1 while walking, 0 while standing, smooth in between (and at the loop).
    walk = _smoothstep((WALK_S - s) / BLEND_S) * _smoothstep((s + BLEND_S) / BLEND_S)
    walk = np.where(s < WALK_S, walk, _smoothstep((s - CYCLE_S + BLEND_S) / BLEND_S))
    # Around the circle at constant angular speed, then at rest at the start point.
    theta = 2.0 * math.pi * np.minimum(s, WALK_S) / WALK_S
    root_xz = CIRCLE_RADIUS * np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    # Heading: the circle's tangent; while standing, one full spin on the spot, ending as it
    # started (facing +z, the demo camera), which also keeps the loop seamless.
    heading = theta + math.pi / 2.0
    stand = np.clip((s - WALK_S) / WAVE_S, 0.0, 1.0)
    spin = _smoothstep(stand / 0.4)
    heading = np.where(s < WALK_S, heading, math.pi / 2.0 + 2.0 * math.pi * spin)
    # heading measured from +x towards +z: forward = (cos h, 0, sin h)
    forward = np.stack([np.cos(heading), np.zeros_like(heading), np.sin(heading)], axis=-1)
    right = np.cross(forward, up)  # the subject's right, facing `forward` with Y up

    phase = 2.0 * math.pi * s / STEP_PERIOD_S
    swing = 0.38 * walk * np.sin(phase)  # thigh swing, radians (right leg; left is opposite)
    bob = 0.02 * walk * np.cos(2.0 * phase)
    root = np.stack([root_xz[:, 0], THIGH + SHIN - 0.03 + bob, root_xz[:, 1]], axis=-1)

    def sagittal(angle: np.ndarray) -> np.ndarray:
        """Unit vector pointing down, rotated `angle` radians towards forward."""
        a = angle[:, None]
        return -up * np.cos(a) + forward * np.sin(a)

    out = np.zeros((t.size, NUM_JOINTS, 3))
    out[:, 0] = root
    for hip, knee, foot, sign, shift in ((1, 2, 3, 1.0, 0.0), (4, 5, 6, -1.0, math.pi)):
        side = right if sign > 0 else -right
        out[:, hip] = root + PELVIS_HALF_WIDTH * side
        thigh = sign * swing
        # The knee bends most while the leg swings forward (the foot clears the floor).
        bend = walk * (0.12 + 0.55 * np.clip(np.sin(phase + shift + 0.6), 0.0, None) ** 2)
        out[:, knee] = out[:, hip] + THIGH * sagittal(thigh)
        out[:, foot] = out[:, knee] + SHIN * sagittal(thigh - bend)

    lean = 0.06 * walk  # a slight forward lean when walking
    trunk = _unit(up * np.cos(lean)[:, None] + forward * np.sin(lean)[:, None])
    out[:, 7] = root + HIP_TO_SPINE * trunk
    out[:, 8] = out[:, 7] + SPINE_TO_THORAX * trunk
    out[:, 9] = out[:, 8] + THORAX_TO_NECK * up
    out[:, 10] = out[:, 9] + NECK_TO_HEAD * up

    # Arms swing opposite the legs; the right arm waves while standing.
    wave = _smoothstep((stand - 0.42) / 0.15) * _smoothstep((0.98 - stand) / 0.15)
    wave = np.where(s < WALK_S, 0.0, wave)[:, None]
    wag = 0.45 * np.sin(2.0 * math.pi * 1.6 * s)[:, None]  # forearm wag, radians, 1.6 Hz
    for shoulder, elbow, wrist, sign in ((14, 15, 16, 1.0), (11, 12, 13, -1.0)):
        side = right if sign > 0 else -right
        out[:, shoulder] = out[:, 8] + SHOULDER_HALF_WIDTH * side
        arm_swing = -sign * 0.35 * swing
        upper = _unit(sagittal(arm_swing) + 0.12 * side)
        fore = sagittal(arm_swing + 0.25 + 0.2 * walk)
        if sign > 0:  # right arm: raised out to the side, forearm up and wagging
            upper_wave = _unit(side * np.cos(0.5) + up * np.sin(0.5))
            fore_wave = up * np.cos(wag) + side * np.sin(wag)
            # A quadratic Bezier through `side` turns the hanging forearm up without passing
            # through zero length (a straight blend of opposite directions would flip).
            a, b, c = (1.0 - wave) ** 2, wave**2, 2.0 * wave * (1.0 - wave)
            upper = _unit(a * upper + b * upper_wave + c * side)
            fore = _unit(a * fore + b * fore_wave + c * side)
        out[:, elbow] = out[:, shoulder] + UPPER_ARM * upper
        out[:, wrist] = out[:, elbow] + FOREARM * fore
    return out


def look_at(eye: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World (Y up) → OpenCV camera (x right, y down, z forward) for a camera at `eye` (3,)
    looking at `target` (3,), metres, with no roll. Returns (R (3, 3), eye): p_cam = R (p - eye)."""
    forward = _unit(np.asarray(target, float) - np.asarray(eye, float))
    right = _unit(np.cross(forward, [0.0, 1.0, 0.0]))
    down = np.cross(forward, right)
    return np.stack([right, down, forward]), np.asarray(eye, float)


def world_to_camera(points: np.ndarray, rotation: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """World points (..., 3) metres → camera coordinates (..., 3) metres."""
    return (np.asarray(points) - eye) @ rotation.T


def demo_camera_distance(intrinsics: Intrinsics) -> float:
    """Distance (m) from the circle's centre at which the whole walk stays in the picture: the
    standing person (with a margin) fits the vertical field of view at the nearest point of the
    circle, and the circle's width the horizontal one."""
    half_h = 0.5 * intrinsics.height / intrinsics.fy
    half_w = 0.5 * intrinsics.width / intrinsics.fx
    nearest = 1.25 / half_h  # 1.25 m above/below the line of sight covers feet and raised hand
    return max(CIRCLE_RADIUS + nearest, (CIRCLE_RADIUS + 0.5) / (0.85 * half_w))


class DemoSource(SizeAndRate):
    """The procedural person through a virtual camera: a FrameSource whose frames carry
    keypoints_2d (17, 2) pixels through `lens`, confidence (17,) ones, and truth_3d (17, 3)
    camera metres. `lens`: a Lens or a lens string (`distpose_app.lens.parse_lens`); hfov_deg is
    the ideal pinhole's horizontal field of view; size (width, height) pixels; fps Hz; frames:
    stop after this many (None: endless, looping every CYCLE_S); noise_px: Gaussian detector
    noise added to the 2D (standard deviation, pixels; seeded, so deterministic); draw: render
    an image (False gives a black image, for speed in tests and benchmarks)."""

    is_live = False  # generated at its own timestamps; the capture thread paces it to fps

    def __init__(
        self,
        lens: Lens | str = "none",
        hfov_deg: float = 90.0,
        size: tuple[int, int] = (1280, 720),
        fps: float = 30.0,
        frames: int | None = None,
        noise_px: float = 0.0,
        seed: int = 0,
        draw: bool = True,
    ):
        self.lens = parse_lens(lens, max_radius=None) if isinstance(lens, str) else lens
        self.intrinsics = Intrinsics.from_hfov(hfov_deg, int(size[0]), int(size[1]))
        self._size = (int(size[0]), int(size[1]))
        self._fps = float(fps)
        self.frames = frames
        self.noise_px = float(noise_px)
        self.seed = seed
        self.draw = draw
        self.name = f"demo ({self.lens.spec() if not isinstance(self.lens, NoLens) else 'no lens'})"
        distance = demo_camera_distance(self.intrinsics)
        self.rotation, self.eye = look_at(
            np.array([0.0, CAMERA_HEIGHT, distance]), np.array([0.0, TARGET_HEIGHT, 0.0])
        )
        self._floor = self._floor_polylines()
        self.index = 0
        self._rng = np.random.default_rng(seed)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def seek(self, index: int) -> None:
        """Continue from frame `index` (the noise sequence restarts from the seed)."""
        self.index = int(index)
        self._rng = np.random.default_rng(self.seed)

    def pose_at(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth at times t_s (T,) seconds → (camera-frame 3D (T, 17, 3) metres,
        noiseless 2D through the lens (T, 17, 2) pixels)."""
        world = demo_motion(t_s)
        cam = world_to_camera(world, self.rotation, self.eye)
        return cam, project_points(cam, self.intrinsics, self.lens)

    def read(self) -> Frame | None:
        if self.frames is not None and self.index >= self.frames:
            return None
        t = self.index / self._fps
        cam, px = self.pose_at(np.array([t]))
        cam, px = cam[0], px[0]
        if self.noise_px > 0:
            px = px + self._rng.normal(0.0, self.noise_px, px.shape)
        image = self.render(px) if self.draw else np.zeros(self._size[::-1] + (3,), np.uint8)
        frame = Frame(image, t, self.index, px, np.ones(NUM_JOINTS), cam)
        self.index += 1
        return frame

    def _floor_polylines(self, half: float = 3.0, step: float = 0.5) -> list[np.ndarray]:
        """A floor grid (world y = 0) through the lens, as pixel polylines; lines behind or
        near the camera are cut, so that the lens's curvature shows without wrap-around."""
        lines = []
        ticks = np.arange(-half, half + 1e-9, step)
        samples = np.linspace(-half, half, 61)
        for c in ticks:
            for pts in (
                np.stack([np.full_like(samples, c), np.zeros_like(samples), samples], -1),
                np.stack([samples, np.zeros_like(samples), np.full_like(samples, c)], -1),
            ):
                cam = world_to_camera(pts, self.rotation, self.eye)
                keep = cam[:, 2] > 0.5
                xy = cam[keep, :2] / cam[keep, 2:3]
                # Keep to where the lens is monotonic: beyond it the projection folds back.
                keep2 = np.linalg.norm(xy, axis=-1) < min(self.lens.fold_radius(), 3.0)
                if keep2.sum() >= 2:
                    lines.append(project_points(cam[keep][keep2], self.intrinsics, self.lens))
        return lines

    def render(self, keypoints_2d: np.ndarray) -> np.ndarray:
        """A dark (H, W, 3) uint8 BGR image with the floor grid and the 2D skeleton drawn."""
        import cv2

        width, height = self._size
        image = np.full((height, width, 3), 24, dtype=np.uint8)
        scale = 16  # fixed-point sub-pixel drawing (cv2's `shift` = 4 bits)
        for line in self._floor:
            pts = np.round(line * scale).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(image, [pts], False, (70, 70, 70), 1, cv2.LINE_AA, shift=4)
        kp = np.round(np.nan_to_num(keypoints_2d) * scale).astype(np.int32)
        thickness = max(2, width // 320)
        for child, parent in enumerate(PARENTS):
            if parent < 0:
                continue
            colour = (
                (255, 160, 60)
                if child in LEFT_JOINTS
                else (60, 140, 255)
                if child in RIGHT_JOINTS
                else (220, 220, 220)
            )
            p, q = (int(v) for v in kp[parent]), (int(v) for v in kp[child])
            cv2.line(image, tuple(p), tuple(q), colour, thickness, cv2.LINE_AA, shift=4)
        for point in kp:
            cv2.circle(
                image,
                (int(point[0]), int(point[1])),
                3 * scale,
                (255, 255, 255),
                -1,
                cv2.LINE_AA,
                shift=4,
            )
        return image


def demo_external(cycles: int = 2, fps: float = 30.0, hfov_deg: float = 90.0,
                  size: tuple[int, int] = (1280, 720)):  # fmt: skip
    """The demo person through the demo's camera as labelled data in the external format
    (`data.external.ExternalData`): `cycles` sequences, each one loop of CYCLE_S seconds (the
    loop repeats exactly), camera-frame 3D in metres, the demo camera's intrinsics. With it
    `distpose evaluate --data FILE --lens L` scores the Demo's data as the Demo's readout does
    (the 2D is projected through L with these intrinsics, as `DemoSource` projects it); the
    second sequence is the adaptation half evaluate's `--adapt` uses. Marked `whole_picture`, so
    that evaluate's Adapt, like the app's, weighs no shifts of the picture's centre."""
    from distpose_app.data.external import ExternalData

    source = DemoSource("none", hfov_deg=hfov_deg, size=size, fps=fps, draw=False)
    frames = int(round(CYCLE_S * fps))
    cam, _ = source.pose_at(np.arange(frames) / fps)
    k = source.intrinsics
    return ExternalData(
        positions_3d=np.concatenate([cam] * cycles),
        sequence=np.repeat(np.arange(cycles), frames),
        fps=float(fps),
        intrinsics=np.tile([k.fx, k.fy, k.cx, k.cy], (cycles, 1)),
        image_size=np.tile(list(size), (cycles, 1)),
        names=np.array([f"demo cycle {i + 1}" for i in range(cycles)]),
        whole_picture=True,  # the Demo camera's whole picture, as the app's Adapt treats it
    )


class ErrorReadout:
    """The Demo's error readout, steady enough to read: the mean of the per-frame MPJPE
    (`FrameResult.mpjpe_mm`, mm) over the last `window` posed frames (default: one demo loop at
    30 fps, so that a full window is the loop's MPJPE, what `distpose evaluate` gives on
    `demo_external`'s data), and, while adapted weights are in use, the unadapted weights'
    figure over the same frames (`FrameResult.unadapted_mpjpe_mm`) beside it. Qt-free: the
    window shows `text()`. When the comparison starts or stops (Adapt, Revert) both averages
    restart, so that they always cover the same frames."""

    def __init__(self, window: int = int(round(CYCLE_S * 30.0))):
        from collections import deque

        self.window = int(window)
        self._errors: deque[float] = deque(maxlen=self.window)
        self._unadapted: deque[float] = deque(maxlen=self.window)
        self._comparing = False

    def reset(self) -> None:
        """Forget everything (a new source, lens or model)."""
        self._errors.clear()
        self._unadapted.clear()
        self._comparing = False

    def add(self, mpjpe_mm: float | None, unadapted_mpjpe_mm: float | None = None) -> None:
        """One frame's figures (None or non-finite: no pose or no truth; ignored)."""
        if mpjpe_mm is None or not math.isfinite(mpjpe_mm):
            return
        other = unadapted_mpjpe_mm
        comparing = other is not None and math.isfinite(other)
        if comparing != self._comparing:
            self.reset()
            self._comparing = comparing
        self._errors.append(float(mpjpe_mm))
        if other is not None and comparing:
            self._unadapted.append(float(other))

    @property
    def frames(self) -> int:
        """How many frames the figures average (up to `window`)."""
        return len(self._errors)

    @property
    def mpjpe_mm(self) -> float | None:
        return float(np.mean(self._errors)) if self._errors else None

    @property
    def unadapted_mpjpe_mm(self) -> float | None:
        return float(np.mean(self._unadapted)) if self._unadapted else None

    def text(self) -> str:
        """E.g. "MPJPE 47.2 mm" or, after Adapt, "MPJPE 46.6 mm (unadapted 47.2 mm)"; the seconds
        averaged show until the window is full. "" before the first frame. One decimal: a full
        window is a whole loop's mean, steady to 0.1 mm, and Adapt's gain on the Demo is often
        under a millimetre, which whole millimetres would round away."""
        if self.mpjpe_mm is None:
            return ""
        out = f"MPJPE {self.mpjpe_mm:.1f} mm"
        if self.unadapted_mpjpe_mm is not None:
            out += f" (unadapted {self.unadapted_mpjpe_mm:.1f} mm)"
        if self.frames < self.window:
            out += f", over {self.frames / 30.0:.0f} s"
        return out
