"""The files `predict` writes for one video, one frame at a time: annotated.mp4, tracks.csv,
tracks_mot.txt and forecasts.csv (formats of the rows: `track_rows`, `mot_rows`, `forecast_rows`).
With a homography, tracks.csv and forecasts.csv also hold ground-plane positions (wx, wy, metres).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np

from .atomic import partial_path, publish
from .errors import InputError
from .formats import CSV_COLUMNS, CSV_WORLD_COLUMNS
from .geometry import GroundPlane
from .results import FrameForecasts, FrameResult
from .tracking import TrackedBoxes
from .video import VideoInfo, VideoWriter

FORECAST_COLUMNS = ("frame", "track_id", "step", "target_frame", "x", "y")


class PredictOutputs:
    """annotated.mp4, tracks.csv, tracks_mot.txt and forecasts.csv of one video, written one
    frame at a time: each frame's rows go out in one write and are flushed, so an interrupted
    run leaves complete rows, and `close()` finalises the video so it stays playable."""

    def __init__(self, out_dir: Path, info: VideoInfo, homography: np.ndarray | None = None):
        self.out_dir = out_dir
        self.ground = None if homography is None else GroundPlane(homography)
        world = CSV_WORLD_COLUMNS if self.ground is not None else ()
        self._files: list[IO[str]] = []
        self._published: list[tuple[Path, Path]] = []  # (partial, final), renamed by close()
        try:
            video = out_dir / "annotated.mp4"
            self.video = VideoWriter(partial_path(video), info.fps, info.width, info.height)
            self._published.append((partial_path(video), video))
            self.tracks_csv = self._open("tracks.csv", ",".join(CSV_COLUMNS + world))
            self.tracks_mot = self._open("tracks_mot.txt", None)
            self.forecasts_csv = self._open("forecasts.csv", ",".join(FORECAST_COLUMNS + world))
        except BaseException:
            self.close()
            raise

    def _open(self, name: str, header: str | None):
        try:
            f = open(partial_path(self.out_dir / name), "w", newline="")
        except OSError as e:
            raise InputError(self.out_dir / name, f"cannot write ({e.strerror or e})") from None
        self._files.append(f)
        self._published.append((partial_path(self.out_dir / name), self.out_dir / name))
        if header:
            f.write(header + "\n")
            f.flush()
        return f

    def write(self, result: FrameResult, annotated: np.ndarray) -> None:
        self.video.write(annotated)
        t = result.tracks
        world = (
            None
            if self.ground is None
            else self.ground.to_ground(t.xy, result.frame_id, t.track_id)
        )
        self.tracks_csv.write(track_rows(result.frame_id, t, world))
        self.tracks_mot.write(mot_rows(result.frame_id, result.tracks))
        self.forecasts_csv.write(forecast_rows(result.frame_id, result.forecasts))
        for file in self._files:
            file.flush()

    def close(self, publish_files: bool = True) -> None:
        """Finalise every file and move it into place (also after Ctrl-C: complete rows);
        publish_files=False leaves them under their hidden partial names (the run died: the
        outputs of an earlier run stay as they were)."""
        if getattr(self, "video", None) is not None:
            self.video.close()
        for file in self._files:
            file.close()
        for partial, final in self._published if publish_files else []:
            if partial.exists():
                publish(partial, final)
        self._published = []


def track_rows(frame_id: int, t: TrackedBoxes, world_xy: np.ndarray | None = None) -> str:
    """tracks.csv rows of one frame (formats.CSV_COLUMNS; x, y = bottom centre, pixels), and
    with world_xy (N, 2) the same points on the ground plane in metres (CSV_WORLD_COLUMNS)."""
    world = [""] * len(t) if world_xy is None else [f",{a:.4f},{b:.4f}" for a, b in world_xy]
    return "".join(
        f"{frame_id},{i},{x:.2f},{y:.2f},{left:.2f},{top:.2f},{w:.2f},{h:.2f},{k},{c:.4f},px{g}\n"
        for i, (x, y), (left, top, w, h), k, c, g in zip(
            t.track_id.tolist(),
            t.xy.tolist(),
            t.box_xywh.tolist(),
            t.class_id.tolist(),
            t.conf.tolist(),
            world,
            strict=False,
        )
    )


def mot_rows(frame_id: int, t: TrackedBoxes) -> str:
    """MOTChallenge results rows of one frame: frame,id,left,top,width,height,conf,-1,-1,-1."""
    return "".join(
        f"{frame_id},{i},{left:.2f},{top:.2f},{w:.2f},{h:.2f},{c:.4f},-1,-1,-1\n"
        for i, (left, top, w, h), c in zip(
            t.track_id.tolist(), t.box_xywh.tolist(), t.conf.tolist(), strict=False
        )
    )


def forecast_rows(frame_id: int, fc: FrameForecasts) -> str:
    """forecasts.csv rows of one frame: frame,track_id,step,target_frame,x,y[,wx,wy]."""
    lines = []
    for j, tid in enumerate(fc.track_id.tolist()):
        for s, (target, (x, y)) in enumerate(
            zip(fc.target_frame.tolist(), fc.xy[j].tolist(), strict=False), 1
        ):
            row = f"{frame_id},{tid},{s},{target},{x:.2f},{y:.2f}"
            if fc.world_xy is not None:
                row += ",{:.4f},{:.4f}".format(*fc.world_xy[j, s - 1])
            lines.append(row + "\n")
    return "".join(lines)
