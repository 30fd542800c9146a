"""When paths cross edges or come close: exact times on straight pieces of paths.

A piece runs from a (K, S, 2) to b (K, S, 2), K pieces of S paths each, piece k from step[k] to
step[k] + 1; a time is step + the fraction of the piece where it happens, inf where it does
not. The events (trajpred/events.py) ask these of sample paths, their online calibration
(trajpred/event_calibration.py) and their scores (trajpred/event_scores.py) of true paths.
"""

from __future__ import annotations

import numpy as np


def _cross(ax, ay, bx, by):
    return ax * by - ay * bx


def _meet(a: np.ndarray, b: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(where along each piece a -> b (K, S, 2) it meets each edge (E, 2, 2), as a fraction of
    the piece, inf where it does not: (K, S, E); cross(piece, edge): (K, S, E))."""
    dx, dy = (b - a)[..., 0, None], (b - a)[..., 1, None]  # (K, S, 1)
    ex, ey = edges[:, 1, 0] - edges[:, 0, 0], edges[:, 1, 1] - edges[:, 0, 1]  # (E,)
    wx, wy = edges[:, 0, 0] - a[..., 0, None], edges[:, 0, 1] - a[..., 1, None]  # (K, S, E)
    denom = _cross(dx, dy, ex, ey)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = _cross(wx, wy, ex, ey) / denom
        v = _cross(wx, wy, dx, dy) / denom
    hit = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)  # False where denom is 0 (NaN)
    return np.where(hit, u, np.inf), denom


def crossing_times(
    a: np.ndarray, b: np.ndarray, step: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """When the straight pieces a -> b (K, S, 2), piece k running from step[k] to step[k] + 1,
    first cross an edge (E, 2, 2): (time to the negative side of the edge, time to the positive
    side), each (K, S) in steps, inf where it does not. "Negative side": cross(edge, p - start)
    < 0, where a line's "in" lies (trajpred/zones.py)."""
    u, denom = _meet(a, b, edges)
    when = step[:, None, None] + u
    if when.shape[-1] == 1:  # one edge (a line): each crossing goes one way
        when = when[..., 0]
        return np.where(denom[..., 0] > 0, when, np.inf), np.where(denom[..., 0] < 0, when, np.inf)
    # cross(edge, direction) = -denom < 0: moving to the negative side
    return (
        np.where(denom > 0, when, np.inf).min(-1),
        np.where(denom < 0, when, np.inf).min(-1),
    )


def entry_times(a: np.ndarray, b: np.ndarray, step: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """When the pieces a -> b (K, S, 2) first cross any of the edges (E, 2, 2), either way: a
    zone's entry for a path that starts outside it ((K, S) steps, inf = never)."""
    return step[:, None] + _meet(a, b, edges)[0].min(-1)


def approach_times(rel_a: np.ndarray, rel_b: np.ndarray, step: np.ndarray, distance: float):
    """When the relative pieces rel_a -> rel_b (K, S, 2) first come within `distance` of the
    origin, in steps ((K, S), inf = never), piece k running from step[k] to step[k] + 1."""
    x0, y0 = rel_a[..., 0], rel_a[..., 1]
    ex, ey = rel_b[..., 0] - x0, rel_b[..., 1] - y0
    a = ex * ex + ey * ey
    b = 2 * (x0 * ex + y0 * ey)
    c = x0 * x0 + y0 * y0 - distance**2
    disc = b * b - 4 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(c <= 0, 0.0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a))
    hit = (c <= 0) | ((disc >= 0) & (u >= 0) & (u <= 1))  # a = 0: u is NaN, no hit
    return np.where(hit, step[:, None] + u, np.inf)
