"""Batches drawn in worker processes (`distpose train --workers N`): a fixed order whatever the
workers' speeds, failures reported as errors, and a training run that uses them."""

import json
import os
import time

import numpy as np
import pytest
import torch
from poses import Sequence, walking

from distpose_app.core.errors import DistposeError
from distpose_app.data.synthetic import build_synthetic
from distpose_app.training import feed as feed_module
from distpose_app.training.feed import BatchFeed
from distpose_app.training.loop import TrainConfig, train


def _draw(rng):
    # Uneven batch times, so that arrival order differs from the order handed out.
    time.sleep(float(rng.uniform(0.0, 0.02)))
    x = torch.from_numpy(rng.normal(size=(4, 3)).astype(np.float32))
    return x, x * 2


def _batches(workers, first_step=0, count=6):
    with BatchFeed(_draw, workers, seed=3, first_step=first_step) as f:
        return [f.next() for _ in range(count)]


def _stream(worker, count, first_step=0):
    """What worker `worker` of a seed-3 feed draws, computed here."""
    rng = np.random.default_rng([3, worker, first_step])
    out = []
    for _ in range(count):
        rng.uniform()
        out.append(rng.normal(size=(4, 3)).astype(np.float32))
    return out


def test_batches_come_in_a_fixed_order_from_independent_streams():
    a, b = _batches(2), _batches(2)
    for (xa, ya), (xb, _) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, 2 * xa)
    # Round robin: batches 0, 2, 4 are worker 0's stream, 1, 3, 5 worker 1's, whichever
    # worker finished first.
    expected = [s for pair in zip(_stream(0, 3), _stream(1, 3)) for s in pair]
    assert all(np.array_equal(x.numpy(), e) for (x, _), e in zip(a, expected))
    assert not torch.equal(a[0][0], a[1][0])
    # A run resumed at another step draws fresh streams, as documented.
    resumed = _batches(2, first_step=6, count=1)[0][0].numpy()
    assert np.array_equal(resumed, _stream(0, 1, first_step=6)[0])
    assert not np.array_equal(resumed, expected[0])


def _fail(rng):
    raise ValueError("no windows left")


def _die(rng):
    os._exit(3)


def test_a_worker_that_fails_or_dies_stops_the_run_with_its_reason(monkeypatch):
    with BatchFeed(_fail, 1, seed=0) as f, pytest.raises(DistposeError, match="ValueError"):
        f.next()
    monkeypatch.setattr(feed_module, "POLL_S", 0.2)
    with BatchFeed(_die, 1, seed=0) as f, pytest.raises(DistposeError, match="exit code 3"):
        f.next()


def test_close_stops_every_worker():
    f = BatchFeed(_draw, 2, seed=0)
    f.next()
    f.close()
    assert not any(p.is_alive() for p in f._procs)


def test_settings_that_cannot_run_are_refused_before_training():
    with pytest.raises(DistposeError, match="without --workers"):
        TrainConfig(mode="meta", init="x.pt", workers=2).validate()
    with pytest.raises(DistposeError, match="0 or more"):
        TrainConfig(workers=-1).validate()
    with pytest.raises(DistposeError, match="CUDA device"):
        TrainConfig(device="cuda:99").validate()
    with pytest.raises(DistposeError, match="unknown device"):
        TrainConfig(device="gpu please").validate()
    with pytest.raises(DistposeError, match="cpu or cuda"):
        TrainConfig(device="meta").validate()


@pytest.fixture(scope="module")
def tiny_sets():
    seqs = [Sequence(f"dataset-2_walk_normal_{i:03d}", walking(120, i)) for i in range(6)]
    return build_synthetic(seqs, None, views_per_sequence=1, seed=0, progress=False)


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_training_with_workers_is_repeatable_and_resumes(tiny_sets, tmp_path):
    torch.set_num_threads(1)
    common = dict(mode="augmented", filter_widths=(3, 3), channels=16, steps=6, batch_windows=8,
                  chunk_frames=4, val_every=3, workers=2)  # fmt: skip
    runs = []
    for name in ("a", "b"):
        train(TrainConfig(**common), tiny_sets, tiny_sets, tmp_path / name, progress=False)
        runs.append(_log(tmp_path / name))
    assert [r["train_mpjpe_mm"] for r in runs[0]] == [r["train_mpjpe_mm"] for r in runs[1]]
    recorded = json.loads((tmp_path / "a" / "config.json").read_text())
    assert recorded["workers"] == 2 and recorded["device"] == "cpu"
    # Stopped at step 3 and resumed with the same command: it finishes, as a fresh run would.
    train(TrainConfig(**{**common, "steps": 3}), tiny_sets, tiny_sets, tmp_path / "r",
          progress=False)  # fmt: skip
    train(TrainConfig(**common), tiny_sets, tiny_sets, tmp_path / "r", progress=False)
    assert [r["step"] for r in _log(tmp_path / "r")] == [3, 6]
    assert (tmp_path / "r" / "final.pt").is_file()
