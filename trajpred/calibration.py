"""Calibrated uncertainty: circles around each forecast that hold what they promise.

The model's mixture head is trained winner-takes-all, so its sigma describes the scatter around
the best of 20 modes, not the error of the deterministic forecast that is drawn and written: on
real footage 8 % of true positions fell inside its "1 sigma" circle instead of 39 %. trajpred
reports instead, for every track and step t, two radii around the deterministic forecast:

    r50[t] = radius_scale[0][t] * sigma[t],   r90[t] = radius_scale[1][t] * sigma[t]

where sigma[t] is the most probable mode's standard deviation (the model's own per-track,
per-step spread, which the live forecaster computes anyway) and radius_scale the split-conformal
quantile of |truth - forecast| / sigma over calibration windows the model was not trained on.
Each level has its own factor: the errors are heavy-tailed (turns, stops, id switches), so no
single Gaussian scale puts 50 % inside r50 and 90 % inside r90 at once.

The predictive density (NLL, and samples drawn beyond the modes) is the mixture with every
mode's sigma multiplied by sigma_scale[t], fitted by maximum likelihood on the same windows.
The constant-velocity baseline's isotropic Gaussian (cv_sigma[t], fitted on the same windows)
is stored too, so an evaluation compares both with one calibration.

A checkpoint or exported file holds its Calibration as plain data ("calibration"); one without
gets `gaussian()`, the uncalibrated reading of sigma, and a one-line warning.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import InputError
from .slots import Slots

LEVELS = (0.5, 0.9)  # the radii trajpred reports: r50, r90
MAX_SCALE = 1e4  # a factor beyond this is a broken fit or file, not a calibration


def gaussian_radius(level: float) -> float:
    """Radius, in sigmas, of the circle holding `level` of an isotropic 2-D Gaussian centred on
    it (Rayleigh quantile): 1.177 for 50 %, 2.146 for 90 %."""
    return math.sqrt(-2.0 * math.log(1.0 - level))


@dataclass
class Calibration:
    """Per-step factors that turn the model's sigma into calibrated radii and density.

    levels: coverage levels of the radii (LEVELS). radius_scale: (len(levels), pred_len)
    radius / sigma. sigma_scale: (pred_len,) factor on every mode's sigma for the predictive
    density. cv_sigma: (pred_len,) the constant-velocity baseline's isotropic standard deviation,
    in the units of the calibration data (empty when not fitted). windows: calibration windows;
    source: what they were (files, a description); fitted: False for the uncalibrated default.
    """

    radius_scale: list[list[float]]
    sigma_scale: list[float]
    levels: list[float] = field(default_factory=lambda: list(LEVELS))
    cv_sigma: list[float] = field(default_factory=list)
    windows: int = 0
    source: str = ""
    units: str = ""
    fitted: bool = True

    def __post_init__(self) -> None:
        steps = len(self.sigma_scale)
        radius = np.asarray(self.radius_scale, dtype=np.float64)
        sigma = np.asarray(self.sigma_scale, dtype=np.float64)
        if steps == 0 or radius.shape != (len(self.levels), steps):
            raise ValueError(
                f"radius_scale must be (levels, steps) = ({len(self.levels)}, {steps}), "
                f"got {radius.shape}"
            )
        if list(self.levels) != list(LEVELS):
            raise ValueError(f"levels must be {list(LEVELS)}, got {self.levels}")
        for name, a in (("radius_scale", radius), ("sigma_scale", sigma)):
            if not (np.isfinite(a).all() and (a > 0).all() and (a < MAX_SCALE).all()):
                raise ValueError(f"{name} must hold finite factors in (0, {MAX_SCALE:g})")
        if (np.diff(radius, axis=0) < 0).any():
            raise ValueError("radius_scale must not shrink as the level grows")
        cv = np.asarray(self.cv_sigma, dtype=np.float64)
        if len(cv) and (cv.shape != (steps,) or not (np.isfinite(cv).all() and (cv > 0).all())):
            raise ValueError(f"cv_sigma must be empty or {steps} positive numbers")

    @property
    def pred_len(self) -> int:
        return len(self.sigma_scale)

    def radii(self, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(r50, r90), each shaped like sigma (..., pred_len), in sigma's units."""
        scale = np.asarray(self.radius_scale, dtype=np.float64)
        sigma = np.asarray(sigma, dtype=np.float64)
        return sigma * scale[0], sigma * scale[1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data, path: str | os.PathLike) -> Calibration:
        """Parse a stored calibration; InputError naming `path` when unusable."""
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise InputError(path, f"unusable calibration ({e})") from None


