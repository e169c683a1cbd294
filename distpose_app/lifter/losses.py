"""Differentiable losses over predicted poses (torch), shared by training and adaptation.

Poses are tensors (..., 17, 3) in metres; every loss returns a scalar tensor in metres (or a
dimensionless ratio where stated), so weights between terms are easy to read.
"""

from __future__ import annotations

import torch

from distpose_app.core.skeleton import BONES, SYMMETRIC_BONE_PAIRS

_PARENTS = [p for p, _ in BONES]
_CHILDREN = [c for _, c in BONES]
_LEFT = [a for a, _ in SYMMETRIC_BONE_PAIRS]
_RIGHT = [b for _, b in SYMMETRIC_BONE_PAIRS]


def mpjpe_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error. (..., J, 3) x2 -> scalar (metres)."""
    return torch.linalg.vector_norm(predicted - target, dim=-1).mean()


def bone_lengths(positions: torch.Tensor) -> torch.Tensor:
    """(..., 17, 3) metres -> (..., 16) metres; a small epsilon keeps the gradient finite."""
    vec = positions[..., _CHILDREN, :] - positions[..., _PARENTS, :]
    return torch.sqrt((vec * vec).sum(-1) + 1e-12)


def bone_length_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |predicted - true| bone length over the 16 bones. (..., 17, 3) x2 -> metres.

    Beside MPJPE in training: a joint the 2D does not pin down (unseen, or foreshortened) is
    otherwise predicted near its average position, which shortens its bones."""
    return (bone_lengths(predicted) - bone_lengths(target)).abs().mean()


def symmetry_loss(positions: torch.Tensor) -> torch.Tensor:
    """Mean |left - right| bone length over the six symmetric pairs. (..., 17, 3) -> metres."""
    lengths = bone_lengths(positions)
    return (lengths[..., _LEFT] - lengths[..., _RIGHT]).abs().mean()


def consistency_loss(positions: torch.Tensor, time_dim: int = -3) -> torch.Tensor:
    """Mean absolute deviation of each bone's length from its mean over time (the window).

    positions (B, T, 17, 3) (time on `time_dim`) -> scalar metres. Zero for a rigid skeleton.
    """
    lengths = bone_lengths(positions)
    dim = time_dim + 1 if time_dim < 0 else time_dim  # lengths lost the last axis
    return (lengths - lengths.mean(dim=dim, keepdim=True)).abs().mean()


def iso_loss(
    positions: torch.Tensor,
    anchor: torch.Tensor | None = None,
    symmetry_weight: float = 1.0,
    consistency_weight: float = 1.0,
    anchor_weight: float = 0.0,
) -> torch.Tensor:
    """The paper's inference-stage-optimisation loss: bone symmetry + bone consistency, plus an
    optional term keeping the prediction near the unadapted one. (B, T, 17, 3) -> metres."""
    loss = symmetry_weight * symmetry_loss(positions)
    loss = loss + consistency_weight * consistency_loss(positions)
    if anchor is not None and anchor_weight > 0:
        loss = loss + anchor_weight * mpjpe_loss(positions, anchor)
    return loss
