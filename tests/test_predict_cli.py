"""`trajpred predict` and `trajpred track` run as a user runs them: in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import TINY_TRAIN, run_trajpred, start_trajpred

from trajpred.demo import GroundTruth, match_boxes
from trajpred.formats import read_csv, read_mot, read_tracks

pytestmark = pytest.mark.slow  # the CLI in a subprocess (in-process where only files are read)

ROOT = Path(__file__).resolve().parents[1]


trajpred = run_trajpred


def predict_args(assets, source, out, *extra):
    return [
        "predict",
        source,
        "--out",
        out,
        "--weights",
        assets.weights,
        "--imgsz",
        assets.imgsz,
        "--checkpoint",
        assets.checkpoint,
        "--device",
        "cpu",
        "--no-progress",
        *extra,
    ]


def write_video(
    path: Path, frames: list[np.ndarray], fps: float = 10.0, fourcc: str = "mp4v"
) -> Path:
    h, w = frames[0].shape[:2] if frames else (192, 320)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def read_forecasts(path: Path) -> tuple[list[str], np.ndarray]:
    lines = path.read_text().splitlines()
    rows = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]]).reshape(
        -1, len(lines[0].split(","))
    )
    return lines[0].split(","), rows


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_predict_end_to_end(video_assets, tmp_path):
    scene = video_assets.scene
    out = tmp_path / "out"
    result = trajpred(
        *predict_args(video_assets, scene.video, out, "--homography", scene.homography)
    )
    assert result.returncode == 0, result.stderr
    assert "60 frames" in result.stdout and "tracks" in result.stdout and "fps" in result.stdout
    for name in ("annotated.mp4", "tracks.csv", "tracks_mot.txt", "forecasts.csv", "config.yaml"):
        assert (out / name).is_file(), name
    assert frame_count(out / "annotated.mp4") == 60

    tracks = read_csv(out / "tracks.csv")
    mot = read_tracks(out / "tracks_mot.txt")
    assert tracks.units == "px" and len(tracks) > 100
    np.testing.assert_array_equal(tracks.frame_id, mot.frame_id)
    np.testing.assert_array_equal(tracks.track_id, mot.track_id)
    np.testing.assert_allclose(tracks.xy, mot.xy, atol=0.02)
    header, fc = read_forecasts(out / "forecasts.csv")
    assert header == "frame,track_id,step,target_frame,x,y,r50,r90,wx,wy,wr50,wr90".split(",")
    assert len(fc) > 100
    seen = {(int(f), int(t)) for f, t in zip(tracks.frame_id, tracks.track_id, strict=False)}
    assert all((int(f), int(t)) in seen for f, t in fc[:, :2])
    np.testing.assert_array_equal(fc[:, 3], fc[:, 0] + np.rint(fc[:, 2] * 0.4 * 10))

    # Forecasts head where the people go: closer to the ground truth at target_frame than
    # staying put, and than the same displacement in a random direction.
    truth = GroundTruth(read_mot(scene.gt_mot))
    current = {
        (int(f), int(t)): xy
        for f, t, xy in zip(tracks.frame_id, tracks.track_id, tracks.xy, strict=False)
    }
    boxes = {
        (int(f), int(t)): b
        for f, t, b in zip(tracks.frame_id, tracks.track_id, tracks.box_xywh, strict=False)
    }
    rng = np.random.default_rng(0)
    err, still, random_dir = [], [], []
    for f, t, _step, target, x, y, *_ in fc:
        gt_ids, gt_boxes = truth.at(int(f))
        pairs = match_boxes(boxes[int(f), int(t)][None], gt_boxes)
        goal = truth.feet.get((int(target), int(gt_ids[pairs[0][1]]))) if pairs else None
        if goal is None:
            continue
        now = current[int(f), int(t)]
        move = np.array([x, y]) - now
        angle = rng.uniform(0, 2 * np.pi)
        turned = now + np.linalg.norm(move) * np.array([np.cos(angle), np.sin(angle)])
        err.append(np.linalg.norm([x, y] - goal))
        still.append(np.linalg.norm(now - goal))
        random_dir.append(np.linalg.norm(turned - goal))
    assert len(err) > 50
    assert np.mean(err) < 0.8 * np.mean(still) and np.mean(err) < 0.8 * np.mean(random_dir)


def test_blank_video_gives_empty_valid_outputs(video_assets, tmp_path):
    video = write_video(tmp_path / "blank.mp4", [np.full((192, 320, 3), 90, np.uint8)] * 12)
    result = trajpred(*predict_args(video_assets, video, tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "12 frames, 0 tracks" in result.stdout
    assert frame_count(tmp_path / "out" / "annotated.mp4") == 12
    assert (tmp_path / "out" / "tracks.csv").read_text() == (
        "frame,track_id,x,y,left,top,width,height,class_id,conf,units\n"
    )
    assert (tmp_path / "out" / "tracks_mot.txt").read_text() == ""
    assert (
        tmp_path / "out" / "forecasts.csv"
    ).read_text() == "frame,track_id,step,target_frame,x,y,r50,r90\n"


def test_folder_of_videos_gets_one_folder_each_and_two_workers_write_what_one_does(
    video_assets, tmp_path, trajpred
):  # `trajpred`: the CLI in-process (conftest), as only outputs and summary lines are read
    clips = tmp_path / "clips"
    clips.mkdir()
    cap = cv2.VideoCapture(str(video_assets.scene.video))
    frames = [cap.read()[1] for _ in range(20)]
    write_video(clips / "first.mp4", frames)
    write_video(clips / "second.mp4", frames[5:])
    (clips / "readme.txt").write_text("not a video")
    for workers in (1, 2):
        out = tmp_path / f"workers{workers}"
        result = trajpred(*predict_args(video_assets, clips, out, "--workers", workers))
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("frames") == 2  # one summary line per video
        assert sorted(p.name for p in out.iterdir()) == ["first", "second"]
    for name in ("first", "second"):
        one, two = tmp_path / "workers1" / name, tmp_path / "workers2" / name
        assert frame_count(two / "annotated.mp4") == frame_count(one / "annotated.mp4") > 0
        assert read_csv(one / "tracks.csv").track_id.min() == 1  # ids restart for each video
        # The same tracks and forecasts (rows written to 0.01 px; the workers' torch threads
        # differ, which may move a last digit).
        for csv in ("tracks.csv", "forecasts.csv"):
            a, b = (
                np.loadtxt(d / csv, delimiter=",", skiprows=1, usecols=range(6)) for d in (one, two)
            )
            assert a.shape == b.shape and len(a) > 0, csv
            np.testing.assert_array_equal(a[:, :2], b[:, :2])
            np.testing.assert_allclose(a, b, atol=0.011)


def test_interrupted_predict_leaves_complete_outputs(video_assets, tmp_path):
    cap = cv2.VideoCapture(str(video_assets.scene.video))
    frames = [cap.read()[1] for _ in range(60)]
    video = write_video(tmp_path / "long.mp4", frames * 8)  # 480 frames: still running when stopped
    out = tmp_path / "out"
    # Ctrl-C as from a terminal, even where this test runs with SIGINT ignored (nohup, &)
    proc = start_trajpred(*predict_args(video_assets, video, out))
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        tracks = out / ".tracks.partial.csv"  # rows grow here; moved to tracks.csv on close
        if tracks.exists() and tracks.read_text().count("\n") > 40:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    n = frame_count(out / "annotated.mp4")
    assert 0 < n < 480
    tracks = read_csv(out / "tracks.csv")
    assert tracks.frame_id.max() <= n
    for name in ("tracks.csv", "forecasts.csv", "tracks_mot.txt"):
        assert (out / name).read_text().endswith("\n")
    assert not list(out.glob(".*partial*")), "partial files left after a clean stop"


def test_track_output_feeds_read_csv_and_train(video_assets, tmp_path, trajpred):
    # `trajpred`: the CLI in-process (conftest), as only outputs and summary lines are read
    csv = tmp_path / "tracks.csv"
    result = trajpred(
        "track",
        video_assets.scene.video,
        "--out",
        csv,
        "--weights",
        video_assets.weights,
        "--imgsz",
        video_assets.imgsz,
        "--device",
        "cpu",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert "data.fps=10" in result.stdout
    tracks = read_csv(csv)
    assert tracks.units == "px" and tracks.box_xywh is not None and len(tracks) > 100
    run_dir = tmp_path / "run"
    result = trajpred(
        "train",
        "--set",
        f"data.train_files=[{csv}]",
        f"data.val_files=[{csv}]",
        "data.fps=10",
        *TINY_TRAIN,
        f"train.out_dir={run_dir}",
        "--no-progress",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (run_dir / "best.pt").is_file()


def test_missing_weights_offline_is_one_line(video_assets, tmp_path):
    result = trajpred(
        "predict",
        video_assets.scene.video,
        "--out",
        tmp_path / "out",
        "--weights",
        "yolo11n.pt",
        "--checkpoint",
        video_assets.checkpoint,
        cwd=tmp_path,
    )
    assert_one_line_error(result, "yolo11n.pt", "--weights")
    result = trajpred(
        "predict",
        video_assets.scene.video,
        "--out",
        tmp_path / "out",
        "--weights",
        tmp_path / "nothing.pt",
        "--checkpoint",
        video_assets.checkpoint,
    )
    assert_one_line_error(result, "nothing.pt", "not found")


def test_bad_videos_and_outputs_are_one_line_errors(video_assets, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    empty = write_video(tmp_path / "empty.avi", [], fourcc="MJPG")
    # An AVI whose header claims 100000 fps: a container that does not know its frame rate.
    lying = write_video(
        tmp_path / "lying.avi", [np.zeros((48, 64, 3), np.uint8)] * 3, fourcc="MJPG"
    )
    data = bytearray(lying.read_bytes())
    rate = data.find(b"strh") + 8 + 20  # dwScale, dwRate of the stream header
    data[rate : rate + 8] = np.array([1, 100000], "<u4").tobytes()
    lying.write_bytes(bytes(data))
    blocker = tmp_path / "file"
    blocker.write_text("")
    common = ["--weights", video_assets.weights, "--checkpoint", video_assets.checkpoint]
    assert_one_line_error(
        trajpred("predict", text, "--out", tmp_path / "o1", *common), "not a video"
    )
    assert_one_line_error(
        trajpred("predict", empty, "--out", tmp_path / "o2", *common), "no frames"
    )
    assert_one_line_error(trajpred("predict", lying, "--out", tmp_path / "o3", *common), "--fps")
    assert_one_line_error(
        trajpred("predict", video_assets.scene.video, "--out", blocker / "out", *common),
        "cannot create the output folder (Not a directory)",
    )
    result = trajpred(
        "predict",
        lying,
        "--out",
        tmp_path / "o4",
        "--fps",
        "5",
        "--imgsz",
        "64",
        "--no-progress",
        *common,
    )
    assert result.returncode == 0, result.stderr
    assert frame_count(tmp_path / "o4" / "annotated.mp4") == 3


def test_killed_rerun_keeps_the_earlier_outputs(video_assets, tmp_path):
    """Outputs grow in hidden partial files and are renamed into place when a run closes, so a
    run killed outright (SIGKILL) leaves the previous run's files as they were."""
    cap = cv2.VideoCapture(str(video_assets.scene.video))
    frames = [cap.read()[1] for _ in range(30)]
    out = tmp_path / "out"
    first = trajpred(*predict_args(video_assets, write_video(tmp_path / "short.mp4", frames), out))
    assert first.returncode == 0, first.stderr
    before = {
        name: (out / name).read_bytes() for name in ("tracks.csv", "forecasts.csv", "annotated.mp4")
    }
    long_video = write_video(tmp_path / "long.mp4", frames * 16)
    proc = subprocess.Popen(
        [sys.executable, "-m", "trajpred", *map(str, predict_args(video_assets, long_video, out))],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "YOLO_OFFLINE": "1"},
    )
    deadline = time.time() + 120
    while (
        time.time() < deadline
        and proc.poll() is None
        and not (out / ".tracks.partial.csv").exists()
    ):
        time.sleep(0.1)
    time.sleep(1.0)
    assert proc.poll() is None, "the second run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for name, content in before.items():
        assert (out / name).read_bytes() == content, name


def test_no_video_writes_the_same_csv_files_without_a_video(video_assets, tmp_path):
    from trajpred.cli import main  # in-process: only the files are compared

    scene = video_assets.scene
    full, csv_only = tmp_path / "full", tmp_path / "csv_only"
    for out, extra in ((full, ()), (csv_only, ("--no-video",))):
        assert main([str(a) for a in predict_args(video_assets, scene.video, out, *extra)]) == 0
    assert not (csv_only / "annotated.mp4").exists()
    assert "video: false" in (csv_only / "config.yaml").read_text()
    for name in ("tracks.csv", "tracks_mot.txt", "forecasts.csv"):
        assert (csv_only / name).read_text() == (full / name).read_text(), name
