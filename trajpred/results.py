"""The per-frame result types that the pipeline produces and the renderer, the output files,
the writer process and the Python API consume: one small module they all depend on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .detect import Detections
from .tracking import TrackedBoxes


@dataclass
class FrameEvents:
    """Events forecast on one frame (`predict --zones`; see trajpred/events.py), E rows.

    track_id: (E,) int64. kind: (E,) "zone" | "line" | "near_miss". name: (E,) the zone's or
    line's name ("" for near_miss). direction: (E,) "in" | "out" for a line, else "".
    other_track_id: (E,) the other track of a near miss, else -1. probability: (E,) that the
    event happens within the forecast's horizon; p_within: (E, 3) within 1, 2 and 3 s (NaN
    beyond the horizon); t_median_s: (E,) median seconds until it happens, among the forecast
    futures where it does. alert: (E,) True on the first frame this row's probability reached
    the alert level (`events.alert`) for this track and target.
    """

    track_id: np.ndarray
    kind: np.ndarray
    name: np.ndarray
    direction: np.ndarray
    other_track_id: np.ndarray
    probability: np.ndarray
    p_within: np.ndarray
    t_median_s: np.ndarray
    alert: np.ndarray

    def __len__(self) -> int:
        return len(self.track_id)

    def key(self, e: int) -> tuple:
        """Row e's (track, kind, name, direction, other track): what an alert is raised for."""
        return (
            int(self.track_id[e]),
            str(self.kind[e]),
            str(self.name[e]),
            str(self.direction[e]),
            int(self.other_track_id[e]),
        )

    def rows(self, keep: np.ndarray) -> FrameEvents:
        """The rows where keep (E,) bool is True."""
        return FrameEvents(*(getattr(self, f.name)[keep] for f in dataclasses.fields(self)))

    def label(self, e: int) -> str:
        """What row e says in words, as drawn beside its track: 'crossing 78 % in 1.6 s'."""
        what = self.name[e] or "near miss"
        if self.kind[e] == "line":
            what = f"{what} {self.direction[e]}"
        elif self.kind[e] == "near_miss":
            what = f"near miss #{int(self.other_track_id[e])}"
        return f"{what} {100 * self.probability[e]:.0f}% in {self.t_median_s[e]:.1f}s"

    @classmethod
    def empty(cls) -> FrameEvents:
        text = np.zeros(0, dtype=object)
        ids = np.zeros(0, np.int64)
        none = np.zeros(0)
        return cls(ids, text, text, text, ids, none, np.zeros((0, 3)), none, np.zeros(0, bool))


@dataclass
class FrameForecasts:
    """Forecasts made on one frame, for the M tracks of that frame with >= 2 samples.

    track_id: (M,) int64. xy: (M, P, 2) float64 predicted bottom centres in pixels, P = the
    model's pred_len, step s (1-based) at s * dt_s after this frame. r50, r90: (M, P) float64
    radii in pixels of the circles centred on xy that hold 50 % and 90 % of the true positions
    (calibrated on data the model did not train on; see trajpred/calibration.py).
    target_frame: (P,) int64 1-based frame each step predicts. samples: (M, K, P, 2) pixels or
    None. world_xy: (M, P, 2) metres on the ground plane, the forecast as the model made it with
    a homography (xy is its image), or None; world_r50, world_r90: (M, P) the radii there, in
    metres (r50, r90 are their images at each predicted point), or None; world_samples:
    (M, K, P, 2) the samples there, or None. events: the zones, lines and near misses these
    forecasts make likely (FrameEvents), or None without zones.
    """

    track_id: np.ndarray
    xy: np.ndarray
    r50: np.ndarray
    r90: np.ndarray
    target_frame: np.ndarray
    samples: np.ndarray | None = None
    world_xy: np.ndarray | None = None
    world_r50: np.ndarray | None = None
    world_r90: np.ndarray | None = None
    world_samples: np.ndarray | None = None
    events: FrameEvents | None = None

    def __post_init__(self) -> None:
        self.track_id = np.asarray(self.track_id, dtype=np.int64).reshape(-1)
        m, p = len(self.track_id), len(self.target_frame)
        self.xy = np.asarray(self.xy, dtype=np.float64).reshape(m, p, 2)
        self.r50 = np.asarray(self.r50, dtype=np.float64).reshape(m, p)
        self.r90 = np.asarray(self.r90, dtype=np.float64).reshape(m, p)
        self.target_frame = np.asarray(self.target_frame, dtype=np.int64).reshape(p)

    def __len__(self) -> int:
        return len(self.track_id)

    @classmethod
    def empty(cls) -> FrameForecasts:
        none = np.zeros((0, 0))
        return cls(np.zeros(0), np.zeros((0, 0, 2)), none, none, np.zeros(0))


@dataclass
class FrameResult:
    """One processed frame. frame_id: 1-based; time_s = (frame_id - 1) / fps; image: (H, W, 3)
    uint8 BGR frame as read; detections: the boxes >= the detector's conf; tracks: confirmed
    tracks on this frame; forecasts: see FrameForecasts; video: the source's name."""

    frame_id: int
    time_s: float
    image: np.ndarray
    detections: Detections
    tracks: TrackedBoxes
    forecasts: FrameForecasts
    video: str = ""
