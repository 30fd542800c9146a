"""Training throughput of the forecaster: windows per second at a given batch size and device.

    .venv/bin/python scripts/bench_training.py --device cuda --batch-size 8192 --out train.json

Trains the default model config (2-layer LSTM of 128, 20 modes, 8 neighbours) on synthetic
windows of curving walks (8 observed + 12 future steps, in metres) with the training loop
`trajpred train` runs (`train_one_epoch`: augmentation, features, losses, optimiser step), times
the epochs after a warm-up epoch, and writes the windows per second with what they were
measured on (device name, torch version, threads, batch size) as JSON.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trajpred.atomic import write_json  # noqa: E402
from trajpred.benchmarking import at_least_one  # noqa: E402
from trajpred.model import Forecaster, ForecasterConfig  # noqa: E402
from trajpred.train import TrainConfig, _lr_lambda, train_one_epoch, training_device  # noqa: E402
from trajpred.windows import Windows  # noqa: E402


def synthetic_windows(n: int, obs_len: int, pred_len: int, neighbours: int, seed: int) -> Windows:
    """n windows of walks at 0.3-1.5 m per step turning at a constant rate, with neighbours
    taken from other windows (positions only matter for the cost, not for what is learned)."""
    g = np.random.default_rng(seed)
    steps = obs_len + pred_len
    heading = g.uniform(0, 2 * np.pi, (n, 1)) + g.uniform(-0.1, 0.1, (n, 1)) * np.arange(steps)
    speed = g.uniform(0.3, 1.5, (n, 1, 1))
    xy = np.cumsum(speed * np.stack([np.cos(heading), np.sin(heading)], -1), axis=1)
    xy = (xy + g.uniform(-20, 20, (n, 1, 2))).astype(np.float32)
    nbr_xy = nbr_mask = None
    if neighbours:
        pick = g.integers(0, n, (n, neighbours))
        nbr_xy = xy[pick][:, :, obs_len - 2 : obs_len]  # (n, k, 2, 2): last two observations
        nbr_mask = np.ones((n, neighbours), bool)
    zeros = np.zeros(n, np.int64)
    return Windows(
        obs_xy=xy[:, :obs_len],
        fut_xy=xy[:, obs_len:],
        obs_box_wh=None,
        file_index=zeros,
        frame_id=zeros,
        track_id=np.arange(n),
        files=["synthetic"],
        nbr_xy=nbr_xy,
        nbr_mask=nbr_mask,
        class_id=zeros,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--windows", type=int, default=200_000, help="synthetic training windows")
    p.add_argument("--batch-size", type=int, default=8192)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--out", default="bench_training.json")
    args = p.parse_args(argv)
    at_least_one(p, args, "windows", "batch_size", "epochs")
    if args.threads < 0:
        p.error("--threads must be 0 (torch's default) or more")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = training_device(args.device)
    model_cfg = ForecasterConfig()
    cfg = TrainConfig(batch_size=args.batch_size, augment_noise=0.06)
    windows = synthetic_windows(
        args.windows, model_cfg.obs_len, model_cfg.pred_len, model_cfg.social_neighbours, seed=0
    )
    model = Forecaster(model_cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = math.ceil(len(windows) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, steps))
    seconds, losses = [], []
    for epoch in range(args.epochs + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        losses.append(train_one_epoch(model, windows, optimizer, scheduler, cfg, epoch, False))
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    timed = seconds[1:]  # the first epoch pays for warm-up (allocations, kernels)
    rate = len(windows) * len(timed) / sum(timed)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    report = {
        "what": "forecaster training throughput (train_one_epoch, default model config)",
        "device": str(device),
        "device_name": name or platform.machine(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "windows": len(windows),
        "batch_size": cfg.batch_size,
        "epoch_seconds": [round(s, 3) for s in seconds],
        "windows_per_s": round(rate, 1),
        "losses": [round(v, 4) for v in losses],
    }
    write_json(args.out, report)  # temp file, then rename
    print(
        f"{report['device_name']} ({device}), torch {torch.__version__}: {rate:,.0f} windows/s "
        f"at batch {cfg.batch_size} over {len(timed)} epochs of {len(windows)} windows "
        f"-> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
