"""Detect, track and forecast every object in a video; write an annotated video and CSV files.

SOURCE is a video file, a folder or glob of videos (outputs go to OUT/<video stem>/ each), a
webcam index (0) or a stream URL (rtsp://...). Frames are read, processed and written one at a
time; Ctrl-C stops cleanly (complete CSV rows, playable video, exit code 130), and so does
SIGTERM (exit code 143).

Writes into OUT: annotated.mp4 (boxes, ids, past trail, dashed forecast inside a band of
radius r50), tracks.csv (frame,track_id,x,y,left,top,width,height,class_id,conf,units[,wx,wy];
x,y = the box's bottom centre in pixels, frames 1-based), tracks_mot.txt (MOTChallenge
results), forecasts.csv (frame,track_id,step,target_frame,x,y,r50,r90[,wx,wy,wr50,wr90]: the
forecast made at `frame` for `target_frame` = frame + round(step * dt_s * fps), bottom centre
in pixels, and the radii of the circles around it that hold 50 % and 90 % of true positions),
with --k samples.csv (frame,track_id,sample,step,x,y[,wx,wy]) and config.yaml (the resolved
config). The radii are calibrated: the checkpoint's calibration, then (forecast.calibration
online) each step's recent errors on this video once their truth has arrived. With
--homography (image -> ground plane, metres; fit one with `trajpred homography`) the
forecaster works on the ground plane in metres and wx,wy,wr50,wr90 hold those metres. With
--zones (a YAML of named polygons, lines and a near-miss distance; see configs/zones.yaml) also
events.csv (frame,track_id,kind,name,direction,other_track_id,probability,p_1s,p_2s,p_3s,
t_median_s: the probability that a track enters a zone, crosses a line, or comes within the
near-miss distance of another track within the forecast's horizon and within 1, 2, 3 s, and
the median time until it does) and alerts.csv (the first frame each reaches events.alert).

Forecasts start once a track has 2 samples (one model step, dt_s, after it appears): younger
tracks get no forecast rows. Settings: built-in defaults (as in configs/predict.yaml), then
--config, then --set key=value (e.g. --set forecast.drop_after_s=3), then the flags below.

Examples:
  trajpred predict clip.mp4 --out runs/clip --weights data/detector/synth_yolo.pt
  trajpred predict videos/ --out runs/all --tracker botsort --homography H.txt --k 5
  trajpred predict clip.mp4 --out runs/clip --zones zones.yaml
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..checks import between, check_flag
from ..config import add_config_arguments, flag_settings, load_config
from ..detect import DEFAULT_IMGSZ, DEVICES, MAX_IMGSZ
from ..pipeline import PipelineConfig
from ..ray_runs import add_ray_arguments

if TYPE_CHECKING:
    from ..pipeline import Pipeline
    from ..results import FrameResult
    from ..video import VideoReader, VideoSource
    from ..writer import WriterProcess

DEFAULTS = PipelineConfig()  # what --help shows as defaults: the config dataclasses' own
MAX_WORKERS = 64


def add_detector_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared with `trajpred track`: source, output, detector and tracker settings."""
    S = argparse.SUPPRESS  # unset flags leave the config's value (shown in --help as default)
    d = DEFAULTS.detector
    p.add_argument("source", metavar="SOURCE", help="video file, folder, glob, webcam index or URL")
    add_config_arguments(p, None, "detector.conf=0.3 forecast.k=5")
    p.add_argument(
        "--weights",
        default=S,
        help=f"detector weights (.pt, .onnx, OpenVINO folder) (default: {d.weights}, "
        f"downloaded by ultralytics; offline use data/detector/synth_yolo.pt)",
    )
    p.add_argument(
        "--classes",
        nargs="+",
        default=S,
        metavar="CLASS",
        help=f"class names or ids to detect (default: {' '.join(map(str, d.classes))})",
    )
    p.add_argument(
        "--conf", type=float, default=S, help=f"detection confidence threshold (default: {d.conf})"
    )
    p.add_argument(
        "--imgsz",
        type=int,
        default=S,
        help=f"inference size in pixels, 32 to {MAX_IMGSZ}, rounded up to the detector's stride "
        f"(default: the size the weights were trained at, else {DEFAULT_IMGSZ})",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default=S,
        help=f"where to run the detector and forecaster (default: {d.device}; "
        "--set forecast.device=cpu keeps the forecaster on the CPU)",
    )
    p.add_argument(
        "--tracker",
        default=S,
        help=f"bytetrack, botsort or a tracker yaml (default: {DEFAULTS.tracker})",
    )
    p.add_argument(
        "--fps",
        type=float,
        default=S,
        help="frame rate to assume (default: the video's; needed when it is unknown)",
    )
    p.add_argument(
        "--half",
        action="store_const",
        const=True,
        default=S,
        help="fp16 detector inference on a GPU (ignored on the CPU)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_detector_arguments(p)
    S = argparse.SUPPRESS
    f = DEFAULTS.forecast
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--checkpoint", default=S, help=f"forecaster checkpoint (default: {f.checkpoint})"
    )
    p.add_argument(
        "--homography",
        default=S,
        metavar="H.txt",
        help="3x3 image -> ground plane matrix (`trajpred homography`): forecast in metres on "
        "the ground plane, drawn in the image; adds wx, wy (metres) to the CSVs",
    )
    p.add_argument(
        "--k", type=int, default=S, help=f"sampled trajectories to draw per track (default: {f.k})"
    )
    p.add_argument(
        "--zones",
        default=S,
        metavar="YAML",
        help="zones, lines and a near-miss distance to watch (pixels, or metres with "
        "--homography): writes events.csv (who will enter, cross or come close, how likely, "
        "when) and alerts.csv, and draws them",
    )
    p.add_argument(
        "--no-video",
        dest="video",
        action="store_const",
        const=False,
        default=S,
        help="write the CSV files only, no annotated.mp4 (nothing is drawn or encoded: the "
        "fastest way to get forecasts)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help=f"processes for a folder of videos, 1 to {MAX_WORKERS}, one video each at a time "
        "(torch threads are split between them)",
    )
    add_ray_arguments(p)


