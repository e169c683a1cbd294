"""Training windows: `WindowSampler` draws windows of camera-frame 3D from a training set and
turns them into (2D input, 3D target) batches through lenses, bodies, close-ups, detector noise
and masks; `LensPool` keeps validated lenses for reuse; `closeup_view` re-aims a window's camera
as a desk webcam's. Plain NumPy and torch tensors; the training loop is `training.loop`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from distpose_app.core.errors import DistposeError
from distpose_app.core.rotations import smallest_rotation
from distpose_app.core.skeleton import FLIP_PERMUTATION
from distpose_app.data.bodies import sample_bone_factors, scale_bones
from distpose_app.data.lens_sampler import LensSampler
from distpose_app.data.masking import apply_mask, sample_masks
from distpose_app.data.splits import sequence_bounds
from distpose_app.data.training_sets import content_factors
from distpose_app.lens.models import Intrinsics, NoLens
from distpose_app.lens.screen import normalize_screen_coordinates

# Close-up views (TrainConfig.closeup): camera-to-aim-point distance in metres, and the nearest
# a joint may be to the camera to count as seen. The aim point lies anywhere from the chest to
# the top of the head: a desk webcam frames the chest, a laptop's often the face (shoulders at
# the bottom edge, a raised hand the only limb in view).
CLOSEUP_DISTANCE_M = (0.4, 1.1)
MIN_SEEN_DEPTH_M = 0.1
_CHEST = (8, 9)  # Thorax, Neck
_HEAD_TOP = 10
_FORWARD = np.array([0.0, 0.0, 1.0])  # the camera's optical axis


def closeup_view(cam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A desk or laptop webcam's view of one window: cam (L, 17, 3) camera coordinates, metres
    -> (L, 17, 3) after turning the camera to an aim point (uniformly between the window's mean
    chest point, Thorax and Neck, and its mean head top, +-5 cm) and moving it along its axis to
    0.4-1.1 m from that point (never backwards), so the legs and often the hips leave the
    image. Root-relative targets follow from the result; projection and the unseen-joint test
    are the caller's."""
    chest = cam[:, list(_CHEST)].reshape(-1, 3).mean(0)
    head = cam[:, _HEAD_TOP].mean(0)
    anchor = chest + rng.uniform() * (head - chest) + rng.normal(0.0, 0.05, 3)
    turned = cam @ smallest_rotation(anchor / np.linalg.norm(anchor), _FORWARD).T
    distance = np.linalg.norm(anchor)
    closer = max(distance - rng.uniform(*CLOSEUP_DISTANCE_M), 0.0)
    return turned - np.array([0.0, 0.0, closer])


