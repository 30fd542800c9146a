"""Train the forecaster shipped for video: ETH/UCY (all scenes) + synthetic-world tracks.

    python scripts/train_video_forecaster.py [--scenes 24] [--set train.epochs=5]

Writes synthetic tracks to runs/video_data/{train,val}/ (seeds 500000+, apart from the demo's),
trains with configs/video.yaml into runs/video/, and ships best.pt without optimiser state as
data/checkpoints/video.pt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trajpred.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from trajpred.config import load_config  # noqa: E402
from trajpred.formats import write_eth_ucy  # noqa: E402
from trajpred.synth.world import SynthConfig, simulate  # noqa: E402
from trajpred.train import RunConfig, fit  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default=str(REPO / "configs/video.yaml"))
    p.add_argument(
        "--scenes", type=int, default=24, help="synthetic scenes (one in four for validation)"
    )
    p.add_argument("--duration", type=float, default=90.0, help="seconds per synthetic scene")
    p.add_argument("--out", default=str(REPO / "data/checkpoints/video.pt"))
    p.add_argument("--set", nargs="+", default=[], dest="overrides", metavar="KEY=VALUE")
    args = p.parse_args()

    data_dir = REPO / "runs/video_data"
    for k in range(args.scenes):
        split = "val" if k % 4 == 3 else "train"
        path = data_dir / split / f"synth_{k:03d}.txt"
        if not path.exists():
            scene = simulate(SynthConfig(seed=500000 + k, duration_s=args.duration))
            write_eth_ucy(path, scene.world_tracks())
    run = load_config(RunConfig, args.config, list(args.overrides))
    # Paths in the config are relative to the repository root.
    import os

    os.chdir(REPO)
    result = fit(run, progress=sys.stderr.isatty())
    best = load_checkpoint(result.best_path)
    keep = ("model_config", "run_config", "model", "epoch", "best_val_ade", "history", "metrics")
    save_checkpoint(args.out, {k: best[k] for k in keep})
    print(
        f"shipped {args.out} (epoch {best['epoch']}, validation ADE {best['best_val_ade']:.3f} m)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
