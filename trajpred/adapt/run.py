"""`adapt`: the whole adaptation of one camera, from its tracks to the report and the payload
of adapted.pt (the candidates built, cross-validated, guarded, calibrated).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..tracks import Tracks
from .calibrate import calibrate_camera
from .config import AdaptConfig
from .crossval import CANDIDATES, candidates, cross_validate, window_errors
from .finetune import Run, finetune, load_start, weight_average, with_scene_input
from .guard import judge
from .prior import has_prior, prior_bank, scene_bounds, with_prior, with_scene
from .report import AdaptReport, ArmScore, plain
from .split import camera_windows, check_windows, phase_offsets, split_in_time


def adapt(
    tracks: Tracks,
    fps: float,
    work_dir: Path,
    cfg: AdaptConfig,
    progress: bool = True,
    log=print,
    arms: dict | None = None,
) -> tuple[AdaptReport, dict]:
    """Adapt cfg.checkpoint to `tracks` (one camera, `fps` frames per second); training files
    go to work_dir. Returns the report and the checkpoint payload to save as adapted.pt.

    The candidates (fine-tuned weights, the starting model + scene prior, fine-tuned + prior)
    are scored by cross-validation in time: the footage is cut into cfg.folds blocks, and each
    block is forecast by what was learnt without it (fine-tuning for as many epochs as early
    stopping chose on the last val_fraction, the weights averaged over the fine-tunes that left
    it out with cfg.average; the prior remembering the other blocks' windows, its weight chosen
    on the other blocks). The candidate with the lowest ADE + FDE
    ships if it beats the starting model on both and, resampling tracks (bootstrap), is at
    most cfg.max_regression worse with cfg.confidence; else adapted.pt is the starting model.

    `arms`, when given, receives every candidate as it would ship, whatever the guard decided
    (for ablations), named as in CANDIDATES."""
    from ..config import to_dict
    from ..pipeline import check_scene_units

    t0 = time.perf_counter()
    start_payload, start = load_start(cfg.checkpoint)
    check_scene_units(start, tracks.units == "m", cfg.checkpoint)
    mc = start.cfg
    obs_len, obs_len_how = check_windows(tracks, fps, cfg, start)
    train, val = split_in_time(tracks, cfg.val_fraction)
    train_w = camera_windows(train, fps, mc.dt_s, obs_len, mc.pred_len, 0)
    classes = sorted({int(c) for c in np.asarray(train.class_id) if c >= 0})
    classes = classes if cfg.class_input and len(classes) > 1 else []
    bounds, units = scene_bounds(tracks), tracks.units
    scene_start = with_scene(start, bounds, units, classes)
    tuned_start = (
        with_scene_input(start, bounds, units, classes, cfg.seed) if cfg.scene_input else start
    )
    tuned_start.cfg = dataclasses.replace(tuned_start.cfg, obs_len=obs_len)
    run = Run(fps, cfg, obs_len, phase_offsets(fps * mc.dt_s, cfg.phases), progress, log)
    tuned, best_payload, epochs = None, {}, 0
    if cfg.finetune:
        tuned, best_payload = finetune(tuned_start, train, val, run, work_dir)
        epochs = int(best_payload.get("epoch", 0))
    pooled, pairs = cross_validate(tracks, start, scene_start, tuned_start, run, work_dir, epochs)
    averaged = weight_average(pairs) if pairs else None  # each window seen by some members
    found = candidates(pooled)
    fut = pooled["fut"]

    def arm(name, xy):
        e = window_errors(xy, fut).mean(0)
        return ArmScore(name, float(e[0]), float(e[1]))

    verdict = judge(pooled, found, cfg)
    scores = [arm("constant velocity", pooled["cv"]), arm("starting model", pooled["start"])]
    scores += [arm("adapted model", verdict.xy)] + [arm(n, xy) for n, (xy, _) in found.items()]
    report = AdaptReport(
        units,
        fps,
        len(train_w),
        len(fut),
        scores,
        verdict.ships,
        epochs,
        time.perf_counter() - t0,
        classes,
        cfg.checkpoint,
        obs_len,
        obs_len_how,
        count_phases(train, fps, mc, obs_len, cfg.phases),
        0,
        verdict.weight if verdict.best and "prior" in verdict.best else 0.0,
        verdict.change.tolist(),
        verdict.upper.tolist(),
        verdict.why,
    )
    bases = {"start": scene_start, "tuned": tuned, "averaged": averaged}
    ship = as_shipped(tracks, start, bases, found, run)
    report.averaged = len(pairs)
    report.prior_windows = next((len(m.prior_keys) for m in ship.values() if has_prior(m)), 0)
    if arms is not None:
        arms.update(ship)
    shipped = ship[verdict.best] if verdict.ships and verdict.best else None
    if shipped is not None:
        keep = ("run_config", "epoch", "history", "metrics")
        payload = {key: best_payload[key] for key in keep if key in best_payload}
        payload.update(model_config=to_dict(shipped.cfg), model=shipped.state_dict())
    else:
        payload = {k: v for k, v in start_payload.items() if k not in ("format", "version")}
    final = start if shipped is None else shipped
    # An adapted model learnt the earlier footage (weights or prior): only the held-out time is
    # new to it; the starting model has seen none of it.
    calibration, report.calibration = calibrate_camera(
        final, val if verdict.ships else tracks, fps, obs_len
    )
    if calibration is not None:
        payload["calibration"] = calibration.to_dict()
    payload["adapt"] = plain(report.to_dict())
    return report, payload


def count_phases(train: Tracks, fps: float, mc, obs_len: int, phases: int) -> int:
    """Training windows over all `phases` start offsets (AdaptReport.train_windows_all_phases)."""
    return len(camera_windows(train, fps, mc.dt_s, obs_len, mc.pred_len, 0, phases))


def as_shipped(tracks, start, bases: dict, found, run: Run) -> dict:
    """Each candidate as it would ship (`bases`: "start" with the scene's bounds, "tuned",
    "averaged" or None): the prior remembers every window of the footage."""
    mc, cfg = start.cfg, run.cfg
    keys = corrections = None
    if any(CANDIDATES[name][1] for name in found):
        bank_w = camera_windows(tracks, run.fps, mc.dt_s, 2, mc.pred_len, 0, cfg.phases)
        keys, corrections = prior_bank(bases["start"].cfg, bank_w)
    ship = {}
    for name, (weights, blended) in CANDIDATES.items():
        base = bases[weights]
        if name not in found or base is None:
            continue
        w = found[name][1]
        if w > 0 and not base.cfg.reads_scene:  # plain fine-tuning: tell it the scene's bounds
            base = with_scene(base, bases["start"].cfg.scene_bounds, tracks.units, [])
        if blended and w > 0:
            base = with_prior(base, keys, corrections, cfg.prior_k, w)
        ship[name] = base
    return ship
