"""Event probabilities recalibrated by the outcomes already seen on the same video.

The sample paths (trajpred/events.py) hold the calibrated coverage of each forecast point, but
an event depends on the whole path, and how forecast errors of a scene bend paths in and out of
a zone is the scene's own: on the benchmark's scenes the raw probabilities were too timid on
some (a 0.5 came true 60-70 % of the time) and too bold on others. Live, every event's outcome
is known one horizon later (the track's own positions, as for the radii in
trajpred/calibration.py OnlineCalibration), so each kind of event (zone, line, near miss) gets a
monotone map fitted to this video's recent outcomes: Platt scaling, logit(p') = a logit(p) + b,
by maximum likelihood on the latest WINDOW outcomes, once there are MIN_OUTCOMES of them with
both answers. Only past outcomes are used: a probability never depends on its own outcome.

Outcomes are recorded once per model step (dt_s) for every event row that was computed (its
raw probability > 0), and decided on the track's observed path, resampled every RESOLUTION_S:
the event happened if the path enters the zone, crosses the line that way, or comes within the
near-miss distance of the other track's path within the horizon; it did not if the track (and
the other) were seen to the end of the horizon without it; otherwise (lost before) it is not
recorded.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque

import numpy as np

from .crossings import approach_times, crossing_times
from .results import FrameEvents

WINDOW = 2000  # latest outcomes per kind of event the map is fitted to
MIN_OUTCOMES = 100  # outcomes (with at least MIN_EACH of each answer) before it replaces identity
MIN_EACH = 10
REFIT_EVERY = 50  # new outcomes between refits
RESOLUTION_S = 0.1  # the observed paths are resampled this often
EPS = 1e-3  # probabilities are clipped to [EPS, 1 - EPS] before the logit
RIDGE = 20.0  # weight, in outcomes, of the prior that the raw probabilities are right


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def fit_platt(p: np.ndarray, y: np.ndarray, iterations: int = 25) -> tuple[float, float]:
    """(a, b) maximising the likelihood of outcomes y under sigmoid(a logit(p) + b), by
    Newton's method with a ridge towards the identity (a = 1, b = 0) worth RIDGE outcomes, so
    that a short clip's few, perhaps separable, outcomes cannot run away with it; a stays in
    [0.2, 5] and b in [-5, 5] (the map keeps the order of the probabilities)."""
    x = logit(p)
    w = np.array([1.0, 0.0])
    ridge = RIDGE
    for _ in range(iterations):
        q = 1 / (1 + np.exp(-np.clip(w[0] * x + w[1], -30, 30)))
        g = np.array([((q - y) * x).sum(), (q - y).sum()]) + ridge * (w - [1.0, 0.0])
        s = q * (1 - q)
        h = np.array([[(s * x * x).sum(), (s * x).sum()], [(s * x).sum(), s.sum()]])
        h += ridge * np.eye(2)
        step = np.linalg.solve(h, g)
        w = w - step
        if np.abs(step).max() < 1e-6:
            break
    return float(np.clip(w[0], 0.2, 5.0)), float(np.clip(w[1], -5.0, 5.0))


class EventCalibration:
    """Online Platt maps per kind of event (see the module doc).

    targets: (kind, name, edges (E, 2, 2)) of the zones and lines; distance: the near-miss
    distance or None; horizon_s: the forecasts' horizon (pred_len * dt_s); dt_s: how often
    outcomes are recorded."""

    def __init__(self, targets, distance: float | None, horizon_s: float, dt_s: float):
        self.edges = {(kind, name): edges for kind, name, edges in targets}
        self.distance, self.horizon_s, self.dt_s = distance, horizon_s, dt_s
        self.history: dict[int, deque] = defaultdict(deque)  # track -> (time, x, y)
        self.pending: deque = deque()  # (time made, key, raw probability)
        self.outcomes: dict[str, deque] = defaultdict(lambda: deque(maxlen=WINDOW))
        self.maps: dict[str, tuple[float, float]] = {}
        self.new: dict[str, int] = defaultdict(int)
        self.next_record = -math.inf

    def observe(self, time_s: float, track_id: np.ndarray, xy: np.ndarray) -> None:
        """Positions (N, 2) of the tracks seen at time_s (in the zones' units), then decide
        the predictions whose horizon has passed."""
        for tid, p in zip(track_id.tolist(), np.asarray(xy, np.float64), strict=True):
            h = self.history[tid]
            h.append((time_s, p[0], p[1]))
        keep = self.horizon_s + 2 * self.dt_s  # what a prediction made a horizon ago needs
        for tid in list(self.history):
            h = self.history[tid]
            while h and h[0][0] < time_s - keep:
                h.popleft()
            if not h:
                del self.history[tid]
        due = []
        while self.pending and self.pending[0][0] + self.horizon_s <= time_s:
            due.append(self.pending.popleft())
        if due:
            self._decide(due)

    def record(self, time_s: float, events: FrameEvents) -> None:
        """The raw probabilities of a frame's event rows, once per dt_s."""
        if time_s < self.next_record - 1e-9 or len(events) == 0:
            return
        self.next_record = time_s + self.dt_s
        for e in range(len(events)):
            self.pending.append((time_s, events.key(e), float(events.probability[e])))

    def apply(self, kind: np.ndarray, p: np.ndarray) -> np.ndarray:
        """p (E, ...) mapped by the map of each row's kind (E,) (unchanged without one)."""
        out = np.array(p, dtype=np.float64, copy=True)
        for k, (a, b) in self.maps.items():
            rows = kind == k
            if rows.any():
                mapped = 1 / (1 + np.exp(-(a * logit(out[rows]) + b)))
                out[rows] = np.where(np.isnan(out[rows]), np.nan, mapped)
        return out

    def _path(self, tid: int, start: float) -> tuple[np.ndarray, bool] | None:
        """The track's positions at start, start + RESOLUTION_S, ... up to the horizon or its
        last sighting, and whether it was seen to the end of the horizon."""
        h = self.history.get(tid)
        if not h:
            return None
        t = np.array([r[0] for r in h])
        x, y = np.array([r[1] for r in h]), np.array([r[2] for r in h])
        end = min(start + self.horizon_s, t[-1])
        if end <= start or t[0] > start + 1e-9:
            return None
        times = np.arange(start, end + 1e-9, RESOLUTION_S)
        path = np.column_stack([np.interp(times, t, x), np.interp(times, t, y)])
        return path, t[-1] >= start + self.horizon_s - 1e-9

    def _decide(self, due: list) -> None:
        for made, (tid, kind, name, direction, other), p in due:
            seen = self._path(tid, made)
            if seen is None or len(seen[0]) < 2:
                continue
            path, complete = seen
            steps = np.arange(len(path) - 1, dtype=np.float64)
            a, b = path[:-1, None], path[1:, None]  # (T, 1, 2)
            if kind == "near_miss":
                other_seen = self._path(other, made)
                if other_seen is None or len(other_seen[0]) < 2 or self.distance is None:
                    continue
                n = min(len(path), len(other_seen[0]))
                rel = path[:n] - other_seen[0][:n]
                times = approach_times(rel[:-1, None], rel[1:, None], steps[: n - 1], self.distance)
                complete = complete and other_seen[1]
                happened = bool(np.isfinite(times).any())
            else:
                neg, pos = crossing_times(a, b, steps, self.edges[(kind, name)])
                when = {"": np.minimum(neg, pos), "in": neg, "out": pos}[direction]
                happened = bool(np.isfinite(when).any())
            if happened or complete:
                self.outcomes[kind].append((p, happened))
                self.new[kind] += 1
                if self.new[kind] >= REFIT_EVERY:
                    self._refit(kind)

    def _refit(self, kind: str) -> None:
        self.new[kind] = 0
        data = np.array(self.outcomes[kind])
        y = data[:, 1]
        if len(data) < MIN_OUTCOMES or y.sum() < MIN_EACH or (1 - y).sum() < MIN_EACH:
            return
        self.maps[kind] = fit_platt(data[:, 0], y)
