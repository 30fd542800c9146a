"""Train the LSTM forecaster on labelled tracks (ETH/UCY, MOTChallenge gt.txt, trajpred CSV).

Examples:
  trajpred train --config configs/eth_ucy.yaml --set data.test_scene=eth
  trajpred train --config configs/eth_ucy.yaml --set data.train_files='[tracks.csv]' data.fps=25
  trajpred train --config configs/eth_ucy.yaml --out runs/eth --resume

Writes best.pt, last.pt, log.csv and config.yaml into train.out_dir (or --out).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..config import add_config_arguments, flag_settings

STATE_FILES = ("last.pt", "best.pt", "log.csv", "config.yaml")  # what fit() writes


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, "configs/eth_ucy.yaml", "data.test_scene=hotel train.epochs=10")
    p.add_argument(
        "--out",
        default=argparse.SUPPRESS,
        help="output folder (same as --set train.out_dir=...; default: the config's)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    import contextlib

    from ..config import load_config
    from ..outputs import OutputLock, writable_folder
    from ..paths import resolve_data_path
    from ..train import RunConfig, fit

    config_file = resolve_data_path(args.config)
    run_cfg = load_config(
        RunConfig,
        config_file,
        args.overrides,
        flags=flag_settings(args, {"out": "train.out_dir"}),
    )
    out = Path(run_cfg.train.out_dir)
    lock: contextlib.AbstractContextManager = contextlib.nullcontext()
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 writes
        check_outputs(run_cfg, config_file, args.resume)
        lock = OutputLock(writable_folder(out))
    with lock:
        result = fit(run_cfg, resume=args.resume, progress=not args.no_progress)
    if result.is_main:
        print(
            f"best validation ADE {result.best_val_ade:.4f} after {result.epochs} epochs; "
            f"checkpoints: {result.best_path}, {result.last_path}"
        )
    return 0


def check_outputs(run_cfg, config_file: Path, resume: bool) -> None:
    """A fresh run never replaces an earlier run's checkpoints (--resume continues them), and
    no file train writes is one it reads (data, init_from, the config file)."""
    from ..errors import TrajpredError
    from ..outputs import input_files, refuse_overwriting_inputs

    out = Path(run_cfg.train.out_dir)
    earlier = [name for name in ("last.pt", "best.pt") if (out / name).is_file()]
    if earlier and not resume:
        raise TrajpredError(
            f"{out}: holds an earlier training run ({', '.join(earlier)}); continue it with "
            f"--resume, or choose another --out"
        )
    data = run_cfg.data
    reads: list[str | os.PathLike | None] = [
        *input_files(
            *data.train_files,
            *data.val_files,
            *data.test_files,
            None if data.train_files else Path(data.root) / data.test_scene,
        )
    ]
    if not resume:  # resuming, last.pt and config.yaml are the run's own state
        reads += [run_cfg.train.init_from or None, config_file]
    refuse_overwriting_inputs([out, *(out / name for name in STATE_FILES)], reads)