FLAG_KEYS = {
    "weights": "detector.weights",
    "classes": "detector.classes",
    "conf": "detector.conf",
    "imgsz": "detector.imgsz",
    "device": "detector.device",
    "half": "detector.half",
    "tracker": "tracker",
    "fps": "fps",
    "checkpoint": "forecast.checkpoint",
    "homography": "forecast.homography",
    "k": "forecast.k",
    "zones": "events.zones",
    "video": "render.video",
}


def load_pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    """Defaults, then --config, then --set, then explicit flags -> PipelineConfig."""
    return load_config(
        PipelineConfig,
        getattr(args, "config", None),
        args.overrides,
        flags=flag_settings(args, FLAG_KEYS),
    )


def pipeline_inputs(config: PipelineConfig, args: argparse.Namespace, videos) -> list:
    """Every file a predict or track run reads: videos, weights, checkpoint, homography, the
    config and tracker files (outputs must not be any of them)."""
    from ..paths import resolve_data_path

    tracker = None if config.tracker in ("bytetrack", "botsort") else config.tracker
    return [
        *(v.uri for v in videos if not v.is_stream),
        resolve_data_path(config.detector.weights),
        resolve_data_path(config.forecast.checkpoint),
        config.forecast.homography,
        config.events.zones,
        getattr(args, "config", None),
        tracker,
    ]


def _video_out_dir(out: Path, video: VideoSource, several: bool) -> Path:
    return out / video.name if several else out


def _predict_video(pipeline, writer, video, out_dir: Path, progress: bool) -> str:
    """One video through the pipeline and writer process into out_dir; the summary line."""
    with pipeline.open(video) as reader:
        try:
            return predict_video(pipeline, reader, out_dir, progress=progress, writer=writer).line()
        except PredictInterrupted as e:
            print(e.summary.line(), file=sys.stderr)
            raise
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise


_worker_pipeline = None
_worker_writer = None


