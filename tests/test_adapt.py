"""`trajpred adapt`: fitting the forecaster to one camera from its own tracks, the scene input
that starts exactly at the generic model, the no-regression guard, and bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_trajpred

from trajpred.adapt import (
    AdaptConfig,
    adapt,
    bootstrap_change,
    camera_windows,
    check_windows,
    prior_bank,
    split_in_time,
    time_blocks,
    weight_average,
    with_prior,
    with_scene,
    with_scene_input,
)
from trajpred.checkpoint import load_checkpoint, load_forecaster, save_checkpoint
from trajpred.forecast import TrackStreams, forecast_windows
from trajpred.formats import read_mot, read_tracks, write_csv
from trajpred.model import PRIOR_VELOCITY_WEIGHT
from trajpred.pipeline import SHIPPED_FORECASTER
from trajpred.synth.render import write_scene
from trajpred.synth.world import SynthConfig, simulate
from trajpred.tracks import Tracks

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "checkpoints" / "video.pt"
DETECTOR = ROOT / "data" / "detector" / "synth_yolo.pt"


def trajpred(*args, timeout=240) -> subprocess.CompletedProcess:
    return run_trajpred(*args, env={"OMP_NUM_THREADS": "1"}, timeout=timeout)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 60 s synthetic scene at 10 fps, 640x384: video.mp4 and gt_mot.txt."""
    out = tmp_path_factory.mktemp("adapt_clip")
    write_scene(simulate(SynthConfig(duration_s=60.0, seed=3)), out)
    return out


def walks(n=6, t=8, seed=0):
    g = np.random.default_rng(seed)
    steps = g.normal(0, 3.0, (n, t, 2)) + np.array([8.0, 2.0])
    return (np.cumsum(steps, 1) + np.array([100.0, 150.0])).astype(np.float32)


def test_scene_input_starts_exactly_at_the_generic_model():
    generic = load_forecaster(SHIPPED)
    scene = with_scene_input(generic, [0.0, 0.0, 640.0, 384.0], "px", [0, 2])
    obs, box = walks(), np.full((6, 8, 2), [20.0, 60.0], np.float32)
    classes = np.array([0, 2, 0, 5, -1, 2])
    a = forecast_windows(generic, obs, box).mean
    b = forecast_windows(scene, obs, box, class_id=classes).mean
    np.testing.assert_array_equal(a, b)


def test_scene_branch_is_drawn_from_the_seed_not_the_global_random_state():
    # Unseeded, adapting the same tracks twice trained different weights (FDE moved by points).
    generic = load_forecaster(SHIPPED)
    torch.manual_seed(1)
    a = with_scene_input(generic, [0.0, 0.0, 640.0, 384.0], "px", [], seed=3)
    after = torch.rand(1)
    torch.manual_seed(2)
    b = with_scene_input(generic, [0.0, 0.0, 640.0, 384.0], "px", [], seed=3)
    c = with_scene_input(generic, [0.0, 0.0, 640.0, 384.0], "px", [], seed=4)
    for name, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[name], value)
    assert not torch.equal(a.scene[0].weight, c.scene[0].weight)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(1), after)  # the global random state is left alone


def test_scene_model_streams_like_it_batches():
    scene = with_scene_input(load_forecaster(SHIPPED), [0.0, 0.0, 640.0, 384.0], "px", [0, 2])
    with torch.no_grad():  # a trained scene branch: forecasts now depend on place and class
        for p in scene.scene.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    obs, box = walks(n=5), np.full((5, 8, 2), [20.0, 60.0], np.float32)
    classes, ids = np.array([0, 2, 2, 0, 7]), np.array([4, 9, 1, 30, 2])
    batch = forecast_windows(scene, obs, box, class_id=classes).mean
    for i in range(len(ids)):  # one track at a time: windows here carry no neighbours
        streams = TrackStreams(scene)
        for t in range(obs.shape[1]):
            streams.observe(
                ids[i : i + 1], obs[i : i + 1, t], box[i : i + 1, t], None, classes[i : i + 1]
            )
        np.testing.assert_allclose(streams.forecast(ids[i : i + 1]).mean[0], batch[i], atol=1e-3)
    other = forecast_windows(scene, obs, box, class_id=np.zeros(5, np.int64)).mean
    assert np.abs(other - batch).max() > 1e-3  # the class does reach the forecast


