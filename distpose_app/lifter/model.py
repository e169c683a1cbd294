"""The 2D → 3D lifter: VideoPose3D's TemporalModel, streaming inference, checkpoints, devices.

The network is VideoPose3D's (Pavllo et al., CVPR 2019) with its attribute names, so its
state_dict layout matches: `expand_conv`/`expand_bn`, then per block a dilated conv and a 1x1
conv (`layers_conv[2i]`, `layers_conv[2i+1]` with `layers_bn`), a residual around each block,
and `shrink` to 17*3. Output frame alignment, for input frames 0..T-1 and receptive field RF:
output i is the pose of frame i + RF-1 (causal) or i + (RF-1)/2 (symmetric).

Root-relative output: the network predicts all 17 joints as VideoPose3D does, and we subtract
the predicted root (joint 0) so that the root is exactly zero. The targets are root-relative
anyway, so this costs nothing and makes every consumer's "root is 0" assumption hold exactly.

Unseen joints: every public entry point takes 2D keypoints (..., 17, 2) in which a
joint the detector did not see (out of the image, low confidence) is NaN. A model with
in_features=3 (all models trained since) sees (x, y, seen) per joint, with x = y = 0 where
unseen, and was trained with random masking of the legs, the lower body, one arm and the head
(`masking.py`), so it still predicts all 17 joints. A 2-feature model gets the zeros only.
"""

from __future__ import annotations

import inspect
import json
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from distpose_app.core import paths
from distpose_app.core.errors import DistposeError, WeightsError
from distpose_app.core.fileio import to_jsonable, torch_save_atomic
from distpose_app.core.skeleton import NUM_JOINTS

CHECKPOINT_FORMAT = "distpose-lifter"
FORMAT_VERSION = 1
PRETRAINED_DIR = paths.PRETRAINED_DIR
# The shipped model the app and `distpose process` use: causal (0 frames of latency), lowest
# MPJPE on every evaluated lens (pretrained/MODEL_CARD.md).
DEFAULT_LIVE_MODEL = "meta"


def encode_keypoints(keypoints: torch.Tensor, in_features: int) -> torch.Tensor:
    """keypoints (..., J, 2), NaN where unseen -> the network's input (..., J, in_features):
    (x, y, seen) with x = y = 0 where unseen for in_features 3, (x, y) with zeros for 2.
    Differentiable in the seen coordinates (torch.where, so NaN never reaches a gradient)."""
    seen = torch.isfinite(keypoints).all(-1, keepdim=True)
    xy = torch.where(seen, keypoints, torch.zeros((), dtype=keypoints.dtype))
    if in_features == 2:
        return xy
    return torch.cat([xy, seen.to(keypoints.dtype)], dim=-1)


# The input lens (`adapt.lens_fit`): a radial undistortion of the 2D input in
# normalised screen coordinates, stored in the model as a buffer so that adapted "weights" (a
# state_dict), saved adaptations, revert and streaming all carry it unchanged. Parameters
# (k1, k2, log scale, cx, cy); all zero = identity, the state of every trained model:
#   u = c + exp(log_scale) * (d - c) * g(r),  r = |d - c|,
#   g = 1 + k1 r^2 + k2 r^4 for k1 >= 0 (barrel undistortion: stretch the periphery) and
#   g = 1 / (1 - k1 r^2) + k2 r^4 for k1 < 0 (pincushion: a division model, which shrinks the
#   periphery and stays monotonic out to r = 1/sqrt(-k1), where 1 + k1 r^2 folds already at
#   1/sqrt(-3 k1): a pincushion correction then fits inside the image).
# The two branches agree to first order in k1, so the map is smooth through the identity.
INPUT_LENS_PARAMETERS = ("k1", "k2", "log_scale", "cx", "cy")


