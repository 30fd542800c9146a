"""Does `trajpred adapt` help on a camera it has not seen? Measured on synthetic scenes with
structure (a gate, an obstacle, strong perspective) and on real clips without ground truth.

Synthetic scenes: the tracker (shipped detector) runs over the first 60 % of a long video, and
`adapt` learns from those tracks only (its own held-out part is the last 20 % of them). The
last 40 % of the video is scored against the synthetic ground truth (bottom centres of the true
boxes in pixels, and the true ground positions in metres), on the same windows for every arm:
constant velocity, the shipped model in pixels and on the ground plane (homography), and the
models adapted in pixels and on the ground plane (plain fine-tuning, scene input, the scene
prior, both, and what `adapt`'s guard ships). Pixel forecasts are scored in metres through
the homography, metre forecasts in pixels as `predict --homography` draws and writes them
(`image_points`: steps that come nearer the camera than half the track's depth are held).
The same arms are also scored on the tracker's own tracks of the last 40 % (what a deployed
model reads: detector noise included), against their own future and against the true future
of the person each track follows (matched by box IoU at its last observed frame, as `trajpred
demo` scores forecasts).

Real clips (`--real`): no ground truth, so adapt holds out the last 40 % of the tracker's own
tracks and scores forecasts against the tracker's future positions there.

    python scripts/camera_benchmark.py --out runs/camera
    python scripts/camera_benchmark.py --out runs/camera --real ../shared/data/videos \\
        --real-weights ../shared/data/detectors/yolov8n_int8_openvino_model

Writes OUT/benchmark.md and OUT/benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trajpred.adapt import AdaptConfig, adapt, camera_windows, live_ground_tracks  # noqa: E402
from trajpred.benchmarking import synthetic_video, tracking_pipeline, video_source  # noqa: E402
from trajpred.checkpoint import load_forecaster, model_from_payload  # noqa: E402
from trajpred.forecast import forecast_on  # noqa: E402
from trajpred.formats import read_mot, read_tracks  # noqa: E402
from trajpred.geometry import GroundPlane  # noqa: E402
from trajpred.metrics import ade, constant_velocity, fde  # noqa: E402
from trajpred.pipeline import apply_homography, read_homography  # noqa: E402
from trajpred.tracks import Tracks  # noqa: E402
from trajpred.windows import Windows  # noqa: E402

SCENES = {  # name -> (SynthConfig overrides, what it shows)
    "gate": (
        {"gate_y": 0.5, "gate_x": 0.4, "n_points_of_interest": 2},
        "a wall across the view with one 2.5 m opening: paths funnel and bend",
    ),
    "obstacle_perspective": (
        {
            "obstacle_radius_m": 3.0,
            "obstacle_y": 0.4,
            "camera": {"height_m": 4.0, "tilt_deg": 18.0, "max_depth_m": 30.0},
        },
        "a 3 m round obstacle, low camera (4 m, 18 deg): strong perspective",
    ),
    "plain": ({}, "the default crowd: points of interest and exits only"),
}
OBS_LEN, NEIGHBOURS = 8, 8
CYCLISTS = {  # the class ablation's scene: the plain crowd, 60 % of arrivals riding, seen from
    "cyclist_share": 0.6,  # a high camera (a 54 x 35 m area: riders stay for a whole window)
    "camera": {"height_m": 20.0, "tilt_deg": 45.0, "max_depth_m": 60.0},
}


def track(video: Path, weights: str, classes, max_frames: int | None = None) -> tuple:
    """(pixel Tracks of the first max_frames frames, fps) from the detector + ByteTrack. Kept in
    memory at full precision (not through tracks.csv, which rounds to 0.01 px): the scene cache
    stores them exactly, so a rerun on cached tracks gives every figure again."""
    pipeline = tracking_pipeline(weights, classes)
    rows = []
    with pipeline.open(video_source(video)) as reader:
        fps = reader.info.fps
        for result in pipeline.track_frames(reader):
            t = result.tracks
            rows += [
                (result.frame_id, i, *b, k, c)
                for i, b, k, c in zip(t.track_id, t.box_xywh, t.class_id, t.conf, strict=True)
            ]
            if max_frames and result.frame_id >= max_frames:
                break
    a = np.array(rows, np.float64).reshape(-1, 8)
    box = a[:, 2:6]
    xy = np.column_stack([box[:, 0] + box[:, 2] / 2, box[:, 1] + box[:, 3]])
    return Tracks(a[:, 0], a[:, 1], xy, box, a[:, 6], a[:, 7], "px"), fps


def on_ground(tracks: Tracks, h: np.ndarray, fps: float) -> Tracks:
    """The tracker's pixel tracks as the live forecaster (and `adapt`) reads them on the ground
    plane: mapped and Kalman-filtered with the defaults of `predict --homography`."""
    return live_ground_tracks(tracks, h, fps, 0.4)


def true_ground(scene_dir: Path) -> Tracks:
    """The synthetic ground truth's ground positions of every person, in metres."""
    world = read_tracks(scene_dir / "gt_world.txt", "eth_ucy")
    world.units = "m"
    return world


