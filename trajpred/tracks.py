"""Whole track files in memory: `Tracks`, one row per (frame, track) observation.

What the track-file readers and writers exchange (formats.py), what training and evaluation
cut into windows (data.py, windows.py), and how ground truth is held (the synthetic world, the
demo's scores). The live video path does not build it: the pipeline passes one frame's
`TrackedBoxes` (tracking.py) at a time and writes its rows as it goes (predict_files.py), so a video
is never held in memory; what `trajpred track` writes reads back as a `Tracks`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

UNITS = ("m", "px")


@dataclass(init=False)
class Tracks:
    """Observations of many tracks, stored column-wise, one row per (frame_id, track_id).

    frame_id: (N,) int64. As written in the source: 1-based video frames for MOT and video
        tracks, the file's own frame numbers for ETH/UCY (10 units per 0.4 s step).
    track_id: (N,) int64, unique within one source (file or video), not across sources.
    xy: (N, 2) float64, the object's position: metres on the ground plane when units == "m",
        pixels when units == "px" (then the bottom centre of the box, where feet touch the ground).
    box_xywh: (N, 4) float64 or None: left, top, width, height in pixels; None when the source
        has no boxes (ETH/UCY). Rows without a box hold NaN.
    class_id: (N,) int64, detector class (-1 unknown).
    conf: (N,) float64 confidence in [0, 1] (1 for ground truth).
    units: "m" or "px".
    Constructed with class_id or conf None (unknown: -1; certain: 1), they hold arrays.
    """

    frame_id: np.ndarray
    track_id: np.ndarray
    xy: np.ndarray
    box_xywh: np.ndarray | None
    class_id: np.ndarray
    conf: np.ndarray
    units: str
    source: str = field(default="", compare=False)

    def __init__(
        self,
        frame_id: ArrayLike,
        track_id: ArrayLike,
        xy: ArrayLike,
        box_xywh: ArrayLike | None = None,
        class_id: ArrayLike | None = None,
        conf: ArrayLike | None = None,
        units: str = "m",
        source: str = "",
    ) -> None:
        self.frame_id = np.asarray(frame_id, dtype=np.int64).reshape(-1)
        self.track_id = np.asarray(track_id, dtype=np.int64).reshape(-1)
        n = len(self.frame_id)
        self.xy = np.asarray(xy, dtype=np.float64).reshape(n, 2)
        self.box_xywh = (
            None if box_xywh is None else np.asarray(box_xywh, dtype=np.float64).reshape(n, 4)
        )
        self.class_id = (
            np.full(n, -1, np.int64)
            if class_id is None
            else np.asarray(class_id, dtype=np.int64).reshape(n)
        )
        self.conf = (
            np.ones(n, np.float64)
            if conf is None
            else np.asarray(conf, dtype=np.float64).reshape(n)
        )
        self.units, self.source = units, source
        if len(self.track_id) != n:
            raise ValueError(f"track_id has {len(self.track_id)} rows, frame_id has {n}")
        if self.units not in UNITS:
            raise ValueError(f"units must be one of {UNITS}, got {self.units!r}")
        if not np.isfinite(self.xy).all():
            raise ValueError("xy holds NaN or infinite values")

    def __len__(self) -> int:
        return len(self.frame_id)

    @classmethod
    def empty(cls, units: str = "m", with_boxes: bool = False, source: str = "") -> Tracks:
        return cls(
            np.zeros(0),
            np.zeros(0),
            np.zeros((0, 2)),
            np.zeros((0, 4)) if with_boxes else None,
            units=units,
            source=source,
        )

    def select(self, rows: np.ndarray) -> Tracks:
        """A new Tracks holding the given rows (boolean mask or indices)."""
        return Tracks(
            self.frame_id[rows],
            self.track_id[rows],
            self.xy[rows],
            None if self.box_xywh is None else self.box_xywh[rows],
            self.class_id[rows],
            self.conf[rows],
            self.units,
            self.source,
        )

    def sorted(self) -> Tracks:
        """Rows ordered by frame, then track id (the order every writer uses)."""
        return self.select(np.lexsort((self.track_id, self.frame_id)))

    def track_ids(self) -> np.ndarray:
        return np.unique(self.track_id)

    def frames(self) -> np.ndarray:
        return np.unique(self.frame_id)

    def by_track(self) -> Iterator[tuple[int, Tracks]]:
        """Yield (track_id, rows of that track ordered by frame)."""
        order = np.lexsort((self.frame_id, self.track_id))
        ids = self.track_id[order]
        if len(ids) == 0:
            return
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ends = np.r_[starts[1:], len(ids)]
        for s, e in zip(starts, ends, strict=False):
            yield int(ids[s]), self.select(order[s:e])

    def duplicate_rows(self) -> np.ndarray:
        """Indices of rows whose (frame_id, track_id) pair already appeared earlier."""
        keys = np.stack([self.frame_id, self.track_id], axis=1)
        _, first = np.unique(keys, axis=0, return_index=True)
        dup = np.ones(len(self), bool)
        dup[first] = False
        return np.flatnonzero(dup)

    @staticmethod
    def concat(parts: list[Tracks]) -> Tracks:
        if not parts:
            return Tracks.empty()
        units = {p.units for p in parts}
        if len(units) > 1:
            raise ValueError(f"cannot mix units {sorted(units)}")
        with_boxes = all(p.box_xywh is not None for p in parts)
        return Tracks(
            np.concatenate([p.frame_id for p in parts]),
            np.concatenate([p.track_id for p in parts]),
            np.concatenate([p.xy for p in parts]),
            np.concatenate([p.box_xywh for p in parts]) if with_boxes else None,
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.conf for p in parts]),
            units.pop(),
            parts[0].source,
        )


def bottom_centre(box_xywh: np.ndarray) -> np.ndarray:
    """(N, 4) left-top-width-height boxes -> (N, 2) bottom-centre points, in pixels."""
    box_xywh = np.asarray(box_xywh, dtype=np.float64)
    return np.stack([box_xywh[:, 0] + box_xywh[:, 2] / 2, box_xywh[:, 1] + box_xywh[:, 3]], axis=1)
