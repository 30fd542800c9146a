"""What the scripts that reproduce the README's figures (scripts/*.py) share: synthetic videos
filmed from random cameras, written once; a video tracked by the detector + ByteTrack (into
trajpred's CSV, read back frame by frame); and live forecasts scored against the tracker's own
future, the label where there is no ground truth.

    from trajpred.benchmarking import tracked_frames
    frames, fps = tracked_frames(Path("clip.mp4"), "data/detector/synth_yolo.pt", work, None)
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .pipeline import Pipeline
    from .results import FrameForecasts
    from .synth.world import SynthConfig
    from .tracking import TrackedBoxes
    from .tracks import Tracks
    from .video import VideoSource


def at_least_one(parser: argparse.ArgumentParser, args: argparse.Namespace, *flags: str) -> None:
    """A script's counts (`flags`, as attribute names) below 1: the parser's one-line error,
    exit 2, before any work."""
    for flag in flags:
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")


def random_camera(seed: int) -> dict[str, float]:
    """A camera 3-10 m up, looking 15-45 degrees down, drawn from `seed`: SynthConfig.camera
    overrides (the video model's training, calibration and benchmark scenes)."""
    rng = np.random.default_rng(seed)
    return {"height_m": float(rng.uniform(3, 10)), "tilt_deg": float(rng.uniform(15, 45))}


def synthetic_video(folder: Path, overrides: dict) -> SynthConfig:
    """The SynthConfig of `overrides`; its scene (video.mp4 and the ground truth, as `trajpred
    synth` writes them) is written into `folder` unless a video is there already, so a later
    run reuses it."""
    from .config import from_dict
    from .synth.render import write_scene
    from .synth.world import SynthConfig, simulate

    cfg = from_dict(SynthConfig, overrides)
    if not (folder / "video.mp4").exists():
        write_scene(simulate(cfg), folder)
    return cfg


def tracking_pipeline(weights: str, classes: Sequence[int | str] | None = None) -> Pipeline:
    """A Pipeline that detects (`weights`, only `classes` when given: ids or names) and tracks,
    no forecast."""
    from .pipeline import Pipeline, PipelineConfig

    config = PipelineConfig()
    config.detector.weights = weights
    if classes:
        config.detector.classes = list(classes)
    return Pipeline(config, forecast=False)


def video_source(video: Path) -> VideoSource:
    """The VideoSource of one video file."""
    from .video import expand_source

    return expand_source(str(video))[0][0]


def frames_of(tracks: Tracks) -> list[TrackedBoxes]:
    """Pixel tracks as the tracker gave them frame by frame: one TrackedBoxes per frame from 1
    to the last frame with a track (empty ones included)."""
    from .tracking import TrackedBoxes

    if tracks.box_xywh is None:
        raise ValueError("tracks without boxes are no tracker output")
    frames = []
    for f in range(1, int(tracks.frame_id.max()) + 1 if len(tracks) else 1):
        rows = tracks.frame_id == f
        frames.append(
            TrackedBoxes(
                tracks.track_id[rows],
                tracks.box_xywh[rows],
                tracks.conf[rows],
                tracks.class_id[rows],
            )
        )
    return frames


def tracked_frames(
    video: Path, weights: str, work: Path, classes: Sequence[int | str] | None
) -> tuple[list[TrackedBoxes], float]:
    """(per-frame TrackedBoxes, fps) of a video tracked by the detector `weights` (only
    `classes` when given) and ByteTrack, once: the tracks go to work/<video stem>.csv, which
    later calls read back instead of tracking again."""
    from .formats import read_tracks
    from .video_tracks import tracks_of_video

    csv = work / f"{video.stem}.csv"
    source = video_source(video)
    pipeline = tracking_pipeline(weights, classes)
    if csv.exists():
        tracks = read_tracks(csv, "csv")
        with pipeline.open(source) as reader:
            fps = reader.info.fps
    else:
        tracks, info, _ = tracks_of_video(pipeline, source, csv, progress=False)
        fps = info.fps
    return frames_of(tracks), fps


class OwnFuture:
    """Where the tracker saw each track on each frame: the label a live forecast is scored
    against without ground truth (the forecast of a track, against the positions the tracker
    gave it at the forecast's target frames)."""

    def __init__(self, frames: list[TrackedBoxes]) -> None:
        self.xy = {
            (f, int(t)): xy
            for f, boxes in enumerate(frames, 1)
            for t, xy in zip(boxes.track_id, boxes.xy, strict=True)
        }

    def errors(self, fc: FrameForecasts) -> Iterator[tuple[int, np.ndarray]]:
        """(row of `fc`, (pred_len,) distance of each step from the tracker's position then)
        for each forecast whose track the tracker saw at every target frame."""
        for j, tid in enumerate(fc.track_id.tolist()):
            future = [self.xy.get((int(t), tid)) for t in fc.target_frame]
            if any(p is None for p in future):
                continue
            yield j, np.linalg.norm(fc.xy[j] - np.array(future), axis=-1)
