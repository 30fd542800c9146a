"""How good are the event probabilities? Scores for `trajpred demo --zones` and
scripts/events_benchmark.py.

A case is a (frame, track, target) on frames one model step (dt_s) apart whose outcome is
known: the true future is seen to the end of the horizon (pred_len * dt_s), or the event happens
before it is lost. Zones score only tracks outside the zone and near misses only pairs not
already that close, as events.csv does. Three forecasts of each case's probability are scored:
`model` (what predict writes), `cv` (constant velocity from the last dt_s, with the model's
calibrated radii: the same spread) and `inside_now` (0 for every case: what a zone that sees
only the present, such as supervision's PolygonZone, knows before the entry). Scores: Brier
score and its skill against the base rate, AUROC, a reliability table by decile of predicted
probability and its largest gap (deciles with at least MIN_BIN_CASES cases); for alerts (the
first frame a probability reaches events.alert): precision (the event happens within the
horizon after the alert) and the median lead time (seconds from the alert to the event).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .crossings import approach_times, crossing_times
from .events import EventsConfig, EventWatch
from .results import FrameEvents, FrameForecasts
from .tracking import TrackedBoxes
from .zones import ZoneSet, inside

ARMS = ("model", "cv", "inside_now")
MIN_BIN_CASES = 30


class Futures:
    """Each track's positions by frame, for its true path over the next frames."""

    def __init__(self, frames: list[tuple[int, np.ndarray, np.ndarray]]):
        """frames: (frame id, track ids (N,), positions (N, 2)), in any order."""
        seen: dict[int, list] = defaultdict(list)
        for f, ids, xy in frames:
            for tid, p in zip(np.asarray(ids).tolist(), xy, strict=True):
                seen[tid].append((f, p))
        self.tracks = {}
        for tid, rows in seen.items():
            rows.sort(key=lambda r: r[0])
            self.tracks[tid] = (np.array([f for f, _ in rows]), np.array([p for _, p in rows]))

    def path(self, tid: int, frame: int, horizon: int) -> np.ndarray:
        """(horizon + 1, 2) positions at frames frame..frame + horizon, linear between seen
        frames; NaN past the track's last frame (and for an unknown track)."""
        out = np.full((horizon + 1, 2), np.nan)
        if tid not in self.tracks:
            return out
        f, xy = self.tracks[tid]
        want = np.arange(frame, frame + horizon + 1)
        out[:] = np.column_stack([np.interp(want, f, xy[:, 0]), np.interp(want, f, xy[:, 1])])
        out[(want > f[-1]) | (want < f[0])] = np.nan
        return out


def true_times(paths: np.ndarray, edges=None, distance=None, other=None):
    """Event times in frames (inf: none) along true paths (N, H + 1, 2): the first crossing of
    the edges ((to the negative side, to the positive side), each (N,)), or the first approach
    within `distance` of the `other` paths (N,)."""
    n, h = paths.shape[0], paths.shape[1] - 1
    step = np.tile(np.arange(h, dtype=np.float64), n)
    if edges is not None:
        a, b = paths[:, :-1].reshape(-1, 1, 2), paths[:, 1:].reshape(-1, 1, 2)
        neg, pos = crossing_times(a, b, step, edges)
        return neg.reshape(n, h).min(1), pos.reshape(n, h).min(1)
    rel = paths - other
    a, b = rel[:, :-1].reshape(-1, 1, 2), rel[:, 1:].reshape(-1, 1, 2)
    return approach_times(a, b, step, distance).reshape(n, h).min(1)


def targets_of(zones: ZoneSet) -> list[tuple[str, str, np.ndarray]]:
    """(kind, name, edges (E, 2, 2)) of every zone and line."""
    return [
        ("zone", z.name, np.stack([z.polygon, np.roll(z.polygon, -1, 0)], 1)) for z in zones.zones
    ] + [("line", ln.name, ln.points[None]) for ln in zones.lines]


