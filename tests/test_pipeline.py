"""The library side of predict: adapters, sampling at the model's time step, forecasts, metrics."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import clip

from trajpred.demo import DetectionScores, iou_xywh, match_boxes
from trajpred.detect import Detections, check_weights, class_ids
from trajpred.errors import InputError, TrajpredError
from trajpred.model import Forecaster, ForecasterConfig
from trajpred.pipeline import ForecastConfig, LiveForecaster, apply_homography, read_homography
from trajpred.predict_files import forecast_rows, track_rows
from trajpred.render import uncertainty_band
from trajpred.tracking import TrackedBoxes, Tracker, tracked_from_ultralytics
from trajpred.video import expand_source, frame_rate


def one_box(tid: int, x: float, y: float = 100.0) -> TrackedBoxes:
    """A 10 x 40 box whose bottom centre is (x, y)."""
    return TrackedBoxes([tid], [[x - 5.0, y - 40.0, 10.0, 40.0]], [0.9], [0])


def walk(fps: float, duration_s: float, v_px_per_frame: float = 2.0, **cfg):
    """Run a LiveForecaster (untrained model = constant velocity) over one track walking right."""
    live = LiveForecaster(Forecaster(ForecasterConfig()), fps, ForecastConfig(**cfg))
    results = [
        live.update(i + 1, one_box(1, 50.0 + v_px_per_frame * i))
        for i in range(round(duration_s * fps))
    ]
    return live, results


@pytest.mark.parametrize("fps", [7.0, 25.0, 30.0])
def test_one_observe_per_model_step_whatever_the_frame_rate(fps):
    live, _ = walk(fps, duration_s=6.0)
    assert live.n_observed[1] == round(6.0 / 0.4)  # samples at t = 0, 0.4, ..., 5.6 s
    # The last sample (t = 5.6 s) is interpolated between the frames around it.
    last_frame = 14 * 0.4 * fps
    slot = live.streams.slot[1]
    assert live.streams.last_xy[slot, 0].item() == pytest.approx(50.0 + 2.0 * last_frame, abs=1e-3)


def test_forecast_is_constant_velocity_shifted_to_the_current_frame():
    fps = 25.0
    _, results = walk(fps, duration_s=3.0)
    # Frames 1..10 hold one sample (t = 0): no forecast until the second, at frame 11.
    assert all(len(r) == 0 for r in results[:10])
    assert len(results[10]) == 1
    fc, frame_id = results[17], 18
    step_px = 2.0 * 0.4 * fps  # 20 px per model step
    now_x = 50.0 + 2.0 * (frame_id - 1)
    expected_x = now_x + step_px * np.arange(1, 13)
    np.testing.assert_allclose(fc.xy[0, :, 0], expected_x, atol=1e-2)
    np.testing.assert_allclose(fc.xy[0, :, 1], 100.0, atol=1e-3)
    np.testing.assert_array_equal(fc.target_frame, frame_id + 10 * np.arange(1, 13))
    for radius in (fc.r50, fc.r90):  # widening with the horizon, r90 outside r50
        assert radius.shape == (1, 12) and np.all(np.diff(radius[0]) > 0)
    assert np.all(fc.r90 > fc.r50)


def test_long_gap_restarts_the_track_and_unseen_tracks_are_dropped():
    fps = 10.0  # 4 frames per model step
    live = LiveForecaster(Forecaster(ForecasterConfig()), fps, ForecastConfig(drop_after_s=2.0))
    for i in range(12):
        live.update(i + 1, one_box(1, 10.0 + i))
    assert live.streams.n_observed([1])[0] == 3
    for i in range(12, 15):  # seen again 4 frames (one step) later: interpolated over
        live.update(i + 1, TrackedBoxes.empty())
    fc = live.update(16, one_box(1, 25.0))
    assert live.streams.n_observed([1])[0] == 4 and len(fc) == 1
    for i in range(17, 25):  # 8 frames unseen: more than one step, the state restarts
        live.update(i + 1, TrackedBoxes.empty())
    fc = live.update(26, one_box(1, 40.0))
    assert len(fc) == 0 and live.streams.n_observed([1])[0] == 0
    for i in range(26, 50):  # > drop_after_s unseen: forgotten
        live.update(i + 1, TrackedBoxes.empty())
    assert 1 not in live.state and 1 not in live.streams.slot


def test_homography_adds_world_positions(tmp_path):
    path = tmp_path / "H.txt"
    path.write_text("# image -> ground\n0.5 0 1\n0 0.5 0\n0 0 1\n")
    h = read_homography(path)
    np.testing.assert_allclose(apply_homography(h, np.array([[2.0, 4.0]])), [[2.0, 2.0]])
    live = LiveForecaster(Forecaster(ForecasterConfig()), 10.0, ForecastConfig(), homography=h)
    for i in range(9):
        fc = live.update(i + 1, one_box(3, 10.0 + i))
    np.testing.assert_allclose(fc.world_xy, 0.5 * fc.xy + [1.0, 0.0])
    row = forecast_rows(9, fc).splitlines()[0].split(",")
    assert row[:4] == ["9", "3", "1", "13"] and len(row) == 12  # x,y,r50,r90,wx,wy,wr50,wr90
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(InputError, match="9 finite numbers"):
        read_homography(tmp_path / "bad.txt")


def test_tracked_from_ultralytics_handles_boxes_id_none():
    from ultralytics.engine.results import Results

    image = np.zeros((100, 200, 3), np.uint8)
    untracked = Results(
        image, "frame.jpg", {0: "person"}, boxes=torch.tensor([[10.0, 20.0, 30.0, 60.0, 0.9, 0.0]])
    )
    assert untracked.boxes.id is None
    assert len(tracked_from_ultralytics(untracked)) == 0
    tracked = Results(
        image,
        "frame.jpg",
        {0: "person"},
        boxes=torch.tensor(
            [[10.0, 20.0, 30.0, 60.0, 7.0, 0.9, 0.0], [50.0, 20.0, 60.0, 40.0, 2.0, 0.8, 0.0]]
        ),
    )
    t = tracked_from_ultralytics(tracked)
    np.testing.assert_array_equal(t.track_id, [2, 7])  # sorted by id
    np.testing.assert_allclose(t.box_xywh[1], [10, 20, 20, 40])
    np.testing.assert_allclose(t.xy[1], [20, 60])


def test_tracker_ids_are_stable_and_restart_after_reset():
    tracker = Tracker("bytetrack")
    image = np.zeros((200, 300, 3), np.uint8)
    assert len(tracker.update(Detections.empty(), image)) == 0
    for i in range(6):
        boxes = [[20 + 3 * i, 50, 20, 60], [200 - 3 * i, 60, 20, 60]]
        out = tracker.update(Detections(boxes, [0.9, 0.8], [0, 0]), image)
    assert sorted(out.track_id.tolist()) == [1, 2]
    np.testing.assert_allclose(out.box_xywh[out.track_id == 1][0], [35, 50, 20, 60], atol=1.5)
    assert len(tracker.update(Detections.empty(), image)) == 0
    tracker.reset()
    for _ in range(2):
        out = tracker.update(Detections([[100, 50, 20, 60]], [0.9], [0]), image)
    assert out.track_id.tolist() == [1]


def test_tracker_reports_which_detection_each_track_matched():
    tracker = Tracker("bytetrack")
    image = np.zeros((200, 300, 3), np.uint8)
    for i in range(5):  # the detections' order changes every frame
        boxes = [[20 + 3 * i, 50, 20, 60], [200 - 3 * i, 60, 20, 60], [120, 10, 10, 30]]
        order = np.roll(np.arange(3), i)
        detections = Detections(
            np.array(boxes)[order], np.array([0.9, 0.8, 0.85])[order], [0, 0, 0]
        )
        tracks, rows = tracker.update_with_index(detections, image)
    assert len(tracks) == 3 and rows.shape == (3,)
    np.testing.assert_allclose(detections.box_xywh[rows], tracks.box_xywh, atol=2.0)
    empty, none = tracker.update_with_index(Detections.empty(), image)
    assert len(empty) == 0 and len(none) == 0


def test_tracker_names_are_checked(tmp_path):
    with pytest.raises(TrajpredError, match="bytetrack or botsort"):
        Tracker("sort")
    (tmp_path / "t.yaml").write_text("tracker_type: nonsense\n")
    with pytest.raises(TrajpredError, match="tracker_type"):
        Tracker(str(tmp_path / "t.yaml"))
    assert Tracker("botsort").low_conf == pytest.approx(0.1)


@pytest.mark.slow  # two track runs: seconds
def test_track_uses_the_tracker_yaml_it_is_given(video_assets, tmp_path):
    """--tracker FILE.yaml: its settings are the tracker's. A track starts from a detection
    scoring at least new_track_thresh: at 1.0 none starts, where the built-in settings start
    several."""
    import yaml

    from trajpred.cli import main
    from trajpred.tracking import tracker_yaml

    settings = yaml.safe_load(tracker_yaml("bytetrack").read_text())
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump({**settings, "new_track_thresh": 1.0}))
    video = clip(video_assets, tmp_path / "clip.mp4", 12)
    rows = {}
    for tracker in ("bytetrack", strict):
        out = tmp_path / f"{Path(tracker).stem}.csv"
        args = ["track", video, "--out", out, "--weights", video_assets.weights, "--imgsz",
                video_assets.imgsz, "--tracker", tracker, "--no-progress"]  # fmt: skip
        assert main([str(a) for a in args]) == 0
        rows[tracker] = out.read_text().count("\n") - 1  # after the header
    assert rows["bytetrack"] > 20 and rows[strict] == 0


def test_class_names_and_weights_are_checked(tmp_path, monkeypatch):
    assert class_ids({0: "person", 1: "car"}, ["Person", "1"]) == [0, 1]
    with pytest.raises(TrajpredError, match="not one of the detector's classes"):
        class_ids({0: "person"}, ["dog"])
    with pytest.raises(TrajpredError, match="--weights"):
        check_weights(str(tmp_path / "missing.pt"))
    import ultralytics.utils

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ultralytics.utils, "is_online", lambda: False)
    with pytest.raises(TrajpredError, match="no internet.*--weights"):
        check_weights("yolo11n.pt")


def test_sources_and_frame_rates(tmp_path):
    for name in ("b.mp4", "a.avi", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    videos, several = expand_source(str(tmp_path))
    assert several and [v.name for v in videos] == ["a", "b"]
    videos, several = expand_source(str(tmp_path / "*.mp4"))
    assert several and [v.name for v in videos] == ["b"]
    assert expand_source("0")[0][0].is_stream and expand_source("rtsp://cam/1")[0][0].is_stream
    with pytest.raises(InputError, match="not found"):
        expand_source(str(tmp_path / "nope.mp4"))
    assert frame_rate(25.0, None, "v") == 25.0 and frame_rate(0.0, 12.5, "v") == 12.5
    for bad in (0.0, math.nan, 90000.0):
        with pytest.raises(InputError, match="--fps"):
            frame_rate(bad, None, "v")


def test_metrics_and_drawing_helpers():
    assert iou_xywh([[0, 0, 10, 10]], [[5, 0, 10, 10]])[0, 0] == pytest.approx(1 / 3)
    assert match_boxes(
        np.array([[0, 0, 10, 10], [50, 0, 10, 10]]), np.array([[51, 0, 10, 10], [30, 0, 10, 10]])
    ) == [(1, 0)]
    scores = DetectionScores()
    scores.add(
        np.array([[0, 0, 10, 10], [50, 0, 10, 10]]), np.array([[1, 0, 10, 10], [99, 9, 5, 5]])
    )
    assert (scores.tp, scores.fp, scores.fn, scores.precision) == (1, 1, 1, 0.5)
    band = uncertainty_band(np.array([[10.0, 0.0], [20.0, 0.0]]), np.array([1.0, 2.0]), np.zeros(2))
    np.testing.assert_allclose(band, [[0, 0], [10, 1], [20, 2], [20, -2], [10, -1]])
    # Batched over tracks: each row as if alone.
    centres, sigmas = (
        np.array([[[10.0, 0.0], [20.0, 0.0]], [[0.0, 5.0], [3.0, 9.0]]]),
        np.ones((2, 2)),
    )
    starts = np.array([[0.0, 0.0], [1.0, 1.0]])
    bands = uncertainty_band(centres, sigmas, starts)
    for j in range(2):
        np.testing.assert_allclose(bands[j], uncertainty_band(centres[j], sigmas[j], starts[j]))
    assert (
        track_rows(4, one_box(2, 20.0)) == "4,2,20.00,100.00,15.00,60.00,10.00,40.00,0,0.9000,px\n"
    )


def _frames(path, n: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    return frames


def test_detector_fast_path_gives_the_boxes_of_predict(video_assets):
    """After the first frame Detector.detect runs ultralytics' predictor steps directly; the
    boxes must be those of YOLO.predict with the same settings, frame after frame."""
    from trajpred.detect import CpuInput, Detector, DetectorConfig, detections_from_ultralytics

    detector = Detector(DetectorConfig(weights=video_assets.weights, imgsz=video_assets.imgsz))
    frames = _frames(video_assets.scene.video, 12)
    ours = [detector.detect(f) for f in frames]
    assert detector._predictor is not None  # the fast path was taken after the first frame
    to_tensor = CpuInput(detector.model.predictor)
    for frame in frames[:3]:  # the CPU input is ultralytics' preprocess, element for element
        assert torch.equal(to_tensor(frame), detector.model.predictor.preprocess([frame]))
    assert to_tensor.buffer is not None  # ... and it took its own path, not preprocess's
    reference = Detector(DetectorConfig(weights=video_assets.weights, imgsz=video_assets.imgsz))
    for frame, got in zip(frames, ours, strict=True):
        want = detections_from_ultralytics(
            reference.model.predict(
                frame,
                conf=reference.query_conf,
                classes=reference.class_ids,
                imgsz=reference.imgsz,
                verbose=False,
            )[0]
        )
        assert len(want) > 0
        np.testing.assert_allclose(got.box_xywh, want.box_xywh, atol=1e-4)
        np.testing.assert_allclose(got.conf, want.conf, atol=1e-6)
        np.testing.assert_array_equal(got.class_id, want.class_id)


def test_half_is_accepted_and_ignored_on_the_cpu(video_assets):
    """--half asks for fp16 kernels, a GPU's; on the CPU (`predict --help`: ignored there) the
    detector runs in fp32 and finds exactly the boxes it finds without it."""
    from trajpred.cli import build_parser
    from trajpred.commands.predict import load_pipeline_config
    from trajpred.detect import Detector, DetectorConfig

    for command in ("predict", "track"):
        args = build_parser().parse_args([command, "v.mp4", "--out", "o", "--half"])
        assert load_pipeline_config(args).detector.half is True
    cfg = DetectorConfig(weights=video_assets.weights, imgsz=video_assets.imgsz, device="cpu")
    half, full = Detector(dataclasses.replace(cfg, half=True)), Detector(cfg)
    assert not half.half
    for frame in _frames(video_assets.scene.video, 3):
        a, b = half.detect(frame), full.detect(frame)
        np.testing.assert_array_equal(a.box_xywh, b.box_xywh)
        np.testing.assert_array_equal(a.conf, b.conf)


def test_video_reader_reads_ahead_without_losing_or_reordering_frames(video_assets):
    from trajpred.video import VideoReader, VideoSource

    source = VideoSource(str(video_assets.scene.video), "scene")
    expected = _frames(video_assets.scene.video, 60)
    with VideoReader(source) as reader:
        frames = list(reader)
    assert len(frames) == 60
    for got, want in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # Stopping early: the read ahead ends before the capture is released, at most one frame on.
    reader = VideoReader(source)
    capture = reader._cap = SlowCapture(reader._cap)
    with reader:
        for i, _ in enumerate(reader):
            if i == 5:
                break
    assert capture.events == ["release"] and capture.reads == 6  # frames 2-6, and 7 read ahead
    assert not [t for t in threading.enumerate() if t.name.startswith("trajpred-decode")]


class SlowCapture:
    """A cv2.VideoCapture whose reads take a while; counts reads and records a release that
    came during a read, or a read after it."""

    def __init__(self, cap):
        self.cap, self.reads, self.reading, self.events = cap, 0, False, []

    def read(self):
        if "release" in self.events:
            self.events.append("read after release")
        self.reading = True
        time.sleep(0.05)
        self.reads += 1
        self.reading = False
        return self.cap.read()

    def release(self):
        self.events.append("release during a read" if self.reading else "release")
        self.cap.release()
