"""Fit the forecaster to one camera without labels: a track's own future is its label.

`adapt(tracks, fps, out_dir, cfg)` takes the tracker's tracks of one camera (pixels, or metres
on the ground plane) and builds up to three candidates from them: the starting forecaster (the
shipped video model by default) fine-tuned with `train.fit` (for as many epochs as early
stopping on the last `val_fraction` of the footage chose; optionally also the weight average
of several fine-tunes, below), the starting model blended with a scene prior, and both. Each
candidate is scored by cross-validation in time (the footage in `folds` blocks, each block
forecast from what the other blocks taught) on the same windows as constant velocity and the
starting model. `adapted.pt` holds the best candidate only if it beats the starting model on
ADE and FDE and, resampling whole tracks (bootstrap), is at most `max_regression` worse with
`confidence`; else it holds the starting checkpoint unchanged, so adaptation does not ship a
regression silently.

Weight averaging (`AdaptConfig.average`): with a few hundred windows, one fine-tune's weights
depend much on which windows it saw. A further candidate averages the weights of fine-tunes
that each left out two of the time blocks (every pair; all from the same start, for the same
epochs): in the cross-validation a block is forecast by the average of the fine-tunes that left
it out, and the average of all of them ships, so every window was seen by some of its members
and its cross-validated score is that of smaller averages trained on less footage.

One module per idea:
  config.py     AdaptConfig, the settings
  split.py      the data: tracks on the ground plane, the cut in time, windows, history length
  prior.py      the scene prior (no training: remembered windows of the footage)
  finetune.py   fine-tuning with a scene input, and weight averages of fine-tunes
  crossval.py   cross-validation in time: every arm's forecasts of each block, the candidates
  guard.py      ship or keep the starting model (bootstrap over tracks)
  calibrate.py  the uncertainty calibration shipped for this camera
  report.py     AdaptReport: what adapt did, as a table and as JSON
  run.py        `adapt`, from tracks to the payload of adapted.pt
"""

from __future__ import annotations

from .calibrate import MIN_CALIBRATION_WINDOWS, calibrate_camera
from .config import OBS_LENS, AdaptConfig
from .crossval import CANDIDATES, left_out
from .finetune import load_start, weight_average, with_scene_input
from .guard import Verdict, bootstrap_change, judge
from .prior import PRIOR_WEIGHTS, choose_weight, prior_bank, scene_bounds, with_prior, with_scene
from .report import AdaptReport, ArmScore
from .run import adapt
from .split import (
    camera_windows,
    check_windows,
    live_ground_tracks,
    phase_offsets,
    split_in_time,
    time_blocks,
)

__all__ = [
    "CANDIDATES",
    "MIN_CALIBRATION_WINDOWS",
    "OBS_LENS",
    "PRIOR_WEIGHTS",
    "AdaptConfig",
    "AdaptReport",
    "ArmScore",
    "Verdict",
    "adapt",
    "bootstrap_change",
    "calibrate_camera",
    "camera_windows",
    "check_windows",
    "choose_weight",
    "judge",
    "left_out",
    "live_ground_tracks",
    "load_start",
    "phase_offsets",
    "prior_bank",
    "scene_bounds",
    "split_in_time",
    "time_blocks",
    "weight_average",
    "with_prior",
    "with_scene",
    "with_scene_input",
]
