"""Training: `baseline` (pinhole 2D, as VideoPose3D), `augmented` (lens sampler as augmentation)
and `meta` (MAML over lens tasks, Cho et al. 2021).

Data: camera-frame 3D joints of synthetic webcam views of real mocap (`data.synthetic`). 2D inputs
are re-projected every batch, through a freshly sampled lens for `augmented`/`meta`, so the
model never sees the same distortion twice. Windows never cross a sequence boundary.

MAML design (all choices are written here and in the README's method section):
- A task = one sequence (one virtual camera) under one sampled lens. Support: `support_windows`
  windows from the first half of the sequence; query: `query_windows` from the second half, so
  support and query frames are disjoint but share camera, lens and subject.
- Inner loop: `inner_steps` SGD steps with `inner_lr` on the support loss — the ISO loss
  (symmetry + consistency, scenario 2), the supervised MPJPE (scenario 1), or both — over the
  `inner_params` group (default batch-norm affine: the group ISO moves at test time).
  `inner_params="lens"` makes the inner loop the lens-space adaptation instead: the
  support windows' k1 is chosen by the reprojection objective over LENS_INNER_GRID
  (`adapt.lens_fit.k1_grid_search`, forward passes only), and the query is lifted through that
  undistortion, so the lifter learns to be right after its own lens fit (a zeroth-order inner
  loop: the outer gradient treats the chosen k1 as a constant).
- Outer loss: supervised MPJPE on the query after the inner steps; Adam on all weights.
  First-order (FOMAML: inner gradients treated as constants) by default; `second_order=True`
  back-propagates through the inner step (torch.func.functional_call + autograd.grad with
  create_graph).
- Batch norm: meta-training starts from the `augmented` checkpoint and runs with batch norm in
  eval mode (its running statistics frozen) and dropout off, exactly as adaptation runs at test
  time on one video: per-task batch statistics from 2 windows would be noise, and a train/test
  mismatch in the inner loop is what MAML is most sensitive to.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from distpose_app.core.errors import DistposeError
from distpose_app.core.fileio import torch_save_atomic
from distpose_app.core.progress import Progress
from distpose_app.core.skeleton import FLIP_PERMUTATION
from distpose_app.core.validate import check_number
from distpose_app.data.bodies import sample_bone_factors
from distpose_app.data.lens_sampler import LensSampler
from distpose_app.data.masking import MaskConfig
from distpose_app.lifter import MODEL_FPS, losses
from distpose_app.lifter.model import (
    TemporalModel,
    check_config,
    check_state,
    load_checkpoint,
    save_checkpoint,
)
from distpose_app.lifter.widen import widen
from distpose_app.training.feed import BatchFeed
from distpose_app.training.windows import LensPool, WindowSampler

MODES = ("baseline", "augmented", "meta")


@dataclass
class TrainConfig:
    mode: str = "augmented"
    # model
    filter_widths: tuple[int, ...] = (3, 3, 3)
    channels: int = 256
    dropout: float = 0.25
    causal: bool = True
    # optimisation
    steps: int = 2000
    batch_windows: int = 128
    chunk_frames: int = 16  # output frames per window
    lr: float = 1e-3
    lr_final: float = 1e-4  # exponential decay from lr to lr_final over the run
    # Weight of the bone-length term beside MPJPE (`losses.bone_length_loss`; 0 = MPJPE alone).
    bone_loss: float = 1.0
    noise_px: float = 1.0  # detector-like Gaussian noise on the 2D, pixels (per 1000 px width)
    # The detector-noise model fitted on real detections (`detector_noise.DetectorNoise.to_dict`);
    # when set it replaces the Gaussian noise_px. noise_scale multiplies its error scale;
    # noise_bias: "random" (a per-window joint-definition offset of the fitted size), "fitted"
    # or "none".
    noise_model: dict = field(default_factory=dict)
    noise_scale: float = 1.0
    noise_bias: str = "random"
    # Share of windows given real detection residuals instead of the model's positional error
    # (`data.residual_noise`), from these subjects' detections in the Human3.6M file
    # `noise_residual_file` (set by the CLI from --h36m).
    noise_residuals: float = 0.0
    noise_residual_subjects: tuple[str, ...] = ("S1", "S5")
    noise_residual_file: str = ""
    # Share of windows whose body is resized and re-proportioned (`bodies.BodyConfig`).
    bodies: float = 0.5
    # The mocap sources (`training_sets.SOURCES`); recorded in the checkpoint.
    sources: tuple[str, ...] = ("bandai",)
    # Share of windows drawn from each source (when the data names them); {} = by frame count.
    source_weights: dict = field(default_factory=dict)
    # Within a source, regular expression on view names -> how many times as likely their
    # windows are (`WindowSampler.weight_sources`); {} = all alike.
    content_weights: dict = field(default_factory=dict)
    flip: bool = True
    # Unseen-joint masking (masking.MaskConfig's default rates: legs, lower body, an arm, the
    # head, single joints), so partial webcam views still lift; False trains on full views.
    masking: bool = True
    # Share of training windows seen from a desk webcam's close-up (`closeup_view`): the camera
    # re-aimed between chest and head from 0.4-1.1 m, so the legs and often the hips leave the
    # image.
    closeup: float = 0.15
    seed: int = 0
    val_every: int = 250
    # Where the network trains ("cpu", "cuda", "cuda:1") and how many processes draw its
    # batches (0: the training process itself; `training.feed`). Run settings, not the model's:
    # recorded so that a run can be repeated as it ran.
    device: str = "cpu"
    workers: int = 0
    # meta
    init: str = ""  # checkpoint to start meta-training from (the augmented model)
    widen: int = 0  # with init (baseline/augmented): continue at this many channels (Net2Net)
    tasks_per_batch: int = 16
    support_windows: int = 2
    query_windows: int = 2
    inner_steps: int = 1
    inner_lr: float = 1e-2
    inner_params: str = "bn"
    inner_loss: str = "iso"  # iso | supervised | both
    second_order: bool = False
    sampler: dict = field(default_factory=dict)  # filled from LensSampler.describe()

    def validate(self) -> None:
        if self.mode not in MODES:
            raise DistposeError(f"unknown training mode {self.mode!r}; use one of {MODES}")
        if self.mode == "meta" and not self.init:
            raise DistposeError("meta-training starts from a trained model: pass --init CKPT")
        if self.widen and (self.mode == "meta" or not self.init):
            raise DistposeError("--widen continues a baseline or augmented model: pass --init")
        if self.inner_loss not in ("iso", "supervised", "both"):
            raise DistposeError(f"unknown inner loss {self.inner_loss!r}")
        if not 0.0 <= self.closeup <= 1.0:
            raise DistposeError(f"close-up share must be in [0, 1], got {self.closeup}")
        if self.steps < 1 or self.batch_windows < 1 or self.chunk_frames < 1:
            raise DistposeError("steps, batch windows and chunk frames must be positive")
        if not 0.0 <= self.bodies <= 1.0:
            raise DistposeError(f"body share must be in [0, 1], got {self.bodies}")
        if self.noise_bias not in ("random", "fitted", "none"):
            raise DistposeError(f"unknown noise bias {self.noise_bias!r}")
        if not 0.0 <= self.noise_residuals <= 1.0:
            raise DistposeError(f"residual share must be in [0, 1], got {self.noise_residuals}")
        if self.noise_residuals and not (self.noise_model and self.noise_residual_file):
            raise DistposeError("real detection residuals need the detector-noise model and "
                                "the Human3.6M file (--noise detector)")  # fmt: skip
        if not (self.noise_scale >= 0 and np.isfinite(self.noise_scale)):
            raise DistposeError(f"noise scale must be a finite number >= 0, not {self.noise_scale}")
        # NaN passes every comparison above and below: each number is checked for finiteness
        for name in ("lr", "lr_final", "inner_lr"):
            check_number(name, getattr(self, name), low=0.0, low_open=True)
        check_number("noise_px", self.noise_px, low=0.0)
        check_number("bone_loss", self.bone_loss, low=0.0)
        check_number("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        if self.workers < 0:
            raise DistposeError(f"batch workers must be 0 or more, not {self.workers}")
        if self.workers and self.mode == "meta":
            raise DistposeError("meta-training draws its tasks itself: run it without --workers")
        check_device(self.device)
        if self.mode != "meta":  # meta-training takes its architecture from --init
            check_config({"filter_widths": list(self.filter_widths), "channels": self.channels,
                          "dropout": float(self.dropout)}, "training config")  # fmt: skip


def check_device(device: str) -> torch.device:
    """The torch device for a `--device` string; DistposeError when it is not one this machine
    has (a CUDA device asked for where torch sees none, or an index beyond the count)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise DistposeError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise DistposeError(f"device {device!r}: training runs on cpu or cuda")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if (dev.index or 0) >= count:
        raise DistposeError(f"device {device!r}: torch sees {count} CUDA device(s) here")
    return dev


