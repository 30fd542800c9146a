"""Training the forecaster: `train_one_epoch`, `evaluate`, `fit`.

fit() writes into `train.out_dir`: last.pt every epoch, best.pt when validation ADE improves,
log.csv (one row per epoch), config.yaml (the resolved run config). `resume=True` continues
from last.pt: weights, optimiser, schedule, epoch, best metric and early-stopping counter.
Each epoch reseeds from (seed, epoch), so a resumed run draws the same batches as an
uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import torch
from torch import nn

from .atomic import write_text
from .checkpoint import load_checkpoint, model_from_payload, save_checkpoint
from .checks import SEED_MAX, between, check_fields, non_empty, one_of, require
from .config import save_config, to_dict
from .data import DataConfig, load_split
from .errors import InputError, TrajpredError
from .features import to_heading_frame, window_scale
from .forecast import forecast_on, window_inputs
from .metrics import ade, fde, min_ade_fde
from .model import Forecaster, ForecasterConfig, ForecastOutput
from .outputs import writable_folder
from .windows import Windows


@dataclass
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(use_cuda: bool = False) -> Distributed:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def training_device(name: str) -> torch.device:
    """train.device (auto | cpu | cuda) -> the device of this process; under torchrun each rank
    takes the GPU of its LOCAL_RANK."""
    from .detect import resolve_device

    device = torch.device(resolve_device(name))
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def _all_mean(value: float, ctx: Distributed) -> float:
    if ctx.world_size == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t) / ctx.world_size


@dataclass
class TrainConfig:
    epochs: int = 60
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    grad_clip: float = 1.0
    patience: int = 12  # epochs without a better validation ADE before stopping
    seed: int = 0
    min_obs_len: int = 0  # >1: train on random history lengths min_obs_len..obs_len
    augment_rotate: bool = True
    augment_flip: bool = True
    augment_speed: float = 0.1  # scale whole windows by a factor in [1 - a, 1 + a]
    augment_noise: float = 0.0  # max std of noise added to observed positions (model units, ~m)
    wta_relax: float = 0.05  # share of the mode loss given to the losing modes
    mode_weight: float = 0.3  # weight of the mixture head's losses beside the deterministic ADE
    eval_k: int = 20  # best-of-K on validation
    threads: int = 0  # torch CPU threads (0 = torch's default)
    device: str = "auto"  # auto | cpu | cuda: where the model trains (auto: a GPU if there is one)
    init_from: str = ""  # start from this checkpoint's weights (fine-tuning); same model config
    calibrate: bool = True  # fit best.pt's uncertainty calibration on the validation windows
    out_dir: str = "runs/train"

    def __post_init__(self) -> None:
        check_fields(
            self,
            epochs=between(1, 100_000),
            batch_size=between(1, 1_000_000),
            lr=between(0),  # 0 keeps the initial weights
            weight_decay=between(0),
            warmup_epochs=between(0, 100_000),
            grad_clip=between(0),  # 0: no clipping
            patience=between(1),
            seed=between(0, SEED_MAX),
            min_obs_len=between(0, 1000),
            augment_speed=between(0, 1, high_open=True),
            augment_noise=between(0),
            wta_relax=between(0, 1, high_open=True),
            mode_weight=between(0),
            eval_k=between(0, 1000),
            threads=between(0, 1024),
            device=one_of("auto", "cpu", "cuda"),
            out_dir=non_empty,
        )


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ForecasterConfig = field(default_factory=ForecasterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        require(
            self.train.min_obs_len <= self.model.obs_len,
            "train.min_obs_len",
            f"must be <= model.obs_len ({self.model.obs_len}), got {self.train.min_obs_len}",
        )
        fps_step = self.data.fps * self.model.dt_s
        require(
            self.data.fps == 0 or fps_step >= 1,
            "data.fps",
            f"must be 0 (tracks at the model step) or >= 1 / model.dt_s "
            f"({1 / self.model.dt_s:g}: one frame per model step), got {self.data.fps:g}",
        )


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    val_ade: float
    val_fde: float
    val_min_ade: float
    val_min_fde: float
    lr: float
    seconds: float


def augment(
    obs: torch.Tensor,
    fut: torch.Tensor,
    cfg: TrainConfig,
    gen: torch.Generator,
    nbr: torch.Tensor | None = None,
):
    """Random rotation, mirror and speed scaling of whole windows (and their neighbours, (B, K,
    2, 2)) about their last observation."""
    origin = obs[:, -1:].clone()
    parts = [obs, fut] + ([nbr.reshape(len(obs), -1, 2)] if nbr is not None else [])
    both = torch.cat(parts, 1) - origin
    b = len(both)
    if cfg.augment_rotate:
        angle = torch.rand(b, generator=gen) * 2 * math.pi
        c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
        both = torch.stack(
            [c * both[..., 0] - s * both[..., 1], s * both[..., 0] + c * both[..., 1]], -1
        )
    if cfg.augment_flip:
        flip = (torch.rand(b, generator=gen) < 0.5)[:, None]
        both = torch.stack([both[..., 0], torch.where(flip, -both[..., 1], both[..., 1])], -1)
    if cfg.augment_speed > 0:
        factor = 1 + (torch.rand(b, generator=gen) * 2 - 1) * cfg.augment_speed
        both = both * factor[:, None, None]
    both = both + origin
    t_obs, t_fut = obs.shape[1], fut.shape[1]
    moved_nbr = None if nbr is None else both[:, t_obs + t_fut :].reshape(nbr.shape)
    return both[:, :t_obs], both[:, t_obs : t_obs + t_fut], moved_nbr


def forecast_loss(out: ForecastOutput, target: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """ADE of the deterministic head + relaxed winner-takes-all on the modes + mode
    classification + Gaussian NLL of the winner's sigma. target (B, pred_len, 2), heading frame."""
    if out.modes is None:
        raise ValueError("training needs the whole mixture (decode with mixture=True)")
    mean_loss = (out.mean - target).norm(dim=-1).mean()
    mode_err = (out.modes - target[:, None]).norm(dim=-1)  # (B, M, T)
    mode_ade = mode_err.mean(-1)  # (B, M)
    winner = mode_ade.argmin(1)
    m = mode_ade.shape[1]
    weights = torch.full_like(mode_ade, cfg.wta_relax / max(m - 1, 1))
    weights.scatter_(1, winner[:, None], 1 - cfg.wta_relax if m > 1 else 1.0)
    wta = (weights * mode_ade).sum(1).mean()
    cls = nn.functional.cross_entropy(out.mode_logits, winner)
    rows = torch.arange(len(winner))
    sigma, err = out.mode_sigma[rows, winner], mode_err[rows, winner].detach()
    nll = (2 * torch.log(sigma) + err**2 / (2 * sigma**2)).mean()
    return mean_loss + cfg.mode_weight * (wta + 0.5 * cls + 0.1 * nll)


