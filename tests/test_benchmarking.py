"""trajpred.benchmarking: the parts the figure scripts share (scripts/calibration_benchmark.py,
camera_benchmark.py, train_video_forecaster.py, calibrate_video_model.py)."""

from __future__ import annotations

import numpy as np

from trajpred.benchmarking import OwnFuture, frames_of, random_camera, tracked_frames
from trajpred.formats import read_tracks
from trajpred.results import FrameForecasts
from trajpred.tracking import TrackedBoxes


def test_tracked_frames_tracks_once_then_reads_its_csv(video_assets, tmp_path):
    video = video_assets.scene.video
    frames, fps = tracked_frames(video, video_assets.weights, tmp_path, None)
    csv = tmp_path / f"{video.stem}.csv"
    tracks = read_tracks(csv, "csv")
    assert fps == 10.0 and len(frames) == int(tracks.frame_id.max()) and len(tracks) > 0
    assert sum(len(f) for f in frames) == len(tracks)
    for f, boxes in enumerate(frames, 1):
        rows = tracks.frame_id == f
        assert boxes.track_id.tolist() == tracks.track_id[rows].tolist()
        np.testing.assert_array_equal(boxes.box_xywh, tracks.box_xywh[rows])
    before = csv.stat().st_mtime_ns
    again, fps_again = tracked_frames(video, video_assets.weights, tmp_path, None)
    assert csv.stat().st_mtime_ns == before and fps_again == fps  # read back, not tracked again
    assert [f.track_id.tolist() for f in again] == [f.track_id.tolist() for f in frames]


def test_frames_of_no_tracks_is_no_frames():
    from trajpred.tracks import Tracks

    assert frames_of(Tracks.empty("px", True)) == []


def test_own_future_scores_a_forecast_against_where_the_tracker_saw_the_track():
    def boxes(*tracks):  # (track id, bottom centre x, y) -> 10 x 20 boxes
        return TrackedBoxes(
            [t for t, _, _ in tracks],
            [(x - 5, y - 20, 10, 20) for _, x, y in tracks],
            [0.9] * len(tracks),
            [0] * len(tracks),
        )

    frames = [boxes((1, 0, 0), (2, 5, 5)), boxes((1, 1, 0)), boxes((1, 2, 0), (2, 7, 5))]
    own = OwnFuture(frames)
    fc = FrameForecasts(
        track_id=[2, 1],
        xy=[[[0, 0], [0, 0]], [[1, 0], [2, 4]]],
        r50=np.ones((2, 2)),
        r90=np.ones((2, 2)),
        target_frame=[2, 3],
    )
    # track 2 was not seen on frame 2: only track 1 (row 1) is scored
    ((row, err),) = list(own.errors(fc))
    assert row == 1
    np.testing.assert_allclose(err, [0, 4])


def test_random_camera_is_drawn_from_its_seed():
    camera = random_camera(700000)
    assert camera == random_camera(700000) != random_camera(700001)
    assert 3 <= camera["height_m"] <= 10 and 15 <= camera["tilt_deg"] <= 45
