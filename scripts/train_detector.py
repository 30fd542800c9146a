"""Train the small offline person detector shipped in data/detector/, on CPU, without internet.

    .venv/bin/python scripts/train_detector.py --out data/detector/synth_yolo.pt

1. Writes a YOLO dataset of synthetic plaza scenes (trajpred.synth.render.write_yolo_dataset;
   class 0 = person, as in COCO, so `--classes person` works with it and with COCO weights).
2. Trains an ultralytics YOLO from scratch (no pretrained weights) from `--model`, by default
   data/detector/yolo11-tiny.yaml (YOLO11 at half of yolo11n's width: fast on a CPU).
3. Copies best.pt (ultralytics strips the optimizer state and stores fp16) to --out and writes
   `<out stem>.json` beside it: the training settings and the precision/recall it measured on
   a held-out scene (a seed not used for training), matched at IoU 0.5.

Nothing is downloaded: plots=False (no Arial.ttf for plot labels), amp=False (the AMP check
would fetch yolo11n.pt; on CPU it is off anyway), YOLO_OFFLINE=1 (ultralytics then treats
the machine as offline: no events, no update checks) and the dataset check's font lookup is
disabled (it tries to fetch Arial.ttf for labels it never draws when plots=False).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_SEED = 999_999  # training scenes use seeds 200000 + ...
sys.path.insert(0, str(ROOT))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--out", default=str(ROOT / "data/detector/synth_yolo.pt"), help="weights to write"
    )
    p.add_argument(
        "--model",
        default=str(ROOT / "data/detector/yolo11-tiny.yaml"),
        help="ultralytics model yaml (trained from scratch)",
    )
    p.add_argument("--images", type=int, default=1500, help="training + validation images")
    p.add_argument("--scenes", type=int, default=30, help="synthetic scenes the images come from")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--time-h", type=float, default=0.35, help="stop training after this many hours")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--device", default="cpu", choices=("cpu", "cuda"), help="train and score on this device"
    )
    p.add_argument(
        "--work", default=None, help="folder for the dataset and run (default: a temp dir)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--score-only",
        action="store_true",
        help="skip training: only measure --out on the held-out scene",
    )
    return p.parse_args(argv)


def offline_ultralytics() -> None:
    """Make ultralytics skip every network access it would make during training."""
    os.environ["YOLO_OFFLINE"] = "1"
    import ultralytics.data.utils as data_utils

    # check_det_dataset() calls check_font() to fetch Arial.ttf for plots we do not draw.
    data_utils.check_font = lambda *args, **kwargs: None
    try:
        import polars  # noqa: F401
    except ImportError:
        # The lent GPU machine has no polars (its wheel is too large to carry there); the
        # trainer only uses it to copy results.csv into each saved checkpoint.
        from ultralytics.engine.trainer import BaseTrainer

        BaseTrainer.read_results_csv = lambda self: {}


def held_out_scores(weights: Path, seed: int, imgsz: int, device: str = "cpu") -> dict:
    """Detection precision/recall (IoU 0.5, conf 0.25) on a fresh synthetic scene of 10 s."""
    from trajpred.demo import detection_scores
    from trajpred.detect import Detector, DetectorConfig
    from trajpred.synth.render import iter_frames
    from trajpred.synth.world import SynthConfig, simulate

    scene = simulate(SynthConfig(seed=seed, duration_s=10.0))
    gt = scene.mot_tracks()
    detector = Detector(DetectorConfig(weights=str(weights), imgsz=imgsz, device=device))
    found = []
    for t, frame in enumerate(iter_frames(scene)):
        found.append((t + 1, detector.detect(frame).box_xywh))
    return detection_scores(gt, found).to_dict()


def main(argv=None) -> int:
    args = parse_args(argv)
    offline_ultralytics()
    from ultralytics import YOLO

    from trajpred.synth.render import write_yolo_dataset
    from trajpred.synth.world import SynthConfig

    out = Path(args.out)
    if args.score_only:
        return write_report(args, out, train_s=None)
    work = Path(args.work or tempfile.mkdtemp(prefix="trajpred_detector_"))
    start = time.perf_counter()
    seeds = [200_000 + 1000 * args.seed + k for k in range(args.scenes)]
    data = write_yolo_dataset(work / "dataset", seeds, args.images, SynthConfig(), progress=True)
    print(
        f"dataset: {data.n_train} train + {data.n_val} val images, {data.n_boxes} boxes "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )

    model = YOLO(args.model)
    model.train(
        data=str(data.data_yaml),
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        device="cpu" if args.device == "cpu" else 0,  # ultralytics names GPUs by index
        workers=args.workers,
        project=str(work / "runs"),
        name="detector",
        exist_ok=True,
        plots=False,
        amp=False,
        pretrained=False,
        seed=args.seed,
        time=args.time_h,
        patience=100,
        cache="ram",
        val=True,
        verbose=False,
        mosaic=1.0,
        close_mosaic=3,
        fliplr=0.5,
        scale=0.5,
        degrees=0.0,
    )
    best = work / "runs" / "detector" / "weights" / "best.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out)
    # --time-h may stop training before --epochs (ultralytics then re-plans the schedule).
    return write_report(
        args, out, train_s=time.perf_counter() - start, epochs_done=model.trainer.epoch + 1
    )


def write_report(
    args: argparse.Namespace, out: Path, train_s: float | None, epochs_done: int | None = None
) -> int:
    """Score `out` on the held-out scene; write and print `<out stem>.json`."""
    report_path = out.with_suffix(".json")
    report = (
        json.loads(report_path.read_text())
        if report_path.exists() and train_s is None
        else {
            "weights": out.name,
            "model": Path(args.model).name,
            "imgsz": args.imgsz,
            "device": args.device,
            "epochs": epochs_done,
            "images": args.images,
            "scenes": args.scenes,
            "time_limit_h": args.time_h,
            "train_seconds": None if train_s is None else round(train_s),
        }
    )
    report["held_out_scene_seed"] = HELD_OUT_SEED
    report["held_out"] = held_out_scores(
        out, seed=HELD_OUT_SEED, imgsz=args.imgsz, device=args.device
    )
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
