"""The live 3D skeleton: a pyqtgraph.opengl view with a floor grid, bones coloured by the
subject's side (left blue, right orange, centre light grey), joints as dots. Joints the camera
did not see (the pipeline's seen flags: out of the picture, hidden) are the lifter's guesses:
faint, greyed, small, with thin dashed bones. Joints seen with a low confidence are only
half-transparent, so the two stay apart. Left mouse drag orbits, the wheel zooms (pyqtgraph's
own controls); Home resets the camera."""

from __future__ import annotations

import numpy as np
import pyqtgraph.opengl as gl
from PyQt5 import QtCore, QtWidgets
from pyqtgraph import Vector

from distpose_app.core.skeleton import BONES, LEFT_JOINTS, NUM_JOINTS, RIGHT_JOINTS

LEFT_COLOUR = (0.25, 0.55, 1.0, 1.0)
RIGHT_COLOUR = (1.0, 0.55, 0.15, 1.0)
CENTRE_COLOUR = (0.9, 0.9, 0.9, 1.0)
# A joint below this detector confidence is drawn less opaque: without seen flags (the 2D
# overlay) at DIM_ALPHA, a seen joint with a low confidence at LOW_CONFIDENCE_ALPHA.
SEEN_CONFIDENCE = 0.5
DIM_ALPHA = 0.25
LOW_CONFIDENCE_ALPHA = 0.6
# An unseen joint: its colour halfway to grey, at UNSEEN_ALPHA, drawn smaller; its bones dashed.
UNSEEN_GREY = 0.5
UNSEEN_ALPHA = 0.3
JOINT_SIZE, UNSEEN_JOINT_SIZE = 9, 6
BONE_WIDTH, UNSEEN_BONE_WIDTH = 4, 2
DASHES = 4  # dashes per unseen bone
BACKGROUND = (28, 30, 36)


def joint_colours(
    confidence: np.ndarray | None = None, seen: np.ndarray | None = None
) -> np.ndarray:
    """RGBA (17, 4) in [0, 1] per joint: side colour. confidence (17,) in [0, 1]; seen (17,)
    bool. Without seen flags, alpha DIM_ALPHA where confidence is below SEEN_CONFIDENCE. With
    them, unseen joints are greyed at UNSEEN_ALPHA and seen ones below SEEN_CONFIDENCE get
    LOW_CONFIDENCE_ALPHA."""
    colours = np.tile(np.array(CENTRE_COLOUR), (NUM_JOINTS, 1))
    colours[list(LEFT_JOINTS)] = LEFT_COLOUR
    colours[list(RIGHT_JOINTS)] = RIGHT_COLOUR
    low = np.zeros(NUM_JOINTS, bool)
    if confidence is not None:
        low = np.nan_to_num(np.asarray(confidence, dtype=float), nan=0.0) < SEEN_CONFIDENCE
    if seen is None:
        colours[low, 3] = DIM_ALPHA
        return colours
    unseen = ~np.asarray(seen, dtype=bool)
    colours[low & ~unseen, 3] = LOW_CONFIDENCE_ALPHA
    colours[unseen, :3] += UNSEEN_GREY * (0.5 - colours[unseen, :3])
    colours[unseen, 3] = UNSEEN_ALPHA
    return colours


def dashed(starts: np.ndarray, ends: np.ndarray, dashes: int = DASHES) -> np.ndarray:
    """Line-segment end points (B * 2 * dashes, 3) drawing each bone starts[b] -> ends[b]
    ((B, 3) each) as `dashes` dashes with equal gaps, for a GLLinePlotItem in "lines" mode."""
    t = (np.arange(2 * dashes) / (2 * dashes))[None, :, None]
    return (starts[:, None] + t * (ends - starts)[:, None]).reshape(-1, 3)


def camera_to_view(pose_3d: np.ndarray) -> np.ndarray:
    """Camera-frame pose (17, 3) metres (x right, y down, z forward) -> the view's frame
    (x right, y away from the camera, z up), hip above the origin, lowest joint on the floor.

    Only a change of axes and a translation for display; the pose itself is untouched."""
    p = np.asarray(pose_3d, dtype=float)
    view = np.stack([p[:, 0], p[:, 2], -p[:, 1]], axis=1)
    view[:, :2] -= view[0, :2]
    view[:, 2] -= np.nanmin(view[:, 2])
    return view


