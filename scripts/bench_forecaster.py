"""Time the streaming forecaster per backend: TrackStreams.observe + forecast for N live tracks.

    .venv/bin/python scripts/bench_forecaster.py data/checkpoints/video.pt video.onnx \\
        video_int8.onnx [--tracks 50] [--frame-ms 14.7] [--out bench_forecaster.json]

Each forecaster (a checkpoint, or a file from `trajpred export`) streams the same N random
walks with boxes; one repetition is one sampling frame of `predict`: observe all N tracks, then
forecast all N. The forecasters take turns repetition by repetition, so a busy machine slows
them alike, and the script reports the median and 10th percentile per repetition, in ms. With
--frame-ms (the full pipeline's time per frame, e.g. 1000 / the fps of
scripts/bench_pipeline.py), it also reports the forecaster's share of a sampling frame,
t / (frame + t), the measure bench_pipeline.py uses. Writes JSON and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("forecasters", nargs="+", help="checkpoints (.pt) or exported files")
    p.add_argument("--tracks", type=int, default=50, help="live tracks, all sampled each time")
    p.add_argument("--repeats", type=int, default=300, help="timed sampling frames per forecaster")
    p.add_argument("--k", type=int, default=0, help="sampled trajectories per forecast")
    p.add_argument("--frame-ms", type=float, default=None, help="pipeline ms per frame")
    p.add_argument("--out", default="bench_forecaster.json")
    return p.parse_args(argv)


class Walkers:
    """N pedestrians in pixels (boxes 20 x 50) walking with noise: one observation per call."""

    def __init__(self, n: int, seed: int = 0):
        import numpy as np

        self.rng = np.random.default_rng(seed)
        self.ids = list(range(1, n + 1))
        self.xy = self.rng.uniform(0, 500, (n, 2))
        self.velocity = self.rng.normal(0, 4, (n, 2))
        self.wh = np.tile([20.0, 50.0], (n, 1))

    def step(self):
        self.xy = self.xy + self.velocity + self.rng.normal(0, 1, self.xy.shape)
        return self.ids, self.xy, self.wh


def timed_frame(streams, walkers: Walkers, k: int) -> tuple[float, float]:
    """Seconds of one observe (all tracks) and one forecast (all tracks)."""
    ids, xy, wh = walkers.step()
    start = time.perf_counter()
    streams.observe(ids, xy, wh)
    middle = time.perf_counter()
    streams.forecast(ids, k)
    return middle - start, time.perf_counter() - middle


def summary(seconds: list[tuple[float, float]], frame_ms: float | None) -> dict:
    import numpy as np

    ms = 1000 * np.array(seconds)  # (repeats, 2): observe, forecast
    total = ms.sum(1)
    out = {
        "observe_ms": round(float(np.median(ms[:, 0])), 3),
        "forecast_ms": round(float(np.median(ms[:, 1])), 3),
        "total_ms_median": round(float(np.median(total)), 3),
        "total_ms_p10": round(float(np.percentile(total, 10)), 3),
    }
    if frame_ms:
        share = lambda t: round(t / (frame_ms + t), 4)  # noqa: E731
        out["share_of_sampling_frame_median"] = share(out["total_ms_median"])
        out["share_of_sampling_frame_p10"] = share(out["total_ms_p10"])
    return out


def main(argv=None) -> int:
    import torch
    from bench_pipeline import cpu_model  # a sibling script: the same machine description

    from trajpred.checkpoint import load_forecaster
    from trajpred.forecast import TrackStreams

    args = parse_args(argv)
    runs = []
    for path in args.forecasters:
        # as predict: the mixture is kept only when samples are drawn
        streams = TrackStreams(load_forecaster(path), samples=args.k > 0)
        walkers = Walkers(args.tracks)
        for _ in range(5):  # warm-up, and two samples per track before forecasts mean anything
            timed_frame(streams, walkers, args.k)
        runs.append((path, streams, walkers, []))
    for _ in range(args.repeats):
        for _, streams, walkers, seconds in runs:
            seconds.append(timed_frame(streams, walkers, args.k))
    report = {
        "machine": {
            "cpu": cpu_model(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "tracks": args.tracks,
        "repeats": args.repeats,
        "k": args.k,
        "frame_ms": args.frame_ms,
        "forecasters": {path: summary(seconds, args.frame_ms) for path, *_, seconds in runs},
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{args.tracks} tracks, observe + forecast per sampling frame, ms (median / p10):")
    for path, row in report["forecasters"].items():
        share = row.get("share_of_sampling_frame_median")
        print(
            f"  {path}: {row['total_ms_median']:.3f} / {row['total_ms_p10']:.3f}"
            + (f"  = {share:.1%} of a sampling frame" if share is not None else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
