"""Fit the forecaster to one camera without labels: a track's own future is its label.

`adapt(tracks, fps, out_dir, cfg)` takes the tracker's tracks of one camera (pixels, or metres
on the ground plane) and builds up to three candidates from them: the starting forecaster (the
shipped video model by default) fine-tuned with `train.fit` (for as many epochs as early
stopping on the last `val_fraction` of the footage chose; optionally also the weight average
of several fine-tunes, below), the starting model blended with a scene prior, and both. Each
candidate is scored by cross-validation in time (the footage in `folds` blocks, each block
forecast from what the other blocks taught) on the same windows as constant velocity and the
starting model. `adapted.pt` holds the best candidate only if it beats the starting model on
ADE and FDE and, resampling whole tracks (bootstrap), is at most `max_regression` worse with
`confidence`; else it holds the starting checkpoint unchanged, so adaptation does not ship a
regression silently.

Weight averaging (`AdaptConfig.average`): with a few hundred windows, one fine-tune's weights
depend much on which windows it saw. A further candidate averages the weights of fine-tunes
that each left out two of the time blocks (every pair; all from the same start, for the same
epochs): in the cross-validation a block is forecast by the average of the fine-tunes that left
it out, and the average of all of them ships, so every window was seen by some of its members
and its cross-validated score is that of smaller averages trained on less footage.

Scene input (`ForecasterConfig.scene_input`): the fine-tuned heads also read where the track
stands in this camera's view, which way it heads there, and its class when the footage holds
several, through a branch whose last layer starts at zero, so fine-tuning starts exactly from
the generic model's forecasts. Rotation and mirror augmentation are off (they would move a
track's heading away from the place it was seen at).

Scene prior (`ForecasterConfig.scene_prior_size`): no training; the model remembers every
window of the footage (where it stood, its velocity, and how its future departed from
constant velocity in its heading frame) and blends into its forecast the mean departure of
the `prior_k` remembered windows nearest in (position, velocity), with a weight chosen by the
same cross-validation.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import SEED_MAX, between, check_fields, non_empty, require
from .errors import InputError, TrajpredError
from .tracks import Tracks
from .windows import Windows, make_windows, resample_tracks

OBS_LENS = (8, 6, 4, 3, 2)  # automatic history lengths, longest first (the video model: 2-16)
PRIOR_WEIGHTS = tuple(np.round(np.linspace(0, 1, 11), 2).tolist())


@dataclass
class AdaptConfig:
    """Settings of `adapt`; `trajpred adapt --help` shows the ones with flags."""

    checkpoint: str = "data/checkpoints/video.pt"  # the starting forecaster
    epochs: int = 30
    val_fraction: float = 0.2  # the last part of the footage in time, held out
    obs_len: int = 0  # longest history in a window (samples of dt_s); 0: automatic (OBS_LENS)
    min_obs_len: int = 2  # train on random history lengths min_obs_len..obs_len
    phases: int = 4  # training windows start at this many offsets within one dt_s step
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 1e-4
    patience: int = 6  # epochs without a better held-out ADE before stopping
    augment_speed: float = 0.1
    augment_noise: float = 0.06  # as the shipped model (model units, ~metres)
    scene_input: bool = True  # the heads read where the track is (see the module doc)
    class_input: bool = True  # ... and its class, when the footage holds several classes
    prior: bool = True  # blend in the scene prior (mean future of similar earlier tracks)
    prior_k: int = 64  # windows averaged by the scene prior (chosen by CV in time: 4-256)
    finetune: bool = True  # fine-tune the weights (else the starting model + scene prior only)
    folds: int = 4  # time blocks of the footage for the guard's cross-validation
    average: bool = False  # also a weight average of fine-tunes that each left 2 blocks out
    max_regression: float = 0.01  # ship only if confidently at most this much worse (relative)
    confidence: float = 0.95  # one-sided, bootstrap over the tracks
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
            obs_len=between(0, 1000),
            min_obs_len=between(2, 1000),
            phases=between(1, 1000),
            batch_size=between(1, 1_000_000),
            lr=between(0),
            weight_decay=between(0),
            patience=between(1),
            augment_speed=between(0, 1, high_open=True),
            augment_noise=between(0),
            prior_k=between(1, 100_000),
            folds=between(2, 1000),
            max_regression=between(0, 1),
            confidence=between(0, 1, low_open=True, high_open=True),
            min_train_windows=between(1),
            min_val_windows=between(1),
            seed=between(0, SEED_MAX),
            threads=between(0, 1024),
        )
        require(
            not (self.average and self.finetune) or self.folds >= 3,
            "folds",
            f"must be >= 3 to average fine-tunes (each leaves 2 blocks out), got {self.folds}",
        )
        require(self.obs_len != 1, "obs_len", "must be 0 (automatic) or >= 2 (a step needs two)")
        longest = self.obs_len or max(OBS_LENS)
        require(
            self.min_obs_len <= longest,
            "min_obs_len",
            f"must be <= obs_len ({longest}), got {self.min_obs_len}",
        )


@dataclass
class ArmScore:
    """One forecaster's mean errors on the cross-validated windows, in the tracks' units."""

    arm: str
    ade: float
    fde: float


@dataclass
class AdaptReport:
    """What `adapt` did: window counts, cross-validated scores, and what adapted.pt holds.
    val_windows and scores are over the cross-validation's windows (all of the footage)."""

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
    obs_len: int = 8
    obs_len_how: str = "given"  # "given" (--obs-len) or why it was chosen automatically
    train_windows_all_phases: int = 0  # training windows over all start offsets (phases)
    prior_windows: int = 0  # windows the scene prior remembers
    prior_weight: float = 0.0  # weight of the scene prior in the shipped forecast
    change: list[float] = field(default_factory=list)  # relative ADE, FDE change vs start
    change_upper: list[float] = field(default_factory=list)  # their one-sided upper bounds
    guard: str = ""  # how the ship / keep decision was made
    averaged: int = 0  # fine-tunes in the averaged candidate's weights (0: no such candidate)
    # the uncertainty calibration shipped in adapted.pt (`calibrate_camera`): coverage of r50
    # and r90 on the later half of the footage the model did not train on, [before, after]
    calibration: dict = field(default_factory=dict)

    def score(self, arm: str) -> ArmScore:
        return next(s for s in self.scores if s.arm == arm)

    def verdict(self) -> str:
        start, new = self.score("starting model"), self.score("adapted model")
        if self.adapted:
            return (
                f"adapted: cross-validated FDE {start.fde:.3g} -> {new.fde:.3g} {self.units} "
                f"({100 * (new.fde / start.fde - 1):+.1f} %); adapted.pt holds the adapted model"
            )
        return (
            "adaptation did not beat the starting model (cross-validated in time) "
            f"(ADE {new.ade:.3g} vs {start.ade:.3g}, FDE {new.fde:.3g} vs {start.fde:.3g} "
            f"{self.units}; {self.guard}): adapted.pt holds the starting model unchanged"
        )

    def table(self) -> str:
        lines = [
            f"cross-validated in time: {self.val_windows} windows "
            f"(fine-tuned on {self.train_windows}; "
            f"history {self.obs_len} samples, {self.obs_len_how}), {self.units}",
            f"{'forecaster':<24} {'ADE':>9} {'FDE':>9}",
        ]
        lines += [f"{s.arm:<24} {s.ade:9.3f} {s.fde:9.3f}" for s in self.scores]
        if self.guard:
            lines.append(f"guard: {self.guard}")
        return "\n".join(lines + [self.verdict(), self.calibration_line()])

    def calibration_line(self) -> str:
        c = self.calibration
        if not c.get("fitted"):
            return f"uncertainty: not calibrated for this camera ({c.get('why', 'not run')})"
        (b50, a50), (b90, a90) = c["coverage_r50"], c["coverage_r90"]
        return (
            f"uncertainty calibrated on this camera ({c['windows']} windows): on the later "
            f"{c['held_out_windows']}, true positions inside r50 {100 * b50:.0f} % -> "
            f"{100 * a50:.0f} %, inside r90 {100 * b90:.0f} % -> {100 * a90:.0f} % (goal 50 / 90)"
        )

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
    tracks: Tracks,
    fps: float,
    dt_s: float,
    obs_len: int,
    pred_len: int,
    neighbours: int,
    phases: int = 1,
) -> Windows:
    """Video-rate tracks -> windows of obs_len + pred_len samples, dt_s apart. phases > 1 also
    samples the tracks from `phases` start frames within one dt_s step (frame offsets), so
    windows start every few video frames instead of every dt_s."""
    parts = []
    for offset in phase_offsets(fps * dt_s, phases):
        shifted = dataclasses.replace(tracks, frame_id=tracks.frame_id + offset)
        w = make_windows(resample_tracks(shifted, fps * dt_s), obs_len, pred_len, 1, neighbours)
        w.frame_id = w.frame_id - offset
        parts.append(w)
    return parts[0] if len(parts) == 1 else Windows.concat(parts)


