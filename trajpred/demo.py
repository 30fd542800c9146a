"""The offline demo: a fresh synthetic scene with ground truth, the full pipeline on its video,
and scores for each stage.

- detection: precision and recall of the detector's boxes (conf >= its threshold) against the
  gt_mot.txt boxes, one-to-one matching at IoU >= 0.5 on every frame;
- tracking: MOTA and IDF1 (py-motmetrics) of the tracked boxes against gt_mot.txt, IoU >= 0.5;
- forecasting: ADE and FDE in pixels. Each forecast's track is matched to the ground-truth
  person whose box overlaps it most (IoU >= 0.5) on the frame the forecast was made; its
  predicted bottom centres are compared with that person's ground-truth bottom centre at each
  target_frame. Only forecasts whose person is in the ground truth at every target frame count.
  Beside it, constant velocity on the same forecasts: the track's displacement over the last
  dt_s, repeated from its current position; with a homography (`--ground-plane`) also the same
  extrapolation done in metres on the ground plane and projected back into the image.

Metric functions are pure functions of arrays; tallies add one frame at a time, so the demo,
like predict, never holds the video in memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .event_scores import EventTally, Futures, auto_zones, event_lines
from .events import EventsConfig
from .tracks import Tracks, bottom_centre

IOU_MATCH = 0.5


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) and (M, 4) left-top-width-height boxes -> (N, M) intersection over union."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y1 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_boxes(a: np.ndarray, b: np.ndarray, min_iou: float = IOU_MATCH) -> list[tuple[int, int]]:
    """One-to-one matching of boxes a and b maximising total IoU; pairs with IoU >= min_iou."""
    from scipy.optimize import linear_sum_assignment

    iou = iou_xywh(a, b)
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=False) if iou[r, c] >= min_iou]


@dataclass
class DetectionScores:
    """Counts of matched (tp), unmatched detected (fp) and unmatched ground-truth (fn) boxes."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, gt_boxes: np.ndarray, boxes: np.ndarray) -> None:
        """Count one frame: gt_boxes (G, 4) and detected boxes (N, 4), left-top-width-height."""
        n = len(match_boxes(gt_boxes, boxes))
        self.tp += n
        self.fp += len(boxes) - n
        self.fn += len(gt_boxes) - n

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
        }

    def line(self) -> str:
        return (
            f"detection: precision {self.precision:.3f}  recall {self.recall:.3f}  "
            f"(IoU >= {IOU_MATCH}; {self.tp + self.fn} ground-truth boxes, "
            f"{self.tp + self.fp} detections)"
        )


@dataclass
class TrackingScores:
    """CLEAR-MOT accuracy (MOTA), identity F1 (IDF1) and identity switches of the tracks."""

    mota: float
    idf1: float
    id_switches: int

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (
            f"tracking: MOTA {self.mota:.3f}  IDF1 {self.idf1:.3f}  "
            f"({self.id_switches} id switches)"
        )


@dataclass
class ForecastScores:
    """Mean errors in pixels of the forecasts matched to ground truth (see the module doc),
    and of constant velocity on the same forecasts; the errors are None when none matched."""

    forecasts: int = 0  # forecasts scored, each over its whole horizon
    ade_px: float | None = None
    fde_px: float | None = None
    cv_ade_px: float | None = None
    cv_fde_px: float | None = None
    # constant velocity extrapolated in metres on the ground plane (demo --ground-plane)
    cv_ground_ade_px: float | None = None
    cv_ground_fde_px: float | None = None
    # share of true positions inside the forecasts' calibrated radii, over every step
    inside_r50: float | None = None
    inside_r90: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self, horizon_s: float) -> str:
        if not self.forecasts:
            return (
                "forecast: no forecast could be matched to a ground-truth person over its horizon"
            )
        text = (
            f"forecast: ADE {self.ade_px:.1f} px  FDE {self.fde_px:.1f} px   constant velocity: "
            f"ADE {self.cv_ade_px:.1f} px  FDE {self.cv_fde_px:.1f} px   ({self.forecasts} "
            f"forecasts of {horizon_s:g} s matched to ground truth)"
        )
        if self.inside_r50 is not None and self.inside_r90 is not None:
            text += (
                f"\nuncertainty: {100 * self.inside_r50:.0f} % of true positions inside r50, "
                f"{100 * self.inside_r90:.0f} % inside r90 (calibrated for 50 % and 90 %)"
            )
        if self.cv_ground_fde_px is not None:
            text += (
                f"\nforecasting on the ground plane; constant velocity in metres: "
                f"ADE {self.cv_ground_ade_px:.1f} px  FDE {self.cv_ground_fde_px:.1f} px"
            )
        return text


