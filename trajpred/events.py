"""From forecasts to decisions: who will enter a zone, cross a line or come too close, how
likely, and when.

Every forecast carries a calibrated distribution of where its track will be at each step:
circles around the forecast point that hold 50 % (r50) and 90 % (r90) of true positions
(trajpred/calibration.py). EventWatch turns them into trajectory samples and counts:

- the distance from the forecast at step t is Weibull distributed, with its two parameters set
  so that its median is r50[t] and its 90th percentile r90[t] (two quantiles, two parameters:
  the calibrated coverage holds exactly at both levels, heavy tails included);
- a sample keeps one quantile q and one direction for the whole horizon (errors of a forecast
  grow along one path: a walker who turns keeps turning), so sample = forecast[t] + R_t(q) u;
- the samples are a fixed stratified grid of (q, direction) (SAMPLE_LEVELS quantiles x
  `samples / SAMPLE_LEVELS` directions), the same on every frame: the probabilities are
  deterministic, and the same input gives the same events.csv byte for byte.

A sample path starts at the track's current position (time 0) and runs through its points at
t * dt_s, straight between them. Its entry time into a zone is the first time the path crosses
one of the polygon's edges (exact on the straight pieces, also for a corner cut between two
steps); a line is crossed "in" or "out" by the sign of the crossing (trajpred/zones.py); two
tracks come closer than the near-miss distance at the first time their sample paths do, sample
i of one paired with sample PAIRING[i] of the other (independent draws). Probabilities are the
fraction of samples with the event within the horizon (pred_len * dt_s) and within 1, 2 and
3 s; t_median_s the median entry time of those that have it.

Only tracks outside a zone (and pairs not already closer than the distance) are watched: an
event is something that has not happened yet. Tracks and pairs whose whole sample cloud stays
away from a target are skipped before any sampling (the reachable box test), which keeps a
frame of 50 tracks and 5 zones within a couple of milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .checks import between, check_fields, non_empty, one_of, optional, require, whole
from .crossings import approach_times, crossing_times, entry_times
from .event_calibration import EventCalibration
from .results import FrameEvents
from .zones import ZoneSet, inside

SAMPLE_LEVELS = 10  # radius quantiles 0.05, 0.15, ..., 0.95: half within r50, 90 % within r90
WITHIN_S = (1.0, 2.0, 3.0)  # the p_1s, p_2s, p_3s columns
KINDS = ("zone", "line", "near_miss")


@dataclass
class EventsConfig:
    """Zones, lines and near misses watched on every frame (`predict --zones`)."""

    zones: str | None = None  # zones YAML (see trajpred/zones.py); None = no events
    min_probability: float = 0.05  # events.csv keeps rows at least this probable
    alert: float = 0.5  # alerts.csv: the first frame a track's probability reaches this
    samples: int = 40  # trajectories per track drawn from the calibrated distribution
    cross_ratio: float = 0.5  # cross-track / along-track spread of forecast errors, until
    # the video's own errors give it (forecast.calibration online; see trajpred/events.py)
    calibration: str = "online"  # online: each kind of event's probabilities mapped by this
    # video's own outcomes once known (trajpred/event_calibration.py) | none: the samples' own

    def __post_init__(self) -> None:
        check_fields(
            self,
            zones=optional(non_empty),
            min_probability=between(0, 1, low_open=True),
            alert=between(0, 1, low_open=True),
            samples=whole(SAMPLE_LEVELS, 4096),
            cross_ratio=between(0, 1, low_open=True),
            calibration=one_of("online", "none"),
        )
        require(
            self.samples % SAMPLE_LEVELS == 0,
            "samples",
            f"must be a multiple of {SAMPLE_LEVELS}, got {self.samples}",
        )


def sample_grid(samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(quantiles (S,), unit directions (S, 2)): SAMPLE_LEVELS quantile levels at the middle of
    equal-probability strata, each with samples / SAMPLE_LEVELS directions evenly spread and
    turned by the golden angle from one level to the next."""
    per = samples // SAMPLE_LEVELS
    q = np.repeat((np.arange(SAMPLE_LEVELS) + 0.5) / SAMPLE_LEVELS, per)
    level = np.repeat(np.arange(SAMPLE_LEVELS), per)
    angle = 2 * np.pi * np.tile(np.arange(per), SAMPLE_LEVELS) / per + level * 2.399963229728653
    return q, np.stack([np.cos(angle), np.sin(angle)], -1)


