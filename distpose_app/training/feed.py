"""Training batches drawn in worker processes (`distpose train --workers N`).

A step's batch (1,024 windows through lenses, bodies, detector noise and masks) is NumPy work
on one core; the network's forward and backward is torch work that a GPU does in a fraction
of that time. So on a machine with a GPU and many cores the batches must be drawn in parallel,
or the GPU waits. `BatchFeed` forks N processes that each draw whole batches with their own
generator and hands them to the training loop in a fixed round-robin order: the run is
deterministic for a given seed, worker count and starting step, whatever the processes'
speeds. Worker w draws with `np.random.default_rng([seed, w, first_step])`, so a run resumed
at step s continues with fresh streams (reproducibly, for the same N), not the ones a run that
never stopped would have drawn.

Linux and macOS only (`fork`: the workers share the training data without copying it).
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from collections.abc import Callable

import numpy as np
import torch

from distpose_app.core.errors import DistposeError

# How many finished batches each worker may hold ahead of the loop (each about 10 MB at 1,024
# windows): enough to absorb uneven batch times, little memory.
AHEAD = 2
# How long the loop waits on a worker before checking that it is still alive, seconds.
POLL_S = 5.0

Draw = Callable[[np.random.Generator], tuple[torch.Tensor, torch.Tensor]]


def _work(draw: Draw, out, seed_words: list[int]) -> None:
    torch.set_num_threads(1)  # one core a worker: N workers use N cores
    rng = np.random.default_rng(seed_words)
    try:
        while True:
            out.put(draw(rng))
    except Exception as exc:  # reported to the loop, which raises it there
        out.put(f"{type(exc).__name__}: {exc}")


class BatchFeed:
    """`workers` processes, each calling `draw(rng)` -> (inputs, targets) tensors over and
    over; `next()` returns their batches in round-robin order. Use as a context manager, or
    call `close()`: the workers are stopped, never left running."""

    def __init__(self, draw: Draw, workers: int, seed: int, first_step: int = 0):
        if workers < 1:
            raise DistposeError(f"batch workers must be at least 1, not {workers}")
        if "fork" not in multiprocessing.get_all_start_methods():
            raise DistposeError("--workers needs the 'fork' start method (Linux or macOS); "
                                "run without --workers here")  # fmt: skip
        ctx = torch.multiprocessing.get_context("fork")  # tensors pass via shared memory
        self._queues = [ctx.Queue(maxsize=AHEAD) for _ in range(workers)]
        self._procs = [
            ctx.Process(
                target=_work,
                args=(draw, q, [seed, w, first_step]),
                daemon=True,
                name=f"distpose-batches-{w}",
            )
            for w, q in enumerate(self._queues)
        ]
        self._next = 0
        for p in self._procs:
            p.start()

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self._next % len(self._procs)
        self._next += 1
        while True:
            try:
                item = self._queues[w].get(timeout=POLL_S)
                break
            except queue_module.Empty:
                if not self._procs[w].is_alive():
                    code = self._procs[w].exitcode
                    raise DistposeError(f"batch worker {w} stopped (exit code {code}) before "
                                        "handing over its batch") from None  # fmt: skip
        if isinstance(item, str):
            raise DistposeError(f"batch worker {w} failed: {item}")
        return item

    def close(self) -> None:
        for p in self._procs:
            if p.is_alive():
                p.terminate()
        for p in self._procs:
            p.join(timeout=POLL_S)
        for q in self._queues:
            q.cancel_join_thread()  # never block exit on batches nobody will read
            q.close()

    def __enter__(self) -> BatchFeed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
