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
import glob
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_text
from .checkpoint import load_forecaster_and_metadata
from .config import ConfigError, from_dict
from .data import DataConfig, load_split, split_files
from .errors import InputError
from .forecast import Forecasts, forecast_on
from .metrics import SceneScore, average_row, score_scene
from .paths import PACKAGE_ROOT
from .windows import Windows

ETH_UCY_SCENES = ("eth", "hotel", "univ", "zara1", "zara2")
PREDICTION_HEADER = ["file", "frame", "track_id", "step", "x", "y"]


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


def evaluate_scene(
    checkpoint: str, data: str, scene: str, k: int = 20, fps: float = 0.0, fmt: str = "auto"
) -> SceneResult:
    """Evaluate a checkpoint on one scene: what `trajpred evaluate` runs (`trajpred.evaluate`).

    checkpoint: a .pt file, or a folder with one `<scene>.pt` per leave-one-out scene. data: an
    ETH/UCY root holding `<scene>/test/`, or track files (file, folder or glob) evaluated as one
    scene named `scene`. k: samples for best-of-K (0: deterministic only); fps: frame rate of
    video-rate track files (resampled to the model step); fmt: their format. Distances are in
    the data's units (metres for ETH/UCY). Raises InputError for unusable files.
    """
    path = checkpoint_for(checkpoint, scene)
    model, payload = load_forecaster_and_metadata(path)
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
    fc = forecast_on(model, windows, k)
    score = score_scene(scene, fc.mean, windows.fut_xy, windows.obs_xy, fc.samples, windows.units)
    trained = trained_files(payload, None if cfg.test_files else Path(cfg.root))
    return SceneResult(score, windows, fc, path, seen_test_files(split_files(cfg, "test"), trained))


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