def pairing(samples: int) -> np.ndarray:
    """A fixed permutation: sample i of one track meets sample PAIRING[i] of the other, so the
    two draws are independent across the grid's quantiles and directions."""
    return np.random.default_rng(20261206).permutation(samples)


def weibull_radius(r50: np.ndarray, r90: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(..., S, P) radius at quantile q (S,) of the Weibull law whose median is r50 (..., P)
    and 90th percentile r90: F(r) = 1 - exp(-(r / lam) ** k)."""
    r50 = np.maximum(r50, 1e-9)[..., None, :]
    ratio = np.maximum(r90[..., None, :] / r50, 1.0 + 1e-6)
    k = math.log(math.log(10) / math.log(2)) / np.log(ratio)
    level = (-np.log1p(-q) / math.log(2))[:, None]  # (S, 1): (r / r50) ** k
    return r50 * level ** (1.0 / k)


class SampleCloud:
    """The sample paths of M tracks, evaluated only where asked (`points`).

    A sample's distance from the forecast is the grid's quantile of the Weibull radius; its
    direction is the grid's, squeezed across the forecast's heading (the chord from here to
    its last point) by cross_ratio: the angular central Gaussian whose cross-track spread is
    cross_ratio times its along-track spread (a forecast errs more in how far a track gets than
    in where it heads). Tracks whose forecast moves less than its last r50 get round clouds."""

    def __init__(self, here, mean, r50, r90, grid, cross_ratio: float = 1.0):
        self.q, unit = grid
        self.here, self.mean, self.r50, self.r90 = here, mean, np.maximum(r50, 1e-9), r90
        chord = mean[:, -1] - here
        length = np.hypot(chord[:, 0], chord[:, 1])
        # a track forecast to stand still gets a round cloud, its axes any pair
        along = np.where(
            (length > 0)[:, None], chord / np.maximum(length, 1e-300)[:, None], [1.0, 0.0]
        )  # (M, 2)
        across = np.stack([-along[:, 1], along[:, 0]], 1)
        moving = np.minimum(length / self.r50[:, -1], 1.0)  # (M,)
        squeeze = 1 - moving * (1 - cross_ratio)  # 1: round, cross_ratio: moving
        c = unit[None, :, 1] * squeeze[:, None]  # (M, S)
        norm = np.hypot(unit[None, :, 0], c)
        a, c = unit[None, :, 0] / norm, c / norm
        self.direction = a[..., None] * along[:, None] + c[..., None] * across[:, None]  # (M, S, 2)
        self._points: np.ndarray | None = None
        self._row: np.ndarray | None = None

    def points(self, m: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(K, S, 2) the samples of track rows m (K,) at steps t (K,), 0 = now."""
        if self._points is None:
            self.prepare(np.ones((len(self.here), self.mean.shape[1] + 1), bool))
        assert self._points is not None and self._row is not None
        return self._points[self._row[m, t]]

    def prepare(self, needed: np.ndarray) -> None:
        """Make the samples of every (track row, step) that `needed` (M, P + 1) marks at once
        (float32: the probabilities need no more), for `points`."""
        m, t = np.nonzero(needed)
        self._row = np.cumsum(needed).reshape(needed.shape) - 1
        s = np.maximum(t - 1, 0)
        radius = weibull_radius(self.r50[m, s, None], self.r90[m, s, None], self.q)[..., 0]
        radius = np.where((t > 0)[:, None], radius, 0.0).astype(np.float32)
        centre = np.where((t > 0)[:, None], self.mean[m, s], self.here[m]).astype(np.float32)
        direction = self.direction[m].astype(np.float32)  # (N, S, 2)
        self._points = centre[:, None] + radius[..., None] * direction  # (N, S, 2)

    def paths(self) -> np.ndarray:
        """(M, S, P + 1, 2) every sample path, from now to the last step."""
        m, p = len(self.here), self.mean.shape[1]
        steps = np.arange(p + 1)
        rows = np.repeat(np.arange(m), p + 1)
        pts = self.points(rows, np.tile(steps, m))  # (M * (P + 1), S, 2)
        return pts.reshape(m, p + 1, -1, 2).transpose(0, 2, 1, 3)


def sample_paths(here, mean, r50, r90, grid, cross_ratio: float = 1.0) -> np.ndarray:
    """(M, S, P + 1, 2) sample paths from the current positions here (M, 2) through the
    forecasts mean (M, P, 2) with radii r50, r90 (M, P) (see SampleCloud)."""
    return SampleCloud(here, mean, r50, r90, grid, cross_ratio).paths()


def earliest(times: np.ndarray, row: np.ndarray, n: int) -> np.ndarray:
    """(n, S) the earliest of the pieces' times (K, S) of each row; pieces come sorted by row
    (np.nonzero order); rows without pieces get inf."""
    out = np.full((n, times.shape[1]), np.inf)
    if len(row):
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        out[row[starts]] = np.minimum.reduceat(times, starts, axis=0)
    return out


class _Rows:
    """Event rows collected on one frame, in column arrays, before they become FrameEvents."""

    def __init__(self) -> None:
        self.track_id: list[np.ndarray] = []
        self.kind: list[np.ndarray] = []
        self.name: list[np.ndarray] = []
        self.direction: list[np.ndarray] = []
        self.other: list[np.ndarray] = []
        self.times: list[np.ndarray] = []  # (C, S) event times in steps, inf = never

    def add(self, ids, kind: str, name: str, direction: str, other, times: np.ndarray) -> None:
        n = len(times)
        self.track_id.append(np.asarray(ids, np.int64))
        self.kind.append(np.full(n, kind, dtype=object))
        self.name.append(np.full(n, name, dtype=object))
        self.direction.append(np.full(n, direction, dtype=object))
        self.other.append(np.broadcast_to(np.asarray(other, np.int64), (n,)))
        self.times.append(times)


class EventWatch:
    """Event probabilities on every frame, and the alerts (see the module doc).

    zones: a ZoneSet in the units of the forecasts it will get (metres with a homography).
    dt_s: seconds between forecast steps; pred_len: the forecast's steps."""

    def __init__(self, zones: ZoneSet, cfg: EventsConfig, dt_s: float, pred_len: int):
        self.zones, self.cfg, self.dt_s, self.pred_len = zones, cfg, dt_s, pred_len
        self.grid = sample_grid(cfg.samples)
        self.pair = pairing(cfg.samples)
        self.targets: list[tuple[str, str, np.ndarray]] = [
            ("zone", z.name, np.stack([z.polygon, np.roll(z.polygon, -1, 0)], 1))
            for z in zones.zones
        ] + [("line", ln.name, ln.points[None]) for ln in zones.lines]
        # the sample points are float32 (SampleCloud.prepare): so are the edges they meet
        self.edges32 = [e.astype(np.float32) for _, _, e in self.targets]
        self.boxes = np.array(
            [
                [e[..., 0].min(), e[..., 1].min(), e[..., 0].max(), e[..., 1].max()]
                for _, _, e in self.targets
            ]  # fmt: skip
        ).reshape(-1, 4)
        self.alerted: set[tuple] = set()  # (track, kind, name, direction, other) alerted once
        self._time_s: float | None = None  # of the frame being updated
        self.calibration = (
            EventCalibration(
                self.targets,
                None if zones.near_miss is None else zones.near_miss.distance,
                pred_len * dt_s,
                dt_s,
            )
            if cfg.calibration == "online"
            else None
        )

    def observe(self, time_s: float, track_id: np.ndarray, xy: np.ndarray) -> None:
        """Every track seen at time_s (seconds) and where (the zones' units): the outcomes that
        the online calibration learns from. Call it on every frame, before `update`."""
        if self.calibration is not None:
            self.calibration.observe(time_s, track_id, xy)

    def update(
        self,
        track_id: np.ndarray,
        here: np.ndarray,
        mean: np.ndarray,
        r50: np.ndarray,
        r90: np.ndarray,
        cross_ratio: float | None = None,
        time_s: float | None = None,
    ) -> FrameEvents:
        """Events of one frame's forecasts: track_id (M,), current positions here (M, 2),
        forecasts mean (M, P, 2) with radii r50, r90 (M, P), all in the zones' units;
        cross_ratio: the errors' cross-track / along-track spread (default: the config's);
        time_s: the frame's time, for the online calibration (None: probabilities as sampled,
        nothing learnt)."""
        self._time_s = time_s
        rows = _Rows()
        if len(track_id) == 0:
            return self._finish(rows)
        # in id order: the rows, and which track's samples meet which, whatever the input order
        order = np.argsort(track_id, kind="stable")
        track_id, here, mean, r50, r90 = (a[order] for a in (track_id, here, mean, r50, r90))
        centre = np.concatenate([here[:, None], mean], 1)  # (M, P + 1, 2), step 0 = now
        reach = _piece_reach(centre, r50, r90)  # (M, P, 5) boxes around each piece's samples
        pieces = [
            self._zone_pieces(reach, box, kind, edges, here)
            for (kind, _, edges), box in zip(self.targets, self.boxes, strict=True)
        ]
        pair, pair_pieces = self._pair_pieces(centre, reach)
        # the samples every piece needs, at both its ends, made once
        needed = np.zeros((len(track_id), mean.shape[1] + 1), bool)
        for m, t in pieces:
            needed[m, t] = needed[m, t + 1] = True
        k, t = pair_pieces
        for side in (pair[k, 0], pair[k, 1]):
            needed[side, t] = needed[side, t + 1] = True
        if not needed.any():
            return self._finish(rows)
        ratio = self.cfg.cross_ratio if cross_ratio is None else cross_ratio
        cloud = SampleCloud(here, mean, r50, r90, self.grid, ratio)
        cloud.prepare(needed)
        for (kind, name, _), edges, (m, t) in zip(self.targets, self.edges32, pieces, strict=True):
            if len(m) == 0:
                continue
            a, b = cloud.points(m, t), cloud.points(m, t + 1)
            tracks, row = np.unique(m, return_inverse=True)
            ids = track_id[tracks]
            if kind == "zone":  # entering = the first crossing of an edge, either way
                first = earliest(entry_times(a, b, t.astype(np.float32), edges), row, len(tracks))
                rows.add(ids, kind, name, "", -1, first)
            else:  # one row per direction: "in" to the negative side (zones.py)
                neg, pos = crossing_times(a, b, t.astype(np.float32), edges)
                rows.add(ids, kind, name, "in", -1, earliest(neg, row, len(tracks)))
                rows.add(ids, kind, name, "out", -1, earliest(pos, row, len(tracks)))
        k, t = pair_pieces
        if len(k):
            distance = self.zones.near_miss.distance  # type: ignore[union-attr]
            i, j = pair[k, 0], pair[k, 1]
            rel_a = cloud.points(i, t) - cloud.points(j, t)[:, self.pair]  # (K, S, 2)
            rel_b = cloud.points(i, t + 1) - cloud.points(j, t + 1)[:, self.pair]
            times = approach_times(rel_a, rel_b, t, distance)
            pairs, row = np.unique(k, return_inverse=True)
            rows.add(
                track_id[pair[pairs, 0]],
                "near_miss",
                "",
                "",
                track_id[pair[pairs, 1]],
                earliest(times, row, len(pairs)),
            )
        return self._finish(rows)

    @staticmethod
    def _zone_pieces(reach, box, kind: str, edges, here) -> tuple[np.ndarray, np.ndarray]:
        """(track rows, piece steps) of the pieces whose samples can reach the target's box;
        for a zone only tracks outside it now."""
        near = _overlaps(reach, box)  # (M, P)
        if kind == "zone":
            close = near.any(1)  # only tracks that can reach it need the inside test
            near[close] &= ~inside(edges[:, 0], here[close])[:, None]
        m, t = np.nonzero(near)
        return m, t

    def _pair_pieces(self, centre: np.ndarray, reach: np.ndarray):
        """(pairs (C, 2) of track rows i < j, (pair index, piece step) of the pieces where the
        two tracks' samples can come within the near-miss distance), for pairs not that close
        already."""
        none = np.zeros((0, 2), np.int64), (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if self.zones.near_miss is None or len(centre) < 2:
            return none
        d = self.zones.near_miss.distance
        i, j = np.triu_indices(len(centre), 1)
        lo, hi = reach[..., :2].min(1), reach[..., 2:4].max(1)  # whole-path boxes (M, 2)
        keep = ((lo[i] - d <= hi[j]) & (lo[j] <= hi[i] + d)).all(1)
        i, j = i[keep], j[keep]
        rel = centre[i] - centre[j]  # (C, P + 1, 2)
        apart = np.hypot(rel[:, 0, 0], rel[:, 0, 1]) > d
        i, j, rel = i[apart], j[apart], rel[apart]
        # a piece of the relative mean path farther than d + both clouds' radii cannot come
        # within d for any pair of samples
        slack = reach[i, :, 4] + reach[j, :, 4] + d  # (C, P)
        k, t = np.nonzero(_piece_distance(rel) <= slack)
        return np.stack([i, j], 1), (k, t)

    def _finish(self, rows: _Rows) -> FrameEvents:
        """The rows at least min_probability likely, with their alerts."""
        if not rows.times:
            return FrameEvents.empty()
        # (see update) the raw rows first: the online calibration learns from them
        t = np.concatenate(rows.times) * self.dt_s  # (E, S) seconds, inf = not in the horizon
        happens = np.isfinite(t)
        probability = happens.mean(1)
        computed = probability > 0
        t, happens, probability = t[computed], happens[computed], probability[computed]
        within = np.stack([(t <= s).mean(1) for s in WITHIN_S], 1)
        if self.pred_len * self.dt_s < WITHIN_S[-1]:  # beyond the horizon: unknown
            within[:, [s > self.pred_len * self.dt_s for s in WITHIN_S]] = np.nan
        kind = np.concatenate(rows.kind)[computed]
        events = FrameEvents(
            np.concatenate(rows.track_id)[computed],
            kind,
            np.concatenate(rows.name)[computed],
            np.concatenate(rows.direction)[computed],
            np.concatenate(rows.other)[computed],
            probability,
            within,
            _finite_median(t, happens.sum(1)),
            np.zeros(len(probability), bool),
        )
        if self.calibration is not None and self._time_s is not None:
            self.calibration.record(self._time_s, events)  # the raw probabilities
            events.probability = self.calibration.apply(kind, probability)
            events.p_within = self.calibration.apply(kind, within)
        events = events.rows(events.probability >= self.cfg.min_probability)
        for e in np.flatnonzero(events.probability >= self.cfg.alert).tolist():
            key = events.key(e)
            if key not in self.alerted:
                self.alerted.add(key)
                events.alert[e] = True
        return events


def _finite_median(t: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(E,) median of the n (E,) finite values of each row of t (E, S) (inf elsewhere); NaN
    for a row without any."""
    ordered = np.sort(t, axis=1)
    rows = np.arange(len(t))
    lo, hi = np.maximum((n - 1) // 2, 0), np.maximum(n // 2, 0)
    median = 0.5 * (ordered[rows, lo] + ordered[rows, np.minimum(hi, t.shape[1] - 1)])
    return np.where(n > 0, median, np.nan)


def _piece_reach(centre: np.ndarray, r50: np.ndarray, r90: np.ndarray) -> np.ndarray:
    """(M, P, 5): for each piece between steps t and t + 1 of each track, the box x0, y0, x1,
    y1 that holds every sample's piece and the largest sample radius at its ends."""
    top = weibull_radius(r50, r90, np.array([1 - 0.5 / SAMPLE_LEVELS]))[:, 0]  # (M, P)
    r = np.maximum(np.concatenate([np.zeros((len(top), 1)), top[:, :-1]], 1), top)
    a, b = centre[:, :-1], centre[:, 1:]
    lo = np.minimum(a, b) - r[..., None]
    hi = np.maximum(a, b) + r[..., None]
    return np.concatenate([lo, hi, r[..., None]], -1)


def _piece_distance(rel: np.ndarray) -> np.ndarray:
    """(C, P) distance from the origin to each straight piece of the paths rel (C, P + 1, 2)."""
    a, b = rel[:, :-1], rel[:, 1:]
    e = b - a
    ee = e[..., 0] ** 2 + e[..., 1] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.clip(-(a[..., 0] * e[..., 0] + a[..., 1] * e[..., 1]) / ee, 0, 1)
    u = np.where(ee > 0, u, 0.0)
    return np.hypot(a[..., 0] + u * e[..., 0], a[..., 1] + u * e[..., 1])


def _overlaps(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(...,) whether boxes (..., >= 4) x0, y0, x1, y1 overlap the box (4,)."""
    return (
        (boxes[..., 0] <= box[2])
        & (box[0] <= boxes[..., 2])
        & (boxes[..., 1] <= box[3])
        & (box[1] <= boxes[..., 3])
    )