def train_one_epoch(
    model: nn.Module,
    windows: Windows,
    optimizer,
    scheduler,
    cfg: TrainConfig,
    epoch: int,
    progress: bool = True,
    ctx: Distributed | None = None,
) -> float:
    """One pass over shuffled training windows; returns the mean loss (over all ranks).

    Under torchrun every rank draws the same permutation and takes every world_size-th window
    (a distributed sampler), with batch_size / world_size per rank, so the global batch and
    the number of optimiser steps match a single-process run.
    """
    from tqdm import tqdm

    ctx = ctx or Distributed()
    model.train()
    gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
    order = torch.randperm(len(windows), generator=gen)
    if ctx.world_size > 1:
        per_rank = math.ceil(len(order) / ctx.world_size)
        order = order.repeat(2)[: per_rank * ctx.world_size][ctx.rank :: ctx.world_size]
        gen.manual_seed(cfg.seed * 100003 + epoch * 1009 + ctx.rank)  # own augmentation draws
    batch_size = max(1, cfg.batch_size // ctx.world_size)
    obs_all = torch.as_tensor(windows.obs_xy)
    fut_all = torch.as_tensor(windows.fut_xy)
    box_all = None if windows.obs_box_wh is None else torch.as_tensor(windows.obs_box_wh)
    nbr_all = None if windows.nbr_xy is None else torch.as_tensor(windows.nbr_xy)
    mask_all = None if windows.nbr_mask is None else torch.as_tensor(windows.nbr_mask)
    class_all = torch.as_tensor(windows.class_id)
    obs_len = windows.obs_len
    module = cast(Forecaster, getattr(model, "module", model))  # the model inside DDP
    device = next(module.parameters()).device
    total, count = 0.0, 0
    batches = range(0, len(order), batch_size)
    for start in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not progress or None):
        idx = order[start : start + batch_size]
        obs, fut, nbr = augment(
            obs_all[idx], fut_all[idx], cfg, gen, None if nbr_all is None else nbr_all[idx]
        )
        box = None if box_all is None else box_all[idx]
        if cfg.min_obs_len > 1:
            keep = int(torch.randint(cfg.min_obs_len, obs_len + 1, (1,), generator=gen))
            obs, box = obs[:, obs_len - keep :], None if box is None else box[:, obs_len - keep :]
        if cfg.augment_noise > 0:
            # Annotation noise on the observed steps only, at a random level per window (some
            # windows stay clean): the model learns to judge from the jitter it sees whether to
            # smooth its input or trust it (the future stays as annotated).
            level = (
                torch.rand(len(obs), generator=gen)
                * cfg.augment_noise
                * window_scale(box, len(obs))
            )
            obs = obs + torch.randn(obs.shape, generator=gen) * level[:, None, None]
        inputs, heading, scale = window_inputs(
            module, obs, box, nbr, None if mask_all is None else mask_all[idx], class_all[idx]
        )
        target = to_heading_frame(fut, obs[:, -1], heading, scale)
        if device.type != "cpu":  # windows are drawn and augmented on the CPU, as without a GPU
            inputs = tuple(None if t is None else t.to(device, non_blocking=True) for t in inputs)
            target = target.to(device, non_blocking=True)
        out = model(*inputs)
        loss = forecast_loss(out, target, cfg)
        if not torch.isfinite(loss):
            raise TrajpredError(
                f"training loss became non-finite at epoch {epoch} "
                f"(batch {start // batch_size}); lower train.lr or check the data"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
        count += len(idx)
    return _all_mean(total / max(count, 1), ctx)


@dataclass
class EvalMetrics:
    """Mean errors of a model over windows, in the data's units (metres or pixels).

    min_ade / min_fde are best-of-k over the model's modes; None when evaluated with k = 0.
    """

    ade: float
    fde: float
    min_ade: float | None = None
    min_fde: float | None = None

    def to_dict(self) -> dict[str, float]:
        """Plain data for a checkpoint: the best-of-k entries only when they were measured."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def evaluate(model: Forecaster, windows: Windows, k: int = 20) -> EvalMetrics:
    """Mean ADE/FDE (and best-of-k) over windows, in the data's units."""
    fc = forecast_on(model, windows, k)
    metrics = EvalMetrics(
        ade=float(ade(fc.mean, windows.fut_xy).mean()),
        fde=float(fde(fc.mean, windows.fut_xy).mean()),
    )
    if k:
        assert fc.samples is not None  # forecast_windows draws k samples when k > 0
        min_ade, min_fde = min_ade_fde(fc.samples, windows.fut_xy)
        metrics.min_ade, metrics.min_fde = float(min_ade.mean()), float(min_fde.mean())
    return metrics


def _lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    warmup = max(1, cfg.warmup_epochs * steps_per_epoch)
    total = max(warmup + 1, cfg.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return (
            0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup)))) * 0.99
            + 0.01
        )

    return factor


