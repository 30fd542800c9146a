"""Detect, track and forecast every object in a video; write an annotated video and CSV files.

SOURCE is a video file, a folder or glob of videos (outputs go to OUT/<video stem>/ each), a
webcam index (0) or a stream URL (rtsp://...). Frames are read, processed and written one at a
time; Ctrl-C stops cleanly (complete CSV rows, playable video, exit code 130).

Writes into OUT: annotated.mp4 (boxes, ids, past trail, dashed forecast with a band of +-1
sigma), tracks.csv (frame,track_id,x,y,left,top,width,height,class_id,conf,units[,wx,wy];
x,y = the box's bottom centre in pixels, frames 1-based), tracks_mot.txt (MOTChallenge
results), forecasts.csv (frame,track_id,step,target_frame,x,y[,wx,wy]: the forecast made at
`frame` for `target_frame` = frame + round(step * dt_s * fps), bottom centre in pixels) and
config.yaml (the resolved config). With --homography (image -> ground plane, metres; fit one
with `trajpred homography`) the forecaster works on the ground plane in metres and wx,wy hold
those metres.

Forecasts start once a track has 2 samples (one model step, dt_s, after it appears): younger
tracks get no forecast rows. Settings: built-in defaults (as in configs/predict.yaml), then
--config, then --set key=value (e.g. --set forecast.drop_after_s=3), then the flags below.

Examples:
  trajpred predict clip.mp4 --out runs/clip --weights data/detector/synth_yolo.pt
  trajpred predict videos/ --out runs/all --tracker botsort --homography H.txt --k 5
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..pipeline import Pipeline
    from ..results import FrameResult
    from ..video import VideoReader
    from ..writer import WriterProcess

DEFAULT_WEIGHTS = "yolo11n.pt"


def add_detector_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared with `trajpred track`: source, output, detector and tracker settings."""
    S = argparse.SUPPRESS  # unset flags leave the config's value (shown in --help as default)
    p.add_argument("source", metavar="SOURCE", help="video file, folder, glob, webcam index or URL")
    p.add_argument(
        "--config",
        metavar="YAML",
        default=S,
        help="config file (default: built-in defaults, as in configs/predict.yaml)",
    )
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        nargs="+",
        default=[],
        dest="overrides",
        help="override config keys, e.g. detector.conf=0.3 forecast.k=5",
    )
    p.add_argument(
        "--weights",
        default=S,
        help=f"detector weights (.pt, .onnx, OpenVINO folder) "
        f"(default: {DEFAULT_WEIGHTS}, downloaded by ultralytics; offline use "
        f"data/detector/synth_yolo.pt)",
    )
    p.add_argument(
        "--classes",
        nargs="+",
        default=S,
        metavar="CLASS",
        help="class names or ids to detect (default: person)",
    )
    p.add_argument(
        "--conf", type=float, default=S, help="detection confidence threshold (default: 0.25)"
    )
    p.add_argument(
        "--imgsz",
        type=int,
        default=S,
        help="inference size in pixels (default: the size the weights were trained at, else 640)",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=S,
        help="where to run the detector and forecaster (default: auto)",
    )
    p.add_argument(
        "--tracker", default=S, help="bytetrack, botsort or a tracker yaml (default: bytetrack)"
    )
    p.add_argument(
        "--fps",
        type=float,
        default=S,
        help="frame rate to assume (default: the video's; needed when it is unknown)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_detector_arguments(p)
    S = argparse.SUPPRESS
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--checkpoint",
        default=S,
        help="forecaster checkpoint (default: the shipped data/checkpoints/video.pt)",
    )
    p.add_argument(
        "--homography",
        default=S,
        metavar="H.txt",
        help="3x3 image -> ground plane matrix (`trajpred homography`): forecast in metres on "
        "the ground plane, drawn in the image; adds wx, wy (metres) to the CSVs",
    )
    p.add_argument(
        "--k", type=int, default=S, help="sampled trajectories to draw per track (default: 0)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes for a folder of videos, one video "
        "each at a time (torch threads are split between them)",
    )


FLAG_KEYS = {
    "weights": "detector.weights",
    "classes": "detector.classes",
    "conf": "detector.conf",
    "imgsz": "detector.imgsz",
    "device": "detector.device",
    "tracker": "tracker",
    "fps": "fps",
    "checkpoint": "forecast.checkpoint",
    "homography": "forecast.homography",
    "k": "forecast.k",
}


