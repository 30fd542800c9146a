"""Windowing protocol: distinct-frame sliding windows, agents present in every frame."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trajpred.tracks import Tracks
from trajpred.windows import make_windows, resample_tracks


def test_window_count_on_a_hand_built_file():
    # Track 1: frames 0..24 (25 frames) -> 6 windows of 20; track 2: frames 0..9 -> none;
    # track 3 misses frame 12 -> runs 0..11 and 13..24 are too short -> none.
    rows = (
        [(f, 1) for f in range(25)]
        + [(f, 2) for f in range(10)]
        + [(f, 3) for f in range(25) if f != 12]
    )
    frame, tid = np.array(rows).T
    tracks = Tracks(frame * 10, tid, np.stack([frame * 0.1, tid * 1.0], 1))
    w = make_windows(tracks, 8, 12)
    assert len(w) == 6
    assert set(w.track_id) == {1}
    # frame_id is the last observed frame: the windows start at 0..5 -> last observed 7..12
    assert sorted(w.frame_id // 10) == list(range(7, 13))
    np.testing.assert_allclose(w.fut_xy[:, 0, 0] - w.obs_xy[:, -1, 0], 0.1, atol=1e-6)


def test_windows_step_over_distinct_frame_ids_not_time_gaps():
    frames = np.r_[np.arange(10), np.arange(100, 110)] * 10  # a gap in the middle
    tracks = Tracks(frames, np.ones(20), np.zeros((20, 2)))
    assert len(make_windows(tracks, 8, 12)) == 1


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=6),
    st.integers(2, 6),
    st.integers(1, 6),
)
def test_window_counts_and_no_future_in_observed(spans, obs_len, pred_len):
    """Each track present on frames [a, a+len): windows = max(0, len - seq + 1) when frames of
    other tracks fill every id; observed positions never come from after the last observed frame."""
    rows = []
    for tid, (start, length) in enumerate(spans):
        rows += [(f, tid) for f in range(start, start + length)]
    rows += [(f, 999) for f in range(0, 100)]  # a filler track so distinct frames are contiguous
    frame, tid = np.array(rows).T
    xy = np.stack([frame.astype(float), tid.astype(float)], 1)  # x encodes the frame
    w = make_windows(Tracks(frame, tid, xy), obs_len, pred_len)
    seq = obs_len + pred_len
    expected = sum(max(0, length - seq + 1) for _, length in spans) + (100 - seq + 1)
    assert len(w) == expected
    assert (w.obs_xy[:, :, 0] <= w.frame_id[:, None]).all()
    assert (w.fut_xy[:, :, 0] > w.frame_id[:, None]).all()


def test_eth_window_counts_match_the_data_readme(shared_dir):
    from trajpred.formats import read_eth_ucy

    expected = {"eth": 364, "hotel": 1197, "univ": 24334, "zara1": 2356, "zara2": 5910}
    for scene, count in expected.items():
        files = sorted((shared_dir / "data/eth_ucy" / scene / "test").glob("*.txt"))
        assert sum(len(make_windows(read_eth_ucy(f), 8, 12)) for f in files) == count, scene


@pytest.mark.parametrize("fps", [7.0, 25.0, 30.0])
def test_resample_to_model_step(fps):
    dt_s = 0.4
    frames = np.arange(1, int(fps * 10) + 1)
    speed_px_per_s = 30.0
    xy = np.stack([(frames - 1) / fps * speed_px_per_s, np.zeros(len(frames))], 1)
    out = resample_tracks(Tracks(frames, np.ones(len(frames)), xy, units="px"), fps * dt_s)
    steps = np.diff(out.xy[:, 0])
    np.testing.assert_allclose(steps, speed_px_per_s * dt_s, rtol=1e-6)
    assert len(out) == int(np.floor((frames[-1] - 1) / (fps * dt_s))) + 1