def test_split_in_time_holds_out_the_last_frames():
    tracks = Tracks(np.arange(1, 11), np.zeros(10), np.zeros((10, 2)), units="px")
    train, val = split_in_time(tracks, 0.2)
    assert train.frame_id.tolist() == list(range(1, 9)) and val.frame_id.tolist() == [9, 10]


@pytest.mark.slow  # several fine-tunes in-process: 10-20 s
def test_no_better_weights_ship_the_starting_model_unchanged(clip, tmp_path):
    tracks = read_mot(clip / "gt_mot.txt")
    cfg = AdaptConfig(lr=0.0, epochs=1, min_train_windows=10, min_val_windows=5, prior=False)
    report, payload = adapt(tracks, 10.0, tmp_path, cfg, progress=False, log=lambda *_: None)
    assert not report.adapted and "did not beat the starting model" in report.table()
    start = load_checkpoint(SHIPPED)
    assert payload["model_config"] == start["model_config"]
    for name, value in start["model"].items():
        assert torch.equal(payload["model"][name], value)
    assert [s.arm for s in report.scores] == [
        "constant velocity",
        "starting model",
        "adapted model",
        "fine-tuned",
    ]
    assert "cross-validated in time" in report.guard and report.val_windows > 0


@pytest.mark.slow
def test_adapt_command_end_to_end(clip, tmp_path):
    # The shipped model with radii 4x too wide: this camera's calibration must correct them.
    payload = torch.load(SHIPPED_FORECASTER, weights_only=True)
    wide = np.asarray(payload["calibration"]["radius_scale"]) * 4
    payload["calibration"]["radius_scale"] = wide.tolist()
    save_checkpoint(tmp_path / "wide.pt", payload)
    out = tmp_path / "cam"
    proc = trajpred(
        "adapt", clip / "video.mp4", "--out", out, "--weights", DETECTOR, "--epochs", 1,
        "--checkpoint", tmp_path / "wide.pt", "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "constant velocity" in proc.stdout and "adapted model" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["train_windows"] >= 100 and report["val_windows"] >= 20
    assert report["obs_len"] == 8 and "bootstrap" in report["guard"]
    assert {s["arm"] for s in report["scores"]} >= {"starting model + prior", "fine-tuned + prior"}
    assert report["video"]["fps"] == 10 and report["video"]["width"] == 640
    model = load_forecaster(out / "adapted.pt")  # what `predict --checkpoint` loads
    assert model.cfg.scene_input == report["adapted"]
    # The uncertainty is calibrated on this camera's own tracks, whether or not the fine-tune
    # shipped, and its coverage on the later footage is reported before and after.
    calibration = report["calibration"]
    assert calibration["fitted"] and model.calibration is not None
    assert model.calibration.windows == calibration["windows"] >= 2 * 40
    for key, level in (("coverage_r50", 0.5), ("coverage_r90", 0.9)):
        before, after = calibration[key]
        assert before > level + 0.05 and abs(after - level) < 0.15, (key, before, after)
    assert "uncertainty calibrated on this camera" in proc.stdout
    assert (out / "tracks.csv").read_text().startswith("frame,track_id,x,y")
    # The tracks of this run adapt again without tracking, their frame rate read from report.json.
    again = trajpred(
        "adapt", "--tracks", out / "tracks.csv", "--out", tmp_path / "b", "--epochs", 1
    )
    assert again.returncode == 0, again.stderr


def _assert_refused(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.slow  # the CLI in a subprocess
def test_too_few_windows_is_one_line_and_keeps_earlier_outputs(clip, tmp_path):
    tracks = read_mot(clip / "gt_mot.txt")
    short = tmp_path / "short.csv"
    write_csv(short, tracks.select(tracks.frame_id <= 60))  # 6 s: no track lasts one window
    out = tmp_path / "out"
    out.mkdir()
    (out / "adapted.pt").write_bytes(b"an earlier run's model")
    proc = trajpred("adapt", "--tracks", short, "--fps", 10, "--out", out)
    _assert_refused(proc, "too few windows to adapt: 0 training windows found, 100 needed")
    assert (out / "adapted.pt").read_bytes() == b"an earlier run's model"


@pytest.mark.slow  # the CLI in a subprocess
def test_tracks_of_another_resolution_or_frame_rate_are_refused(clip, tmp_path):
    tracks = read_mot(clip / "gt_mot.txt")
    big = Tracks(tracks.frame_id, tracks.track_id, tracks.xy * 2, tracks.box_xywh * 2, units="px")
    write_csv(tmp_path / "big.csv", big)
    proc = trajpred(
        "adapt", clip / "video.mp4", "--tracks", tmp_path / "big.csv", "--out", tmp_path
    )
    _assert_refused(proc, "beyond the video's 640x384")

    fast = Tracks(tracks.frame_id * 3, tracks.track_id, tracks.xy, tracks.box_xywh, units="px")
    write_csv(tmp_path / "fast.csv", fast)  # the same walk seen at 30 fps
    proc = trajpred(
        "adapt", clip / "video.mp4", "--tracks", tmp_path / "fast.csv", "--out", tmp_path
    )
    _assert_refused(proc, "another frame rate")

    earlier = tmp_path / "earlier"
    earlier.mkdir()
    write_csv(earlier / "tracks.csv", tracks)
    (earlier / "report.json").write_text(json.dumps({"video": {"fps": 25.0}}))
    proc = trajpred("adapt", "--tracks", earlier / "tracks.csv", "--fps", 10, "--out", tmp_path)
    _assert_refused(proc, "tracked at 25 fps", "--fps says 10 fps")


def test_scene_prior_is_the_exact_mean_of_the_nearest_remembered_windows():
    # Straight walks along +x, no boxes (1 model unit = 1 px): heading (1, 0), speed 8 / step.
    obs = np.stack([np.stack([100.0 + 8 * np.arange(8), np.full(8, 150.0)], 1)] * 2)
    obs[1, :, 1] = 300.0  # a second track elsewhere in the view
    base = with_scene(load_forecaster(SHIPPED), [0.0, 0.0, 640.0, 384.0], "px", [])
    pos = lambda x, y: [2 * x / 640 - 1, 2 * y / 384 - 1]  # noqa: E731
    v = [8.0 * PRIOR_VELOCITY_WEIGHT, 0.0]
    near_a, near_b = pos(156, 150) + v, pos(156, 300) + v
    keys = torch.tensor(
        [
            [a + d for a, d in zip(near_a, [0.01, 0, 0, 0], strict=True)],
            [a + d for a, d in zip(near_a, [0, 0.01, 0.1, 0], strict=True)],
            near_b,
            [a + d for a, d in zip(near_b, [0, 0, 0, 0.2], strict=True)],
            pos(600, 20) + [-v[0], 0.0],  # far away and the other way: never among the nearest
        ]
    )
    corr = torch.randn(5, 12, 2)
    prior = with_prior(base, keys, corr, k=2, weight=1.0)
    got = forecast_windows(prior, obs.astype(np.float32), None).mean
    steps = 8.0 * np.arange(1, 13)
    for i, rows in enumerate([[0, 1], [2, 3]]):
        want = obs[i, -1] + np.stack([steps, np.zeros(12)], 1) + corr[rows].mean(0).numpy()
        np.testing.assert_allclose(got[i], want, atol=1e-3)
    half = forecast_windows(with_prior(base, keys, corr, 2, 0.5), obs.astype(np.float32)).mean
    plain = forecast_windows(base, obs.astype(np.float32), None).mean
    np.testing.assert_allclose(half, (plain + got) / 2, atol=1e-3)


def test_scene_prior_of_a_remembered_window_gives_back_its_future(clip):
    w = camera_windows(read_mot(clip / "gt_mot.txt"), 10.0, 0.4, 8, 12, 0).select(slice(0, 40))
    base = with_scene(load_forecaster(SHIPPED), [0.0, 0.0, 640.0, 384.0], "px", [])
    keys, corr = prior_bank(base.cfg, w)
    gap = torch.cdist(keys, keys) + torch.eye(len(keys))
    alone = (gap.min(1).values > 1e-4).numpy()  # standing tracks share keys: skip them
    assert alone.sum() >= 10
    prior = with_prior(base, keys, corr, k=1, weight=1.0)
    got = forecast_windows(prior, w.obs_xy, w.obs_box_wh).mean
    np.testing.assert_allclose(got[alone], w.fut_xy[alone], atol=1e-2)


def test_a_model_with_a_prior_streams_like_it_batches():
    base = with_scene(load_forecaster(SHIPPED), [0.0, 0.0, 640.0, 384.0], "px", [])
    g = torch.Generator().manual_seed(0)
    keys, corr = torch.rand(30, 4, generator=g) * 2 - 1, torch.randn(30, 12, 2, generator=g)
    model = with_prior(base, keys, corr, k=4, weight=0.6)
    obs, box = walks(n=4), np.full((4, 8, 2), [20.0, 60.0], np.float32)
    batch = forecast_windows(model, obs, box).mean
    for i in range(4):
        streams = TrackStreams(model)
        for t in range(obs.shape[1]):
            streams.observe(np.array([i]), obs[i : i + 1, t], box[i : i + 1, t])
        np.testing.assert_allclose(streams.forecast(np.array([i])).mean[0], batch[i], atol=1e-3)


def test_more_phases_give_more_windows_on_the_same_frames(clip):
    tracks = read_mot(clip / "gt_mot.txt")
    one = camera_windows(tracks, 10.0, 0.4, 8, 12, 0)
    four = camera_windows(tracks, 10.0, 0.4, 8, 12, 0, phases=4)
    assert 3.5 * len(one) < len(four) <= 4 * len(one) + 4 * len(np.unique(tracks.track_id))
    assert set(one.frame_id.tolist()) <= set(four.frame_id.tolist())
    assert set(four.frame_id.tolist()) <= set(tracks.frame_id.tolist())


def test_bootstrap_guard_ships_only_a_confident_improvement():
    tid = np.repeat(np.arange(20), 5)
    g = np.random.default_rng(0)
    start = g.uniform(1, 2, (100, 2))
    change, upper = bootstrap_change(tid, start, start, 0.95)
    assert np.allclose(change, 0) and np.allclose(upper, 0)
    change, upper = bootstrap_change(tid, start, start * 0.8, 0.95)
    assert np.allclose(change, -0.2) and (upper < 0).all()
    noisy = start * g.choice([0.5, 1.45], (100, 1))  # better on average, but not confidently
    change, upper = bootstrap_change(tid, start, noisy, 0.95)
    assert (upper > 0.01).all()


def test_short_footage_gets_a_shorter_history_automatically(clip):
    tracks = read_mot(clip / "gt_mot.txt")
    start = load_forecaster(SHIPPED)
    train, _ = split_in_time(tracks, 0.2)
    n = {k: len(camera_windows(train, 10.0, 0.4, k, 12, 0)) for k in (8, 6, 4)}
    assert n[8] < n[6] < n[4]
    cfg = AdaptConfig(min_train_windows=n[6] + 1, min_val_windows=1)
    obs_len, how = check_windows(tracks, 10.0, cfg, start)
    assert obs_len == 4 and how.startswith("automatic") and f"8: {n[8]} training" in how
    assert (
        check_windows(tracks, 10.0, AdaptConfig(min_val_windows=1, min_train_windows=1), start)[0]
        == 8
    )


def test_weight_average_of_equal_models_is_the_model_and_of_two_the_midpoint():
    a = load_forecaster(SHIPPED)
    b = with_scene(a, [0.0, 0.0, 1.0, 1.0], "px", [])
    with torch.no_grad():
        for p in b.parameters():
            p.add_(1.0)
    same = weight_average([a, a, a, a, a, a])
    mid = weight_average([a, b])
    for name, value in a.state_dict().items():
        assert torch.equal(same.state_dict()[name], value)
        torch.testing.assert_close(mid.state_dict()[name], value + 0.5)


@pytest.mark.slow  # several fine-tunes in-process: 10-20 s
def test_averaged_fine_tunes_never_saw_the_block_they_forecast(clip, tmp_path):
    tracks = read_mot(clip / "gt_mot.txt")
    cfg = AdaptConfig(epochs=2, min_train_windows=10, min_val_windows=5, prior=False, average=True)
    arms: dict = {}
    report, _ = adapt(tracks, 10.0, tmp_path, cfg, progress=False, log=lambda *_: None, arms=arms)
    block_of = time_blocks(tracks, cfg.folds)
    folds = sorted(tmp_path.glob("fold*"))
    assert [f.name for f in folds] == [
        *("fold0", "fold01", "fold02", "fold03", "fold1", "fold12", "fold13"),
        *("fold2", "fold23", "fold3"),
    ]
    for fold in folds:  # each trained on the blocks it did not leave out, and only those
        seen = np.unique(read_tracks(fold / "train.csv").frame_id)
        left = [int(c) for c in fold.name[4:]]
        assert not np.isin(seen, tracks.frame_id[np.isin(block_of, left)]).any()
        assert np.isin(tracks.frame_id[~np.isin(block_of, left)], seen).mean() > 0.9
    members = [load_forecaster(fold / "last.pt") for fold in folds if len(fold.name) == 6]
    assert report.averaged == 6 and "fine-tuned, averaged" in report.table()
    shipped = arms["fine-tuned, averaged"].state_dict()
    for name, value in weight_average(members).state_dict().items():
        assert torch.equal(shipped[name], value)