class SkeletonView(gl.GLViewWidget):
    """3D view of one H36M-17 pose; `set_pose(pose_3d, confidence)` redraws, `clear_pose()`
    hides the skeleton (no person)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        # GLViewWidget has no size hint: in a layout it can otherwise get 0 px (NOTES.md).
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Expanding)
        self.setBackgroundColor(BACKGROUND)
        self.setFocusPolicy(QtCore.Qt.StrongFocus)
        self.setAccessibleName("3D skeleton view")
        grid = gl.GLGridItem(color=(255, 255, 255, 60))
        grid.setSize(4, 4)
        grid.setSpacing(0.25, 0.25)
        self.addItem(grid)
        self._bones = gl.GLLinePlotItem(mode="lines", width=BONE_WIDTH, antialias=True)
        self._unseen_bones = gl.GLLinePlotItem(mode="lines", width=UNSEEN_BONE_WIDTH,
                                               antialias=True)  # fmt: skip
        self._joints = gl.GLScatterPlotItem(size=JOINT_SIZE, pxMode=True)
        # Translucent items need blending; depth test keeps far bones behind near ones.
        for item in (self._bones, self._unseen_bones, self._joints):
            item.setGLOptions("translucent")
            self.addItem(item)
        self.reset_camera()

    def initializeGL(self) -> None:  # noqa: N802 (Qt's name)
        # pyqtgraph 0.14 caches each item class's compiled shader program on the class, and a
        # program is valid only in the GL context that compiled it: a later view (a new window)
        # has a new context, so make the items compile theirs again.
        for klass in (gl.GLLinePlotItem, gl.GLScatterPlotItem):
            if getattr(klass, "_shaderProgram", None) is not None:
                klass._shaderProgram = None
        super().initializeGL()

    def reset_camera(self) -> None:
        """Look from in front of the subject (where the real camera is), slightly above."""
        self.setCameraPosition(pos=Vector(0.0, 0.0, 0.8), distance=3.2, elevation=10, azimuth=-90)

    def set_pose(
        self,
        pose_3d: np.ndarray | None,
        confidence: np.ndarray | None = None,
        seen: np.ndarray | None = None,
    ) -> None:
        """Show pose_3d (17, 3) metres in camera coordinates. confidence (17,) in [0, 1] dims
        the joints seen with a low confidence; seen (17,) bool (None: all seen, dimmed by
        confidence alone) draws the unseen joints faint and grey with dashed bones. None or a
        non-finite pose hides the skeleton."""
        if pose_3d is None or not np.isfinite(pose_3d).all():
            self.clear_pose()
            return
        view = camera_to_view(pose_3d)
        colours = joint_colours(confidence, seen)
        bones = np.array(BONES)
        shown = np.ones(NUM_JOINTS, bool) if seen is None else np.asarray(seen, bool)
        solid = shown[bones].all(axis=1)  # a bone is seen when both its ends are
        # A bone takes the colour of its child joint, and the child's dimming.
        bone_colours = colours[bones[:, 1]]
        self._bones.setData(
            pos=view[bones[solid].reshape(-1)], color=np.repeat(bone_colours[solid], 2, axis=0)
        )
        if (~solid).any():
            guessed = bones[~solid]
            self._unseen_bones.setData(
                pos=dashed(view[guessed[:, 0]], view[guessed[:, 1]]),
                color=np.repeat(bone_colours[~solid], 2 * DASHES, axis=0),
            )
        sizes = np.where(shown, JOINT_SIZE, UNSEEN_JOINT_SIZE).astype(float)
        self._joints.setData(pos=view, color=colours, size=sizes)
        self._bones.setVisible(bool(solid.any()))
        self._unseen_bones.setVisible(bool((~solid).any()))
        self._joints.setVisible(True)

    def clear_pose(self) -> None:
        self._bones.setVisible(False)
        self._unseen_bones.setVisible(False)
        self._joints.setVisible(False)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if event.key() == QtCore.Qt.Key_Home:
            self.reset_camera()
            return
        super().keyPressEvent(event)
