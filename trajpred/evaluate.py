"""Evaluation: a checkpoint's ADE/FDE (and best-of-K) per scene, beside constant velocity.

Windows follow the benchmark protocol of trajpred/windows.py (8 + 12 steps, stride 1, every
agent present in all frames, no minimum number of agents per window).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import write_text
from .checkpoint import load_forecaster
from .data import DataConfig, load_split
from .errors import InputError
from .forecast import Forecasts, forecast_windows
from .metrics import SceneScore, average_row, score_scene
from .windows import Windows

ETH_UCY_SCENES = ("eth", "hotel", "univ", "zara1", "zara2")
PREDICTION_HEADER = ["file", "frame", "track_id", "step", "x", "y"]


@dataclass
class SceneResult:
    """One scene's windows, forecasts and scores."""

    score: SceneScore
    windows: Windows
    forecasts: Forecasts


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


def evaluate_scene(
    checkpoint: str, data: str, scene: str, k: int = 20, fps: float = 0.0, fmt: str = "auto"
) -> SceneResult:
    path = checkpoint_for(checkpoint, scene)
    model = load_forecaster(path)
    cfg = data_config_for(data, scene, fps, fmt)
    windows, _ = load_split(
        cfg,
        "test",
        model.cfg.obs_len,
        model.cfg.pred_len,
        model.cfg.dt_s,
        model.cfg.social_neighbours,
    )
    if len(windows) == 0:
        raise InputError(
            data, f"scene '{scene}' has no window of {model.cfg.obs_len + model.cfg.pred_len} steps"
        )
    fc = forecast_windows(
        model,
        windows.obs_xy,
        windows.obs_box_wh,
        k=k,
        nbr_xy=windows.nbr_xy,
        nbr_mask=windows.nbr_mask,
    )
    score = score_scene(scene, fc.mean, windows.fut_xy, windows.obs_xy, fc.samples, windows.units)
    return SceneResult(score, windows, fc)


def summary_rows(results: list[SceneResult]) -> list[SceneScore]:
    rows = [r.score for r in results]
    return rows + [average_row(rows)] if len(rows) > 1 else rows


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


def plot_forecasts(
    path: str | os.PathLike, results: list[SceneResult], per_scene: int = 6, seed: int = 0
) -> None:
    """PNG grid: observed (black), future (green), forecast (red), best-of-K samples (blue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_path

    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        len(results), per_scene, figsize=(2.6 * per_scene, 2.6 * len(results)), squeeze=False
    )
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
    fig.suptitle("black: observed, green: truth, red: forecast, blue: samples", fontsize=9)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
    finally:
        plt.close(fig)
