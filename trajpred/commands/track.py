"""Detect and track only (no forecasting); export tracks that `trajpred train` accepts.

Writes trajpred's CSV (frame,track_id,x,y,left,top,width,height,class_id,conf,units; x,y = the
box's bottom centre in pixels, frames 1-based; with --homography also wx,wy: the same point on
the ground plane, metres), one row per (frame, track), written and flushed frame by frame. For
a folder or glob of videos, --out is a folder and each video gets OUT/<video stem>.csv (track
ids restart for each video). Same detector and tracker as `trajpred predict`, with the same
flags and config keys (detector.*, tracker, fps).

Train the forecaster on the result (FPS = the video's frame rate, printed at the end):
  trajpred train --set data.train_files='[tracks.csv]' data.fps=FPS
and in metres on the ground plane (a CSV written with --homography):
  trajpred train --set data.train_files='[tracks.csv]' data.fps=FPS data.ground_plane=true

Example:
  trajpred track clip.mp4 --out tracks.csv --weights data/detector/synth_yolo.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ray_runs import add_ray_arguments
from .predict import add_detector_arguments, load_pipeline_config, pipeline_inputs


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_detector_arguments(p)
    p.add_argument(
        "--out",
        required=True,
        metavar="CSV",
        help="tracks CSV to write (a folder when SOURCE holds several videos)",
    )
    p.add_argument(
        "--homography",
        default=argparse.SUPPRESS,
        metavar="H.txt",
        help="3x3 image -> ground plane matrix (`trajpred homography`): also write wx, wy (metres)",
    )
    add_ray_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..errors import TrajpredError
    from ..outputs import OutputLock, refuse_overwriting_inputs, writable_folder
    from ..pipeline import Pipeline
    from ..predict_files import is_predict_output
    from ..video import VideoReader, expand_source

    if getattr(args, "ray", None) is not None:  # one Ray task per video: trajpred/ray_runs.py
        from ..ray_runs import run_ray

        return run_ray(args, "track", load_pipeline_config, pipeline_inputs)
    config = load_pipeline_config(args)
    videos, several = expand_source(args.source, skip=is_predict_output)
    out = Path(args.out)
    out_csvs = [out / f"{v.name}.csv" if several else out for v in videos]
    refuse_overwriting_inputs([out, *out_csvs], pipeline_inputs(config, args, videos))
    if several:
        lock = OutputLock(writable_folder(out))
    else:
        if out.is_dir():
            raise TrajpredError(f"{out}: is a folder; give a CSV file name")
        writable_folder(out.parent)
        lock = OutputLock(out, file=True)
    with lock:
        if not several:
            VideoReader(videos[0], config.fps).close()  # a bad video fails before the model loads
        pipeline = Pipeline(config, forecast=False)
        return _track_videos(pipeline, videos, out_csvs, several, not args.no_progress)


def _track_videos(pipeline, videos, out_csvs: list[Path], several: bool, progress: bool) -> int:
    """Each video in turn; with several, a failing video is reported and skipped."""
    from ..errors import TrajpredError
    from ..video_tracks import TrackingInterrupted, track_video

    failed = 0
    for video, out_csv in zip(videos, out_csvs, strict=True):
        try:
            with pipeline.open(video) as reader:
                frames, n_tracks, seconds = track_video(pipeline, reader, out_csv, progress)
        except TrajpredError as e:
            if not several:
                raise
            print(f"trajpred track: skipped {video.uri}: {e}", file=sys.stderr)
            failed += 1
            continue
        except TrackingInterrupted as e:
            print(
                _line(pipeline, reader, e.frames, e.tracks, e.seconds, out_csv, True),
                file=sys.stderr,
            )
            raise
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise
        print(_line(pipeline, reader, frames, n_tracks, seconds, out_csv))
    return 2 if failed else 0


def _line(
    pipeline, reader, frames: int, tracks: int, seconds: float, out_csv: Path, interrupted=False
) -> str:
    """The summary line of one video, with the command that trains on its tracks."""
    state = "interrupted after " if interrupted else ""
    metres = " data.ground_plane=true" if pipeline.homography is not None else ""
    return (
        f"{reader.source.name}: {state}{frames} frames, {tracks} tracks, "
        f"{frames / max(seconds, 1e-9):.1f} fps -> {out_csv}; train on it: trajpred train "
        f"--set data.train_files='[{out_csv}]' data.fps={reader.info.fps:g}{metres}"
    )
