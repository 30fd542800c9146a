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
import time
from pathlib import Path

from .predict import add_detector_arguments, load_pipeline_config, prepare_out_dir


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


def track_video(pipeline, reader, out_csv: Path, progress: bool) -> tuple[int, int, float]:
    """Write one video's tracks to out_csv frame by frame -> (frames, tracks, seconds)."""
    from tqdm import tqdm

    from ..atomic import partial_path, publish
    from ..errors import InputError
    from ..exports import track_rows
    from ..formats import CSV_COLUMNS, CSV_WORLD_COLUMNS
    from ..geometry import GroundPlane

    ground = None
    if pipeline.homography is not None:
        ground = GroundPlane(pipeline.homography, pipeline.config.forecast.homography)
    ids: set[int] = set()
    frames, start = 0, time.perf_counter()
    partial = partial_path(out_csv)
    try:
        f = open(partial, "w", newline="")
    except OSError as e:
        raise InputError(out_csv, f"cannot write ({e.strerror or e})") from None
    try:
        with (
            f,
            tqdm(
                total=reader.info.n_frames,
                unit="frame",
                desc=reader.source.name,
                disable=not progress,
                dynamic_ncols=True,
            ) as bar,
        ):
            f.write(",".join(CSV_COLUMNS + (CSV_WORLD_COLUMNS if ground else ())) + "\n")
            for result in pipeline.process(reader):
                t = result.tracks
                world = (
                    None if ground is None else ground.to_ground(t.xy, result.frame_id, t.track_id)
                )
                f.write(track_rows(result.frame_id, t, world))
                f.flush()
                ids.update(result.tracks.track_id.tolist())
                frames += 1
                bar.update()
    finally:
        publish(partial, out_csv)  # complete rows, also after Ctrl-C
    return frames, len(ids), time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    from ..errors import TrajpredError
    from ..pipeline import Pipeline
    from ..video import VideoReader, expand_source

    config = load_pipeline_config(args)
    videos, several = expand_source(args.source)
    out = Path(args.out)
    if several:
        prepare_out_dir(out)
    else:
        prepare_out_dir(out.parent if str(out.parent) else Path("."))
        if out.is_dir():
            raise TrajpredError(f"{out}: is a folder; give a CSV file name")
        VideoReader(videos[0], config.fps).close()  # a bad video fails before the model loads
    pipeline = Pipeline(config, forecast=False)
    failed = 0
    for video in videos:
        out_csv = out / f"{video.name}.csv" if several else out
        try:
            reader = pipeline.open(video)
        except TrajpredError as e:
            if not several:
                raise
            print(f"trajpred track: skipped {video.uri}: {e}", file=sys.stderr)
            failed += 1
            continue
        with reader:
            frames, n_tracks, seconds = track_video(pipeline, reader, out_csv, not args.no_progress)
        fps = reader.info.fps
        metres = " data.ground_plane=true" if pipeline.homography is not None else ""
        print(
            f"{video.name}: {frames} frames, {n_tracks} tracks, "
            f"{frames / max(seconds, 1e-9):.1f} fps -> {out_csv}; train on it: trajpred train "
            f"--set data.train_files='[{out_csv}]' data.fps={fps:g}{metres}"
        )
    return 2 if failed else 0
