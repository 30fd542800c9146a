"""The uncertainty calibration shipped in adapted.pt: fitted on the footage the model did not
train on, each track's own future as the label, and reported as coverage before and after.
"""

from __future__ import annotations

import numpy as np

from ..tracks import Tracks
from .split import camera_windows

MIN_CALIBRATION_WINDOWS = 40  # per half: fewer leave the 90 % radius to a handful of errors


def calibrate_camera(model, tracks: Tracks, fps: float, obs_len: int) -> tuple:
    """The uncertainty calibration of `model` for this camera, fitted on windows of `tracks`
    (footage the model did not train on; its own future is the label), and a report: the
    windows are cut in time, the calibration fitted on the first half is scored on the second
    beside the model's own (coverage of r50, r90 before -> after), and the one shipped is
    fitted on all of them. (None, report) when there are too few windows: the model keeps the
    calibration it had."""
    from ..evaluation import calibrate_on
    from ..forecast import forecast_on
    from ..metrics import coverage

    mc = model.cfg
    w = camera_windows(tracks, fps, mc.dt_s, obs_len, mc.pred_len, mc.social_neighbours)
    cut = np.median(w.frame_id) if len(w) else 0
    first, second = w.select(w.frame_id <= cut), w.select(w.frame_id > cut)
    if min(len(first), len(second)) < MIN_CALIBRATION_WINDOWS:
        return None, {
            "fitted": False,
            "windows": len(w),
            "why": f"fewer than {MIN_CALIBRATION_WINDOWS} windows in a half of the footage "
            "it did not train on: the model keeps the calibration it had",
        }
    before = forecast_on(model, second)
    fitted = calibrate_on(model, first, "this camera, first half")
    after_r50, after_r90 = fitted.radii(before.sigma)

    def inside(r) -> float:
        return float(coverage(before.mean, second.fut_xy, r).mean())

    report = {
        "fitted": True,
        "windows": len(w),
        "held_out_windows": len(second),
        "coverage_r50": [inside(before.r50), inside(after_r50)],
        "coverage_r90": [inside(before.r90), inside(after_r90)],
    }
    return calibrate_on(model, w, f"this camera: {len(w)} windows"), report
