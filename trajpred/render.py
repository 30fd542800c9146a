"""The outputs of `predict`, one frame at a time: the annotated video and the CSV files.

`Renderer.draw(result)` draws a FrameResult on a copy of its frame:
- box and id label: one colour per track id;
- trail: the track's bottom centre over the last `trail_s` seconds, a solid line;
- forecast: a dashed line with white dots at the predicted bottom centres, inside a translucent
  band whose half-width is the forecast's standard deviation `sigma` at each step (so it widens
  with the horizon), plus thin lines for sampled trajectories when --k > 0.

`write_predictions` runs a Pipeline over one video and writes annotated.mp4, tracks.csv,
tracks_mot.txt, forecasts.csv and config.yaml (see `PredictOutputs`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .atomic import partial_path, publish
from .errors import InputError
from .formats import CSV_COLUMNS
from .pipeline import FrameForecasts, FrameResult, RenderConfig
from .tracking import TrackedBoxes
from .video import VideoInfo, VideoReader, VideoWriter

if TYPE_CHECKING:
    from .writer import WriterProcess

FONT = cv2.FONT_HERSHEY_SIMPLEX


@functools.lru_cache(maxsize=4096)
def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour per id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _pts(xy: np.ndarray) -> np.ndarray:
    """(N, 2) float pixels -> (N, 1, 2) int32, the layout cv2.polylines/fillPoly take."""
    return np.round(xy).astype(np.int32).reshape(-1, 1, 2)


def uncertainty_band(centre: np.ndarray, sigma: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Polygon (..., 2P + 1, 2) around the path start (..., 2) -> centre (..., P, 2), half-width
    sigma (..., P) pixels; leading dimensions are tracks, all done at once."""
    path = np.concatenate([start[..., None, :], centre], axis=-2)
    d = np.gradient(path, axis=-2)[..., 1:, :]
    normal = (
        np.stack([-d[..., 1], d[..., 0]], -1)
        / np.maximum(np.linalg.norm(d, axis=-1), 1e-6)[..., None]
    )
    left = centre + normal * sigma[..., None]
    right = centre - normal * sigma[..., None]
    return np.concatenate([start[..., None, :], left, right[..., ::-1, :]], axis=-2)


class Renderer:
    """Keeps each track's recent trail and draws results onto copies of their frames."""

    def __init__(self, fps: float, cfg: RenderConfig | None = None):
        self.cfg = cfg or RenderConfig()
        self.fps = fps
        self.trails: dict[int, deque] = {}

    def _update_trails(self, result: FrameResult) -> None:
        keep = max(2, int(round(self.cfg.trail_s * self.fps)))
        for tid, xy in zip(result.tracks.track_id.tolist(), result.tracks.xy, strict=False):
            self.trails.setdefault(tid, deque(maxlen=keep)).append((result.frame_id, xy))
        # Trails of tracks gone for longer than the trail itself are forgotten.
        for tid in [t for t, d in self.trails.items() if result.frame_id - d[-1][0] > keep]:
            del self.trails[tid]

    def draw(self, result: FrameResult) -> np.ndarray:
        """(H, W, 3) uint8 BGR annotated copy of result.image."""
        self._update_trails(result)
        img = result.image.copy()
        fc = result.forecasts
        overlay = img.copy()
        current = dict(zip(result.tracks.track_id.tolist(), result.tracks.xy, strict=False))
        if len(fc):
            starts = np.array([current[tid] for tid in fc.track_id.tolist()])
            bands = np.round(uncertainty_band(fc.xy, fc.sigma, starts)).astype(np.int32)
            for tid, band in zip(fc.track_id.tolist(), bands, strict=False):
                cv2.fillPoly(overlay, [band[:, None]], track_colour(tid), cv2.LINE_AA)
        cv2.addWeighted(overlay, self.cfg.band_alpha, img, 1 - self.cfg.band_alpha, 0, dst=img)
        for j, tid in enumerate(fc.track_id.tolist()):
            colour = track_colour(tid)
            if fc.samples is not None:
                for sample in fc.samples[j]:
                    path = np.vstack([current[tid][None], sample])
                    cv2.polylines(img, [_pts(path)], False, colour, 1, cv2.LINE_AA)
            path = np.vstack([current[tid][None], fc.xy[j]])
            dashes = np.stack([path[:-1], path[:-1] + 0.6 * (path[1:] - path[:-1])], 1)  # (P, 2, 2)
            cv2.polylines(
                img,
                list(np.round(dashes).astype(np.int32)),
                False,
                colour,
                self.cfg.line_px,
                cv2.LINE_AA,
            )  # dashed, unlike the solid trail
        if len(fc):  # white dots at the predicted points: zero-length round-capped segments,
            # all in one call (the same pixels as a radius-2 filled circle each)
            dots = np.repeat(np.round(fc.xy.reshape(-1, 1, 2)).astype(np.int32), 2, axis=1)
            cv2.polylines(img, list(dots[:, :, None]), False, (255, 255, 255), 4, cv2.LINE_AA)
        for tid, trail in self.trails.items():
            if tid not in current or len(trail) < 2:
                continue
            pts = np.array([p for _, p in trail])
            cv2.polylines(img, [_pts(pts)], False, track_colour(tid), self.cfg.line_px, cv2.LINE_AA)
        for tid, box in zip(result.tracks.track_id.tolist(), result.tracks.box_xywh, strict=False):
            self._box(img, tid, box)
        return img

    def _box(self, img: np.ndarray, tid: int, box: np.ndarray) -> None:
        colour = track_colour(tid)
        x0, y0 = int(round(box[0])), int(round(box[1]))
        x1, y1 = int(round(box[0] + box[2])), int(round(box[1] + box[3]))
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, self.cfg.line_px)
        label = str(tid)
        (tw, th), base = cv2.getTextSize(label, FONT, 0.4, 1)
        cv2.rectangle(img, (x0, y0 - th - base - 2), (x0 + tw + 4, y0), colour, -1)
        cv2.putText(img, label, (x0 + 2, y0 - base - 1), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)