def paired_test_windows(scene_dir: Path, cut: int, fps: float):
    """Windows of the ground truth after frame `cut`, in pixels and metres, the same (track,
    frame) keys in both."""
    px = read_mot(scene_dir / "gt_mot.txt")
    m = true_ground(scene_dir)
    px, m = px.select(px.frame_id > cut), m.select(m.frame_id > cut)
    return paired(
        camera_windows(px, fps, 0.4, OBS_LEN, 12, NEIGHBOURS),
        camera_windows(m, fps, 0.4, OBS_LEN, 12, NEIGHBOURS),
    )


def paired(wp: Windows, wm: Windows) -> tuple[Windows, Windows]:
    """The windows of one set of tracks in pixels and in metres with the same (track, frame)
    keys, in the same order."""
    kp = {k: i for i, k in enumerate(zip(wp.track_id.tolist(), wp.frame_id.tolist(), strict=True))}
    km = {k: i for i, k in enumerate(zip(wm.track_id.tolist(), wm.frame_id.tolist(), strict=True))}
    both = sorted(set(kp) & set(km))
    return wp.select(np.array([kp[k] for k in both])), wm.select(np.array([km[k] for k in both]))


def by_frame_and_track(tracks: Tracks) -> dict[tuple[int, int], np.ndarray]:
    keys = zip(tracks.frame_id.tolist(), tracks.track_id.tolist(), strict=True)
    return dict(zip(keys, tracks.xy, strict=True))


