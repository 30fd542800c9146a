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

Units. Without a homography the model reads pixels, scaled per track by box height / 1.7
(pixels per metre of a person). With one (`forecast.homography`, image -> ground plane in
metres) every bottom centre is mapped to the ground plane as it arrives and smoothed there
(trajpred/ground_filter.py: a pixel of bottom-edge jitter is a metre of depth far away), so
sampling, interpolation, the LSTM state, neighbours and the shift to the current frame all
happen in metres, at scale 1: the units the model was trained in, where a straight walk at
constant speed stays straight and steady instead of bending and slowing with perspective. The
forecast (mean, samples) is mapped back into the image for drawing and `xy`; `world_xy` keeps
the metres (`world_r50`, `world_r90` the radii there); the radii become pixels with the local
scale of the ground -> image map at each predicted point (trajpred/geometry.py
`GroundPlane.pixels_per_metre`). Steps that would come closer to the camera than half the
track's depth (far below the image, or behind the camera) are held at the last step before
them (`GroundPlane.to_image`), so every drawn point is finite; a track that maps to a
non-finite, absurdly far or above-the-horizon ground point stops the run with an error naming
the frame and track.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .calibration import (
    Calibration,
    ErrorShape,
    ForecastOutcomes,
    OnlineCalibration,
    calibration_for,
    warn_if_uncalibrated,
)
from .checks import between, check_fields, non_empty, one_of, optional, positive
from .detect import DEVICES, Detector, DetectorConfig, resolve_device
from .errors import InputError
from .events import EventsConfig, EventWatch
from .geometry import GroundPlane, read_homography
from .geometry import apply_homography as apply_homography  # the names' old home
from .ground_filter import GroundFilter
from .paths import PACKAGE_ROOT, resolve_data_path
from .render import RenderConfig
from .results import FrameForecasts, FrameResult
from .tracking import TrackedBoxes, Tracker
from .video import MAX_FPS, VideoInfo, VideoReader, VideoSource, expand_source
from .zones import ZoneSet, read_zones

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
    ground_noise_px: float = 3.0  # with a homography: std of a box's bottom centre in pixels,
    # for the ground-plane Kalman filter (trajpred/ground_filter.py); 0 = raw positions
    device: str = "detector"  # where the forecaster runs: detector (the detector's device) |
    # cpu | cuda. `predict` runs it in its writer process: on a GPU that process shares the
    # card with the detector's, and cpu keeps the detector's process alone on it
    calibration: str = "online"  # radii r50/r90: online (the checkpoint's calibration, then
    # each step's recent errors on this video once their truth arrived) | fixed (the
    # checkpoint's alone); see trajpred/calibration.py OnlineCalibration

    def restart_after_frames(self, fps: float, dt_s: float) -> float:
        """A track unseen for more video frames than this restarts its forecaster state (and
        its ground-plane filter): max_gap_steps model steps, with a tolerance for rounding."""
        return self.max_gap_steps * fps * dt_s + 1e-9

    def __post_init__(self) -> None:
        check_fields(
            self,
            checkpoint=non_empty,
            k=between(0, MAX_K),
            max_gap_steps=between(1),
            drop_after_s=positive(),
            ground_noise_px=between(0, 1000),
            device=one_of("detector", *DEVICES[1:]),
            calibration=one_of("online", "fixed"),
        )


@dataclass
class PipelineConfig:
    """Everything `predict` runs with; configs/predict.yaml and --set override these defaults."""

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: str = "bytetrack"  # bytetrack | botsort | a tracker yaml path
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    events: EventsConfig = field(default_factory=EventsConfig)  # zones, lines, near misses
    fps: float | None = None  # overrides the container's frame rate

    def __post_init__(self) -> None:
        check_fields(self, tracker=non_empty, fps=optional(between(0, MAX_FPS, low_open=True)))


def load_model(checkpoint: str, ground_plane: bool | None = None):
    """The forecaster from a checkpoint; a missing default gets a hint, one without
    calibration a warning. ground_plane (True: it will forecast in metres, False: in pixels)
    checks a camera-specific model's units first, so a refusal is the one line printed."""
    from .checkpoint import load_forecaster

    path = resolve_data_path(checkpoint)
    if not path.is_file():
        raise InputError(
            path,
            "forecaster checkpoint not found; pass one with --checkpoint "
            "(e.g. best.pt from `trajpred train`)",
        )
    model = load_forecaster(path)
    if ground_plane is not None:
        check_scene_units(model, ground_plane, checkpoint)
    warn_if_uncalibrated(model, path)
    return model