def _worker_init(config, threads: int) -> None:
    global _worker_pipeline, _worker_writer
    import torch

    from ..pipeline import Pipeline
    from ..writer import WriterProcess

    # Idle workers ignore Ctrl-C; the main process forwards it to those in a video.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _worker_writer = WriterProcess()  # a daemon: stopped when the worker exits
    _worker_pipeline = Pipeline(config)


def _worker_job(video, out_dir: Path) -> tuple[str, str | None, str | None]:
    """(video uri, summary line, one-line error) for one video, in a worker process."""
    from ..errors import TrajpredError

    for sig in (signal.SIGINT, signal.SIGTERM):  # in a video both stop it like Ctrl-C
        signal.signal(sig, signal.default_int_handler)
    try:
        return (
            video.uri,
            _predict_video(_worker_pipeline, _worker_writer, video, out_dir, progress=False),
            None,
        )
    except TrajpredError as e:
        return video.uri, None, str(e)
    except KeyboardInterrupt:
        return video.uri, None, "interrupted"
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_parallel(config, videos, out: Path, workers: int) -> int:
    """Videos of a folder spread over worker processes; each worker loads the models once.
    Ctrl-C or SIGTERM: queued videos are dropped and the workers stop their current video
    the way a single run does (outputs closed)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ..outputs import writable_folder

    threads = max(1, (os.cpu_count() or 1) // workers)
    failed = 0
    ctx = multiprocessing.get_context("spawn")  # no forked torch/OpenCV thread state
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_init, initargs=(config, threads)
    ) as pool:
        jobs = [pool.submit(_worker_job, v, writable_folder(out / v.name)) for v in videos]
        try:
            for job in as_completed(jobs):
                uri, line, error = job.result()
                if error:
                    print(f"trajpred predict: skipped {uri}: {error}", file=sys.stderr)
                    failed += 1
                else:
                    print(line, flush=True)
        except KeyboardInterrupt:
            for job in jobs:
                job.cancel()
            for proc in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, signal.SIGINT)
            raise
    return 2 if failed else 0


def run(args: argparse.Namespace) -> int:
    from ..outputs import OutputLock, refuse_overwriting_inputs, writable_folder
    from ..pipeline import Pipeline
    from ..predict_files import OUTPUT_NAMES, is_predict_output
    from ..video import VideoReader, expand_source
    from ..writer import WriterProcess

    if getattr(args, "ray", None) is not None:  # one Ray task per video: trajpred/ray_runs.py
        from ..ray_runs import run_ray

        return run_ray(args, "predict", load_pipeline_config, pipeline_inputs, predict_video)
    check_flag("--workers", args.workers, between(1, MAX_WORKERS))
    config = load_pipeline_config(args)
    videos, several = expand_source(args.source, skip=is_predict_output)
    out = Path(args.out)
    outputs = [out] + [_video_out_dir(out, v, several) / n for v in videos for n in OUTPUT_NAMES]
    refuse_overwriting_inputs(outputs, pipeline_inputs(config, args, videos))
    with OutputLock(writable_folder(out)):
        if not several:
            VideoReader(videos[0], config.fps).close()  # a bad video fails before the models load
        elif args.workers > 1:
            return _run_parallel(config, videos, out, min(args.workers, len(videos)))
        with WriterProcess() as writer:  # starts first: its imports overlap loading the models
            pipeline = Pipeline(config)
            return _predict_videos(pipeline, writer, videos, out, several, not args.no_progress)


def _predict_videos(pipeline, writer, videos, out: Path, several: bool, progress: bool) -> int:
    """Each video in turn; with several, a failing video is reported and skipped."""
    from ..errors import TrajpredError
    from ..outputs import writable_folder

    failed = 0
    for video in videos:
        try:
            out_dir = writable_folder(_video_out_dir(out, video, several))
            print(_predict_video(pipeline, writer, video, out_dir, progress))
        except TrajpredError as e:
            if not several:
                raise
            print(f"trajpred predict: skipped {video.uri}: {e}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


# ------------------------------------------------------------ one video's outputs


class PredictInterrupted(KeyboardInterrupt):
    """Ctrl-C while `predict_video` ran: the `VideoSummary` of the frames done (published)."""

    def __init__(self, summary: VideoSummary) -> None:
        super().__init__()
        self.summary = summary


@dataclass
class VideoSummary:
    """What one video gave: frames read, distinct tracks, wall time and time in the forecaster."""

    name: str
    out_dir: Path
    frames: int
    tracks: int
    seconds: float
    forecast_seconds: float
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        state = "interrupted after " if self.interrupted else ""
        return (
            f"{self.name}: {state}{self.frames} frames, {self.tracks} tracks, {self.fps:.1f} fps "
            f"(forecaster busy {100 * self.forecast_seconds / max(self.seconds, 1e-9):.0f}% "
            f"of the time, beside detection) -> {self.out_dir}"
        )


def predict_video(
    pipeline: Pipeline,
    reader: VideoReader,
    out_dir: Path,
    progress: bool = True,
    on_result: Callable[[FrameResult], None] | None = None,
    writer: WriterProcess | None = None,
) -> VideoSummary:
    """Run `pipeline` over the opened video and write its outputs and config.yaml into out_dir;
    `on_result`, if given, also sees every FrameResult with its forecasts (the demo scores them).

    Detection and tracking run here; forecasting, drawing and writing run in `writer` (a
    WriterProcess, see trajpred/writer.py; one is started for this call if none is given).
    Every output, config.yaml included, is published only when the run ends: on success, or
    on Ctrl-C once at least one frame was processed (the outputs are closed: complete rows,
    playable video; KeyboardInterrupt is raised again, with the `VideoSummary` of the frames
    done in its `summary` attribute). A run that fails, or stops before its first frame,
    removes its partial files, so an earlier run's outputs in out_dir stay as they were.
    """
    from tqdm import tqdm

    from ..atomic import Staging
    from ..config import save_config
    from ..writer import VideoJob, WriterProcess

    staging = Staging()
    save_config(pipeline.config, staging.stage(out_dir / "config.yaml"))
    own_writer = writer is None
    writer = writer or WriterProcess()
    try:
        forecast = pipeline.config.forecast
        writer.open(
            VideoJob(
                out_dir,
                reader.info,
                pipeline.config.render,
                forecast,
                forecast.checkpoint if pipeline.model is not None else None,
                pipeline.forecast_device,
                pipeline.homography,
                on_result is not None,
                pipeline.zones,
                pipeline.config.events,
            ),
            on_result,
        )
        ids: set[int] = set()
        frames, start, forecast_seconds = 0, time.perf_counter(), 0.0
        bar = tqdm(
            total=reader.info.n_frames,
            unit="frame",
            desc=reader.source.name,
            disable=not progress,
            dynamic_ncols=True,
        )

        def summary(interrupted: bool) -> VideoSummary:
            return VideoSummary(
                reader.source.name,
                out_dir,
                frames,
                len(ids),
                time.perf_counter() - start,
                forecast_seconds,
                interrupted,
            )

        try:
            for result in pipeline.track_frames(reader):
                writer.put(result)
                ids.update(result.tracks.track_id.tolist())
                frames += 1
                bar.update()
        except KeyboardInterrupt as e:
            # every frame handed over is written and the files close
            forecast_seconds = _close_outputs(writer, staging, publish=frames > 0)
            raise PredictInterrupted(summary(True)) from e
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to report
                _close_outputs(writer, staging, publish=False)
            raise
        finally:
            bar.close()
        forecast_seconds = _close_outputs(writer, staging, publish=True)
        return summary(False)
    finally:
        staging.discard()  # config.yaml's partial file, if the writer never opened
        if own_writer:
            writer.close()


def _close_outputs(writer: WriterProcess, staging, publish: bool) -> float:
    """Close the writer's files and config.yaml: all published together, or all removed."""
    try:
        seconds = writer.finish(publish=publish)
    except BaseException:
        staging.discard()
        raise
    if publish:
        staging.publish()
    else:
        staging.discard()
    return seconds
