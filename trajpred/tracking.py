"""Detections -> tracked boxes: the adapter around ultralytics' multi-object trackers.

`Tracker(name_or_yaml).update(detections, frame)` feeds one frame's `Detections` to an
ultralytics tracker (ByteTrack, BoT-SORT, or any tracker yaml whose tracker does not need the
ultralytics predictor) and returns `TrackedBoxes`: the confirmed tracks seen on that frame.
Track ids start at 1 for every new `Tracker` and after `reset()`, so each video's ids start
fresh. `tracked_from_ultralytics` converts the results of `YOLO.track` the same way, including
frames where ultralytics gives `boxes.id is None` (no confirmed track yet): no tracked boxes.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checks import ConfigError, between, shown
from .config import read_yaml
from .detect import Detections
from .errors import TrajpredError, first_line
from .tracks import bottom_centre

BUILT_IN = ("bytetrack", "botsort")


@dataclass
class TrackedBoxes:
    """The confirmed tracks of one frame.

    track_id: (N,) int64, >= 1, unique within one video. box_xywh: (N, 4) float64 left, top,
    width, height in pixels (the tracker's filtered box). conf: (N,) float64 in [0, 1];
    class_id: (N,) int64.
    """

    track_id: np.ndarray
    box_xywh: np.ndarray
    conf: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        self.track_id = np.asarray(self.track_id, dtype=np.int64).reshape(-1)
        n = len(self.track_id)
        self.box_xywh = np.asarray(self.box_xywh, dtype=np.float64).reshape(n, 4)
        self.conf = np.asarray(self.conf, dtype=np.float64).reshape(n)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(n)
        if len(np.unique(self.track_id)) != n:
            raise ValueError("a track id appears twice on one frame")

    def __len__(self) -> int:
        return len(self.track_id)

    @property
    def xy(self) -> np.ndarray:
        """(N, 2) bottom centre of each box (where feet touch the ground), pixels."""
        return bottom_centre(self.box_xywh)

    @classmethod
    def empty(cls) -> TrackedBoxes:
        return cls(np.zeros(0), np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    def sorted(self) -> TrackedBoxes:
        order = np.argsort(self.track_id, kind="stable")
        return TrackedBoxes(
            self.track_id[order], self.box_xywh[order], self.conf[order], self.class_id[order]
        )


def _from_xyxy_rows(xyxy: np.ndarray, track_id, conf, class_id) -> TrackedBoxes:
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    box = np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]])
    return TrackedBoxes(track_id, box, conf, class_id).sorted()


def tracked_from_ultralytics(result) -> TrackedBoxes:
    """One ultralytics `Results` from `YOLO.track` -> TrackedBoxes; `boxes.id is None` -> empty."""
    boxes = result.boxes
    if boxes is None or boxes.id is None or len(boxes) == 0:
        return TrackedBoxes.empty()
    return _from_xyxy_rows(
        boxes.xyxy.cpu().numpy(),
        boxes.id.cpu().numpy(),
        boxes.conf.cpu().numpy(),
        boxes.cls.cpu().numpy(),
    )


def tracker_yaml(name: str) -> Path:
    """'bytetrack' | 'botsort' | a tracker yaml path -> the yaml file (checked to exist)."""
    if name in BUILT_IN:
        from ultralytics.utils.checks import check_yaml

        return Path(check_yaml(f"{name}.yaml"))
    path = Path(name).expanduser()
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise TrajpredError(
            f"tracker must be {' or '.join(BUILT_IN)} or a tracker .yaml file, got {name!r}"
        )
    if not path.is_file():
        raise TrajpredError(f"tracker config {name} not found")
    return path


# Settings that are fractions (scores, IoU, similarity) in a tracker yaml; the rest are checked
# against the type of the same key in ultralytics' own yaml for that tracker.
_FRACTIONS = (
    "track_high_thresh",
    "track_low_thresh",
    "new_track_thresh",
    "match_thresh",
    "proximity_thresh",
    "appearance_thresh",
)
_RANGES = {**dict.fromkeys(_FRACTIONS, between(0, 1)), "track_buffer": between(0, 100_000)}


def read_tracker_config(path: Path) -> dict:
    """A tracker yaml, checked before any frame: YAML problems, unknown keys (with the nearest
    valid one), values of the wrong type or out of range are one ConfigError line naming the
    key; keys the file leaves out take ultralytics' defaults for that tracker."""
    where = f"tracker config {path}"
    data = read_yaml(path)
    kind = data.get("tracker_type")
    defaults = _builtin_defaults(kind) if isinstance(kind, str) else {}
    for key, value in data.items():
        if defaults and key not in defaults:
            close = difflib.get_close_matches(str(key), list(defaults), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(where, f"unknown key {shown(key)}{hint}", str(key))
        problem = _type_problem(value, defaults.get(key)) or (
            _RANGES[key](value) if key in _RANGES else None
        )
        if problem:
            raise ConfigError(where, f"'{key}' {problem}", str(key))
    return {**defaults, **data}


def _builtin_defaults(kind: str) -> dict:
    """ultralytics' own yaml for tracker_type `kind` ({} if it ships none)."""
    from ultralytics.utils import YAML
    from ultralytics.utils.checks import check_yaml

    try:
        return dict(YAML.load(check_yaml(f"{kind}.yaml")) or {})
    except Exception:  # no such file in this ultralytics version: nothing to compare with
        return {}


def _type_problem(value, default) -> str | None:
    """What is wrong with `value` where ultralytics' default is `default`, or None."""
    if default is None:
        return None
    if isinstance(default, bool):
        ok, wanted = isinstance(value, bool), "true or false"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and (isinstance(value, int) or not isinstance(default, int))
        wanted = type(default).__name__
    else:
        ok, wanted = isinstance(value, type(default)), type(default).__name__
    return None if ok else f"must be {wanted}, got {shown(value)}"


def build_tracker(name: str):
    """The ultralytics tracker object for `name`, configured from its yaml."""
    from ultralytics.trackers.track import TRACKER_MAP
    from ultralytics.utils import IterableSimpleNamespace

    path = tracker_yaml(name)
    cfg = IterableSimpleNamespace(**read_tracker_config(path))
    kind = getattr(cfg, "tracker_type", None)
    cls = TRACKER_MAP.get(str(kind))
    if cls is None:
        raise TrajpredError(
            f"tracker config {path}: tracker_type {shown(kind)} is not one of {sorted(TRACKER_MAP)}"
        )
    if hasattr(cls, "setup_predictor") or hasattr(cls, "compute_frame_extras"):
        raise TrajpredError(
            f"tracker config {path}: {kind} needs ultralytics' own predictor; "
            f"use bytetrack or botsort"
        )
    if getattr(cfg, "with_reid", False) and getattr(cfg, "model", "auto") == "auto":
        # "auto" reads detector features from inside the ultralytics predictor, which this
        # adapter does not run; without them the tracker matches on motion alone.
        cfg.with_reid = False
    cfg.device = "cpu"
    try:
        return cls(args=cfg)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise TrajpredError(f"tracker config {path}: {first_line(e)}") from None


class Tracker:
    """One ultralytics tracker over one video; `reset()` before the next video."""

    def __init__(self, name: str = "bytetrack"):
        self.name = name
        self._tracker = build_tracker(name)
        self.low_conf = float(getattr(self._tracker.args, "track_low_thresh", 0.1))

    def reset(self) -> None:
        """Forget every track; the next ids start again at 1."""
        self._tracker.reset()

    def update(self, detections: Detections, frame_bgr: np.ndarray) -> TrackedBoxes:
        """Advance the tracker by one frame; returns the confirmed tracks seen on this frame."""
        return self.update_with_index(detections, frame_bgr)[0]

    def update_with_index(
        self, detections: Detections, frame_bgr: np.ndarray
    ) -> tuple[TrackedBoxes, np.ndarray]:
        """`update`, plus for each returned track the row of `detections` it was matched to
        ((N,) int64), e.g. to look up per-detection appearance features."""
        from ultralytics.engine.results import Boxes

        box = detections.box_xywh
        data = (
            np.column_stack(
                [box[:, :2], box[:, :2] + box[:, 2:], detections.conf, detections.class_id]
            )
            .astype(np.float32)
            .reshape(-1, 6)
        )
        rows = self._tracker.update(Boxes(data, frame_bgr.shape[:2]), frame_bgr)
        if len(rows) == 0:
            return TrackedBoxes.empty(), np.zeros(0, np.int64)
        rows = np.asarray(rows, dtype=np.float64)  # (N, 8) x1, y1, x2, y2, id, score, cls, idx
        tracks = _from_xyxy_rows(rows[:, :4], rows[:, 4], rows[:, 5].clip(0.0, 1.0), rows[:, 6])
        index = dict(
            zip(
                rows[:, 4].astype(np.int64).tolist(),
                rows[:, 7].astype(np.int64).tolist(),
                strict=False,
            )
        )
        return tracks, np.array([index[t] for t in tracks.track_id.tolist()], np.int64)