def _check_writable(out_dir: Path) -> None:
    writable_folder(out_dir)
    for stale in out_dir.glob(".*.tmp*"):  # left by a process killed while writing
        stale.unlink(missing_ok=True)


def _write_log(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(EpochLog.__dataclass_fields__))
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buf.getvalue())


@dataclass
class FitResult:
    """What `fit` leaves behind. On ranks other than 0 under torchrun (is_main False) the paths
    are rank 0's files; such a process should not report them."""

    best_val_ade: float  # in the data's units
    epochs: int  # epochs in the run's history (a resumed run counts the earlier ones too)
    best_path: Path  # best.pt: the weights of the best validation ADE
    last_path: Path  # last.pt: the last epoch, with optimiser state for --resume
    is_main: bool  # this process wrote the files and should print (rank 0)


@dataclass
class _Training:
    """The state of a run between epochs: all that last.pt restores on resume."""

    model: Forecaster
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    start_epoch: int = 1
    best: float = math.inf  # best validation ADE so far
    stale: int = 0  # epochs since it last improved
    history: list[dict] = field(default_factory=list)  # one EpochLog as a dict per epoch


def _silent(*_) -> None:
    pass


def _load_windows(run: RunConfig, log) -> tuple[Windows, Windows]:
    """Training and validation windows; TrajpredError when either split has none."""
    m = run.model
    train_w, train_report = load_split(
        run.data, "train", m.obs_len, m.pred_len, m.dt_s, m.social_neighbours
    )
    val_w, val_report = load_split(
        run.data, "val", m.obs_len, m.pred_len, m.dt_s, m.social_neighbours
    )
    log(train_report.line())
    log(val_report.line())
    if len(train_w) == 0 or len(val_w) == 0:
        raise TrajpredError(
            f"not enough data: {len(train_w)} training and {len(val_w)} validation windows "
            f"of {m.obs_len + m.pred_len} steps"
        )
    return train_w, val_w


