"""Throughput of a folder of short clips: `predict --ray` with 1 and 2 tasks at a time, beside
the local pool (`--workers 2`) and one process, all on this machine; and Ray's own overhead.

    PYTHONPATH=. .venv/bin/python scripts/bench_scale.py \\
        --out data/benchmarks/scale_2026-12-07/bench_scale.json [--frames 30] [--rounds 3]

Builds CLIPS synthetic clips of FRAMES frames (320 x 192, 10 fps, trajpred.synth), or takes
the videos of --videos DIR (real footage: ../shared/data/videos, with --weights a COCO
detector), and runs `trajpred predict --no-video` on them as a user does (a subprocess each,
offline, the shipped detector at 320 px unless --weights/--imgsz, the video forecaster), in
each arm:

- local: one process, the videos in turn (models loaded once);
- workers2: `--workers 2`, a local process pool (torch threads split between them);
- ray1: `--ray` (a local Ray instance started by the run) with ray.num_cpus = all CPUs, so one
  task at a time, with all the CPUs' torch threads;
- ray2: the same with ray.num_cpus = half the CPUs: two tasks at a time.

Every arm is timed end to end (wall_s: process start to exit, Python and model loading
included), ROUNDS times with the arms interleaved, and the median kept: throughput = frames /
wall_s. For the Ray arms the script also reads OUT/runs.csv
(each video's own processing seconds) and reports
- overhead_per_video_s = (wall_s - sum of the videos' seconds / tasks at a time) / videos: every
  fixed cost (Python, Ray's start and stop, each worker's imports and model loading, the task
  round trips), spread over the videos;
- ray_overhead_per_video_s = (wall_s - wall_s of the local arm that runs as many videos at a
  time: local for ray1, workers2 for ray2) / videos: what Ray adds to the same work;
- steady_scaling (ray2): the videos' own seconds of ray1 over those of ray2 halved: how much
  faster two tasks at a time go once started, fixed costs left out.
It also times Ray alone: ray.init and ray.shutdown of a local instance and the round trip of
an empty task. With --training it also times `trajpred train` (ETH/UCY from ../shared, the
configs/eth_ucy.yaml model, 3 epochs) under `torchrun --standalone --nproc_per_node=1` and
`=2`: the mean epoch seconds of epochs 2 and 3 and the speed-up. Writes JSON and prints a
table that says what ran on what.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trajpred.atomic import write_json  # noqa: E402
from trajpred.benchmarking import at_least_one  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--clips", type=int, default=8, help="short clips in the folder")
    p.add_argument("--frames", type=int, default=30, help="frames per clip")
    p.add_argument("--out", default="bench_scale.json", help="JSON to write")
    p.add_argument("--rounds", type=int, default=3, help="runs of every arm (median kept)")
    p.add_argument(
        "--videos",
        metavar="DIR",
        help="time these videos instead of synthetic clips (--clips and --frames then unused)",
    )
    p.add_argument("--weights", help="detector weights (default: the shipped one)")
    p.add_argument("--imgsz", type=int, default=320, help="detector input size")
    p.add_argument(
        "--training", action="store_true", help="also time training with 1 and 2 processes"
    )
    args = p.parse_args(argv)
    at_least_one(p, args, "clips", "frames", "rounds", "imgsz")
    if args.videos and not Path(args.videos).is_dir():
        p.error(f"--videos {args.videos}: not a folder")
    return args


def make_clips(folder: Path, n: int, frames: int) -> Path:
    """n mp4 clips of `frames` frames of one synthetic scene, each starting further in."""
    import cv2

    from trajpred.synth.render import write_scene
    from trajpred.synth.world import SynthConfig, simulate

    scene = write_scene(
        simulate(SynthConfig(width=320, height=192, fps=10.0, duration_s=12.0, seed=5, n_agents=8)),
        folder / "scene",
    )
    cap = cv2.VideoCapture(str(scene.video))
    source = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        source.append(frame)
    cap.release()
    clips = folder / "clips"
    clips.mkdir()
    for i in range(n):
        writer = cv2.VideoWriter(
            str(clips / f"clip{i}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 192)
        )
        for k in range(frames):
            writer.write(source[(3 * i + k) % len(source)])
        writer.release()
    return clips


def checkpoint(folder: Path) -> str:
    shipped = ROOT / "data" / "checkpoints" / "video.pt"
    if shipped.is_file():
        return str(shipped)
    from trajpred.demo import untrained_checkpoint

    return untrained_checkpoint(folder / "untrained.pt")


def timed_run(args: list[str]) -> float:
    env = {**os.environ, "YOLO_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "trajpred", *args], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench_scale: trajpred {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return wall


def runs_sum(out: Path, column: str) -> float:
    """A column of OUT/runs.csv added up: the videos' own seconds, or their frames."""
    with open(out / "runs.csv", newline="") as f:
        return sum(float(row[column]) for row in csv.DictReader(f))


def ray_alone() -> dict:
    """Seconds to start and stop a local Ray instance, and ms for one empty task's round
    trip."""
    import ray

    start = time.perf_counter()
    ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    init_s = time.perf_counter() - start

    @ray.remote
    def nothing(x):
        return x

    ray.get([nothing.remote(i) for i in range(4)])  # workers up
    start = time.perf_counter()
    for i in range(50):
        ray.get(nothing.remote(i))
    task_ms = 1000 * (time.perf_counter() - start) / 50
    start = time.perf_counter()
    ray.shutdown()
    return {
        "ray_init_s": round(init_s, 2),
        "ray_shutdown_s": round(time.perf_counter() - start, 2),
        "empty_task_round_trip_ms": round(task_ms, 2),
    }


