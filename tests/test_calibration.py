"""OpenCV calibration files (written here by cv2.FileStorage itself) -> Intrinsics + Lens that
project exactly as cv2.projectPoints / cv2.fisheye.projectPoints do with the same K and D."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from distpose_app.core.errors import DataFormatError, LensError
from distpose_app.lens.calibration import lens_from_opencv_coeffs, load_opencv_calibration
from distpose_app.lens.models import BrownConrady, KannalaBrandt, NoLens, project_points

K = np.array([[610.0, 0.0, 321.5], [0.0, 612.0, 238.25], [0.0, 0.0, 1.0]])


def _write(path, **entries):
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    for key, value in entries.items():
        fs.write(key, value)
    fs.release()
    return path


def _points(n=500, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-0.6, 0.6, size=(n, 2))
    z = rng.uniform(1.0, 5.0, size=(n, 1))
    return np.concatenate([xy * z, z], axis=1)


@pytest.mark.parametrize("ext", ["yml", "json"])
def test_brown_calibration_projects_like_opencv(tmp_path, ext):
    d = np.array([[-0.21, 0.05, 0.0012, -0.0007, -0.004]])
    path = _write(
        tmp_path / f"cam.{ext}",
        image_width=640,
        image_height=480,
        camera_matrix=K,
        distortion_coefficients=d,
    )
    intrinsics, lens = load_opencv_calibration(path)
    assert (intrinsics.width, intrinsics.height) == (640, 480)
    assert isinstance(lens, BrownConrady)
    assert lens.k1 == -0.21 and lens.p1 == 0.0012 and lens.p2 == -0.0007 and lens.k3 == -0.004
    pts = _points()
    expected, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K, d)
    np.testing.assert_allclose(project_points(pts, intrinsics, lens), expected[:, 0], atol=1e-6)


def test_fisheye_calibration_projects_like_cv2_fisheye(tmp_path):
    d = np.array([[0.05], [-0.01], [0.004], [-0.001]])
    path = _write(tmp_path / "fish.yaml", camera_matrix=K, distortion_coefficients=d)
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_APPEND)
    fs.write("fisheye_model", 1)
    fs.release()
    intrinsics, lens = load_opencv_calibration(path, image_size=(640, 480))
    assert isinstance(lens, KannalaBrandt)
    pts = _points(seed=1)
    expected, _ = cv2.fisheye.projectPoints(pts[:, None], np.zeros(3), np.zeros(3), K, d.reshape(4))
    np.testing.assert_allclose(project_points(pts, intrinsics, lens), expected[:, 0], atol=1e-6)


def test_alternative_key_names_and_size_from_principal_point(tmp_path):
    path = _write(tmp_path / "alt.json", cameraMatrix=K, distCoeffs=np.zeros((1, 5)))
    intrinsics, lens = load_opencv_calibration(path)
    assert isinstance(lens, NoLens)
    # No size in the file: the image is centred on the principal point.
    assert (intrinsics.width, intrinsics.height) == (643, 477)
    assert intrinsics.fx == 610.0 and intrinsics.cy == 238.25


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist"):
        load_opencv_calibration(tmp_path / "missing.yml")
    no_k = _write(tmp_path / "nok.yml", distortion_coefficients=np.zeros((1, 5)))
    with pytest.raises(DataFormatError, match="no camera matrix"):
        load_opencv_calibration(no_k)
    bad_k = _write(tmp_path / "badk.yml", camera_matrix=np.eye(2))
    with pytest.raises(DataFormatError, match="3x3"):
        load_opencv_calibration(bad_k)
    junk = tmp_path / "junk.yml"
    junk.write_text("this is: [not, a calibration\n")
    with pytest.raises(DataFormatError):
        load_opencv_calibration(junk)


def test_rational_model_is_refused_but_zero_extra_terms_are_fine():
    with pytest.raises(LensError, match="rational"):
        lens_from_opencv_coeffs(np.array([-0.2, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0]))
    lens = lens_from_opencv_coeffs(np.array([-0.2, 0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    assert lens == BrownConrady(k1=-0.2, k2=0.01)
