"""Training under torchrun with DistributedDataParallel (gloo, 2 CPU processes)."""

import subprocess
import sys

import pytest

from trajpred.checkpoint import load_checkpoint, load_forecaster

pytestmark = pytest.mark.slow  # torchrun and the CLI in subprocesses

COMMON = [
    "--no-progress",
    "--set",
    "model.hidden_size=32",
    "model.embed_size=16",
    "model.num_modes=4",
    "train.batch_size=64",
    "train.threads=1",
    "train.epochs=4",
    "train.warmup_epochs=0",
    "data.test_scene=toy",
]


def test_two_process_training_matches_single_process(eth_ucy_like_root, tmp_path):
    data = f"data.root={eth_ucy_like_root}"
    single = subprocess.run(
        [sys.executable, "-m", "trajpred", "train", "--out", str(tmp_path / "one"), *COMMON, data],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "trajpred",
            "train",
            "--out",
            str(tmp_path / "two"),
            *COMMON,
            data,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert ddp.stdout.count("best validation ADE") == 1  # only rank 0 reports
    one, two = load_checkpoint(tmp_path / "one/best.pt"), load_checkpoint(tmp_path / "two/best.pt")
    load_forecaster(tmp_path / "two/best.pt")
    assert len(load_checkpoint(tmp_path / "two/last.pt")["history"]) == 4
    # Same data, same global batch: validation ADE within 10% of the single-process run.
    assert abs(two["best_val_ade"] - one["best_val_ade"]) <= 0.1 * one["best_val_ade"]
