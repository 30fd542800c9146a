"""The files `predict` writes for one video, one frame at a time: annotated.mp4, tracks.csv,
tracks_mot.txt, forecasts.csv and, with --k, samples.csv (formats of the rows: `track_rows`,
`mot_rows`, `forecast_rows`, `sample_rows`). With a homography, tracks.csv, forecasts.csv and
samples.csv also hold ground-plane positions (wx, wy, metres), forecasts.csv its radii there
(wr50, wr90, metres).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from .atomic import Staging, writing
from .formats import CSV_COLUMNS, CSV_WORLD_COLUMNS
from .geometry import GroundPlane
from .results import FrameForecasts, FrameResult
from .tracking import TrackedBoxes
from .video import VideoInfo, VideoWriter

FORECAST_COLUMNS = ("frame", "track_id", "step", "target_frame", "x", "y", "r50", "r90")
FORECAST_WORLD_COLUMNS = ("wx", "wy", "wr50", "wr90")
SAMPLE_COLUMNS = ("frame", "track_id", "sample", "step", "x", "y")
EVENT_COLUMNS = (
    "frame",
    "track_id",
    "kind",
    "name",
    "direction",
    "other_track_id",
    "probability",
    "p_1s",
    "p_2s",
    "p_3s",
    "t_median_s",
)
ALERT_COLUMNS = ("frame", "time_s", "track_id", "kind", "name", "direction", "other_track_id",
                 "probability", "t_median_s")  # fmt: skip
VIDEO_NAME = "annotated.mp4"
SAMPLES_NAME = "samples.csv"  # only with --k > 0
EVENTS_NAME, ALERTS_NAME = "events.csv", "alerts.csv"  # only with --zones
# Every file `predict` writes into its output folder (config.yaml by the command itself).
OUTPUT_NAMES = (
    VIDEO_NAME,
    "tracks.csv",
    "tracks_mot.txt",
    "forecasts.csv",
    SAMPLES_NAME,
    EVENTS_NAME,
    ALERTS_NAME,
    "config.yaml",
)


def is_predict_output(path: Path) -> bool:
    """True for an annotated video that `predict` wrote (it sits beside its forecasts.csv), so
    a folder or glob SOURCE does not pick up the outputs of an earlier run."""
    return path.name == VIDEO_NAME and (path.parent / "forecasts.csv").is_file()


class PredictOutputs:
    """annotated.mp4, tracks.csv, tracks_mot.txt and forecasts.csv of one video, written one
    frame at a time under hidden partial names (`atomic.Staging`): each frame's rows go out in
    one write and are flushed, so an interrupted run leaves complete rows, and `close()`
    finalises the video so it stays playable, then publishes every file together. A write that
    fails (full disk) is one OutputError naming the file."""

    def __init__(
        self,
        out_dir: Path,
        info: VideoInfo,
        homography: np.ndarray | None = None,
        video: bool = True,
        samples: bool = False,
        events: bool = False,
    ):
        self.out_dir = out_dir
        self.ground = None if homography is None else GroundPlane(homography)
        world = CSV_WORLD_COLUMNS if self.ground is not None else ()
        self.staging = Staging()
        self.video: VideoWriter | None = None
        # (final path, open partial file, the function that gives a frame's rows)
        self._files: list[tuple[Path, IO[str], Callable[[FrameResult], str]]] = []
        try:
            if video:  # False: the CSV files alone (predict --no-video)
                path = out_dir / VIDEO_NAME
                self.video = VideoWriter(
                    self.staging.stage(path), info.fps, info.width, info.height, shown_as=path
                )
            self._open("tracks.csv", CSV_COLUMNS + world, self._track_rows)
            self._open("tracks_mot.txt", (), lambda r: mot_rows(r.frame_id, r.tracks))
            forecast_world = FORECAST_WORLD_COLUMNS if world else ()
            self._open(
                "forecasts.csv",
                FORECAST_COLUMNS + forecast_world,
                lambda r: forecast_rows(r.frame_id, r.forecasts),
            )
            if samples:  # True: sampled trajectories (predict --k > 0)
                self._open(
                    SAMPLES_NAME,
                    SAMPLE_COLUMNS + world,
                    lambda r: sample_rows(r.frame_id, r.forecasts),
                )
            if events:  # True: zones watched (predict --zones)
                self._open(EVENTS_NAME, EVENT_COLUMNS, event_rows)
                self._open(ALERTS_NAME, ALERT_COLUMNS, alert_rows)
        except BaseException:
            self.close(publish_files=False)
            raise

    def _open(self, name: str, columns: tuple[str, ...], rows) -> None:
        path = self.out_dir / name
        with writing(path):
            f = open(self.staging.stage(path), "w", newline="")
            self._files.append((path, f, rows))
            if columns:
                f.write(",".join(columns) + "\n")
                f.flush()

    def _track_rows(self, result: FrameResult) -> str:
        t = result.tracks
        world = (
            None
            if self.ground is None
            else self.ground.to_ground(t.xy, result.frame_id, t.track_id)
        )
        return track_rows(result.frame_id, t, world)

    def write(self, result: FrameResult, annotated: np.ndarray | None) -> None:
        """One frame's rows, and its annotated image unless the video is off (None)."""
        if self.video is not None and annotated is not None:
            self.video.write(annotated)
        texts = [rows(result) for _, _, rows in self._files]  # all rows first: a bad frame
        for (path, file, _), text in zip(self._files, texts, strict=True):  # writes none
            with writing(path):
                file.write(text)
                file.flush()

    def close(self, publish_files: bool = True) -> None:
        """Finalise every file; publish_files: check the video reads back whole and move every
        file into place (also after Ctrl-C: complete rows, playable video); else remove them
        (the run failed: the outputs of an earlier run stay exactly as they were)."""
        error: BaseException | None = None
        if self.video is not None:
            self.video.close()
        for path, file, _ in self._files:
            try:
                with writing(path):
                    file.close()
            except BaseException as e:
                error = error or e
        try:
            if publish_files and error is None and self.video is not None:
                self.video.verify()
        except BaseException as e:
            error = e
        self._files, self.video = [], None
        if publish_files and error is None:
            self.staging.publish()
        else:
            self.staging.discard()
        if error is not None:
            raise error


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
    """forecasts.csv rows of one frame: frame,track_id,step,target_frame,x,y,r50,r90 (pixels)
    [,wx,wy,wr50,wr90 (metres)]."""
    lines = []
    wxy, w50, w90 = fc.world_xy, fc.world_r50, fc.world_r90
    for j, tid in enumerate(fc.track_id.tolist()):
        for s, target in enumerate(fc.target_frame.tolist(), 1):
            x, y = fc.xy[j, s - 1]
            row = f"{frame_id},{tid},{s},{target},{x:.2f},{y:.2f}"
            row += f",{fc.r50[j, s - 1]:.2f},{fc.r90[j, s - 1]:.2f}"
            if wxy is not None and w50 is not None and w90 is not None:
                wx, wy = wxy[j, s - 1]
                row += f",{wx:.4f},{wy:.4f},{w50[j, s - 1]:.4f},{w90[j, s - 1]:.4f}"
            lines.append(row + "\n")
    return "".join(lines)