class GroundTruth:
    """gt_mot boxes by frame: ids (N,) and box_xywh (N, 4) of each 1-based frame."""

    def __init__(self, gt: Tracks):
        boxes = gt.box_xywh
        if boxes is None:
            raise ValueError(f"{gt.source or 'ground truth'}: no boxes to score against")
        self.frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for f in gt.frames().tolist():
            rows = gt.frame_id == f
            self.frames[f] = (gt.track_id[rows], boxes[rows])
        self.feet = {
            (int(f), int(i)): xy
            for f, i, xy in zip(gt.frame_id, gt.track_id, bottom_centre(boxes), strict=False)
        }

    def at(self, frame_id: int) -> tuple[np.ndarray, np.ndarray]:
        return self.frames.get(frame_id, (np.zeros(0, np.int64), np.zeros((0, 4))))


def detection_scores(gt: Tracks, found: list[tuple[int, np.ndarray]]) -> DetectionScores:
    """Scores of (frame_id, box_xywh (N, 4)) detections against ground truth `gt` (with boxes)."""
    truth = GroundTruth(gt)
    scores = DetectionScores()
    for frame_id, boxes in found:
        scores.add(truth.at(frame_id)[1], boxes)
    return scores


class TrackingTally:
    """MOTA / IDF1 with py-motmetrics' accumulator, fed our own IoU distances (motmetrics 1.4's
    iou_matrix uses np.asfarray, which numpy 2 removed)."""

    def __init__(self):
        import motmetrics

        self._mm = motmetrics
        self.acc = motmetrics.MOTAccumulator(auto_id=True)

    def add(self, gt_ids, gt_boxes, hyp_ids, hyp_boxes) -> None:
        iou = iou_xywh(gt_boxes, hyp_boxes)
        self.acc.update(
            list(map(int, gt_ids)),
            list(map(int, hyp_ids)),
            np.where(iou >= IOU_MATCH, 1.0 - iou, np.nan),
        )

    def result(self) -> TrackingScores:
        mh = self._mm.metrics.create()
        summary = mh.compute(self.acc, metrics=["mota", "idf1", "num_switches"], name="demo")
        row = summary.loc["demo"]
        return TrackingScores(float(row["mota"]), float(row["idf1"]), int(row["num_switches"]))


class ForecastTally:
    """ADE/FDE (pixels) of the pipeline's forecasts and of constant velocity, see module doc."""

    def __init__(self, truth: GroundTruth, frames_per_step: float, homography=None):
        from .geometry import GroundPlane

        self.truth = truth
        self.frames_per_step = frames_per_step
        self.ground = None if homography is None else GroundPlane(homography)
        self.history: dict[int, dict[int, np.ndarray]] = {}  # track id -> {frame: xy}
        self.model_err: list[np.ndarray] = []
        self.radii: list[np.ndarray] = []  # (2, pred_len) r50, r90 of each scored forecast
        self.cv_err: list[np.ndarray] = []
        self.cv_ground_err: list[np.ndarray] = []

    def _past(self, tid: int, frame_id: float) -> np.ndarray | None:
        """The track's bottom centre at a fractional frame, interpolated; None if not seen."""
        h = self.history.get(tid, {})
        lo, hi = int(np.floor(frame_id)), int(np.ceil(frame_id))
        if lo not in h or hi not in h:
            return None
        return h[lo] + (frame_id - lo) * (h[hi] - h[lo])

    def add(self, frame_id: int, tracks, forecasts) -> None:
        for tid, xy in zip(tracks.track_id.tolist(), tracks.xy, strict=False):
            h = self.history.setdefault(tid, {})
            h[frame_id] = xy
            h.pop(frame_id - int(np.ceil(self.frames_per_step)) - 2, None)
        if len(forecasts) == 0:
            return
        gt_ids, gt_boxes = self.truth.at(frame_id)
        rows = {int(t): j for j, t in enumerate(tracks.track_id)}
        fc_rows = [rows[int(t)] for t in forecasts.track_id]
        pairs = match_boxes(tracks.box_xywh[fc_rows], gt_boxes)
        steps = np.arange(1, forecasts.xy.shape[1] + 1)
        for j, g in pairs:
            tid, person = int(forecasts.track_id[j]), int(gt_ids[g])
            feet = [self.truth.feet.get((int(f), person)) for f in forecasts.target_frame]
            prev = self._past(tid, frame_id - self.frames_per_step)
            if any(t is None for t in feet) or prev is None:
                continue
            truth = np.array(feet)  # (pred_len, 2) px
            now = tracks.xy[fc_rows[j]]
            cv = now + steps[:, None] * (now - prev)
            self.model_err.append(np.linalg.norm(forecasts.xy[j] - truth, axis=1))
            self.radii.append(np.stack([forecasts.r50[j], forecasts.r90[j]]))
            self.cv_err.append(np.linalg.norm(cv - truth, axis=1))
            if self.ground is not None:
                now_m, prev_m = self.ground.to_ground(np.array([now, prev]), frame_id, [tid] * 2)
                cv_m = now_m + steps[:, None] * (now_m - prev_m)
                cv_px = self.ground.to_image(cv_m[None], now_m[None])[0][0]
                self.cv_ground_err.append(np.linalg.norm(cv_px - truth, axis=1))

    def result(self) -> ForecastScores:
        if not self.model_err:
            return ForecastScores()
        m, c = np.array(self.model_err), np.array(self.cv_err)  # (forecasts, pred_len) px
        scores = ForecastScores(
            forecasts=len(m),
            ade_px=float(m.mean()),
            fde_px=float(m[:, -1].mean()),
            cv_ade_px=float(c.mean()),
            cv_fde_px=float(c[:, -1].mean()),
            inside_r50=float((m <= np.array(self.radii)[:, 0]).mean()),
            inside_r90=float((m <= np.array(self.radii)[:, 1]).mean()),
        )
        if self.cv_ground_err:
            g = np.array(self.cv_ground_err)
            scores.cv_ground_ade_px = float(g.mean())
            scores.cv_ground_fde_px = float(g[:, -1].mean())
        return scores


