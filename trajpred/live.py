"""Forecasts inside your own tracking loop: `trajpred.Forecaster`.

    from ultralytics import YOLO
    from trajpred import Forecaster

    forecaster = Forecaster(fps=25)
    for result in YOLO("yolo11n.pt").track("clip.mp4", stream=True, persist=True):
        f = forecaster.update(result)   # FrameForecasts: f.track_id, f.xy, f.r50, f.r90, ...

`Forecaster` is an adapter: it turns what a tracking loop holds (an ultralytics `Results`, a
`supervision.Detections` with tracker ids, or plain arrays) into `TrackedBoxes` and feeds them to
the `LiveForecaster` that `trajpred predict` runs, so the same tracks get the same forecasts.
It is not `trajpred.model.Forecaster`, the nn.Module that both run.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from .checks import ArgumentError, between, check_arguments, choice, path_like, shown, whole
from .errors import TrajpredError
from .events import EventsConfig
from .formats import _MAX_ID, MAX_COORD
from .geometry import check_homography
from .pipeline import MAX_K, ForecastConfig, LiveForecaster, load_model, read_homography
from .results import FrameForecasts
from .tracking import TrackedBoxes, tracked_from_ultralytics
from .video import MAX_FPS
from .zones import parse_zones, read_zones

DEFAULT_CHECKPOINT = ForecastConfig().checkpoint  # the shipped video model
# Ultralytics' trackers (bytetrack.yaml and botsort.yaml: new_track_thresh) start a track from a
# detection this confident. A tracked frame can hold boxes without ids only when the tracker
# confirmed nothing, and then, once a stream is under way, only less confident ones.
NEW_TRACK_CONF = 0.25
# Frames in a row with confident boxes and no id, before any id was seen, that mean the results
# were not tracked: a new track is confirmed on its second frame, so one such frame is normal.
UNTRACKED_FRAMES = 3
# The rules for Forecaster's arguments: those of the settings `trajpred predict` takes them from
# (--fps, forecast.k, forecast.calibration, --device), and for update()'s values those of track
# files (trajpred/formats.py): ids and frames below 2**53, coordinates within +-MAX_COORD.
FORECASTER_RULES = {
    "checkpoint": path_like,
    "fps": between(0, MAX_FPS, low_open=True),
    "k": whole(0, MAX_K),
    "device": choice("cpu", "cuda", "auto"),
    "calibration": choice("online", "fixed"),
}
MAX_ID = _MAX_ID - 1  # the largest track id, class id and frame id
FRAME_RULE = whole(1, MAX_ID)
UNTRACKED_HINT = (
    "detections without track ids: call model.track(source, stream=True, persist=True) "
    "rather than model.predict() or model(), so every box carries a track id"
)


class Forecaster:
    """Forecast every tracked object of a video, one `update()` per frame, in order.

    checkpoint: a forecaster checkpoint (default: the shipped video model, trained on
    pedestrians). fps: the video's frame rate (forecast steps are dt_s apart; frames are
    1-based, frame f at (f - 1) / fps seconds). homography: a 3x3 image -> ground plane matrix,
    or a text file holding one (`trajpred synth` or `trajpred homography` write one): the model
    then forecasts on the ground plane, in metres, as `predict --homography` does, and `xy`
    is that forecast mapped back into the image, `world_xy` the metres. k: sampled
    trajectories per track and frame (`samples`; 0 = none). device: "cpu", "cuda" or "auto"
    for the LSTM. calibration: how the radii r50/r90 are made: "online" (the checkpoint's
    calibration, then each step's recent errors on this video once their truth has arrived,
    as `predict` does) or "fixed" (the checkpoint's alone). zones: zones, lines and a near-miss
    distance to watch, as a zones file's path or the mapping it holds (trajpred/zones.py; with a
    homography, metres are allowed): every FrameForecasts then carries `events` (FrameEvents:
    who will enter, cross or come close, how likely, when), as `predict --zones` writes them
    to events.csv; events: their settings (EventsConfig: min_probability, alert, ...).

    Unusable files raise `TrajpredError`; bad values and bad `update()` input raise ValueError
    (an `ArgumentError`, also a TrajpredError, naming the argument) by the rules `predict`
    applies to the same settings and track files to their values (FORECASTER_RULES,
    `update()`'s docstring). A forecast is never NaN or infinite.
    Not to be confused with `trajpred.model.Forecaster`, the nn.Module this runs.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike = DEFAULT_CHECKPOINT,
        *,
        fps: float,
        homography: str | os.PathLike | np.ndarray | None = None,
        k: int = 0,
        device: str = "cpu",
        calibration: str = "online",
        zones: str | os.PathLike | dict | None = None,
        events: EventsConfig | None = None,
    ):
        from .detect import resolve_device

        check_arguments(
            FORECASTER_RULES,
            dict(checkpoint=checkpoint, fps=fps, k=k, device=device, calibration=calibration),
        )
        self._cfg = ForecastConfig(
            checkpoint=os.fspath(checkpoint), k=int(k), calibration=calibration
        )
        if homography is None:
            self._homography = None
        elif isinstance(homography, str | os.PathLike):
            self._homography = read_homography(homography)
        else:  # the rules read_homography applies to a file, as a ValueError
            self._homography = check_homography(homography)
        if zones is None:
            self._zones = None
        elif isinstance(zones, dict):
            self._zones = parse_zones(zones, "zones", self._homography)
        elif isinstance(zones, str | os.PathLike):
            self._zones = read_zones(zones, self._homography)
        else:
            raise ArgumentError("zones", f"must be a zones file or a mapping, got {shown(zones)}")
        if events is not None and not isinstance(events, EventsConfig):
            raise ArgumentError("events", f"must be an EventsConfig, got {shown(events)}")
        self._events = events
        self._model = load_model(self._cfg.checkpoint)
        self._device = resolve_device(device, "device")
        self._fps = float(fps)
        self.reset()

    @property
    def fps(self) -> float:
        """The video's frame rate, frames per second."""
        return self._fps

    @property
    def dt_s(self) -> float:
        """Seconds between two forecast steps (the model's step, 0.4 s for the shipped models)."""
        return self._live.dt_s

    @property
    def pred_len(self) -> int:
        """Forecast steps per track: the forecast reaches pred_len * dt_s seconds ahead."""
        return self._live.pred_len

    @property
    def frame_id(self) -> int:
        """1-based id of the last frame given to `update()` (0 before the first)."""
        return self._frame_id

    def reset(self) -> None:
        """Forget every track, e.g. before the next video; frames count from 1 again."""
        self._live = LiveForecaster(
            self._model,
            self._fps,
            self._cfg,
            self._device,
            self._homography,
            self._zones,
            self._events,
        )
        self._frame_id = 0
        self._seen_ids = False
        self._untracked_run = 0  # frames in a row that look untracked (see UNTRACKED_FRAMES)

    def update(
        self, tracks, xyxy=None, classes=None, *, frame_id: int | None = None
    ) -> FrameForecasts:
        """Advance by one frame; returns the `FrameForecasts` made on it.

        tracks: one frame's tracks, as an ultralytics `Results` from `YOLO.track` (reads
        `boxes.id`, `boxes.xyxy`, `boxes.conf`, `boxes.cls`, `orig_shape`; a frame without boxes
        or with `boxes.id is None` once tracking is under way gives an empty result), a
        `supervision.Detections` with `tracker_id`, or (N,) integer track ids with `xyxy`
        (N, 4) boxes in pixels (left, top, right, bottom) and optional `classes` (N,).
        frame_id: this frame's 1-based id; by default the previous one + 1. Ids must grow; a
        gap skips frames (tracks are interpolated over gaps up to one model step).

        Ids are integers in [0, 2**53 - 1], as are frame ids (from 1) and classes (from -1);
        box values lie within +-1e6 pixels, as in track files: beyond, float32 model inputs lose
        their precision and the forecasts would overflow.

        Only tracks with at least 2 samples (one model step, dt_s, after they appear) get a
        forecast, so the result lists fewer tracks than were given.
        """
        if xyxy is not None:
            boxes = self._from_arrays(tracks, xyxy, classes)
        elif hasattr(tracks, "boxes") and hasattr(tracks, "orig_shape"):
            boxes = self._from_results(tracks)
        elif hasattr(tracks, "tracker_id") and hasattr(tracks, "xyxy"):
            boxes = self._from_supervision(tracks)
        else:
            raise ValueError(
                "update() takes an ultralytics Results, a supervision.Detections with "
                f"tracker_id, or (track_ids, xyxy) arrays; got {type(tracks).__name__}"
            )
        _check_values(boxes)
        frame_id = self._next_frame_id(frame_id)
        forecasts = self._live.update(frame_id, boxes)
        _check_finite(forecasts, frame_id)
        self._frame_id = frame_id
        return forecasts

    def _next_frame_id(self, frame_id: int | None) -> int:
        if frame_id is None:
            return self._frame_id + 1
        check_arguments({"frame_id": FRAME_RULE}, {"frame_id": frame_id})
        if frame_id <= self._frame_id:
            raise ValueError(
                f"frame {frame_id} given after frame {self._frame_id}: frames must come in "
                "order (call reset() before another video)"
            )
        return int(frame_id)

    def _from_arrays(self, track_ids, xyxy, classes) -> TrackedBoxes:
        ids = np.asarray(track_ids)
        box = _numbers("xyxy", xyxy)
        if ids.ndim != 1:
            raise ArgumentError("track_ids", f"must have shape (N,), got {ids.shape}")
        n = len(ids)
        if box.size == 0 and n == 0:
            box = box.reshape(0, 4)  # update([], []): a frame without tracks
        if box.shape != (n, 4):
            raise ArgumentError(
                "xyxy", f"must have shape ({n}, 4) for {n} track ids, got {box.shape}"
            )
        ids = _integers("track_ids", ids, 0, MAX_ID)
        if not np.isfinite(box).all():
            raise ArgumentError("xyxy", "holds NaN or infinite values")
        if (box[:, 2:] < box[:, :2]).any():
            raise ArgumentError(
                "xyxy", "boxes must be (left, top, right, bottom) with right >= left"
            )
        cls = np.zeros(n, np.int64) if classes is None else np.asarray(classes)
        if cls.shape != (n,):
            raise ArgumentError("classes", f"must have shape ({n},), got {cls.shape}")
        cls = _integers("classes", cls, -1, MAX_ID)
        if len(np.unique(ids)) != n:
            raise ValueError("a track id appears twice on one frame")
        self._seen_ids = True
        wh = box[:, 2:] - box[:, :2]
        # Plain arrays carry no confidence; 1 stands for "tracked" (the forecaster ignores it).
        return TrackedBoxes(ids, np.column_stack([box[:, :2], wh]), np.ones(n), cls).sorted()

    def _from_results(self, result) -> TrackedBoxes:
        boxes = result.boxes
        if boxes is None:
            if getattr(result, "obb", None) is not None:
                raise ValueError("oriented boxes (OBB results) are not supported")
            return TrackedBoxes.empty()
        if len(boxes) and boxes.id is None:
            confident = bool((boxes.conf.cpu().numpy() >= NEW_TRACK_CONF).any())
            self._untracked_run = self._untracked_run + 1 if confident else 0
            if not self._seen_ids and self._untracked_run >= UNTRACKED_FRAMES:
                raise ValueError(UNTRACKED_HINT)
            return TrackedBoxes.empty()
        self._untracked_run = 0
        self._seen_ids = self._seen_ids or len(boxes) > 0
        return tracked_from_ultralytics(result)

    def _from_supervision(self, detections) -> TrackedBoxes:
        xyxy = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)
        if len(xyxy) == 0:
            return TrackedBoxes.empty()
        if detections.tracker_id is None:
            # supervision's trackers return only tracked boxes: none of its frames look like this
            raise ValueError(
                "supervision Detections without tracker_id: pass them through a tracker "
                "(e.g. sv.ByteTrack().update_with_detections) first"
            )
        classes = getattr(detections, "class_id", None)
        return self._from_arrays(detections.tracker_id, xyxy, classes)


