"""What needs a CUDA GPU: predict with --device cuda (detector, and the forecaster in the writer
process), training on the GPU. Skipped without one (CI has none); scripts/gpu_check.sh runs
these on a lent GPU machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import curvy_walks, run_trajpred

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def trajpred(*args) -> subprocess.CompletedProcess:
    return run_trajpred(*args, timeout=600)


def test_predict_on_cuda_matches_cpu(video_assets, tmp_path):
    rows = {}
    arms = {  # name -> extra arguments; the last one keeps the writer's forecaster on the CPU
        "cpu": ["--device", "cpu"],
        "cuda": ["--device", "cuda"],
        "cuda_cpu_forecaster": ["--device", "cuda", "--set", "forecast.device=cpu"],
    }
    for name, extra in arms.items():
        done = trajpred(
            "predict",
            video_assets.scene.video,
            "--out",
            tmp_path / name,
            "--weights",
            video_assets.weights,
            "--checkpoint",
            "data/checkpoints/video.pt",
            *extra,
            "--no-progress",
        )
        assert done.returncode == 0, done.stderr
        rows[name] = (tmp_path / name / "forecasts.csv").read_text().splitlines()
    assert len(rows["cuda"]) > 1  # forecasts were made on the GPU, in the writer process
    # Same detections give the same tracks; fp32 on two devices may differ in the last digits.
    for name in ("cuda", "cuda_cpu_forecaster"):
        assert abs(len(rows[name]) - len(rows["cpu"])) <= 0.02 * len(rows["cpu"])


def test_training_on_cuda_gives_a_checkpoint_the_cpu_loads(tmp_path):
    from trajpred.checkpoint import load_forecaster
    from trajpred.formats import write_eth_ucy

    for split, seed, n in (("train", 1, 200), ("val", 2, 40)):
        write_eth_ucy(tmp_path / f"{split}.txt", curvy_walks(n, seed=seed))
    done = trajpred(
        "train",
        "--out",
        tmp_path / "run",
        "--no-progress",
        "--set",
        f"data.train_files=[{tmp_path / 'train.txt'}]",
        f"data.val_files=[{tmp_path / 'val.txt'}]",
        "model.social_neighbours=0",
        "train.epochs=30",
        "train.batch_size=64",
        "train.device=cuda",
    )
    assert done.returncode == 0, done.stderr
    model = load_forecaster(tmp_path / "run" / "best.pt")  # CPU tensors after map_location
    assert all(p.device.type == "cpu" for p in model.parameters())
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    first, last = (float(r.split(",")[2]) for r in (log[1], log[-1]))  # val ADE per epoch
    assert np.isfinite(last) and last < first