def check_scene_units(model, ground_plane: bool, source) -> None:
    """Refuse a camera-specific model (`trajpred adapt`) fed positions in other units than it
    was adapted in: its scene input and prior read positions against scene_bounds in those
    units (pixels, or metres with a homography). A model without them (scene_units "") serves
    both. Every forecaster of a video (LiveForecaster) and `adapt` check here."""
    units = model.cfg.scene_units
    if units == ("px" if ground_plane else "m"):
        raise InputError(
            source,
            "a model adapted to this camera in pixels (without a homography) cannot forecast on "
            "the ground plane in metres: drop the homography, or adapt it with one"
            if units == "px"
            else "a model adapted to this camera on the ground plane (with a homography) cannot "
            "forecast in pixels: give it that homography (--homography), or adapt it without one",
        )


@dataclass
class _TrackState:
    last_frame: int  # 0-based index of the frame the track was last seen on
    xy: np.ndarray  # (2,) bottom centre there: pixels, or metres on the ground plane
    wh: np.ndarray  # (2,) box width, height there, pixels
    next_k: int  # index of the next grid time to sample


class LiveForecaster:
    """Per-track sampling at dt_s, TrackStreams updates and per-frame forecasts (see module doc).

    homography: 3x3 image -> ground plane (metres), or None to forecast in pixels. zones: what
    to watch (trajpred/zones.py, read with the same homography), events: how; with zones every
    FrameForecasts carries its `events`."""

    def __init__(
        self,
        model,
        fps: float,
        cfg: ForecastConfig,
        device: str = "cpu",
        homography: np.ndarray | None = None,
        zones: ZoneSet | None = None,
        events: EventsConfig | None = None,
    ):
        from .forecast import TrackStreams

        check_scene_units(model, homography is not None, cfg.checkpoint)
        self.cfg, self.fps, self.homography = cfg, fps, homography
        self.ground = (
            None if homography is None else GroundPlane(homography, cfg.homography or "homography")
        )
        self.filter = (
            GroundFilter(self.ground, cfg.ground_noise_px)
            if self.ground is not None and cfg.ground_noise_px > 0
            else None
        )
        self.dt_s, self.pred_len = model.cfg.dt_s, model.cfg.pred_len
        self.frames_per_step = fps * self.dt_s
        self.streams = TrackStreams(model, device, samples=cfg.k > 0)
        self.state: dict[int, _TrackState] = {}
        self.calibration = calibration_for(model)
        self.radius: Calibration | OnlineCalibration = self.calibration
        self.outcomes = None
        events = events or EventsConfig()
        self.shape = ErrorShape(events.cross_ratio) if zones is not None else None
        if cfg.calibration == "online":
            self.radius = OnlineCalibration(self.calibration)
            self.outcomes = ForecastOutcomes(self.radius, self.pred_len, shape=self.shape)
        # id -> (offsets (P, 2), the top mode's sigma (P,), samples or None)
        self.cache: dict[int, tuple] = {}
        self.n_observed: dict[int, int] = {}  # samples per track id, over the whole video
        self.watch = None if zones is None else EventWatch(zones, events, self.dt_s, self.pred_len)
        self.seconds = 0.0  # time spent in observe + forecast

    def _restart(self, tid: int) -> None:
        self.streams.drop([tid])
        self.cache.pop(tid, None)
        if self.outcomes is not None:
            self.outcomes.forget(tid)
        if self.filter is not None:
            self.filter.drop(tid)

    def _restart_gaps(self, i: int, tracks: TrackedBoxes) -> None:
        """Restart the tracks of frame index i unseen for longer than max_gap_steps."""
        limit = self.cfg.restart_after_frames(self.fps, self.dt_s)
        for tid in tracks.track_id.tolist():
            s = self.state.get(tid)
            if s is not None and i - s.last_frame > limit:
                self._restart(tid)
                del self.state[tid]

    def _samples(self, i: int, tracks: TrackedBoxes, positions: np.ndarray) -> dict[int, list]:
        """Grid samples due at frame index i: {k: [(track id, xy, wh), ...]}; positions (N, 2)
        are the tracks' bottom centres in the forecaster's units."""
        due: dict[int, list] = {}
        eps = 1e-9
        for tid, xy, wh in zip(
            tracks.track_id.tolist(), positions, tracks.box_xywh[:, 2:], strict=False
        ):
            s = self.state.get(tid)
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
        self._restart_gaps(i, tracks)
        positions = tracks.xy
        if self.ground is not None:
            positions = self.ground.to_ground(tracks.xy, frame_id, tracks.track_id)
            if self.filter is not None:
                positions = self.filter.update(i / self.fps, tracks.track_id, tracks.xy, positions)
        if self.watch is not None:  # the truth of earlier events, for their online calibration
            self.watch.observe(i / self.fps, tracks.track_id, positions)
        observed: set[int] = set()
        class_of = dict(zip(tracks.track_id.tolist(), tracks.class_id.tolist(), strict=True))
        for k, rows in sorted(self._samples(i, tracks, positions).items()):
            ids = [r[0] for r in rows]
            xy = np.array([r[1] for r in rows])
            if self.outcomes is not None:  # the truth of earlier forecasts of these tracks
                self.outcomes.arrive(ids, np.full(len(ids), k), xy)
            # Box sizes set the pixels-per-metre scale; on the ground plane it stays 1, and a
            # model with box features reads zeros there, as it does for ETH/UCY's metres.
            boxes = None if self.ground is not None else np.array([r[2] for r in rows])
            self.streams.observe(
                ids,
                xy,
                boxes,
                class_id=np.array([class_of[t] for t in ids]),  # camera models may read it
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
            if self.outcomes is not None:  # made at each track's latest sample
                made_at = np.array([self.state[t].next_k - 1 for t in fresh])
                self.outcomes.made(fresh, made_at, f.mean, f.sigma)
        result = self._assemble(frame_id, tracks, positions)
        self.seconds += time.perf_counter() - start
        return result

    def _assemble(
        self, frame_id: int, tracks: TrackedBoxes, positions: np.ndarray
    ) -> FrameForecasts:
        """Cached offsets added to each track's current position (the shift to this frame), in
        the forecaster's units; on the ground plane then mapped back into the image."""
        steps = np.arange(1, self.pred_len + 1)
        target = frame_id + np.rint(steps * self.frames_per_step).astype(np.int64)
        rows = [j for j, t in enumerate(tracks.track_id.tolist()) if t in self.cache]
        ids = tracks.track_id[rows]
        here = positions[rows].reshape(len(ids), 2)  # (M, 2)
        cached = [self.cache[int(t)] for t in ids]
        xy = np.array([c[0] for c in cached]).reshape(len(ids), self.pred_len, 2) + here[:, None]
        sigma = np.array([c[1] for c in cached]).reshape(len(ids), self.pred_len)
        r50, r90 = self.radius.radii(sigma)
        samples = None
        if self.cfg.k:
            samples = (
                np.array([c[2] for c in cached]).reshape(len(ids), self.cfg.k, self.pred_len, 2)
                + here[:, None, None]
            )
        events = None
        if self.watch is not None:
            ratio = None if self.shape is None else self.shape.ratio
            events = self.watch.update(ids, here, xy, r50, r90, ratio, (frame_id - 1) / self.fps)
        if self.ground is None:
            return FrameForecasts(ids, xy, r50, r90, target, samples, events=events)
        world = xy
        xy, valid = self.ground.to_image(world, here)
        # radii (metres, circles) -> pixels with the local scale at each predicted point; steps
        # held at the last visible one keep that step's radii too.
        ppm = self.ground.pixels_per_metre(world)
        r50_px, r90_px = (_hold_invalid(r * ppm, valid) for r in (r50, r90))
        world_samples = samples
        if samples is not None:
            samples = self.ground.to_image(samples, here)[0]
        return FrameForecasts(
            ids, xy, r50_px, r90_px, target, samples, world, r50, r90, world_samples, events
        )


def _hold_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """values (M, P) with each invalid step replaced by the last valid one before it (0 when
    none)."""
    last = np.zeros(len(values))
    held = values.copy()
    for s in range(values.shape[1]):
        last = np.where(valid[:, s], values[:, s], last)
        held[:, s] = last
    return held


class Pipeline:
    """Detector, tracker and forecaster, loaded once and run over one or more videos.

    With forecast=False (`trajpred track`) no forecaster is loaded and every FrameResult's
    forecasts are empty.
    """

    def __init__(self, config: PipelineConfig | None = None, forecast: bool = True):
        cfg = config or PipelineConfig()
        self.tracker = Tracker(cfg.tracker)
        # Forecasting uses it to work in metres; tracking alone to export world positions.
        self.homography = (
            None if cfg.forecast.homography is None else read_homography(cfg.forecast.homography)
        )
        # a zones file is read, and a model for the wrong units refused, before the detector loads
        self.zones = (
            None
            if cfg.events.zones is None or not forecast
            else read_zones(resolve_data_path(cfg.events.zones), self.homography)
        )
        self.model = (
            load_model(cfg.forecast.checkpoint, self.homography is not None) if forecast else None
        )
        self.detector = Detector(cfg.detector, low_conf=self.tracker.low_conf)
        self.forecast_device = (
            resolve_device(cfg.detector.device)
            if cfg.forecast.device == "detector"
            else resolve_device(cfg.forecast.device, "forecast.device")
        )
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
                self.model,
                reader.info.fps,
                self.config.forecast,
                self.forecast_device,
                self.homography,
                self.zones,
                self.config.events,
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
        """FrameResults of every video of SOURCE (file, folder, glob, webcam index, URL), in
        order."""
        videos, _ = expand_source(source)
        for video in videos:
            with self.open(video) as reader:
                yield from self.process(reader)
