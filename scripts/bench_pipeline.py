"""Benchmark the predict pipeline against bare ultralytics tracking, on one video and weights.

    .venv/bin/python scripts/bench_pipeline.py VIDEO --weights W [--checkpoint C] [--out bench.json]

Measures, in one run:
1. `YOLO.track` alone (ultralytics' own loop: detect + ByteTrack, nothing written): fps;
2. the full pipeline as `trajpred predict` runs it (detect and track here; forecast, draw and
   write the video and CSVs in its writer process): fps, and the share of the wall time the
   forecaster was busy (in the writer process, beside detection);
   the same with --no-video (forecasts and CSVs, nothing drawn or encoded);
3. a micro-benchmark of the forecaster with 50 live tracks: one `TrackStreams.observe` +
   `forecast` on all 50 per step; its share of a frame at the full pipeline's frame time
   (observe runs once per dt_s for each track, forecast on each frame for tracks just sampled;
   the figure assumes the worst case, both on every frame);
4. a micro-benchmark of the calibrated radii r50/r90 with 50 live tracks, as predict's
   online calibration runs them: each track's sample scoring earlier forecasts, its new
   forecast remembered, and the radii of all 50 (worst case: all three on every frame).
1 and 2 are repeated --runs times (default 3), back to back; each round gives its own ratios
and the headline is the round with the median pipeline / YOLO.track ratio. Writes the figures
as JSON with what they were measured on (CPU model, torch threads, video size, frames) and
prints them.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trajpred.benchmarking import at_least_one  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("video")
    p.add_argument("--weights", required=True)
    p.add_argument(
        "--checkpoint",
        default=None,
        help="forecaster (default: the shipped one, else an untrained model of the default config)",
    )
    p.add_argument(
        "--imgsz",
        type=int,
        default=None,
        help="inference size (default: the size the weights were trained at, else 640)",
    )
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--forecast-device",
        default="detector",
        choices=("detector", "cpu", "cuda"),
        help="where the pipeline's forecaster runs (forecast.device)",
    )
    p.add_argument("--max-frames", type=int, default=300, help="frames used from the video")
    p.add_argument(
        "--runs",
        type=int,
        default=3,
        help="rounds of (pipeline, pipeline --no-video, bare YOLO.track); ratios are per round, "
        "the headline is their median",
    )
    p.add_argument("--half", action="store_true", help="fp16 detector (GPU only)")
    p.add_argument("--tracks", type=int, default=50, help="live tracks in the micro-benchmark")
    p.add_argument("--out", default="bench_pipeline.json")
    args = p.parse_args(argv)
    at_least_one(p, args, "max_frames", "runs", "tracks")
    return args


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def detector_imgsz(args) -> int:
    """The inference size the pipeline's Detector resolves for these weights (both arms use
    it)."""
    from trajpred.detect import Detector, DetectorConfig

    return Detector(
        DetectorConfig(weights=args.weights, imgsz=args.imgsz, device=args.device)
    ).imgsz


def bench_yolo_track(args, n_frames: int, imgsz: int) -> dict:
    """ultralytics' own streaming loop over the first n_frames (stream=True: one at a time)."""
    from ultralytics import YOLO

    from trajpred.detect import fp16_argument, resolve_device
    from trajpred.tracking import tracked_from_ultralytics

    model = YOLO(args.weights, task="detect")
    start, frames, ids = None, 0, set()
    for result in model.track(
        args.video,
        stream=True,
        imgsz=imgsz,
        classes=[0],
        verbose=False,
        device=resolve_device(args.device),
        tracker="bytetrack.yaml",
        **(fp16_argument() if args.half else {}),
    ):
        ids.update(tracked_from_ultralytics(result).track_id.tolist())
        if start is None:  # the first frame includes model warm-up; time the rest
            start = time.perf_counter()
        else:
            frames += 1
        if frames + 1 >= n_frames:
            break
    seconds = time.perf_counter() - start
    return {
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2),
        "tracks": len(ids),
    }


