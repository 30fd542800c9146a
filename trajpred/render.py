"""Drawing a FrameResult: the annotated frames of `predict`'s video.

`Renderer.draw(result)` draws a FrameResult on a copy of its frame:
- box and id label: one colour per track id;
- trail: the track's bottom centre over the last `trail_s` seconds, a solid line;
- forecast: a dashed line with white dots at the predicted bottom centres, inside a translucent
  band whose half-width is the forecast's standard deviation `sigma` at each step (so it widens
  with the horizon), plus thin lines for sampled trajectories when --k > 0.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from .checks import between, check_fields
from .results import FrameResult


@dataclass
class RenderConfig:
    trail_s: float = 2.0  # seconds of past trail drawn per track
    band_alpha: float = 0.25  # opacity of the forecast's uncertainty band
    line_px: int = 2

    def __post_init__(self) -> None:
        check_fields(self, trail_s=between(0, 60), band_alpha=between(0, 1), line_px=between(1, 50))


FONT = cv2.FONT_HERSHEY_SIMPLEX


@functools.lru_cache(maxsize=4096)
def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour per id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    bgr = cv2.cvtColor(np.array([[[hue, 220, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _pts(xy: np.ndarray) -> np.ndarray:
    """(N, 2) float pixels -> (N, 1, 2) int32, the layout cv2.polylines/fillPoly take."""
    return np.round(xy).astype(np.int32).reshape(-1, 1, 2)


def uncertainty_band(centre: np.ndarray, sigma: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Polygon (..., 2P + 1, 2) around the path start (..., 2) -> centre (..., P, 2), half-width
    sigma (..., P) pixels; leading dimensions are tracks, all done at once."""
    path = np.concatenate([start[..., None, :], centre], axis=-2)
    d = np.gradient(path, axis=-2)[..., 1:, :]
    normal = (
        np.stack([-d[..., 1], d[..., 0]], -1)
        / np.maximum(np.linalg.norm(d, axis=-1), 1e-6)[..., None]
    )
    left = centre + normal * sigma[..., None]
    right = centre - normal * sigma[..., None]
    return np.concatenate([start[..., None, :], left, right[..., ::-1, :]], axis=-2)


class Renderer:
    """Keeps each track's recent trail and draws results onto copies of their frames."""

    def __init__(self, fps: float, cfg: RenderConfig | None = None):
        self.cfg = cfg or RenderConfig()
        self.fps = fps
        self.trails: dict[int, deque] = {}

    def _update_trails(self, result: FrameResult) -> None:
        keep = max(2, int(round(self.cfg.trail_s * self.fps)))
        for tid, xy in zip(result.tracks.track_id.tolist(), result.tracks.xy, strict=False):
            self.trails.setdefault(tid, deque(maxlen=keep)).append((result.frame_id, xy))
        # Trails of tracks gone for longer than the trail itself are forgotten.
        for tid in [t for t, d in self.trails.items() if result.frame_id - d[-1][0] > keep]:
            del self.trails[tid]

    def draw(self, result: FrameResult) -> np.ndarray:
        """(H, W, 3) uint8 BGR annotated copy of result.image."""
        self._update_trails(result)
        img = result.image.copy()
        fc = result.forecasts
        overlay = img.copy()
        current = dict(zip(result.tracks.track_id.tolist(), result.tracks.xy, strict=False))
        if len(fc):
            starts = np.array([current[tid] for tid in fc.track_id.tolist()])
            bands = np.round(uncertainty_band(fc.xy, fc.sigma, starts)).astype(np.int32)
            for tid, band in zip(fc.track_id.tolist(), bands, strict=False):
                cv2.fillPoly(overlay, [band[:, None]], track_colour(tid), cv2.LINE_AA)
        cv2.addWeighted(overlay, self.cfg.band_alpha, img, 1 - self.cfg.band_alpha, 0, dst=img)
        for j, tid in enumerate(fc.track_id.tolist()):
            colour = track_colour(tid)
            if fc.samples is not None:
                for sample in fc.samples[j]:
                    path = np.vstack([current[tid][None], sample])
                    cv2.polylines(img, [_pts(path)], False, colour, 1, cv2.LINE_AA)
            path = np.vstack([current[tid][None], fc.xy[j]])
            dashes = np.stack([path[:-1], path[:-1] + 0.6 * (path[1:] - path[:-1])], 1)  # (P, 2, 2)
            cv2.polylines(
                img,
                list(np.round(dashes).astype(np.int32)),
                False,
                colour,
                self.cfg.line_px,
                cv2.LINE_AA,
            )  # dashed, unlike the solid trail
        if len(fc):  # white dots at the predicted points: zero-length round-capped segments,
            # all in one call (the same pixels as a radius-2 filled circle each)
            dots = np.repeat(np.round(fc.xy.reshape(-1, 1, 2)).astype(np.int32), 2, axis=1)
            cv2.polylines(img, list(dots[:, :, None]), False, (255, 255, 255), 4, cv2.LINE_AA)
        for tid, trail in self.trails.items():
            if tid not in current or len(trail) < 2:
                continue
            pts = np.array([p for _, p in trail])
            cv2.polylines(img, [_pts(pts)], False, track_colour(tid), self.cfg.line_px, cv2.LINE_AA)
        for tid, box in zip(result.tracks.track_id.tolist(), result.tracks.box_xywh, strict=False):
            self._box(img, tid, box)
        return img

    def _box(self, img: np.ndarray, tid: int, box: np.ndarray) -> None:
        colour = track_colour(tid)
        x0, y0 = int(round(box[0])), int(round(box[1]))
        x1, y1 = int(round(box[0] + box[2])), int(round(box[1] + box[3]))
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, self.cfg.line_px)
        label = str(tid)
        (tw, th), base = cv2.getTextSize(label, FONT, 0.4, 1)
        cv2.rectangle(img, (x0, y0 - th - base - 2), (x0 + tw + 4, y0), colour, -1)
        cv2.putText(img, label, (x0 + 2, y0 - base - 1), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
