"""Train the forecaster shipped for video: ETH/UCY (all scenes) + synthetic-world tracks +
synthetic videos tracked on the ground plane.

    python scripts/train_video_forecaster.py [--scenes 24] [--camera-scenes 16] \\
        [--set train.epochs=5]

Writes synthetic tracks to runs/video_data/{train,val}/ (seeds 500000+, apart from the demo's
and the benchmarks'): the true ground positions of `--scenes` crowds, and, for `--camera-scenes`
crowds filmed from random cameras (3-10 m up, 15-45 deg down), what `predict --homography`
feeds the forecaster: the shipped detector + ByteTrack's boxes, their bottom centres mapped to
the ground and Kalman-filtered as live (far from a low camera a pixel of jitter is decimetres
of depth, which clean tracks never show). Trains with configs/video.yaml into runs/video/, and
ships best.pt without optimiser state as data/checkpoints/video.pt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trajpred.adapt import live_ground_tracks  # noqa: E402
from trajpred.benchmarking import random_camera, synthetic_video, tracking_pipeline, video_source  # noqa: E402
from trajpred.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from trajpred.config import load_config  # noqa: E402
from trajpred.formats import write_eth_ucy  # noqa: E402
from trajpred.pipeline import read_homography  # noqa: E402
from trajpred.synth.world import SynthConfig, simulate  # noqa: E402
from trajpred.tracks import Tracks  # noqa: E402
from trajpred.train import RunConfig, fit  # noqa: E402
from trajpred.video_tracks import tracks_of_video  # noqa: E402
from trajpred.windows import resample_tracks  # noqa: E402

DT_S = 0.4  # the model step (configs/video.yaml)


def _split(k: int) -> str:
    return "val" if k % 4 == 3 else "train"


def camera_tracks(scene_dir: Path, k: int, duration: float) -> Tracks:
    """Ground-plane tracks (metres, one sample per 0.4 s) of synthetic video k (`duration`
    seconds) as the live forecaster reads them with `--homography`: tracked by the shipped
    detector + ByteTrack, bottom centres mapped through the scene's homography and filtered as
    live."""
    camera = random_camera(600000 + k)
    cfg = synthetic_video(scene_dir, {"seed": 600000 + k, "duration_s": duration, "camera": camera})
    pipeline = tracking_pipeline(str(REPO / "data/detector/synth_yolo.pt"))
    tracks, _, _ = tracks_of_video(
        pipeline, video_source(scene_dir / "video.mp4"), scene_dir / "tracks.csv",
        progress=sys.stderr.isatty(),
    )  # fmt: skip
    ground = live_ground_tracks(
        tracks, read_homography(scene_dir / "homography.txt"), cfg.fps, DT_S
    )
    return resample_tracks(ground, cfg.fps * DT_S)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default=str(REPO / "configs/video.yaml"))
    p.add_argument(
        "--scenes", type=int, default=24, help="synthetic scenes (one in four for validation)"
    )
    p.add_argument("--duration", type=float, default=90.0, help="seconds per synthetic scene")
    p.add_argument(
        "--camera-scenes",
        type=int,
        default=16,
        help="synthetic videos tracked by the shipped detector, learnt on the ground plane "
        "(one in four for validation)",
    )
    p.add_argument("--out", default=str(REPO / "data/checkpoints/video.pt"))
    p.add_argument("--set", nargs="+", default=[], dest="overrides", metavar="KEY=VALUE")
    args = p.parse_args()

    data_dir = REPO / "runs/video_data"
    wanted = set()
    for k in range(args.scenes):
        path = data_dir / _split(k) / f"synth_{k:03d}_{args.duration:g}s.txt"
        wanted.add(path)
        if not path.exists():
            scene = simulate(SynthConfig(seed=500000 + k, duration_s=args.duration))
            write_eth_ucy(path, scene.world_tracks())
    for k in range(args.camera_scenes):
        name = f"camera_{k:03d}_{args.duration:g}s"
        path = data_dir / _split(k) / f"{name}.txt"
        wanted.add(path)
        if not path.exists():
            write_eth_ucy(path, camera_tracks(data_dir / "videos" / name, k, args.duration))
    # The config reads every file in these folders: only this run's scenes may be there.
    for split in ("train", "val"):
        for stale in sorted(set((data_dir / split).glob("*.txt")) - wanted):
            stale.unlink()
    run = load_config(RunConfig, args.config, list(args.overrides))
    # Paths in the config are relative to the repository root.
    import os

    os.chdir(REPO)
    result = fit(run, progress=sys.stderr.isatty())
    best = load_checkpoint(result.best_path)
    keep = ("model_config", "run_config", "model", "epoch", "best_val_ade", "history", "metrics")
    save_checkpoint(args.out, {k: best[k] for k in keep})
    print(
        f"shipped {args.out} (epoch {best['epoch']}, validation ADE {best['best_val_ade']:.3f} m)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
