"""Offline inference: a whole 2D sequence through a lifter at once, ends padded by edge
replication (VideoPose3D's convention), one output per input frame."""

from __future__ import annotations

import numpy as np
import torch


def edge_padded(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x (T, 17, 2) with its first and last frames repeated so that the model gives one output
    per input frame: receptive_field - 1 frames in all, the look-ahead ones after the end."""
    rf = int(model.receptive_field)  # type: ignore[arg-type]  # a property of the lifter
    future = int(getattr(model, "lookahead_frames", (rf - 1) // 2))
    past = rf - 1 - future
    return torch.cat([x[:1].expand(past, -1, -1), x, x[-1:].expand(future, -1, -1)], dim=0)


@torch.no_grad()
def lift_sequence(model: torch.nn.Module, keypoints_2d: np.ndarray | torch.Tensor) -> np.ndarray:
    """Lift a whole sequence, padding the ends by edge replication as VideoPose3D does.

    keypoints_2d (T, 17, 2) normalised screen coordinates, NaN = unseen -> (T, 17, 3) metres,
    root-relative. For a causal model all padding goes before the first frame.
    """
    padded = edge_padded(model, torch.as_tensor(np.asarray(keypoints_2d), dtype=torch.float32))
    was_training = model.training
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    out = model(padded[None].to(device))[0].cpu().numpy()
    model.train(was_training)
    return out
