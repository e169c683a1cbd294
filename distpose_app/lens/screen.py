"""VideoPose3D's screen-coordinate normalisation: pixels <-> coordinates with x in [-1, 1] and
the aspect ratio kept, for numpy arrays and torch tensors."""

from __future__ import annotations

from typing import Any

import numpy as np


def _per_sample(v: Any, like: Any) -> Any:
    """Scalar or per-sample width/height (leading dims of `like`) → broadcastable on like[..., 0].
    Left-aligned: a (N,) width goes with points (N, ..., 2)."""
    if isinstance(v, (int, float)):
        return v
    if not hasattr(v, "reshape"):
        v = np.asarray(v, dtype=np.float64)
    extra = like.ndim - 1 - v.ndim
    return v.reshape(tuple(v.shape) + (1,) * extra) if extra > 0 else v


def normalize_screen_coordinates(px: Any, width: Any, height: Any) -> Any:
    """Pixels (..., 2) → VideoPose3D screen coordinates (..., 2): x/w·2 − 1, y/w·2 − h/w, so x
    spans [−1, 1] and the aspect ratio is kept. width, height: pixels, scalars or per-sample
    arrays matching px's leading dims. numpy arrays or torch tensors."""
    if not hasattr(px, "dim"):
        px = np.asarray(px, dtype=np.float64)
    w, h = _per_sample(width, px), _per_sample(height, px)
    x = px[..., 0] / w * 2.0 - 1.0
    y = px[..., 1] / w * 2.0 - h / w
    return _stack(x, y, px)


def image_coordinates(norm: Any, width: Any, height: Any) -> Any:
    """Inverse of `normalize_screen_coordinates`: screen coordinates (..., 2) → pixels (..., 2)."""
    if not hasattr(norm, "dim"):
        norm = np.asarray(norm, dtype=np.float64)
    w, h = _per_sample(width, norm), _per_sample(height, norm)
    x = (norm[..., 0] + 1.0) * w / 2.0
    y = (norm[..., 1] + h / w) * w / 2.0
    return _stack(x, y, norm)


def _stack(x: Any, y: Any, like: Any) -> Any:
    if isinstance(like, np.ndarray) or not hasattr(like, "dim"):
        return np.stack(np.broadcast_arrays(x, y), axis=-1)
    import torch

    return torch.stack(torch.broadcast_tensors(x, y), dim=-1)
