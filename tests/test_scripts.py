"""The measuring scripts run end to end on tiny settings and write the JSON they promise."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # every test runs a script in a subprocess


def run_script(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def test_bench_pipeline_compares_pipeline_with_bare_tracking(video_assets, tmp_path):
    out = tmp_path / "bench.json"
    done = run_script(
        "bench_pipeline.py",
        video_assets.scene.video,
        "--weights",
        video_assets.weights,
        "--checkpoint",
        video_assets.checkpoint,
        "--max-frames",
        30,
        "--tracks",
        10,
        "--runs",
        2,
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["yolo_track"]["fps"] > 0 and report["pipeline"]["fps"] > 0
    # The ratio comes from unrounded fps; the JSON's fps are rounded to 0.01 (hence abs=2e-3).
    assert report["pipeline_vs_yolo_track"] == pytest.approx(
        report["pipeline"]["fps"] / report["yolo_track"]["fps"], abs=2e-3
    )
    assert report["video"]["frames_used"] == report["pipeline"]["frames"] > 20
    assert report["forecaster_50_tracks"]["tracks"] == 10
    assert len(report["rounds"]) == 2 and report["pipeline_no_video"]["fps"] > 0
    assert report["pipeline_vs_yolo_track"] in report["pipeline_vs_yolo_track_per_round"]
    for r in report["rounds"]:
        assert r["no_video_vs_yolo_track"] == pytest.approx(
            r["pipeline_no_video"]["fps"] / r["yolo_track"]["fps"], abs=2e-3
        )


def test_appearance_ablation_reports_every_arm(video_assets, tmp_path):
    out = tmp_path / "ablation.json"
    done = run_script(
        "appearance_ablation.py",
        "--train-scenes",
        2,
        "--test-scenes",
        1,
        "--duration",
        12,
        "--epochs",
        1,
        "--seeds",
        0,
        "--weights",
        video_assets.weights,
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["train_windows"] > 0 and report["test_windows"] > 0
    assert set(report["results"]) == {
        "constant velocity",
        "motion only",
        "motion + appearance",
        "motion + shuffled appearance (control)",
    }
    for arm in report["results"].values():
        assert 0 < arm["ade"] < arm["fde"]


def test_bench_training_reports_windows_per_second(tmp_path):
    out = tmp_path / "train.json"
    done = run_script(
        "bench_training.py",
        "--device",
        "cpu",
        "--windows",
        512,
        "--batch-size",
        256,
        "--epochs",
        1,
        "--threads",
        1,
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["windows"] == 512 and report["batch_size"] == 256
    assert report["windows_per_s"] > 0 and len(report["epoch_seconds"]) == 2
    assert all(np.isfinite(report["losses"]))


@pytest.mark.slow
def test_camera_benchmark_scores_every_arm_on_a_tiny_scene(tmp_path):
    done = run_script(
        "camera_benchmark.py",
        "--out", tmp_path, "--scenes", "gate", "--duration", 50, "--epochs", 1,
        "--min-windows", 5, "--classes", "--ceiling",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "benchmark.json").read_text())
    (scene,) = report["scenes"]
    arms = [r["arm"] for r in scene["rows"]]
    for arm in ("shipped (px)", "plain fine-tune (px)", "scene input (px)",
                "prior (shipped + prior) (px)", "both (scene input + prior) (px)",
                "adapt as shipped (guarded) + homography (m)",
                "adapt on the true positions + homography (m)"):  # fmt: skip
        assert arm in arms, arms
    assert scene["adapt"]["m, true positions"]["units"] == "m"
    assert scene["test_windows"] > 0 and all(r["fde_px"] > 0 for r in scene["rows"])
    assert scene["seen_test_windows"] > 0 and all(r["fde_m_seen"] > 0 for r in scene["rows"])
    assert "guard" in scene["adapt"]["px"] and (tmp_path / "benchmark.md").exists()
    ablation = report["classes"]  # the class input measured on a crowd with cyclists
    assert ablation["adapt"]["class input"]["classes"] == [0, 1]
    assert ablation["adapt"]["no class input"]["classes"] == []
    arms = {r["arm"]: r for r in ablation["rows"]}
    assert arms["scene input, class input"]["fde_all"] > 0
    assert (
        arms["scene input, class input"]["fde_all"]
        != arms["scene input, no class input"]["fde_all"]
    )


def test_true_futures_of_perfect_tracks_are_their_own_futures(tmp_path):
    """camera_benchmark's "seen -> true" test: tracks that are the ground truth itself match
    their own person in every window, so the true future is the window's own future."""
    import importlib.util

    from trajpred.adapt import camera_windows
    from trajpred.formats import read_mot
    from trajpred.synth.render import write_scene
    from trajpred.synth.world import SynthConfig, simulate

    spec = importlib.util.spec_from_file_location(
        "camera_benchmark", ROOT / "scripts/camera_benchmark.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = SynthConfig(width=320, height=192, fps=10.0, duration_s=14.0, seed=3, n_agents=8)
    scene = write_scene(simulate(cfg), tmp_path / "scene")
    truth = read_mot(tmp_path / "scene" / "gt_mot.txt")
    windows = camera_windows(truth, cfg.fps, 0.4, 8, 12, 8)
    assert len(windows) > 0, scene
    rows, px, m = bench.true_futures(tmp_path / "scene", truth, windows, 4)
    assert rows.tolist() == list(range(len(windows)))
    np.testing.assert_allclose(px, windows.fut_xy, atol=1e-3)
    assert m.shape == px.shape and np.isfinite(m).all()


def test_video_forecaster_learns_tracked_videos_on_the_ground_plane(tmp_path):
    """train_video_forecaster's camera scenes: a synthetic video from a random camera, tracked
    by the shipped detector, as metres one model step apart, as `predict --homography` feeds
    the forecaster."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "train_video_forecaster", ROOT / "scripts/train_video_forecaster.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    tracks = script.camera_tracks(tmp_path / "scene", 0, 6.0)
    assert tracks.units == "m" and len(np.unique(tracks.track_id)) >= 3
    assert np.isfinite(tracks.xy).all()
    # 10 fps video, 0.4 s model step: samples on the global grid 1, 5, 9, ...
    assert set(((tracks.frame_id - 1) % 4).tolist()) == {0}
    world = np.loadtxt(tmp_path / "scene" / "gt_world.txt")[:, 2:4]
    lo, hi = world.min(axis=0) - 2, world.max(axis=0) + 2  # where the people really were
    assert ((tracks.xy > lo) & (tracks.xy < hi)).all()