def phase_offsets(frames_per_step: float, phases: int) -> list[int]:
    """Distinct whole-frame offsets spreading `phases` samplings over one step."""
    return sorted({int(round(i * frames_per_step / phases)) for i in range(phases)})


def scene_bounds(tracks: Tracks) -> list[float]:
    """x_min, y_min, x_max, y_max of the positions (1st-99th percentile, 5 % margin)."""
    lo, hi = np.percentile(tracks.xy, 1, axis=0), np.percentile(tracks.xy, 99, axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-3)
    return [float(v) for v in (*(lo - pad), *(hi + pad))]


def with_scene_input(model, bounds: list[float], units: str, classes: list[int], seed: int = 0):
    """The starting model with a zero-initialised scene branch: the same forecasts until trained.
    The branch's hidden layer is drawn from `seed` (so that adapting the same tracks twice
    trains the same weights), without touching the global random state."""
    import torch

    from .model import Forecaster

    cfg = dataclasses.replace(
        model.cfg, scene_input=True, scene_bounds=bounds, scene_units=units, scene_classes=classes
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
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


def live_ground_tracks(tracks: Tracks, homography, fps: float, dt_s: float, forecast=None):
    """Pixel tracks -> the ground-plane tracks (metres) that `predict --homography` feeds the
    forecaster: mapped and Kalman-filtered as live (trajpred/ground_filter.py), with the
    filter settings of `forecast` (a ForecastConfig; None: the defaults)."""
    from .geometry import GroundPlane
    from .ground_filter import ground_tracks
    from .pipeline import ForecastConfig

    forecast = forecast or ForecastConfig()
    return ground_tracks(
        tracks,
        GroundPlane(homography, forecast.homography or "homography"),
        fps,
        forecast.ground_noise_px,
        forecast.restart_after_frames(fps, dt_s),
    )


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


def _too_few(what: str, found: int, needed: int, obs_len: int, pred_len: int, dt_s: float):
    seq = obs_len + pred_len
    return (
        f"too few windows to adapt: {found} {what} windows found, {needed} needed (a window is "
        f"a track followed for {obs_len} + {pred_len} samples of {dt_s:g} s = "
        f"{seq * dt_s:.1f} s; use longer footage"
    )


def check_windows(tracks: Tracks, fps: float, cfg: AdaptConfig, start) -> tuple[int, str]:
    """(history length, how it was chosen); refuses footage with too few windows before
    anything is trained or written. With cfg.obs_len == 0 the longest of OBS_LENS that gives
    enough training and held-out windows is taken (counted at one phase: windows of other
    phases overlap these)."""
    mc = start.cfg
    train, val = split_in_time(tracks, cfg.val_fraction)
    counts = {}
    for obs_len in [cfg.obs_len] if cfg.obs_len else OBS_LENS:
        n_train = len(camera_windows(train, fps, mc.dt_s, obs_len, mc.pred_len, 0))
        n_val = len(camera_windows(val, fps, mc.dt_s, obs_len, mc.pred_len, 0))
        counts[obs_len] = (n_train, n_val)
        if n_train >= cfg.min_train_windows and n_val >= cfg.min_val_windows:
            if cfg.obs_len:
                return obs_len, "given"
            if obs_len == OBS_LENS[0]:
                return obs_len, "automatic: the default"
            longer = ", ".join(
                f"{n}: {t} training / {v} held-out windows"
                for n, (t, v) in counts.items()
                if n != obs_len
            )
            return obs_len, f"automatic: longer histories gave too few windows ({longer})"
    obs_len = min(counts)
    n_train, n_val = counts[obs_len]
    if n_train < cfg.min_train_windows:
        raise TrajpredError(
            _too_few("training", n_train, cfg.min_train_windows, obs_len, mc.pred_len, mc.dt_s)
            + (" or a shorter --obs-len)" if obs_len > 2 else ")")
        )
    raise TrajpredError(
        _too_few("held-out", n_val, cfg.min_val_windows, obs_len, mc.pred_len, mc.dt_s)
        + " or a larger --val-fraction)"
    )


def with_scene(model, bounds: list[float], units: str, classes: list[int]):
    """`model` told the scene's bounds (for a scene prior) without a scene branch."""
    from .model import Forecaster

    cfg = dataclasses.replace(
        model.cfg, scene_bounds=bounds, scene_units=units, scene_classes=classes
    )
    out = Forecaster(cfg)
    out.load_state_dict(model.state_dict())
    return out.eval()


def prior_bank(model_cfg, windows: Windows) -> tuple:
    """(keys (N, 4), corrections (N, pred_len, 2)) of a scene prior remembering `windows`: where
    each window's track stood and how fast it went (model.prior_keys), and how its future
    departed from constant velocity (heading frame, model units). model_cfg gives the scene
    bounds and the normalisation."""
    import torch

    from .features import to_heading_frame
    from .forecast import window_inputs
    from .model import prior_keys

    cfg = dataclasses.replace(  # reads the scene vector, not the neighbours
        model_cfg, social_neighbours=0, scene_prior_size=max(1, model_cfg.scene_prior_size)
    )
    holder = type("Cfg", (), {"cfg": cfg})()
    obs = torch.as_tensor(windows.obs_xy)
    box = None if windows.obs_box_wh is None else torch.as_tensor(windows.obs_box_wh)
    with torch.no_grad():
        inputs, heading, scale = window_inputs(
            holder, obs, box, class_id=torch.as_tensor(windows.class_id)
        )
        speed, scene = inputs[1], inputs[4]
        target = to_heading_frame(torch.as_tensor(windows.fut_xy), obs[:, -1], heading, scale)
        k = torch.arange(1, windows.pred_len + 1, dtype=target.dtype)
        cv = torch.stack([speed[:, None] * k, torch.zeros_like(speed[:, None] * k)], -1)
        return prior_keys(scene, speed), target - cv


def with_prior(model, keys, corrections, k: int, weight: float):
    """`model` (scene bounds set) whose deterministic forecast is blended with a scene prior."""
    from .model import Forecaster

    cfg = dataclasses.replace(
        model.cfg, scene_prior_size=len(keys), scene_prior_k=k, scene_prior_weight=weight
    )
    out = Forecaster(cfg)
    state = {**model.state_dict(), "prior_keys": keys, "prior_corrections": corrections}
    out.load_state_dict(state)
    return out.eval()


def choose_weight(model_xy, prior_xy, fut_xy, rows=None) -> float:
    """The prior weight (of PRIOR_WEIGHTS) with the lowest ADE + FDE on `rows` of the windows."""
    from .metrics import ade, fde

    rows = np.arange(len(fut_xy)) if rows is None else rows
    best, best_w = np.inf, 0.0
    for w in PRIOR_WEIGHTS:
        pred = (1 - w) * model_xy[rows] + w * prior_xy[rows]
        err = ade(pred, fut_xy[rows]).mean() + fde(pred, fut_xy[rows]).mean()
        if err < best - 1e-9:
            best, best_w = err, w
    return best_w


def bootstrap_change(
    track_id, start_err: np.ndarray, new_err: np.ndarray, confidence: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(relative change of the mean errors, its one-sided `confidence` upper bound) for error
    columns (N, C) of the same N windows, resampling whole tracks (their windows overlap)."""
    _, track = np.unique(track_id, return_inverse=True)
    n = track.max() + 1
    s = np.stack([np.bincount(track, start_err[:, c], n) for c in range(start_err.shape[1])], 1)
    t = np.stack([np.bincount(track, new_err[:, c], n) for c in range(new_err.shape[1])], 1)
    change = t.sum(0) / s.sum(0) - 1
    draws = np.random.default_rng(seed).integers(0, n, (2000, n))
    boot = t[draws].sum(1) / np.maximum(s[draws].sum(1), 1e-12) - 1
    return change, np.quantile(boot, confidence, axis=0)


def time_blocks(tracks: Tracks, folds: int) -> np.ndarray:
    """(N,) the time block (0..folds-1) of each row: `folds` consecutive runs of the distinct
    frames."""
    frames = tracks.frames()
    if len(frames) == 0:
        return np.zeros(0, np.int64)
    edges = np.array([frames[int(i * len(frames) / folds)] for i in range(1, folds)])
    return np.searchsorted(edges, tracks.frame_id, side="right")


def left_out(folds: int, average: bool) -> list[tuple[int, ...]]:
    """The blocks each fine-tune of the cross-validation leaves out: one each (the fine-tuned
    candidate) and, averaging, every pair (the averaged one). A block is forecast by the
    fine-tunes that left it out."""
    singles: list[tuple[int, ...]] = [(i,) for i in range(folds)]
    return singles + (list(itertools.combinations(range(folds), 2)) if average else [])


def weight_average(models: list):
    """One Forecaster whose weights are the mean of `models`' (one config, one start)."""
    if len(models) == 1:
        return models[0]
    import torch

    from .model import Forecaster

    out = Forecaster(models[0].cfg)
    states = [m.state_dict() for m in models]
    out.load_state_dict(  # in float64: equal weights average to exactly themselves
        {
            k: torch.stack([s[k].double() for s in states]).mean(0).to(v.dtype)
            if v.is_floating_point()
            else v
            for k, v in states[0].items()
        }
    )
    return out.eval()


@dataclass
class _Run:
    """What one fine-tuning and scoring needs: the footage's fps, model settings, folders."""

    fps: float
    cfg: AdaptConfig
    obs_len: int
    offsets: list[int]
    progress: bool
    log: object


def _finetune(model, train: Tracks, val: Tracks, run: _Run, work_dir: Path, epochs: int = 0):
    """(fine-tuned model, its checkpoint payload): `model` trained on windows of `train` (one
    file per phase): `epochs` epochs exactly, or with epochs=0 at most cfg.epochs, early-stopped
    on `val` (the cross-validation passes the blocks a fine-tune left out: only logged there,
    never chosen on)."""
    from .checkpoint import load_checkpoint, model_from_payload, save_checkpoint
    from .config import to_dict
    from .data import DataConfig
    from .formats import write_csv
    from .train import RunConfig, TrainConfig, fit

    cfg, fixed = run.cfg, epochs > 0
    epochs = epochs or cfg.epochs
    work_dir.mkdir(parents=True, exist_ok=True)
    init = work_dir / "start.pt"
    save_checkpoint(init, {"model_config": to_dict(model.cfg), "model": model.state_dict()})
    files = [work_dir / ("train.csv" if i == 0 else f"train_phase{i}.csv") for i in run.offsets]
    for stale in work_dir.glob("train_phase*.csv"):
        stale.unlink()
    for path, offset in zip(files, run.offsets, strict=True):
        write_csv(path, dataclasses.replace(train, frame_id=train.frame_id + offset))
    write_csv(work_dir / "val.csv", val)
    config = RunConfig(
        data=DataConfig(
            train_files=[str(f) for f in files], val_files=[str(work_dir / "val.csv")], fps=run.fps
        ),
        model=model.cfg,
        train=TrainConfig(
            epochs=epochs,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            warmup_epochs=1,
            patience=epochs + 1 if fixed else cfg.patience,
            seed=cfg.seed,
            min_obs_len=min(cfg.min_obs_len, run.obs_len),
            augment_rotate=False,
            augment_flip=False,
            augment_speed=cfg.augment_speed,
            augment_noise=cfg.augment_noise,
            eval_k=0,
            threads=cfg.threads,
            init_from=str(init),
            calibrate=False,  # adapt calibrates the model it ships, once (calibrate_camera)
            out_dir=str(work_dir),
        ),
    )
    for name in ("best.pt", "last.pt"):  # a new run, not a resume of an earlier one
        (work_dir / name).unlink(missing_ok=True)
    fit(config, progress=run.progress, log=run.log)
    path = work_dir / ("last.pt" if fixed else "best.pt")
    payload = load_checkpoint(path)
    return model_from_payload(payload, path), payload


def _predict(model, w: Windows) -> np.ndarray:
    from .forecast import forecast_on

    return forecast_on(model, w).mean


def _errors(xy: np.ndarray, fut: np.ndarray) -> np.ndarray:
    from .metrics import ade, fde

    return np.stack([ade(xy, fut), fde(xy, fut)], 1)


def _cross_validate(tracks, start, scene_start, tuned_start, run: _Run, work_dir, epochs):
    """Forecasts of every arm for every window of the footage, each made by what was learnt
    without its time block: dict arm -> (N, pred_len, 2), plus the windows' futures
    (N, pred_len, 2), fold index and track ids; and the fine-tunes that left out two blocks
    (averaging; see `left_out`)."""
    from .metrics import constant_velocity

    mc, cfg = start.cfg, run.cfg
    block_of = time_blocks(tracks, cfg.folds)
    windows = [
        camera_windows(
            tracks.select(block_of == i), run.fps, mc.dt_s, run.obs_len, mc.pred_len,
            mc.social_neighbours,
        )
        for i in range(cfg.folds)
    ]  # fmt: skip
    tuned: dict[tuple[int, ...], object] = {}
    for out_blocks in left_out(cfg.folds, cfg.average) if cfg.finetune and epochs > 0 else []:
        if not any(len(windows[i]) for i in out_blocks):
            continue  # forecasts nothing (and fit needs held-out windows to log)
        out = np.isin(block_of, out_blocks)
        tuned[out_blocks], _ = _finetune(
            tuned_start,
            tracks.select(~out),
            tracks.select(out),
            run,
            work_dir / f"fold{''.join(map(str, out_blocks))}",
            epochs,
        )
    pooled: dict[str, list] = {"fut": [], "fold": [], "track": [], "cv": []}
    for i, w in enumerate(windows):
        if len(w) == 0:
            continue
        preds = {"cv": constant_velocity(w.obs_xy, w.pred_len), "start": _predict(start, w)}
        if cfg.prior:
            rest = tracks.select(block_of != i)
            bank_w = camera_windows(rest, run.fps, mc.dt_s, 2, mc.pred_len, 0, cfg.phases)
            keys, corrections = prior_bank(scene_start.cfg, bank_w)
            prior = with_prior(scene_start, keys, corrections, cfg.prior_k, 1.0)
            preds["prior"] = _predict(prior, w)
        if tuned:
            preds["tuned"] = _predict(tuned[(i,)], w)
        without_i = [m for out, m in tuned.items() if len(out) == 2 and i in out]
        if without_i:
            preds["averaged"] = _predict(weight_average(without_i), w)
        for key, xy in preds.items():
            pooled.setdefault(key, []).append(xy)
        pooled["fut"].append(w.fut_xy)
        pooled["fold"].append(np.full(len(w), i))
        pooled["track"].append(w.track_id)
    pairs = [m for out_blocks, m in tuned.items() if len(out_blocks) == 2]
    return {k: np.concatenate(v) for k, v in pooled.items() if v}, pairs


def _blend_across_folds(model_xy, prior_xy, fut, fold) -> tuple[np.ndarray, float]:
    """(blend of each fold with the prior weight chosen on the other folds, the weight chosen
    on all of them)."""
    out = np.empty_like(model_xy)
    for f in np.unique(fold):
        w = choose_weight(model_xy, prior_xy, fut, np.flatnonzero(fold != f))
        rows = fold == f
        out[rows] = (1 - w) * model_xy[rows] + w * prior_xy[rows]
    return out, choose_weight(model_xy, prior_xy, fut)


CANDIDATES = {  # candidate -> (model forecasts in the cross-validation, blended with the prior)
    "fine-tuned": ("tuned", False),
    "fine-tuned, averaged": ("averaged", False),
    "starting model + prior": ("start", True),
    "fine-tuned + prior": ("tuned", True),
    "fine-tuned, averaged + prior": ("averaged", True),
}


def _candidates(pooled: dict) -> dict[str, tuple[np.ndarray, float]]:
    """arm -> (cross-validated forecasts, prior weight) of what adapt could ship."""
    fut, fold = pooled["fut"], pooled["fold"]
    found = {}
    for name, (base, prior) in CANDIDATES.items():
        if base not in pooled or (prior and "prior" not in pooled):
            continue
        if prior:
            found[name] = _blend_across_folds(pooled[base], pooled["prior"], fut, fold)
        elif base != "start":
            found[name] = (pooled[base], 0.0)
    return found


def adapt(
    tracks: Tracks,
    fps: float,
    work_dir: Path,
    cfg: AdaptConfig,
    progress: bool = True,
    log=print,
    arms: dict | None = None,
) -> tuple[AdaptReport, dict]:
    """Adapt cfg.checkpoint to `tracks` (one camera, `fps` frames per second); training files
    go to work_dir. Returns the report and the checkpoint payload to save as adapted.pt.

    The candidates (fine-tuned weights, the starting model + scene prior, fine-tuned + prior)
    are scored by cross-validation in time: the footage is cut into cfg.folds blocks, and each
    block is forecast by what was learnt without it (fine-tuning for as many epochs as early
    stopping chose on the last val_fraction, the weights averaged over the fine-tunes that left
    it out with cfg.average; the prior remembering the other blocks' windows, its weight chosen
    on the other blocks). The candidate with the lowest ADE + FDE
    ships if it beats the starting model on both and, resampling tracks (bootstrap), is at
    most cfg.max_regression worse with cfg.confidence; else adapted.pt is the starting model.

    `arms`, when given, receives every candidate as it would ship, whatever the guard decided
    (for ablations), named as in CANDIDATES."""
    from .config import to_dict
    from .pipeline import check_scene_units

    t0 = time.perf_counter()
    start_payload, start = load_start(cfg.checkpoint)
    check_scene_units(start, tracks.units == "m", cfg.checkpoint)
    mc = start.cfg
    obs_len, obs_len_how = check_windows(tracks, fps, cfg, start)
    train, val = split_in_time(tracks, cfg.val_fraction)
    train_w = camera_windows(train, fps, mc.dt_s, obs_len, mc.pred_len, 0)
    classes = sorted({int(c) for c in np.asarray(train.class_id) if c >= 0})
    classes = classes if cfg.class_input and len(classes) > 1 else []
    bounds, units = scene_bounds(tracks), tracks.units
    scene_start = with_scene(start, bounds, units, classes)
    tuned_start = (
        with_scene_input(start, bounds, units, classes, cfg.seed) if cfg.scene_input else start
    )
    tuned_start.cfg = dataclasses.replace(tuned_start.cfg, obs_len=obs_len)
    run = _Run(fps, cfg, obs_len, phase_offsets(fps * mc.dt_s, cfg.phases), progress, log)
    tuned, best_payload, epochs = None, {}, 0
    if cfg.finetune:
        tuned, best_payload = _finetune(tuned_start, train, val, run, work_dir)
        epochs = int(best_payload.get("epoch", 0))
    pooled, pairs = _cross_validate(tracks, start, scene_start, tuned_start, run, work_dir, epochs)
    averaged = weight_average(pairs) if pairs else None  # each window seen by some members
    found = _candidates(pooled)
    fut = pooled["fut"]

    def arm(name, xy):
        e = _errors(xy, fut).mean(0)
        return ArmScore(name, float(e[0]), float(e[1]))

    best = min(found, key=lambda n: _errors(found[n][0], fut).mean(0).sum()) if found else None
    new_xy, weight = found[best] if best else (pooled["start"], 0.0)
    change, upper = bootstrap_change(
        pooled["track"], _errors(pooled["start"], fut), _errors(new_xy, fut), cfg.confidence
    )
    better = bool(best) and bool((change < 0).all() and (upper <= cfg.max_regression).all())
    guard = (
        f"cross-validated in time ({cfg.folds} blocks), best candidate {best}: ADE "
        f"{100 * change[0]:+.1f} %, FDE {100 * change[1]:+.1f} % vs the starting model; "
        f"{100 * cfg.confidence:g} % bootstrap bounds over {len(np.unique(pooled['track']))} "
        f"tracks {100 * upper[0]:+.1f} % / {100 * upper[1]:+.1f} % (ships if both changes "
        f"< 0 and both bounds <= {100 * cfg.max_regression:+g} %)"
    )
    scores = [arm("constant velocity", pooled["cv"]), arm("starting model", pooled["start"])]
    scores += [arm("adapted model", new_xy)] + [arm(n, xy) for n, (xy, _) in found.items()]
    report = AdaptReport(
        units,
        fps,
        len(train_w),
        len(fut),
        scores,
        better,
        epochs,
        time.perf_counter() - t0,
        classes,
        cfg.checkpoint,
        obs_len,
        obs_len_how,
        _count_phases(train, fps, mc, obs_len, cfg.phases),
        0,
        weight if best and "prior" in best else 0.0,
        change.tolist(),
        upper.tolist(),
        guard,
    )
    bases = {"start": scene_start, "tuned": tuned, "averaged": averaged}
    ship = _as_shipped(tracks, start, bases, found, run)
    report.averaged = len(pairs)
    report.prior_windows = next((len(m.prior_keys) for m in ship.values() if _has_prior(m)), 0)
    if arms is not None:
        arms.update(ship)
    if better:
        keep = ("run_config", "epoch", "history", "metrics")
        payload = {key: best_payload[key] for key in keep if key in best_payload}
        payload.update(model_config=to_dict(ship[best].cfg), model=ship[best].state_dict())
    else:
        payload = {k: v for k, v in start_payload.items() if k not in ("format", "version")}
    final = ship[best] if better else start
    # An adapted model learnt the earlier footage (weights or prior): only the held-out time is
    # new to it; the starting model has seen none of it.
    calibration, report.calibration = calibrate_camera(
        final, val if better else tracks, fps, obs_len
    )
    if calibration is not None:
        payload["calibration"] = calibration.to_dict()
    payload["adapt"] = _plain(report.to_dict())
    return report, payload


MIN_CALIBRATION_WINDOWS = 40  # per half: fewer leave the 90 % radius to a handful of errors


def calibrate_camera(model, tracks: Tracks, fps: float, obs_len: int) -> tuple:
    """The uncertainty calibration of `model` for this camera, fitted on windows of `tracks`
    (footage the model did not train on; its own future is the label), and a report: the
    windows are cut in time, the calibration fitted on the first half is scored on the second
    beside the model's own (coverage of r50, r90 before -> after), and the one shipped is
    fitted on all of them. (None, report) when there are too few windows: the model keeps the
    calibration it had."""
    from .evaluation import calibrate_on
    from .forecast import forecast_on
    from .metrics import coverage

    mc = model.cfg
    w = camera_windows(tracks, fps, mc.dt_s, obs_len, mc.pred_len, mc.social_neighbours)
    cut = np.median(w.frame_id) if len(w) else 0
    first, second = w.select(w.frame_id <= cut), w.select(w.frame_id > cut)
    if min(len(first), len(second)) < MIN_CALIBRATION_WINDOWS:
        return None, {
            "fitted": False,
            "windows": len(w),
            "why": f"fewer than {MIN_CALIBRATION_WINDOWS} windows in a half of the footage "
            "it did not train on: the model keeps the calibration it had",
        }
    before = forecast_on(model, second)
    fitted = calibrate_on(model, first, "this camera, first half")
    after_r50, after_r90 = fitted.radii(before.sigma)

    def inside(r) -> float:
        return float(coverage(before.mean, second.fut_xy, r).mean())

    report = {
        "fitted": True,
        "windows": len(w),
        "held_out_windows": len(second),
        "coverage_r50": [inside(before.r50), inside(after_r50)],
        "coverage_r90": [inside(before.r90), inside(after_r90)],
    }
    return calibrate_on(model, w, f"this camera: {len(w)} windows"), report


def _has_prior(model) -> bool:
    return model.cfg.scene_prior_size > 0


def _count_phases(train: Tracks, fps: float, mc, obs_len: int, phases: int) -> int:
    return len(camera_windows(train, fps, mc.dt_s, obs_len, mc.pred_len, 0, phases))


def _as_shipped(tracks, start, bases: dict, found, run: _Run) -> dict:
    """Each candidate as it would ship (`bases`: "start" with the scene's bounds, "tuned",
    "averaged" or None): the prior remembers every window of the footage."""
    mc, cfg = start.cfg, run.cfg
    keys = corrections = None
    if any(CANDIDATES[name][1] for name in found):
        bank_w = camera_windows(tracks, run.fps, mc.dt_s, 2, mc.pred_len, 0, cfg.phases)
        keys, corrections = prior_bank(bases["start"].cfg, bank_w)
    ship = {}
    for name, (weights, blended) in CANDIDATES.items():
        base = bases[weights]
        if name not in found or base is None:
            continue
        w = found[name][1]
        if w > 0 and not base.cfg.reads_scene:  # plain fine-tuning: tell it the scene's bounds
            base = with_scene(base, bases["start"].cfg.scene_bounds, tracks.units, [])
        if blended and w > 0:
            base = with_prior(base, keys, corrections, cfg.prior_k, w)
        ship[name] = base
    return ship


def _plain(obj):
    """Floats that json and weights_only loading both accept (inf/nan kept as floats)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
