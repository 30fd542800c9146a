"""Does the detector's view of a person help the LSTM forecast where they go? A measured ablation.

    .venv/bin/python scripts/appearance_ablation.py [--train-scenes 18] [--test-scenes 6]
        [--epochs 25] [--seeds 0 1] [--dims 8] [--out runs/appearance_ablation.json]

1. Synthesizes scenes (seeds 100.. for training, 200.. for testing), runs the shipped detector
   and ByteTrack on every frame, and keeps, for every tracked box, the detector's own feature
   vector of the detection it was matched to (ultralytics' per-object features: the Detect
   layer's inputs at the box's anchor, what BoT-SORT's ReID "auto" uses), reduced by PCA
   fitted on the training boxes to --dims whitened components.
2. Samples every track at the model step (0.4 s = every 4th frame at 10 fps) and cuts windows
   of 8 observed + 12 future consecutive samples (tracker positions in pixels).
3. Trains the same LSTM forecaster (2 x 128, no neighbours, no box features) three ways, same
   windows, seeds and epochs: motion only; motion + appearance at every observed step; and a
   control, motion + the appearance of another, random window (same statistics, no
   information). Rotation/mirror augmentation is off in all three, since it would break any
   link between how a person looks in the image and which way they move on it.
4. Prints and writes test ADE/FDE (pixels) of each arm, beside constant velocity.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trajpred.atomic import write_json  # noqa: E402
from trajpred.detect import SHIPPED_DETECTOR, Detector, DetectorConfig, detections_from_ultralytics  # noqa: E402
from trajpred.features import output_positions, to_heading_frame, window_features, window_scale  # noqa: E402
from trajpred.metrics import ade, constant_velocity, fde  # noqa: E402
from trajpred.model import Forecaster, ForecasterConfig  # noqa: E402
from trajpred.synth.render import iter_frames  # noqa: E402
from trajpred.synth.world import SynthConfig, simulate  # noqa: E402
from trajpred.tracking import Tracker  # noqa: E402
from trajpred.train import TrainConfig, augment, forecast_loss  # noqa: E402

OBS, PRED = 8, 12


@dataclass
class AppearanceWindows:
    obs_xy: np.ndarray  # (N, OBS, 2) pixels
    fut_xy: np.ndarray  # (N, PRED, 2)
    obs_wh: np.ndarray  # (N, OBS, 2) box width, height (sets the pixel scale)
    obs_app: np.ndarray  # (N, OBS, C) the detector's features of each observed box

    @classmethod
    def concat(cls, parts: list[AppearanceWindows]) -> AppearanceWindows:
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__)
        )


def scene_windows(seed: int, detector: Detector, duration_s: float) -> AppearanceWindows:
    """Detect and track one synthetic scene; windows of consecutive 0.4 s samples per track."""
    scene = simulate(SynthConfig(seed=seed, duration_s=duration_s))
    frames_per_step = scene.cfg.fps * 0.4
    if abs(frames_per_step - round(frames_per_step)) > 1e-9:
        raise SystemExit("the scene's fps must make 0.4 s a whole number of frames")
    every = int(round(frames_per_step))
    tracker = Tracker("bytetrack")
    samples: dict[int, list] = {}  # track id -> [(step k, x, y, w, h, features)]
    predictor = detector.model.predictor
    for i, frame in enumerate(iter_frames(scene)):
        result = detector.predict(frame)
        detections = detections_from_ultralytics(result)
        feats = result.feats.cpu().numpy() if len(detections) else None
        predictor._feats = None
        tracks, rows = tracker.update_with_index(detections, frame)
        if i % every:
            continue
        for tid, (x, y), (_, _, w, h), row in zip(
            tracks.track_id.tolist(), tracks.xy, tracks.box_xywh, rows, strict=False
        ):
            samples.setdefault(tid, []).append((i // every, x, y, w, h, feats[row]))
    parts = []
    for rows in samples.values():
        k = np.array([r[0] for r in rows])
        runs = np.split(np.arange(len(rows)), np.nonzero(np.diff(k) != 1)[0] + 1)
        for run in runs:
            for start in range(len(run) - OBS - PRED + 1):
                take = [rows[j] for j in run[start : start + OBS + PRED]]
                xy = np.array([r[1:3] for r in take])
                parts.append(
                    (
                        xy[:OBS],
                        xy[OBS:],
                        np.array([r[3:5] for r in take[:OBS]]),
                        np.stack([r[5] for r in take[:OBS]]),
                    )
                )
    if not parts:
        return AppearanceWindows(
            np.zeros((0, OBS, 2)),
            np.zeros((0, PRED, 2)),
            np.zeros((0, OBS, 2)),
            np.zeros((0, OBS, 1)),
        )
    return AppearanceWindows(
        *(np.stack([p[j] for p in parts]).astype(np.float32) for j in range(4))
    )


def pca(train_app: np.ndarray, dims: int):
    """Whitened PCA fitted on (M, C) vectors -> a function mapping (..., C) -> (..., dims)."""
    mean = train_app.mean(0)
    _, s, vt = np.linalg.svd(train_app - mean, full_matrices=False)
    basis = vt[:dims].T / (s[:dims] / math.sqrt(len(train_app)))[None]
    return lambda a: ((a - mean) @ basis).astype(np.float32)


def train_and_test(
    train: AppearanceWindows,
    test: AppearanceWindows,
    app_train,
    app_test,
    seed: int,
    epochs: int,
    batch_size: int = 256,
) -> dict:
    """Train one forecaster (appearance used when app_* are given); test ADE/FDE in pixels."""
    torch.manual_seed(seed)
    dims = 0 if app_train is None else app_train.shape[-1]
    model = Forecaster(
        ForecasterConfig(obs_len=OBS, pred_len=PRED, appearance_dim=dims, box_features=False)
    )
    cfg = TrainConfig(augment_rotate=False, augment_flip=False)
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = epochs * math.ceil(len(train.obs_xy) / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, cfg.lr, total_steps=steps, pct_start=0.05
    )
    obs_all, fut_all = torch.as_tensor(train.obs_xy), torch.as_tensor(train.fut_xy)
    wh_all = torch.as_tensor(train.obs_wh)
    app_all = None if app_train is None else torch.as_tensor(app_train)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(obs_all), generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            obs, fut, _ = augment(obs_all[idx], fut_all[idx], cfg, gen)
            scale = window_scale(wh_all[idx], len(idx))
            feats, heading, speed = window_features(
                obs, scale, None, None if app_all is None else app_all[idx]
            )
            loss = forecast_loss(
                model(feats, speed), to_heading_frame(fut, obs[:, -1], heading, scale), cfg
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
    model.eval()
    with torch.no_grad():
        obs = torch.as_tensor(test.obs_xy)
        scale = window_scale(torch.as_tensor(test.obs_wh), len(obs))
        feats, heading, speed = window_features(
            obs, scale, None, None if app_test is None else torch.as_tensor(app_test)
        )
        mean, _ = output_positions(model(feats, speed), obs[:, -1], heading, scale)
    pred = mean.numpy()
    return {
        "ade": float(ade(pred, test.fut_xy).mean()),
        "fde": float(fde(pred, test.fut_xy).mean()),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train-scenes", type=int, default=18)
    p.add_argument("--test-scenes", type=int, default=6)
    p.add_argument("--duration", type=float, default=30.0, help="seconds per synthetic scene")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--dims", type=int, default=8, help="PCA components of the appearance vector")
    p.add_argument("--weights", default=str(SHIPPED_DETECTOR))
    p.add_argument("--out", default=str(ROOT / "runs/appearance_ablation.json"))
    args = p.parse_args()

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    detector = Detector(
        DetectorConfig(weights=args.weights, device="cpu"), low_conf=Tracker("bytetrack").low_conf
    )
    predictor = detector.model.predictor  # set up by the detector's warm-up prediction
    layer = predictor.model.model.model[-1]  # the Detect head: its inputs are the feature maps
    layer.register_forward_pre_hook(
        lambda module, inputs: setattr(predictor, "_feats", list(inputs[0]))
    )
    train = AppearanceWindows.concat(
        [scene_windows(100 + i, detector, args.duration) for i in range(args.train_scenes)]
    )
    test = AppearanceWindows.concat(
        [scene_windows(200 + i, detector, args.duration) for i in range(args.test_scenes)]
    )
    extract_s = time.perf_counter() - t0
    print(
        f"{len(train.obs_xy)} training and {len(test.obs_xy)} test windows from "
        f"{args.train_scenes} + {args.test_scenes} scenes; detector features of "
        f"{train.obs_app.shape[-1]} values per box ({extract_s:.0f} s)",
        flush=True,
    )
    project = pca(train.obs_app.reshape(-1, train.obs_app.shape[-1]), args.dims)
    app_train, app_test = project(train.obs_app), project(test.obs_app)
    shuffle = np.random.default_rng(0)
    arms = {
        "motion only": (None, None),
        "motion + appearance": (app_train, app_test),
        "motion + shuffled appearance (control)": (
            app_train[shuffle.permutation(len(app_train))],
            app_test[shuffle.permutation(len(app_test))],
        ),
    }
    cv = constant_velocity(test.obs_xy, PRED)
    results = {
        "constant velocity": [
            {"ade": float(ade(cv, test.fut_xy).mean()), "fde": float(fde(cv, test.fut_xy).mean())}
        ]
    }
    for name, (a_train, a_test) in arms.items():
        results[name] = []
        for seed in args.seeds:
            results[name].append(train_and_test(train, test, a_train, a_test, seed, args.epochs))
            print(
                f"{name}, seed {seed}: ADE {results[name][-1]['ade']:.2f} px  "
                f"FDE {results[name][-1]['fde']:.2f} px",
                flush=True,
            )
    summary = {
        name: {
            "ade": float(np.mean([r["ade"] for r in rs])),
            "fde": float(np.mean([r["fde"] for r in rs])),
            "runs": rs,
        }
        for name, rs in results.items()
    }
    report = {
        "what": (
            "test ADE/FDE in pixels, 8 + 12 steps of 0.4 s, tracker positions, synthetic scenes"
        ),
        "train_windows": len(train.obs_xy),
        "test_windows": len(test.obs_xy),
        "appearance_values_per_box": int(train.obs_app.shape[-1]),
        "pca_dims": args.dims,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "weights": args.weights,
        "seconds": round(time.perf_counter() - t0, 1),
        "results": summary,
    }
    write_json(args.out, report)
    print("\n| arm | ADE px | FDE px |\n|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['ade']:.2f} | {s['fde']:.2f} |")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