def load_pipeline_config(args: argparse.Namespace):
    """Defaults, then --config, then --set, then explicit flags -> PipelineConfig."""
    from ..config import from_dict, merge, parse_overrides, read_yaml
    from ..pipeline import PipelineConfig

    data = read_yaml(args.config) if hasattr(args, "config") else {}
    data = merge(data, parse_overrides(args.overrides))
    for flag, key in FLAG_KEYS.items():
        if hasattr(args, flag):
            data = merge(data, _nested(key, getattr(args, flag)))
    return from_dict(PipelineConfig, data, getattr(args, "config", "arguments"))


def _nested(dotted: str, value) -> dict:
    """'detector.conf', 0.3 -> {'detector': {'conf': 0.3}}."""
    *parents, leaf = dotted.split(".")
    node = out = {}
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out


def prepare_out_dir(path: Path) -> Path:
    """Create the output folder and prove it is writable; one-line error otherwise."""
    import os
    import tempfile

    from ..errors import TrajpredError

    if path.exists() and not path.is_dir():
        raise TrajpredError(f"{path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_test", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise TrajpredError(f"{path}: output folder is not writable ({e.strerror or e})") from None
    return path


def _predict_video(pipeline, writer, video, out_dir: Path, progress: bool) -> str:
    """One video through the pipeline and writer process into out_dir; the summary line."""
    with pipeline.open(video) as reader:
        try:
            return predict_video(pipeline, reader, out_dir, progress=progress, writer=writer).line()
        except KeyboardInterrupt as e:
            print(e.summary.line() if hasattr(e, "summary") else "interrupted", file=sys.stderr)
            raise


_worker_pipeline = None
_worker_writer = None


def _worker_init(config, threads: int) -> None:
    global _worker_pipeline, _worker_writer
    import torch

    from ..pipeline import Pipeline
    from ..writer import WriterProcess

    torch.set_num_threads(threads)
    _worker_writer = WriterProcess()  # a daemon: stopped when the worker exits
    _worker_pipeline = Pipeline(config)


def _worker_job(video, out_dir: Path) -> tuple[str, str | None, str | None]:
    """(video uri, summary line, one-line error) for one video, in a worker process."""
    from ..errors import TrajpredError

    try:
        return (
            video.uri,
            _predict_video(_worker_pipeline, _worker_writer, video, out_dir, progress=False),
            None,
        )
    except TrajpredError as e:
        return video.uri, None, str(e)


def _run_parallel(config, videos, out: Path, workers: int) -> int:
    """Videos of a folder spread over worker processes; each worker loads the models once."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    failed = 0
    ctx = multiprocessing.get_context("spawn")  # no forked torch/OpenCV thread state
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_init, initargs=(config, threads)
    ) as pool:
        jobs = [pool.submit(_worker_job, v, prepare_out_dir(out / v.name)) for v in videos]
        for job in as_completed(jobs):
            uri, line, error = job.result()
            if error:
                print(f"trajpred predict: skipped {uri}: {error}", file=sys.stderr)
                failed += 1
            else:
                print(line, flush=True)
    return 2 if failed else 0


def run(args: argparse.Namespace) -> int:
    from ..errors import TrajpredError
    from ..pipeline import Pipeline
    from ..video import VideoReader, expand_source
    from ..writer import WriterProcess

    if args.workers < 1:
        raise TrajpredError("--workers must be at least 1")
    config = load_pipeline_config(args)
    videos, several = expand_source(args.source)
    out = prepare_out_dir(Path(args.out))
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

    failed = 0
    for video in videos:
        out_dir = prepare_out_dir(out / video.name) if several else out
        try:
            print(_predict_video(pipeline, writer, video, out_dir, progress))
        except TrajpredError as e:
            if not several:
                raise
            print(f"trajpred predict: skipped {video.uri}: {e}", file=sys.stderr)
            failed += 1
        except KeyboardInterrupt:
            return 130
    return 2 if failed else 0


# ------------------------------------------------------------ one video's outputs


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
    Ctrl-C: the outputs are closed (complete rows, playable video) and KeyboardInterrupt is
    raised again; `VideoSummary` of the frames done is in the exception's `summary` attribute.
    """
    from tqdm import tqdm

    from ..config import save_config
    from ..writer import VideoJob, WriterProcess

    save_config(pipeline.config, out_dir / "config.yaml")
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
                pipeline.device,
                pipeline.homography,
                on_result is not None,
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
            forecast_seconds = writer.finish()  # every frame handed over is written, files close
            e.summary = summary(True)
            raise
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to report
                writer.finish()
            raise
        finally:
            bar.close()
        forecast_seconds = writer.finish()
        return summary(False)
    finally:
        if own_writer:
            writer.close()