def undistort_screen(keypoints: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """keypoints (..., J, 2) normalised screen coordinates, NaN where unseen; params (5,)
    (k1, k2, log_scale, cx, cy) -> undistorted (..., J, 2), NaN kept. Differentiable in both;
    NaN never reaches a gradient (unseen joints are zero-filled before the arithmetic)."""
    seen = torch.isfinite(keypoints).all(-1, keepdim=True)
    d = torch.where(seen, keypoints, torch.zeros((), dtype=keypoints.dtype))
    k1, k2, log_scale = params[0], params[1], params[2]
    c = params[3:5].to(d.dtype)
    v = d - c
    r2 = (v * v).sum(-1, keepdim=True)
    radial = torch.where(k1 >= 0, 1 + k1 * r2, 1 / (1 - torch.clamp(k1, max=0.0) * r2))
    u = c + torch.exp(log_scale) * v * (radial + k2 * r2 * r2)
    return torch.where(seen, u, torch.full((), float("nan"), dtype=keypoints.dtype))


class TemporalModel(nn.Module):
    """VideoPose3D's temporal convolutional lifter (symmetric or causal).

    forward: x (B, T, J, 2) normalised screen coordinates, NaN for unseen joints,
    T >= receptive_field -> (B, T - RF + 1, J, out_features) root-relative metres (joint 0
    exactly zero). in_features: 3 = (x, y, seen) per joint, 2 = coordinates only (models
    trained before unseen-joint masking).
    """

    input_lens: torch.Tensor  # buffer (len(INPUT_LENS_PARAMETERS),); zeros = identity
    metadata: dict[str, Any]  # set by load_checkpoint; copies of the model carry it

    def __init__(
        self,
        num_joints: int = NUM_JOINTS,
        in_features: int = 3,
        out_features: int = 3,
        filter_widths: tuple[int, ...] = (3, 3, 3),
        channels: int = 256,
        dropout: float = 0.25,
        causal: bool = False,
    ):
        super().__init__()
        widths = tuple(int(w) for w in filter_widths)
        if not widths or any(w < 1 or w % 2 == 0 for w in widths):
            raise DistposeError(f"filter widths must be odd and positive, got {filter_widths}")
        if channels < 1 or not 0.0 <= dropout < 1.0:
            raise DistposeError(f"bad model size: channels={channels}, dropout={dropout}")
        self.num_joints, self.in_features, self.out_features = num_joints, in_features, out_features
        self.filter_widths, self.channels = widths, int(channels)
        self.dropout_p, self.causal = float(dropout), bool(causal)

        self.drop = nn.Dropout(dropout)
        self.relu = nn.ReLU(inplace=True)
        self.expand_conv = nn.Conv1d(num_joints * in_features, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        # pad[i]: frames each side a layer consumes; shift: where the residual is taken from
        # (centre for symmetric, the last column for causal), as in VideoPose3D.
        self.pad = [widths[0] // 2]
        self.causal_shift = [widths[0] // 2 if causal else 0]
        self.dilations = [1]
        convs, bns = [], []
        dilation = widths[0]
        for w in widths[1:]:
            self.pad.append((w - 1) * dilation // 2)
            self.causal_shift.append((w // 2) * dilation if causal else 0)
            self.dilations.append(dilation)
            convs.append(nn.Conv1d(channels, channels, w, dilation=dilation, bias=False))
            bns.append(nn.BatchNorm1d(channels, momentum=0.1))
            convs.append(nn.Conv1d(channels, channels, 1, bias=False))
            bns.append(nn.BatchNorm1d(channels, momentum=0.1))
            dilation *= w
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(bns)
        # Registered last so that "the last Conv1d in modules()" is the output layer.
        self.shrink = nn.Conv1d(channels, num_joints * out_features, 1)
        self.register_buffer("input_lens", torch.zeros(len(INPUT_LENS_PARAMETERS)))

    def prepare_input(self, keypoints: torch.Tensor) -> torch.Tensor:
        """keypoints (..., J, 2), NaN = unseen -> the network's input (..., J, in_features):
        the input lens applied (when not the identity), then `encode_keypoints`."""
        if bool(self.input_lens.any()):
            keypoints = undistort_screen(keypoints, self.input_lens)
        return encode_keypoints(keypoints, self.in_features)

    @property
    def receptive_field(self) -> int:
        """Input frames needed for one output frame (27, 81, 243 for 3-wide filters)."""
        return 1 + 2 * sum(self.pad)

    @property
    def lookahead_frames(self) -> int:
        """Future frames an output needs: (RF-1)/2 symmetric, 0 causal (the latency in frames)."""
        return 0 if self.causal else (self.receptive_field - 1) // 2

    @property
    def config(self) -> dict:
        """Keyword arguments that rebuild this architecture: TemporalModel(**model.config)."""
        return {
            "num_joints": self.num_joints,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "filter_widths": list(self.filter_widths),
            "channels": self.channels,
            "dropout": self.dropout_p,
            "causal": self.causal,
        }

    def set_bn_momentum(self, momentum: float) -> None:
        """Batch-norm momentum for every layer (VideoPose3D decays it during training)."""
        for bn in [self.expand_bn, *self.layers_bn]:
            bn.momentum = momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, J, 2), NaN = unseen -> (B, T - RF + 1, J, out_features), root joint zero.

        With T == RF (one output frame a window, how training draws independent windows) the
        same weights run strided (VideoPose3D's TemporalModelOptimized1f): each layer computes
        only the columns the single output reads, about a third of the work."""
        if x.dim() != 4 or x.shape[-2:] != (self.num_joints, 2):
            raise ValueError(f"expected (B, T, {self.num_joints}, 2), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        x = self.prepare_input(x).reshape(b, t, -1).permute(0, 2, 1)
        if t == self.receptive_field:
            return self._root_relative(self._forward_single(x), b)
        x = self.drop(self.relu(self.expand_bn(self.expand_conv(x))))
        for i in range(len(self.pad) - 1):
            pad, shift = self.pad[i + 1], self.causal_shift[i + 1]
            res = x[:, :, pad + shift : x.shape[2] - pad + shift]
            x = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](x))))
            x = res + self.drop(
                self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x)))
            )
        return self._root_relative(x, b)

    def _forward_single(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, RF) encoded input -> (B, channels, 1): the dense forward's one output
        column, each dilated conv run with its dilation as stride (its kernel's columns are
        then adjacent) and the residual taken from the column the dense path reads."""
        f = nn.functional
        expand = f.conv1d(x, self.expand_conv.weight, stride=self.filter_widths[0])
        x = self.drop(self.relu(self.expand_bn(expand)))
        for i in range(len(self.pad) - 1):
            w = self.filter_widths[i + 1]
            res = x[:, :, (w // 2 if self.causal else 0) + w // 2 :: w]
            weight: torch.Tensor = self.layers_conv[2 * i].weight  # type: ignore[assignment]
            x = self.drop(self.relu(self.layers_bn[2 * i](f.conv1d(x, weight, stride=w))))
            x = res + self.drop(
                self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x)))
            )
        return x

    def _root_relative(self, x: torch.Tensor, b: int) -> torch.Tensor:
        x = self.shrink(x).permute(0, 2, 1).reshape(b, -1, self.num_joints, self.out_features)
        return x - x[:, :, :1]


def fold_batch_norm(
    conv: nn.Conv1d, bn: nn.BatchNorm1d | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BN into the conv before it, as one matrix acting on a window.

    Returns W (C_out, k*C_in) and b (C_out,) such that BN(conv(x)) at one output column equals
    W @ window.flatten() + b, where window (k, C_in) holds the k input columns the conv reads
    (oldest first, at the conv's dilation).
    """
    weight = conv.weight.detach()  # (C_out, C_in, k)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(weight.shape[0])
    bias = bias.to(weight)
    if bn is not None:
        assert bn.running_var is not None and bn.running_mean is not None  # track_running_stats
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        weight = weight * scale[:, None, None]
        bias = (bias - bn.running_mean) * scale + bn.bias.detach()
    return weight.permute(0, 2, 1).reshape(weight.shape[0], -1).contiguous(), bias.contiguous()


class _Layer:
    """One conv (+ folded BN) over a history of its input columns, producing one column a push."""

    def __init__(self, conv, bn, relu: bool, residual_back: int | None, device):
        w, b = fold_batch_norm(conv, bn)
        self.weight, self.bias = w.to(device), b.to(device)
        self.k, self.dilation = conv.kernel_size[0], conv.dilation[0]
        self.span = (self.k - 1) * self.dilation + 1  # input columns the conv reads
        self.relu = relu
        # For a block's first conv: how many columns back from the newest the residual sits.
        self.residual_back = residual_back
        self.history: deque[torch.Tensor] = deque(maxlen=self.span)

    def push(self, column: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """column (C_in,) -> (output (C_out,), residual column or None), or None while filling."""
        self.history.append(column)
        if len(self.history) < self.span:
            return None
        window = torch.cat([self.history[j] for j in range(0, self.span, self.dilation)])
        out = torch.addmv(self.bias, self.weight, window)
        if self.relu:
            out.clamp_(min=0)
        res = None if self.residual_back is None else self.history[-1 - self.residual_back]
        return out, res


class StreamingLifter:
    """Frame-by-frame lifting with cached per-layer activations: each push costs one column per
    layer (O(layers) small matrix-vector products) instead of a full receptive-field window.

    Uses the model's eval behaviour (BN running statistics folded into the convs, no dropout)
    and a snapshot of its weights: call `refresh()` after the weights change (e.g. adaptation).
    Output of push number n (0-based, n >= RF-1) is the pose of input frame n - output_lag.
    """

    def __init__(self, model: TemporalModel, device: str | torch.device = "cpu"):
        self.model = model
        self.device = torch.device(device)
        self.refresh()

    @property
    def receptive_field(self) -> int:
        return self.model.receptive_field

    @property
    def output_lag(self) -> int:
        """Frames between the newest input and the pose returned (lookahead; 0 for causal)."""
        return self.model.lookahead_frames

    @torch.inference_mode()
    def refresh(self) -> None:
        """Re-read (fold) the model's current weights and input lens, and clear the history."""
        m = self.model
        # The input lens on the lifter's device, None for the identity: a frame then costs no
        # check of it (and a model kept on another device than the lifter still works).
        lens = m.input_lens.detach()
        self._input_lens = lens.to(self.device).clone() if bool(lens.any()) else None
        self._expand = _Layer(m.expand_conv, m.expand_bn, True, None, self.device)
        self._blocks = []
        for i in range(len(m.pad) - 1):
            back = m.pad[i + 1] - m.causal_shift[i + 1]  # centre (symmetric) or 0 (causal)
            first = _Layer(m.layers_conv[2 * i], m.layers_bn[2 * i], True, back, self.device)
            second = _Layer(m.layers_conv[2 * i + 1], m.layers_bn[2 * i + 1], True, None,
                            self.device)  # fmt: skip
            self._blocks.append((first, second))
        self._shrink = _Layer(m.shrink, None, False, None, self.device)
        self.reset()

    def reset(self) -> None:
        """Forget all frames (a new sequence, or after a tracking gap)."""
        for layer in [self._expand, *(l for pair in self._blocks for l in pair), self._shrink]:
            layer.history.clear()

    @torch.inference_mode()
    def push(self, keypoints: np.ndarray | torch.Tensor) -> np.ndarray | None:
        """keypoints (17, 2) normalised screen coordinates of the newest frame, NaN for unseen
        joints -> (17, 3) float32 root-relative metres of frame (newest - output_lag), or None
        for the first RF-1 pushes."""
        m = self.model
        x = torch.as_tensor(keypoints, dtype=torch.float32).to(self.device)
        if self._input_lens is not None:
            x = undistort_screen(x, self._input_lens)
        x = encode_keypoints(x, m.in_features).reshape(-1)
        step = self._expand.push(x)
        if step is None:
            return None
        h = step[0]
        for first, second in self._blocks:
            step = first.push(h)
            if step is None:
                return None
            inner, res = step
            # A block's second conv is 1 wide and the first one keeps a residual: neither is None.
            second_out = second.push(inner)
            assert res is not None and second_out is not None
            h = res + second_out[0]
        shrunk = self._shrink.push(h)  # 1 wide: never filling
        assert shrunk is not None
        out = shrunk[0].reshape(m.num_joints, m.out_features)
        return (out - out[:1]).cpu().numpy()

    def push_batch(self, keypoints: np.ndarray) -> np.ndarray:
        """keypoints (N, 17, 2) in time order -> (M, 17, 3) metres, the M <= N outputs produced."""
        outs = [o for o in (self.push(k) for k in keypoints) if o is not None]
        shape = (0, self.model.num_joints, self.model.out_features)
        return np.stack(outs) if outs else np.zeros(shape, np.float32)


class NaiveLifter:
    """Reference for StreamingLifter's speed: the whole RF window through the model per frame.
    Same push/reset/output_lag interface."""

    def __init__(self, model: TemporalModel, device: str | torch.device = "cpu"):
        self.model, self.device = model, torch.device(device)
        self.output_lag = model.lookahead_frames
        self.frames: deque[torch.Tensor] = deque(maxlen=model.receptive_field)

    def reset(self) -> None:
        self.frames.clear()

    @torch.inference_mode()
    def push(self, keypoints: np.ndarray | torch.Tensor) -> np.ndarray | None:
        """keypoints (17, 2) normalised -> (17, 3) metres of frame newest - output_lag, or None."""
        self.frames.append(torch.as_tensor(keypoints, dtype=torch.float32))
        if len(self.frames) < self.model.receptive_field:
            return None
        window = torch.stack(list(self.frames))[None].to(self.device)
        return self.model(window)[0, 0].cpu().numpy()


def resolve_device(spec: str) -> torch.device:
    """ "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N" -> torch.device."""
    spec = str(spec).strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DistposeError("CUDA requested but not available; use --device cpu or auto")
        try:
            device = torch.device(spec)
        except RuntimeError as e:
            raise DistposeError(f"bad device {spec!r}: {e}") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DistposeError(f"CUDA device {device.index} does not exist "
                                f"({torch.cuda.device_count()} found)")  # fmt: skip
        return device
    raise DistposeError(f"unknown device {spec!r}; use auto, cpu or cuda")


def save_checkpoint(path: str | Path, model: TemporalModel, metadata: dict | None = None) -> Path:
    """Write config + weights + JSON-able metadata to `path` atomically (temp file, os.replace).

    Metadata gets `format_version` and `num_joints` added; it is stored as plain JSON types so
    that loading needs no pickled objects (torch.load(weights_only=True)).
    """
    path = Path(path)
    meta = json.loads(json.dumps(dict(metadata or {}), default=to_jsonable))
    meta.update(format_version=FORMAT_VERSION, num_joints=model.num_joints)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": meta,
    }
    return torch_save_atomic(payload, path)


# A checkpoint is untrusted input: its config is checked before anything is allocated (a
# crafted one could ask for hundreds of gigabytes) and its tensors before they are used.
CONFIG_KEYS = ("num_joints", "in_features", "out_features", "filter_widths", "channels",
               "dropout", "causal")  # fmt: skip
MAX_CHANNELS = 4096
MAX_FILTER_WIDTH = 243
MAX_BLOCKS = 8
MAX_RECEPTIVE_FIELD = 2187  # frames: 3^7, beyond any VideoPose3D configuration
MAX_PARAMETERS = 100_000_000  # 400 MB of float32; the shipped models have about 1 M
# Loose limits on the input lens (k1, k2, log scale, cx, cy): ten times what lens adaptation
# fits (adapt.lens_fit bounds), so a sane saved state always passes and NaN or 1e30 never does.
INPUT_LENS_LIMITS = (10.0, 10.0, float(np.log(20.0)), 1.5, 1.5)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(config, label: str = "checkpoint") -> dict:
    """The architecture `config` (TemporalModel keyword arguments) if it is one we can build
    within sane sizes: only known keys, right types, at most MAX_CHANNELS channels,
    MAX_BLOCKS blocks of odd widths up to MAX_FILTER_WIDTH, MAX_RECEPTIVE_FIELD frames and
    MAX_PARAMETERS parameters. WeightsError naming `label` and the problem otherwise; nothing is
    allocated before the check passes."""
    if not isinstance(config, dict):
        raise WeightsError(f"{label}: model config is not a dictionary")
    unknown = sorted(str(k) for k in config if k not in CONFIG_KEYS)
    if unknown:
        raise WeightsError(f"{label}: unknown model config key(s) {', '.join(unknown)[:200]}")
    defaults = inspect.signature(TemporalModel).parameters
    c = {**{k: p.default for k, p in defaults.items()}, **config}
    for key in ("num_joints", "in_features", "out_features", "channels"):
        if not _is_int(c[key]) or c[key] < 1:
            raise WeightsError(f"{label}: model config {key} = {c[key]!r} is not a positive int")
    if c["in_features"] not in (2, 3) or c["out_features"] != 3:
        raise WeightsError(f"{label}: model config features in={c['in_features']} "
                           f"out={c['out_features']}, expected in 2 or 3, out 3")  # fmt: skip
    if c["channels"] > MAX_CHANNELS:
        raise WeightsError(f"{label}: model config asks for {c['channels']} channels "
                           f"(at most {MAX_CHANNELS})")  # fmt: skip
    widths = c["filter_widths"]
    if (
        not isinstance(widths, list | tuple)
        or not 1 <= len(widths) <= MAX_BLOCKS + 1
        or not all(_is_int(w) and 1 <= w <= MAX_FILTER_WIDTH and w % 2 for w in widths)
    ):
        raise WeightsError(f"{label}: model config filter_widths {str(widths)[:80]} must be 1 to "
                           f"{MAX_BLOCKS + 1} odd ints up to {MAX_FILTER_WIDTH}")  # fmt: skip
    receptive_field = int(np.prod([float(w) for w in widths]))
    if receptive_field > MAX_RECEPTIVE_FIELD:
        raise WeightsError(
            f"{label}: model config filter_widths {list(widths)} give a receptive "
            f"field of {receptive_field} frames (at most {MAX_RECEPTIVE_FIELD})"
        )
    ch, joints = c["channels"], c["num_joints"]
    parameters = (joints * c["in_features"] * ch * widths[0]
                  + sum(ch * ch * (w + 1) for w in widths[1:]) + ch * joints * 3)  # fmt: skip
    if parameters > MAX_PARAMETERS:
        raise WeightsError(f"{label}: model config asks for {parameters:,} parameters "
                           f"(at most {MAX_PARAMETERS:,})")  # fmt: skip
    if (
        isinstance(c["dropout"], bool)
        or not isinstance(c["dropout"], int | float)
        or not (0.0 <= c["dropout"] < 1.0)
    ):
        raise WeightsError(f"{label}: model config dropout {c['dropout']!r} is not in [0, 1)")
    if not isinstance(c["causal"], bool):
        raise WeightsError(f"{label}: model config causal {c['causal']!r} is not true/false")
    return dict(config)


def check_state(state: dict, label: str = "checkpoint") -> None:
    """WeightsError naming `label` unless every value is a tensor, floating ones finite, and the
    input lens within INPUT_LENS_LIMITS (NaN or huge values there freeze the pose silently)."""
    for key, value in state.items():
        if not torch.is_tensor(value):
            raise WeightsError(f"{label}: weight {str(key)[:60]} is not a tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise WeightsError(f"{label}: weight {key} holds NaN or infinite values")
    lens = state.get("input_lens")
    if lens is not None:
        values = lens.detach().reshape(-1).double().tolist()
        if len(values) != len(INPUT_LENS_PARAMETERS):
            raise WeightsError(f"{label}: input_lens has {len(values)} values, expected "
                               f"{len(INPUT_LENS_PARAMETERS)}")  # fmt: skip
        for name, v, limit in zip(INPUT_LENS_PARAMETERS, values, INPUT_LENS_LIMITS, strict=True):
            if not abs(v) <= limit:
                raise WeightsError(f"{label}: input_lens {name} = {v:g} is outside ±{limit:g}")


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", num_joints: int = NUM_JOINTS
) -> tuple[TemporalModel, dict]:
    """Read a checkpoint written by save_checkpoint -> (model in eval mode, metadata dict).

    metadata also carries "config" (the architecture). Raises WeightsError naming the file and
    the problem: missing, truncated / not a checkpoint, wrong format version, a joint count other
    than `num_joints`, or weights that do not fit the stored architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for damaged zips/pickles
        raise WeightsError(f"{path}: truncated or not a distpose checkpoint "
                           f"({type(e).__name__})") from None  # fmt: skip
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path}: not a distpose checkpoint (no '{CHECKPOINT_FORMAT}' header)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise WeightsError(f"{path}: checkpoint format version {version}, this distpose reads "
                           f"version {FORMAT_VERSION}")  # fmt: skip
    config = payload.get("config")
    if not isinstance(config, dict) or not isinstance(payload.get("state_dict"), dict):
        raise WeightsError(f"{path}: checkpoint lacks its config or state_dict")
    if config.get("num_joints") != num_joints:
        raise WeightsError(f"{path}: model has {str(config.get('num_joints'))[:20]} joints, "
                           f"expected {num_joints} (H36M-17)")  # fmt: skip
    check_config(config, str(path))
    state = dict(payload["state_dict"])
    # Checkpoints from before the input lens: the identity lens.
    state.setdefault("input_lens", torch.zeros(len(INPUT_LENS_PARAMETERS)))
    check_state(state, str(path))
    try:
        model = TemporalModel(**config)
    except (TypeError, DistposeError) as e:
        raise WeightsError(f"{path}: invalid model config {config}: {e}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise WeightsError(f"{path}: weights do not match the config {config}: "
                           f"{detail[:300]}") from None  # fmt: skip
    metadata = payload.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    metadata["config"] = config
    model.metadata = metadata  # travels with copies of the model (e.g. lens_adapt's bias)
    return model.to(map_location).eval(), metadata


def available_pretrained() -> list[str]:
    """Names of the shipped models (pretrained/<name>.pt)."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))


def load_pretrained(
    name: str, map_location: str | torch.device = "cpu"
) -> tuple[TemporalModel, dict]:
    """Load pretrained/<name>.pt -> (model in eval mode, metadata); WeightsError if absent."""
    path = PRETRAINED_DIR / f"{name}.pt"
    if not path.is_file():
        have = ", ".join(available_pretrained()) or "none"
        raise WeightsError(f"no pretrained model {name!r} ({path}); available: {have}")
    return load_checkpoint(path, map_location)


def load_model_or_fallback(
    path: str | Path | None,
    fallback_name: str | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[TemporalModel, dict, str | None]:
    """The user's weights at `path`, or the shipped model when they do not load.

    Returns (model in eval mode, metadata, warning): warning is None when `path` loaded (or
    was None), else one line naming the file, what is wrong with it and the model used instead.
    fallback_name: pretrained/<name>.pt; None takes the first shipped model. Raises WeightsError
    (naming both problems) only when the fallback does not load either. metadata["source"] is
    the file the weights came from.
    """
    problem = None
    if path is not None:
        try:
            model, meta = load_checkpoint(path, map_location)
            meta["source"] = str(path)
            return model, meta, None
        except WeightsError as exc:
            problem = str(exc)
    name = fallback_name
    if name is None:
        shipped = available_pretrained()
        if not shipped:
            raise WeightsError(f"{problem + '; ' if problem else ''}no shipped model in "
                               f"{PRETRAINED_DIR} to fall back to")  # fmt: skip
        name = shipped[0]
    try:
        model, meta = load_pretrained(name, map_location)
    except WeightsError as exc:
        raise WeightsError(f"{problem + '; ' if problem else ''}fallback: {exc}") from None
    meta["source"] = str(PRETRAINED_DIR / f"{name}.pt")
    warning = f"{problem}; using the shipped model {name!r} instead" if problem else None
    return model, meta, warning