# ---------------------------------------------------------------- the demo run


@dataclass
class DemoResult:
    """The demo's scores for each stage and the lines it prints."""

    scene_line: str
    detection: DetectionScores
    tracking: TrackingScores
    forecast: ForecastScores
    horizon_s: float  # how far ahead each forecast reaches
    summary_line: str  # predict's summary of the run
    notes: list[str]
    events: dict | None = None  # with zones: trajpred/event_scores.py EventTally.result()
    event_lines: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            *self.notes,
            self.scene_line,
            self.detection.line(),
            self.tracking.line(),
            self.forecast.line(self.horizon_s),
            *self.event_lines,
            self.summary_line,
        ]


def untrained_checkpoint(path) -> str:
    """Save a freshly initialised forecaster (it forecasts constant velocity) at `path`."""
    from .calibration import gaussian
    from .checkpoint import save_checkpoint
    from .config import to_dict
    from .model import Forecaster, ForecasterConfig

    cfg = ForecasterConfig()
    payload = {"model_config": to_dict(cfg), "model": Forecaster(cfg).state_dict()}
    # stated, not fitted: an untrained model's sigma read as a Gaussian's (no warning on load)
    payload["calibration"] = gaussian(cfg.pred_len).to_dict()
    save_checkpoint(path, payload)
    return str(path)


