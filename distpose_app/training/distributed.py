"""Data-parallel training across processes (`torchrun --nproc_per_node N distpose train ...`).

Each process draws the same global batch and keeps its share; DistributedDataParallel averages
the gradients. Batch norm must then see the statistics of the *global* batch, or a step would
differ from a single process's: torch's SyncBatchNorm only runs on GPUs, so
`DistributedBatchNorm1d` all-reduces the sums itself (differentiably), which also works on CPUs
with the gloo backend.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_reduce


def init_from_env() -> tuple[int, int]:
    """Join the process group torchrun describes in the environment. Returns (rank, world size);
    (0, 1) when not launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def shutdown() -> None:
    """Leave the process group (a process that exits with gloo's threads still running may
    abort: 'terminate called without an active exception')."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class DistributedBatchNorm1d(torch.nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are those of the batch summed over all processes.
    Same parameters and buffers as BatchNorm1d, so checkpoints are interchangeable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0, 2] if x.dim() == 3 else [0]
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), count])
        stats = all_reduce(stats)  # differentiable sum over processes
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = stats[c : 2 * c] / n - mean * mean
        with torch.no_grad():
            # Created with track_running_stats and momentum (BatchNorm1d's defaults).
            assert self.num_batches_tracked is not None and self.momentum is not None
            assert self.running_mean is not None and self.running_var is not None
            self.num_batches_tracked += 1
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean.detach())
            self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
        shape = (1, c, 1) if x.dim() == 3 else (1, c)
        x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return x_hat * self.weight.view(shape) + self.bias.view(shape)


def convert_batch_norm(model: torch.nn.Module) -> torch.nn.Module:
    """Turn every BatchNorm1d of `model` into a DistributedBatchNorm1d, in place."""
    for m in model.modules():
        if type(m) is torch.nn.BatchNorm1d:
            m.__class__ = DistributedBatchNorm1d
    return model


def average_gradients(params) -> None:
    """Sum gradients over processes (losses are already divided by the global count)."""
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
