"""Drawing: the banded forecasts are blended only where bands are, with the same pixels as a
whole-frame blend, and drawing in place gives the same image as drawing on a copy."""

from __future__ import annotations

import cv2
import numpy as np

from trajpred.detect import Detections
from trajpred.render import Renderer, track_colour, uncertainty_band
from trajpred.results import FrameForecasts, FrameResult
from trajpred.tracking import TrackedBoxes


def _result(n_tracks: int, seed: int) -> FrameResult:
    """A textured 240x320 frame with n_tracks boxes and forecasts in random directions, some
    crossing each other and some leaving the frame."""
    g = np.random.default_rng(seed)
    image = g.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    xy = g.uniform([-20, -20], [340, 260], (n_tracks, 2))
    box = np.column_stack(
        [xy[:, 0] - 8, xy[:, 1] - 30, np.full(n_tracks, 16), np.full(n_tracks, 30)]
    )
    tracks = TrackedBoxes(np.arange(1, n_tracks + 1), box, np.ones(n_tracks), np.zeros(n_tracks))
    steps = np.arange(1, 13)[None, :, None]
    velocity = g.normal(0, 8, (n_tracks, 1, 2))
    r50 = 2.0 + steps[..., 0] * g.uniform(0.5, 2, (n_tracks, 1))
    forecasts = FrameForecasts(
        tracks.track_id, tracks.xy[:, None] + steps * velocity, r50, 2 * r50, np.arange(2, 14)
    )
    return FrameResult(1, 0.0, image, Detections.empty(), tracks, forecasts)


def _whole_frame_bands(result: FrameResult, alpha: float) -> np.ndarray:
    """The reference: every band filled into a full-frame overlay, blended once."""
    img = result.image.copy()
    overlay = img.copy()
    fc = result.forecasts
    bands = np.round(uncertainty_band(fc.xy, fc.r50, result.tracks.xy)).astype(np.int32)
    for tid, band in zip(fc.track_id.tolist(), bands, strict=True):
        cv2.fillPoly(overlay, [band[:, None]], track_colour(tid), cv2.LINE_AA)
    cv2.addWeighted(overlay, alpha, img, 1 - alpha, 0, dst=img)
    return img


def test_band_blend_equals_the_whole_frame_blend():
    for seed in range(20):
        result = _result(n_tracks=1 + seed % 9, seed=seed)
        renderer = Renderer(fps=10)
        got = result.image.copy()
        renderer._blend_bands(
            got,
            np.round(
                uncertainty_band(result.forecasts.xy, result.forecasts.r50, result.tracks.xy)
            ).astype(np.int32),
            result.forecasts.track_id.tolist(),
        )
        np.testing.assert_array_equal(got, _whole_frame_bands(result, renderer.cfg.band_alpha))


def test_drawing_in_place_equals_drawing_a_copy():
    result = _result(n_tracks=6, seed=3)
    original = result.image.copy()
    copy = Renderer(fps=10).draw(result)
    np.testing.assert_array_equal(result.image, original)  # a copy leaves the frame alone
    in_place = Renderer(fps=10).draw(result, in_place=True)
    assert in_place is result.image
    np.testing.assert_array_equal(in_place, copy)
    assert (copy != original).any()