def training_arms(folder: Path) -> dict:
    """Mean epoch seconds (epochs 2 and 3) of `trajpred train` under torchrun with 1 and 2
    processes, and the speed-up."""
    if not (ROOT.parent / "shared" / "data" / "eth_ucy").is_dir():
        sys.exit("bench_scale: --training trains on ../shared/data/eth_ucy, which is absent")
    data = ["--config", str(ROOT / "configs" / "eth_ucy.yaml"), "--set"]
    arms = {}
    for n in (1, 2):
        out = folder / f"train{n}"
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={n}", "-m", "trajpred", "train", "--no-progress", "--out",
            str(out), *data, "train.epochs=3", "train.patience=10",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            sys.exit(f"bench_scale: training with {n} processes failed:\n{done.stderr[-2000:]}")
        with open(out / "log.csv", newline="") as f:
            seconds = [float(row["seconds"]) for row in csv.DictReader(f)][1:]
        arms[f"processes{n}"] = {"epoch_s": round(sum(seconds) / len(seconds), 2)}
        print(f"training, {n} process(es): {arms[f'processes{n}']}", flush=True)
    arms["speedup"] = round(arms["processes1"]["epoch_s"] / arms["processes2"]["epoch_s"], 2)
    return arms


def main(argv=None) -> None:
    import ray
    import torch

    from trajpred.detect import SHIPPED_DETECTOR
    from trajpred.video import expand_source

    a = parse_args(argv)
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = Path(tmp)
        clips = Path(a.videos) if a.videos else make_clips(folder, a.clips, a.frames)
        n_videos = len(expand_source(str(clips))[0])  # the videos predict reads there
        common = [
            "--weights",
            a.weights or str(SHIPPED_DETECTOR),
            "--imgsz",
            str(a.imgsz),
            "--checkpoint",
            checkpoint(folder),
            "--device",
            "cpu",
            "--no-video",
            "--no-progress",
        ]
        arms = {
            "local": ([], 1),
            "workers2": (["--workers", "2"], 2),
            "ray1": (["--ray", "--set", f"ray.num_cpus={cpus}"], 1),
            "ray2": (["--ray", "--set", f"ray.num_cpus={max(1, cpus // 2)}"], 2),
        }
        walls: dict[str, list[float]] = {name: [] for name in arms}
        seconds: dict[str, list[float]] = {name: [] for name in arms}
        for round_ in range(a.rounds):  # arms interleaved: a slow spell hits them all
            for name, (extra, _) in arms.items():
                out = folder / f"{name}{round_}"
                walls[name].append(
                    timed_run(["predict", str(clips), "--out", str(out), *common, *extra])
                )
                if name.startswith("ray"):
                    seconds[name].append(runs_sum(out, "seconds"))
                print(f"round {round_ + 1}, {name}: {walls[name][-1]:.2f} s", flush=True)
        frames = int(runs_sum(folder / "ray10", "frames"))  # as decoded
        results = {}
        for name, (_, at_once) in arms.items():
            wall = statistics.median(walls[name])
            arm = {
                "wall_s": round(wall, 2),
                "walls_s": [round(w, 2) for w in walls[name]],
                "frames": frames,
                "throughput_fps": round(frames / wall, 2),
                "videos_at_once": at_once,
            }
            if name.startswith("ray"):
                spent = statistics.median(seconds[name])
                same = results["local" if at_once == 1 else "workers2"]["wall_s"]
                arm["videos_seconds_sum"] = round(spent, 2)
                arm["overhead_per_video_s"] = round((wall - spent / at_once) / n_videos, 2)
                arm["ray_overhead_per_video_s"] = round((wall - same) / n_videos, 2)
            results[name] = arm
        one, two = results["ray1"]["videos_seconds_sum"], results["ray2"]["videos_seconds_sum"]
        results["ray2"]["steady_scaling"] = round(one / (two / 2), 2)
        training = training_arms(folder) if a.training else None
    videos = (
        f"the {n_videos} videos of {a.videos} ({frames} frames)"
        if a.videos
        else f"{a.clips} clips x {a.frames} frames (320x192)"
    )
    detector = a.weights or "shipped detector"
    report = {
        "what": f"trajpred predict --no-video on {videos}, {detector} at {a.imgsz} px, end to "
        f"end per arm, median of {a.rounds} round(s)",
        "machine": {
            "cpus": cpus,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ray": ray.__version__,
        },
        "arms": results,
        "ray_alone": ray_alone(),
    }
    if training is not None:
        report["training"] = training
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)  # temp file, then rename: an earlier run's JSON stays whole
    print(f"\n{report['what']}; {cpus} CPUs, no GPU" if not report["machine"]["gpu"] else "")
    print(f"{'arm':<10} {'wall s':>8} {'frames/s':>9} {'fixed s/video':>14} {'Ray s/video':>12}")
    for name, arm in results.items():
        fixed, own = arm.get("overhead_per_video_s", ""), arm.get("ray_overhead_per_video_s", "")
        print(f"{name:<10} {arm['wall_s']:>8} {arm['throughput_fps']:>9} {fixed:>14} {own:>12}")
    print(f"ray2 over ray1, once started: {results['ray2']['steady_scaling']}x")
    if training is not None:
        print(f"training: {training}")
    print(f"ray alone: {report['ray_alone']} -> {path}")


if __name__ == "__main__":
    main()
