"""Calibrate the shipped video forecaster's uncertainty on what the live pipeline feeds it.

Synthesizes `--scenes` fresh scenes (seeds 700000+, apart from every scene the model was trained
or validated on: those are 500000+ and 600000+), filmed from random cameras (3-10 m up, 15-45
degrees down), tracks each with the shipped detector and ByteTrack (`trajpred track`), and fits
the calibration of data/checkpoints/video.pt on those tracks in pixels, each track's own future
as the label, as `predict` forecasts without a homography (`trajpred calibrate`). Writes the
calibrated checkpoint to --out (default: runs/video_calibrated.pt); copy it over
data/checkpoints/video.pt to ship it. The forecasts do not change, only r50/r90.

    python scripts/calibrate_video_model.py --scenes 6 --duration 120
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trajpred.benchmarking import random_camera  # noqa: E402
from trajpred.cli import main  # noqa: E402

SEED0 = 700000
FPS = 10.0


def scene(work: Path, k: int, duration: float) -> Path:
    """tracks.csv of fresh synthetic scene k (made once; reused by later runs)."""
    folder = work / f"scene_{k}"
    tracks = folder / "tracks.csv"
    if tracks.exists():
        return tracks
    camera = random_camera(SEED0 + k)
    height, tilt = camera["height_m"], camera["tilt_deg"]
    args = ["synth", "--out", str(folder), "--seed", str(SEED0 + k), "--duration", str(duration)]
    args += ["--fps", str(FPS), "--set", f"camera.height_m={height}", f"camera.tilt_deg={tilt}"]
    if main(args) != 0:
        raise SystemExit(f"synth of scene {k} failed")
    weights = str(REPO / "data/detector/synth_yolo.pt")
    if main(["track", str(folder / "video.mp4"), "--out", str(tracks), "--weights", weights]):
        raise SystemExit(f"tracking of scene {k} failed")
    return tracks


def run() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scenes", type=int, default=6, help="synthetic scenes to calibrate on")
    p.add_argument("--duration", type=float, default=120.0, help="seconds per scene")
    p.add_argument("--work", default=str(REPO / "runs/video_calibration"), help="scratch folder")
    p.add_argument("--checkpoint", default=str(REPO / "data/checkpoints/video.pt"))
    p.add_argument("--out", default=str(REPO / "runs/video_calibrated.pt"))
    args = p.parse_args()
    work = Path(args.work)
    tracks = [scene(work, k, args.duration) for k in range(args.scenes)]
    folder = work / "tracks"
    folder.mkdir(parents=True, exist_ok=True)
    for k, t in enumerate(tracks):  # one folder of track files: calibrate reads it whole
        (folder / f"scene_{k}.csv").write_bytes(t.read_bytes())
    return main(
        ["calibrate", "--checkpoint", args.checkpoint, "--data", str(folder), "--scene",
         "tracked_synthetic", "--fps", str(FPS), "--out", args.out]
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(run())
