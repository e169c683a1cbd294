"""Soak test: the demo source through the live pipeline for a long time, with a recording always
running (a new take every --take-seconds, each exported to BVH + CSV and its recovery file
checked), an ISO adaptation started on a background thread every --adapt-every seconds, and the
source switched every --switch-every seconds (sometimes while an adaptation runs, whose result
must then be refused). Prints one JSON object: frames processed and dropped, memory (VmRSS) at
start and end, adaptations applied / refused, and every exception (there must be none).

    python scripts/soak.py --minutes 20          # the full soak (docs/reliability.md)
    python scripts/soak.py --minutes 1           # the CI version

Memory is measured after a warm-up (one adaptation, one export, a few seconds of frames), so
that what it reports is growth over the run, not torch's first allocations; rss_* values are
taken after glibc's malloc_trim (what the allocator keeps after a peak is not a leak), the
*_untrimmed_mb ones without it; rss_timeline_mb samples it 20 times over the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LENSES = ("moderate", "none", "strong", "fisheye:0.05")


def trim() -> None:
    """RSS after handing freed heap back to the OS shows live memory, not what the allocator
    keeps after a peak (the app does the same after each adaptation)."""
    from distpose_app.adapt.iso import release_freed_memory

    release_freed_memory()


def rss_mb(trimmed: bool = True) -> float:
    """Resident memory of this process, MiB (VmRSS from /proc; ru_maxrss elsewhere), after
    trim() unless trimmed=False."""
    if trimmed:
        trim()
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20.0, help="how long to run (default 20)")
    p.add_argument("--adapt-every", type=float, default=60.0, help="seconds between Adapts")
    p.add_argument("--take-seconds", type=float, default=120.0, help="length of each take, s")
    p.add_argument("--switch-every", type=float, default=300.0, help="seconds between sources")
    p.add_argument("--size", default="640x360", help="demo image size WxH (default 640x360)")
    p.add_argument("--channels", type=int, default=256, help="lifter width (default 256)")
    p.add_argument("--weights", help="lifter checkpoint (default: an untrained 27-frame lifter)")
    p.add_argument("--realtime", action="store_true", help="pace the demo at 30 fps")
    p.add_argument("--iso-steps", type=int, default=10, help="ISO steps per Adapt (default 10)")
    p.add_argument("--out", help="also write the JSON report here")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.adapt_every <= 0 or args.take_seconds <= 0:
        p.error("--minutes, --adapt-every and --take-seconds must be positive")
    return args


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        import torch

        from distpose_app.lifter.model import TemporalModel, load_model_or_fallback
        from distpose_app.live.pipeline import LivePipeline

        torch.set_num_threads(1)
        self.args, self.workdir = args, workdir
        self.size = tuple(int(v) for v in args.size.lower().split("x"))
        if args.weights:
            model, _, warning = load_model_or_fallback(args.weights)
            if warning:
                print(f"soak: {warning}", file=sys.stderr)
        else:
            torch.manual_seed(0)
            model = TemporalModel(channels=args.channels, filter_widths=(3, 3, 3), causal=True)
        self.pipeline = LivePipeline(model.eval(), "cpu")
        self.pipeline.recorder.recovery_dir = workdir / "recovery"
        self.session = None
        self.lens_index = 0
        self.exceptions: list[str] = []
        self.counts = dict(
            frames=0, poses=0, takes=0, recorded_frames=0, exports=0, adapt_started=0,
            adapt_applied=0, adapt_refused=0, adapt_skipped=0, switches=0, warnings=0,
        )  # fmt: skip
        self.refusals: dict[str, int] = {}
        self._adapt_thread: threading.Thread | None = None
        self._adapt_out: list = []

    # -- pieces ---------------------------------------------------------------------------------
    def _source(self):
        from distpose_app.live.demo import DemoSource

        lens = LENSES[self.lens_index % len(LENSES)]
        self.lens_index += 1
        return DemoSource(lens=lens, size=self.size, noise_px=1.0, seed=self.lens_index)

    def open(self) -> None:
        from distpose_app.live.feed import LiveFeed

        self.session = LiveFeed(self._source(), self.pipeline, realtime=self.args.realtime)

    def switch(self) -> None:
        self.session.switch_source(self._source())
        self.counts["switches"] += 1

    def step(self) -> None:
        result = self.session.step(timeout=0.05)
        if result is StopIteration:
            raise RuntimeError("the endless demo source ended")
        if result is not None:
            self.counts["frames"] += 1
            self.counts["poses"] += result.pose_3d is not None
        self.counts["warnings"] += len(self.pipeline.take_warnings())

    def start_adapt(self) -> None:
        from distpose_app.adapt.iso import MIN_ADAPT_FRAMES, IsoConfig, iso_adapt

        if self._adapt_thread is not None:
            try:  # pressing Adapt while one runs: must be refused, not crash
                self.pipeline.begin_adaptation()
            except Exception as exc:
                if "already running" not in str(exc):
                    raise
            else:  # allowed only when the running one was cancelled (source switched)
                self.pipeline.cancel_adaptation()
            return
        if self.pipeline.buffer_frames < max(MIN_ADAPT_FRAMES, self.pipeline.receptive_field):
            self.counts["adapt_skipped"] += 1
            return
        ticket = self.pipeline.begin_adaptation()
        config = IsoConfig(steps=self.args.iso_steps)

        def work():
            try:
                result = iso_adapt(ticket.model, ticket.keypoints_2d, config,
                                   should_cancel=ticket.should_cancel)  # fmt: skip
                self._adapt_out.append((ticket, result, None))
            except Exception:
                self._adapt_out.append((ticket, None, traceback.format_exc()))

        self._adapt_thread = threading.Thread(target=work, name="soak adapt", daemon=True)
        self._adapt_thread.start()
        self.counts["adapt_started"] += 1

    def poll_adapt(self, wait: bool = False) -> None:
        if self._adapt_thread is None:
            return
        if wait:
            self._adapt_thread.join()
        if self._adapt_thread.is_alive():
            return
        self._adapt_thread = None
        ticket, result, error = self._adapt_out.pop()
        if error is not None:
            self.exceptions.append(f"adaptation: {error}")
            return
        applied, message = self.pipeline.finish_adaptation(ticket, result)
        if applied:
            self.counts["adapt_applied"] += 1
        else:
            self.counts["adapt_refused"] += 1
            key = message.split(":")[0].split("(")[0].strip()
            self.refusals[key] = self.refusals.get(key, 0) + 1

    def new_take(self) -> None:
        """Stop the take, check its recovery file went away, export it, start the next one."""
        from distpose_app.export import export_recording

        recorder = self.pipeline.recorder
        if recorder.is_recording:
            path = recorder.recovery_path
            recording = recorder.stop()
            if recorder.recovery_error:
                raise RuntimeError(recorder.recovery_error)
            if path is not None and Path(path).exists():
                raise RuntimeError(f"recovery file {path} left after a clean stop")
            if recording.num_frames:
                out = self.workdir / "take"  # each take replaces the last one's files
                export_recording(recording, out.with_suffix(".bvh"), out.with_suffix(".csv"),
                                 overwrite=True)  # fmt: skip
                self.counts["exports"] += 1
            self.counts["recorded_frames"] += recording.num_frames
        recorder.start({"source": self.session.source.name})
        self.counts["takes"] += 1

    # -- run ------------------------------------------------------------------------------------
    def run(self) -> dict:
        from distpose_app.adapt.iso import MIN_ADAPT_FRAMES

        args = self.args
        self.open()
        self.new_take()
        warm_until = time.monotonic() + 1.0  # warm-up: frames, one adaptation, one export
        while time.monotonic() < warm_until or self.pipeline.buffer_frames < MIN_ADAPT_FRAMES:
            self.step()
        self.start_adapt()
        self.poll_adapt(wait=True)
        self.new_take()
        frames_warm, dropped_warm = self.counts["frames"], self.session.frames_dropped
        rss_start_raw, rss_start = rss_mb(trimmed=False), rss_mb()
        rss_peak = rss_start_raw
        t0 = time.monotonic()
        end = t0 + 60.0 * args.minutes
        next_adapt, next_take = t0 + args.adapt_every, t0 + args.take_seconds
        next_switch = t0 + args.switch_every
        timeline, next_sample = [], t0
        while (now := time.monotonic()) < end:
            if now >= next_sample:  # memory over time: a plateau is the allocator, a ramp a leak
                timeline.append(round(rss_mb(), 1))
                next_sample = now + max(1.0, 3.0 * args.minutes)
            try:
                self.step()
                if now >= next_adapt:
                    self.start_adapt()
                    next_adapt = now + args.adapt_every
                if now >= next_switch:
                    self.switch()  # may cancel a running adaptation: its result is refused
                    next_switch = now + args.switch_every
                if now >= next_take:
                    self.new_take()
                    rss_peak = max(rss_peak, rss_mb(trimmed=False))
                    next_take = now + args.take_seconds
                self.poll_adapt()
            except Exception:
                self.exceptions.append(traceback.format_exc())
                if len(self.exceptions) > 20:
                    break
        seconds = time.monotonic() - t0
        self.poll_adapt(wait=True)
        self.new_take()  # the last take goes through stop/export as well
        self.pipeline.recorder.stop()
        self.session.close()
        rss_end_raw, rss_end = rss_mb(trimmed=False), rss_mb()
        frames = self.counts["frames"] - frames_warm
        leftovers = sorted(p.name for p in (self.workdir / "recovery").glob("*.dprec"))
        if leftovers:
            self.exceptions.append(f"recovery files left behind: {leftovers}")
        return {
            "minutes": seconds / 60.0,
            "frames_processed": frames,
            "frames_dropped": self.session.frames_dropped - dropped_warm,
            "fps": frames / seconds if seconds > 0 else 0.0,
            "poses": self.counts["poses"],
            "rss_start_mb": round(rss_start, 1),
            "rss_end_mb": round(rss_end, 1),
            "rss_start_untrimmed_mb": round(rss_start_raw, 1),
            "rss_end_untrimmed_mb": round(rss_end_raw, 1),
            "rss_peak_mb": round(max(rss_peak, rss_end_raw), 1),
            "rss_growth_mb": round(rss_end - rss_start, 1),
            "rss_timeline_mb": timeline,
            **{k: v for k, v in self.counts.items() if k not in ("frames", "poses")},
            "adapt_refusals": self.refusals,
            "exceptions": self.exceptions,
            "realtime": bool(args.realtime),
            "size": list(self.size),
            "channels": args.channels,
        }


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="distpose-soak-") as tmp:
        try:
            report = Soak(args, Path(tmp)).run()
        except Exception:
            report = {"exceptions": [traceback.format_exc()]}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if not report["exceptions"] else 1


if __name__ == "__main__":
    os.environ.setdefault("DISTPOSE_DATA_DIR", tempfile.gettempdir())
    sys.exit(main())
