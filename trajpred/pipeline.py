"""Video -> detections -> tracks -> forecasts, one frame at a time: the Python API of `predict`.

    from trajpred.pipeline import Pipeline, PipelineConfig
    for result in Pipeline(PipelineConfig()).run("clip.mp4"):
        result.frame_id, result.tracks.track_id, result.forecasts.xy   # typed arrays

Forecasting honours the model's time step whatever the frame rate. Each track's bottom-centre
position is sampled at the times t = k * dt_s of a grid shared by all tracks (frame 1 is t = 0),
interpolating linearly between the frames around each sample time, and every sample advances
the track's LSTM state by one step (`TrackStreams.observe`, batched over all tracks sampled on
that frame). A gap in a track longer than `max_gap_steps` model steps is not interpolated over:
the track's forecaster state restarts (training's `resample_tracks` splits tracks there too).

At every frame, each track seen on it with at least 2 samples gets a forecast from its latest
state. The model forecasts relative to the track's last sample; trajpred shifts that forecast to
the current frame: the predicted offsets are added to the track's current bottom centre, and step
s is taken to fall s * dt_s after the current frame (target_frame = frame + round(s * dt_s * fps)).
Tracks with fewer than 2 samples (their first dt_s or so) get no forecast: no rows in
forecasts.csv, nothing drawn. Forecaster state of tracks unseen for `drop_after_s` is dropped.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import between, check_fields, non_empty, optional, positive
from .detect import Detector, DetectorConfig, resolve_device
from .errors import InputError
from .paths import PACKAGE_ROOT, resolve_data_path
from .render import RenderConfig
from .results import FrameForecasts, FrameResult
from .tracking import TrackedBoxes, Tracker
from .video import MAX_FPS, VideoInfo, VideoReader, VideoSource, expand_source

SHIPPED_FORECASTER = PACKAGE_ROOT / "data" / "checkpoints" / "video.pt"
MAX_K = 100  # sampled trajectories drawn per track and frame: more only slows drawing down


@dataclass
class ForecastConfig:
    checkpoint: str = "data/checkpoints/video.pt"  # forecaster trained on pixel tracks; relative
    # paths also resolve under the package root
    k: int = 0  # sampled trajectories per track and frame (0 = none)
    homography: str | None = None  # 3x3 image -> ground plane text file: also forecast in metres
    max_gap_steps: float = 1.0  # longer gaps in a track restart its forecaster state
    drop_after_s: float = 2.0  # forget the forecaster state of tracks unseen this long

    def __post_init__(self) -> None:
        check_fields(
            self,
            checkpoint=non_empty,
            k=between(0, MAX_K),
            max_gap_steps=between(1),
            drop_after_s=positive(),
        )


@dataclass
class PipelineConfig:
    """Everything `predict` runs with; configs/predict.yaml and --set override these defaults."""

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: str = "bytetrack"  # bytetrack | botsort | a tracker yaml path
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    fps: float | None = None  # overrides the container's frame rate

    def __post_init__(self) -> None:
        check_fields(self, tracker=non_empty, fps=optional(between(0, MAX_FPS, low_open=True)))


def read_homography(path: str | Path) -> np.ndarray:
    """A 3x3 matrix from a text file (whitespace or commas; '#' comments), checked invertible."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise InputError(path, f"cannot read homography ({e.strerror or e})") from None
    rows = [ln.split("#")[0].replace(",", " ").split() for ln in text.splitlines()]
    try:
        values = [float(v) for row in rows for v in row]
    except ValueError:
        raise InputError(path, "homography must hold 9 numbers") from None
    if len(values) != 9:
        raise InputError(path, f"homography must hold 9 finite numbers, found {len(values)}")
    for i, v in enumerate(values):
        if not math.isfinite(v):
            what = "NaN" if math.isnan(v) else "an infinite value"
            raise InputError(
                path, f"homography holds {what} (row {i // 3 + 1}, column {i % 3 + 1})"
            )
    h = np.array(values).reshape(3, 3)
    if abs(np.linalg.det(h)) < 1e-12:
        raise InputError(path, "homography is singular")
    return h


