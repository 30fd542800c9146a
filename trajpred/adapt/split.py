"""The adaptation's data: the tracker's tracks (mapped to the ground plane as live), cut in time
(the held-out last part, the cross-validation's blocks) and into windows at the model's step;
the history length that leaves enough windows on both sides of the cut.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import TrajpredError
from ..tracks import Tracks
from ..windows import Windows, make_windows, resample_tracks
from .config import OBS_LENS, AdaptConfig


def live_ground_tracks(tracks: Tracks, homography, fps: float, dt_s: float, forecast=None):
    """Pixel tracks -> the ground-plane tracks (metres) that `predict --homography` feeds the
    forecaster: mapped and Kalman-filtered as live (trajpred/ground_filter.py), with the
    filter settings of `forecast` (a ForecastConfig; None: the defaults)."""
    from ..geometry import GroundPlane
    from ..ground_filter import ground_tracks
    from ..pipeline import ForecastConfig

    forecast = forecast or ForecastConfig()
    return ground_tracks(
        tracks,
        GroundPlane(homography, forecast.homography or "homography"),
        fps,
        forecast.ground_noise_px,
        forecast.restart_after_frames(fps, dt_s),
    )


def split_in_time(tracks: Tracks, val_fraction: float) -> tuple[Tracks, Tracks]:
    """(earlier part, last `val_fraction` of the distinct frames): no window crosses the cut."""
    frames = tracks.frames()
    if len(frames) == 0:
        return tracks, tracks
    cut = frames[min(len(frames) - 1, int(len(frames) * (1 - val_fraction)))]
    return tracks.select(tracks.frame_id < cut), tracks.select(tracks.frame_id >= cut)


def time_blocks(tracks: Tracks, folds: int) -> np.ndarray:
    """(N,) the time block (0..folds-1) of each row: `folds` consecutive runs of the distinct
    frames."""
    frames = tracks.frames()
    if len(frames) == 0:
        return np.zeros(0, np.int64)
    edges = np.array([frames[int(i * len(frames) / folds)] for i in range(1, folds)])
    return np.searchsorted(edges, tracks.frame_id, side="right")


def camera_windows(
    tracks: Tracks,
    fps: float,
    dt_s: float,
    obs_len: int,
    pred_len: int,
    neighbours: int,
    phases: int = 1,
) -> Windows:
    """Video-rate tracks -> windows of obs_len + pred_len samples, dt_s apart. phases > 1 also
    samples the tracks from `phases` start frames within one dt_s step (frame offsets), so
    windows start every few video frames instead of every dt_s."""
    parts = []
    for offset in phase_offsets(fps * dt_s, phases):
        shifted = dataclasses.replace(tracks, frame_id=tracks.frame_id + offset)
        w = make_windows(resample_tracks(shifted, fps * dt_s), obs_len, pred_len, 1, neighbours)
        w.frame_id = w.frame_id - offset
        parts.append(w)
    return parts[0] if len(parts) == 1 else Windows.concat(parts)


def phase_offsets(frames_per_step: float, phases: int) -> list[int]:
    """Distinct whole-frame offsets spreading `phases` samplings over one step."""
    return sorted({int(round(i * frames_per_step / phases)) for i in range(phases)})


def too_few(what: str, found: int, needed: int, obs_len: int, pred_len: int, dt_s: float):
    """The start of the refusal for footage with too few windows of one kind."""
    seq = obs_len + pred_len
    return (
        f"too few windows to adapt: {found} {what} windows found, {needed} needed (a window is "
        f"a track followed for {obs_len} + {pred_len} samples of {dt_s:g} s = "
        f"{seq * dt_s:.1f} s; use longer footage"
    )


def check_windows(tracks: Tracks, fps: float, cfg: AdaptConfig, start) -> tuple[int, str]:
    """(history length, how it was chosen); refuses footage with too few windows before
    anything is trained or written. With cfg.obs_len == 0 the longest of OBS_LENS that gives
    enough training and held-out windows is taken (counted at one phase: windows of other
    phases overlap these)."""
    mc = start.cfg
    train, val = split_in_time(tracks, cfg.val_fraction)
    counts = {}
    for obs_len in [cfg.obs_len] if cfg.obs_len else OBS_LENS:
        n_train = len(camera_windows(train, fps, mc.dt_s, obs_len, mc.pred_len, 0))
        n_val = len(camera_windows(val, fps, mc.dt_s, obs_len, mc.pred_len, 0))
        counts[obs_len] = (n_train, n_val)
        if n_train >= cfg.min_train_windows and n_val >= cfg.min_val_windows:
            if cfg.obs_len:
                return obs_len, "given"
            if obs_len == OBS_LENS[0]:
                return obs_len, "automatic: the default"
            longer = ", ".join(
                f"{n}: {t} training / {v} held-out windows"
                for n, (t, v) in counts.items()
                if n != obs_len
            )
            return obs_len, f"automatic: longer histories gave too few windows ({longer})"
    obs_len = min(counts)
    n_train, n_val = counts[obs_len]
    if n_train < cfg.min_train_windows:
        raise TrajpredError(
            too_few("training", n_train, cfg.min_train_windows, obs_len, mc.pred_len, mc.dt_s)
            + (" or a shorter --obs-len)" if obs_len > 2 else ")")
        )
    raise TrajpredError(
        too_few("held-out", n_val, cfg.min_val_windows, obs_len, mc.pred_len, mc.dt_s)
        + " or a larger --val-fraction)"
    )
