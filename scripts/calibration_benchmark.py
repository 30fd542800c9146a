"""Benchmark the forecasts' uncertainty: do r50 and r90 hold 50 % and 90 % of true positions?

    .venv/bin/python scripts/calibration_benchmark.py --out runs/calibration_benchmark

Three kinds of data, each scored three ways: `uncalibrated` (the model's top-mode sigma read
as a Gaussian's, what trajpred drew before calibration), `fixed` (the checkpoint's stored
calibration alone) and `online` (what `predict` does by default: the stored calibration, then
each step's recent errors on the same video or file once their truth has arrived):
1. ETH/UCY leave-one-out with the shipped ensembles (data/checkpoints/eth_ucy, calibrated on
   the other four scenes' validation parts): coverage of r50 / r90 per step, NLL and KDE-NLL of
   the Trajectron++ protocol, beside constant velocity's Gaussian.
2. Tracked video: fresh synthetic scenes (seeds 710000+, random cameras; none was used to train,
   validate or calibrate the video model) tracked by the shipped detector, forecast live by
   the shipped video model, and scored against the exact ground truth and against the
   tracker's own future; the real clips of ../shared/data/videos tracked with the COCO detector
   of ../shared/data/detectors (needs openvino), scored against the tracker's own future.
3. The real annotated pixel tracks of four cameras in ../shared/data/tracks (MOTChallenge gt,
   flag-0 rows dropped), windows forecast by the video model: a real camera it never saw.
Writes calibration_benchmark.json (every figure, and what it was measured on) and
calibration_benchmark.png (coverage per step) into --out, and prints a table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trajpred.benchmarking import OwnFuture, random_camera, synthetic_video, tracked_frames  # noqa: E402
from trajpred.calibration import gaussian  # noqa: E402
from trajpred.checkpoint import load_forecaster  # noqa: E402
from trajpred.data import DataConfig, load_split  # noqa: E402
from trajpred.evaluation import ETH_UCY_SCENES, score_uncertainty  # noqa: E402
from trajpred.forecast import forecast_on  # noqa: E402
from trajpred.metrics import score_scene  # noqa: E402

ARMS = ("uncalibrated", "fixed", "online")
VIDEO_MODEL = ROOT / "data/checkpoints/video.pt"
SYNTH_SEED0 = 710000


def window_arms(model, windows, name: str, kde: bool) -> dict:
    """Coverage (mean and per step), NLL and KDE-NLL of each arm on windows (N, ...)."""
    stored = model.calibration
    rows = {}
    for arm in ARMS:
        calibration = gaussian(model.cfg.pred_len) if arm == "uncalibrated" else stored
        fc = forecast_on(model, windows, mixture=True, calibration=calibration)
        score = score_scene(name, fc.mean, windows.fut_xy, windows.obs_xy, None, windows.units)
        rel = score_uncertainty(score, windows, fc, calibration, online=arm == "online", kde=kde)
        rows[arm] = {
            "windows": len(windows),
            "ade": score.ade,
            "fde": score.fde,
            "cov50": score.cov50,
            "cov90": score.cov90,
            "cov50_per_step": rel.calibrated[0].round(4).tolist(),
            "cov90_per_step": rel.calibrated[1].round(4).tolist(),
            "nll": score.nll,
            "kde_nll": score.kde_nll,
            "cv_nll": score.cv_nll,
            "cv_kde_nll": score.cv_kde_nll,
        }
    return rows


def eth_ucy(root: Path, kde: bool) -> dict:
    out = {}
    for scene in ETH_UCY_SCENES:
        model = load_forecaster(ROOT / f"data/checkpoints/eth_ucy/{scene}.pt")
        windows, _ = load_split(
            DataConfig(root=str(root), test_scene=scene),
            "test",
            model.cfg.obs_len,
            model.cfg.pred_len,
            model.cfg.dt_s,
            model.cfg.social_neighbours,
        )
        t0 = time.perf_counter()
        out[scene] = window_arms(model, windows, scene, kde)
        print(f"eth_ucy {scene}: {len(windows)} windows, {time.perf_counter() - t0:.0f} s")
    return out


def mot_tracks(root: Path, kde: bool) -> dict:
    import configparser

    model = load_forecaster(VIDEO_MODEL)
    out = {}
    for seq in sorted(p for p in root.iterdir() if (p / "gt" / "gt.txt").is_file()):
        info = configparser.ConfigParser()
        info.read(seq / "seqinfo.ini")
        fps = float(info["Sequence"]["frameRate"])
        cfg = DataConfig(
            test_files=[str(seq / "gt" / "gt.txt")], fps=fps, format="mot", ignore_zero_conf=True
        )
        windows, _ = load_split(
            cfg,
            "test",
            model.cfg.obs_len,
            model.cfg.pred_len,
            model.cfg.dt_s,
            model.cfg.social_neighbours,
        )
        out[seq.name] = window_arms(model, windows, seq.name, kde)
        print(f"tracks {seq.name}: {len(windows)} windows")
    return out


def live_arms(frames, fps: float, truth=None) -> dict:
    """Each arm's live forecasts over the frames, scored against the tracker's own future
    (and, with `truth` (demo.GroundTruth), against the exact ground truth)."""
    from trajpred.demo import ForecastTally
    from trajpred.pipeline import ForecastConfig, LiveForecaster

    model = load_forecaster(VIDEO_MODEL)
    stored = model.calibration
    own = OwnFuture(frames)
    out = {}
    for arm in ARMS:
        model.calibration = None if arm == "uncalibrated" else stored
        mode = "online" if arm == "online" else "fixed"
        live = LiveForecaster(model, fps, ForecastConfig(calibration=mode))
        tally = None if truth is None else ForecastTally(truth, fps * model.cfg.dt_s)
        inside = [[], []]
        for f, boxes in enumerate(frames, 1):
            fc = live.update(f, boxes)
            if tally is not None:
                tally.add(f, boxes, fc)
            for j, err in own.errors(fc):
                inside[0].append(err <= fc.r50[j])
                inside[1].append(err <= fc.r90[j])
        row = {"forecasts": len(inside[0])}
        if inside[0]:
            per_step = [np.mean(x, axis=0) for x in inside]
            row |= {
                "cov50": float(per_step[0].mean()),
                "cov90": float(per_step[1].mean()),
                "cov50_per_step": per_step[0].round(4).tolist(),
                "cov90_per_step": per_step[1].round(4).tolist(),
            }
        if tally is not None:
            scores = tally.result()
            row["truth"] = {
                "forecasts": scores.forecasts,
                "cov50": scores.inside_r50,
                "cov90": scores.inside_r90,
            }
        out[arm] = row
    model.calibration = stored
    return out


def synthetic_videos(n: int, duration: float, work: Path) -> dict:
    from trajpred.demo import GroundTruth
    from trajpred.detect import SHIPPED_DETECTOR
    from trajpred.formats import read_tracks

    out = {}
    for k in range(n):
        seed = SYNTH_SEED0 + k
        scene = work / f"synth_{seed}"
        camera = random_camera(seed)
        synthetic_video(scene, {"seed": seed, "duration_s": duration, "camera": camera})
        frames, fps = tracked_frames(scene / "video.mp4", str(SHIPPED_DETECTOR), scene, None)
        truth = GroundTruth(read_tracks(scene / "gt_mot.txt", "mot"))
        out[f"synth_{seed}"] = live_arms(frames, fps, truth)
        print(f"synthetic video {seed}: {len(frames)} frames")
    return out


def real_clips(videos: Path, weights: Path, work: Path) -> dict:
    out = {}
    for video, classes in (
        ("one-by-one-person-detection.mp4", [0]),
        ("highway.avi", [2, 3, 5, 7]),
    ):
        if not (videos / video).is_file():
            continue
        frames, fps = tracked_frames(videos / video, str(weights), work, classes)
        out[video] = live_arms(frames, fps)
        print(f"real clip {video}: {len(frames)} frames")
    return out


def table(report: dict) -> str:
    lines = ["| data | set | " + " | ".join(f"{a} r50 / r90" for a in ARMS) + " |"]
    lines.append("|---|---|" + "---|" * len(ARMS))
    for kind in ("eth_ucy", "annotated_tracks", "synthetic_video", "real_clips"):
        for name, arms in report.get(kind, {}).items():
            for label, pick in (("", lambda r: r), (" vs truth", lambda r: r.get("truth"))):
                rows = [pick(arms[a]) for a in ARMS]
                if any(r is None or r.get("cov50") is None for r in rows):
                    continue
                cells = [f"{100 * r['cov50']:.0f} / {100 * r['cov90']:.0f} %" for r in rows]
                lines.append(f"| {kind} | {name}{label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [(k, n, a) for k in ("eth_ucy", "annotated_tracks", "synthetic_video", "real_clips")
            for n, a in report.get(k, {}).items() if a["online"].get("cov50_per_step")]  # fmt: skip
    cols = 5
    rows = max(1, -(-len(sets) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.6 * rows), squeeze=False)
    for ax, (kind, name, arms) in zip(axes.flat, sets, strict=False):
        for arm, colour in zip(ARMS, ("tab:grey", "tab:blue", "tab:green"), strict=True):
            steps = np.arange(1, len(arms[arm]["cov50_per_step"]) + 1)
            ax.plot(steps, arms[arm]["cov50_per_step"], color=colour, label=arm)
            ax.plot(steps, arms[arm]["cov90_per_step"], color=colour, ls="--")
        ax.axhline(0.5, color="k", lw=0.5), ax.axhline(0.9, color="k", lw=0.5)
        ax.set_ylim(0, 1), ax.set_title(f"{kind}: {name}", fontsize=7), ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(sets) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle("share of true positions inside r50 (solid) and r90 (dashed) per step", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> int:
    import torch

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default=str(ROOT / "runs/calibration_benchmark"))
    p.add_argument("--eth-ucy", default=str(ROOT.parent / "shared/data/eth_ucy"))
    p.add_argument("--tracks", default=str(ROOT.parent / "shared/data/tracks/mot"))
    p.add_argument("--videos", default=str(ROOT.parent / "shared/data/videos"))
    p.add_argument(
        "--coco-weights",
        default=str(ROOT.parent / "shared/data/detectors/yolov8n_int8_openvino_model"),
    )
    p.add_argument("--synthetic", type=int, default=3, help="synthetic videos")
    p.add_argument("--duration", type=float, default=90.0, help="seconds per synthetic video")
    p.add_argument("--no-kde", action="store_true", help="skip KDE-NLL (the slow part)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    report: dict = {
        "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__},
        "arms": {
            "uncalibrated": "top-mode sigma read as a Gaussian's",
            "fixed": "the checkpoint's stored calibration",
            "online": "stored, then each step's recent errors (predict's default)",
        },
    }
    if Path(args.eth_ucy).is_dir():
        report["eth_ucy"] = eth_ucy(Path(args.eth_ucy), not args.no_kde)
    if Path(args.tracks).is_dir():
        report["annotated_tracks"] = mot_tracks(Path(args.tracks), not args.no_kde)
    if args.synthetic:
        report["synthetic_video"] = synthetic_videos(args.synthetic, args.duration, out)
    if Path(args.videos).is_dir() and Path(args.coco_weights).exists():
        report["real_clips"] = real_clips(Path(args.videos), Path(args.coco_weights), out)
    (out / "calibration_benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out / "calibration_benchmark.png")
    print(table(report))
    print(f"-> {out / 'calibration_benchmark.json'}, {out / 'calibration_benchmark.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
