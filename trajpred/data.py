"""Training and evaluation data: track files -> train/val/test Windows.

Two layouts:
- ETH/UCY leave-one-scene-out (`root/<test_scene>/{train,val,test}/*.txt`, see
  ../shared/data/eth_ucy/README.md);
- explicit file lists (`train_files`, `val_files`, `test_files`; globs allowed) in any format
  `trajpred.formats.read_tracks` reads: ETH/UCY text, MOTChallenge gt.txt, our CSV (for example
  tracks exported by `trajpred track`). Without `val_files`, the last `val_fraction` of each
  training file's frames is held out for validation. With `ground_plane`, CSV files are read
  by their wx, wy columns (metres on the ground, from `trajpred track --homography`).
Video-rate tracks (`fps` > 0) are resampled to the model's step `dt_s` first.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import between, check_fields, non_empty, one_of
from .errors import InputError, TrajpredError
from .formats import FORMATS, read_tracks
from .tracks import Tracks
from .video import MAX_FPS
from .windows import Windows, make_windows, resample_tracks

SPLITS = ("train", "val", "test")


@dataclass
class DataConfig:
    root: str = "../shared/data/eth_ucy"  # ETH/UCY split folder (used when no *_files given)
    test_scene: str = "eth"  # eth | hotel | univ | zara1 | zara2
    train_files: list[str] = field(default_factory=list)
    val_files: list[str] = field(default_factory=list)
    test_files: list[str] = field(default_factory=list)
    format: str = "auto"  # auto | eth_ucy | mot | csv
    ignore_zero_conf: bool = True  # MOT gt.txt: drop rows marked 0 (ignored / not pedestrians)
    ground_plane: bool = False  # CSV: train on the wx, wy columns (metres, `track --homography`)
    fps: float = 0.0  # >0: tracks are at this frame rate; resample to dt_s
    val_fraction: float = 0.2
    stride: int = 1

    def __post_init__(self) -> None:
        check_fields(
            self,
            test_scene=non_empty,
            format=one_of("auto", *FORMATS),
            fps=between(0, MAX_FPS),  # 0: the tracks are at the model step already
            val_fraction=between(0, 1, low_open=True, high_open=True),
            stride=between(1),
        )


@dataclass
class SplitReport:
    """What was read for one split: files, windows, and tracks too short to make a window."""

    split: str
    files: list[str]
    windows: int
    tracks: int
    short_tracks: int

    def line(self) -> str:
        return (
            f"{self.split}: {len(self.files)} files, {self.tracks} tracks, {self.windows} windows"
            f" ({self.short_tracks} tracks shorter than one window skipped)"
        )


def _expand(patterns: list[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise InputError(pattern, "no files match")
        files.extend(matches)
    return files


def split_files(cfg: DataConfig, split: str) -> list[str]:
    """The files of one split, checked to exist."""
    explicit = {"train": cfg.train_files, "val": cfg.val_files, "test": cfg.test_files}[split]
    if cfg.train_files or cfg.test_files or cfg.val_files:
        files = _expand(explicit)
    else:
        folder = Path(cfg.root) / cfg.test_scene / split
        if not folder.is_dir():
            raise InputError(
                folder,
                f"no such folder (data.root/{cfg.test_scene}/{split}); "
                "set data.root or data.train_files",
            )
        files = sorted(str(p) for p in folder.iterdir() if p.suffix in (".txt", ".csv"))
        if not files:
            raise InputError(folder, "holds no track files")
    for f in files:
        if not os.path.isfile(f):
            raise InputError(f, "file not found")
    return files


def _hold_out(tracks: Tracks, fraction: float, keep_last: bool) -> Tracks:
    frames = tracks.frames()
    cut = frames[int(len(frames) * (1 - fraction))] if len(frames) else 0
    return tracks.select(tracks.frame_id >= cut if keep_last else tracks.frame_id < cut)


def load_tracks(path: str, cfg: DataConfig, frames_per_step: float | None) -> Tracks:
    tracks = read_tracks(
        path, cfg.format, ignore_zero_conf=cfg.ignore_zero_conf, ground_plane=cfg.ground_plane
    )
    if frames_per_step:
        tracks = resample_tracks(tracks, frames_per_step)
    return tracks


def load_split(
    cfg: DataConfig, split: str, obs_len: int, pred_len: int, dt_s: float, neighbours: int = 0
) -> tuple[Windows, SplitReport]:
    """Windows of one split (with `neighbours` nearest agents each) and a report of what was
    read."""
    if split not in SPLITS:
        raise TrajpredError(f"unknown split '{split}'")
    held_out = split == "val" and not cfg.val_files and (cfg.train_files or cfg.test_files)
    files = split_files(cfg, "train" if held_out else split)
    frames_per_step = cfg.fps * dt_s if cfg.fps > 0 else None
    parts, n_tracks, n_short = [], 0, 0
    for path in files:
        tracks = load_tracks(path, cfg, frames_per_step)
        if cfg.train_files and not cfg.val_files and split in ("train", "val"):
            tracks = _hold_out(tracks, cfg.val_fraction, keep_last=(split == "val"))
        w = make_windows(tracks, obs_len, pred_len, cfg.stride, neighbours)
        lengths = (  # rows per track
            np.bincount(np.unique(tracks.track_id, return_inverse=True)[1])
            if len(tracks)
            else np.zeros(0, np.int64)
        )
        n_tracks += len(lengths)
        n_short += int(np.sum(np.asarray(lengths) < obs_len + pred_len))
        w.files = [os.path.basename(path)]
        parts.append(w)
    windows = Windows.concat(parts)
    return windows, SplitReport(split, files, len(windows), n_tracks, n_short)
