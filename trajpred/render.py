"""Drawing a FrameResult: the annotated frames of `predict`'s video.

`Renderer.draw(result)` draws a FrameResult on a copy of its frame:
- box and id label: one colour per track id;
- trail: the track's bottom centre over the last `trail_s` seconds, a solid line;
- forecast: a dashed line with white dots at the predicted bottom centres, inside a translucent
  band whose half-width is the forecast's calibrated radius `r50` at each step (the circle that
  holds half of the true positions, so it widens with the horizon), plus thin lines for sampled
  trajectories when --k > 0;
- a legend line in the bottom-left corner saying what the band is (LEGEND);
- with zones (`predict --zones`): each zone's outline and each line, named, and every track
  with an event at least `events.alert` likely tinted (amber at the alert level to red at
  certainty) and labelled with its most likely event ("crossing 78% in 1.6s").
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from .checks import between, check_fields
from .results import FrameEvents, FrameResult
from .zones import ZoneSet


@dataclass
class RenderConfig:
    trail_s: float = 2.0  # seconds of past trail drawn per track
    band_alpha: float = 0.25  # opacity of the forecast's uncertainty band
    line_px: int = 2
    video: bool = True  # write annotated.mp4 (false: the CSV files only, --no-video)

    def __post_init__(self) -> None:
        check_fields(self, trail_s=between(0, 60), band_alpha=between(0, 1), line_px=between(1, 50))


FONT = cv2.FONT_HERSHEY_SIMPLEX
LEGEND = "band: 50% of true positions fall inside (r50)"
ZONE_COLOUR = (255, 255, 0)  # BGR cyan: zones and lines, apart from the tracks' colours


@functools.lru_cache(maxsize=4096)
def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour per id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    bgr = cv2.cvtColor(np.array([[[hue, 220, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


@functools.lru_cache(maxsize=4096)
def _text_size(label: str) -> tuple[tuple[int, int], int]:
    """cv2.getTextSize of an id label at the label font (cached: it was a tenth of drawing)."""
    (w, h), base = cv2.getTextSize(label, FONT, 0.4, 1)
    return (int(w), int(h)), int(base)


def _overlap_groups(rects: np.ndarray) -> list[tuple[list[int], tuple[int, int, int, int]]]:
    """(M, 4) x0, y0, x1, y1 rectangles -> groups of indices (ascending) whose rectangles
    overlap, directly or through others, each with the rectangle that covers the group."""
    groups: list[tuple[list[int], tuple[int, int, int, int]]] = [
        ([j], (int(r[0]), int(r[1]), int(r[2]), int(r[3]))) for j, r in enumerate(rects)
    ]
    merged = True
    while merged:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                (ma, ra), (mb, rb) = groups[a], groups[b]
                if ra[0] < rb[2] and rb[0] < ra[2] and ra[1] < rb[3] and rb[1] < ra[3]:
                    cover = (
                        min(ra[0], rb[0]),
                        min(ra[1], rb[1]),
                        max(ra[2], rb[2]),
                        max(ra[3], rb[3]),
                    )
                    groups[a] = (sorted(ma + mb), cover)  # fill order as without groups
                    del groups[b]
                    merged = True
                    break
            if merged:
                break
    return groups


def _pts(xy: np.ndarray) -> np.ndarray:
    """(N, 2) float pixels -> (N, 1, 2) int32, the layout cv2.polylines/fillPoly take."""
    return np.round(xy).astype(np.int32).reshape(-1, 1, 2)


def uncertainty_band(centre: np.ndarray, radius: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Polygon (..., 2P + 1, 2) around the path start (..., 2) -> centre (..., P, 2), half-width
    radius (..., P) pixels; leading dimensions are tracks, all done at once."""
    path = np.concatenate([start[..., None, :], centre], axis=-2)
    d = np.gradient(path, axis=-2)[..., 1:, :]
    normal = (
        np.stack([-d[..., 1], d[..., 0]], -1)
        / np.maximum(np.linalg.norm(d, axis=-1), 1e-6)[..., None]
    )
    left = centre + normal * radius[..., None]
    right = centre - normal * radius[..., None]
    return np.concatenate([start[..., None, :], left, right[..., ::-1, :]], axis=-2)


