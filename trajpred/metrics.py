"""Forecast metrics as pure functions of arrays, and the constant-velocity baseline.

All positions are (..., pred_len, 2) in the data's units (metres for ETH/UCY, pixels for video).
ADE: mean L2 error over the predicted steps; FDE: L2 error at the last step. Best-of-K
(minADE_K / minFDE_K) takes, per window, the smallest ADE and the smallest FDE over the K
samples, each minimised separately as in Social GAN and Trajectron++.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np


def displacement_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, T, 2), (N, T, 2) -> (N, T) L2 error at each step."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)


def ade(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) average displacement error per window."""
    return displacement_errors(pred, gt).mean(axis=-1)


def fde(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) final displacement error per window."""
    return displacement_errors(pred, gt)[..., -1]


def min_ade_fde(samples: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """samples (N, K, T, 2), gt (N, T, 2) -> (minADE (N,), minFDE (N,)) over the K samples."""
    err = displacement_errors(samples, np.asarray(gt)[:, None])
    return err.mean(-1).min(-1), err[..., -1].min(-1)


def constant_velocity(obs_xy: np.ndarray, pred_len: int) -> np.ndarray:
    """Repeat the last observed displacement p[-1] - p[-2] for pred_len steps: (N, pred_len, 2)."""
    obs_xy = np.asarray(obs_xy, np.float64)
    velocity = obs_xy[:, -1] - obs_xy[:, -2]
    steps = np.arange(1, pred_len + 1, dtype=np.float64)
    return obs_xy[:, -1, None] + velocity[:, None] * steps[None, :, None]


@dataclass
class SceneScore:
    """Scores of one scene (or the average row). Distances in `units`; min_* are best-of-k."""

    scene: str
    windows: int
    ade: float
    fde: float
    cv_ade: float
    cv_fde: float
    min_ade: float | None = None
    min_fde: float | None = None
    k: int | None = None
    units: str = "m"
    # Uncertainty (see trajpred/calibration.py), ours and constant velocity's Gaussian: NLL of
    # the truth under the predictive density (nats, mean over steps), KDE-NLL (Trajectron++),
    # coverage of r50 / r90 (fraction of true positions inside, mean over steps), miss rate
    # (best-of-k endpoint farther than 2 m; metres only).
    nll: float | None = None
    kde_nll: float | None = None
    cov50: float | None = None
    cov90: float | None = None
    miss_rate: float | None = None
    cv_nll: float | None = None
    cv_kde_nll: float | None = None
    cv_cov50: float | None = None
    cv_cov90: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def score_scene(
    scene: str,
    pred: np.ndarray,
    gt: np.ndarray,
    obs_xy: np.ndarray,
    samples: np.ndarray | None = None,
    units: str = "m",
) -> SceneScore:
    """Score deterministic forecasts (and optional samples) beside constant velocity."""
    cv = constant_velocity(obs_xy, gt.shape[1])
    row = SceneScore(
        scene,
        len(gt),
        float(ade(pred, gt).mean()),
        float(fde(pred, gt).mean()),
        float(ade(cv, gt).mean()),
        float(fde(cv, gt).mean()),
        units=units,
    )
    if samples is not None:
        min_ade, min_fde = min_ade_fde(samples, gt)
        row.min_ade, row.min_fde, row.k = (
            float(min_ade.mean()),
            float(min_fde.mean()),
            samples.shape[1],
        )
    return row


def average_row(rows: list[SceneScore]) -> SceneScore:
    """Plain mean of the scenes' scores (the benchmark's AVG), windows summed."""

    def mean(name: str) -> float:
        return float(np.mean([getattr(r, name) for r in rows]))

    def mean_if_all(name: str) -> float | None:  # best-of-k: None unless every scene has it
        values = [getattr(r, name) for r in rows]
        return None if any(v is None for v in values) else float(np.mean(values))

    return SceneScore(
        "avg",
        sum(r.windows for r in rows),
        mean("ade"),
        mean("fde"),
        mean("cv_ade"),
        mean("cv_fde"),
        mean_if_all("min_ade"),
        mean_if_all("min_fde"),
        rows[0].k,
        rows[0].units,
        **{name: mean_if_all(name) for name in UNCERTAINTY_FIELDS},
    )


UNCERTAINTY_FIELDS = (
    "nll",
    "kde_nll",
    "cov50",
    "cov90",
    "miss_rate",
    "cv_nll",
    "cv_kde_nll",
    "cv_cov50",
    "cv_cov90",
)
UNCERTAINTY_HEAD = {
    "nll": "NLL",
    "kde_nll": "KDE-NLL",
    "cov50": "in r50",
    "cov90": "in r90",
    "miss_rate": "MR@2m",
    "cv_nll": "CV NLL",
    "cv_kde_nll": "CV KDE-NLL",
    "cv_cov50": "CV in r50",
    "cv_cov90": "CV in r90",
}


def format_uncertainty_table(rows: list[SceneScore]) -> str:
    """A markdown table of the rows' uncertainty scores (empty when none has any)."""
    names = [n for n in UNCERTAINTY_FIELDS if any(getattr(r, n) is not None for r in rows)]
    if not names:
        return ""
    lines = ["| scene | " + " | ".join(UNCERTAINTY_HEAD[n] for n in names) + " |"]
    lines.append("|" + "---|" * (len(names) + 1))
    for r in rows:
        cells = [
            "-"
            if getattr(r, n) is None
            else f"{100 * getattr(r, n):.1f} %"
            if n.startswith(("cov", "cv_cov", "miss"))
            else f"{getattr(r, n):.3f}"
            for n in names
        ]
        lines.append(f"| {r.scene} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_table(rows: list[SceneScore]) -> str:
    """A markdown table of the rows (ours beside constant velocity)."""
    k = next((r.k for r in rows if r.k), None)
    head = ["scene", "windows", "ADE", "FDE", "CV ADE", "CV FDE"]
    if k:
        head += [f"minADE{k}", f"minFDE{k}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r.scene,
            str(r.windows),
            f"{r.ade:.3f}",
            f"{r.fde:.3f}",
            f"{r.cv_ade:.3f}",
            f"{r.cv_fde:.3f}",
        ]
        if k:
            cells += [
                f"{r.min_ade:.3f}" if r.min_ade is not None else "-",
                f"{r.min_fde:.3f}" if r.min_fde is not None else "-",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scores_to_json(rows: list[SceneScore]) -> str:
    return json.dumps([r.to_dict() for r in rows], indent=2)


def coverage(pred: np.ndarray, gt: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(T,) fraction of windows whose true position lies within `radius` (N, T) of the
    forecast pred (N, T, 2), per step."""
    return (displacement_errors(pred, gt) <= radius).mean(0)


def miss_rate(samples: np.ndarray, gt: np.ndarray, threshold: float = 2.0) -> float:
    """Fraction of windows whose best of K sampled endpoints (N, K, T, 2) is farther than
    `threshold` from the true endpoint (Argoverse's miss rate; 2 m)."""
    end = np.linalg.norm(np.asarray(samples)[:, :, -1] - np.asarray(gt)[:, None, -1], axis=-1)
    return float((end.min(1) > threshold).mean())


KDE_SAMPLES = 2000  # draws per window for KDE-NLL, as in Trajectron++
KDE_LOG_FLOOR = -20.0  # Trajectron++ clips each log density at this


def kde_nll(samples: np.ndarray, gt: np.ndarray, batch: int = 64) -> float:
    """KDE-NLL of the Trajectron++ protocol (nats): per window and step, a Gaussian kernel
    density of the samples (N, S, T, 2) with Scott's bandwidth (scipy's gaussian_kde default,
    S^(-1/6) times the samples' covariance in 2-D), the truth's log density clipped at -20,
    averaged over steps and windows, negated."""
    samples = np.asarray(samples, np.float64)
    gt = np.asarray(gt, np.float64)
    n, s = samples.shape[:2]
    factor2 = s ** (-2.0 / 6.0)
    total = 0.0
    for start in range(0, n, batch):
        x = samples[start : start + batch].transpose(0, 2, 1, 3)  # (B, T, S, 2)
        centred = x - x.mean(2, keepdims=True)
        cov = np.einsum("btsi,btsj->btij", centred, centred) / (s - 1) * factor2
        cov += np.eye(2) * 1e-9  # a window whose samples coincide
        inv = np.linalg.inv(cov)
        d = gt[start : start + batch, :, None] - x  # (B, T, S, 2)
        maha = np.einsum("btsi,btij,btsj->bts", d, inv, d)
        log_norm = -np.log(2 * np.pi) - 0.5 * np.log(np.linalg.det(cov))
        top = (-0.5 * maha).max(2, keepdims=True)
        log_pdf = (
            top[..., 0] + np.log(np.exp(-0.5 * maha - top).sum(2)) - np.log(s) + log_norm
        )  # (B, T)
        total += np.maximum(log_pdf, KDE_LOG_FLOOR).mean(1).sum()
    return float(-total / n)
