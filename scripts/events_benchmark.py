"""Benchmark the event probabilities of `predict --zones`: are they calibrated, do they beat
constant velocity, and how early do alerts fire?

    .venv/bin/python scripts/events_benchmark.py --out runs/events_benchmark

Scenes (all in pixels, forecast live by the shipped video model with its default online
calibration, exactly as `predict` does; the tracks are fed frame by frame):
1. synthetic: fresh synthetic scenes (seeds 720000+, none used to train or calibrate the
   models), their exact ground-truth tracks, scored against that truth;
2. real annotated: the pedestrian tracks of four real cameras in ../shared/data/tracks
   (MOTChallenge gt, flag-0 rows dropped), scored against the annotated future;
3. real clips: ../shared/data/videos tracked with the COCO detector of ../shared/data/detectors
   (needs openvino), scored against the tracker's own future.
Each scene gets the same kind of targets, placed from where its tracks are (so no target is
hand-picked to flatter a model): four zones tiling the middle of the area the tracks cover,
a line across it each way, and a near-miss distance of 1.5 median box widths.

Cases, arms (`model`, `cv` = constant velocity with the model's calibrated radii,
`inside_now` = 0 before the entry) and scores (Brier skill, AUROC, reliability by decile, alert
precision and lead time) are those of trajpred/event_scores.py, which `trajpred demo --zones`
prints too.
Speed: `predict` on the real clips with and without --zones (rounds alternating which goes
first), and EventWatch alone on a busy frame (50 tracks, 5 zones); --speed-only measures just
that into an earlier run's JSON (it wants an otherwise idle machine, the scenes do not).
Writes events_benchmark.json and events_benchmark.png (reliability curves) into --out.
"""

from __future__ import annotations

import argparse
import configparser
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trajpred.benchmarking import frames_of, tracked_frames  # noqa: E402
from trajpred.checkpoint import load_forecaster  # noqa: E402
from trajpred.event_scores import ARMS, MIN_BIN_CASES, EventTally, auto_zones  # noqa: E402
from trajpred.events import EventsConfig  # noqa: E402
from trajpred.formats import read_tracks  # noqa: E402
from trajpred.pipeline import ForecastConfig, LiveForecaster  # noqa: E402
from trajpred.tracking import TrackedBoxes  # noqa: E402
from trajpred.video import expand_source  # noqa: E402
from trajpred.zones import parse_zones  # noqa: E402

VIDEO_MODEL = ROOT / "data/checkpoints/video.pt"
SYNTH_SEED0 = 720000
ALERT = 0.5


# ------------------------------------------------------------------ scenes and their targets


def synthetic_scenes(n: int, duration: float):
    from trajpred.config import from_dict
    from trajpred.synth.world import SynthConfig, simulate

    for k in range(n):
        seed = SYNTH_SEED0 + k
        rng = np.random.default_rng(seed)
        camera = {"height_m": float(rng.uniform(3, 10)), "tilt_deg": float(rng.uniform(15, 45))}
        cfg = from_dict(SynthConfig, {"seed": seed, "duration_s": duration, "camera": camera})
        scene = simulate(cfg)
        yield f"synth_{seed}", frames_of(scene.mot_tracks()), cfg.fps


def mot_scenes(root: Path):
    for seq in sorted(p for p in root.iterdir() if (p / "gt" / "gt.txt").is_file()):
        info = configparser.ConfigParser()
        info.read(seq / "seqinfo.ini")
        fps = float(info["Sequence"]["frameRate"])
        tracks = read_tracks(seq / "gt" / "gt.txt", "mot", ignore_zero_conf=True)
        yield seq.name, frames_of(tracks), fps


def clip_scenes(videos: Path, weights: Path, work: Path, only: str | None = None):
    for video, classes in CLIPS:
        if (videos / video).is_file() and only in (None, video):
            frames, fps = tracked_frames(videos / video, str(weights), work, classes)
            yield video, frames, fps


# ------------------------------------------------------------------ one scene