class Renderer:
    """Keeps each track's recent trail and draws results onto copies of their frames."""

    def __init__(
        self,
        fps: float,
        cfg: RenderConfig | None = None,
        zones: ZoneSet | None = None,
        alert: float = 0.5,
    ):
        self.cfg = cfg or RenderConfig()
        self.fps = fps
        self.trails: dict[int, deque] = {}
        self.zones, self.alert = zones, alert

    def _update_trails(self, result: FrameResult) -> None:
        keep = max(2, int(round(self.cfg.trail_s * self.fps)))
        for tid, xy in zip(result.tracks.track_id.tolist(), result.tracks.xy, strict=False):
            self.trails.setdefault(tid, deque(maxlen=keep)).append((result.frame_id, xy))
        # Trails of tracks gone for longer than the trail itself are forgotten.
        for tid in [t for t, d in self.trails.items() if result.frame_id - d[-1][0] > keep]:
            del self.trails[tid]

    def draw(self, result: FrameResult, in_place: bool = False) -> np.ndarray:
        """(H, W, 3) uint8 BGR annotated copy of result.image; with in_place, result.image
        itself is drawn on and returned (the writer process owns its frame: no copy)."""
        self._update_trails(result)
        img = result.image if in_place else result.image.copy()
        fc = result.forecasts
        if self.zones is not None:
            self._zones(img)
        current = dict(zip(result.tracks.track_id.tolist(), result.tracks.xy, strict=False))
        if len(fc):
            starts = np.array([current[tid] for tid in fc.track_id.tolist()])
            bands = np.round(uncertainty_band(fc.xy, fc.r50, starts)).astype(np.int32)
            self._blend_bands(img, bands, fc.track_id.tolist())
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
        if fc.events is not None and len(fc.events):
            self._alerts(img, fc.events, result)
        if len(fc):
            self._legend(img)
        return img

    def _legend(self, img: np.ndarray) -> None:
        """LEGEND in white on a dark strip, bottom left."""
        (tw, th), base = _text_size(LEGEND)
        h = img.shape[0]
        cv2.rectangle(img, (0, h - th - base - 6), (tw + 8, h), (40, 40, 40), -1)
        cv2.putText(img, LEGEND, (4, h - base - 3), FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)

    def _blend_bands(self, img: np.ndarray, bands: np.ndarray, track_ids: list[int]) -> None:
        """Fill the band polygons (M, V, 2) into an overlay and blend it at band_alpha.

        Only the rectangles that hold bands are copied and blended (the full-frame copy and
        blend were a third of drawing); bands whose rectangles overlap share one rectangle,
        filled in track order, so each pixel is blended once and the result equals blending
        the whole frame (tests/test_render.py)."""
        h, w = img.shape[:2]
        lo = np.maximum(bands.min(1) - 2, 0)  # (M, 2); 2 px more for the anti-aliased edge
        hi = np.minimum(bands.max(1) + 3, (w, h))
        for members, (x0, y0, x1, y1) in _overlap_groups(np.concatenate([lo, hi], 1)):
            if x1 <= x0 or y1 <= y0:
                continue
            roi = img[y0:y1, x0:x1]
            overlay = roi.copy()
            for j in members:
                cv2.fillPoly(
                    overlay,
                    [bands[j][:, None]],
                    track_colour(track_ids[j]),
                    cv2.LINE_AA,
                    offset=(-x0, -y0),
                )
            alpha = self.cfg.band_alpha
            cv2.addWeighted(overlay, alpha, roi, 1 - alpha, 0, dst=roi)

    def _zones(self, img: np.ndarray) -> None:
        """Zone outlines and lines, each named at its first point; a line's "in" side is marked
        by a short tick from its middle."""
        assert self.zones is not None
        w = self.cfg.line_px
        for zone in self.zones.zones:
            if zone.image is not None:
                cv2.polylines(img, [_pts(zone.image)], True, ZONE_COLOUR, w, cv2.LINE_AA)
                self._name(img, zone.name, zone.image[np.argmin(zone.image[:, 1])])
        for line in self.zones.lines:
            if line.image is not None:
                a, b = line.image
                cv2.line(
                    img, tuple(_pts(a)[0, 0]), tuple(_pts(b)[0, 0]), ZONE_COLOUR, w, cv2.LINE_AA
                )
                d = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
                mid = (a + b) / 2
                tick = mid + 12 * np.array([d[1], -d[0]])  # the negative side: "in"
                cv2.arrowedLine(img, tuple(_pts(mid)[0, 0]), tuple(_pts(tick)[0, 0]), ZONE_COLOUR,
                                1, cv2.LINE_AA, tipLength=0.4)  # fmt: skip
                self._name(img, f"{line.name} (in)", a)

    @staticmethod
    def _name(img: np.ndarray, name: str, at: np.ndarray) -> None:
        x, y = int(round(at[0])), int(round(at[1]))
        cv2.putText(img, name, (x + 3, y - 4), FONT, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, name, (x + 3, y - 4), FONT, 0.45, ZONE_COLOUR, 1, cv2.LINE_AA)

    def _alerts(self, img: np.ndarray, events: FrameEvents, result: FrameResult) -> None:
        """Tint each track whose most likely event is at least `alert` likely, and label it."""
        boxes = dict(zip(result.tracks.track_id.tolist(), result.tracks.box_xywh, strict=False))
        order = np.lexsort((-events.probability, events.track_id))  # each track's most likely first
        seen: set[int] = set()
        for e in order.tolist():
            tid = int(events.track_id[e])
            if tid in seen or events.probability[e] < self.alert or tid not in boxes:
                continue
            seen.add(tid)
            # amber at the alert level, red at certainty
            level = (events.probability[e] - self.alert) / max(1 - self.alert, 1e-6)
            colour = (0, int(round(190 * (1 - level))), 255)
            x, y, w, h = boxes[tid]
            x0, y0, x1, y1 = (int(round(v)) for v in (x, y, x + w, y + h))
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, self.cfg.line_px + 2)
            label = events.label(e)
            (tw, th), base = _text_size(label)
            cv2.rectangle(img, (x0, y1), (x0 + tw + 4, y1 + th + base + 2), colour, -1)
            cv2.putText(img, label, (x0 + 2, y1 + th + 1), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)

    def _box(self, img: np.ndarray, tid: int, box: np.ndarray) -> None:
        colour = track_colour(tid)
        x0, y0 = int(round(box[0])), int(round(box[1]))
        x1, y1 = int(round(box[0] + box[2])), int(round(box[1] + box[3]))
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, self.cfg.line_px)
        label = str(tid)
        (tw, th), base = _text_size(label)
        cv2.rectangle(img, (x0, y0 - th - base - 2), (x0 + tw + 4, y0), colour, -1)
        cv2.putText(img, label, (x0 + 2, y0 - base - 1), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