def sample_rows(frame_id: int, fc: FrameForecasts) -> str:
    """samples.csv rows of one frame: frame,track_id,sample,step,x,y (pixels)[,wx,wy (metres)],
    sample and step 1-based (empty without samples)."""
    if fc.samples is None:
        return ""
    lines = []
    for j, tid in enumerate(fc.track_id.tolist()):
        for k, path in enumerate(fc.samples[j].tolist(), 1):
            for s, (x, y) in enumerate(path, 1):
                row = f"{frame_id},{tid},{k},{s},{x:.2f},{y:.2f}"
                if fc.world_samples is not None:
                    row += ",{:.4f},{:.4f}".format(*fc.world_samples[j, k - 1, s - 1])
                lines.append(row + "\n")
    return "".join(lines)


def _number(value: float, digits: int) -> str:
    """A CSV number; NaN (unknown) is an empty field."""
    return "" if value != value else f"{value:.{digits}f}"


def event_rows(result: FrameResult) -> str:
    """events.csv rows of one frame: frame,track_id,kind,name,direction,other_track_id,
    probability,p_1s,p_2s,p_3s,t_median_s (FrameEvents; empty fields: none or unknown)."""
    ev = result.forecasts.events
    if ev is None:
        return ""
    lines = []
    for e in range(len(ev)):
        other = int(ev.other_track_id[e])
        within = ",".join(_number(p, 3) for p in ev.p_within[e])
        lines.append(
            f"{result.frame_id},{int(ev.track_id[e])},{ev.kind[e]},{ev.name[e]},"
            f"{ev.direction[e]},{'' if other < 0 else other},{ev.probability[e]:.3f},"
            f"{within},{_number(ev.t_median_s[e], 2)}\n"
        )
    return "".join(lines)


def alert_rows(result: FrameResult) -> str:
    """alerts.csv rows of one frame: the events whose probability reached events.alert for the
    first time: frame,time_s,track_id,kind,name,direction,other_track_id,probability,
    t_median_s."""
    ev = result.forecasts.events
    if ev is None:
        return ""
    lines = []
    for e in np.flatnonzero(ev.alert):
        other = int(ev.other_track_id[e])
        lines.append(
            f"{result.frame_id},{result.time_s:.3f},{int(ev.track_id[e])},{ev.kind[e]},"
            f"{ev.name[e]},{ev.direction[e]},{'' if other < 0 else other},"
            f"{ev.probability[e]:.3f},{_number(ev.t_median_s[e], 2)}\n"
        )
    return "".join(lines)
