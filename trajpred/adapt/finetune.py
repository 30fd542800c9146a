"""Fine-tuning the starting forecaster on one camera's tracks with `train.fit`, optionally with
a scene input (`ForecasterConfig.scene_input`: the heads also read where the track stands in
this camera's view, which way it heads there, and its class when the footage holds several,
through a branch whose last layer starts at zero, so fine-tuning starts exactly from the
generic model's forecasts; rotation and mirror augmentation are off, since they would move a
track's heading away from the place it was seen at); and the weight average of fine-tunes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, TrajpredError
from ..tracks import Tracks
from .config import AdaptConfig


def load_start(checkpoint: str):
    """(payload, Forecaster) of the starting checkpoint; an ensemble is refused."""
    from ..checkpoint import load_checkpoint, model_from_payload
    from ..model import Forecaster
    from ..paths import resolve_data_path

    path = resolve_data_path(checkpoint)
    payload = load_checkpoint(path)
    model = model_from_payload(payload, path)
    if not isinstance(model, Forecaster):
        raise InputError(path, "an ensemble checkpoint; adapt one of its members instead")
    return payload, model


def with_scene_input(model, bounds: list[float], units: str, classes: list[int], seed: int = 0):
    """The starting model with a zero-initialised scene branch: the same forecasts until trained.
    The branch's hidden layer is drawn from `seed` (so that adapting the same tracks twice
    trains the same weights), without touching the global random state."""
    import torch

    from ..model import Forecaster

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


@dataclass
class Run:
    """What one fine-tuning and scoring needs: the footage's fps, model settings, folders."""

    fps: float
    cfg: AdaptConfig
    obs_len: int
    offsets: list[int]
    progress: bool
    log: Callable[..., object]


def finetune(model, train: Tracks, val: Tracks, run: Run, work_dir: Path, epochs: int = 0):
    """(fine-tuned model, its checkpoint payload): `model` trained on windows of `train` (one
    file per phase): `epochs` epochs exactly, or with epochs=0 at most cfg.epochs, early-stopped
    on `val` (the cross-validation passes the blocks a fine-tune left out: only logged there,
    never chosen on)."""
    from ..checkpoint import load_checkpoint, model_from_payload, save_checkpoint
    from ..config import to_dict
    from ..data import DataConfig
    from ..formats import write_csv
    from ..train import RunConfig, TrainConfig, fit

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


def weight_average(models: list):
    """One Forecaster whose weights are the mean of `models`' (one config, one start)."""
    if len(models) == 1:
        return models[0]
    import torch

    from ..model import Forecaster

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