def run_demo(
    out_dir,
    seed: int = 1,
    duration_s: float = 20.0,
    weights: str | None = None,
    checkpoint: str | None = None,
    imgsz: int | None = None,
    device: str = "auto",
    progress: bool = True,
    ground_plane: bool = False,
    synth_overrides: dict | None = None,
    zones: str | None = None,
) -> DemoResult:
    """Synthesize a scene into out_dir/scene, run predict on it into out_dir, score each stage.

    ground_plane: forecast in metres through the scene's homography (predict --homography).
    synth_overrides: SynthConfig settings as nested dicts, e.g. {"camera": {"tilt_deg": 25}}.
    zones: a zones file to watch (predict --zones), or "auto": four zones, lines and a
    near-miss distance placed from where the scene's people walk (event_scores.auto_zones,
    written to out_dir/scene/zones.yaml); the events are scored against the exact truth."""
    from pathlib import Path

    from .commands.predict import predict_video
    from .config import from_dict, merge
    from .detect import SHIPPED_DETECTOR, DetectorConfig
    from .errors import TrajpredError
    from .formats import read_mot
    from .pipeline import SHIPPED_FORECASTER, ForecastConfig, Pipeline, PipelineConfig
    from .synth.render import write_scene
    from .synth.world import SynthConfig, simulate
    from .video import VideoReader, VideoSource
    from .writer import WriterProcess

    out = Path(out_dir)
    notes = []
    weights = weights or str(SHIPPED_DETECTOR)
    if not Path(weights).exists():
        raise TrajpredError(
            f"detector weights {weights} not found; train them with "
            f"scripts/train_detector.py or pass --weights"
        )
    if checkpoint is None:
        checkpoint = str(SHIPPED_FORECASTER)
        if not SHIPPED_FORECASTER.exists():
            out.mkdir(parents=True, exist_ok=True)
            checkpoint = untrained_checkpoint(out / "untrained_forecaster.pt")
            notes.append(
                f"note: {SHIPPED_FORECASTER} is absent; forecasting with an untrained "
                f"model (= constant velocity)"
            )
    synth = merge({"seed": seed, "duration_s": duration_s}, synth_overrides or {})
    scene = simulate(from_dict(SynthConfig, synth, "demo --set"))
    paths = write_scene(scene, out / "scene", progress=progress)
    cfg = scene.cfg
    if zones == "auto":
        zones = _auto_zones_file(read_mot(paths.gt_mot), paths.out_dir / "zones.yaml", ground_plane)
    config = PipelineConfig(
        detector=DetectorConfig(weights=weights, imgsz=imgsz, device=device),
        forecast=ForecastConfig(
            checkpoint=checkpoint, homography=str(paths.homography) if ground_plane else None
        ),
        events=EventsConfig(zones=zones),
    )
    with WriterProcess() as writer:  # starts first: its imports overlap loading the models
        pipeline = Pipeline(config)
        model = pipeline.model
        assert model is not None  # Pipeline loads the forecaster unless told forecast=False
        gt = read_mot(paths.gt_mot)
        truth = GroundTruth(gt)
        detection = DetectionScores()
        tracking = TrackingTally()
        forecasting = ForecastTally(
            truth, cfg.fps * model.cfg.dt_s, pipeline.homography if ground_plane else None
        )

        events = _EventScoring(pipeline, truth, cfg.fps) if pipeline.zones else None

        def score(result) -> None:
            ids, boxes = truth.at(result.frame_id)
            detection.add(boxes, result.detections.box_xywh)
            tracking.add(ids, boxes, result.tracks.track_id, result.tracks.box_xywh)
            forecasting.add(result.frame_id, result.tracks, result.forecasts)
            if events is not None:
                events.add(result)

        with VideoReader(VideoSource(str(paths.video), "demo")) as reader:
            summary = predict_video(pipeline, reader, out, progress, on_result=score, writer=writer)
    n_people = len(np.unique(gt.track_id))
    scene_line = (
        f"scene: {scene.n_frames} frames {cfg.width}x{cfg.height} at {cfg.fps:g} fps, "
        f"{n_people} people, seed {seed} -> {paths.out_dir}"
    )
    horizon_s = model.cfg.pred_len * model.cfg.dt_s
    event_scores = None if events is None else events.result()
    return DemoResult(
        scene_line,
        detection,
        tracking.result(),
        forecasting.result(),
        horizon_s,
        summary.line(),
        notes,
        event_scores,
        [] if event_scores is None else event_lines(event_scores, config.events.alert),
    )


def _auto_zones_file(gt: Tracks, path, ground_plane: bool) -> str:
    """Zones placed from where the scene's people walk (event_scores.auto_zones), written as a
    zones file at `path`; with the ground plane the near-miss distance is 1 m."""
    import yaml

    from .atomic import write_text

    assert gt.box_xywh is not None
    spec = auto_zones(gt.xy, gt.box_xywh[:, 2])
    if ground_plane:
        spec["near_miss"] = {"distance": 1.0, "units": "m"}
    write_text(path, yaml.safe_dump(spec, sort_keys=False))
    return str(path)


class _EventScoring:
    """The demo's events scored against the exact truth: each track stands for the person
    its box matches on each frame (IoU >= 0.5), whose true path decides the outcome."""

    def __init__(self, pipeline, truth: GroundTruth, fps: float):
        from .geometry import apply_homography

        h = pipeline.homography

        def to_units(xy: np.ndarray) -> np.ndarray:  # pixels -> the zones' units
            return xy if h is None else apply_homography(h, xy)

        model, cfg = pipeline.model, pipeline.config.events
        self.truth = truth
        self.tally = EventTally(
            pipeline.zones, cfg, model.cfg.dt_s, model.cfg.pred_len, fps, to_units
        )
        self.feet = Futures(
            [(f, ids, to_units(bottom_centre(boxes))) for f, (ids, boxes) in truth.frames.items()]
        )
        self.boxes: dict[int, dict[int, np.ndarray]] = {}
        # the forecaster's own ratio lives in the writer process; the baseline takes the prior
        self.ratio = cfg.cross_ratio

    def add(self, result) -> None:
        t = result.tracks
        self.boxes[result.frame_id] = dict(zip(t.track_id.tolist(), t.box_xywh, strict=True))
        self.tally.add(result.frame_id, t, result.forecasts, self.ratio)

    def match(self, frame: int, ids: list[int]) -> list[int]:
        gt_ids, gt_boxes = self.truth.at(frame)
        boxes = self.boxes.get(frame, {})
        known = [i for i in ids if i in boxes]
        pairs = dict(match_boxes(np.array([boxes[i] for i in known]).reshape(-1, 4), gt_boxes))
        person = {tid: int(gt_ids[pairs[j]]) for j, tid in enumerate(known) if j in pairs}
        return [person.get(i, -1) for i in ids]

    def result(self) -> dict:
        return self.tally.result(self.feet, self.match)
