"""Shared test builders: small hand-checkable Tracks, and the shared data folder (or a skip)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trajpred.tracks import Tracks, bottom_centre

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


def build_tracks(n_tracks: int = 3, n_frames: int = 4, units: str = "m", with_boxes: bool = False,
                 first_frame: int = 1, frame_step: int = 1) -> Tracks:
    """Track k walks from (k, 0) with velocity (0.5, 0.25 * k) per frame step; one row per frame.

    With boxes (pixels), each box is 10 x 20 and xy is its bottom centre, as a MOT reader gives.
    Rows come track by track, not sorted by frame, so writers' sorting is exercised.
    """
    k, step = np.meshgrid(np.arange(n_tracks), np.arange(n_frames), indexing="ij")
    k, step = k.ravel(), step.ravel()
    xy = np.stack([k + 0.5 * step, 0.25 * k * step], axis=1)  # (N, 2)
    box = None
    if with_boxes:
        box = np.stack([xy[:, 0] - 5.0, xy[:, 1] - 20.0, np.full(len(k), 10.0),
                        np.full(len(k), 20.0)], axis=1)  # (N, 4) left, top, width, height
        xy = bottom_centre(box)
    return Tracks(first_frame + frame_step * step, k, xy, box, units=units)


@pytest.fixture
def make_tracks():
    """The `build_tracks` builder, for tests that take it as a fixture."""
    return build_tracks


@pytest.fixture
def shared_dir() -> Path:
    """The repository's sibling ../shared folder; skips the test where it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared data folder {SHARED_DIR} is absent")
    return SHARED_DIR