class Timed:
    """Wraps a callable and adds up the seconds spent in it."""

    def __init__(self, fn):
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args):
        start = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def run_scene(name: str, frames: list[TrackedBoxes], fps: float) -> dict:
    model = load_forecaster(VIDEO_MODEL)
    seen = [b for b in frames if len(b)]
    spec = auto_zones(
        np.concatenate([b.xy for b in seen]), np.concatenate([b.box_xywh[:, 2] for b in seen])
    )
    zones = parse_zones(spec, name)
    cfg = EventsConfig(min_probability=1e-9, alert=ALERT)
    live = LiveForecaster(model, fps, ForecastConfig(), "cpu", None, zones, cfg)
    live.watch.update = events_timer = Timed(live.watch.update)
    tally = EventTally(zones, cfg, model.cfg.dt_s, model.cfg.pred_len, fps)
    forecasts = 0
    for f, boxes in enumerate(frames, 1):
        fc = live.update(f, boxes)
        forecasts += len(fc)
        tally.add(f, boxes, fc, live.shape.ratio)
    return {
        "frames": len(frames),
        "fps": fps,
        "forecasts": forecasts,
        "targets": spec,
        "events_ms_per_frame": 1e3 * events_timer.seconds / max(events_timer.calls, 1),
        "forecast_ms_per_frame": 1e3 * live.seconds / max(len(frames), 1),
        **tally.result(),
    }


# ------------------------------------------------------------------ speed


def fifty_tracks(repeats: int = 200) -> dict:
    """EventWatch alone on a busy frame: 50 tracks spread over 1920 x 1080 px walking in random
    directions (up to ~100 px per step), 5 zones of 200 x 200 px, near misses at 40 px."""
    from trajpred.events import EventWatch

    rng = np.random.default_rng(0)
    spec = {
        "zones": [
            {"name": f"zone{i}", "polygon": [[100 + 350 * i, 500], [300 + 350 * i, 500],
                                             [300 + 350 * i, 700], [100 + 350 * i, 700]]}
            for i in range(5)
        ],
        "near_miss": {"distance": 40},
    }  # fmt: skip
    watch = EventWatch(parse_zones(spec, "fifty"), EventsConfig(), 0.4, 12)
    here = rng.uniform([0, 0], [1920, 1080], (50, 2))
    mean = here[:, None] + rng.normal(0, 15, (50, 1, 2)) * np.arange(1, 13)[None, :, None]
    r50 = np.tile(np.linspace(2, 30, 12), (50, 1))
    ids = np.arange(50)
    events = watch.update(ids, here, mean, r50, 2 * r50)
    start = time.perf_counter()
    for _ in range(repeats):
        watch.update(ids, here, mean, r50, 2 * r50)
    ms = 1e3 * (time.perf_counter() - start) / repeats
    return {"tracks": 50, "zones": 5, "events": len(events), "ms_per_frame": ms}


CLIPS = (("one-by-one-person-detection.mp4", [0]), ("highway.avi", [2, 3, 5, 7]))


def speed(videos: Path, weights: Path, work: Path, rounds: int) -> dict:
    """predict's frame rate on each real clip with and without --zones (the scene's targets),
    rounds alternating which goes first, one writer process; the ratio per round."""
    import dataclasses

    import yaml

    from trajpred.commands.predict import predict_video
    from trajpred.pipeline import Pipeline, PipelineConfig
    from trajpred.writer import WriterProcess

    out = {}
    with WriterProcess() as writer:
        for video, classes in CLIPS:
            if not (videos / video).is_file():
                continue
            frames, _ = next(clip_scenes(videos, weights, work, only=video))[1:]
            seen = [b for b in frames if len(b)]
            spec = auto_zones(
                np.concatenate([b.xy for b in seen]),
                np.concatenate([b.box_xywh[:, 2] for b in seen]),
            )
            zones = work / f"{Path(video).stem}_zones.yaml"
            zones.write_text(yaml.safe_dump(spec))
            base = PipelineConfig()
            base = dataclasses.replace(
                base,
                detector=dataclasses.replace(base.detector, weights=str(weights), classes=classes),
            )
            fps = {"plain": [], "zones": []}
            for r in range(rounds):
                for arm in ("plain", "zones") if r % 2 == 0 else ("zones", "plain"):
                    events = dataclasses.replace(
                        base.events, zones=str(zones) if arm == "zones" else None
                    )
                    pipeline = Pipeline(dataclasses.replace(base, events=events))
                    with pipeline.open(expand_source(str(videos / video))[0][0]) as reader:
                        summary = predict_video(
                            pipeline, reader, work / "speed" / arm, progress=False, writer=writer
                        )
                    fps[arm].append(summary.fps)
            ratios = [z / p for z, p in zip(fps["zones"], fps["plain"], strict=True)]
            out[video] = {
                "targets": len(spec["zones"]) + len(spec["lines"]) + 1,
                "fps_plain": fps["plain"],
                "fps_zones": fps["zones"],
                "ratio_per_round": ratios,
                "ratio_median": float(np.median(ratios)),
            }
            print(f"{video}: zones / plain fps {[round(x, 3) for x in ratios]}", flush=True)
    return out


