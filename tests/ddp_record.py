"""`trajpred train` as tests/test_distributed.py runs it, alone (`record(args)`) or under
torchrun (as a script: `ddp_record.py OUT ARGS...`, each rank saving OUT/rank<r>.pt), recording
what DistributedDataParallel must keep equal to one process: the windows each optimiser step
drew (by their last observed position) and the weights after every epoch."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

import trajpred.train as train
from trajpred.cli import main


def record(args: list[str]) -> dict:
    steps: list[torch.Tensor] = []
    weights: list[dict[str, torch.Tensor]] = []
    real_augment, real_epoch = train.augment, train._epoch

    def augment(obs, *rest, **kwargs):
        steps.append(obs[:, -1].clone())  # before augmentation: the window's own position
        return real_augment(obs, *rest, **kwargs)

    def epoch(run, t, *rest):
        row = real_epoch(run, t, *rest)
        weights.append({k: v.detach().clone() for k, v in t.model.state_dict().items()})
        return row

    train.augment, train._epoch = augment, epoch
    try:
        code = main(["train", "--no-progress", *args])
    finally:
        train.augment, train._epoch = real_augment, real_epoch
    assert code == 0, f"trajpred train exited with {code}"
    return {"steps": steps, "weights": weights}


if __name__ == "__main__":
    out, args = Path(sys.argv[1]), sys.argv[2:]
    torch.save(record(args), out / f"rank{os.environ.get('RANK', '0')}.pt")