def _numbers(name: str, values) -> np.ndarray:
    """An array of numbers (not str, not bool) as float64; NaN and inf pass, the caller says
    what they mean."""
    a = np.asarray(values)
    if a.dtype.kind in "iuf":
        return a.astype(np.float64)
    items = a.ravel().tolist()
    for v in items:
        if not _is_real(v):
            raise ArgumentError(name, f"must hold numbers, got {shown(v)}")
    try:
        return np.array(items, np.float64).reshape(a.shape)
    except OverflowError:  # a Python int beyond float64
        big = next(v for v in items if abs(v) > MAX_COORD)
        raise ArgumentError(
            name, f"values must lie within +-{MAX_COORD:g}, got {shown(big)}"
        ) from None


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _integers(name: str, values: np.ndarray, low: int, high: int) -> np.ndarray:
    """(N,) whole numbers in [low, high] (ints, or floats holding them) as int64; else
    ArgumentError quoting the first bad value as given (a str, True, 2**70, 1.5)."""
    if values.dtype.kind in "iuf":
        with np.errstate(invalid="ignore"):
            bad = (values < low) | (values > high)
            if values.dtype.kind == "f":
                bad |= ~np.isfinite(values) | (values != np.round(values))
        items = values.tolist()
    else:  # str, bool or object (e.g. Python ints beyond int64, None): one at a time
        items = values.tolist()
        bad = np.array(
            [not (_is_real(v) and float(v).is_integer() and low <= v <= high) for v in items],
            bool,
        )
    if bad.any():
        first = items[int(np.argmax(bad))]
        raise ArgumentError(name, f"must hold integers in [{low}, {high}], got {shown(first)}")
    return values.astype(np.int64) if values.dtype.kind in "iuf" else np.array(items, np.int64)


