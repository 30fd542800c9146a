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

A case is a (frame, track, target) on frames 0.4 s apart whose outcome is known: the track's
future is seen to the end of the horizon (pred_len * dt_s), or the event happens before it is
lost. Zones score only tracks outside the zone, near misses only pairs not already that close,
as events.csv does. Three forecasters of the probability are scored on the same cases:
`model` (what predict writes), `cv` (constant velocity from the last dt_s, with the model's
calibrated radii: the same spread) and `inside_now` (0 for every case: what a zone that only
sees the present, such as supervision's PolygonZone, knows before the entry).
Scores: Brier score and skill against the base rate, AUROC, a reliability table (deciles of
predicted probability: observed frequency, count), the largest decile gap (deciles with at
least 30 cases), and for alerts (first frame a probability reaches 0.5): precision (the event
happens within the horizon) and the median lead time (seconds from the alert to the event).
Writes events_benchmark.json and events_benchmark.png (reliability curves) into --out.
"""

from __future__ import annotations

import argparse
import configparser
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from trajpred.checkpoint import load_forecaster  # noqa: E402
from trajpred.events import EventsConfig, EventWatch, approach_times, crossing_times  # noqa: E402
from trajpred.formats import read_tracks  # noqa: E402
from trajpred.pipeline import ForecastConfig, LiveForecaster  # noqa: E402
from trajpred.tracking import TrackedBoxes  # noqa: E402
from trajpred.tracks import Tracks  # noqa: E402
from trajpred.zones import inside, parse_zones  # noqa: E402

VIDEO_MODEL = ROOT / "data/checkpoints/video.pt"
SYNTH_SEED0 = 720000
ARMS = ("model", "cv", "inside_now")
ALERT = 0.5
MIN_BIN_CASES = 30


# ------------------------------------------------------------------ scenes and their targets


def frames_of(tracks: Tracks) -> list[TrackedBoxes]:
    """Per-frame TrackedBoxes (frames 1..last) of boxed tracks."""
    frames = []
    order = np.argsort(tracks.frame_id, kind="stable")
    f_ids = tracks.frame_id[order]
    bounds = np.searchsorted(f_ids, np.arange(1, int(f_ids.max()) + 2))
    for f in range(int(f_ids.max())):
        rows = order[bounds[f] : bounds[f + 1]]
        frames.append(
            TrackedBoxes(
                tracks.track_id[rows],
                tracks.box_xywh[rows],
                np.ones(len(rows)) if tracks.conf is None else tracks.conf[rows],
                np.zeros(len(rows), np.int64),
            ).sorted()
        )
    return frames


def auto_zones(frames: list[TrackedBoxes]) -> dict:
    """Targets placed by one rule from where the tracks are (a zones mapping, as in a zones
    file): the box holding 96 % of their positions is cut into four zones with small gaps, 2 x 2
    when it is roughly square, else four strips across its long side (a 480 x 60 px band of
    floor seen from the side gets zones people walk into, not slivers the bottom edge's jitter
    crosses); a line across the long side's middle, and a second one along it when the box is
    roughly square; a near-miss distance of 1.5 median box widths."""
    xy = np.concatenate([b.xy for b in frames if len(b)])
    widths = np.concatenate([b.box_xywh[:, 2] for b in frames if len(b)])
    lo, hi = np.percentile(xy, 2, axis=0), np.percentile(xy, 98, axis=0)
    size = hi - lo
    square = 0.5 <= size[0] / size[1] <= 2
    long = int(size[1] > size[0])  # 0: x, 1: y
    cuts = [(2, 2)] if square else [(4, 1) if long == 0 else (1, 4)]
    nx, ny = cuts[0]
    zones = []
    for j in range(ny):
        for i in range(nx):
            a = lo + size * np.array([i / nx, j / ny]) + 0.02 * size * (np.array([nx, ny]) > 1)
            b = lo + size * np.array([(i + 1) / nx, (j + 1) / ny])
            b = b - 0.02 * size * (np.array([nx, ny]) > 1)
            a, b = a.tolist(), b.tolist()
            polygon = [[a[0], a[1]], [b[0], a[1]], [b[0], b[1]], [a[0], b[1]]]
            zones.append({"name": f"zone{len(zones) + 1}", "polygon": polygon})
    mid = (lo + hi) / 2
    across = [[mid[0], lo[1]], [mid[0], hi[1]]] if long == 0 else [[lo[0], mid[1]], [hi[0], mid[1]]]
    lines = [{"name": "across", "points": [[float(v) for v in p] for p in across]}]
    if square:
        along = (
            [[lo[0], mid[1]], [hi[0], mid[1]]] if long == 0 else [[mid[0], lo[1]], [mid[0], hi[1]]]
        )
        lines.append({"name": "along", "points": [[float(v) for v in p] for p in along]})
    return {
        "zones": zones,
        "lines": lines,
        "near_miss": {"distance": float(1.5 * np.median(widths))},
    }


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


def clip_scenes(videos: Path, weights: Path, work: Path):
    from calibration_benchmark import tracked_frames

    for video, classes in (
        ("one-by-one-person-detection.mp4", [0]),
        ("highway.avi", [2, 3, 5, 7]),
    ):
        if (videos / video).is_file():
            frames, fps = tracked_frames(videos / video, str(weights), work, classes)
            yield video, frames, fps


# ------------------------------------------------------------------ truth


class Futures:
    """Each track's positions by frame, and its path over the next `horizon` frames."""

    def __init__(self, frames: list[TrackedBoxes]):
        seen: dict[int, list] = defaultdict(list)
        for f, boxes in enumerate(frames, 1):
            for tid, xy in zip(boxes.track_id.tolist(), boxes.xy, strict=True):
                seen[tid].append((f, xy))
        self.tracks = {
            tid: (np.array([f for f, _ in rows]), np.array([xy for _, xy in rows]))
            for tid, rows in seen.items()
        }

    def path(self, tid: int, frame: int, horizon: int) -> np.ndarray:
        """(horizon + 1, 2) positions at frames frame..frame + horizon, linear between seen
        frames; NaN past the track's last frame."""
        f, xy = self.tracks[tid]
        want = np.arange(frame, frame + horizon + 1)
        out = np.column_stack([np.interp(want, f, xy[:, 0]), np.interp(want, f, xy[:, 1])])
        out[want > f[-1]] = np.nan
        return out

    def at(self, tid: int, frame: float) -> np.ndarray:
        f, xy = self.tracks[tid]
        return np.array([np.interp(frame, f, xy[:, 0]), np.interp(frame, f, xy[:, 1])])


def true_times(paths: np.ndarray, edges: np.ndarray | None, distance: float | None, other=None):
    """Event times in frames (inf: none) along true paths (N, H + 1, 2): first crossing of
    the edges ((neg, pos) times), or first approach of `other` paths within distance."""
    n, h = paths.shape[0], paths.shape[1] - 1
    step = np.tile(np.arange(h, dtype=np.float64), n)
    if edges is not None:
        a, b = paths[:, :-1].reshape(-1, 1, 2), paths[:, 1:].reshape(-1, 1, 2)
        neg, pos = crossing_times(a, b, step, edges)
        return neg.reshape(n, h).min(1), pos.reshape(n, h).min(1)
    rel = paths - other
    a, b = rel[:, :-1].reshape(-1, 1, 2), rel[:, 1:].reshape(-1, 1, 2)
    return approach_times(a, b, step, distance).reshape(n, h).min(1)


# ------------------------------------------------------------------ one scene


class Cases:
    """Scored cases: predicted probabilities per arm, outcomes, kind."""

    def __init__(self):
        self.p = {arm: [] for arm in ARMS}
        self.y: list[bool] = []
        self.kind: list[str] = []

    def add(self, kind: str, p_model: float, p_cv: float, happened: bool) -> None:
        self.p["model"].append(p_model)
        self.p["cv"].append(p_cv)
        self.p["inside_now"].append(0.0)
        self.y.append(happened)
        self.kind.append(kind)


def lookup(events) -> dict:
    return {events.key(e): float(events.probability[e]) for e in range(len(events))}


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


def target_list(zones) -> list[tuple[str, str, np.ndarray]]:
    return [
        ("zone", z.name, np.stack([z.polygon, np.roll(z.polygon, -1, 0)], 1)) for z in zones.zones
    ] + [("line", ln.name, ln.points[None]) for ln in zones.lines]


def add_target_cases(cases, targets, ids, here, paths, p_model, p_cv) -> None:
    """Zone and line cases of one frame's tracks whose outcome is known."""
    seen_to_end = np.isfinite(paths[:, -1, 0])
    for kind, tname, edges in targets:
        neg, pos = true_times(paths, edges, None)
        outside = ~inside(edges[:, 0], here) if kind == "zone" else np.ones(len(ids), bool)
        ways = (("", np.minimum(neg, pos)),) if kind == "zone" else (("in", neg), ("out", pos))
        for direction, t_true in ways:
            for j, tid in enumerate(ids):
                happened = np.isfinite(t_true[j])
                if outside[j] and (happened or seen_to_end[j]):
                    key = (tid, kind, tname, direction, -1)
                    cases.add(kind, p_model.get(key, 0.0), p_cv.get(key, 0.0), happened)


def add_pair_cases(cases, ids, here, paths, distance, p_model, p_cv) -> None:
    """Near-miss cases of one frame's pairs not already that close, outcome known."""
    seen_to_end = np.isfinite(paths[:, -1, 0])
    i, j = np.triu_indices(len(ids), 1)
    apart = np.linalg.norm(here[i] - here[j], axis=1) > distance
    i, j = i[apart], j[apart]
    if len(i) == 0:
        return
    t_true = true_times(paths[i], None, distance, paths[j])
    known = np.isfinite(t_true) | (seen_to_end[i] & seen_to_end[j])
    for a, b, t, k in zip(i, j, t_true, known, strict=True):
        if k:  # events.csv names a pair by its smaller id first
            key = (min(ids[a], ids[b]), "near_miss", "", "", max(ids[a], ids[b]))
            cases.add("near_miss", p_model.get(key, 0.0), p_cv.get(key, 0.0), np.isfinite(t))


def run_scene(name: str, frames: list[TrackedBoxes], fps: float) -> dict:
    model = load_forecaster(VIDEO_MODEL)
    spec = auto_zones(frames)
    zones = parse_zones(spec, name)
    cfg = EventsConfig(min_probability=1e-9, alert=ALERT)
    live = LiveForecaster(model, fps, ForecastConfig(), "cpu", None, zones, cfg)
    live.watch.update = events_timer = Timed(live.watch.update)
    cv_watch = EventWatch(zones, cfg, model.cfg.dt_s, model.cfg.pred_len)
    futures = Futures(frames)
    step_frames = fps * model.cfg.dt_s
    horizon = int(round(model.cfg.pred_len * step_frames))
    every = max(1, int(round(step_frames)))
    targets = target_list(zones)
    cases = Cases()
    alerts = {arm: [] for arm in ("model", "cv")}  # (frame, key)
    steps = np.arange(1, model.cfg.pred_len + 1)[None, :, None]
    n_forecasts = 0
    for f, boxes in enumerate(frames, 1):
        fc = live.update(f, boxes)
        if len(fc) == 0:
            continue
        n_forecasts += len(fc)
        ids = fc.track_id.tolist()
        here = np.array([futures.at(t, f) for t in ids])
        back = np.array([futures.at(t, f - step_frames) for t in ids])
        cv_mean = here[:, None] + (here - back)[:, None] * steps
        cv_events = cv_watch.update(fc.track_id, here, cv_mean, fc.r50, fc.r90, live.shape.ratio)
        for arm, ev in (("model", fc.events), ("cv", cv_events)):
            alerts[arm] += [(f, ev.key(e)) for e in np.flatnonzero(ev.alert)]
        if (f - 1) % every == 0:
            p_model, p_cv = lookup(fc.events), lookup(cv_events)
            paths = np.stack([futures.path(t, f, horizon) for t in ids])  # (M, H + 1, 2)
            add_target_cases(cases, targets, ids, here, paths, p_model, p_cv)
            add_pair_cases(cases, ids, here, paths, zones.near_miss.distance, p_model, p_cv)
    distance = zones.near_miss.distance
    out = {
        "frames": len(frames),
        "fps": fps,
        "forecasts": n_forecasts,
        "targets": spec,
        "events_ms_per_frame": 1e3 * events_timer.seconds / max(events_timer.calls, 1),
        "forecast_ms_per_frame": 1e3 * live.seconds / max(len(frames), 1),
        "cases": {},
        "alerts": {
            arm: score_alerts(a, futures, targets, distance, horizon, fps)
            for arm, a in alerts.items()
        },
    }
    y = np.array(cases.y)
    kinds = np.array(cases.kind)
    for kind in ("all", "zone", "line", "near_miss"):
        rows = np.ones(len(y), bool) if kind == "all" else kinds == kind
        if rows.sum() == 0:
            continue
        out["cases"][kind] = {
            arm: score_probabilities(np.array(cases.p[arm])[rows], y[rows]) for arm in ARMS
        }
    return out


def score_alerts(alerts, futures: Futures, targets, distance: float, horizon: int, fps: float):
    """Precision and lead time of the alerts (frame, key): true when the event happens within
    the horizon after the alert frame; alerts whose outcome is unknown are left out."""
    edges_of = {(kind, name): edges for kind, name, edges in targets}
    outcomes, leads = [], []
    for f, (tid, kind, name, direction, other) in alerts:
        path = futures.path(tid, f, horizon)[None]
        seen = np.isfinite(path[0, -1, 0])
        if kind == "near_miss":
            other_path = futures.path(other, f, horizon)[None]
            seen = seen and np.isfinite(other_path[0, -1, 0])
            t = true_times(path, None, distance, other_path)[0]
        else:
            neg, pos = true_times(path, edges_of[(kind, name)], None)
            t = {"": min(neg[0], pos[0]), "in": neg[0], "out": pos[0]}[direction]
        if not (np.isfinite(t) or seen):
            continue
        outcomes.append(bool(np.isfinite(t)))
        if np.isfinite(t):
            leads.append(float(t) / fps)
    return {
        "alerts": len(outcomes),
        "precision": float(np.mean(outcomes)) if outcomes else None,
        "median_lead_s": float(np.median(leads)) if leads else None,
    }


def score_probabilities(p: np.ndarray, y: np.ndarray) -> dict:
    base = float(y.mean())
    brier = float(np.mean((p - y) ** 2))
    ref = base * (1 - base)
    bins = np.minimum((p * 10).astype(int), 9)
    table = []
    gap = 0.0
    for b in range(10):
        rows = bins == b
        if rows.sum() == 0:
            continue
        obs, pred = float(y[rows].mean()), float(p[rows].mean())
        table.append({"bin": b, "cases": int(rows.sum()), "predicted": pred, "observed": obs})
        if rows.sum() >= MIN_BIN_CASES:
            gap = max(gap, abs(obs - pred))
    return {
        "cases": int(len(y)),
        "base_rate": base,
        "brier": brier,
        "brier_skill": 1 - brier / ref if ref > 0 else None,
        "auroc": auroc(p, y),
        "max_decile_gap": gap,
        "reliability": table,
    }


def auroc(p: np.ndarray, y: np.ndarray) -> float | None:
    """Probability that a random positive case is ranked above a random negative one (ties
    count half)."""
    pos, neg = p[y], p[~y]
    if len(pos) == 0 or len(neg) == 0:
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="stable")
    values = np.concatenate([pos, neg])[order]
    ranks = np.empty(len(values))
    _, first, counts = np.unique(values, return_index=True, return_counts=True)
    mid = first + (counts - 1) / 2 + 1
    ranks[:] = np.repeat(mid, counts)
    r = np.empty(len(values))
    r[order] = ranks
    return float((r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


# ------------------------------------------------------------------ report


def table(report: dict) -> str:
    lines = [
        f"{'scene':34s} {'kind':9s} {'cases':>7s} {'base':>5s} "
        + " ".join(f"{a + ' BSS':>14s}" for a in ARMS[:2])
        + f" {'AUROC':>6s} {'gap':>5s} {'alerts':>6s} {'prec':>5s} {'lead s':>6s}"
    ]
    for scene, r in report["scenes"].items():
        for kind, arms in r["cases"].items():
            m, c = arms["model"], arms["cv"]
            al = r["alerts"]["model"] if kind == "all" else None

            def f(v, fmt):
                return format(v, fmt) if v is not None else "-"

            alert = ""
            if al:
                alert = f"{al['alerts']:6d} {f(al['precision'], '5.2f')} "
                alert += f(al["median_lead_s"], "6.2f")
            lines.append(
                f"{scene[:34]:34s} {kind:9s} {m['cases']:7d} {m['base_rate']:5.3f} "
                f"{f(m['brier_skill'], '14.3f')} {f(c['brier_skill'], '14.3f')} "
                f"{f(m['auroc'], '6.3f')} {m['max_decile_gap']:5.3f} " + alert
            )
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
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scenes = list(synthetic_scenes(args.synthetic, args.duration))
    if (args.shared / "tracks" / "mot").is_dir():
        scenes += list(mot_scenes(args.shared / "tracks" / "mot"))
    weights = args.shared / "detectors" / "yolov8n_int8_openvino_model"
    if not args.no_clips and weights.is_dir():
        scenes += list(clip_scenes(args.shared / "videos", weights, args.out))
    report = {
        "what": __doc__.split("\n\n")[0],
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "model": str(VIDEO_MODEL.relative_to(ROOT)),
        "alert": ALERT,
        "scenes": {},
    }
    for name, frames, fps in scenes:
        start = time.time()
        report["scenes"][name] = run_scene(name, frames, fps)
        print(f"{name}: {len(frames)} frames in {time.time() - start:.0f} s", flush=True)
    (args.out / "events_benchmark.json").write_text(json.dumps(report, indent=1))
    plot(report, args.out / "events_benchmark.png")
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
