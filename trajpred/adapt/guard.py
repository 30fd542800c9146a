"""The guard: the best candidate ships only if it beats the starting model on ADE and FDE and,
resampling whole tracks (bootstrap), is at most `max_regression` worse with `confidence`;
else adapted.pt holds the starting model, so adaptation does not ship a regression silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import AdaptConfig
from .crossval import window_errors


def bootstrap_change(
    track_id, start_err: np.ndarray, new_err: np.ndarray, confidence: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(relative change of the mean errors, its one-sided `confidence` upper bound) for error
    columns (N, C) of the same N windows, resampling whole tracks (their windows overlap)."""
    _, track = np.unique(track_id, return_inverse=True)
    n = track.max() + 1
    s = np.stack([np.bincount(track, start_err[:, c], n) for c in range(start_err.shape[1])], 1)
    t = np.stack([np.bincount(track, new_err[:, c], n) for c in range(new_err.shape[1])], 1)
    change = t.sum(0) / s.sum(0) - 1
    draws = np.random.default_rng(seed).integers(0, n, (2000, n))
    boot = t[draws].sum(1) / np.maximum(s[draws].sum(1), 1e-12) - 1
    return change, np.quantile(boot, confidence, axis=0)


@dataclass
class Verdict:
    """The guard's decision on the cross-validated candidates."""

    best: str | None  # the candidate with the lowest ADE + FDE (None: no candidate)
    xy: np.ndarray  # its cross-validated forecasts (the starting model's without a candidate)
    weight: float  # its prior weight
    change: np.ndarray  # relative ADE, FDE change vs the starting model
    upper: np.ndarray  # their one-sided `confidence` upper bounds
    ships: bool
    why: str  # how the decision was made (AdaptReport.guard)


def judge(pooled: dict, found: dict[str, tuple[np.ndarray, float]], cfg: AdaptConfig) -> Verdict:
    """Pick the best of the cross-validated candidates `found` (crossval.candidates) and decide
    whether it ships, against the starting model's forecasts in `pooled`."""
    fut = pooled["fut"]
    best = (
        min(found, key=lambda n: window_errors(found[n][0], fut).mean(0).sum()) if found else None
    )
    new_xy, weight = found[best] if best else (pooled["start"], 0.0)
    change, upper = bootstrap_change(
        pooled["track"],
        window_errors(pooled["start"], fut),
        window_errors(new_xy, fut),
        cfg.confidence,
    )
    better = bool(best) and bool((change < 0).all() and (upper <= cfg.max_regression).all())
    why = (
        f"cross-validated in time ({cfg.folds} blocks), best candidate {best}: ADE "
        f"{100 * change[0]:+.1f} %, FDE {100 * change[1]:+.1f} % vs the starting model; "
        f"{100 * cfg.confidence:g} % bootstrap bounds over {len(np.unique(pooled['track']))} "
        f"tracks {100 * upper[0]:+.1f} % / {100 * upper[1]:+.1f} % (ships if both changes "
        f"< 0 and both bounds <= {100 * cfg.max_regression:+g} %)"
    )
    return Verdict(best, new_xy, weight, change, upper, better, why)
