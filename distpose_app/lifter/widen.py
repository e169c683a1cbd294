"""Widen a trained lifter without changing what it computes (Net2WiderNet, Chen et al. 2016).

Why: the mixture the lifter learns (lenses, partial views, bodies, detector noise) may need
more channels than it was trained with; widening keeps everything a trained model knows, so a
wider model continues from it instead of starting over.

Every hidden layer of `TemporalModel` shares one channel space (the residual stream adds block
outputs to block inputs), so one mapping g serves all of them: new channel j copies old channel
g(j) (g(j) = j for the old ones). A layer producing channels copies the rows (and batch-norm
statistics) of g; a layer consuming them splits each old column evenly over its copies. The
widened model's output equals the original's exactly, in eval mode and in train mode up to
dropout, whose independent masks (with the small `noise` on the copies) break the symmetry.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from distpose_app.core.errors import DistposeError
from distpose_app.lifter.model import TemporalModel


def _copy_out(conv: nn.Conv1d, g: torch.Tensor) -> None:
    conv.weight = nn.Parameter(conv.weight.data[g].clone())
    conv.out_channels = len(g)
    if conv.bias is not None:
        conv.bias = nn.Parameter(conv.bias.data[g].clone())


def _split_in(conv: nn.Conv1d, g: torch.Tensor, counts: torch.Tensor) -> None:
    w = conv.weight.data[:, g] / counts[g][None, :, None]
    conv.weight = nn.Parameter(w.clone())
    conv.in_channels = len(g)


def _copy_bn(bn: nn.BatchNorm1d, g: torch.Tensor) -> None:
    bn.weight = nn.Parameter(bn.weight.data[g].clone())
    bn.bias = nn.Parameter(bn.bias.data[g].clone())
    assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats
    bn.running_mean = bn.running_mean[g].clone()
    bn.running_var = bn.running_var[g].clone()
    bn.num_features = len(g)


def widen(model: TemporalModel, channels: int, noise: float = 1e-3, seed: int = 0
          ) -> TemporalModel:  # fmt: skip
    """A copy of `model` with `channels` (> model.channels) hidden channels computing the same
    function. `noise`: relative size of the random perturbation added to the copied input
    weights of new channels (0 = an exact copy). The input lens and metadata are kept."""
    old = model.channels
    if channels < old:
        raise DistposeError(f"cannot widen a {old}-channel model to {channels} channels")
    wide = copy.deepcopy(model)
    if channels == old:
        return wide
    gen = torch.Generator().manual_seed(seed)
    g = torch.cat([torch.arange(old), torch.randint(0, old, (channels - old,), generator=gen)])
    counts = torch.bincount(g, minlength=old).to(torch.float32)

    _copy_out(wide.expand_conv, g)
    _copy_bn(wide.expand_bn, g)
    for conv, bn in zip(wide.layers_conv, wide.layers_bn, strict=True):
        _split_in(conv, g, counts)  # type: ignore[arg-type]
        _copy_out(conv, g)  # type: ignore[arg-type]
        _copy_bn(bn, g)  # type: ignore[arg-type]
    _split_in(wide.shrink, g, counts)
    wide.channels = channels
    if noise > 0:  # perturb the copies' incoming weights only: the output stays within noise
        with torch.no_grad():
            for conv in [wide.expand_conv, *wide.layers_conv]:
                w = conv.weight[old:]
                w.add_(noise * w.abs().mean() * torch.randn(w.shape, generator=gen))
    return wide
