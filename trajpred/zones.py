"""Zones, lines and the near-miss distance that `predict --zones zones.yaml` watches.

    zones:
      - {name: crossing, polygon: [[120, 400], [620, 400], [640, 470], [100, 470]]}
      - {name: door, polygon: [[2.0, 5.0], [4.0, 5.0], [4.0, 6.5], [2.0, 6.5]], units: m}
    lines:
      - {name: kerb, points: [[100, 380], [660, 380]]}
    near_miss: {distance: 1.0, units: m}     # or px without a homography

A polygon is an (N, 2) array of vertices, N >= 3, in pixels (`units: px`, the default) or, with
a homography, in metres on the ground plane (`units: m`): supervision's PolygonZone convention,
so zones move between the two. The anchor is a box's bottom centre, as for every forecast. A
line is two points; crossing it "in" means moving to the side where the cross product
(end - start) x (p - start) is negative, as supervision's LineZone counts `in`.

With a homography every geometry is mapped to metres on the ground plane once (a homography
maps straight edges to straight edges), and events are computed there, where distances mean
the same all over the image; the near-miss distance is then in metres. Without one, all is in
pixels. Every problem is one InputError naming the file and the entry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .config import read_yaml
from .errors import InputError
from .formats import MAX_COORD
from .geometry import apply_homography, third_coordinate, visible_side

UNITS = ("px", "m")
MAX_VERTICES = 1000
MAX_TARGETS = 100  # zones and lines in one file: each costs time on every frame


@dataclass(frozen=True)
class Zone:
    """A named polygon (N, 2) in `units`; `image` keeps the pixels it is drawn with."""

    name: str
    polygon: np.ndarray
    units: str = "px"
    image: np.ndarray | None = None


@dataclass(frozen=True)
class Line:
    """A named segment (2, 2) in `units`; `image` keeps its pixels."""

    name: str
    points: np.ndarray
    units: str = "px"
    image: np.ndarray | None = None


@dataclass(frozen=True)
class NearMiss:
    distance: float
    units: str = "px"


@dataclass(frozen=True)
class ZoneSet:
    """Everything a zones file holds, in the units events are computed in (`units`: m with a
    homography, px without)."""

    zones: tuple[Zone, ...] = ()
    lines: tuple[Line, ...] = ()
    near_miss: NearMiss | None = None
    units: str = "px"
    source: str = ""
    names: tuple[str, ...] = field(default=(), repr=False)

    def __len__(self) -> int:
        return len(self.zones) + len(self.lines) + (self.near_miss is not None)


def read_zones(path: str | os.PathLike, homography: np.ndarray | None = None) -> ZoneSet:
    """Parse and check a zones file; with a homography (image -> ground, metres) every
    geometry is mapped to the ground plane. InputError naming the file and entry otherwise."""
    where = os.fspath(path)
    try:
        data = read_yaml(path)
    except InputError:
        raise
    except Exception as e:  # ConfigError: not found, not YAML, not a mapping
        raise InputError(where, str(e).split(": ", 1)[-1]) from None
    return parse_zones(data, where, homography)


def parse_zones(data: dict, where: str, homography: np.ndarray | None = None) -> ZoneSet:
    """A zones mapping (as read from YAML) -> ZoneSet; see read_zones."""
    _only_keys(data, ("zones", "lines", "near_miss"), where, "the file")
    if not any(data.get(k) for k in ("zones", "lines", "near_miss")):
        raise InputError(where, "holds no zones, lines or near_miss: nothing to watch")
    zones = [_zone(e, i, where, homography) for i, e in enumerate(_list(data, "zones", where))]
    lines = [_line(e, i, where, homography) for i, e in enumerate(_list(data, "lines", where))]
    if len(zones) + len(lines) > MAX_TARGETS:
        raise InputError(where, f"{len(zones) + len(lines)} zones and lines; at most {MAX_TARGETS}")
    names = [z.name for z in zones] + [ln.name for ln in lines]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InputError(where, f"the name {name!r} is used twice: names must be unique")
    near = _near_miss(data.get("near_miss"), where, homography)
    return ZoneSet(
        tuple(zones),
        tuple(lines),
        near,
        "px" if homography is None else "m",
        where,
        tuple(names),
    )


def _list(data: dict, key: str, where: str) -> list:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(where, f"'{key}' must be a list of entries, got {type(value).__name__}")
    return value


def _only_keys(entry: dict, allowed: tuple[str, ...], where: str, what: str) -> None:
    unknown = [k for k in entry if k not in allowed]
    if unknown:
        raise InputError(
            where, f"{what}: unknown key {unknown[0]!r} (valid keys: {', '.join(allowed)})"
        )


def _entry(entry, kind: str, i: int, where: str, required: tuple[str, ...]) -> tuple[str, str]:
    """Check an entry's keys and name; returns (its name for messages, its units)."""
    label = f"{kind}[{i}]"
    if not isinstance(entry, dict):
        raise InputError(where, f"{label} must be a mapping like {{name: ..., {required[1]}: ...}}")
    _only_keys(entry, required + ("units",), where, label)
    for key in required:
        if key not in entry:
            raise InputError(where, f"{label}: missing '{key}'")
    name = entry["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > 64 or "," in name:
        raise InputError(
            where, f"{label}: name must be a text of 1-64 characters without commas, got {name!r}"
        )
    units = entry.get("units", "px")
    if units not in UNITS:
        raise InputError(where, f"{label} ({name}): units must be px or m, got {units!r}")
    return f"{label} ({name})", units


def _points(value, label: str, where: str, what: str) -> np.ndarray:
    if not isinstance(value, list) or not all(
        isinstance(p, list | tuple)
        and len(p) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
        for p in value
    ):
        raise InputError(where, f"{label}: {what} must be a list of [x, y] number pairs")
    xy = np.array(value, np.float64).reshape(-1, 2)
    if not (np.isfinite(xy).all() and (np.abs(xy) <= MAX_COORD).all()):
        raise InputError(where, f"{label}: {what} values must be finite, within +-{MAX_COORD:g}")
    return xy


def _to_units(
    xy: np.ndarray, units: str, label: str, where: str, homography: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(the points in the units events use, their pixels for drawing or None)."""
    if homography is None:
        if units == "m":
            raise InputError(
                where, f"{label}: units m needs a homography (--homography); or give pixels"
            )
        return xy, xy
    h = np.asarray(homography, np.float64)
    if units == "m":
        image = apply_homography(np.linalg.inv(h), xy)
        inverse_ok = np.isfinite(image).all()
        return xy, image if inverse_ok else None
    ground = apply_homography(h, xy)
    side = visible_side(h)
    w = third_coordinate(h, xy)
    if not np.isfinite(ground).all() or (side and (w * side <= 0).any()):
        raise InputError(
            where,
            f"{label}: a point lies on or above the horizon of the homography, not on the ground",
        )
    return ground, xy


def _zone(entry, i: int, where: str, homography: np.ndarray | None) -> Zone:
    label, units = _entry(entry, "zones", i, where, ("name", "polygon"))
    xy = _points(entry["polygon"], label, where, "polygon")
    if not 3 <= len(xy) <= MAX_VERTICES:
        raise InputError(
            where, f"{label}: a polygon needs 3 to {MAX_VERTICES} points, got {len(xy)}"
        )
    crossing = _self_intersection(xy)
    if crossing is not None:
        raise InputError(
            where, f"{label}: the polygon crosses itself (edges {crossing[0]} and {crossing[1]})"
        )
    if abs(_signed_area(xy)) <= 1e-9 * max(1.0, float(np.ptp(xy, axis=0).max()) ** 2):
        raise InputError(where, f"{label}: the polygon has no area (its points lie on a line)")
    polygon, image = _to_units(xy, units, label, where, homography)
    return Zone(entry["name"], polygon, units, image)


def _line(entry, i: int, where: str, homography: np.ndarray | None) -> Line:
    label, units = _entry(entry, "lines", i, where, ("name", "points"))
    xy = _points(entry["points"], label, where, "points")
    if len(xy) != 2:
        raise InputError(where, f"{label}: a line is 2 points, got {len(xy)}")
    if np.allclose(xy[0], xy[1]):
        raise InputError(where, f"{label}: the line's two points are the same")
    points, image = _to_units(xy, units, label, where, homography)
    return Line(entry["name"], points, units, image)


def _near_miss(entry, where: str, homography: np.ndarray | None) -> NearMiss | None:
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise InputError(where, "near_miss must be a mapping like {distance: 1.0, units: m}")
    _only_keys(entry, ("distance", "units"), where, "near_miss")
    d = entry.get("distance")
    if isinstance(d, bool) or not isinstance(d, int | float) or not 0 < d <= MAX_COORD:
        raise InputError(where, f"near_miss: distance must be a number > 0, got {d!r}")
    units = entry.get("units", "px")
    if units not in UNITS:
        raise InputError(where, f"near_miss: units must be px or m, got {units!r}")
    if units == "m" and homography is None:
        raise InputError(where, "near_miss: units m needs a homography (--homography)")
    if units == "px" and homography is not None:
        raise InputError(
            where,
            "near_miss: with a homography distances are on the ground plane: give them in m",
        )
    return NearMiss(float(d), units)


def _signed_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _self_intersection(xy: np.ndarray) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges (1-based) that touch or cross, or None."""
    a, b = xy, np.roll(xy, -1, axis=0)
    n = len(xy)
    for i in range(n):
        j = np.arange(i + 2, n)
        if i == 0:
            j = j[j != n - 1]  # the last edge is adjacent to the first
        if len(j) == 0:
            continue
        hit = segments_intersect(a[i], b[i], a[j], b[j])
        if hit.any():
            return i + 1, int(j[np.argmax(hit)]) + 1
    return None


def _orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (
        r[..., 0] - p[..., 0]
    )


def segments_intersect(p1, p2, q1, q2) -> np.ndarray:
    """Whether segments p1-p2 and q1-q2 (broadcast, (..., 2) each) touch or cross."""
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)

    def on(p, q, r, d):  # r collinear with p-q and within its box
        lo, hi = np.minimum(p, q), np.maximum(p, q)
        return (d == 0) & ((r >= lo) & (r <= hi)).all(-1)

    touch = on(q1, q2, p1, d1) | on(q1, q2, p2, d2) | on(p1, p2, q1, d3) | on(p1, p2, q2, d4)
    return proper | touch


def inside(polygon: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(...,) whether the (..., 2) points lie inside the polygon (even-odd rule)."""
    x, y = xy[..., 0], xy[..., 1]
    result = np.zeros(x.shape, bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        result ^= crosses & (x < at)
    return result