def apply_homography(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(..., 2) points -> (..., 2) mapped by the 3x3 matrix h (divided by the third coordinate)."""
    flat = xy.reshape(-1, 2)
    out = np.column_stack([flat, np.ones(len(flat))]) @ h.T
    return (out[:, :2] / out[:, 2:3]).reshape(xy.shape)


def load_model(checkpoint: str):
    """The forecaster from a checkpoint; a missing default gets a hint."""
    from .checkpoint import load_forecaster

    checkpoint = resolve_data_path(checkpoint)
    if not checkpoint.is_file():
        raise InputError(
            checkpoint,
            "forecaster checkpoint not found; pass one with --checkpoint "
            "(e.g. best.pt from `trajpred train`)",
        )
    return load_forecaster(checkpoint)


@dataclass
class _TrackState:
    last_frame: int  # 0-based index of the frame the track was last seen on
    xy: np.ndarray  # (2,) bottom centre there, pixels
    wh: np.ndarray  # (2,) box width, height there, pixels
    next_k: int  # index of the next grid time to sample


class LiveForecaster:
    """Per-track sampling at dt_s, TrackStreams updates and per-frame forecasts (see module doc)."""

    def __init__(
        self,
        model,
        fps: float,
        cfg: ForecastConfig,
        device: str = "cpu",
        homography: np.ndarray | None = None,
    ):
        from .forecast import TrackStreams

        self.cfg, self.fps, self.homography = cfg, fps, homography
        self.dt_s, self.pred_len = model.cfg.dt_s, model.cfg.pred_len
        self.frames_per_step = fps * self.dt_s
        self.streams = TrackStreams(model, device)
        self.state: dict[int, _TrackState] = {}
        self.cache: dict[int, tuple] = {}  # id -> (offsets (P, 2), sigma (P,), samples or None)
        self.n_observed: dict[int, int] = {}  # samples per track id, over the whole video
        self.seconds = 0.0  # time spent in observe + forecast

    def _restart(self, tid: int) -> None:
        self.streams.drop([tid])
        self.cache.pop(tid, None)

    def _samples(self, i: int, tracks: TrackedBoxes) -> dict[int, list]:
        """Grid samples due at frame index i: {k: [(track id, xy, wh), ...]}."""
        due: dict[int, list] = {}
        eps = 1e-9
        for tid, xy, wh in zip(
            tracks.track_id.tolist(), tracks.xy, tracks.box_xywh[:, 2:], strict=False
        ):
            s = self.state.get(tid)
            if (
                s is not None
                and i - s.last_frame > self.cfg.max_gap_steps * self.frames_per_step + eps
            ):
                self._restart(tid)
                s = None
            if s is None:
                first_k = math.ceil(i / self.frames_per_step - eps)
                s = self.state[tid] = _TrackState(i, xy, wh, first_k)
            while s.next_k * self.frames_per_step <= i + eps:
                t = s.next_k * self.frames_per_step
                a = 1.0 if i == s.last_frame else (t - s.last_frame) / (i - s.last_frame)
                due.setdefault(s.next_k, []).append(
                    (tid, s.xy + a * (xy - s.xy), s.wh + a * (wh - s.wh))
                )
                s.next_k += 1
            s.last_frame, s.xy, s.wh = i, xy, wh
        return due

    def update(self, frame_id: int, tracks: TrackedBoxes) -> FrameForecasts:
        """Sample, advance and forecast the tracks of 1-based frame `frame_id`."""
        start = time.perf_counter()
        i = frame_id - 1
        gone = [
            t for t, s in self.state.items() if i - s.last_frame > self.cfg.drop_after_s * self.fps
        ]
        for tid in gone:
            self._restart(tid)
            del self.state[tid]
        observed: set[int] = set()
        for _k, rows in sorted(self._samples(i, tracks).items()):
            ids = [r[0] for r in rows]
            self.streams.observe(
                ids, np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
            )
            observed.update(ids)
            for tid in ids:
                self.n_observed[tid] = self.n_observed.get(tid, 0) + 1
        candidates = sorted(observed)
        fresh = [
            t
            for t, n in zip(candidates, self.streams.n_observed(candidates), strict=False)
            if n >= 2
        ]
        if fresh:
            f = self.streams.forecast(fresh, self.cfg.k)
            # Offsets from the last sample, the point the model forecasts from.
            slots = [self.streams.slot[t] for t in fresh]
            anchor = self.streams.last_xy[slots].cpu().numpy().astype(np.float64)
            for j, tid in enumerate(fresh):
                samples = None if f.samples is None else f.samples[j] - anchor[j]
                self.cache[tid] = (f.mean[j] - anchor[j], f.sigma[j], samples)
        result = self._assemble(frame_id, tracks)
        self.seconds += time.perf_counter() - start
        return result

    def _assemble(self, frame_id: int, tracks: TrackedBoxes) -> FrameForecasts:
        """Cached offsets added to each track's current bottom centre (the shift to this frame)."""
        steps = np.arange(1, self.pred_len + 1)
        target = frame_id + np.rint(steps * self.frames_per_step).astype(np.int64)
        rows = [j for j, t in enumerate(tracks.track_id.tolist()) if t in self.cache]
        ids = tracks.track_id[rows]
        here = tracks.xy[rows]  # (M, 2)
        cached = [self.cache[int(t)] for t in ids]
        xy = np.array([c[0] for c in cached]).reshape(len(ids), self.pred_len, 2) + here[:, None]
        sigma = np.array([c[1] for c in cached]).reshape(len(ids), self.pred_len)
        samples = None
        if self.cfg.k:
            samples = (
                np.array([c[2] for c in cached]).reshape(len(ids), self.cfg.k, self.pred_len, 2)
                + here[:, None, None]
            )
        world = None if self.homography is None else apply_homography(self.homography, xy)
        return FrameForecasts(ids, xy, sigma, target, samples, world)


class Pipeline:
    """Detector, tracker and forecaster, loaded once and run over one or more videos.

    With forecast=False (`trajpred track`) no forecaster is loaded and every FrameResult's
    forecasts are empty.
    """

    def __init__(self, config: PipelineConfig | None = None, forecast: bool = True):
        cfg = config or PipelineConfig()
        self.tracker = Tracker(cfg.tracker)
        self.model = load_model(cfg.forecast.checkpoint) if forecast else None
        self.homography = (
            None
            if cfg.forecast.homography is None or not forecast
            else read_homography(cfg.forecast.homography)
        )
        self.detector = Detector(cfg.detector, low_conf=self.tracker.low_conf)
        self.device = resolve_device(cfg.detector.device)
        # The resolved config (saved beside outputs) names the files actually loaded.
        checkpoint = (
            str(resolve_data_path(cfg.forecast.checkpoint)) if forecast else cfg.forecast.checkpoint
        )
        self.config = dataclasses.replace(
            cfg,
            detector=dataclasses.replace(
                cfg.detector, weights=self.detector.weights, imgsz=self.detector.imgsz
            ),
            forecast=dataclasses.replace(cfg.forecast, checkpoint=checkpoint),
        )
        self.forecaster: LiveForecaster | None = None

    def open(self, source: VideoSource) -> VideoReader:
        return VideoReader(source, self.config.fps)

    def process(self, reader: VideoReader) -> Iterator[FrameResult]:
        """FrameResults of one opened video; tracker and forecaster start fresh for it."""
        for result in self.track_frames(reader):
            yield self.forecast(result)

    def track_frames(self, reader: VideoReader) -> Iterator[FrameResult]:
        """Detected and tracked frames of one opened video, forecasts still empty: pass each one,
        in order, to `forecast`, or to a LiveForecaster elsewhere (`trajpred predict` forecasts
        in its writer process, see trajpred/writer.py, so forecasting overlaps detection)."""
        self.tracker.reset()
        self.forecaster = (
            None
            if self.model is None
            else LiveForecaster(
                self.model, reader.info.fps, self.config.forecast, self.device, self.homography
            )
        )
        for i, image in enumerate(reader):
            yield self.step(i + 1, image, reader.info, reader.source.name)

    def step(
        self, frame_id: int, image: np.ndarray, info: VideoInfo, video: str = ""
    ) -> FrameResult:
        """Detect and track one frame (after `track_frames` set up the video)."""
        detections = self.detector.detect(image)
        tracks = self.tracker.update(detections, image)
        return FrameResult(
            frame_id,
            (frame_id - 1) / info.fps,
            image,
            self.detector.confident(detections),
            tracks,
            FrameForecasts.empty(),
            video,
        )

    def forecast(self, result: FrameResult) -> FrameResult:
        """The frame with its forecasts (frames of one video must come in order)."""
        if self.forecaster is None:
            return result
        return dataclasses.replace(
            result, forecasts=self.forecaster.update(result.frame_id, result.tracks)
        )

    def run(self, source: str) -> Iterator[FrameResult]:
        """FrameResults of every video of SOURCE (file, folder, glob, webcam, URL), in order."""
        videos, _ = expand_source(source)
        for video in videos:
            with self.open(video) as reader:
                yield from self.process(reader)