class WindowSampler:
    """Draws windows of camera-frame 3D and turns them into (2D input, 3D target) batches.

    positions_3d (N, 17, 3) metres camera coords; sequence (N,) contiguous ids; intrinsics
    (S, 4) fx, fy, cx, cy pixels; image_size (S, 2) width, height pixels.
    """

    def __init__(self, positions_3d, sequence, intrinsics, image_size, window: int, rng):
        self.positions = np.asarray(positions_3d, np.float32)
        self.sequence = np.asarray(sequence)
        self.intrinsics = np.asarray(intrinsics, np.float64)
        self.image_size = np.asarray(image_size, np.float64)
        self.window = window
        self.rng = rng
        self.lens_pool: LensPool | None = None  # set by `train` for the training windows
        self.seq_start, self.seq_end = sequence_bounds(self.sequence)
        long_enough = (self.seq_end - self.seq_start) >= window
        if not long_enough.any():
            raise DistposeError(f"no sequence has the {window} frames a training window needs")
        self.starts = np.concatenate(
            [
                np.arange(s, e - window + 1)
                for s, e in zip(self.seq_start, self.seq_end)
                if e - s >= window
            ]
        )
        # Sequences long enough for a meta task (support and query halves).
        self.task_seqs = np.flatnonzero((self.seq_end - self.seq_start) >= 2 * window)
        self._max_radius = np.array(
            [self._intrinsics(s).corner_radius for s in range(len(self.intrinsics))]
        )

    def _intrinsics(self, s: int) -> Intrinsics:
        return Intrinsics.from_array(self.intrinsics[s], self.image_size[s])

    def weight_sources(self, source: np.ndarray, weights: dict[str, float] | None, names=None,
                       content: dict[str, float] | None = None) -> None:  # fmt: skip
        """Draw windows by source: source (S,) the source name of every view; weights: source
        name -> share of windows (normalised over the sources present; None: each source's
        share of the windows, as without weights). Within a source every
        window is equally likely, unless `content` (regular expression -> multiplier, matched
        with re.search against names (S,), the view names) makes the windows of matching views
        that many times as likely as the rest of their source (several matches multiply). The
        source shares stay as given."""
        view_source = np.asarray(source)[self.sequence[self.starts]]
        if weights is None:
            weights = {str(s): float((view_source == s).sum()) for s in np.unique(view_source)}
        p = np.zeros(len(self.starts))
        present = {s: w for s, w in weights.items() if (view_source == s).any()}
        missing = set(np.unique(view_source)) - set(present)
        if missing or not present or min(present.values()) < 0:
            raise DistposeError(f"source weights {weights} do not cover {sorted(missing)}")
        within = np.ones(len(self.starts))
        if content:
            if names is None or len(names) != len(source):
                raise DistposeError("content weights need the name of every view")
            view_factor = content_factors(names, content)
            within = view_factor[self.sequence[self.starts]]
        for s, w in present.items():
            chosen = view_source == s
            total = within[chosen].sum()
            if total <= 0:
                raise DistposeError(f"content weights {content} leave source {s!r} no window")
            p[chosen] = w * within[chosen] / total
        self._cdf = np.cumsum(p / p.sum())
        # Meta tasks follow the same shares, over the windows of sequences long enough for one.
        runs = np.searchsorted(self.seq_start, self.starts, side="right") - 1
        task = p * np.isin(runs, self.task_seqs)
        self._task_cdf = np.cumsum(task / task.sum()) if task.sum() > 0 else np.zeros(0)

    def random_starts(self, count: int) -> np.ndarray:
        cdf = getattr(self, "_cdf", None)
        if cdf is None:
            return self.rng.choice(self.starts, size=count)
        return self.starts[np.minimum(np.searchsorted(cdf, self.rng.random(count)), len(cdf) - 1)]

    def task_starts(self, count: int, support: int, query: int):
        """One task: windows from the first half of a sequence (support) and from the second
        half (query). Returns (support starts (support,), query starts (query,)).
        The sequence is drawn as training windows are: by `weight_sources`' shares when set
        (a sequence as likely as its windows), else uniformly over the sequences."""
        cdf = getattr(self, "_task_cdf", None)
        if cdf is None:
            k = self.rng.choice(self.task_seqs)
        elif not len(cdf):
            raise DistposeError("no sequence of a source with a share is long enough for a meta "
                                f"task (two halves of {self.window} frames)")  # fmt: skip
        else:
            start = self.starts[min(np.searchsorted(cdf, self.rng.random()), len(cdf) - 1)]
            k = np.searchsorted(self.seq_start, start, side="right") - 1
        s, e = self.seq_start[k], self.seq_end[k]
        mid = (s + e) // 2
        sup = self.rng.integers(s, mid - self.window + 1, size=support)
        qry = self.rng.integers(mid, e - self.window + 1, size=query)
        return sup, qry

    def sample_lens(self, s: int, sampler: LensSampler | None):
        if sampler is None:
            return NoLens()
        if self.lens_pool is None:
            return sampler.sample(self.rng, self._max_radius[s])
        return self.lens_pool.sample(self.rng, sampler, self._max_radius[s])

    def make_batch(self, starts, lenses, noise_px: float, flip: bool, rng=None, masking=None,
                   closeup=0.0, bodies=0.0, noise=None):  # fmt: skip
        """starts (B,) window starts; lenses: one Lens per window (or None for all pinhole);
        rng: the generator for noise, flips and masks (default the sampler's); masking: a
        masking.MaskConfig or None (every joint seen); closeup: the share of windows seen in
        close-up (`closeup_view`), or a (B,) bool array choosing them; bodies: the share of
        windows given another body (`bodies.sample_bone_factors`), a (B,) bool array choosing
        them, or (B, 17) bone factors for every window; noise: a
        `detector_noise.DetectorNoiseSampler` replacing the Gaussian noise_px, or None. Joints
        behind or too near the camera, beyond 1.5x the corner radius or outside the image are
        unseen (NaN). Returns (inputs (B, L, 17, 2) normalised screen coords, NaN where unseen,
        targets (B, L, 17, 3) metres root-relative) as float32 tensors."""
        rng = self.rng if rng is None else rng
        idx = np.asarray(starts)[:, None] + np.arange(self.window)
        cam = self.positions[idx].astype(np.float64)  # (B, L, 17, 3)
        seq = self.sequence[np.asarray(starts)]
        if np.ndim(bodies) == 2:  # (B, 17) bone factors given
            cam = scale_bones(cam, bodies)
        else:
            resized = np.asarray(bodies) if np.ndim(bodies) else rng.random(len(cam)) < bodies
            if resized.any():
                cam[resized] = scale_bones(cam[resized], sample_bone_factors(rng, resized.sum()))
        chosen = np.asarray(closeup) if np.ndim(closeup) else rng.random(len(cam)) < closeup
        for b in np.flatnonzero(chosen):
            cam[b] = closeup_view(cam[b], rng)
        depth = cam[..., 2:3]
        xy = cam[..., :2] / np.maximum(depth, MIN_SEEN_DEPTH_M)
        # Far outside the image a lens polynomial may fold back in: never let such points in.
        radius = self._max_radius[seq][:, None, None]
        unseen = (depth[..., 0] < MIN_SEEN_DEPTH_M) | (np.linalg.norm(xy, axis=-1) > 1.5 * radius)
        xy[unseen] = np.nan
        if lenses is not None:
            xy = np.stack([lens.distort(v) for lens, v in zip(lenses, xy)])
        k = self.intrinsics[seq]  # (B, 4)
        size = self.image_size[seq]  # (B, 2)
        px = xy * k[:, None, None, :2] + k[:, None, None, 2:]
        if noise is not None:
            metres_to_px = k[:, :1] / np.maximum(depth[..., 0, 0], MIN_SEEN_DEPTH_M)  # (B, L)
            px = noise(rng, px, metres_to_px)
        elif noise_px > 0:
            px = px + rng.normal(size=px.shape) * noise_px * size[:, None, None, :1] / 1000
        w = size[:, None, None, 0]
        h = size[:, None, None, 1]
        outside = (px[..., 0] < 0) | (px[..., 0] > w) | (px[..., 1] < 0) | (px[..., 1] > h)
        px[outside] = np.nan  # NaN compares False: already-unseen joints stay NaN
        x2d = normalize_screen_coordinates(px, w, h)
        target = cam - cam[..., :1, :]
        if flip:
            mirrored = rng.random(len(starts)) < 0.5
            x2d[mirrored] = x2d[mirrored][..., FLIP_PERMUTATION, :] * np.array([-1.0, 1.0])
            target[mirrored] = target[mirrored][..., FLIP_PERMUTATION, :] * np.array(
                [-1.0, 1.0, 1.0]
            )
        if masking is not None:
            x2d = apply_mask(x2d, sample_masks(rng, len(x2d), x2d.shape[1], masking))
        return torch.as_tensor(x2d, dtype=torch.float32), torch.as_tensor(
            target, dtype=torch.float32
        )


POOL_BUCKET = 0.05  # normalised camera units (the corner radius of a 90 deg webcam is ~1.15)


class LensPool:
    """Validated lenses kept for reuse: drawing a lens and checking that it does not fold costs
    about 0.35 ms, a tenth of a training step over a batch. Camera corner radii are rounded up
    to a bucket of POOL_BUCKET and each bucket keeps `size` lenses valid at its upper radius
    (so valid for every camera in it); every draw also replaces one random member with a fresh
    lens with probability `refresh`, so over a run the pool keeps renewing. Deterministic given
    the generator's state."""

    def __init__(self, size: int = 512, refresh: float = 0.05):
        self.size, self.refresh = size, refresh
        self._pools: dict[int, list] = {}

    def sample(self, rng: np.random.Generator, sampler: LensSampler, max_radius: float):
        bucket = int(math.ceil(max_radius / POOL_BUCKET))
        radius = bucket * POOL_BUCKET
        pool = self._pools.get(bucket)
        if pool is None:
            pool = self._pools[bucket] = [sampler.sample(rng, radius) for _ in range(self.size)]
        if rng.random() < self.refresh:
            pool[int(rng.integers(self.size))] = sampler.sample(rng, radius)
        return pool[int(rng.integers(self.size))]
