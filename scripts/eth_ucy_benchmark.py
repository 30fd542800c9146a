"""Retrain and re-evaluate the forecaster on the five ETH/UCY leave-one-out splits.

    python scripts/eth_ucy_benchmark.py                  # train all five, then evaluate
    python scripts/eth_ucy_benchmark.py --skip-train     # evaluate the shipped checkpoints
    python scripts/eth_ucy_benchmark.py --scenes eth --seeds 0 --set train.epochs=5

Each split trains one model per seed (default 0 1 2) into runs/eth_ucy/<scene>/seed<k>/; the
best checkpoints of the seeds are joined into one ensemble (trajpred.model.Ensemble; a single
seed gives a single model), written to runs/eth_ucy/<scene>/final.pt and, unless --no-ship,
to data/checkpoints/eth_ucy/<scene>.pt (without optimiser state). Then it writes
runs/eth_ucy/benchmark.md and .json: ours (deterministic and best-of-20), constant velocity
on the same windows, and the published rows, with the machine and the wall time of each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trajpred.atomic import write_text  # noqa: E402
from trajpred.checkpoint import ensemble_payload, load_checkpoint, save_checkpoint  # noqa: E402
from trajpred.config import load_config  # noqa: E402
from trajpred.evaluation import ETH_UCY_SCENES, evaluate_scene, summary_rows  # noqa: E402
from trajpred.metrics import format_table  # noqa: E402
from trajpred.train import RunConfig, fit  # noqa: E402

# Published averages over the five scenes, ADE/FDE in metres (Social GAN paper, Table 1;
# "Social GAN one sample" is its 1V-1 row).
PUBLISHED = [
    ("Linear", 0.79, 1.59),
    ("LSTM", 0.70, 1.52),
    ("Social-LSTM", 0.72, 1.54),
    ("Social GAN (1 sample)", 0.74, 1.54),
]


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default=str(REPO / "configs/eth_ucy.yaml"))
    p.add_argument("--data", default=str(REPO.parent / "shared/data/eth_ucy"))
    p.add_argument("--scenes", nargs="+", default=list(ETH_UCY_SCENES))
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0, 1, 2],
        help="one model per seed, joined into an ensemble",
    )
    p.add_argument("--runs", default=str(REPO / "runs/eth_ucy"))
    p.add_argument("--ship", default=str(REPO / "data/checkpoints/eth_ucy"))
    p.add_argument("--no-ship", action="store_true", help="do not copy checkpoints to --ship")
    p.add_argument("--skip-train", action="store_true", help="evaluate the checkpoints in --ship")
    p.add_argument("--set", nargs="+", default=[], dest="overrides", metavar="KEY=VALUE")
    args = p.parse_args()

    runs, ship = Path(args.runs), Path(args.ship)
    timings = {}
    for scene in args.scenes:
        if args.skip_train:
            continue
        bests, seconds, epochs = [], [], []
        for seed in args.seeds:
            run = load_config(
                RunConfig,
                args.config,
                [
                    f"data.root={args.data}",
                    f"data.test_scene={scene}",
                    f"train.seed={seed}",
                    f"train.out_dir={runs / scene / f'seed{seed}'}",
                    *args.overrides,
                ],
            )
            t0 = time.perf_counter()
            result = fit(run, progress=sys.stderr.isatty())
            seconds.append(round(time.perf_counter() - t0, 1))
            epochs.append(result.epochs)
            bests.append(result.best_path)
            print(
                f"{scene} seed {seed}: trained {result.epochs} epochs in {seconds[-1]} s",
                flush=True,
            )
        timings[scene] = {"seconds": seconds, "epochs": epochs}
        if len(bests) == 1:
            best = load_checkpoint(bests[0])
            keep = (
                "model_config",
                "run_config",
                "model",
                "epoch",
                "best_val_ade",
                "history",
                "metrics",
            )
            payload = {k: best[k] for k in keep}
        else:
            payload = ensemble_payload(bests)
        save_checkpoint(runs / scene / "final.pt", payload)
        if not args.no_ship:
            ship.mkdir(parents=True, exist_ok=True)
            save_checkpoint(ship / f"{scene}.pt", payload)

    results = [
        evaluate_scene(
            str(ship / f"{s}.pt")
            if (args.skip_train or not args.no_ship)
            else str(runs / s / "final.pt"),
            args.data,
            s,
            k=20,
        )
        for s in args.scenes
    ]
    rows = summary_rows(results)
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    lines = [
        "# ETH/UCY benchmark (leave one scene out, 8 observed + 12 predicted steps, 0.4 s)",
        "",
        "Windows: stride 1, every agent present in all 20 frames, no minimum agents per window.",
        "ADE/FDE: one deterministic forecast; "
        "minADE20/minFDE20: best of the 20 most probable modes.",
        "CV: constant velocity (last observed step) on the same windows.",
        "",
        format_table(rows),
        "",
        "Published averages (Social GAN paper, Table 1), ADE/FDE in m:",
        "",
        "| model | ADE | FDE |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {a:.2f} | {f:.2f} |" for name, a, f in PUBLISHED]
    avg = rows[-1]
    lines += [
        f"| **trajpred (ours, deterministic)** | {avg.ade:.2f} | {avg.fde:.2f} |",
        f"| constant velocity (same windows) | {avg.cv_ade:.2f} | {avg.cv_fde:.2f} |",
        "",
        f"Machine: {machine}.",
    ]
    if timings:
        lines += [
            "Training wall time per model (seeds "
            + " ".join(map(str, args.seeds))
            + "): "
            + "; ".join(
                f"{s} "
                + ", ".join(
                    f"{sec:.0f} s ({ep} epochs)"
                    for sec, ep in zip(t["seconds"], t["epochs"], strict=False)
                )
                for s, t in timings.items()
            )
            + "."
        ]
    runs.mkdir(parents=True, exist_ok=True)
    write_text(runs / "benchmark.md", "\n".join(lines) + "\n")
    write_text(
        runs / "benchmark.json",
        json.dumps(
            {
                "scores": [r.to_dict() for r in rows],
                "published": PUBLISHED,
                "timings": timings,
                "machine": machine,
            },
            indent=2,
        )
        + "\n",
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
