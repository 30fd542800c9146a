"""`trajpred demo`: a synthetic scene through the whole pipeline, offline, with its scores."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trajpred.demo import ForecastTally, GroundTruth
from trajpred.results import FrameForecasts
from trajpred.tracking import TrackedBoxes
from trajpred.tracks import Tracks

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_prints_every_metric(video_assets, tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "trajpred",
            "demo",
            "--out",
            str(out),
            "--duration",
            "6",
            "--checkpoint",
            video_assets.checkpoint,
            "--device",
            "cpu",
            "--no-progress",
        ],
        cwd=tmp_path,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    precision, recall = map(
        float, re.search(r"precision ([\d.]+)\s+recall ([\d.]+)", text).groups()
    )
    mota, idf1 = map(float, re.search(r"MOTA (-?[\d.]+)\s+IDF1 ([\d.]+)", text).groups())
    assert precision > 0.5 and recall > 0.5 and mota > 0.3 and idf1 > 0.3
    assert re.search(
        r"forecast: ADE [\d.]+ px\s+FDE [\d.]+ px\s+constant velocity: ADE [\d.]+ px", text
    )
    assert (out / "scene" / "gt_mot.txt").is_file() and (out / "annotated.mp4").is_file()


def test_forecast_tally_scores_a_hand_made_case():
    # One person walking right 1 px per frame, boxes 10 x 40, bottom centre (x, 100).
    frames = np.arange(1, 31)
    box = np.column_stack(
        [frames + 10.0 - 5, np.full(30, 60.0), np.full(30, 10.0), np.full(30, 40.0)]
    )
    truth = GroundTruth(
        Tracks(
            frames,
            np.full(30, 4),
            np.column_stack([frames + 10.0, np.full(30, 100.0)]),
            box,
            units="px",
        )
    )
    tally = ForecastTally(truth, frames_per_step=4.0)
    for f in range(1, 11):
        tracks = TrackedBoxes([9], box[f - 1 : f], [0.9], [0])
        fc = FrameForecasts.empty()
        if f == 10:  # forecast 2 steps (4 frames each) of 6 px: the truth moves 4 px per step
            fc = FrameForecasts(
                [9],
                np.array([[[26.0, 100.0], [32.0, 100.0]]]),
                np.ones((1, 2)),
                2 * np.ones((1, 2)),
                np.array([14, 18]),
            )
        tally.add(f, tracks, fc)
    result = tally.result()
    assert result.forecasts == 1
    assert result.ade_px == 3.0 and result.fde_px == 4.0  # errors 2 and 4
    assert result.cv_ade_px == 0.0 and result.cv_fde_px == 0.0
    assert "(1 forecasts of 0.8 s" in result.line(0.8)


@pytest.mark.slow
def test_default_demo_forecaster_beats_constant_velocity(tmp_path):
    """The shipped detector and forecaster, default scene: ADE and FDE below constant velocity."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "trajpred",
            "demo",
            "--out",
            str(tmp_path / "demo"),
            "--device",
            "cpu",
            "--no-progress",
        ],
        cwd=tmp_path,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    ade, fde, cv_ade, cv_fde = map(
        float,
        re.search(
            r"ADE ([\d.]+) px\s+FDE ([\d.]+) px\s+"
            r"constant velocity: ADE ([\d.]+) px\s+FDE ([\d.]+) px",
            result.stdout,
        ).groups(),
    )
    assert ade < cv_ade and fde < cv_fde, result.stdout
