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

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# Forecasts of the same video on another device: the detector's convolutions on a GPU run in
# TF32 (PyTorch's cuDNN default: a 10-bit mantissa, ~1e-3 relative), which moves boxes by up to
# about 0.1 px; the forecaster extrapolates each track's velocity 12 steps on, so its far steps
# may move ~10 times that. Rarely a detection near a threshold flips and changes a track's rows.
FORECAST_ATOL_PX = 1.0
FORECAST_SHARE = 0.98


def forecast_table(path: Path) -> dict[tuple[int, int, int], np.ndarray]:
    """forecasts.csv -> {(frame, track_id, step): (x, y)}."""
    rows = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {(int(r[0]), int(r[1]), int(r[2])): r[4:6] for r in rows}


def assert_same_forecasts(want: Path, got: Path) -> None:
    """At least FORECAST_SHARE of each file's forecasts (by frame, track, step) are in the other
    one, within FORECAST_ATOL_PX in x and y."""
    a, b = forecast_table(want), forecast_table(got)
    assert len(a) > 0 and len(b) > 0, "no forecasts to compare"
    close = sum(key in b and bool(np.all(np.abs(a[key] - b[key]) <= FORECAST_ATOL_PX)) for key in a)
    assert close >= FORECAST_SHARE * max(len(a), len(b)), (
        f"{close} of {len(a)} forecasts (and {len(b)}) within {FORECAST_ATOL_PX} px"
    )


def test_the_forecast_comparison_tells_close_from_far(tmp_path):
    """assert_same_forecasts, on CPU-made tables: what a GPU may change passes, more fails."""
    g = np.random.default_rng(0)
    frame, track, step = (a.ravel() for a in np.meshgrid(range(1, 51), range(1, 5), range(1, 13)))
    base = np.column_stack(
        [frame, track, step, frame + 4 * step, g.uniform(0, 300, (len(frame), 2))]
    )

    def table(name, rows):
        np.savetxt(tmp_path / name, rows, fmt="%.2f", delimiter=",",
                   header="frame,track_id,step,target_frame,x,y", comments="")  # fmt: skip
        return tmp_path / name

    want = table("want.csv", base)
    assert_same_forecasts(want, table("same.csv", base))
    jitter = base.copy()
    jitter[:, 4:] += g.uniform(-0.9, 0.9, (len(base), 2))
    assert_same_forecasts(want, table("jitter.csv", jitter))
    few_off = base.copy()
    few_off[:10, 4] += 5.0  # 10 of 2400 rows: a rare flip
    assert_same_forecasts(want, table("few_off.csv", few_off))
    far = base.copy()
    far[::10, 4] += 5.0  # a tenth of the rows
    dropped = base[len(base) // 10 :]
    shifted = base.copy()
    shifted[:, 5] += 1.5
    for name, rows in (("far.csv", far), ("dropped.csv", dropped), ("shifted.csv", shifted)):
        with pytest.raises(AssertionError):
            assert_same_forecasts(want, table(name, rows))
        with pytest.raises(AssertionError):
            assert_same_forecasts(table(name, rows), want)


def trajpred(*args) -> subprocess.CompletedProcess:
    return run_trajpred(*args, timeout=600)


@pytest.mark.slow
@needs_cuda
def test_predict_on_cuda_matches_cpu(video_assets, tmp_path):
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
    # Forecasts were made on the GPU, in the writer process, and they are the CPU's.
    for name in ("cuda", "cuda_cpu_forecaster"):
        assert_same_forecasts(tmp_path / "cpu" / "forecasts.csv", tmp_path / name / "forecasts.csv")


@pytest.mark.slow
@needs_cuda
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
