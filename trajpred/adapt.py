"""Fit the forecaster to one camera without labels: a track's own future is its label.

`adapt(tracks, fps, out_dir, cfg)` takes the tracker's tracks of one camera (pixels, or metres
on the ground plane), holds out the last `val_fraction` of the frames in time, fine-tunes a
starting forecaster (the shipped video model by default) on windows of the earlier part with
`train.fit`, and scores constant velocity, the starting model and the adapted model on the
held-out windows (the same windows for all three). It writes `adapted.pt`: the adapted weights
if they beat the starting model on the held-out part (ADE and FDE both lower), else the
starting checkpoint unchanged, so adaptation never ships a regression silently.

What the adapted model gets that the generic one does not (`ForecasterConfig.scene_input`):
where the track stands in this camera's view and which way it heads there, and its class when
the footage holds several, through a branch whose last layer starts at zero, so fine-tuning
starts exactly from the generic model's forecasts. Rotation and mirror augmentation are off
(they would move a track's heading away from the place it was seen at).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import SEED_MAX, between, check_fields, non_empty, require
from .errors import InputError, TrajpredError
from .tracks import Tracks
from .windows import Windows, make_windows, resample_tracks


@dataclass
class AdaptConfig:
    """Settings of `adapt`; `trajpred adapt --help` shows the ones with flags."""

    checkpoint: str = "data/checkpoints/video.pt"  # the starting forecaster
    epochs: int = 30
    val_fraction: float = 0.2  # the last part of the footage in time, held out
    obs_len: int = 8  # longest history in a training window (samples of dt_s)
    min_obs_len: int = 2  # train on random history lengths min_obs_len..obs_len
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 1e-4
    patience: int = 6  # epochs without a better held-out ADE before stopping
    augment_speed: float = 0.1
    augment_noise: float = 0.06  # as the shipped model (model units, ~metres)
    scene_input: bool = True  # the heads read where the track is (see the module doc)
    class_input: bool = True  # ... and its class, when the footage holds several classes
    min_train_windows: int = 100
    min_val_windows: int = 20
    seed: int = 0
    threads: int = 0  # torch CPU threads (0 = torch's default)

    def __post_init__(self) -> None:
        check_fields(
            self,
            checkpoint=non_empty,
            epochs=between(1, 100_000),
            val_fraction=between(0, 1, low_open=True, high_open=True),
            obs_len=between(2, 1000),
            min_obs_len=between(2, 1000),
            batch_size=between(1, 1_000_000),
            lr=between(0),
            weight_decay=between(0),
            patience=between(1),
            augment_speed=between(0, 1, high_open=True),
            augment_noise=between(0),
            min_train_windows=between(1),
            min_val_windows=between(1),
            seed=between(0, SEED_MAX),
            threads=between(0, 1024),
        )
        require(
            self.min_obs_len <= self.obs_len,
            "min_obs_len",
            f"must be <= obs_len ({self.obs_len}), got {self.min_obs_len}",
        )


@dataclass
class ArmScore:
    """One forecaster's mean errors on the held-out windows, in the tracks' units."""

    arm: str
    ade: float
    fde: float


@dataclass
class AdaptReport:
    """What `adapt` did: window counts, held-out scores, and which weights adapted.pt holds."""

    units: str
    fps: float
    train_windows: int
    val_windows: int
    scores: list[ArmScore]
    adapted: bool  # False: adapted.pt holds the starting model unchanged
    epochs: int
    seconds: float
    classes: list[int] = field(default_factory=list)
    checkpoint: str = ""

    def score(self, arm: str) -> ArmScore:
        return next(s for s in self.scores if s.arm == arm)

    def verdict(self) -> str:
        start, new = self.score("starting model"), self.score("adapted model")
        if self.adapted:
            return (
                f"adapted: held-out FDE {start.fde:.3g} -> {new.fde:.3g} {self.units} "
                f"({100 * (new.fde / start.fde - 1):+.1f} %); adapted.pt holds the adapted model"
            )
        return (
            "adaptation did not beat the starting model on the held-out part "
            f"(ADE {new.ade:.3g} vs {start.ade:.3g}, FDE {new.fde:.3g} vs {start.fde:.3g} "
            f"{self.units}): adapted.pt holds the starting model unchanged"
        )

    def table(self) -> str:
        lines = [
            f"held-out last part: {self.val_windows} windows "
            f"(trained on {self.train_windows}), {self.units}",
            f"{'forecaster':<16} {'ADE':>9} {'FDE':>9}",
        ]
        lines += [f"{s.arm:<16} {s.ade:9.3f} {s.fde:9.3f}" for s in self.scores]
        return "\n".join(lines + [self.verdict()])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def split_in_time(tracks: Tracks, val_fraction: float) -> tuple[Tracks, Tracks]:
    """(earlier part, last `val_fraction` of the distinct frames): no window crosses the cut."""
    frames = tracks.frames()
    if len(frames) == 0:
        return tracks, tracks
    cut = frames[min(len(frames) - 1, int(len(frames) * (1 - val_fraction)))]
    return tracks.select(tracks.frame_id < cut), tracks.select(tracks.frame_id >= cut)


def camera_windows(
    tracks: Tracks, fps: float, dt_s: float, obs_len: int, pred_len: int, neighbours: int
) -> Windows:
    """Video-rate tracks -> windows of obs_len + pred_len samples, dt_s apart."""
    return make_windows(resample_tracks(tracks, fps * dt_s), obs_len, pred_len, 1, neighbours)


def scene_bounds(tracks: Tracks) -> list[float]:
    """x_min, y_min, x_max, y_max of the positions (1st-99th percentile, 5 % margin)."""
    lo, hi = np.percentile(tracks.xy, 1, axis=0), np.percentile(tracks.xy, 99, axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-3)
    return [float(v) for v in (*(lo - pad), *(hi + pad))]


def with_scene_input(model, bounds: list[float], units: str, classes: list[int]):
    """The starting model with a zero-initialised scene branch: the same forecasts until trained."""
    from .model import Forecaster

    cfg = dataclasses.replace(
        model.cfg, scene_input=True, scene_bounds=bounds, scene_units=units, scene_classes=classes
    )
    out = Forecaster(cfg)
    missing, unexpected = out.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("scene.") for k in missing):
        raise TrajpredError(f"cannot add a scene input to this model ({missing + unexpected})")
    return out.eval()


def score_arms(models: dict, windows: Windows) -> list[ArmScore]:
    """Constant velocity and each named model on the same windows."""
    from .metrics import ade, constant_velocity, fde
    from .train import evaluate

    cv = constant_velocity(windows.obs_xy, windows.pred_len)
    scores = [
        ArmScore(
            "constant velocity",
            float(ade(cv, windows.fut_xy).mean()),
            float(fde(cv, windows.fut_xy).mean()),
        )
    ]
    for name, model in models.items():
        m = evaluate(model, windows, k=0)
        scores.append(ArmScore(name, m.ade, m.fde))
    return scores


def load_start(checkpoint: str):
    """(payload, Forecaster) of the starting checkpoint; an ensemble is refused."""
    from .checkpoint import load_checkpoint, model_from_payload
    from .model import Forecaster
    from .paths import resolve_data_path

    path = resolve_data_path(checkpoint)
    payload = load_checkpoint(path)
    model = model_from_payload(payload, path)
    if not isinstance(model, Forecaster):
        raise InputError(path, "an ensemble checkpoint; adapt one of its members instead")
    return payload, model


def _too_few(what: str, found: int, needed: int, cfg: AdaptConfig, pred_len: int, dt_s: float):
    seq = cfg.obs_len + pred_len
    return (
        f"too few windows to adapt: {found} {what} windows found, {needed} needed (a window is "
        f"a track followed for {cfg.obs_len} + {pred_len} samples of {dt_s:g} s = "
        f"{seq * dt_s:.1f} s; use longer footage"
    )


def check_windows(tracks: Tracks, fps: float, cfg: AdaptConfig, start) -> None:
    """Refuse footage with too few windows before anything is trained or written."""
    mc = start.cfg
    train, val = split_in_time(tracks, cfg.val_fraction)
    n_train = len(camera_windows(train, fps, mc.dt_s, cfg.obs_len, mc.pred_len, 0))
    n_val = len(camera_windows(val, fps, mc.dt_s, cfg.obs_len, mc.pred_len, 0))
    if n_train < cfg.min_train_windows:
        raise TrajpredError(
            _too_few("training", n_train, cfg.min_train_windows, cfg, mc.pred_len, mc.dt_s)
            + (" or a shorter --obs-len)" if cfg.obs_len > 2 else ")")
        )
    if n_val < cfg.min_val_windows:
        raise TrajpredError(
            _too_few("held-out", n_val, cfg.min_val_windows, cfg, mc.pred_len, mc.dt_s)
            + " or a larger --val-fraction)"
        )


def adapt(
    tracks: Tracks,
    fps: float,
    work_dir: Path,
    cfg: AdaptConfig,
    progress: bool = True,
    log=print,
) -> tuple[AdaptReport, dict]:
    """Fine-tune cfg.checkpoint on `tracks` (one camera, `fps` frames per second); training files
    go to work_dir. Returns the report and the checkpoint payload to save as adapted.pt."""
    from .checkpoint import load_checkpoint, model_from_payload
    from .config import to_dict
    from .data import DataConfig
    from .formats import write_csv
    from .model import Forecaster
    from .train import RunConfig, TrainConfig, fit

    t0 = time.perf_counter()
    start_payload, start = load_start(cfg.checkpoint)
    mc = start.cfg
    check_windows(tracks, fps, cfg, start)
    train, val = split_in_time(tracks, cfg.val_fraction)
    k = mc.social_neighbours
    # Scored on full-length histories; trained on every history from min_obs_len samples up.
    val_w = camera_windows(val, fps, mc.dt_s, cfg.obs_len, mc.pred_len, k)
    train_w = camera_windows(train, fps, mc.dt_s, cfg.obs_len, mc.pred_len, k)
    classes = sorted({int(c) for c in train.class_id if c >= 0})
    classes = classes if cfg.class_input and len(classes) > 1 else []
    model = start
    if cfg.scene_input:
        model = with_scene_input(start, scene_bounds(train), tracks.units, classes)
    model.cfg = dataclasses.replace(model.cfg, obs_len=cfg.obs_len)
    work_dir.mkdir(parents=True, exist_ok=True)
    init = work_dir / "start.pt"
    from .checkpoint import save_checkpoint

    save_checkpoint(init, {"model_config": to_dict(model.cfg), "model": model.state_dict()})
    files = {"train": work_dir / "train.csv", "val": work_dir / "val.csv"}
    write_csv(files["train"], train)
    write_csv(files["val"], val)
    run = RunConfig(
        data=DataConfig(train_files=[str(files["train"])], val_files=[str(files["val"])], fps=fps),
        model=model.cfg,
        train=TrainConfig(
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            warmup_epochs=1,
            patience=cfg.patience,
            seed=cfg.seed,
            min_obs_len=cfg.min_obs_len,
            augment_rotate=False,
            augment_flip=False,
            augment_speed=cfg.augment_speed,
            augment_noise=cfg.augment_noise,
            eval_k=0,
            threads=cfg.threads,
            init_from=str(init),
            out_dir=str(work_dir),
        ),
    )
    for stale in ("best.pt", "last.pt"):  # a new run, not a resume of an earlier one
        (work_dir / stale).unlink(missing_ok=True)
    fit(run, progress=progress, log=log)
    best_payload = load_checkpoint(work_dir / "best.pt")
    adapted = model_from_payload(best_payload, work_dir / "best.pt")
    assert isinstance(adapted, Forecaster)
    scores = score_arms({"starting model": start, "adapted model": adapted}, val_w)
    by = {s.arm: s for s in scores}
    better = (
        by["adapted model"].ade < by["starting model"].ade
        and by["adapted model"].fde < by["starting model"].fde
    )
    report = AdaptReport(
        tracks.units,
        fps,
        len(train_w),
        len(val_w),
        scores,
        better,
        int(best_payload.get("epoch", 0)),
        time.perf_counter() - t0,
        classes,
        cfg.checkpoint,
    )
    if better:
        keep = ("model_config", "run_config", "model", "epoch", "history", "metrics")
        payload = {key: best_payload[key] for key in keep if key in best_payload}
    else:
        payload = {k: v for k, v in start_payload.items() if k not in ("format", "version")}
    payload["adapt"] = _plain(report.to_dict())
    return report, payload


def _plain(obj):
    """Floats that json and weights_only loading both accept (inf/nan kept as floats)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