def gaussian(pred_len: int) -> Calibration:
    """The uncalibrated reading: sigma taken as the spread of a Gaussian centred on the
    forecast (what a checkpoint without calibration gets)."""
    return Calibration(
        [[gaussian_radius(p)] * pred_len for p in LEVELS],
        [1.0] * pred_len,
        fitted=False,
        source="none (sigma read as a Gaussian's)",
    )


def calibration_of(stored, pred_len: int, path: str | os.PathLike) -> Calibration | None:
    """The calibration a checkpoint or export stored, checked against the model (None when it
    stored none)."""
    if stored is None:
        return None
    calibration = Calibration.from_dict(stored, path)
    if calibration.pred_len != pred_len:
        raise InputError(
            path, f"calibration has {calibration.pred_len} steps, the model {pred_len}"
        )
    return calibration


def conformal_quantile(scores: np.ndarray, level: float) -> np.ndarray:
    """Split-conformal quantile of scores (N, ...) along axis 0: the ceil((N + 1) * level)-th
    smallest, so a new exchangeable score falls at or below it with probability >= level."""
    n = len(scores)
    rank = min(math.ceil((n + 1) * level), n)
    return np.sort(scores, axis=0)[rank - 1]


def mixture_log_density(
    xy: np.ndarray, mode_xy: np.ndarray, mode_prob: np.ndarray, mode_sigma: np.ndarray
) -> np.ndarray:
    """log density of points xy (N, P, 2) under a mixture of isotropic 2-D Gaussians per window
    and step: mode_xy (N, M, P, 2), mode_prob (N, M), mode_sigma (N, M, P) -> (N, P)."""
    d2 = ((xy[:, None] - mode_xy) ** 2).sum(-1)  # (N, M, P)
    var = mode_sigma**2
    log_terms = (
        np.log(np.maximum(mode_prob, 1e-300))[..., None] - np.log(2 * np.pi * var) - d2 / (2 * var)
    )
    top = log_terms.max(1)
    return top + np.log(np.exp(log_terms - top[:, None]).sum(1))


