"""Training under torchrun with DistributedDataParallel (gloo, 2 CPU processes): what DDP must
guarantee, checked against one process on the same global batches (tests/ddp_record.py)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ddp_record import record

from trajpred.checkpoint import load_checkpoint, load_forecaster

pytestmark = pytest.mark.slow  # torchrun in a subprocess

EPOCHS = 6
# No augmentation (the default config adds noise): each rank draws its own, so no run would
# match another exactly.
COMMON = [
    "--set",
    "model.hidden_size=16",
    "model.embed_size=8",
    "model.num_modes=2",
    "train.batch_size=64",
    "train.threads=1",
    "train.warmup_epochs=0",
    "train.eval_k=0",
    "train.augment_rotate=false",
    "train.augment_flip=false",
    "train.augment_speed=0",
    "train.augment_noise=0",
    f"train.epochs={EPOCHS}",
    "train.patience=1",  # validation stops improving within these epochs: both ranks must stop
    "data.test_scene=toy",
]


def windows(step: torch.Tensor) -> np.ndarray:
    """The windows of one optimiser step (their last observed positions), in a fixed order."""
    rows = step.numpy()
    return rows[np.lexsort(rows.T[::-1])]


def test_two_process_training_matches_single_process(eth_ucy_like_root, tmp_path):
    data = f"data.root={eth_ucy_like_root}"
    one = record(["--out", str(tmp_path / "one"), *COMMON, data])
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            Path(__file__).with_name("ddp_record.py"),
            tmp_path,
            "--out",
            tmp_path / "two",
            *COMMON,
            data,
        ],
        capture_output=True,
        text=True,
        timeout=120,  # about 15 s; ranks that stop apart hang in DDP's all-reduce instead
    )
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert ddp.stdout.count("best validation ADE") == 1  # only rank 0 reports
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    # Every optimiser step: each rank takes half the global batch, the halves are disjoint and
    # together they are one process's batch (the training windows are even in number).
    for step, a, b in zip(one["steps"], ranks[0]["steps"], ranks[1]["steps"], strict=False):
        assert len(a) == len(b) == len(step) // 2
        np.testing.assert_array_equal(windows(torch.cat([a, b])), windows(step))
    # Gradients are averaged over the ranks: the same weights on both after every epoch, and
    # those of one process up to float rounding (the ranks sum in another order).
    for mine, other, single in zip(*(r["weights"] for r in ranks), one["weights"], strict=False):
        for name, tensor in mine.items():
            assert torch.equal(tensor, other[name]), name
            torch.testing.assert_close(tensor, single[name], rtol=0, atol=1e-5)
    # The ranks stop together, at the epoch one process stops (early, by patience).
    assert 1 < len(one["weights"]) < EPOCHS
    assert [len(r["weights"]) for r in ranks] == [len(one["weights"])] * 2
    assert [len(r["steps"]) for r in ranks] == [len(one["steps"])] * 2
    # Rank 0 wrote the checkpoints, and they hold the weights the ranks trained.
    last, best = (load_checkpoint(tmp_path / f"two/{name}.pt") for name in ("last", "best"))
    assert best["best_val_ade"] == pytest.approx(
        load_checkpoint(tmp_path / "one/best.pt")["best_val_ade"], abs=1e-5
    )
    assert len(last["history"]) == len(one["weights"])
    for name, tensor in last["model"].items():
        assert torch.equal(tensor, ranks[0]["weights"][-1][name]), name
    load_forecaster(tmp_path / "two/best.pt")