def auroc(p: np.ndarray, y: np.ndarray) -> float | None:
    """Probability that a random positive case ranks above a random negative one (ties
    count half); None without both."""
    pos, neg = p[y], p[~y]
    if len(pos) == 0 or len(neg) == 0:
        return None
    values = np.concatenate([pos, neg])
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based average rank of each value
    rank_sum = mid_rank[inverse[: len(pos)]].sum()
    return float((rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def score_probabilities(p: np.ndarray, y: np.ndarray) -> dict:
    """Brier score and skill, AUROC and reliability of probabilities p for outcomes y."""
    base = float(y.mean())
    brier = float(np.mean((p - y) ** 2))
    ref = base * (1 - base)
    bins = np.minimum((p * 10).astype(int), 9)
    table, gap = [], 0.0
    for b in range(10):
        rows = bins == b
        if rows.any():
            obs, pred = float(y[rows].mean()), float(p[rows].mean())
            table.append({"bin": b, "cases": int(rows.sum()), "predicted": pred, "observed": obs})
            if rows.sum() >= MIN_BIN_CASES:
                gap = max(gap, abs(obs - pred))
    return {
        "cases": int(len(y)),
        "base_rate": base,
        "brier": brier,
        "brier_skill": 1 - brier / ref if ref > 0 else None,
        "auroc": auroc(p, y),
        "max_decile_gap": gap,
        "reliability": table,
    }


@dataclass
class _Frame:
    """What a scored frame needs once the truth is known."""

    frame: int
    ids: list[int]
    here: np.ndarray
    p: dict[str, dict]  # arm -> {event key: probability}


@dataclass
class _Cases:
    p: dict[str, list] = field(default_factory=lambda: {arm: [] for arm in ARMS})
    y: list[bool] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)

    def add(self, kind: str, p: dict[str, dict], key: tuple, happened: bool) -> None:
        for arm in ARMS[:2]:
            self.p[arm].append(p[arm].get(key, 0.0))
        self.p["inside_now"].append(0.0)
        self.y.append(bool(happened))
        self.kind.append(kind)


class EventTally:
    """Collects a video's event probabilities frame by frame (`add`) and scores them against
    the true futures once they are known (`result`).

    `result(truth, match)`: truth, the true positions (Futures, in the zones' units); by default
    the tracks' own (the tracker's future). match: (frame, track ids) -> the truth's id of each
    track (-1: none) when the truth has other ids (the demo's ground truth), else None."""

    def __init__(
        self,
        zones: ZoneSet,
        cfg: EventsConfig,
        dt_s: float,
        pred_len: int,
        fps: float,
        to_units: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        """to_units: pixels (N, 2) -> the zones' units (metres with a homography)."""
        self.zones, self.fps = zones, fps
        self.to_units = to_units or (lambda xy: xy)
        self.step_frames = fps * dt_s
        self.horizon = int(round(pred_len * self.step_frames))
        self.every = max(1, int(round(self.step_frames)))
        self.cv_watch = EventWatch(zones, cfg, dt_s, pred_len)
        self.history: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
        self.seen: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.frames: list[_Frame] = []
        self.alerts: dict[str, list] = {"model": [], "cv": []}  # (frame, key)
        self.steps = np.arange(1, pred_len + 1)[None, :, None]

    def _at(self, tid: int, frame: float) -> np.ndarray:
        h = self.history[tid]
        f = np.array(sorted(h))
        xy = np.array([h[k] for k in f])
        return np.array([np.interp(frame, f, xy[:, 0]), np.interp(frame, f, xy[:, 1])])

    def add(self, frame: int, tracks: TrackedBoxes, fc: FrameForecasts, cross_ratio) -> None:
        """One frame: its tracks and the forecasts (with events) made on it."""
        xy = self.to_units(tracks.xy) if len(tracks) else tracks.xy
        self.seen.append((frame, tracks.track_id.copy(), xy))
        time_s = (frame - 1) / self.fps
        self.cv_watch.observe(time_s, tracks.track_id, xy)
        for tid, p in zip(tracks.track_id.tolist(), xy, strict=True):
            self.history[tid][frame] = p
        if len(fc) == 0 or fc.events is None:
            return
        ids = fc.track_id.tolist()
        here = np.array([self.history[t][frame] for t in ids])
        back = np.array([self._at(t, frame - self.step_frames) for t in ids])
        cv_mean = here[:, None] + (here - back)[:, None] * self.steps
        r50, r90 = fc.r50, fc.r90
        if fc.world_r50 is not None and fc.world_r90 is not None:  # the zones are in metres
            r50, r90 = fc.world_r50, fc.world_r90
        cv = self.cv_watch.update(fc.track_id, here, cv_mean, r50, r90, cross_ratio, time_s)
        for arm, ev in (("model", fc.events), ("cv", cv)):
            self.alerts[arm] += [(frame, ev.key(e)) for e in np.flatnonzero(ev.alert).tolist()]
        if (frame - 1) % self.every == 0:
            self.frames.append(_Frame(frame, ids, here, {"model": _p(fc.events), "cv": _p(cv)}))

    def result(
        self,
        truth: Futures | None = None,
        match: Callable[[int, list[int]], list[int]] | None = None,
    ) -> dict:
        """{"cases": {kind: {arm: scores}}, "alerts": {arm: precision, lead}} (see module)."""
        truth = truth or Futures(self.seen)
        cases = _Cases()
        targets = targets_of(self.zones)
        for fr in self.frames:
            own = match(fr.frame, fr.ids) if match else fr.ids
            paths = np.stack([truth.path(t, fr.frame, self.horizon) for t in own])
            self._target_cases(cases, targets, fr, paths)
            self._pair_cases(cases, fr, paths)
        y, kinds = np.array(cases.y, bool), np.array(cases.kind)
        out: dict = {"cases": {}, "alerts": {}}
        for kind in ("all", "zone", "line", "near_miss"):
            rows = np.ones(len(y), bool) if kind == "all" else kinds == kind
            if rows.any():
                out["cases"][kind] = {
                    arm: score_probabilities(np.array(cases.p[arm])[rows], y[rows]) for arm in ARMS
                }
        for arm, alerts in self.alerts.items():
            out["alerts"][arm] = self._alert_scores(alerts, truth, match, targets)
        return out

    def _target_cases(self, cases: _Cases, targets, fr: _Frame, paths: np.ndarray) -> None:
        seen_to_end = np.isfinite(paths[:, -1, 0])
        for kind, name, edges in targets:
            neg, pos = true_times(paths, edges)
            outside = (
                ~inside(edges[:, 0], fr.here) if kind == "zone" else np.ones(len(fr.ids), bool)
            )
            ways = (("", np.minimum(neg, pos)),) if kind == "zone" else (("in", neg), ("out", pos))
            for direction, t_true in ways:
                for j, tid in enumerate(fr.ids):
                    happened = np.isfinite(t_true[j])
                    if outside[j] and (happened or seen_to_end[j]):
                        cases.add(kind, fr.p, (tid, kind, name, direction, -1), happened)

    def _pair_cases(self, cases: _Cases, fr: _Frame, paths: np.ndarray) -> None:
        if self.zones.near_miss is None or len(fr.ids) < 2:
            return
        distance = self.zones.near_miss.distance
        seen_to_end = np.isfinite(paths[:, -1, 0])
        i, j = np.triu_indices(len(fr.ids), 1)
        apart = np.linalg.norm(fr.here[i] - fr.here[j], axis=1) > distance
        i, j = i[apart], j[apart]
        if len(i) == 0:
            return
        t_true = true_times(paths[i], distance=distance, other=paths[j])
        known = np.isfinite(t_true) | (seen_to_end[i] & seen_to_end[j])
        for a, b, t, k in zip(i, j, t_true, known, strict=True):
            if k:  # events.csv names a pair by its smaller id first
                lo, hi = sorted((fr.ids[a], fr.ids[b]))
                cases.add("near_miss", fr.p, (lo, "near_miss", "", "", hi), np.isfinite(t))

    def _alert_scores(self, alerts, truth: Futures, match, targets) -> dict:
        """Precision and median lead time of alerts (frame, key) whose outcome is known."""
        edges_of = {(kind, name): edges for kind, name, edges in targets}
        outcomes, leads = [], []
        for f, (tid, kind, name, direction, other) in alerts:
            ids = [tid] if other < 0 else [tid, other]
            a, b = [*(match(f, ids) if match else ids), -1][:2]
            path = truth.path(a, f, self.horizon)[None]
            seen = bool(np.isfinite(path[0, -1, 0]))
            if kind == "near_miss":
                other_path = truth.path(b, f, self.horizon)[None]
                seen = seen and bool(np.isfinite(other_path[0, -1, 0]))
                distance = self.zones.near_miss.distance  # type: ignore[union-attr]
                t = float(true_times(path, distance=distance, other=other_path)[0])
            else:
                neg, pos = true_times(path, edges_of[(kind, name)])
                t = {"": min(neg[0], pos[0]), "in": neg[0], "out": pos[0]}[direction]
            if np.isfinite(t) or seen:
                outcomes.append(bool(np.isfinite(t)))
                if np.isfinite(t):
                    leads.append(t / self.fps)
        return {
            "alerts": len(outcomes),
            "precision": float(np.mean(outcomes)) if outcomes else None,
            "median_lead_s": float(np.median(leads)) if leads else None,
        }


def _p(events: FrameEvents) -> dict:
    return {events.key(e): float(events.probability[e]) for e in range(len(events))}


def auto_zones(xy: np.ndarray, widths: np.ndarray) -> dict:
    """Targets placed by one rule from where tracks are, as a zones mapping (a zones file's
    content): the box holding 96 % of the positions xy (N, 2) is cut into four zones with small
    gaps, 2 x 2 when it is roughly square, else four strips across its long side (a 480 x 60
    px band of floor seen from the side gets zones people walk into, not slivers that the
    bottom edge's jitter crosses); a line across the long side's middle, and one along it when
    the box is roughly square; a near-miss distance of 1.5 median box widths (widths (N,))."""
    lo, hi = np.percentile(xy, 2, axis=0), np.percentile(xy, 98, axis=0)
    size = np.maximum(hi - lo, 1e-6)
    square = 0.5 <= size[0] / size[1] <= 2
    long = int(size[1] > size[0])  # 0: x, 1: y
    nx, ny = (2, 2) if square else ((4, 1) if long == 0 else (1, 4))
    inset = 0.02 * size * (np.array([nx, ny]) > 1)
    zones: list[dict] = []
    for j in range(ny):
        for i in range(nx):
            a = (lo + size * np.array([i / nx, j / ny]) + inset).tolist()
            b = (lo + size * np.array([(i + 1) / nx, (j + 1) / ny]) - inset).tolist()
            a, b = [round(v, 1) for v in a], [round(v, 1) for v in b]
            polygon = [[a[0], a[1]], [b[0], a[1]], [b[0], b[1]], [a[0], b[1]]]
            zones.append({"name": f"zone{len(zones) + 1}", "polygon": polygon})
    mid = (lo + hi) / 2
    vertical = [[mid[0], lo[1]], [mid[0], hi[1]]]
    horizontal = [[lo[0], mid[1]], [hi[0], mid[1]]]
    across, along = (vertical, horizontal) if long == 0 else (horizontal, vertical)
    lines = [{"name": "across", "points": [[round(float(v), 1) for v in p] for p in across]}]
    if square:
        lines.append({"name": "along", "points": [[round(float(v), 1) for v in p] for p in along]})
    return {
        "zones": zones,
        "lines": lines,
        "near_miss": {"distance": round(float(1.5 * np.median(widths)), 1)},
    }


def event_lines(scores: dict, alert: float) -> list[str]:
    """What `trajpred demo --zones` prints of EventTally.result()."""
    every = scores["cases"].get("all")
    if not every:
        return ["events: no event could be scored (no track's future was seen to its end)"]
    m, cv, now = (every[arm] for arm in ARMS)

    def skill(arm: dict) -> str:
        return "-" if arm["brier_skill"] is None else f"{arm['brier_skill']:.2f}"

    counts = ", ".join(
        f"{v['model']['cases']} {k}" for k, v in scores["cases"].items() if k != "all"
    )
    lines = [
        f"events: {m['cases']} cases ({counts}), {100 * m['base_rate']:.0f} % happen; Brier skill "
        f"{skill(m)} (constant velocity {skill(cv)}, inside now {skill(now)}), largest "
        f"reliability gap {m['max_decile_gap']:.2f}"
    ]
    for arm, name in (("model", "alerts"), ("cv", "constant velocity's")):
        a = scores["alerts"][arm]
        if a["alerts"]:
            lead = "-" if a["median_lead_s"] is None else f"{a['median_lead_s']:.1f} s"
            lines.append(
                f"{name} at {alert:g}: {a['alerts']}, {100 * a['precision']:.0f} % came true, "
                f"median lead {lead}"
            )
    return lines