# ---------------------------------------------------------------- the files of one video

FORECAST_COLUMNS = ("frame", "track_id", "step", "target_frame", "x", "y")


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


class PredictOutputs:
    """annotated.mp4, tracks.csv, tracks_mot.txt and forecasts.csv of one video, written one
    frame at a time: each frame's rows go out in one write and are flushed, so an interrupted
    run leaves complete rows, and `close()` finalises the video so it stays playable."""

    def __init__(self, out_dir: Path, info: VideoInfo, with_world: bool):
        self.out_dir = out_dir
        self._files = []
        self._published: list[tuple[Path, Path]] = []  # (partial, final), renamed by close()
        try:
            video = out_dir / "annotated.mp4"
            self.video = VideoWriter(partial_path(video), info.fps, info.width, info.height)
            self._published.append((partial_path(video), video))
            self.tracks_csv = self._open("tracks.csv", ",".join(CSV_COLUMNS))
            self.tracks_mot = self._open("tracks_mot.txt", None)
            columns = FORECAST_COLUMNS + (("wx", "wy") if with_world else ())
            self.forecasts_csv = self._open("forecasts.csv", ",".join(columns))
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
        self.tracks_csv.write(track_rows(result.frame_id, result.tracks))
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


def track_rows(frame_id: int, t: TrackedBoxes) -> str:
    """tracks.csv rows of one frame (formats.CSV_COLUMNS; x, y = bottom centre, pixels)."""
    return "".join(
        f"{frame_id},{i},{x:.2f},{y:.2f},{l:.2f},{top:.2f},{w:.2f},{h:.2f},{k},{c:.4f},px\n"
        for i, (x, y), (l, top, w, h), k, c in zip(
            t.track_id.tolist(),
            t.xy.tolist(),
            t.box_xywh.tolist(),
            t.class_id.tolist(),
            t.conf.tolist(),
            strict=False,
        )
    )


def mot_rows(frame_id: int, t: TrackedBoxes) -> str:
    """MOTChallenge results rows of one frame: frame,id,left,top,width,height,conf,-1,-1,-1."""
    return "".join(
        f"{frame_id},{i},{l:.2f},{top:.2f},{w:.2f},{h:.2f},{c:.4f},-1,-1,-1\n"
        for i, (l, top, w, h), c in zip(
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


def write_predictions(
    pipeline,
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

    from .config import save_config
    from .writer import VideoJob, WriterProcess

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