def _on_model(model: torch.nn.Module, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors on the device of the model's weights (`--device`)."""
    device = next(model.parameters()).device
    return tuple(t.to(device) for t in tensors)


def _masking(config: TrainConfig) -> MaskConfig | None:
    return MaskConfig() if config.masking else None


def _augment(config: TrainConfig, bank=None) -> dict:
    """make_batch's body and detector-noise arguments for a config; bank: the
    `residual_noise.ResidualBank` of real residuals when the config asks for them."""
    noise = None
    if config.noise_model:
        from distpose_app.data.detector_noise import DetectorNoiseSampler

        noise = DetectorNoiseSampler(config.noise_model, config.noise_scale, config.noise_bias,
                                     bank, config.noise_residuals)  # fmt: skip
    return {"bodies": config.bodies, "noise": noise}


def residual_bank(config: TrainConfig, window: int):
    """The real-residual windows `config` asks for (None when it asks for none)."""
    if not config.noise_residuals:
        return None
    from distpose_app.data.residual_noise import ResidualBank, detection_residuals

    subjects = set(config.noise_residual_subjects)
    residuals, lengths = detection_residuals(config.noise_residual_file, subjects, MODEL_FPS)
    return ResidualBank(residuals, lengths, window)


def output_slice(model: TemporalModel, window: int) -> slice:
    """Which input frames of a window the model's outputs belong to."""
    past = model.receptive_field - 1 - model.lookahead_frames
    return slice(past, window - model.lookahead_frames)


def _lr_at(config: TrainConfig, step: int) -> float:
    return config.lr * (config.lr_final / config.lr) ** (step / max(config.steps - 1, 1))


def draw_batch(sampler, lens_sampler, config, augment=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch with the sampler's generator: `config.batch_windows` windows, each
    through its own lens (none for `baseline`), body, detector noise, close-up and mask.
    augment: `_augment`'s arguments (default: from the config, without real residuals).
    Returns (inputs (B, L, 17, 2), targets (B, L, 17, 3)) as `WindowSampler.make_batch`."""
    starts = sampler.random_starts(config.batch_windows)
    lenses = None
    if lens_sampler is not None:
        seqs = sampler.sequence[starts]
        lenses = [sampler.sample_lens(s, lens_sampler) for s in seqs]
    return sampler.make_batch(starts, lenses, config.noise_px, config.flip,
                              masking=_masking(config), closeup=config.closeup,
                              **(augment or _augment(config)))  # fmt: skip


def _draw_with(sampler, lens_sampler, config, augment, rng):
    """`draw_batch` with a worker's own generator (the sampler is the worker's forked copy)."""
    sampler.rng = rng
    return draw_batch(sampler, lens_sampler, config, augment)


def supervised_backward(model, sampler, lens_sampler, config, window, rank=0, world=1,
                        batch=None, augment=None):  # fmt: skip
    """Run this process's share of the global batch forward and backward. Returns the loss.

    batch: (inputs, targets) drawn elsewhere (`training.feed`), else drawn here. Every process
    draws the same global batch (same seed) and keeps windows rank::world, so a step under
    torchrun sees exactly the batch a single process would.
    """
    x, y = draw_batch(sampler, lens_sampler, config, augment) if batch is None else batch
    x, y = _on_model(model, x[rank::world], y[rank::world])
    model.train()
    net = getattr(model, "module", model)
    pred = model(x)
    target = y[:, output_slice(net, window)]
    mpjpe = losses.mpjpe_loss(pred, target)
    (mpjpe + config.bone_loss * losses.bone_length_loss(pred, target)).backward()
    return mpjpe.item()  # the logs and progress report MPJPE alone


def supervised_step(model, optimiser, sampler, lens_sampler, config, window, rank=0, world=1,
                    batch=None, augment=None):  # fmt: skip
    optimiser.zero_grad(set_to_none=True)
    loss = supervised_backward(model, sampler, lens_sampler, config, window, rank, world, batch,
                               augment)  # fmt: skip
    optimiser.step()
    return loss


def inner_loss(config: TrainConfig, pred, target) -> torch.Tensor:
    loss: Any = 0.0  # a tensor once a term is added (TrainConfig allows no empty choice)
    if config.inner_loss in ("iso", "both"):
        loss = loss + losses.symmetry_loss(pred) + losses.consistency_loss(pred)
    if config.inner_loss in ("supervised", "both"):
        loss = loss + losses.mpjpe_loss(pred, target)
    return loss


def adapted_parameters(model, params: dict, names: list[str], x, target, config, out_slice):
    """MAML inner loop: `config.inner_steps` SGD steps on the support loss over `names`.
    Returns the adapted parameter dict (differentiable w.r.t. `params` when second order)."""
    fast = dict(params)
    for _ in range(config.inner_steps):
        pred = functional_call(model, fast, (x,))
        loss = inner_loss(config, pred, target[:, out_slice])
        grads = torch.autograd.grad(
            loss, [fast[n] for n in names], create_graph=config.second_order
        )
        for n, g in zip(names, grads):
            fast[n] = fast[n] - config.inner_lr * g
    return fast


# The k1 values the lens inner loop chooses from (normalised screen units, see adapt.lens_fit).
LENS_INNER_GRID = tuple(np.round(np.linspace(-0.6, 0.9, 11), 3))


def meta_step(model, optimiser, sampler, lens_sampler, config, window, inner_names, rank=0,
              world=1, augment=None):  # fmt: skip
    """One MAML outer step over `tasks_per_batch` lens tasks. Returns the mean query MPJPE.
    Under torchrun every process draws every task and runs tasks rank::world."""
    model.eval()  # batch norm on running statistics, dropout off: see the module docstring
    params = dict(model.named_parameters())
    sl = output_slice(model, window)
    optimiser.zero_grad(set_to_none=True)
    total = 0.0
    for task in range(config.tasks_per_batch):
        sup, qry = sampler.task_starts(1, config.support_windows, config.query_windows)
        s = sampler.sequence[sup[0]]
        lens = sampler.sample_lens(s, lens_sampler)
        flip = bool(sampler.rng.random() < 0.5) and config.flip
        task_rng = np.random.default_rng(sampler.rng.integers(2**63))  # this task's noise
        if task % world != rank:
            continue
        # One camera per task: the close-up choice is drawn once for all its windows.
        closeup = np.full(len(sup) + len(qry), task_rng.random() < config.closeup)
        # One person per task: the same body for its support and query windows.
        n = len(sup) + len(qry)
        body = np.repeat(sample_bone_factors(task_rng, 1), n, axis=0)
        bodies = body if task_rng.random() < config.bodies else 0.0
        task_augment = {**(augment or _augment(config)), "bodies": bodies}
        x, y = sampler.make_batch(np.concatenate([sup, qry]), [lens] * n, config.noise_px, False,
                                  task_rng, _masking(config), closeup, **task_augment)  # fmt: skip
        if flip:
            x = x[..., FLIP_PERMUTATION, :] * torch.tensor([-1.0, 1.0])
            y = y[..., FLIP_PERMUTATION, :] * torch.tensor([-1.0, 1.0, 1.0])
        x, y = _on_model(model, x, y)
        ns = len(sup)
        if config.inner_params == "lens":
            from distpose_app.adapt.lens_fit import LensAdaptConfig, k1_grid_search
            from distpose_app.lifter.model import undistort_screen

            k1, _ = k1_grid_search(model, x[:ns], LENS_INNER_GRID, LensAdaptConfig().focal)
            lens = torch.tensor([k1, 0.0, 0.0, 0.0, 0.0], device=x.device)
            pred = model(undistort_screen(x[ns:], lens))
            loss = losses.mpjpe_loss(pred, y[ns:, sl]) / config.tasks_per_batch
            loss.backward()
            total += loss.item()
            continue
        fast = adapted_parameters(model, params, inner_names, x[:ns], y[:ns], config, sl)
        if not config.second_order:
            # FOMAML: the adapted weights are treated as a shift of the originals.
            fast = {n: params[n] + (fast[n] - params[n]).detach() for n in params}
        pred = functional_call(model, fast, (x[ns:],))
        mpjpe = losses.mpjpe_loss(pred, y[ns:, sl]) / config.tasks_per_batch
        bones = losses.bone_length_loss(pred, y[ns:, sl]) / config.tasks_per_batch
        (mpjpe + config.bone_loss * bones).backward()
        total += mpjpe.item()
    if world > 1:
        from distpose_app.training.distributed import average_gradients

        average_gradients(model.parameters())
    optimiser.step()
    return total


@torch.no_grad()
def validation_mpjpe(model, sampler, lens_sampler, config, window, batches: int = 4) -> float:
    """Mean MPJPE (metres) on a fixed set of validation windows (fixed seed)."""
    state = sampler.rng
    sampler.rng = np.random.default_rng(1234)
    model.eval()
    errors = []
    for _ in range(batches):
        starts = sampler.random_starts(config.batch_windows)
        lenses = None
        if lens_sampler is not None:
            lenses = [sampler.sample_lens(s, lens_sampler) for s in sampler.sequence[starts]]
        x, y = sampler.make_batch(starts, lenses, config.noise_px, False,
                                  noise=_augment(config)["noise"])  # fmt: skip
        x, y = _on_model(model, x, y)
        errors.append(float(losses.mpjpe_loss(model(x), y[:, output_slice(model, window)])))
    sampler.rng = state
    return float(np.mean(errors))


def train(config: TrainConfig, train_data, val_data, out_dir: str | Path, resume: bool = True,
          progress: bool = True) -> Path:  # fmt: skip
    """Train a model; writes out_dir/{last.pt, best.pt, log.jsonl, config.json}.

    train_data / val_data: objects with positions_3d, sequence, intrinsics, image_size (the
    dataset builder's SyntheticSet or the external format). Resumes from out_dir/last.pt when
    present and `resume`. Returns the path of the best-validation checkpoint.
    """
    from distpose_app.training import distributed

    config.validate()
    rank, world = distributed.init_from_env()
    if config.mode != "meta" and config.batch_windows % world:
        raise DistposeError(f"--batch {config.batch_windows} must divide by {world} processes")
    if world > 1 and (config.workers or config.device != "cpu"):
        raise DistposeError("under torchrun, train on the CPU without --workers (one GPU: "
                            "--device cuda --workers N in one process)")  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    if config.init:  # meta always; baseline/augmented continue a model (its architecture kept)
        model, init_meta = load_checkpoint(config.init)
        model.input_lens.zero_()  # train on the network alone, never on a fitted lens
        if config.widen:
            model = widen(model, config.widen, seed=config.seed)
        # The recorded configuration describes the network trained, not the defaults.
        config.filter_widths = tuple(model.filter_widths)
        config.channels, config.causal = model.channels, model.causal
    else:
        model = TemporalModel(
            filter_widths=tuple(config.filter_widths),
            channels=config.channels,
            dropout=config.dropout,
            causal=config.causal,
        )
    lens_sampler = None if config.mode == "baseline" else LensSampler()
    config.sampler = lens_sampler.describe() if lens_sampler else {"lens": "none"}
    window = model.receptive_field - 1 + config.chunk_frames
    sampler = WindowSampler(train_data.positions_3d, train_data.sequence, train_data.intrinsics,
                            train_data.image_size, window, rng)  # fmt: skip
    sampler.lens_pool = LensPool()
    source = getattr(train_data, "source", None)
    if (config.source_weights or config.content_weights) and source is not None:
        names = getattr(train_data, "names", None)
        sampler.weight_sources(source, config.source_weights or None, names,
                               config.content_weights)  # fmt: skip
    elif config.content_weights:
        raise DistposeError("content weights need training data with named, sourced views")
    val = WindowSampler(val_data.positions_3d, val_data.sequence, val_data.intrinsics,
                        val_data.image_size, window, np.random.default_rng(0))  # fmt: skip
    model.to(check_device(config.device))  # before the optimiser: its state follows the weights
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, amsgrad=True)
    inner_names = [
        n
        for n, _ in model.named_parameters()
        if config.inner_params != "lens" and _in_group(model, n, config.inner_params)
    ]

    step, best, elapsed = 0, float("inf"), 0.0
    last = out / "last.pt"
    if resume and last.is_file():
        step, best, elapsed = _load_resume(last, model, optimiser, sampler)
    net = model  # the bare model: checkpoints, validation, meta steps
    stepped: torch.nn.Module = model  # what supervised steps run: DDP-wrapped across processes
    if world > 1 and config.mode != "meta":
        distributed.convert_batch_norm(net)
        stepped = torch.nn.parallel.DistributedDataParallel(net)
    main = rank == 0  # only the first process writes files and shows progress
    if main:
        (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    # A fresh run starts a fresh log; a resumed one appends to it.
    log = open(out / "log.jsonl", "a" if step else "w") if main else None
    bar = Progress(config.steps, f"train {config.mode}", enabled=progress and main, initial=step)
    t0 = time.perf_counter() - elapsed
    running = []
    # Batches drawn by worker processes (`--workers`), else by this one in each step.
    augment = _augment(config, residual_bank(config, window))  # built once: the bank is large
    feed = None
    if config.workers:
        draw = partial(_draw_with, sampler, lens_sampler, config, augment)
        feed = BatchFeed(draw, config.workers, config.seed, first_step=step)
    try:
        while step < config.steps:
            for g in optimiser.param_groups:
                g["lr"] = _lr_at(config, step)
            if config.mode == "meta":
                loss = meta_step(net, optimiser, sampler, lens_sampler, config, window,
                                 inner_names, rank, world, augment)  # fmt: skip
            else:
                batch = None if feed is None else feed.next()
                loss = supervised_step(stepped, optimiser, sampler, lens_sampler, config, window,
                                       rank, world, batch, augment)  # fmt: skip
            running.append(loss)
            step += 1
            if main and (step % config.val_every == 0 or step == config.steps):
                val_mpjpe = validation_mpjpe(net, val, lens_sampler, config, window)
                record = {"step": step, "train_mpjpe_mm": 1000 * float(np.mean(running)),
                          "val_mpjpe_mm": 1000 * val_mpjpe, "lr": _lr_at(config, step - 1),
                          "seconds": time.perf_counter() - t0}  # fmt: skip
                running = []
                assert log is not None  # open on the main process
                log.write(json.dumps(record) + "\n")
                log.flush()
                meta = _metadata(config, step, record, window)
                if val_mpjpe < best:
                    best = val_mpjpe
                    save_checkpoint(out / "best.pt", net, meta)
                _save_resume(last, net, optimiser, step, best, time.perf_counter() - t0, sampler)
            bar.update(1, postfix=f"loss {1000 * loss:6.1f} mm")
    finally:
        if feed is not None:
            feed.close()
    bar.close()
    if main:
        assert log is not None
        log.close()
        save_checkpoint(out / "final.pt", net, _metadata(config, step, {}, window))
    distributed.shutdown()
    return out / "best.pt"


def _in_group(model, name: str, group: str) -> bool:
    from distpose_app.adapt.iso import select_parameters

    ids = {id(p) for p in select_parameters(model, group)}
    return id(dict(model.named_parameters())[name]) in ids


def _metadata(config: TrainConfig, step: int, record: dict, window: int) -> dict:
    from distpose_app import __version__

    return {
        "name": config.mode,
        "distpose_version": __version__,
        "fps": MODEL_FPS,
        "train_config": asdict(config),
        "lens_sampler": config.sampler,
        "step": step,
        "validation": record,
        "adaptation": {
            "inner_steps": config.inner_steps,
            "inner_lr": config.inner_lr,
            "inner_params": config.inner_params,
            "inner_loss": config.inner_loss,
        }
        if config.mode == "meta"
        else {},
    }


def _save_resume(path: Path, model, optimiser, step, best, elapsed, sampler) -> None:
    """The state to resume training from, as tensors and plain types only (the numpy generator's
    state as JSON text), so that `_load_resume` reads it with torch.load(weights_only=True)."""
    payload = {
        "format": "distpose-resume",
        "state_dict": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "step": int(step),
        "best": float(best),
        "elapsed": float(elapsed),
        "rng": json.dumps(sampler.rng.bit_generator.state),
        "torch_rng": torch.get_rng_state(),
    }
    torch_save_atomic(payload, path)


def _load_resume(path: Path, model, optimiser, sampler) -> tuple[int, float, float]:
    """Restore what `_save_resume` wrote into model, optimiser and sampler; returns (step, best,
    elapsed). The file is untrusted like any other (weights_only=True: nothing is unpickled);
    one that does not load raises DistposeError naming it."""

    def fail(problem: str) -> DistposeError:
        return DistposeError(f"cannot resume from {path}: {problem} (start over with "
                             "--no-resume, or delete the file)")  # fmt: skip

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or crafted files
        raise fail(f"unreadable or not a resume file ({type(exc).__name__})") from None
    keys = ("state_dict", "optimiser", "step", "best", "elapsed", "rng", "torch_rng")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise fail("not a resume file")
    try:
        check_state(state["state_dict"], str(path))
        model.load_state_dict(state["state_dict"])
        optimiser.load_state_dict(state["optimiser"])
        rng = state["rng"]
        sampler.rng.bit_generator.state = json.loads(rng) if isinstance(rng, str) else rng
        torch.set_rng_state(state["torch_rng"])
        step, best, elapsed = int(state["step"]), float(state["best"]), float(state["elapsed"])
    except (DistposeError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        detail = " ".join(str(exc).split())[:160]
        raise fail(f"it does not fit this run ({detail})") from None
    if step < 0 or not math.isfinite(elapsed) or math.isnan(best):
        raise fail(f"bad step {step}, best {best} or elapsed {elapsed}")
    return step, best, elapsed