def _check_values(boxes: TrackedBoxes) -> None:
    """update()'s input as track files must hold it (trajpred/formats.py): ids below 2**53 and
    box values within +-MAX_COORD. Beyond, float32 model inputs lose their precision and
    distances overflow: the forecasts would be NaN."""
    ids, xywh = boxes.track_id, boxes.box_xywh
    box = np.column_stack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])  # xyxy, as given
    if ((ids < 0) | (ids > MAX_ID)).any():
        bad = int(ids[(ids < 0) | (ids > MAX_ID)][0])
        raise ArgumentError("track_ids", f"must hold integers in [0, {MAX_ID}], got {bad}")
    absurd = ~(np.abs(box) <= MAX_COORD)
    if absurd.any():
        value = float(box[absurd][0])
        raise ArgumentError(
            "xyxy",
            f"values must lie within +-{MAX_COORD:g} pixels (as in track files), got {value!r}",
        )


def _check_finite(f: FrameForecasts, frame_id: int) -> None:
    """A forecast with a NaN or an infinity is a bug somewhere; it is never handed out."""
    for name in ("xy", "r50", "r90", "samples", "world_xy", "world_r50", "world_r90"):
        value = getattr(f, name)
        if value is not None and not np.isfinite(value).all():
            rows = ~np.isfinite(value.reshape(len(value), -1)).all(1)
            raise TrajpredError(
                f"frame {frame_id}: the forecast ({name}) of track {int(f.track_id[rows][0])} "
                "is not finite"
            )
