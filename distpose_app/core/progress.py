"""A dependency-free text progress bar for long CLI work (stderr, redrawn in place on a TTY)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Progress:
    """Progress over `total` steps; `update(n)` advances, `close()` ends the line.

    On a terminal the bar redraws at most 10 times a second; elsewhere (logs, CI) it prints a
    line at every 10% so that logs stay short.
    """

    def __init__(
        self, total: int, desc: str = "", stream=None, enabled: bool = True, initial: int = 0
    ):
        self.total = max(int(total), 0)
        self.desc = desc
        self.n = self.initial = int(initial)  # initial: steps done before (a resumed run)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.postfix = ""

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        self.n += n
        if postfix is not None:
            self.postfix = postfix
        self._draw()

    def _draw(self, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        frac = self.n / self.total if self.total else 1.0
        elapsed = now - self.start
        done = self.n - self.initial
        eta = elapsed * (self.total - self.n) / done if done > 0 else float("nan")
        bar = "#" * int(24 * min(frac, 1.0))
        line = (
            f"{self.desc} [{bar:<24}] {self.n}/{self.total} {100 * frac:5.1f}% "
            f"{elapsed:6.1f}s elapsed, eta {eta:6.1f}s {self.postfix}"
        )
        if self._tty:
            if final or now - self._last_draw > 0.1:
                self.stream.write("\r" + line)
                self.stream.flush()
                self._last_draw = now
        else:
            decile = int(10 * min(frac, 1.0))
            if final or decile > self._last_decile:
                self.stream.write(line + "\n")
                self.stream.flush()
                self._last_decile = decile

    def close(self) -> None:
        self._draw(final=True)
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
    """Iterate over `items` showing a Progress bar."""
    if total is None:
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc) as bar:
        for item in items:
            yield item
            bar.update()
