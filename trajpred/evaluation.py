"""Evaluation: a checkpoint's ADE/FDE (and best-of-K) per scene, beside constant velocity.

Windows follow the benchmark protocol of trajpred/windows.py (8 + 12 steps, stride 1, every
agent present in all frames, no minimum number of agents per window).

`evaluate_scene` (also `trajpred.evaluate`) also says which of the scene's test files the
checkpoint was trained or validated on, from the run config the checkpoint carries, so a leaked
score is not mistaken for a held-out one. A test file counts as seen when training read the
same file or a part of its recording: ETH/UCY cuts each recording `<name>.txt` into
`<name>_train.txt` and `<name>_val.txt` for the other scenes' training.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_text
from .calibration import (
    LEVELS,
    Calibration,
    OnlineCalibration,
    calibration_for,
    fit_calibration,
    gaussian,
    gaussian_log_density,
    gaussian_radius,
    mixture_log_density,
    sample_mixture,
    warn_if_uncalibrated,
)
from .checkpoint import load_forecaster_and_metadata
from .checks import between, check_arguments, choice, path_like, text, whole
from .config import ConfigError, from_dict
from .data import DataConfig, load_split, split_files
from .errors import InputError
from .forecast import Forecasts, forecast_on
from .formats import FORMATS
from .metrics import (
    KDE_SAMPLES,
    SceneScore,
    average_row,
    constant_velocity,
    coverage,
    displacement_errors,
    kde_nll,
    miss_rate,
    score_scene,
)
from .paths import PACKAGE_ROOT
from .pipeline import MAX_K
from .video import MAX_FPS
from .windows import Windows

ETH_UCY_SCENES = ("eth", "hotel", "univ", "zara1", "zara2")
KDE_WINDOWS = 2000  # windows KDE-NLL draws its samples for by default: every window of univ
# (24,334) takes minutes, and 2000 put the mean within a few hundredths of a nat
PREDICTION_HEADER = ["file", "frame", "track_id", "step", "x", "y"]


RELIABILITY_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass
class Reliability:
    """Observed coverage per forecast step (P,) of the circles centred on the forecast:
    `calibrated` (len(LEVELS), P) for the calibrated radii r50, r90; `mixture`
    (len(RELIABILITY_LEVELS), P) for the circle holding each nominal level of the predictive
    mixture's own probability (from its samples); `cv` (len(LEVELS), P) for constant velocity's
    Gaussian radii, or None."""

    calibrated: np.ndarray
    mixture: np.ndarray | None
    cv: np.ndarray | None = None


@dataclass
class SceneResult:
    """One scene's evaluation: what `trajpred evaluate` prints and saves.

    score: ADE/FDE, best-of-K and constant velocity (see SceneScore). windows: the test
    windows. forecasts: the checkpoint's forecasts of them. checkpoint: the file evaluated.
    trained_on: names of this scene's test files that the checkpoint was trained or validated
    on, whole or in part (empty when none, or when its run config names no file found here).
    """

    score: SceneScore
    windows: Windows
    forecasts: Forecasts
    checkpoint: str = ""
    trained_on: list[str] = field(default_factory=list)
    reliability: Reliability | None = None

    @property
    def warning(self) -> str | None:
        """One line when the score is not held out (the checkpoint saw this scene), else None."""
        if not self.trained_on:
            return None
        return (
            f"warning: {self.checkpoint} was trained on (parts of) "
            f"{', '.join(self.trained_on)}, test data of scene '{self.score.scene}': "
            "this is not a held-out score"
        )


def scenes_of(names: list[str], data: str) -> list[str]:
    """Scenes to evaluate: the names given, or for ['all'] every ETH/UCY scene with a test
    folder under `data` (else one scene named after the data)."""
    if list(names) != ["all"]:
        return list(names)
    root = Path(data)
    return [s for s in ETH_UCY_SCENES if (root / s / "test").is_dir()] or [root.stem or "data"]


def checkpoint_for(checkpoint: str, scene: str) -> str:
    """A checkpoint file, or a folder holding one `<scene>.pt` per leave-one-out scene."""
    path = Path(checkpoint)
    if path.is_dir():
        path = path / f"{scene}.pt"
        if not path.is_file():
            raise InputError(path, f"no checkpoint for scene '{scene}' in {checkpoint}")
    return str(path)


def data_config_for(data: str, scene: str, fps: float = 0.0, fmt: str = "auto") -> DataConfig:
    """ETH/UCY root with <scene>/test, or a track file/folder/glob evaluated as one scene."""
    root = Path(data)
    if (root / scene / "test").is_dir():
        return DataConfig(root=str(root), test_scene=scene, fps=fps, format=fmt)
    if root.is_dir():
        files = sorted(str(p) for p in root.iterdir() if p.suffix in (".txt", ".csv"))
        if not files:
            raise InputError(root, f"holds neither {scene}/test/ nor track files")
        return DataConfig(test_files=files, fps=fps, format=fmt)
    return DataConfig(test_files=[data], fps=fps, format=fmt)


def _find(pattern: str, data_root: Path | None) -> list[str]:
    """Files of a training pattern on this machine. Run configs keep paths as given at training
    time, relative to the folder training ran in, so after the path as written come the package
    root (where the shipped checkpoints were trained) and, for an ETH/UCY layout
    `.../<scene>/<split>/<file>`, the evaluated ETH/UCY root."""
    given = Path(pattern).expanduser()
    candidates = [given] if given.is_absolute() else [given, PACKAGE_ROOT / given]
    if data_root is not None and given.parent.name in ("train", "val", "test"):
        candidates.append(data_root / given.parent.parent.name / given.parent.name / given.name)
    for candidate in candidates:
        found = sorted(glob.glob(str(candidate)))
        if found:
            return found
    return []


def trained_files(payload: dict, data_root: Path | None = None) -> list[Path]:
    """The train and val files named by a checkpoint's run config and found here, resolved
    (none for a checkpoint without a run config, e.g. an untrained model)."""
    data = (payload.get("run_config") or {}).get("data")
    if not isinstance(data, dict):
        return []
    try:
        cfg = from_dict(DataConfig, data)
    except ConfigError:
        return []
    if cfg.train_files or cfg.val_files or cfg.test_files:
        patterns = cfg.train_files + cfg.val_files
    else:
        folder = Path(cfg.root) / cfg.test_scene
        patterns = [str(folder / "train" / "*"), str(folder / "val" / "*")]
    return [Path(f).resolve() for p in patterns for f in _find(p, data_root)]


def seen_test_files(test_files: list[str], trained: list[Path]) -> list[str]:
    """Names of the test files that are, or whose recording has a part that is, a trained file."""
    paths = set(trained)
    names = {p.name for p in trained}
    return [
        Path(f).name
        for f in test_files
        if Path(f).resolve() in paths
        or {f"{Path(f).stem}_{part}{Path(f).suffix}" for part in ("train", "val")} & names
    ]


def scene_windows(model, data: str, scene: str, split: str, fps: float, fmt: str):
    """(windows, DataConfig) of one scene's split for `model` (split applies to an ETH/UCY
    root; track files are read whole); InputError when it holds no window."""
    cfg = data_config_for(data, scene, fps, fmt)
    windows, _ = load_split(
        cfg,
        split if not cfg.test_files else "test",
        model.cfg.obs_len,
        model.cfg.pred_len,
        model.cfg.dt_s,
        model.cfg.social_neighbours,
    )
    if len(windows) == 0:
        raise InputError(
            data, f"scene '{scene}' has no window of {model.cfg.obs_len + model.cfg.pred_len} steps"
        )
    return windows, cfg


# The rules for evaluate_scene's arguments, which `trajpred evaluate` checks its flags with too.
EVALUATE_RULES = {
    "checkpoint": path_like,
    "data": path_like,
    "scene": text,
    "k": whole(0, MAX_K),
    "fps": between(0, MAX_FPS),  # 0: the tracks are at the model step already
    "fmt": choice("auto", *FORMATS),
    "calibration": choice("online", "fixed"),
    "kde_windows": whole(0),
}
EVALUATE_FLAGS = {**{n: f"--{n.replace('_', '-')}" for n in EVALUATE_RULES}, "fmt": "--format"}


def check_evaluate_arguments(flags: bool = False, **values) -> None:
    """`evaluate_scene`'s arguments by EVALUATE_RULES; ArgumentError (a ValueError and a
    TrajpredError) names the first bad one, as its flag with flags=True (`trajpred evaluate`)."""
    check_arguments(EVALUATE_RULES, values, EVALUATE_FLAGS if flags else None)


def evaluate_scene(
    checkpoint: str,
    data: str,
    scene: str,
    k: int = 20,
    fps: float = 0.0,
    fmt: str = "auto",
    calibration: str = "online",
    kde_windows: int = KDE_WINDOWS,
) -> SceneResult:
    """Evaluate a checkpoint on one scene: what `trajpred evaluate` runs (`trajpred.evaluate`).

    checkpoint: a .pt file, or a folder with one `<scene>.pt` per leave-one-out scene. data: an
    ETH/UCY root holding `<scene>/test/`, or track files (file, folder or glob) evaluated as one
    scene named `scene`. k: samples for best-of-K (0: deterministic only); fps: frame rate of
    video-rate track files (resampled to the model step); fmt: their format. calibration:
    "online" scores the radii r50/r90 as `predict` makes them (the stored calibration, then
    each step's recent errors on earlier windows of the same file), "fixed" the stored
    calibration alone. kde_windows: KDE-NLL (2000 samples per window) on that many windows drawn
    at random (0: on every window; univ's 24,334 take minutes). Distances are in the data's
    units (metres for ETH/UCY). Raises InputError for unusable files, ArgumentError (a
    ValueError) naming the argument for a bad value, by the rules `trajpred evaluate` applies.
    """
    check_evaluate_arguments(
        checkpoint=checkpoint,
        data=data,
        scene=scene,
        k=k,
        fps=fps,
        fmt=fmt,
        calibration=calibration,
        kde_windows=kde_windows,
    )
    checkpoint, data, fps = os.fspath(checkpoint), os.fspath(data), float(fps)
    k, kde_windows = int(k), int(kde_windows)
    path = checkpoint_for(checkpoint, scene)
    model, payload = load_forecaster_and_metadata(path)
    windows, cfg = scene_windows(model, data, scene, "test", fps, fmt)
    warn_if_uncalibrated(model, path)
    fc = forecast_on(model, windows, k, mixture=True)
    score = score_scene(scene, fc.mean, windows.fut_xy, windows.obs_xy, fc.samples, windows.units)
    reliability = score_uncertainty(
        score,
        windows,
        fc,
        calibration_for(model),
        online=calibration == "online",
        kde_windows=kde_windows,
    )
    trained = trained_files(payload, None if cfg.test_files else Path(cfg.root))
    seen = seen_test_files(split_files(cfg, "test"), trained)
    return SceneResult(score, windows, fc, path, seen, reliability)


ONLINE_DENSITY_GRID = np.exp(np.linspace(np.log(0.25), np.log(4.0), 25))  # x stored, ~12 % apart


def online_calibration(
    windows: Windows, fc: Forecasts, calibration: Calibration
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What an online calibration running through each file gives every window: (r50, r90)
    (N, pred_len) from an OnlineCalibration, and (N, pred_len) factors on the mixture's sigmas
    (on top of the stored sigma_scale) that maximise the likelihood of the same recent truths
    (a grid, ONLINE_DENSITY_GRID). Windows come in order of their last observed frame; a
    window's truth counts once its last future frame has passed (pred_len steps of the file's
    frame spacing); a window's radii and density use only the truths known when it was made."""
    assert fc.sigma is not None and fc.mixture is not None
    mix, truth = fc.mixture, windows.fut_xy.astype(np.float64)
    err = displacement_errors(fc.mean, truth)
    score = err / np.maximum(fc.sigma, 1e-9)
    log_density = np.stack(
        [
            mixture_log_density(truth, mix.mode_xy, mix.mode_prob, mix.mode_sigma * g)
            for g in ONLINE_DENSITY_GRID
        ],
        1,
    )  # (N, G, P)
    r50, r90 = np.zeros_like(err), np.zeros_like(err)
    density = np.ones_like(err)
    steps = np.arange(truth.shape[1])
    for f in np.unique(windows.file_index):
        rows = np.flatnonzero(windows.file_index == f)
        frames = np.unique(windows.frame_id[rows])
        spacing = np.diff(frames).min() if len(frames) > 1 else 1
        known_at = windows.frame_id[rows] + len(steps) * spacing
        by_known = rows[np.argsort(known_at, kind="stable")]
        known_sorted = np.sort(known_at, kind="stable")
        online, added = OnlineCalibration(calibration), 0
        recent_ll = np.zeros(log_density.shape[1:])  # (G, P) over the latest window of truths
        for i in rows[np.argsort(windows.frame_id[rows], kind="stable")]:
            ready = np.searchsorted(known_sorted, windows.frame_id[i], side="right")
            for j in by_known[added:ready]:
                online.add(steps, score[j])
                recent_ll += log_density[j]
            for j in by_known[max(0, added - online.window) : max(0, ready - online.window)]:
                recent_ll -= log_density[j]  # out of the window
            added = max(added, ready)
            r50[i], r90[i] = online.radii(fc.sigma[i])
            if min(added, online.window) >= online.min_scores:
                density[i] = ONLINE_DENSITY_GRID[recent_ll.argmax(0)]
    return r50, r90, density


def score_uncertainty(
    score: SceneScore,
    windows: Windows,
    fc: Forecasts,
    calibration: Calibration,
    seed: int = 0,
    batch: int = 64,
    online: bool = True,
    kde: bool = True,
    kde_windows: int = 0,
) -> Reliability:
    """Fill `score`'s uncertainty fields from forecasts made with mixture=True, and return the
    per-step coverages behind them. Constant velocity is scored with the calibration's
    cv_sigma Gaussian when it was fitted in the windows' units. online: the radii of an
    OnlineCalibration that learns from each file's earlier windows as `predict` does, and the
    mixture's density rescaled on the same truths (`online_calibration`), else the stored
    calibration's. kde=False skips what needs samples of the mixture (KDE-NLL, the mixture's
    own reliability curve): the slow part; kde_windows > 0 computes them on that many windows
    drawn at random (0: on every window)."""
    assert fc.mixture is not None and fc.r50 is not None and fc.r90 is not None
    truth, mix = windows.fut_xy.astype(np.float64), fc.mixture
    steps = truth.shape[1]
    cv_xy = constant_velocity(windows.obs_xy, steps)
    cv_sigma = (
        np.asarray(calibration.cv_sigma)
        if calibration.cv_sigma and calibration.units == windows.units
        else None
    )
    radii = [fc.r50, fc.r90]
    if online:
        *radii, density = online_calibration(windows, fc, calibration)
        mix = dataclasses.replace(mix, mode_sigma=mix.mode_sigma * density[:, None, :])
    rng = np.random.default_rng(seed)
    err = displacement_errors(fc.mean, truth)  # (N, P)
    kde_sum, cv_kde = 0.0, 0.0
    inside = np.zeros((len(RELIABILITY_LEVELS), steps))
    sampled = np.arange(len(truth)) if kde else np.zeros(0, np.int64)
    if kde_windows and len(sampled) > kde_windows:  # a random subset, the same every run
        sampled = np.sort(rng.choice(len(truth), kde_windows, replace=False))
    for start in range(0, len(sampled), batch):
        part = sampled[start : start + batch]
        draws = sample_mixture(mix.mode_xy[part], mix.mode_prob[part], mix.mode_sigma[part],
                               KDE_SAMPLES, rng)  # fmt: skip
        kde_sum += kde_nll(draws, truth[part]) * len(draws)
        # the circle centred on the forecast that holds each level of the draws
        spread = np.linalg.norm(draws - fc.mean[part][:, None], axis=-1)  # (B, S, P)
        radius = np.quantile(spread, RELIABILITY_LEVELS, axis=1)  # (L, B, P)
        inside += (err[part][None] <= radius).sum(1)
        if cv_sigma is not None:
            noise = rng.standard_normal((len(draws), KDE_SAMPLES, steps, 2))
            cv_draws = cv_xy[part][:, None] + noise * cv_sigma[:, None]
            cv_kde += kde_nll(cv_draws, truth[part]) * len(draws)
    n = max(len(sampled), 1)
    calibrated = np.stack([coverage(fc.mean, truth, r) for r in radii])
    score.nll = float(
        -mixture_log_density(truth, mix.mode_xy, mix.mode_prob, mix.mode_sigma).mean()
    )
    score.kde_nll = kde_sum / n if kde else None
    score.cov50, score.cov90 = (float(c.mean()) for c in calibrated)
    if fc.samples is not None and windows.units == "m":
        score.miss_rate = miss_rate(fc.samples, truth, 2.0)
    cv = None
    if cv_sigma is not None:
        cv_err = displacement_errors(cv_xy, truth)
        cv = np.stack([(cv_err <= gaussian_radius(p) * cv_sigma).mean(0) for p in LEVELS])
        score.cv_nll = float(-gaussian_log_density(truth, cv_xy, cv_sigma).mean())
        score.cv_kde_nll = cv_kde / n if kde else None
        score.cv_cov50, score.cv_cov90 = (float(c.mean()) for c in cv)
    return Reliability(calibrated, inside / n if kde else None, cv)


def calibrate_on(
    model, windows: Windows, source: str = "", fc: Forecasts | None = None
) -> Calibration:
    """A Calibration of `model` fitted on `windows` it was not trained on (their futures are
    the labels): see trajpred/calibration.py. fc: the model's forecasts of those windows with
    their mixture, when the caller has them already (else they are made here)."""
    if fc is None:
        fc = forecast_on(model, windows, mixture=True, calibration=gaussian(model.cfg.pred_len))
    assert fc.mixture is not None and fc.sigma is not None
    return fit_calibration(
        windows.fut_xy.astype(np.float64),
        fc.mean.astype(np.float64),
        fc.sigma.astype(np.float64),
        fc.mixture.mode_xy.astype(np.float64),
        fc.mixture.mode_prob.astype(np.float64),
        fc.mixture.mode_sigma.astype(np.float64),
        constant_velocity(windows.obs_xy, windows.fut_xy.shape[1]),
        source=source,
        units=windows.units,
    )


def summary_rows(results: list[SceneResult]) -> list[SceneScore]:
    rows = [r.score for r in results]
    return rows + [average_row(rows)] if len(rows) > 1 else rows


def calibrate_checkpoint(
    checkpoint: str,
    data: str,
    scene: str,
    out: str | os.PathLike,
    split: str = "val",
    fps: float = 0.0,
    fmt: str = "auto",
) -> str:
    """Fit the calibration of `checkpoint` (file, or folder of <scene>.pt) on one scene's
    split and save the checkpoint with it at `out` (atomically); returns a one-line report of
    the coverage of r50/r90 on those windows before and after."""
    from .checkpoint import load_checkpoint, model_from_payload, save_checkpoint

    path = checkpoint_for(checkpoint, scene)
    payload = load_checkpoint(path)
    model = model_from_payload(payload, path)
    windows, cfg = scene_windows(model, data, scene, split, fps, fmt)
    what = "every window of the track files" if cfg.test_files else f"{split} split"
    before = forecast_on(model, windows, mixture=True, calibration=gaussian(model.cfg.pred_len))
    calibration = calibrate_on(model, windows, f"{scene}, {what}: {len(windows)} windows", before)
    r50, r90 = calibration.radii(before.sigma)
    save_checkpoint(out, {**payload, "calibration": calibration.to_dict()})

    def inside(r) -> str:
        return f"{100 * coverage(before.mean, windows.fut_xy, r).mean():.1f} %"

    return (
        f"{out}: calibrated on {scene} ({what}, {len(windows)} windows): true positions "
        f"inside r50 {inside(before.r50)} -> {inside(r50)}, inside r90 {inside(before.r90)} "
        f"-> {inside(r90)}"
    )


def write_predictions(path: str | os.PathLike, results: list[SceneResult]) -> None:
    """CSV `file,frame,track_id,step,x,y` of every window's deterministic forecast (step 1-based,
    frame = the last observed frame id)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PREDICTION_HEADER)
    for r in results:
        w, mean = r.windows, r.forecasts.mean
        for i in range(len(w)):
            name = w.files[w.file_index[i]]
            for step in range(mean.shape[1]):
                writer.writerow(
                    [
                        name,
                        int(w.frame_id[i]),
                        int(w.track_id[i]),
                        step + 1,
                        f"{mean[i, step, 0]:.4f}",
                        f"{mean[i, step, 1]:.4f}",
                    ]
                )
    write_text(path, buf.getvalue())


def plot_reliability(axes, results: list[SceneResult]) -> None:
    """One reliability diagram per scene (as many as there are axes): observed against nominal
    coverage of circles centred on the forecast, per forecast step (light to dark: step 1 to
    pred_len) for the predictive mixture's own circles (lines) and the calibrated r50, r90
    (dots); constant velocity's Gaussian as crosses."""
    import matplotlib.pyplot as plt

    nominal = np.array(RELIABILITY_LEVELS)
    for ax, r in zip(axes, results, strict=False):
        rel = r.reliability
        if rel is None:
            ax.axis("off")
            continue
        steps = rel.calibrated.shape[1]
        colours = plt.cm.viridis(np.linspace(0.9, 0.1, steps))
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        for t in range(steps):
            if rel.mixture is not None:
                ax.plot(nominal, rel.mixture[:, t], color=colours[t], lw=0.8)
            ax.scatter(LEVELS, rel.calibrated[:, t], color=colours[t], s=10, zorder=3)
            if rel.cv is not None:
                ax.scatter(LEVELS, rel.cv[:, t], color=colours[t], marker="x", s=10)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.set_xlabel("nominal", fontsize=7), ax.set_ylabel("observed", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_title(f"{r.score.scene}: coverage per step", fontsize=8)
    for ax in axes[len(results) :]:
        ax.axis("off")


def plot_forecasts(
    path: str | os.PathLike, results: list[SceneResult], per_scene: int = 6, seed: int = 0
) -> None:
    """PNG grid: observed (black), future (green), forecast (red), best-of-K samples (blue); a
    last row of reliability diagrams (`plot_reliability`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_path

    rng = np.random.default_rng(seed)
    rows = len(results) + 1  # the last row: reliability diagrams
    fig, axes = plt.subplots(rows, per_scene, figsize=(2.6 * per_scene, 2.6 * rows), squeeze=False)
    plot_reliability(axes[-1], results)
    for row, r in zip(axes, results, strict=False):
        moving = np.flatnonzero(
            np.linalg.norm(r.windows.fut_xy[:, -1] - r.windows.obs_xy[:, -1], axis=-1) > 1.0
        )
        pool = moving if len(moving) >= per_scene else np.arange(len(r.windows))
        picks = rng.choice(pool, size=min(per_scene, len(pool)), replace=False)
        for ax, i in zip(row, picks, strict=False):
            if r.forecasts.samples is not None:
                for s in r.forecasts.samples[i]:
                    ax.plot(
                        *np.r_[r.windows.obs_xy[i, -1:], s].T, color="tab:blue", alpha=0.25, lw=0.8
                    )
            ax.plot(*r.windows.obs_xy[i].T, "k.-", lw=1.2)
            ax.plot(*np.r_[r.windows.obs_xy[i, -1:], r.windows.fut_xy[i]].T, "g.-", lw=1.2)
            ax.plot(*np.r_[r.windows.obs_xy[i, -1:], r.forecasts.mean[i]].T, "r.-", lw=1.2)
            ax.set_aspect("equal", "datalim")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{r.score.scene} id {r.windows.track_id[i]}", fontsize=8)
        for ax in row[len(picks) :]:
            ax.axis("off")
    fig.suptitle(
        "black: observed, green: truth, red: forecast, blue: samples; last row: coverage "
        "(lines: mixture, dots: calibrated r50/r90, crosses: CV)",
        fontsize=9,
    )
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
    finally:
        plt.close(fig)