def bench_pipeline(args, checkpoint: str, out_dir: Path, video: bool = True) -> dict:
    from trajpred.commands.predict import predict_video
    from trajpred.detect import DetectorConfig
    from trajpred.pipeline import ForecastConfig, Pipeline, PipelineConfig
    from trajpred.render import RenderConfig
    from trajpred.video import VideoReader, VideoSource
    from trajpred.writer import WriterProcess

    class FirstFrames(VideoReader):
        def __iter__(self):
            for i, frame in enumerate(super().__iter__()):
                if i >= args.max_frames:
                    return
                yield frame

    config = PipelineConfig(
        detector=DetectorConfig(
            weights=args.weights, imgsz=args.imgsz, device=args.device, half=args.half
        ),
        forecast=ForecastConfig(checkpoint=checkpoint, device=args.forecast_device),
        render=RenderConfig(video=video),
    )
    with WriterProcess() as writer:
        pipeline = Pipeline(config)
        source = VideoSource(args.video, Path(args.video).stem)
        with VideoReader(source) as reader:  # warm-up (lazy imports, predictor set-up), untimed
            pipeline.detector.detect(next(iter(reader)))
        writer.wait_ready()  # the writer process's start (imports, ~2 s) is set-up too, untimed
        with FirstFrames(source) as reader:
            info = reader.info
            summary = predict_video(pipeline, reader, out_dir, progress=False, writer=writer)
    return {
        "frames": summary.frames,
        "seconds": round(summary.seconds, 3),
        "fps": round(summary.fps, 2),
        "tracks": summary.tracks,
        "imgsz": pipeline.detector.imgsz,
        "forecast_share": round(summary.forecast_seconds / summary.seconds, 4),
        "video": {"width": info.width, "height": info.height, "fps": info.fps},
    }


def bench_streams(checkpoint: str, n_tracks: int, repeats: int = 50) -> dict:
    """Milliseconds per observe(all tracks) and per forecast(all tracks)."""
    import numpy as np

    from trajpred.checkpoint import load_forecaster
    from trajpred.forecast import TrackStreams

    streams = TrackStreams(load_forecaster(checkpoint), samples=False)  # predict's default k=0
    ids = list(range(1, n_tracks + 1))
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (n_tracks, 2))
    wh = np.tile([20.0, 50.0], (n_tracks, 1))
    for _ in range(3):  # warm-up, and enough samples for forecasting
        xy = xy + rng.normal(0, 3, xy.shape)
        streams.observe(ids, xy, wh)
    t0 = time.perf_counter()
    for _ in range(repeats):
        xy = xy + rng.normal(0, 3, xy.shape)
        streams.observe(ids, xy, wh)
    t1 = time.perf_counter()
    for _ in range(repeats):
        streams.forecast(ids)
    t2 = time.perf_counter()
    return {
        "tracks": n_tracks,
        "observe_ms": round(1000 * (t1 - t0) / repeats, 3),
        "forecast_ms": round(1000 * (t2 - t1) / repeats, 3),
    }


def bench_radii(checkpoint: str, n_tracks: int, repeats: int = 200) -> dict:
    """Milliseconds per frame for the online radii of n_tracks tracks (see the module doc)."""
    import numpy as np

    from trajpred.calibration import ForecastOutcomes, OnlineCalibration, calibration_for
    from trajpred.checkpoint import load_forecaster

    model = load_forecaster(checkpoint)
    steps = model.cfg.pred_len
    online = OnlineCalibration(calibration_for(model))
    outcomes = ForecastOutcomes(online, steps)
    ids = list(range(1, n_tracks + 1))
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (n_tracks, 2))
    mean = xy[:, None] + rng.normal(0, 5, (n_tracks, steps, 2))
    sigma = np.tile(np.linspace(1, 10, steps), (n_tracks, 1))
    for k in range(2 * steps):  # warm-up: every forecast slot in use, online factors set
        outcomes.arrive(ids, np.full(n_tracks, k), xy)
        outcomes.made(ids, np.full(n_tracks, k), mean, sigma)
    t0 = time.perf_counter()
    for k in range(2 * steps, 2 * steps + repeats):
        outcomes.arrive(ids, np.full(n_tracks, k), xy)
        outcomes.made(ids, np.full(n_tracks, k), mean, sigma)
        online.radii(sigma)
    return {
        "tracks": n_tracks,
        "online_radii_ms_per_frame": round(1000 * (time.perf_counter() - t0) / repeats, 4),
    }


