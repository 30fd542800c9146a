"""Synthesize a scene and run the whole pipeline on it, offline, with scores for every stage.

Generates a fresh synthetic plaza scene with exact ground truth (OUT/scene: video.mp4,
gt_mot.txt, homography.txt, ...), runs `predict` on it with the shipped detector
(data/detector/synth_yolo.pt) and forecaster (data/checkpoints/video.pt; an untrained model,
i.e. constant velocity, when that file is absent), writes predict's outputs into OUT
(annotated.mp4, tracks.csv, tracks_mot.txt, forecasts.csv, config.yaml) and prints:
detection precision/recall (IoU 0.5 against gt_mot boxes), tracking MOTA and IDF1
(py-motmetrics), and forecast ADE/FDE in pixels beside constant velocity on the same tracks.

--ground-plane forecasts in metres through the scene's homography (as predict --homography)
and also scores constant velocity in metres; --set changes the scene (configs/synth.yaml keys).
A low, shallow camera shows strong perspective:
  trajpred demo --ground-plane --set camera.height_m=4 camera.tilt_deg=20

--zones also watches zones, lines and near misses (a zones file, or, without one, four zones
and two lines placed where the scene's people walk, saved as OUT/scene/zones.yaml), writes
events.csv and alerts.csv, draws them, and prints how good the events' probabilities are
against the exact truth: Brier skill beside constant velocity and "inside now", and the alerts'
precision and lead time:
  trajpred demo --zones
"""

from __future__ import annotations

import argparse

from ..config import add_set_argument
from ..detect import DEVICES, DetectorConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", metavar="DIR", help="output folder")
    p.add_argument(
        "--seed", type=int, default=1, help="scene seed (the detector trained on seeds >= 200000)"
    )
    p.add_argument(
        "--duration", type=float, default=20.0, metavar="S", help="scene length in seconds"
    )
    p.add_argument(
        "--weights",
        default=None,
        help="detector weights (default: the shipped data/detector/synth_yolo.pt)",
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="forecaster checkpoint (default: the shipped data/checkpoints/video.pt)",
    )
    p.add_argument(
        "--imgsz",
        type=int,
        default=None,
        help="detector inference size (default: the size the weights were trained at)",
    )
    p.add_argument("--device", choices=DEVICES, default=DetectorConfig().device)
    p.add_argument(
        "--ground-plane",
        action="store_true",
        help="forecast in metres on the ground plane (the scene's homography.txt)",
    )
    p.add_argument(
        "--zones",
        nargs="?",
        const="auto",
        metavar="YAML",
        help="watch zones, lines and near misses (predict --zones) and score the events' "
        "probabilities against the exact truth beside constant velocity; without a file, "
        "four zones and two lines are placed where the scene's people walk",
    )
    add_set_argument(p, "synthetic scene settings (configs/synth.yaml keys)", "camera.tilt_deg=25")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..config import load_config, parse_overrides
    from ..demo import run_demo
    from ..detect import DetectorConfig
    from ..outputs import output_guard
    from ..predict_files import OUTPUT_NAMES
    from ..synth.world import SynthConfig

    # Every setting is checked before any work, with the flag that gave it named.
    load_config(
        SynthConfig,
        overrides=args.overrides,
        flags={"--seed": ("seed", args.seed), "--duration": ("duration_s", args.duration)},
    )
    load_config(
        DetectorConfig,
        flags={"--imgsz": ("imgsz", args.imgsz), "--device": ("device", args.device)},
    )
    out = Path(args.out)
    with output_guard(
        out,
        writes=[out / name for name in OUTPUT_NAMES],
        reads=[args.weights, args.checkpoint, None if args.zones == "auto" else args.zones],
    ):
        result = run_demo(
            args.out,
            seed=args.seed,
            duration_s=args.duration,
            weights=args.weights,
            checkpoint=args.checkpoint,
            imgsz=args.imgsz,
            device=args.device,
            progress=not args.no_progress,
            ground_plane=args.ground_plane,
            synth_overrides=parse_overrides(args.overrides),
            zones=args.zones,
        )
    for line in result.lines():
        print(line)
    return 0