def true_futures(
    scene_dir: Path, tracks: Tracks, wp: Windows, frames_per_step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the tracker's windows `wp`: the true future of the person each one follows, as the
    demo scores the pipeline's forecasts. The person is the ground-truth box the track's box
    matched (IoU >= 0.5, one-to-one within the frame) at the last observed frame. Returns the
    rows of `wp` whose person is in the ground truth at every forecast frame, and that
    person's bottom centres (px) and ground positions (m) there, (rows, pred_len, 2) each."""
    from trajpred.demo import GroundTruth, match_boxes

    truth = GroundTruth(read_mot(scene_dir / "gt_mot.txt"))
    feet_px, feet_m = truth.feet, by_frame_and_track(true_ground(scene_dir))
    person = {}  # (frame, tracker id) -> ground-truth id
    for frame in np.unique(wp.frame_id).tolist():
        seen = tracks.frame_id == frame
        gt_ids, gt_boxes = truth.at(frame)
        for i, j in match_boxes(tracks.box_xywh[seen], gt_boxes):
            person[frame, int(tracks.track_id[seen][i])] = int(gt_ids[j])
    rows, px, m = [], [], []
    steps = frames_per_step * np.arange(1, wp.pred_len + 1)
    for row, (tid, frame) in enumerate(
        zip(wp.track_id.tolist(), wp.frame_id.tolist(), strict=True)
    ):
        g = person.get((frame, tid))
        keys = [(frame + int(s), g) for s in steps]
        if g is None or not all(k in feet_px and k in feet_m for k in keys):
            continue
        rows.append(row)
        px.append([feet_px[k] for k in keys])
        m.append([feet_m[k] for k in keys])
    return np.array(rows, np.int64), np.array(px), np.array(m)


def image_points(ground: GroundPlane, pred_m: np.ndarray, windows_m: Windows) -> np.ndarray:
    """(N, pred_len, 2) metre forecasts of `windows_m` -> pixels, as the live pipeline maps
    them (GroundPlane.to_image from each track's last observed ground position): mapped raw
    through the inverse homography, a step heading at the camera lands far below the image, or
    behind the camera, and one such window outweighs thousands in a mean pixel error."""
    return ground.to_image(pred_m, windows_m.obs_xy[:, -1])[0]


def predict(model, w) -> np.ndarray:
    if model is None:
        return constant_velocity(w.obs_xy, w.pred_len)
    return forecast_on(model, w).mean


def scene_tracks(name: str, overrides: dict, out: Path, duration: float, seed: int):
    """(scene folder, SynthConfig, cut frame, tracker's pixel tracks of the whole video, fps,
    seconds spent tracking): the video and the tracks are written once and read back on later
    runs. The tracker runs online, so its tracks up to the cut do not depend on what follows."""
    from trajpred.formats import write_csv

    suffix = "" if seed == 7 else f"_seed{seed}"
    scene_dir = out / f"{name}_{duration:g}s{suffix}"
    cfg = synthetic_video(scene_dir, {"duration_s": duration, "seed": seed, **overrides})
    cut = int(round(cfg.n_frames * 0.6))
    cache = scene_dir / "tracks_all.csv"
    t0 = time.perf_counter()
    if cache.exists():
        tracks, fps = read_tracks(cache), cfg.fps
    else:
        weights = str(ROOT / "data/detector/synth_yolo.pt")
        tracks, fps = track(scene_dir / "video.mp4", weights, None)
        write_csv(cache, tracks)
    return scene_dir, cfg, cut, tracks, fps, time.perf_counter() - t0


SHIPPED = str(ROOT / "data/checkpoints/video.pt")  # the default start of every arm


def quiet_adapt(
    tracks, fps, work: Path, arms: dict, start: str, epochs: int, min_windows: int, **options
):
    """`adapt` of the starting checkpoint `start` with the benchmark's settings (AdaptConfig
    `options` on top), no progress or log; every candidate it built lands in `arms`."""
    config = AdaptConfig(
        checkpoint=start,
        epochs=epochs,
        min_train_windows=min_windows,
        min_val_windows=min(20, min_windows),
        **options,
    )
    return adapt(tracks, fps, work, config, progress=False, log=lambda *_: None, arms=arms)


def score_scene(
    name: str,
    overrides: dict,
    out: Path,
    duration: float,
    epochs: int,
    seed: int = 7,
    min_windows: int = 100,
    plain: bool = True,
    average: bool = False,
    start: str = SHIPPED,
    ceiling: bool = False,
) -> dict:
    scene_dir, cfg, cut, all_tracks, fps, track_s = scene_tracks(
        name, overrides, out, duration, seed
    )
    tracks = all_tracks.select(all_tracks.frame_id <= cut)  # adapt sees the first 60 % only
    h = read_homography(scene_dir / "homography.txt")
    ground_plane = GroundPlane(h, str(scene_dir / "homography.txt"))
    shipped = load_forecaster(start)
    arms = {
        "constant velocity (px)": (None, "px"),
        "constant velocity (m)": (None, "m"),
        "shipped (px)": (shipped, "px"),
        "shipped + homography (m)": (shipped, "m"),
    }
    reports = {}
    for space, learn_on in (("px", tracks), ("m", on_ground(tracks, h, fps))):
        unit = "" if space == "px" else " + homography"
        for scene_input in (False, True) if plain else (True,):
            got: dict = {}
            t0 = time.perf_counter()
            report, payload = quiet_adapt(
                learn_on,
                fps,
                scene_dir / f"adapt_{space}{'' if scene_input else '_plain'}",
                got,
                start,
                epochs=epochs,
                min_windows=min_windows,
                scene_input=scene_input,
                average=average,
            )
            key = f"{space}{'' if scene_input else ' plain'}"
            reports[key] = {**report.to_dict(), "adapt_s": time.perf_counter() - t0}
            if scene_input:
                arms[f"prior (shipped + prior){unit} ({space})"] = (
                    got["starting model + prior"],
                    space,
                )
                arms[f"scene input{unit} ({space})"] = (got["fine-tuned"], space)
                arms[f"both (scene input + prior){unit} ({space})"] = (
                    got["fine-tuned + prior"],
                    space,
                )
                if "fine-tuned, averaged" in got:
                    arms[f"averaged scene input{unit} ({space})"] = (
                        got["fine-tuned, averaged"],
                        space,
                    )
                    arms[f"averaged + prior{unit} ({space})"] = (
                        got["fine-tuned, averaged + prior"],
                        space,
                    )
                arms[f"adapt as shipped (guarded){unit} ({space})"] = (
                    model_from_payload(payload),
                    space,
                )
            else:
                arms[f"plain fine-tune{unit} ({space})"] = (got["fine-tuned"], space)
                arms[f"plain fine-tune + prior{unit} ({space})"] = (
                    got["fine-tuned + prior"],
                    space,
                )
    if ceiling:  # how much the scene offers to learn on the ground plane, at best
        world = true_ground(scene_dir)
        t0 = time.perf_counter()
        report, payload = quiet_adapt(
            world.select(world.frame_id <= cut),
            fps,
            scene_dir / "adapt_truth",
            {},
            start,
            epochs=epochs,
            min_windows=min_windows,
        )
        reports["m, true positions"] = {**report.to_dict(), "adapt_s": time.perf_counter() - t0}
        arms["adapt on the true positions + homography (m)"] = (model_from_payload(payload), "m")
    wp, wm = paired_test_windows(scene_dir, cut, fps)
    # The same arms on the tracker's own tracks of the last 40 %: what a deployed model reads
    # (detector noise, far-away jitter on the ground plane), scored against their own future
    # ("_trk") and against the true future of the person each track follows ("_seen": what a
    # user of the live pipeline gets).
    later = all_tracks.select(all_tracks.frame_id > cut)
    ground = on_ground(all_tracks, h, fps)  # filtered from the start, as live
    tp, tm = paired(
        camera_windows(later, fps, 0.4, OBS_LEN, 12, NEIGHBOURS),
        camera_windows(ground.select(ground.frame_id > cut), fps, 0.4, OBS_LEN, 12, NEIGHBOURS),
    )
    seen, seen_px, seen_m = true_futures(scene_dir, later, tp, int(round(fps * 0.4)))
    tests = {  # tag -> (pixel windows, metre windows, true future px, true future m)
        "": (wp, wm, wp.fut_xy, wm.fut_xy),
        "_trk": (tp, tm, tp.fut_xy, tm.fut_xy),
        "_seen": (tp.select(seen), tm.select(seen), seen_px, seen_m),
    }
    rows = []
    for arm, (model, space) in arms.items():
        row = {"arm": arm}
        for tag, (px_w, m_w, truth_px, truth_m) in tests.items():
            pred = predict(model, px_w if space == "px" else m_w)
            pred_px = pred if space == "px" else image_points(ground_plane, pred, m_w)
            pred_m = pred if space == "m" else apply_homography(h, pred)
            row.update(
                {
                    f"ade_px{tag}": float(ade(pred_px, truth_px).mean()),
                    f"fde_px{tag}": float(fde(pred_px, truth_px).mean()),
                    f"ade_m{tag}": float(ade(pred_m, truth_m).mean()),
                    f"fde_m{tag}": float(fde(pred_m, truth_m).mean()),
                }
            )
        rows.append(row)
    return {
        "scene": name,
        "seed": seed,
        "about": SCENES[name][1],
        "frames": cfg.n_frames,
        "adapt_frames": cut,
        "test_windows": len(wp),
        "tracker_test_windows": len(tp),
        "seen_test_windows": len(seen),
        "track_s": track_s,
        "adapt": reports,
        "rows": rows,
    }


def score_classes(
    out: Path, duration: float, epochs: int, seed: int, min_windows: int, start: str = SHIPPED
) -> dict:
    """Does the class input help where the footage holds two classes? A plain crowd in which
    most ride (class 1: faster, turning more slowly, never stopping); no video and no tracker:
    adapt learns from the ground-truth tracks of the first 60 % (pixels, with their classes)
    with and without the class one-hot in the scene input, and both are scored on the
    ground truth of the last 40 %, overall and per class."""
    from trajpred.config import from_dict
    from trajpred.synth.world import SynthConfig, simulate

    cfg = from_dict(SynthConfig, {"duration_s": duration, "seed": seed, **CYCLISTS})
    tracks = simulate(cfg).mot_tracks()
    cut = int(round(cfg.n_frames * 0.6))
    shipped = load_forecaster(start)
    arms = {"constant velocity": None, "shipped": shipped}
    reports = {}
    for class_input in (False, True):
        got: dict = {}
        tag = "class input" if class_input else "no class input"
        report, payload = quiet_adapt(
            tracks.select(tracks.frame_id <= cut),
            cfg.fps,
            out / f"classes_{duration:g}s_seed{seed}" / tag.replace(" ", "_"),
            got,
            start,
            epochs=epochs,
            min_windows=min_windows,
            class_input=class_input,
        )
        reports[tag] = report.to_dict()
        arms[f"scene input, {tag}"] = got["fine-tuned"]
        arms[f"scene input + prior, {tag}"] = got["fine-tuned + prior"]
        arms[f"adapt as shipped (guarded), {tag}"] = model_from_payload(payload)
    test = camera_windows(
        tracks.select(tracks.frame_id > cut), cfg.fps, 0.4, OBS_LEN, 12, NEIGHBOURS
    )
    rows = []
    for arm, model in arms.items():
        pred = predict(model, test)
        row = {"arm": arm}
        for name, rows_of in (("all", test.class_id >= 0), *_per_class(test.class_id)):
            row[f"ade_{name}"] = float(ade(pred[rows_of], test.fut_xy[rows_of]).mean())
            row[f"fde_{name}"] = float(fde(pred[rows_of], test.fut_xy[rows_of]).mean())
        rows.append(row)
    counts = {str(c): int((test.class_id == c).sum()) for c in np.unique(test.class_id)}
    return {
        "seed": seed,
        "frames": cfg.n_frames,
        "test_windows": counts,
        "adapt": reports,
        "rows": rows,
    }


def _per_class(class_id: np.ndarray) -> list[tuple[str, np.ndarray]]:
    return [(f"class{int(c)}", class_id == c) for c in np.unique(class_id)]


def score_real(video: Path, weights: str, classes, epochs: int, start: str = SHIPPED) -> dict:
    tracks, fps = track(video, weights, classes)
    try:
        report, _ = adapt(
            tracks,
            fps,
            Path(os.environ.get("TMPDIR", "/tmp")) / f"adapt_{video.stem}",
            AdaptConfig(checkpoint=start, epochs=epochs, val_fraction=0.4),
            progress=False,
            log=lambda *_: None,
        )
        return {"clip": video.name, "classes": classes, **report.to_dict()}
    except Exception as e:  # too few windows: say so in the table
        return {"clip": video.name, "classes": classes, "error": str(e)}


def classes_markdown(ablation: dict) -> list[str]:
    names = [k[4:] for k in ablation["rows"][0] if k.startswith("fde_")]
    trained = {k: r["train_windows"] for k, r in ablation["adapt"].items()}
    return [
        f"### class input (seed {ablation['seed']}): plain crowd with cyclists (class 1), "
        "high camera, ground-truth tracks, pixels",
        "",
        f"{ablation['frames']} frames; test windows per class {ablation['test_windows']}; "
        f"adapt trained on {trained} windows; classes seen: "
        f"{ablation['adapt']['class input']['classes']}",
        "",
        *[f"guard, {k}: {r['guard']}" for k, r in ablation["adapt"].items()],
        "",
        "| arm | " + " | ".join(f"ADE {n} | FDE {n}" for n in names) + " |",
        "|---|" + "---|---|" * len(names),
        *[
            f"| {r['arm']} | "
            + " | ".join(f"{r['ade_' + n]:.2f} | {r['fde_' + n]:.2f}" for n in names)
            + " |"
            for r in ablation["rows"]
        ],
        "",
    ]


def markdown(scenes: list[dict], real: list[dict], ablation: dict | None = None) -> str:
    lines = classes_markdown(ablation) if ablation else []
    for s in scenes:
        lines += [
            f"### {s['scene']} (seed {s['seed']}): {s['about']}",
            "",
            f"{s['frames']} frames at 10 fps; adapted on the first {s['adapt_frames']}; "
            f"{s['test_windows']} test windows in the last 40 %; adapt trained on "
            f"{s['adapt']['px']['train_windows']} windows (px; "
            f"{s['adapt']['px']['train_windows_all_phases']} over all phases), "
            f"{s['adapt']['px']['adapt_s']:.0f} s + {s['adapt']['m']['adapt_s']:.0f} s; "
            f"prior weight px {s['adapt']['px']['prior_weight']:g}, "
            f"m {s['adapt']['m']['prior_weight']:g}; "
            f"shipped the adapted model: px {s['adapt']['px']['adapted']}, "
            f"m {s['adapt']['m']['adapted']}",
            "",
            f"guard px: {s['adapt']['px']['guard']}",
            "",
            f"guard m: {s['adapt']['m']['guard']}",
            "",
            "adapt's own cross-validation in time over the first 60 % (tracker's tracks), "
            "ADE / FDE:",
            "",
            *[
                f"- {sp}: "
                + "; ".join(
                    f"{sc['arm']} {sc['ade']:.3g} / {sc['fde']:.3g}"
                    for sc in s["adapt"][sp]["scores"]
                )
                for sp in s["adapt"]
            ],
            "",
            f"ground truth: {s['test_windows']} test windows; tracker: "
            f"{s['tracker_test_windows']} windows of the tracker's own tracks, scored against "
            f"their own future; seen -> true: {s['seen_test_windows']} of them scored against "
            "the true future of the person the track follows",
            "",
            "| arm | ADE px | FDE px | ADE m | FDE m | tracker: ADE px | FDE px | ADE m | FDE m "
            "| seen -> true: ADE px | FDE px | ADE m | FDE m |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['arm']} | "
            + " | ".join(
                f"{r[f'ade_px{tag}']:.2f} | {r[f'fde_px{tag}']:.2f} | {r[f'ade_m{tag}']:.3f} | "
                f"{r[f'fde_m{tag}']:.3f}"
                for tag in ("", "_trk", "_seen")
            )
            + " |"
            for r in s["rows"]
        ]
        lines.append("")
    if real:
        lines += ["### real clips (held-out last 40 % of the tracker's own tracks)", ""]
        lines += [
            "| clip | windows (train / held-out) | arm | ADE px | FDE px |",
            "|---|---|---|---|---|",
        ]
        for r in real:
            if "error" in r:
                lines.append(f"| {r['clip']} | - | {r['error']} | - | - |")
                continue
            for sc in r["scores"]:
                lines.append(
                    f"| {r['clip']} | {r['train_windows']} / {r['val_windows']} | {sc['arm']} | "
                    f"{sc['ade']:.2f} | {sc['fde']:.2f} |"
                )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/camera")
    p.add_argument(
        "--scenes", nargs="*", default=list(SCENES), choices=list(SCENES), help="none: no scene"
    )
    p.add_argument("--duration", type=float, default=600.0, help="seconds of each synthetic video")
    p.add_argument("--epochs", type=int, default=AdaptConfig().epochs)
    p.add_argument("--seeds", type=int, nargs="+", default=[7], help="synthetic scene seeds")
    p.add_argument(
        "--min-windows",
        type=int,
        default=AdaptConfig().min_train_windows,
        help="fewest training windows adapt accepts (smaller for quick tests)",
    )
    p.add_argument(
        "--skip-plain",
        action="store_true",
        help="leave out the plain fine-tune arms (no scene input): half the adapt time",
    )
    p.add_argument(
        "--average",
        action="store_true",
        help="also adapt's weight-averaged candidates (`adapt --average`)",
    )
    p.add_argument(
        "--ceiling",
        action="store_true",
        help="also adapt on the ground truth's own ground positions of the first 60 %% (every "
        "person, no tracker noise): how much the scene offers to learn in metres, at best",
    )
    p.add_argument(
        "--classes",
        action="store_true",
        help="also the class-input ablation (ground-truth tracks of a crowd with cyclists)",
    )
    p.add_argument(
        "--real", default=None, help="folder with highway.avi and one-by-one-person-detection.mp4"
    )
    p.add_argument("--real-weights", default=None)
    p.add_argument(
        "--checkpoint",
        default=SHIPPED,
        help="the starting forecaster ('shipped' in the tables; default: the shipped video model)",
    )
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scenes = [
        score_scene(
            n,
            SCENES[n][0],
            out,
            args.duration,
            args.epochs,
            seed,
            args.min_windows,
            plain=not args.skip_plain,
            average=args.average,
            start=args.checkpoint,
            ceiling=args.ceiling,
        )
        for seed in args.seeds
        for n in args.scenes
    ]
    ablation = None
    if args.classes:
        ablation = score_classes(
            out, args.duration, args.epochs, args.seeds[0], args.min_windows, args.checkpoint
        )
    real = []
    if args.real:
        real.append(
            score_real(
                Path(args.real) / "highway.avi",
                args.real_weights,
                ["car", "bus", "truck", "motorcycle"],
                args.epochs,
                args.checkpoint,
            )
        )
        real.append(
            score_real(
                Path(args.real) / "one-by-one-person-detection.mp4",
                args.real_weights,
                ["person"],
                args.epochs,
                args.checkpoint,
            )
        )
    report = {"scenes": scenes, "real": real, "classes": ablation}
    (out / "benchmark.json").write_text(json.dumps(report, indent=2))
    text = markdown(scenes, real, ablation)
    (out / "benchmark.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