def _initial_model(run: RunConfig, log) -> Forecaster:
    """A fresh model, or `train.init_from`'s weights (one model, not an ensemble)."""
    model = Forecaster(run.model)
    init_from = run.train.init_from
    if init_from:
        loaded = model_from_payload(load_checkpoint(init_from), init_from, expect=run.model)
        if not isinstance(loaded, Forecaster):
            raise TrajpredError(
                f"{init_from}: an ensemble checkpoint; fine-tune from one of "
                f"its members' checkpoints instead"
            )
        model = loaded
        log(f"initialised from {init_from}")
    return model


def _optimise(model: Forecaster, cfg: TrainConfig, steps_per_epoch: int) -> _Training:
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, steps_per_epoch))
    return _Training(model, optimizer, scheduler)


def _resume(
    last_path: Path, run: RunConfig, steps_per_epoch: int, log, device: torch.device
) -> _Training:
    """The training state saved in last.pt: weights, optimiser, schedule, epoch, stopping."""
    state = load_checkpoint(last_path)
    model = model_from_payload(state, last_path, expect=run.model)
    if not isinstance(model, Forecaster):  # training saves one model
        raise InputError(last_path, "an ensemble, not the last state of a training run")
    training = _optimise(model.to(device), run.train, steps_per_epoch)
    # Optimizer state last: building the scheduler rewrites the learning rate it restores.
    training.optimizer.load_state_dict(state["optimizer"])
    training.scheduler.load_state_dict(state["scheduler"])
    training.start_epoch = state["epoch"] + 1
    training.best, training.stale = state["best_val_ade"], state["stale_epochs"]
    training.history = list(state["history"])
    log(f"resumed from {last_path} at epoch {state['epoch']} (best val ADE {training.best:.4f})")
    return training


def _payload(run: RunConfig, t: _Training, epoch: int, metrics: EvalMetrics) -> dict:
    """A checkpoint of the state after `epoch`: enough to rebuild the model or resume."""
    return {
        "model_config": to_dict(run.model),
        "run_config": to_dict(run),
        "model": t.model.state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict(),
        "epoch": epoch,
        "best_val_ade": t.best,
        "stale_epochs": t.stale,
        "history": t.history,
        "metrics": metrics.to_dict(),
    }


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else value


def _epoch(
    run: RunConfig,
    t: _Training,
    trained: nn.Module,
    data: tuple[Windows, Windows],
    epoch: int,
    ctx: Distributed,
    progress: bool,
) -> tuple[EpochLog, bool]:
    """Train one epoch, validate, update early stopping, write checkpoints and log.csv (rank 0);
    the epoch's log row and whether validation ADE improved."""
    cfg, out_dir = run.train, Path(run.train.out_dir)
    t0 = time.perf_counter()
    loss = train_one_epoch(trained, data[0], t.optimizer, t.scheduler, cfg, epoch, progress, ctx)
    metrics = evaluate(t.model, data[1], cfg.eval_k)
    row = EpochLog(
        epoch,
        loss,
        metrics.ade,
        metrics.fde,
        _nan_if_none(metrics.min_ade),
        _nan_if_none(metrics.min_fde),
        float(t.scheduler.get_last_lr()[0]),
        time.perf_counter() - t0,
    )
    t.history.append(vars(row))
    improved = row.val_ade < t.best
    t.best, t.stale = (row.val_ade, 0) if improved else (t.best, t.stale + 1)
    if ctx.is_main:
        payload = _payload(run, t, epoch, metrics)
        if improved:
            save_checkpoint(out_dir / "best.pt", payload)
        save_checkpoint(out_dir / "last.pt", payload)
        _write_log(out_dir / "log.csv", t.history)
        if epoch == t.start_epoch:  # only a run that produced a checkpoint rewrites it
            save_config(run, out_dir / "config.yaml")
    return row, improved