def main(argv=None) -> int:
    import torch

    from trajpred.demo import untrained_checkpoint
    from trajpred.pipeline import SHIPPED_FORECASTER

    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="trajpred_bench_"))
    checkpoint = args.checkpoint or (
        str(SHIPPED_FORECASTER)
        if SHIPPED_FORECASTER.exists()
        else untrained_checkpoint(work / "untrained.pt")
    )
    imgsz = detector_imgsz(args)
    rounds = []
    for i in range(args.runs):
        # Each round is bare, pipeline, --no-video, bare, back to back, and the pipeline arms
        # are compared with the mean of the two bare runs around them: this machine's speed
        # drifts by 10 % and more within a minute, and one bare run on one side of the
        # pipeline's would carry that drift into the ratio.
        before = bench_yolo_track(args, args.max_frames, imgsz)
        pipeline = bench_pipeline(args, checkpoint, work / f"predict{i}")
        no_video = bench_pipeline(args, checkpoint, work / f"csv_only{i}", video=False)
        video_info = pipeline["video"]
        for arm in (pipeline, no_video):
            del arm["imgsz"], arm["video"]  # said once, at the top of the report
        after = bench_yolo_track(args, args.max_frames, imgsz)
        yolo_fps = (before["fps"] + after["fps"]) / 2
        rounds.append(
            {
                "yolo_track": {
                    **before,
                    "fps": round(yolo_fps, 2),
                    "fps_before_after": [before["fps"], after["fps"]],
                },
                "pipeline": pipeline,
                "pipeline_no_video": no_video,
                "pipeline_vs_yolo_track": round(pipeline["fps"] / yolo_fps, 3),
                "no_video_vs_yolo_track": round(no_video["fps"] / yolo_fps, 3),
            }
        )
        print(
            f"round {i + 1}: YOLO.track {before['fps']:.1f} / {after['fps']:.1f} fps (before / "
            f"after), pipeline {pipeline['fps']:.1f} fps "
            f"({rounds[-1]['pipeline_vs_yolo_track']:.3f}), --no-video {no_video['fps']:.1f} fps "
            f"({rounds[-1]['no_video_vs_yolo_track']:.3f})",
            flush=True,
        )
    ratios = sorted(r["pipeline_vs_yolo_track"] for r in rounds)
    median = rounds[[r["pipeline_vs_yolo_track"] for r in rounds].index(ratios[len(ratios) // 2])]
    yolo, pipeline = median["yolo_track"], median["pipeline"]
    streams = bench_streams(checkpoint, args.tracks)
    radii = bench_radii(checkpoint, args.tracks)
    frame_ms = 1000.0 / pipeline["fps"]
    step_ms = streams["observe_ms"] + streams["forecast_ms"]
    report = {
        "machine": {
            "cpu": cpu_model(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": args.device,
            "forecast_device": args.forecast_device,
            "half": args.half,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "video": {"path": args.video, **video_info, "frames_used": pipeline["frames"]},
        "weights": args.weights,
        "imgsz": imgsz,
        "checkpoint": checkpoint,
        "rounds": rounds,
        "pipeline_vs_yolo_track_per_round": [r["pipeline_vs_yolo_track"] for r in rounds],
        "no_video_vs_yolo_track_per_round": [r["no_video_vs_yolo_track"] for r in rounds],
        # the round with the median pipeline / YOLO.track ratio:
        "yolo_track": yolo,
        "pipeline": pipeline,
        "pipeline_no_video": median["pipeline_no_video"],
        "pipeline_vs_yolo_track": median["pipeline_vs_yolo_track"],
        "forecaster_50_tracks": {
            **streams,
            "frame_ms_full_pipeline": round(frame_ms, 2),
            "share_of_frame_worst_case": round(step_ms / (frame_ms + step_ms), 4),
        },
        "radii_50_tracks": radii,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    v = report["video"]
    print(
        f"on {report['machine']['cpu']}, torch {torch.__version__} with "
        f"{report['machine']['torch_threads']} threads, device {args.device}; video "
        f"{v['width']}x{v['height']} at {v['fps']:g} fps, {v['frames_used']} frames, imgsz {imgsz}"
    )
    print(
        f"median of {len(rounds)} rounds: pipeline / YOLO.track "
        f"{report['pipeline_vs_yolo_track']:.3f} (rounds {ratios})"
    )
    print(f"YOLO.track alone:        {yolo['fps']:.1f} fps ({yolo['tracks']} tracks)")
    print(
        f"full pipeline:           {pipeline['fps']:.1f} fps "
        f"(forecaster busy {pipeline['forecast_share']:.1%} "
        f"of the time in the writer process, {pipeline['tracks']} tracks)"
    )
    worst = report["forecaster_50_tracks"]["share_of_frame_worst_case"]
    print(
        f"forecaster, {args.tracks} tracks: observe {streams['observe_ms']:.2f} ms + forecast "
        f"{streams['forecast_ms']:.2f} ms per step = {worst:.1%} "
        f"of a frame at worst"
    )
    print(
        f"calibrated radii (online), {args.tracks} tracks: "
        f"{radii['online_radii_ms_per_frame']:.3f} ms per frame at worst -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
