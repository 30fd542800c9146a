"""Train the LSTM forecaster on labelled tracks (ETH/UCY, MOTChallenge gt.txt, trajpred CSV).

Examples:
  trajpred train --config configs/eth_ucy.yaml --set data.test_scene=eth
  trajpred train --config configs/eth_ucy.yaml --set data.train_files='[tracks.csv]' data.fps=25
  trajpred train --config configs/eth_ucy.yaml --out runs/eth --resume

Writes best.pt, last.pt, log.csv and config.yaml into train.out_dir (or --out).
"""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument(
        "--config", default="configs/eth_ucy.yaml", help="YAML run config (data, model, train)"
    )
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override config keys, e.g. data.test_scene=hotel train.epochs=10",
    )
    p.add_argument("--out", default=None, help="output folder (same as --set train.out_dir=...)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..config import load_config
    from ..paths import resolve_data_path
    from ..train import RunConfig, fit

    overrides = list(args.overrides) + ([f"train.out_dir={args.out}"] if args.out else [])
    run_cfg = load_config(RunConfig, resolve_data_path(args.config), overrides)
    result = fit(run_cfg, resume=args.resume, progress=not args.no_progress)
    if result.is_main:
        print(
            f"best validation ADE {result.best_val_ade:.4f} after {result.epochs} epochs; "
            f"checkpoints: {result.best_path}, {result.last_path}"
        )
    return 0
