"""The scene prior (`ForecasterConfig.scene_prior_size`): no training; the model remembers every
window of the footage (where it stood, its velocity, and how its future departed from
constant velocity in its heading frame) and blends into its forecast the mean departure of
the `prior_k` remembered windows nearest in (position, velocity), with a weight chosen by
the cross-validation (trajpred/adapt/crossval.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..tracks import Tracks
from ..windows import Windows

PRIOR_WEIGHTS = tuple(np.round(np.linspace(0, 1, 11), 2).tolist())


def scene_bounds(tracks: Tracks) -> list[float]:
    """x_min, y_min, x_max, y_max of the positions (1st-99th percentile, 5 % margin)."""
    lo, hi = np.percentile(tracks.xy, 1, axis=0), np.percentile(tracks.xy, 99, axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-3)
    return [float(v) for v in (*(lo - pad), *(hi + pad))]


def with_scene(model, bounds: list[float], units: str, classes: list[int]):
    """`model` told the scene's bounds (for a scene prior) without a scene branch."""
    from ..model import Forecaster

    cfg = dataclasses.replace(
        model.cfg, scene_bounds=bounds, scene_units=units, scene_classes=classes
    )
    out = Forecaster(cfg)
    out.load_state_dict(model.state_dict())
    return out.eval()


def prior_bank(model_cfg, windows: Windows) -> tuple:
    """(keys (N, 4), corrections (N, pred_len, 2)) of a scene prior remembering `windows`: where
    each window's track stood and how fast it went (model.prior_keys), and how its future
    departed from constant velocity (heading frame, model units). model_cfg gives the scene
    bounds and the normalisation."""
    import torch

    from ..features import to_heading_frame
    from ..forecast import window_inputs
    from ..model import prior_keys

    cfg = dataclasses.replace(  # reads the scene vector, not the neighbours
        model_cfg, social_neighbours=0, scene_prior_size=max(1, model_cfg.scene_prior_size)
    )
    holder = type("Cfg", (), {"cfg": cfg})()
    obs = torch.as_tensor(windows.obs_xy)
    box = None if windows.obs_box_wh is None else torch.as_tensor(windows.obs_box_wh)
    with torch.no_grad():
        inputs, heading, scale = window_inputs(
            holder, obs, box, class_id=torch.as_tensor(windows.class_id)
        )
        speed, scene = inputs[1], inputs[4]
        target = to_heading_frame(torch.as_tensor(windows.fut_xy), obs[:, -1], heading, scale)
        k = torch.arange(1, windows.pred_len + 1, dtype=target.dtype)
        cv = torch.stack([speed[:, None] * k, torch.zeros_like(speed[:, None] * k)], -1)
        return prior_keys(scene, speed), target - cv


def with_prior(model, keys, corrections, k: int, weight: float):
    """`model` (scene bounds set) whose deterministic forecast is blended with a scene prior."""
    from ..model import Forecaster

    cfg = dataclasses.replace(
        model.cfg, scene_prior_size=len(keys), scene_prior_k=k, scene_prior_weight=weight
    )
    out = Forecaster(cfg)
    state = {**model.state_dict(), "prior_keys": keys, "prior_corrections": corrections}
    out.load_state_dict(state)
    return out.eval()


def choose_weight(model_xy, prior_xy, fut_xy, rows=None) -> float:
    """The prior weight (of PRIOR_WEIGHTS) with the lowest ADE + FDE on `rows` of the windows."""
    from ..metrics import ade, fde

    rows = np.arange(len(fut_xy)) if rows is None else rows
    best, best_w = np.inf, 0.0
    for w in PRIOR_WEIGHTS:
        pred = (1 - w) * model_xy[rows] + w * prior_xy[rows]
        err = ade(pred, fut_xy[rows]).mean() + fde(pred, fut_xy[rows]).mean()
        if err < best - 1e-9:
            best, best_w = err, w
    return best_w


def has_prior(model) -> bool:
    """Whether `model` blends in a scene prior."""
    return model.cfg.scene_prior_size > 0
