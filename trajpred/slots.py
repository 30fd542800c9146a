"""Rows of per-track arrays: each live track id holds one row until it is released, and rows of
released tracks are reused, so per-track state lives in a few batched arrays instead of one
object per track (the forecaster's LSTM state, the forecasts awaiting their truth)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class Slots:
    """Track id -> row. `grow(capacity)` is called to enlarge the owner's arrays to `capacity`
    rows (keeping the old ones): once here with the first capacity, then doubling whenever a
    new id finds no free row."""

    def __init__(self, grow: Callable[[int], None], capacity: int):
        self.row: dict[int, int] = {}
        self.capacity = 0
        self._free: list[int] = []
        self._grow = grow
        self._extend(capacity)

    def _extend(self, capacity: int) -> None:
        self._grow(capacity)
        self._free.extend(range(capacity - 1, self.capacity - 1, -1))  # lowest rows first
        self.capacity = capacity

    def rows(self, track_ids) -> np.ndarray:
        """(N,) rows of the tracks; unknown ids get free ones."""
        ids = [int(t) for t in track_ids]
        for tid in ids:
            if tid not in self.row:
                if not self._free:
                    self._extend(2 * self.capacity)
                self.row[tid] = self._free.pop()
        return np.array([self.row[t] for t in ids], dtype=np.int64)

    def release(self, track_id: int) -> int | None:
        """Free the track's row for reuse; the row it had (None for an unknown id)."""
        row = self.row.pop(int(track_id), None)
        if row is not None:
            self._free.append(row)
        return row
