"""The per-frame result types that the pipeline produces and the renderer, the output files,
the writer process and the Python API consume: one small module they all depend on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detect import Detections
from .tracking import TrackedBoxes


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
    (M, K, P, 2) the samples there, or None.
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