def gaussian_log_density(xy: np.ndarray, centre: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """log density of xy (N, P, 2) under isotropic Gaussians at centre (N, P, 2) with sigma
    (P,) or (N, P) -> (N, P)."""
    var = np.broadcast_to(np.asarray(sigma, np.float64) ** 2, xy.shape[:-1])
    return -np.log(2 * np.pi * var) - ((xy - centre) ** 2).sum(-1) / (2 * var)


SIGMA_SCALE_COARSE = np.exp(np.linspace(np.log(0.1), np.log(100.0), 31))  # ~26 % apart


def fit_sigma_scale(
    truth: np.ndarray, mode_xy: np.ndarray, mode_prob: np.ndarray, mode_sigma: np.ndarray
) -> np.ndarray:
    """(P,) the factor on every mode's sigma that maximises the truth's mean log density per
    step, over 0.1 to 100: a coarse grid, then a fine one (about 1 % apart) around each step's
    best coarse factor."""

    def best_of(grid: np.ndarray) -> np.ndarray:  # grid (G, P) -> (P,) the best per step
        ll = np.stack(
            [mixture_log_density(truth, mode_xy, mode_prob, mode_sigma * g).mean(0) for g in grid]
        )  # (G, P)
        return grid[ll.argmax(0), np.arange(grid.shape[1])]

    steps = truth.shape[1]
    coarse = best_of(np.repeat(SIGMA_SCALE_COARSE[:, None], steps, 1))
    fine = coarse * np.exp(np.linspace(-0.25, 0.25, 41))[:, None]  # (41, P) around each
    return best_of(np.clip(fine, SIGMA_SCALE_COARSE[0], SIGMA_SCALE_COARSE[-1]))


def fit_cv_sigma(truth: np.ndarray, cv_xy: np.ndarray) -> np.ndarray:
    """(P,) maximum-likelihood isotropic standard deviation of truth around constant velocity."""
    d2 = ((truth - cv_xy) ** 2).sum(-1)
    return np.sqrt(np.maximum(d2.mean(0) / 2, 1e-12))


def fit_calibration(
    truth: np.ndarray,
    mean: np.ndarray,
    sigma: np.ndarray,
    mode_xy: np.ndarray,
    mode_prob: np.ndarray,
    mode_sigma: np.ndarray,
    cv_xy: np.ndarray | None = None,
    source: str = "",
    units: str = "",
) -> Calibration:
    """Fit a Calibration on windows the model was not trained on: truth and mean (N, P, 2), the
    top mode's sigma (N, P), the mixture (mode_xy (N, M, P, 2), mode_prob (N, M), mode_sigma
    (N, M, P)), all in one unit, and optionally constant velocity's forecast (N, P, 2)."""
    if len(truth) < 2:
        raise ValueError("a calibration needs at least 2 windows")
    err = np.linalg.norm(truth - mean, axis=-1)
    score = err / np.maximum(sigma, 1e-9)
    radius = np.stack([conformal_quantile(score, p) for p in LEVELS])
    radius = np.maximum.accumulate(np.maximum(radius, 1e-6), axis=0)
    return Calibration(
        radius.tolist(),
        fit_sigma_scale(truth, mode_xy, mode_prob, mode_sigma).tolist(),
        cv_sigma=[] if cv_xy is None else fit_cv_sigma(truth, cv_xy).tolist(),
        windows=len(truth),
        source=source,
        units=units,
    )


def calibration_for(model) -> Calibration:
    """The calibration a loaded forecaster carries (`trajpred.checkpoint` and
    `trajpred.export_runtime` attach it), or the uncalibrated `gaussian` one for a bare model."""
    stored = getattr(model, "calibration", None)
    return stored if stored is not None else gaussian(model.cfg.pred_len)


def warn_if_uncalibrated(model, path: str | os.PathLike) -> None:
    """One warning when a forecaster about to forecast carries no calibration."""
    if getattr(model, "calibration", None) is None:
        warnings.warn(
            f"{os.fspath(path)} has no calibration: its r50/r90 read the model's sigma as a "
            "Gaussian's and are not calibrated (fit one with `trajpred calibrate`)",
            stacklevel=2,
        )


def sample_mixture(
    mode_xy: np.ndarray,
    mode_prob: np.ndarray,
    mode_sigma: np.ndarray,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """(N, n, P, 2) draws from each window's mixture (mode_xy (N, M, P, 2), mode_prob (N, M),
    mode_sigma (N, M, P)): a mode picked by probability per draw, plus its Gaussian noise."""
    cum = np.cumsum(mode_prob, axis=1)
    u = rng.random((len(mode_prob), n)) * cum[:, -1:]
    pick = np.minimum((u[:, :, None] > cum[:, None, :]).sum(-1), mode_prob.shape[1] - 1)
    rows = np.arange(len(mode_prob))[:, None]
    centre, sigma = mode_xy[rows, pick], mode_sigma[rows, pick]  # (N, n, P, 2), (N, n, P)
    return centre + rng.standard_normal(centre.shape) * sigma[..., None]


ONLINE_WINDOW = 500  # latest scores per step the online factors are the quantiles of
ONLINE_MIN_SCORES = 50  # scores a step needs before its online factor replaces the stored one


class OnlineCalibration:
    """Radius factors that follow the errors a forecaster makes where it runs.

    A stored calibration was fitted elsewhere (other scenes, other cameras), and errors differ
    from one scene to the next: calibrated on the other four ETH/UCY scenes, r50 held 23 % of
    eth's true positions and 69 % of hotel's. Live, every forecast's truth arrives pred_len
    steps later (the track's own position), so each step's factor can be the split-conformal
    quantile of the latest ONLINE_WINDOW scores |truth - forecast| / sigma of that step, once
    it has ONLINE_MIN_SCORES of them (the stored factor until then). Only past truths are used:
    a forecast's radii never depend on its own outcome.
    """

    def __init__(
        self,
        stored: Calibration,
        window: int = ONLINE_WINDOW,
        min_scores: int = ONLINE_MIN_SCORES,
    ):
        self.stored = np.asarray(stored.radius_scale, dtype=np.float64)
        self.window, self.min_scores = window, min_scores
        self.scores = np.zeros((window, stored.pred_len))  # ring buffer per step (column)
        self.count = np.zeros(stored.pred_len, np.int64)  # scores ever added per step
        self._factors = self.stored.copy()
        self._stale = False

    def add(self, step: np.ndarray, score: np.ndarray) -> None:
        """Scores (M,) of forecasts whose truth arrived, at 0-based steps (M,)."""
        step, score = np.asarray(step, np.int64), np.asarray(score, np.float64)
        keep = np.isfinite(score)
        step, score = step[keep], score[keep]
        if len(step) == 0:
            return
        order = np.argsort(step, kind="stable")  # each step's scores in the order given
        step, score = step[order], score[order]
        added = np.bincount(step, minlength=len(self.count))
        first = np.cumsum(added) - added  # where each step's scores start in `step`
        rank = np.arange(len(step)) - first[step]  # 0, 1, ... within each step
        last = rank >= added[step] - self.window  # more than a window: the latest win
        rows = (self.count[step] + rank) % self.window
        self.scores[rows[last], step[last]] = score[last]
        self.count += added
        self._stale = True

    def factors(self) -> np.ndarray:
        """(len(LEVELS), pred_len) radius / sigma now."""
        if self._stale:
            full = self.count >= self.window
            if full.any():  # the usual case: one partial sort of every full step at once
                ranks = [min(math.ceil((self.window + 1) * p), self.window) - 1 for p in LEVELS]
                part = np.partition(self.scores[:, full], ranks, axis=0)
                self._factors[:, full] = part[ranks]
            for s in np.flatnonzero((self.count >= self.min_scores) & ~full):
                recent = self.scores[: self.count[s], s]
                self._factors[:, s] = [conformal_quantile(recent, p) for p in LEVELS]
            self._factors = np.maximum.accumulate(np.maximum(self._factors, 1e-6), axis=0)
            self._stale = False
        return self._factors

    def radii(self, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(r50, r90) shaped like sigma (..., pred_len), as Calibration.radii."""
        factors = self.factors()
        sigma = np.asarray(sigma, dtype=np.float64)
        return sigma * factors[0], sigma * factors[1]


class ErrorShape:
    """The cross-track / along-track spread of a forecaster's recent errors: median |cross| /
    median |along| of the latest `window` errors of forecasts that move (their chord, first to
    last step, longer than their last sigma), each error split along and across that chord.
    `prior` until `min_errors` have arrived. Event probabilities sample with it
    (trajpred/events.py): forecasts err more in how far a track gets than in where it heads
    (0.25-0.6 on synthetic and real pedestrians)."""

    def __init__(
        self, prior: float, window: int = ONLINE_WINDOW * 4, min_errors: int = ONLINE_MIN_SCORES
    ):
        self.prior, self.window, self.min_errors = prior, window, min_errors
        self.errors = np.zeros((window, 2))  # |along|, |cross| ring buffer
        self.count = 0

    def add(self, error: np.ndarray, chord: np.ndarray, scale: np.ndarray) -> None:
        """Errors (N, 2) of forecasts whose chords are (N, 2) and last sigma (N,)."""
        length = np.hypot(chord[:, 0], chord[:, 1])
        moving = length > scale
        if not moving.any():
            return
        along = chord[moving] / length[moving, None]
        e = error[moving]
        parts = np.abs(
            np.stack(
                [
                    e[:, 0] * along[:, 0] + e[:, 1] * along[:, 1],
                    e[:, 1] * along[:, 0] - e[:, 0] * along[:, 1],
                ],
                1,
            )
        )[-self.window :]
        rows = (self.count + np.arange(len(parts))) % self.window
        self.errors[rows] = parts
        self.count += len(parts)

    @property
    def ratio(self) -> float:
        if self.count < self.min_errors:
            return self.prior
        recent = self.errors[: min(self.count, self.window)]
        along, cross = np.median(recent, axis=0)
        return float(np.clip(cross / max(along, 1e-12), 0.05, 1.0))


class ForecastOutcomes:
    """The forecasts a live forecaster made at each track's latest pred_len samples, scored as
    the samples they predicted arrive (for OnlineCalibration). Positions in the forecaster's
    units; sample k of a track is the k-th point of the shared dt_s grid."""

    def __init__(
        self,
        online: OnlineCalibration,
        pred_len: int,
        capacity: int = 64,
        shape: ErrorShape | None = None,
    ):
        self.online, self.pred_len, self.shape = online, pred_len, shape
        self.slots = Slots(self._grow, capacity)

    def _grow(self, capacity: int) -> None:
        p, old = self.pred_len, len(getattr(self, "made_at", ()))
        made_at = np.full((capacity, p), -(2**62), np.int64)  # sample index of each forecast
        mean = np.zeros((capacity, p, p, 2))  # (track, ring slot, step, xy)
        sigma = np.ones((capacity, p, p))
        if old:
            made_at[:old], mean[:old], sigma[:old] = self.made_at, self.mean, self.sigma
        self.made_at: np.ndarray = made_at
        self.mean: np.ndarray = mean
        self.sigma: np.ndarray = sigma

    def forget(self, track_id: int) -> None:
        r = self.slots.release(track_id)
        if r is not None:
            self.made_at[r] = -(2**62)

    def arrive(self, track_ids: list[int], k: np.ndarray, xy: np.ndarray) -> None:
        """Sample k (N,) of each track arrived at xy (N, 2): score every earlier forecast of
        the track that predicted it."""
        known = [j for j, t in enumerate(track_ids) if t in self.slots.row]
        if not known:
            return
        rows = self.slots.rows([track_ids[j] for j in known])
        k, xy = np.asarray(k)[known], np.asarray(xy, np.float64)[known]
        step = k[:, None] - self.made_at[rows]  # (N, P): 1..P for forecasts that reach k
        hit = (step >= 1) & (step <= self.pred_len)
        n, slot = np.nonzero(hit)
        s = step[n, slot] - 1
        error = xy[n] - self.mean[rows[n], slot, s]
        err = np.hypot(error[:, 0], error[:, 1])
        self.online.add(s, err / np.maximum(self.sigma[rows[n], slot, s], 1e-9))
        if self.shape is not None:
            path = self.mean[rows[n], slot]  # (H, P, 2)
            self.shape.add(error, path[:, -1] - path[:, 0], self.sigma[rows[n], slot, -1])

    def made(self, track_ids: list[int], k: np.ndarray, mean: np.ndarray, sigma: np.ndarray):
        """Forecasts made at sample k (N,) of each track: mean (N, P, 2), sigma (N, P)."""
        rows = self.slots.rows(track_ids)
        slot = np.asarray(k) % self.pred_len
        self.made_at[rows, slot] = k
        self.mean[rows, slot] = mean
        self.sigma[rows, slot] = sigma