def _epoch_line(row: EpochLog, k: int, improved: bool) -> str:
    return (
        f"epoch {row.epoch:3d}  loss {row.train_loss:.4f}  "
        f"val ADE {row.val_ade:.4f} FDE {row.val_fde:.4f}  "
        f"minADE{k} {row.val_min_ade:.4f} minFDE{k} {row.val_min_fde:.4f}  "
        f"{row.seconds:.1f}s{'  *' if improved else ''}"
    )


def _calibrate(best_path: Path, val: Windows, log) -> None:
    """Fit the uncertainty calibration of best.pt on the validation windows (which it never
    trained on; see trajpred/calibration.py) and store it there, atomically."""
    from .evaluation import calibrate_on

    payload = load_checkpoint(best_path)
    calibration = calibrate_on(model_from_payload(payload, best_path), val, "validation split")
    save_checkpoint(best_path, {**payload, "calibration": calibration.to_dict()})
    r50, r90 = calibration.radius_scale
    log(
        f"calibrated on {len(val)} validation windows: r50 = {r50[0]:.2f}..{r50[-1]:.2f} sigma, "
        f"r90 = {r90[0]:.2f}..{r90[-1]:.2f} sigma (first..last step)"
    )


def fit(run: RunConfig, resume: bool = False, progress: bool = True, log=print) -> FitResult:
    """Train with early stopping on validation ADE; returns the best validation ADE and where
    the checkpoints are.

    Under torchrun (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel; every rank
    evaluates the same validation windows with the same weights, so all ranks take the same
    early-stopping decision, and only rank 0 writes files and logs.
    """
    cfg = run.train
    if run.model.scene_input and (cfg.augment_rotate or cfg.augment_flip):
        raise TrajpredError(
            "model.scene_input reads absolute positions and headings: set "
            "train.augment_rotate=false and train.augment_flip=false"
        )
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = training_device(cfg.device)
    ctx = init_distributed(use_cuda=device.type == "cuda")
    if not ctx.is_main:
        log, progress = _silent, False
    out_dir = Path(cfg.out_dir)
    if ctx.is_main:
        _check_writable(out_dir)
    data = _load_windows(run, log)
    steps_per_epoch = math.ceil(len(data[0]) / cfg.batch_size)
    # The fresh model is built even on resume: it draws from the seeded generator as before.
    t = _optimise(_initial_model(run, log).to(device), cfg, steps_per_epoch)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if resume and last_path.exists():
        t = _resume(last_path, run, steps_per_epoch, log, device)
    trained = t.model if ctx.world_size == 1 else nn.parallel.DistributedDataParallel(t.model)
    for epoch in range(t.start_epoch, cfg.epochs + 1):
        if t.stale >= cfg.patience:
            break
        row, improved = _epoch(run, t, trained, data, epoch, ctx, progress)
        log(_epoch_line(row, cfg.eval_k, improved))
    if t.stale >= cfg.patience:
        log(f"early stop: no better validation ADE for {cfg.patience} epochs")
    if ctx.world_size > 1:
        import torch.distributed as dist

        dist.barrier()  # rank 0's checkpoints are on disk before any rank returns
    if not best_path.exists():
        raise TrajpredError(
            f"{out_dir}: training ran no epoch (already finished? use a new train.out_dir)"
        )
    if ctx.is_main and cfg.calibrate:
        _calibrate(best_path, data[1], log)
    return FitResult(t.best, len(t.history), best_path, last_path, ctx.is_main)
