"""Draw a FrameResult on its frame: boxes with track ids, the past trail, and the forecast.

- box and id label: one colour per track id;
- trail: the track's bottom centre over the last `trail_s` seconds, a solid line that fades;
- forecast: a dotted line of the predicted bottom centres with a translucent band around it
  whose half-width is the forecast's standard deviation `sigma` at each step (so it widens
  with the horizon), plus thin lines for sampled trajectories when --k > 0.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from .pipeline import FrameResult

FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class RenderConfig:
    trail_s: float = 2.0          # seconds of past trail drawn per track
    band_alpha: float = 0.25      # opacity of the uncertainty band
    line_px: int = 2


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour per id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _pts(xy: np.ndarray) -> np.ndarray:
    return np.round(xy).astype(np.int32).reshape(-1, 1, 2)


def uncertainty_band(centre: np.ndarray, sigma: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Polygon (2P + 1, 2) around the path start -> centre (P, 2), half-width sigma (P,) pixels."""
    path = np.vstack([start[None], centre])
    d = np.gradient(path, axis=0)[1:]
    normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.maximum(np.linalg.norm(d, axis=1), 1e-6)[:, None]
    left = centre + normal * sigma[:, None]
    right = centre - normal * sigma[:, None]
    return np.vstack([start[None], left, right[::-1]])


class Renderer:
    """Keeps each track's recent trail and draws results onto copies of their frames."""

    def __init__(self, fps: float, cfg: RenderConfig | None = None):
        self.cfg = cfg or RenderConfig()
        self.fps = fps
        self.trails: dict[int, deque] = {}

    def _update_trails(self, result: FrameResult) -> None:
        keep = max(2, int(round(self.cfg.trail_s * self.fps)))
        for tid, xy in zip(result.tracks.track_id.tolist(), result.tracks.xy):
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
        current = dict(zip(result.tracks.track_id.tolist(), result.tracks.xy))
        for j, tid in enumerate(fc.track_id.tolist()):
            band = uncertainty_band(fc.xy[j], fc.sigma[j], current[tid])
            cv2.fillPoly(overlay, [_pts(band)], track_colour(tid), cv2.LINE_AA)
        cv2.addWeighted(overlay, self.cfg.band_alpha, img, 1 - self.cfg.band_alpha, 0, dst=img)
        for j, tid in enumerate(fc.track_id.tolist()):
            colour = track_colour(tid)
            if fc.samples is not None:
                for sample in fc.samples[j]:
                    path = np.vstack([current[tid][None], sample])
                    cv2.polylines(img, [_pts(path)], False, colour, 1, cv2.LINE_AA)
            path = np.vstack([current[tid][None], fc.xy[j]])
            for a, b in zip(path[:-1], path[1:]):  # dotted: every segment drawn as short dash
                mid = a + 0.5 * (b - a)
                cv2.line(img, tuple(_pts(a)[0, 0]), tuple(_pts(mid)[0, 0]), (255, 255, 255),
                         self.cfg.line_px + 1, cv2.LINE_AA)
            cv2.circle(img, tuple(_pts(fc.xy[j, -1])[0, 0]), 3, colour, -1, cv2.LINE_AA)
        for tid, trail in self.trails.items():
            if tid not in current or len(trail) < 2:
                continue
            pts = np.array([p for _, p in trail])
            cv2.polylines(img, [_pts(pts)], False, track_colour(tid), self.cfg.line_px, cv2.LINE_AA)
        for tid, box, conf in zip(result.tracks.track_id.tolist(), result.tracks.box_xywh,
                                  result.tracks.conf.tolist()):
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