# ------------------------------------------------------------------ report


def number(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def scene_rows(report: dict) -> dict[str, list[str]]:
    """The events page's first table: scene -> cells (all kinds of event together)."""
    rows = {}
    for scene, r in report["scenes"].items():
        every = r["cases"].get("all")
        if every is None:
            continue
        m, cv, now = (every[arm] for arm in ARMS)
        alert = r["alerts"]["model"]
        rows[scene] = [
            str(m["cases"]),
            f"{m['base_rate']:.2f}",
            number(m["brier_skill"], ".2f"),
            number(cv["brier_skill"], ".2f"),
            number(now["brier_skill"], ".2f"),
            number(m["auroc"], ".3f"),
            f"{m['max_decile_gap']:.2f}",
            str(alert["alerts"]),
            number(alert["precision"], ".2f"),
            number(alert["median_lead_s"], ".1f"),
        ]
    return rows


def kind_rows(report: dict) -> dict[str, list[str]]:
    """The events page's second table: "scene, kind" -> Brier skill (model, constant
    velocity), AUROC and the largest decile gap of each kind of event."""
    rows = {}
    for scene, r in report["scenes"].items():
        for kind in ("zone", "line", "near_miss"):
            if kind in r["cases"]:
                m, cv = r["cases"][kind]["model"], r["cases"][kind]["cv"]
                rows[f"{scene}, {kind}"] = [
                    str(m["cases"]),
                    f"{m['base_rate']:.2f}",
                    number(m["brier_skill"], ".2f"),
                    number(cv["brier_skill"], ".2f"),
                    number(m["auroc"], ".3f"),
                    f"{m['max_decile_gap']:.2f}",
                ]
    return rows


SCENE_HEADER = (
    "| scene | cases | base rate | Brier skill | constant velocity | inside now | AUROC "
    "| largest decile gap | alerts | alerts true | median lead (s) |"
)
KIND_HEADER = (
    "| scene, kind | cases | base rate | Brier skill | constant velocity | AUROC "
    "| largest decile gap |"
)


def goals(report: dict) -> str:
    """The issue's goals against the run, as the events page lists them."""
    scenes = {s: r for s, r in report["scenes"].items() if "all" in r["cases"]}

    def which(test) -> str:
        met = [s for s, r in scenes.items() if test(r)]
        names = ", ".join(met) if met else "none"
        return f"{len(met)} of {len(scenes)} scenes ({names})"

    def model(r):
        return r["cases"]["all"]["model"]

    def cv(r):
        return r["cases"]["all"]["cv"]

    def alert(r):
        return r["alerts"]["model"]

    lines = [
        "- calibrated, every decile within +-0.1 (deciles of 30 cases or more): "
        + which(lambda r: model(r)["max_decile_gap"] <= 0.1),
        "- Brier skill >= 0.3 against the base rate: "
        + which(lambda r: (model(r)["brier_skill"] or -1) >= 0.3),
        "- better than constant velocity (lower Brier score): "
        + which(lambda r: model(r)["brier"] < cv(r)["brier"]),
        "- alerts at 0.5 a median of >= 2 s before the event: "
        + which(lambda r: (alert(r)["median_lead_s"] or 0) >= 2.0),
        "- alerts at 0.5 that come true >= 80 % of the time: "
        + which(lambda r: (alert(r)["precision"] or 0) >= 0.8),
    ]
    if "speed" in report:
        ratios = [v["ratio_median"] for v in report["speed"].values()]
        met = all(r >= 0.97 for r in ratios)
        lines.append(
            f"- `predict` no more than 3 % slower with zones on the real clips: "
            f"{'met' if met else 'not met'} (median frame rate ratios "
            + ", ".join(f"{r:.3f}" for r in ratios)
            + ")"
        )
    if "fifty_tracks" in report:
        ms = report["fifty_tracks"]["ms_per_frame"]
        lines.append(
            f"- < 2 ms per frame at 50 tracks and 5 zones: {'met' if ms < 2 else 'not met'} "
            f"({ms:.1f} ms)"
        )
    return "\n".join(lines)


def markdown(header: str, rows: dict[str, list[str]]) -> str:
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenes = list(report["scenes"])
    fig, axes = plt.subplots(1, len(scenes), figsize=(3.2 * len(scenes), 3.4), squeeze=False)
    for ax, scene in zip(axes[0], scenes, strict=True):
        for arm, style in (("model", "o-"), ("cv", "s--")):
            rows = report["scenes"][scene]["cases"]["all"][arm]["reliability"]
            rows = [r for r in rows if r["cases"] >= MIN_BIN_CASES]
            ax.plot([r["predicted"] for r in rows], [r["observed"] for r in rows], style, label=arm)
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.fill_between([0, 1], [-0.1, 0.9], [0.1, 1.1], color="grey", alpha=0.15)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(scene[:24], fontsize=8)
        ax.set_xlabel("predicted probability")
    axes[0, 0].set_ylabel("observed frequency")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="runs/events_benchmark", type=Path)
    p.add_argument("--shared", default=ROOT.parent / "shared" / "data", type=Path)
    p.add_argument("--synthetic", type=int, default=3, help="synthetic scenes")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per synthetic scene")
    p.add_argument("--no-clips", action="store_true", help="skip the real clips (needs openvino)")
    p.add_argument("--no-speed", action="store_true", help="skip predict's speed with zones")
    p.add_argument("--rounds", type=int, default=3, help="speed rounds per clip and arm")
    p.add_argument(
        "--speed-only",
        action="store_true",
        help="measure only the speed, into the JSON an earlier run left in --out (speed wants "
        "an otherwise idle machine; the scenes do not)",
    )
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.shared / "detectors" / "yolov8n_int8_openvino_model"
    path = args.out / "events_benchmark.json"
    if args.speed_only:
        report = json.loads(path.read_text())
        measure_speed(report, args.shared, weights, args)
        return finish(report, args.out)
    scenes = list(synthetic_scenes(args.synthetic, args.duration))
    if (args.shared / "tracks" / "mot").is_dir():
        scenes += list(mot_scenes(args.shared / "tracks" / "mot"))
    if not args.no_clips and weights.is_dir():
        scenes += list(clip_scenes(args.shared / "videos", weights, args.out))
    report = {
        "what": __doc__.split("\n\n")[0],
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "model": str(VIDEO_MODEL.relative_to(ROOT)),
        "alert": ALERT,
        "scenes_measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "scenes": {},
    }
    for name, frames, fps in scenes:
        start = time.time()
        report["scenes"][name] = run_scene(name, frames, fps)
        print(f"{name}: {len(frames)} frames in {time.time() - start:.0f} s", flush=True)
    if not args.no_speed:
        measure_speed(report, args.shared, weights, args)
    return finish(report, args.out)


def measure_speed(report: dict, shared: Path, weights: Path, args) -> None:
    report["speed_measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report["fifty_tracks"] = fifty_tracks()
    if weights.is_dir():
        report["speed"] = speed(shared / "videos", weights, args.out, args.rounds)


def finish(report: dict, out: Path) -> int:
    """Write the JSON and the reliability plot, print the tables."""
    (out / "events_benchmark.json").write_text(json.dumps(report, indent=1))
    plot(report, out / "events_benchmark.png")
    print(markdown(SCENE_HEADER, scene_rows(report)))
    print()
    print(markdown(KIND_HEADER, kind_rows(report)))
    print()
    print(goals(report))
    for clip, r in report.get("speed", {}).items():
        print(f"{clip}: predict --zones at {r['ratio_median']:.3f} of predict's frame rate")
    if "fifty_tracks" in report:
        ms = report["fifty_tracks"]["ms_per_frame"]
        print(f"50 tracks, 5 zones, near misses: {ms:.2f} ms/frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
