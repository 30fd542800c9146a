"""Training loop: loss goes down, checkpoints round-trip, resume continues where it stopped."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from trajpred.checkpoint import ensemble_payload, load_checkpoint, load_forecaster, save_checkpoint
from trajpred.config import load_config
from trajpred.data import DataConfig, load_split
from trajpred.errors import InputError, TrajpredError
from trajpred.features import to_heading_frame, window_features, window_scale
from trajpred.forecast import forecast_windows
from trajpred.model import Forecaster, ForecasterConfig
from trajpred.train import RunConfig, TrainConfig, evaluate, fit, forecast_loss
from trajpred.windows import Windows

SMALL = [
    "model.hidden_size=32",
    "model.embed_size=16",
    "model.num_modes=4",
    "train.batch_size=64",
    "train.threads=1",
    "train.warmup_epochs=0",
]


def small_run(root, out, epochs, *extra) -> RunConfig:
    return load_config(
        RunConfig,
        None,
        SMALL
        + [
            f"data.root={root}",
            "data.test_scene=toy",
            f"train.epochs={epochs}",
            f"train.out_dir={out}",
            *extra,
        ],
    )


def test_a_few_steps_lower_the_loss(eth_ucy_like_root):
    torch.manual_seed(0)
    cfg = ForecasterConfig(hidden_size=32, embed_size=16, num_modes=4)
    windows, _ = load_split(
        DataConfig(root=str(eth_ucy_like_root), test_scene="toy"), "train", 8, 12, 0.4
    )
    obs, fut = torch.as_tensor(windows.obs_xy), torch.as_tensor(windows.fut_xy)
    scale = window_scale(None, len(obs))
    features, heading, speed = window_features(obs, scale)
    target = to_heading_frame(fut, obs[:, -1], heading, scale)
    model = Forecaster(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = forecast_loss(model(features, speed), target, TrainConfig())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.85 * losses[0]


def test_evaluate_scores_constant_velocity_by_hand():
    # An untrained model forecasts constant velocity. Window 0 walks on at 0.5 m a step: no
    # error. Window 1's future is 1 m to the side of that line at every step: ADE = FDE = 1.
    steps = np.arange(20, dtype=np.float32)
    line = np.stack([0.5 * steps, np.zeros(20, np.float32)], 1)
    off = line.copy()
    off[8:, 1] += 1.0
    xy = np.stack([line, off])
    windows = Windows(xy[:, :8], xy[:, 8:], None, np.zeros(2), np.arange(2), np.arange(2))
    model = Forecaster(ForecasterConfig(hidden_size=16, embed_size=8, num_modes=3))
    metrics = evaluate(model, windows, k=0)
    assert metrics.ade == pytest.approx(0.5, abs=1e-5)
    assert metrics.fde == pytest.approx(0.5, abs=1e-5)
    assert metrics.min_ade is None and list(metrics.to_dict()) == ["ade", "fde"]
    with_modes = evaluate(model, windows, k=3).to_dict()
    assert list(with_modes) == ["ade", "fde", "min_ade", "min_fde"]


def test_checkpoint_round_trip(tmp_path):
    model = Forecaster(ForecasterConfig(hidden_size=16, embed_size=8, num_modes=3))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    save_checkpoint(
        tmp_path / "m.pt", {"model_config": vars(model.cfg), "model": model.state_dict()}
    )
    loaded = load_forecaster(tmp_path / "m.pt")
    obs = np.cumsum(np.random.default_rng(0).normal(0.3, 0.1, (4, 8, 2)), 1).astype(np.float32)
    np.testing.assert_array_equal(
        forecast_windows(model, obs).mean, forecast_windows(loaded, obs).mean
    )
    with pytest.raises(InputError, match="does not match"):
        load_forecaster(tmp_path / "m.pt", expect=ForecasterConfig())


def test_resume_continues_from_the_saved_epoch(eth_ucy_like_root, tmp_path, monkeypatch):
    import trajpred.train as train_module

    fit(small_run(eth_ucy_like_root, tmp_path / "straight", 3), progress=False, log=lambda *_: None)
    real_epoch = train_module.train_one_epoch

    def interrupted(model, windows, optimizer, scheduler, cfg, epoch, *rest):
        if epoch == 3:
            raise KeyboardInterrupt  # as if stopped during the third epoch
        return real_epoch(model, windows, optimizer, scheduler, cfg, epoch, *rest)

    monkeypatch.setattr(train_module, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(
            small_run(eth_ucy_like_root, tmp_path / "split", 3), progress=False, log=lambda *_: None
        )
    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    lines = []
    result = fit(
        small_run(eth_ucy_like_root, tmp_path / "split", 3),
        resume=True,
        progress=False,
        log=lines.append,
    )
    assert any("resumed" in line and "epoch 2" in line for line in lines)
    assert result.epochs == 3 and result.is_main
    assert result.last_path == tmp_path / "split/last.pt" and result.best_path.is_file()
    assert result.best_val_ade == load_checkpoint(result.best_path)["best_val_ade"]
    a, b = (
        load_checkpoint(tmp_path / "straight/last.pt"),
        load_checkpoint(tmp_path / "split/last.pt"),
    )
    assert a["epoch"] == b["epoch"] == 3
    # The same batches, the same weights: bit-identical, as docs/guides/train.md says.
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    for (key, state), other in zip(
        a["optimizer"]["state"].items(), b["optimizer"]["state"].values(), strict=True
    ):
        for name, tensor in state.items():
            assert torch.equal(tensor, other[name]), (key, name)
    assert a["history"][2]["val_ade"] == b["history"][2]["val_ade"]
    with open(tmp_path / "split/log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]


def test_early_stopping_stops_after_patience_and_keeps_the_best(
    eth_ucy_like_root, tmp_path, monkeypatch
):
    import trajpred.train as train_module

    real_evaluate = train_module.evaluate
    scripted = iter([0.9, 0.7, 0.8, 0.75, 0.72] + [0.5] * 4)  # best at epoch 2, then 3 worse

    def evaluate(model, windows, k=20):  # the real validation, with a chosen ADE
        metrics = real_evaluate(model, windows, k)
        metrics.ade = next(scripted)
        return metrics

    monkeypatch.setattr(train_module, "evaluate", evaluate)
    out = tmp_path / "run"
    extra = ("train.patience=3", "train.eval_k=0", "model.hidden_size=16", "train.batch_size=256")
    lines = []
    result = fit(small_run(eth_ucy_like_root, out, 7, *extra), progress=False, log=lines.append)
    assert result.epochs == 5 and result.best_val_ade == 0.7
    assert lines[-2] == "early stop: no better validation ADE for 3 epochs"
    assert lines[-1].startswith("calibrated on 210 validation windows: r50 = ")
    best, last = load_checkpoint(out / "best.pt"), load_checkpoint(out / "last.pt")
    assert best["calibration"]["windows"] == 210 and "calibration" not in last
    assert (best["epoch"], last["epoch"], last["stale_epochs"]) == (2, 5, 3)
    assert not torch.equal(best["model"]["embed.0.weight"], last["model"]["embed.0.weight"])
    # Resumed with more epochs: the restored counter says stop, so no epoch runs.
    fit(small_run(eth_ucy_like_root, out, 9, *extra), resume=True, progress=False, log=print)
    assert load_checkpoint(out / "last.pt")["epoch"] == 5
    with open(out / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_train_and_evaluate_cli_end_to_end(eth_ucy_like_root, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "trajpred",
        "train",
        "--config",
        "configs/eth_ucy.yaml",
        "--no-progress",
        "--out",
        str(out),
        "--set",
        f"data.root={eth_ucy_like_root}",
        "data.test_scene=toy",
        "train.epochs=3",
        *SMALL,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "best.pt").exists() and (out / "config.yaml").exists()
    preds, metrics, plot = tmp_path / "p.csv", tmp_path / "m.json", tmp_path / "p.png"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "trajpred",
            "evaluate",
            "--checkpoint",
            str(out / "best.pt"),
            "--data",
            str(eth_ucy_like_root),
            "--scene",
            "toy",
            "--k",
            "4",
            "--save-predictions",
            str(preds),
            "--json",
            str(metrics),
            "--plot",
            str(plot),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "| toy |" in done.stdout and "minADE4" in done.stdout
    rows = list(csv.DictReader(open(preds)))
    scores = json.loads(metrics.read_text())
    assert list(rows[0]) == ["file", "frame", "track_id", "step", "x", "y"]
    assert len(rows) == scores[0]["windows"] * 12
    assert {r["step"] for r in rows} == {str(s) for s in range(1, 13)}
    assert scores[0]["min_ade"] <= scores[0]["ade"] + 1e-9
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fine_tuning_starts_from_the_given_weights(eth_ucy_like_root, tmp_path):
    fit(small_run(eth_ucy_like_root, tmp_path / "base", 1), progress=False, log=lambda *_: None)
    base = load_checkpoint(tmp_path / "base/last.pt")["model"]
    lines = []
    fit(
        small_run(
            eth_ucy_like_root,
            tmp_path / "tuned",
            1,
            f"train.init_from={tmp_path / 'base/last.pt'}",
            "train.lr=0.0",
        ),
        progress=False,
        log=lines.append,
    )
    assert any("initialised from" in line for line in lines)
    tuned = load_checkpoint(tmp_path / "tuned/last.pt")["model"]
    for name, tensor in base.items():  # learning rate 0: the weights are the initial ones
        torch.testing.assert_close(tensor, tuned[name])
    # An ensemble is evaluated and shipped, not fine-tuned: one line, pointing at its members.
    save_checkpoint(tmp_path / "ens.pt", ensemble_payload([tmp_path / "base/last.pt"] * 2))
    with pytest.raises(TrajpredError, match="ensemble"):
        fit(
            small_run(
                eth_ucy_like_root, tmp_path / "nope", 1, f"train.init_from={tmp_path / 'ens.pt'}"
            ),
            progress=False,
            log=lambda *_: None,
        )
