"""Generate a synthetic scene with exact ground truth: people walking on a plaza seen by a fixed
camera.

Writes into --out: video.mp4, gt_mot.txt (MOTChallenge boxes, 1-based frames), gt_visibility.txt,
gt_world.txt (ETH/UCY, metres, every world_dt_s), homography.txt (image -> world ground plane),
scene.json and config.yaml. The same seed and config give the same bytes.
With --yolo-dataset, also writes a YOLO person-detection dataset sampled from --scenes more
scenes (seeds 100000 + 1000 * seed + 1 ...), with varied cameras and crowds.

Settings come from the built-in defaults (mirrored in configs/synth.yaml), then --config, then
--set key=value (e.g. --set n_agents=30 --set camera.tilt_deg=50), then the flags below.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from ..checks import between, check_flag
from ..config import add_config_arguments, flag_settings, load_config
from ..errors import TrajpredError
from ..outputs import output_guard
from ..synth.render import scene_paths, write_scene, write_yolo_dataset
from ..synth.world import SynthConfig, simulate

DEFAULTS = SynthConfig()
FLAG_KEYS = {
    "seed": "seed",
    "duration": "duration_s",
    "fps": "fps",
    "width": "width",
    "height": "height",
}
MAX_IMAGES = 1_000_000
MAX_SCENES = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="folder for the video and ground truth "
        "(required unless only --yolo-dataset is wanted)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=argparse.SUPPRESS,
        help=f"random seed (default: the config's, {DEFAULTS.seed})",
    )
    add_config_arguments(parser, None, "n_agents=30 camera.tilt_deg=50")
    parser.add_argument(
        "--duration",
        type=float,
        metavar="S",
        default=argparse.SUPPRESS,
        help=f"scene length in seconds (default: {DEFAULTS.duration_s})",
    )
    parser.add_argument(
        "--fps",
        type=float,
        metavar="F",
        default=argparse.SUPPRESS,
        help=f"video frame rate (default: {DEFAULTS.fps})",
    )
    parser.add_argument(
        "--width",
        type=int,
        metavar="W",
        default=argparse.SUPPRESS,
        help=f"video width in pixels (default: {DEFAULTS.width})",
    )
    parser.add_argument(
        "--height",
        type=int,
        metavar="H",
        default=argparse.SUPPRESS,
        help=f"video height in pixels (default: {DEFAULTS.height})",
    )
    parser.add_argument(
        "--yolo-dataset",
        metavar="DIR",
        help="also write a YOLO detection dataset (images/, labels/, data.yaml) here",
    )
    parser.add_argument(
        "--images",
        type=int,
        metavar="N",
        default=200,
        help=f"images in the YOLO dataset (1 to {MAX_IMAGES})",
    )
    parser.add_argument(
        "--scenes",
        type=int,
        metavar="K",
        default=8,
        help=f"scenes the YOLO dataset samples from, 1 to {MAX_SCENES} (the last 20%% are val)",
    )


def run(args: argparse.Namespace) -> int:
    if args.out is None and args.yolo_dataset is None:
        raise TrajpredError("give --out DIR (and/or --yolo-dataset DIR)")
    check_flag("--images", args.images, between(1, MAX_IMAGES))
    check_flag("--scenes", args.scenes, between(1, MAX_SCENES))
    config_file = getattr(args, "config", None)
    cfg = load_config(
        SynthConfig, config_file, args.overrides, flags=flag_settings(args, FLAG_KEYS)
    )
    if args.out is not None:
        start = time.perf_counter()
        scene = simulate(cfg)
        files = dataclasses.astuple(scene_paths(Path(args.out)))[1:]
        with output_guard(args.out, writes=files, reads=[config_file]):
            paths = write_scene(scene, args.out, progress=True)
        n_people = len(set(scene.person_id[scene.in_gt].tolist()))
        print(
            f"wrote {paths.out_dir}: {scene.n_frames} frames {cfg.width}x{cfg.height} at "
            f"{cfg.fps:g} fps, {n_people} people, {int(scene.in_gt.sum())} boxes, seed "
            f"{cfg.seed}, in {time.perf_counter() - start:.1f} s"
        )
    if args.yolo_dataset is not None:
        start = time.perf_counter()
        seeds = [100_000 + 1000 * cfg.seed + k for k in range(1, args.scenes + 1)]
        data = write_yolo_dataset(args.yolo_dataset, seeds, args.images, cfg, progress=True)
        print(
            f"wrote {data.data_yaml}: {data.n_train} train + {data.n_val} val images, "
            f"{data.n_boxes} boxes, in {time.perf_counter() - start:.1f} s"
        )
    return 0
