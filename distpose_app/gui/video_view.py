"""The live video with the detected 2D skeleton drawn over it (QPainter, scaled to fit, aspect
ratio kept). Colours match the 3D view: subject's left blue, right orange, centre light grey;
joints under the confidence threshold are drawn faint. Joints outside the picture (MediaPipe
places them up to a margin beyond the edge) fall in the letterbox: they are drawn hollow and
their bones dashed and faint, never as solid bones over the black bars. An overlay line (end of
file, paused) can sit over the last picture."""

from __future__ import annotations

import numpy as np
from PyQt5 import QtCore, QtGui, QtWidgets

from distpose_app.core.skeleton import BONES
from distpose_app.gui.skeleton_view import joint_colours


def bgr_to_qimage(image: np.ndarray) -> QtGui.QImage:
    """BGR uint8 (H, W, 3) or grey (H, W) -> a QImage that owns a copy of the pixels."""
    image = np.ascontiguousarray(image)
    if image.ndim == 2:
        h, w = image.shape
        return QtGui.QImage(image.data, w, h, w, QtGui.QImage.Format_Grayscale8).copy()
    h, w, _ = image.shape
    rgb = np.ascontiguousarray(image[..., ::-1])
    return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format_RGB888).copy()


class VideoView(QtWidgets.QWidget):
    """Shows the latest frame; `set_frame(image, keypoints, confidence)`.

    image: BGR uint8 (H, W, 3) or None (the demo source has no picture: a dark frame of
    `blank_size` is drawn instead); keypoints: (17, 2) pixels in that image, or None."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Expanding)
        self.setAccessibleName("Video with 2D skeleton")
        self._image: QtGui.QImage | None = None
        self._image_size = (640, 480)
        self._keypoints: np.ndarray | None = None
        self._colours = joint_colours(None)
        self.message = "No source"
        self.overlay = ""

    def set_frame(
        self,
        image: np.ndarray | None,
        keypoints: np.ndarray | None = None,
        confidence: np.ndarray | None = None,
        blank_size: tuple[int, int] | None = None,
    ) -> None:
        if image is not None:
            self._image = bgr_to_qimage(image)
            self._image_size = (image.shape[1], image.shape[0])
        else:
            self._image = None
            if blank_size is not None:
                self._image_size = blank_size
        # NaN marks a joint that was not found: it and its bones are skipped when drawing.
        self._keypoints = None if keypoints is None else np.asarray(keypoints, dtype=float)
        self._colours = joint_colours(confidence)
        self.message = ""
        self.update()

    def show_message(self, text: str) -> None:
        self._image, self._keypoints, self.message = None, None, text
        self.update()

    def set_overlay(self, text: str) -> None:
        """A line over the current picture ("" removes it)."""
        if text != self.overlay:
            self.overlay = text
            self.update()

    def inside_picture(self) -> np.ndarray:
        """(17,) bool: the joints drawn inside the picture (finite and within its pixels)."""
        if self._keypoints is None:
            return np.zeros(0, bool)
        kp = self._keypoints
        width, height = self._image_size
        with np.errstate(invalid="ignore"):
            return (
                np.isfinite(kp).all(axis=1)
                & (kp[:, 0] >= 0) & (kp[:, 0] <= width)
                & (kp[:, 1] >= 0) & (kp[:, 1] <= height)
            )  # fmt: skip

    def _target_rect(self) -> QtCore.QRectF:
        """Where the image goes: centred, scaled to fit, aspect kept."""
        w, h = self._image_size
        scale = min(self.width() / w, self.height() / h)
        tw, th = w * scale, h * scale
        return QtCore.QRectF((self.width() - tw) / 2, (self.height() - th) / 2, tw, th)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.Antialiasing)
        painter.fillRect(self.rect(), QtGui.QColor(18, 18, 22))
        target = self._target_rect()
        if self._image is not None:
            painter.drawImage(target, self._image)
        elif not self.message:
            painter.fillRect(target, QtGui.QColor(40, 42, 50))
        if self.message:
            painter.setPen(QtGui.QColor(200, 200, 200))
            painter.drawText(self.rect(), QtCore.Qt.AlignCenter, self.message)
        if self._keypoints is not None:
            self._draw_skeleton(painter, target)
        if self.overlay:
            self._draw_overlay(painter, target)
        painter.end()

    def _draw_skeleton(self, painter: QtGui.QPainter, target: QtCore.QRectF) -> None:
        scale = target.width() / self._image_size[0]
        pts = self._keypoints * scale + [target.left(), target.top()]
        width = max(2.0, 3.0 * scale)
        ok = np.isfinite(pts).all(axis=1)
        inside = self.inside_picture()
        for parent, child in BONES:
            if not (ok[parent] and ok[child]):
                continue
            colour = QtGui.QColor.fromRgbF(*self._colours[child])
            pen = QtGui.QPen(colour, width)
            if not (inside[parent] and inside[child]):  # in the letterbox: a guess, not a bone
                colour.setAlphaF(colour.alphaF() * 0.5)
                pen = QtGui.QPen(colour, max(1.0, width / 2), QtCore.Qt.DashLine)
            pen.setCapStyle(QtCore.Qt.RoundCap)
            painter.setPen(pen)
            painter.drawLine(QtCore.QPointF(*pts[parent]), QtCore.QPointF(*pts[child]))
        for j, (x, y) in enumerate(pts):
            if not ok[j]:
                continue
            colour = QtGui.QColor.fromRgbF(*self._colours[j])
            if inside[j]:
                painter.setPen(QtCore.Qt.NoPen)
                painter.setBrush(colour)
            else:  # hollow and faint, like its bones
                colour.setAlphaF(colour.alphaF() * 0.5)
                painter.setPen(QtGui.QPen(colour, 1.5))
                painter.setBrush(QtCore.Qt.NoBrush)
            painter.drawEllipse(QtCore.QPointF(x, y), width * 1.2, width * 1.2)

    def _draw_overlay(self, painter: QtGui.QPainter, target: QtCore.QRectF) -> None:
        band = QtCore.QRectF(target.left(), target.center().y() - 24, target.width(), 48)
        painter.fillRect(band, QtGui.QColor(0, 0, 0, 170))
        painter.setPen(QtGui.QColor(235, 235, 235))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        painter.setFont(font)
        painter.drawText(band, QtCore.Qt.AlignCenter | QtCore.Qt.TextWordWrap, self.overlay)
