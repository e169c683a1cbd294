"""core.rotations against SciPy's Rotation: axis-angle, smallest rotation, chordal mean (Euler
angles are checked against SciPy in test_bvh.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from distpose_app.core.rotations import (
    chordal_mean,
    normalise,
    rotation_about_axis,
    smallest_rotation,
)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_rotation_about_axis_matches_rotvec():
    rng = np.random.default_rng(0)
    for axis, angle in zip(_unit(rng, 20), rng.uniform(-np.pi, np.pi, 20)):
        expected = Rotation.from_rotvec(axis * angle).as_matrix()
        np.testing.assert_allclose(rotation_about_axis(axis, angle), expected, atol=1e-14)
    # Vectorised over the angle: (4,) angles -> (4, 3, 3).
    angles = np.linspace(0, 1, 4)
    many = rotation_about_axis(np.array([0.0, 0.0, 1.0]), angles)
    assert many.shape == (4, 3, 3)
    np.testing.assert_allclose(many[2], Rotation.from_euler("z", angles[2]).as_matrix())


def test_smallest_rotation_maps_u_onto_v_like_scipy():
    rng = np.random.default_rng(1)
    u, v = _unit(rng, 50), _unit(rng, 50)
    R = smallest_rotation(u, v)  # vectorised over the leading axis
    assert R.shape == (50, 3, 3)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, u), v, atol=1e-12)
    np.testing.assert_allclose(
        R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    for k in range(5):
        # SciPy's align_vectors with one pair gives the smallest rotation taking u onto v.
        expected, _ = Rotation.align_vectors(v[k : k + 1], u[k : k + 1])
        np.testing.assert_allclose(R[k], expected.as_matrix(), atol=1e-9)
    angle = np.degrees(Rotation.from_matrix(R).magnitude())
    between = np.degrees(np.arccos(np.clip(np.sum(u * v, axis=-1), -1, 1)))
    np.testing.assert_allclose(angle, between, atol=1e-6)  # no more turn than the angle between


@pytest.mark.parametrize("u", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.0, 0.8]])
def test_smallest_rotation_parallel_and_opposite(u):
    u = np.array(u)
    np.testing.assert_allclose(smallest_rotation(u, u), np.eye(3), atol=1e-12)
    R = smallest_rotation(u, -u)
    np.testing.assert_allclose(R @ u, -u, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    assert np.degrees(Rotation.from_matrix(R).magnitude()) == pytest.approx(180.0)


def test_chordal_mean_matches_scipy_mean():
    rng = np.random.default_rng(2)
    base = Rotation.from_rotvec([0.3, -0.2, 0.5])
    rotations = base * Rotation.from_rotvec(rng.normal(0, 0.2, (40, 3)))
    mean = chordal_mean(rotations.as_matrix())
    np.testing.assert_allclose(mean, rotations.mean().as_matrix(), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(mean), 1.0, atol=1e-12)


def test_normalise_flags_zero_and_nan():
    unit, ok = normalise(np.array([[3.0, 0.0, 4.0], [0.0, 0.0, 0.0], [np.nan, 1.0, 0.0]]))
    np.testing.assert_allclose(unit[0], [0.6, 0.0, 0.8])
    assert ok.tolist() == [True, False, False]
    assert np.all(unit[1:] == 0.0)
