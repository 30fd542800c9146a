"""Cross-validation in time: the footage in `folds` blocks, each block forecast by every arm
from what was learnt without it (fine-tunes that left it out, a prior remembering the other
blocks), so the candidates adapt could ship are scored on all of the footage.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..windows import Windows
from .finetune import Run, finetune, weight_average
from .prior import choose_weight, prior_bank, with_prior
from .split import camera_windows, time_blocks


def left_out(folds: int, average: bool) -> list[tuple[int, ...]]:
    """The blocks each fine-tune of the cross-validation leaves out: one each (the fine-tuned
    candidate) and, averaging, every pair (the averaged one). A block is forecast by the
    fine-tunes that left it out."""
    singles: list[tuple[int, ...]] = [(i,) for i in range(folds)]
    return singles + (list(itertools.combinations(range(folds), 2)) if average else [])


def mean_forecast(model, w: Windows) -> np.ndarray:
    """(N, pred_len, 2) deterministic forecasts of `model` on the windows."""
    from ..forecast import forecast_on

    return forecast_on(model, w).mean


def window_errors(xy: np.ndarray, fut: np.ndarray) -> np.ndarray:
    """(N, 2) ADE and FDE of each window's forecast `xy` against its future `fut`."""
    from ..metrics import ade, fde

    return np.stack([ade(xy, fut), fde(xy, fut)], 1)


def cross_validate(tracks, start, scene_start, tuned_start, run: Run, work_dir, epochs):
    """Forecasts of every arm for every window of the footage, each made by what was learnt
    without its time block: dict arm -> (N, pred_len, 2), plus the windows' futures
    (N, pred_len, 2), fold index and track ids; and the fine-tunes that left out two blocks
    (averaging; see `left_out`)."""
    from ..metrics import constant_velocity

    mc, cfg = start.cfg, run.cfg
    block_of = time_blocks(tracks, cfg.folds)
    windows = [
        camera_windows(
            tracks.select(block_of == i), run.fps, mc.dt_s, run.obs_len, mc.pred_len,
            mc.social_neighbours,
        )
        for i in range(cfg.folds)
    ]  # fmt: skip
    tuned: dict[tuple[int, ...], object] = {}
    for out_blocks in left_out(cfg.folds, cfg.average) if cfg.finetune and epochs > 0 else []:
        if not any(len(windows[i]) for i in out_blocks):
            continue  # forecasts nothing (and fit needs held-out windows to log)
        out = np.isin(block_of, out_blocks)
        tuned[out_blocks], _ = finetune(
            tuned_start,
            tracks.select(~out),
            tracks.select(out),
            run,
            work_dir / f"fold{''.join(map(str, out_blocks))}",
            epochs,
        )
    pooled: dict[str, list] = {"fut": [], "fold": [], "track": [], "cv": []}
    for i, w in enumerate(windows):
        if len(w) == 0:
            continue
        preds = {"cv": constant_velocity(w.obs_xy, w.pred_len), "start": mean_forecast(start, w)}
        if cfg.prior:
            rest = tracks.select(block_of != i)
            bank_w = camera_windows(rest, run.fps, mc.dt_s, 2, mc.pred_len, 0, cfg.phases)
            keys, corrections = prior_bank(scene_start.cfg, bank_w)
            prior = with_prior(scene_start, keys, corrections, cfg.prior_k, 1.0)
            preds["prior"] = mean_forecast(prior, w)
        if tuned:
            preds["tuned"] = mean_forecast(tuned[(i,)], w)
        without_i = [m for out, m in tuned.items() if len(out) == 2 and i in out]
        if without_i:
            preds["averaged"] = mean_forecast(weight_average(without_i), w)
        for key, xy in preds.items():
            pooled.setdefault(key, []).append(xy)
        pooled["fut"].append(w.fut_xy)
        pooled["fold"].append(np.full(len(w), i))
        pooled["track"].append(w.track_id)
    pairs = [m for out_blocks, m in tuned.items() if len(out_blocks) == 2]
    return {k: np.concatenate(v) for k, v in pooled.items() if v}, pairs


def blend_across_folds(model_xy, prior_xy, fut, fold) -> tuple[np.ndarray, float]:
    """(blend of each fold with the prior weight chosen on the other folds, the weight chosen
    on all of them)."""
    out = np.empty_like(model_xy)
    for f in np.unique(fold):
        w = choose_weight(model_xy, prior_xy, fut, np.flatnonzero(fold != f))
        rows = fold == f
        out[rows] = (1 - w) * model_xy[rows] + w * prior_xy[rows]
    return out, choose_weight(model_xy, prior_xy, fut)


CANDIDATES = {  # candidate -> (model forecasts in the cross-validation, blended with the prior)
    "fine-tuned": ("tuned", False),
    "fine-tuned, averaged": ("averaged", False),
    "starting model + prior": ("start", True),
    "fine-tuned + prior": ("tuned", True),
    "fine-tuned, averaged + prior": ("averaged", True),
}


def candidates(pooled: dict) -> dict[str, tuple[np.ndarray, float]]:
    """arm -> (cross-validated forecasts, prior weight) of what adapt could ship."""
    fut, fold = pooled["fut"], pooled["fold"]
    found = {}
    for name, (base, prior) in CANDIDATES.items():
        if base not in pooled or (prior and "prior" not in pooled):
            continue
        if prior:
            found[name] = blend_across_folds(pooled[base], pooled["prior"], fut, fold)
        elif base != "start":
            found[name] = (pooled[base], 0.0)
    return found
