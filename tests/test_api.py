"""The public Python API: `import trajpred` is cheap, its names are the CLI's own objects, and
`trajpred.Forecaster` adapts Results / supervision / arrays to the pipeline's LiveForecaster."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import box_at, camera_checkpoint

import trajpred
from trajpred import Forecaster
from trajpred.detect import SHIPPED_DETECTOR
from trajpred.errors import TrajpredError
from trajpred.pipeline import ForecastConfig, load_model

FPS = 10.0  # 4 frames per 0.4 s model step


def results(rows, conf=0.9, shape=(384, 640)):
    """A real ultralytics Results of one frame: rows of (x, y, track id or None)."""
    from ultralytics.engine.results import Results

    data = [
        [*box_at(x, y), *([] if tid is None else [float(tid)]), conf, 0.0] for x, y, tid in rows
    ]
    width = 7 if rows and rows[0][2] is not None else 6
    boxes = torch.tensor(data, dtype=torch.float32).reshape(-1, width)
    return Results(np.zeros((*shape, 3), np.uint8), "frame.jpg", {0: "person"}, boxes=boxes)


@pytest.mark.slow  # a fresh interpreter
def test_import_is_cheap_and_names_resolve():
    code = (
        "import sys, trajpred; "
        "assert not {'torch', 'ultralytics', 'cv2'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    for name in trajpred.__all__:
        value = getattr(trajpred, name)
        assert name == "__version__" or value.__doc__, f"trajpred.{name} has no docstring"
    with pytest.raises(AttributeError):
        trajpred.no_such_name  # noqa: B018


def test_public_names_are_the_objects_the_cli_uses():
    from trajpred import evaluation, formats, pipeline, tracks

    assert trajpred.Pipeline is pipeline.Pipeline
    assert trajpred.read_tracks is formats.read_tracks
    assert trajpred.write_tracks is formats.write_tracks
    assert trajpred.Tracks is tracks.Tracks
    assert trajpred.evaluate is evaluation.evaluate_scene
    assert trajpred.Forecaster is not __import__("trajpred.model").model.Forecaster


@pytest.mark.slow  # a fresh interpreter
def test_from_trajpred_import_evaluate_gives_the_function_whatever_was_imported_before():
    code = (
        "import trajpred.evaluation, trajpred.commands.evaluate, trajpred.cli; "
        "from trajpred import evaluate; "
        "assert callable(evaluate) and evaluate.__module__ == 'trajpred.evaluation', evaluate"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_track_files_round_trip_through_the_api(make_tracks, tmp_path):
    tracks = make_tracks(n_tracks=2, n_frames=5)
    trajpred.write_tracks(tmp_path / "t.txt", tracks, "eth_ucy")
    back = trajpred.read_tracks(tmp_path / "t.txt")
    np.testing.assert_allclose(back.sorted().xy, tracks.sorted().xy)


def test_constant_velocity_track_as_plain_arrays(cv_checkpoint):
    forecaster = Forecaster(cv_checkpoint, fps=FPS)
    assert (forecaster.fps, forecaster.dt_s, forecaster.pred_len) == (10.0, 0.4, 12)
    out = []
    for frame in range(1, 10):  # 5 px per frame to the right: 20 px per model step
        out.append(forecaster.update([7], np.array([box_at(100.0 + 5.0 * frame)])))
    # Samples at frames 1, 5, 9: the first forecast comes with the second sample, at frame 5.
    assert [len(f) for f in out] == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    f = out[-1]  # frame 9, bottom centre at x = 145
    assert f.track_id.tolist() == [7] and f.xy.shape == (1, 12, 2)
    np.testing.assert_allclose(f.xy[0, :, 0], 145.0 + 20.0 * np.arange(1, 13), atol=1e-3)
    np.testing.assert_allclose(f.xy[0, :, 1], 300.0, atol=1e-3)
    np.testing.assert_array_equal(f.target_frame, 9 + 4 * np.arange(1, 13))
    assert f.samples is None and f.world_xy is None and f.r50.shape == f.r90.shape == (1, 12)
    assert forecaster.frame_id == 9


def test_api_forecasts_equal_forecasts_of_whole_windows():
    """The shipped video model (8 neighbours, pixels scaled by box height) streamed through the
    API frame by frame gives, on every frame, the batch forecast (`forecast_windows`) of each
    track's whole history of 0.4 s samples with the others as neighbours, shifted to the track's
    current position: computed here without the API, LiveForecaster or TrackStreams."""
    from trajpred.forecast import forecast_windows

    forecaster = Forecaster(fps=FPS, k=3)
    model = load_model(ForecastConfig().checkpoint)
    g = np.random.default_rng(0)
    n, frames, per_step = 5, 26, 4  # 10 fps: a sample every 4th frame (1, 5, 9, ...)
    turn = g.uniform(-0.08, 0.08, n)[:, None] * np.arange(frames)  # curving walks, pixels
    speed = g.uniform(3, 6, n)[:, None]
    heading = g.uniform(0, 2 * np.pi, n)[:, None] + np.cumsum(turn, 1) * 0.1
    xy = g.uniform(150, 450, (n, 1, 2)) + np.cumsum(
        speed[..., None] * np.stack([np.cos(heading), np.sin(heading)], -1), 1
    )  # (n, frames, 2): bottom centres on frames 1..frames
    ids = np.array([12, 3, 9, 4, 30])
    # tiled, not np.broadcast_to: torch takes the median of a zero-stride array as 0
    box_wh = np.tile(np.float32([30, 90]), (n, frames // per_step + 1, 1))
    checked = 0
    for f in range(1, frames + 1):
        order = g.permutation(n)  # the API sorts the tracks of a frame itself
        got = forecaster.update(ids[order], np.array([box_at(*xy[i, f - 1]) for i in order]))
        samples = xy[:, :f:per_step]  # (n, k, 2): frames 1, 5, ... up to f
        k = samples.shape[1]
        if k < 2:
            assert len(got) == 0
            continue
        others = np.array([[j for j in range(n) if j != i] for i in range(n)])
        nbr = np.float32(samples[others][:, :, -2:])  # (n, n - 1, 2, 2): others' last two
        want = forecast_windows(
            model, samples, box_wh[:, :k], k=3, nbr_xy=nbr, nbr_mask=np.ones(others.shape, bool)
        )
        shift = (xy[:, f - 1] - samples[:, -1])[:, None]  # to the track's position on frame f
        by_id = np.argsort(ids)
        np.testing.assert_array_equal(got.track_id, ids[by_id])
        np.testing.assert_allclose(got.xy, (want.mean + shift)[by_id], atol=1e-3)
        np.testing.assert_allclose(got.r50, want.r50[by_id], atol=1e-3)
        np.testing.assert_allclose(got.r90, want.r90[by_id], atol=1e-3)
        np.testing.assert_allclose(got.samples, (want.samples + shift[:, None])[by_id], atol=1e-3)
        np.testing.assert_array_equal(got.target_frame, f + per_step * np.arange(1, 13))
        checked += 1
    assert checked == frames - per_step
    alone = forecast_windows(model, samples, box_wh[:, :k]).mean  # neighbours do matter here
    assert np.abs(alone - want.mean).max() > 0.1


def test_results_without_ids_after_tracking_began_are_empty(cv_checkpoint):
    forecaster = Forecaster(cv_checkpoint, fps=FPS)
    assert len(forecaster.update(results([]))) == 0  # frame 1: no boxes at all
    for frame in range(2, 10):  # samples at frames 5 and 9
        f = forecaster.update(results([(100.0 + 5 * frame, 300.0, 1)]))
    assert f.track_id.tolist() == [1]
    for _ in range(10):  # the tracker confirmed nothing: boxes.id is None
        assert len(forecaster.update(results([(200.0, 300.0, None)]))) == 0
    assert forecaster.frame_id == 19


def test_untracked_results_raise_with_a_hint(cv_checkpoint):
    forecaster = Forecaster(cv_checkpoint, fps=FPS)
    untracked = results([(100.0, 300.0, None), (300.0, 300.0, None)])
    forecaster.update(untracked)  # a new track is confirmed on its second frame: no error yet
    forecaster.update(untracked)
    with pytest.raises(ValueError, match=r"persist=True"):
        forecaster.update(untracked)
    # Low-confidence boxes without ids are what a tracker leaves when it starts no track.
    quiet = Forecaster(cv_checkpoint, fps=FPS)
    for _ in range(10):
        assert len(quiet.update(results([(100.0, 300.0, None)], conf=0.15))) == 0


def test_supervision_detections_are_duck_typed(cv_checkpoint):
    by_arrays, by_sv = Forecaster(cv_checkpoint, fps=FPS), Forecaster(cv_checkpoint, fps=FPS)
    for frame in range(1, 8):
        xyxy = np.array([box_at(100.0 + 5 * frame), box_at(400.0 - 3 * frame)])
        ids = np.array([5, 2])
        detections = SimpleNamespace(
            xyxy=xyxy, tracker_id=ids, class_id=np.array([0, 0]), confidence=np.array([0.9, 0.8])
        )
        got, want = by_sv.update(detections), by_arrays.update(ids, xyxy)
        np.testing.assert_array_equal(got.track_id, want.track_id)
        np.testing.assert_allclose(got.xy, want.xy)
    assert got.track_id.tolist() == [2, 5]
    empty = SimpleNamespace(xyxy=np.zeros((0, 4)), tracker_id=None, class_id=None)
    assert len(by_sv.update(empty)) == 0
    untracked = SimpleNamespace(xyxy=xyxy, tracker_id=None, class_id=None)
    with pytest.raises(ValueError, match="tracker_id"):
        by_sv.update(untracked)


def test_frames_out_of_order_raise_and_reset_starts_again(cv_checkpoint):
    forecaster = Forecaster(cv_checkpoint, fps=FPS)
    box = np.array([box_at(100.0)])
    forecaster.update([1], box, frame_id=5)
    forecaster.update([1], box)  # counts on from the given id
    assert forecaster.frame_id == 6
    for bad in (6, 3):
        with pytest.raises(ValueError, match="in order"):
            forecaster.update([1], box, frame_id=bad)
    forecaster.update([1], box, frame_id=20)  # a gap is allowed
    forecaster.reset()
    assert forecaster.frame_id == 0
    assert len(forecaster.update([1], box)) == 0  # the track starts over: one sample


@pytest.mark.parametrize(
    "args, message",
    [
        (([1, 2], np.zeros((2, 3))), r"xyxy must have shape \(2, 4\)"),
        (([1, 2], np.zeros((3, 4))), r"xyxy must have shape \(2, 4\)"),
        (([[1, 2]], np.zeros((2, 4))), r"track_ids must have shape \(N,\)"),
        (([1.5], np.zeros((1, 4))), "integers"),
        (([1], np.array([[0, 0, np.nan, 1]])), "NaN"),
        (([1], np.array([[10, 0, 5, 1]])), "right >= left"),
        (([1, 1], np.zeros((2, 4))), "twice"),
        (([1], np.zeros((1, 4)), [0, 0]), r"classes must have shape \(1,\)"),
        ((np.zeros((1, 4)),), "update\\(\\) takes"),
    ],
)
def test_wrong_input_raises_value_error(args, message, cv_checkpoint):
    with pytest.raises(ValueError, match=message):
        Forecaster(cv_checkpoint, fps=FPS).update(*args)


def test_bad_settings_raise(cv_checkpoint, tmp_path):
    for fps in (0, -1.0, float("nan"), "25"):
        with pytest.raises(ValueError, match="fps"):
            Forecaster(cv_checkpoint, fps=fps)
    with pytest.raises(ValueError, match="k must"):
        Forecaster(cv_checkpoint, fps=FPS, k=-1)
    with pytest.raises(ValueError, match="calibration must be 'online' or 'fixed'"):
        Forecaster(cv_checkpoint, fps=FPS, calibration="live")
    with pytest.raises(ValueError, match="3x3"):
        Forecaster(cv_checkpoint, fps=FPS, homography=np.eye(2))
    with pytest.raises(TrajpredError, match="not found"):
        Forecaster(tmp_path / "absent.pt", fps=FPS)


def test_homography_adds_world_positions(cv_checkpoint, tmp_path):
    (tmp_path / "H.txt").write_text("0.5 0 0\n0 0.5 0\n0 0 1\n")  # 2 px per metre
    forecaster = Forecaster(cv_checkpoint, fps=FPS, homography=tmp_path / "H.txt")
    for frame in range(1, 6):
        f = forecaster.update([1], np.array([box_at(100.0 + 5 * frame)]))
    np.testing.assert_allclose(f.world_xy, f.xy / 2)


@pytest.mark.parametrize("units", ["px", "m"])
def test_a_camera_model_runs_only_in_the_units_it_was_adapted_in(units, cv_checkpoint, tmp_path):
    """A model adapted in pixels reads its scene input in pixels: with a homography (metres) it
    would read wrong scene features without a word, so it is refused; likewise a ground-plane
    model without one. Models without a scene input serve both."""
    ground = np.diag([0.5, 0.5, 1.0])  # 2 px per metre
    camera = camera_checkpoint(tmp_path / f"{units}.pt", units)
    own, other = (None, ground) if units == "px" else (ground, None)
    with pytest.raises(TrajpredError, match="adapted to this camera") as refused:
        Forecaster(camera, fps=FPS, homography=other)
    assert camera in str(refused.value) and "\n" not in str(refused.value)
    f = Forecaster(camera, fps=FPS, homography=own)
    for frame in range(1, 6):
        f.update([1], np.array([box_at(100.0 + 5 * frame)]))
    assert f.update([1], np.array([box_at(130.0)])).track_id.tolist() == [1]
    for homography in (None, ground):
        Forecaster(cv_checkpoint, fps=FPS, homography=homography)


@pytest.fixture(scope="module")
def scene_frames(video_assets):
    """The first 20 frames of the shared synthetic scene, BGR."""
    import cv2

    cap = cv2.VideoCapture(str(video_assets.scene.video))
    frames = [cap.read()[1] for _ in range(20)]
    cap.release()
    return frames


def test_real_yolo_track_results(scene_frames, video_assets):
    from ultralytics import YOLO

    model = YOLO(str(SHIPPED_DETECTOR))
    # The plain-array path, checked against whole-window forecasts above, on the same boxes.
    forecaster, by_arrays = Forecaster(fps=FPS), Forecaster(fps=FPS)
    seen = 0
    for image in scene_frames:
        result = model.track(image, persist=True, imgsz=video_assets.imgsz, verbose=False)[0]
        got = forecaster.update(result)
        boxes = result.boxes
        ids = np.zeros(0) if boxes.id is None else boxes.id.numpy()
        want = by_arrays.update(ids, boxes.xyxy.numpy()[: len(ids)])
        np.testing.assert_array_equal(got.track_id, want.track_id)
        np.testing.assert_allclose(got.xy, want.xy)
        seen += len(got)
    assert seen > 0  # people were detected, tracked and forecast
    untracked = Forecaster(fps=FPS)
    with pytest.raises(ValueError, match="persist=True"):
        for image in scene_frames:
            untracked.update(model.predict(image, imgsz=video_assets.imgsz, verbose=False)[0])
