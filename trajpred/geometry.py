"""The ground plane: image <-> ground homographies, fitting one, and moving points across it.

A homography H (3x3) maps an image point (u, v) in pixels to a ground-plane point (x, y) in
metres: (x, y, 1) ~ H (u, v, 1). Its inverse maps ground points back into the image. Two facts
about a camera that looks at the ground keep the mapping safe to use on live tracks:

- the horizon is the image line where the third coordinate w = H[2] . (u, v, 1) is 0. An
  upright camera (roll within +-90 degrees) sees the ground *below* its horizon, the side
  towards which w grows with v, i.e. where w has the sign of H[2, 1]. Points on the other side
  map to finite but meaningless ground points ("behind the camera"); points near the horizon
  map to absurdly far ones. `GroundPlane.to_ground` refuses both, naming frame and track.
- going back, the third coordinate of inv(H) (x, y, 1) is proportional to the point's depth in
  front of the camera, with the same factor for every point, and a point's distance below the
  horizon in the image is inversely proportional to its depth. A forecast step at less than
  half the depth of where the track stands now (`MIN_DEPTH_RATIO`) would be drawn more than
  twice as far below the horizon, below the image for any track whose feet are in it, and
  without bound as the depth nears 0 (or behind the camera): `GroundPlane.to_image` holds such
  steps at the last one before them. A noisy velocity towards the camera would otherwise throw
  forecasts thousands of pixels off (measured on synthetic scenes with detector boxes: mean
  FDE up to 2,500 px for single forecasts).
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .errors import InputError, TrajpredError

MAX_GROUND_M = 1e4  # ground points farther than this from the plane's origin are refused
MIN_DEPTH_RATIO = 0.5  # forecast steps closer to the camera than this x the track's depth
MIN_PAIRS = 4
# Four points are taken as collinear when the smallest triangle they form has less than this
# area, relative to the squared largest distance between them. A ground rectangle seen at a
# grazing angle (a far edge 1/10 of the near one) scores about 0.015.
COLLINEAR_AREA = 1e-3
BRUTE_FORCE_PAIRS = 25  # up to this many points every 4-subset is tried, above a greedy pick
MAX_IMAGE_PX = 1e6  # image points farther than this from the origin are not pixels of a frame
# A homography is singular when its smallest singular value is under this x its largest (the
# ratio does not depend on the matrix's scale; an absolute determinant test did).
SINGULAR_RTOL = 1e-12
# H[2, 1] within this x the matrix's largest entry is rounding, not a horizon: a camera that
# looks straight down has none (H[2, 1] = 0), but a matrix computed or fitted for it keeps a
# term of rounding size and random sign there (OpenCV's fit to exact pairs: about 1e-13).
HORIZON_RTOL = 1e-10
MAX_HOMOGRAPHY_BYTES = 1 << 20  # a homography file is 3 rows and a few comment lines


def homography_problem(h) -> str | None:
    """What makes `h` unusable as a homography, as the end of a sentence that starts with
    "homography" (e.g. "is singular ..."), or None. The one check for every homography, read
    from a file or given as an array. A homography is defined up to scale, so the matrix is
    normalised (by its largest absolute entry) before its rank is tested."""
    a = np.asarray(h)
    if a.shape != (3, 3):
        return f"must be a 3x3 matrix, got shape {a.shape}"
    if a.dtype.kind not in "biuf":
        return f"must hold 9 real numbers, got {a.dtype} values"
    a = a.astype(np.float64)
    for i, v in enumerate(a.ravel()):
        if not math.isfinite(v):
            what = "NaN" if math.isnan(v) else "an infinite value"
            return f"holds {what} (row {i // 3 + 1}, column {i % 3 + 1})"
    n = normalised(a)
    s = np.linalg.svd(n, compute_uv=False) if n is not None else np.zeros(3)
    if s[0] == 0 or s[-1] <= SINGULAR_RTOL * s[0]:
        return "is singular (it maps the image onto a line or a point)"
    return None


def check_homography(h, name: str = "homography") -> np.ndarray:
    """`h` as a (3, 3) float64 array once `homography_problem` finds nothing, else ValueError
    naming `name` (the argument): what the Python API runs on a matrix it is given."""
    problem = homography_problem(h)
    if problem:
        raise ValueError(f"{name} {problem}")
    return np.array(h, np.float64)


def normalised(h: np.ndarray) -> np.ndarray | None:
    """h divided by its largest absolute entry (the same homography, entries in [-1, 1]), or
    None for the zero matrix."""
    h = np.asarray(h, np.float64)
    scale = float(np.abs(h).max())
    return h / scale if scale > 0 else None


def read_homography(path: str | os.PathLike) -> np.ndarray:
    """A 3x3 matrix from a text file (whitespace or commas; '#' comments), checked by
    `homography_problem`. Every homography file is read here: any problem is an InputError
    naming the file."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_HOMOGRAPHY_BYTES + 1)
    except OSError as e:
        raise InputError(path, f"cannot read homography ({e.strerror or e})") from None
    if len(data) > MAX_HOMOGRAPHY_BYTES:
        raise InputError(
            path, f"is not a homography (over {MAX_HOMOGRAPHY_BYTES >> 20} MiB; H.txt is 3 rows)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise InputError(
            path,
            "homography is not a text file of 3 rows of 3 numbers (a binary file, e.g. np.save? "
            "write it with np.savetxt)",
        )
    rows = [ln.split("#")[0].replace(",", " ").split() for ln in text.splitlines()]
    try:
        values = [float(v) for row in rows for v in row]
    except ValueError:
        raise InputError(path, "homography must hold 9 numbers") from None
    if len(values) != 9:
        raise InputError(path, f"homography must hold 9 finite numbers, found {len(values)}")
    h = np.array(values).reshape(3, 3)
    problem = homography_problem(h)
    if problem:
        raise InputError(path, f"homography {problem}")
    return h


def visible_side(h: np.ndarray) -> float:
    """The sign of the third coordinate w on the ground side of h's horizon: that of H[2, 1]
    (see the module doc), or 0 (no horizon check) where H[2, 1] is no more than HORIZON_RTOL of
    the largest entry, as for a camera that looks straight down, whose fitted or computed
    matrix keeps a perspective term of rounding size and random sign."""
    n = normalised(h)
    if n is None or abs(n[2, 1]) <= HORIZON_RTOL:
        return 0.0
    return float(np.sign(n[2, 1]))


def format_homography(h: np.ndarray, comment: str = "") -> str:
    """H.txt text: "#" comment lines, then 3 rows of 3 numbers, as read_homography reads."""
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [" ".join(f"{v:.12g}" for v in row) for row in np.asarray(h, np.float64)]
    return "\n".join(lines) + "\n"


def apply_homography(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(..., 2) points -> (..., 2) mapped by the 3x3 matrix h (divided by the third coordinate)."""
    xy = np.asarray(xy, np.float64)
    flat = xy.reshape(-1, 2)
    out = np.column_stack([flat, np.ones(len(flat))]) @ np.asarray(h, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return (out[:, :2] / out[:, 2:3]).reshape(xy.shape)


def third_coordinate(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(...,) the homogeneous w of h (x, y, 1) for (..., 2) points."""
    h = np.asarray(h, np.float64)
    return xy[..., 0] * h[2, 0] + xy[..., 1] * h[2, 1] + h[2, 2]


class GroundPlane:
    """An image -> ground homography in use: pixels to metres for the tracks, metres back to
    pixels for the forecasts, with the checks of the module doc. `name` (the H.txt path) starts
    every error message."""

    def __init__(self, h: np.ndarray, name: str = "homography"):
        problem = homography_problem(h)
        if problem:
            raise TrajpredError(f"{name}: homography {problem}")
        scaled = normalised(h)
        assert scaled is not None  # homography_problem refuses the zero matrix
        self.h = scaled  # the same homography at a scale that cannot overflow
        self.h_inv = np.linalg.inv(self.h)
        self.name = name
        self.visible_sign = visible_side(self.h)  # 0: no horizon check (see visible_side)

    def to_ground(self, xy_px: np.ndarray, frame_id: int, track_id: ArrayLike) -> np.ndarray:
        """(N, 2) bottom centres in pixels on 1-based frame `frame_id` -> (N, 2) metres.

        Raises TrajpredError naming the first point that is non-finite, above the horizon or
        farther than MAX_GROUND_M from the origin."""
        xy_px = np.asarray(xy_px, np.float64).reshape(-1, 2)
        ground = apply_homography(self.h, xy_px)
        w = third_coordinate(self.h, xy_px)
        finite = np.isfinite(ground).all(axis=1)
        dist = np.where(finite, np.linalg.norm(np.where(finite[:, None], ground, 0), axis=1), 0)
        above = w * self.visible_sign < 0 if self.visible_sign else np.zeros(len(w), bool)
        bad = ~finite | above | (dist > MAX_GROUND_M)
        if bad.any():
            j = int(np.argmax(bad))
            u, v = xy_px[j]
            if not finite[j]:
                what = "a non-finite ground point (it lies on the horizon)"
            elif above[j]:
                what = "a point above the horizon (not on the ground)"
            else:
                what = (
                    f"({ground[j, 0]:.4g}, {ground[j, 1]:.4g}) m, {dist[j]:.3g} m from the "
                    f"ground plane's origin (more than {MAX_GROUND_M:g} m; world points must be "
                    f"local metres)"
                )
            raise TrajpredError(
                f"{self.name}: frame {frame_id}, track {int(np.asarray(track_id)[j])}: bottom "
                f"centre ({u:.1f}, {v:.1f}) px maps to {what}; is it an image -> ground "
                f"homography in metres for this video?"
            )
        return ground

    def image_jacobian(self, xy_px: np.ndarray) -> np.ndarray:
        """(N, 2, 2) derivative of the image -> ground map at (N, 2) pixels: metres per pixel,
        d(x, y) / d(u, v)."""
        xy_px = np.asarray(xy_px, np.float64).reshape(-1, 2)
        ground = apply_homography(self.h, xy_px)
        w = third_coordinate(self.h, xy_px)
        # d/du of (h0 . p) / (h2 . p) = (h0[0] - x * h2[0]) / w, and likewise for v and y.
        return (self.h[None, :2, :2] - ground[:, :, None] * self.h[None, 2:3, :2]) / w[
            :, None, None
        ]

    def to_image(self, ground_xy: np.ndarray, here_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forecast points (M, ..., P, 2) in metres -> (pixels (M, ..., P, 2), valid (M, ..., P)).

        here_xy (M, 2): each track's current ground position, seen by the camera. A step is
        valid when its depth is at least MIN_DEPTH_RATIO of the track's current depth; every
        invalid step is replaced by the last valid one before it (the track's current position
        when none), so the forecast stops where it would leave the camera's view of the ground
        and every point is finite."""
        ground_xy = np.asarray(ground_xy, np.float64)
        m, p = ground_xy.shape[0], ground_xy.shape[-2]
        flat = ground_xy.reshape(m, int(np.prod(ground_xy.shape[1:-2])), p, 2)  # (M, S, P, 2)
        here = np.asarray(here_xy, np.float64).reshape(m, 2)
        depth = (
            third_coordinate(self.h_inv, flat) / third_coordinate(self.h_inv, here)[:, None, None]
        )
        px = apply_homography(self.h_inv, flat)
        valid = (depth > MIN_DEPTH_RATIO) & np.isfinite(px).all(axis=-1)
        out = np.empty_like(px)
        last = np.broadcast_to(apply_homography(self.h_inv, here)[:, None], (m, flat.shape[1], 2))
        for s in range(p):  # P = pred_len (12): carry the last valid point forward
            last = np.where(valid[:, :, s, None], px[:, :, s], last)
            out[:, :, s] = last
        return out.reshape(ground_xy.shape), valid.reshape(ground_xy.shape[:-1])

    def pixels_per_metre(self, ground_xy: np.ndarray) -> np.ndarray:
        """(...,) local scale of the ground -> image map at (..., 2) ground points: the square
        root of its Jacobian's determinant, |det inv(H)| / |w|**3 for a homography. A circle of
        radius r metres there maps to an ellipse with the area of a circle of r * scale pixels:
        one number per point, whatever the direction (the band drawn around a forecast has one
        half-width per step)."""
        w = third_coordinate(self.h_inv, np.asarray(ground_xy, np.float64))
        with np.errstate(divide="ignore"):
            return np.sqrt(abs(np.linalg.det(self.h_inv)) / np.abs(w) ** 3)


# ------------------------------------------------------------------------------ fitting


@dataclass
class HomographyFit:
    """A fitted image -> ground homography h (3x3) and, per pair, the distance in metres
    between the mapped image point and its world point (errors_m, (N,))."""

    h: np.ndarray
    errors_m: np.ndarray

    @property
    def rms_m(self) -> float:
        return float(np.sqrt(np.mean(self.errors_m**2)))

    @property
    def max_m(self) -> float:
        return float(self.errors_m.max())


def _general_position(xy: np.ndarray) -> bool:
    """Whether 4 of the points have no 3 on one line (up to COLLINEAR_AREA), the condition for
    a homography to be determined. Tries every 4-subset of up to BRUTE_FORCE_PAIRS points,
    otherwise a greedy spread-out quadrilateral."""
    diam2 = max(float(((xy[:, None] - xy[None]) ** 2).sum(-1).max()), 1e-300)
    if len(xy) <= BRUTE_FORCE_PAIRS:
        quads = np.array(list(itertools.combinations(range(len(xy)), 4)))
    else:
        d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
        a, b = np.unravel_index(np.argmax(d), d.shape)
        c = int(np.argmax(np.abs(_area(xy[a], xy[b], xy))))
        e = int(
            np.argmax(
                np.minimum.reduce(
                    [np.abs(_area(xy[i], xy[j], xy)) for i, j in ((a, b), (a, c), (b, c))]
                )
            )
        )
        quads = np.array([[a, b, c, e]])
    q = xy[quads]  # (Q, 4, 2)
    areas = [
        np.abs(_area(q[:, i], q[:, j], q[:, k])) for i, j, k in itertools.combinations(range(4), 3)
    ]
    return bool((np.minimum.reduce(areas) / diam2 >= COLLINEAR_AREA).any())


def _area(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Signed area of triangles (a, b, c), points (..., 2)."""
    return 0.5 * (
        (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
        - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
    )


def fit_homography(image_xy: np.ndarray, world_xy: np.ndarray) -> HomographyFit:
    """Least-squares image -> ground homography (OpenCV's DLT on all pairs) from point pairs:
    image_xy (N, 2) pixels, world_xy (N, 2) metres. Raises TrajpredError for fewer than 4
    pairs, counts that differ, non-finite values, points with no 4 in general position (in the
    image or on the ground), world points beyond MAX_GROUND_M, and a fit that puts some image
    points above its own horizon (pairs given in inconsistent orders)."""
    import cv2

    image_xy = np.asarray(image_xy, np.float64)
    world_xy = np.asarray(world_xy, np.float64)
    if image_xy.ndim != 2 or image_xy.shape[1:] != (2,) or world_xy.shape[1:] != (2,):
        raise TrajpredError("points must be x,y pairs")
    if len(image_xy) != len(world_xy):
        raise TrajpredError(
            f"{len(image_xy)} image points but {len(world_xy)} world points: give one world "
            f"point per image point, in the same order"
        )
    if len(image_xy) < MIN_PAIRS:
        raise TrajpredError(f"{len(image_xy)} point pairs: a homography needs at least {MIN_PAIRS}")
    if not (np.isfinite(image_xy).all() and np.isfinite(world_xy).all()):
        raise TrajpredError("points must be finite numbers")
    if np.abs(image_xy).max() > MAX_IMAGE_PX:
        raise TrajpredError(
            f"image points must be pixels of a frame, within {MAX_IMAGE_PX:g} of its top left "
            f"corner"
        )
    if np.abs(world_xy).max() > MAX_GROUND_M:
        raise TrajpredError(
            f"world points must be local metres, within {MAX_GROUND_M:g} m of their origin "
            f"(measure them from a point in view, not in map coordinates)"
        )
    for name, xy in (("image", image_xy), ("world", world_xy)):
        with np.errstate(all="ignore"):  # bounded above; an underflow is only a tiny area
            general = _general_position(xy)
        if not general:
            raise TrajpredError(
                f"the {name} points are (nearly) collinear: need 4 points with no 3 on one line "
                f"(e.g. the corners of a floor area, not points along one lane line)"
            )
    with np.errstate(all="ignore"):  # non-finite results are checked below, not warned about
        h, _ = cv2.findHomography(image_xy, world_xy, 0)
        if h is None or not np.isfinite(h).all() or homography_problem(h):
            raise TrajpredError("no homography fits these points (degenerate configuration)")
        errors = np.linalg.norm(apply_homography(h, image_xy) - world_xy, axis=1)
        # Pairs that an affine map (no perspective: a camera looking straight down) fits as
        # well have no horizon; OpenCV's iterative fit would leave a perspective term of
        # rounding size there whose sign decides a horizon that does not exist.
        affine, affine_errors = _fit_affine(image_xy, world_xy)
        if affine_errors.max() <= max(errors.max(), 1e-9 * np.ptp(world_xy, axis=0).max()):
            h, errors = affine, affine_errors
        w = third_coordinate(h, image_xy)
        side = w * visible_side(h) if visible_side(h) else w * np.sign(w[0])
        if not (np.isfinite(errors).all() and (side > 0).all()):
            raise TrajpredError(
                "the fitted homography puts some image points above its horizon, where no "
                "ground is seen: are the world points in the same order as the image points?"
            )
        n = normalised(h)
        assert n is not None  # homography_problem refused the zero matrix
        fitted = h / h[2, 2] if abs(n[2, 2]) > 1e-12 else n
    return HomographyFit(fitted, errors)


def _fit_affine(image_xy: np.ndarray, world_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares affine image -> ground map as a 3x3 homography (third row 0, 0, 1), and
    its error per pair in metres."""
    centre = image_xy.mean(axis=0)  # centred for conditioning
    a = np.column_stack([image_xy - centre, np.ones(len(image_xy))])
    m, *_ = np.linalg.lstsq(a, world_xy, rcond=None)  # (3, 2): world = [u', v', 1] @ m
    h = np.eye(3)
    h[:2, :2] = m[:2].T
    h[:2, 2] = m[2] - m[:2].T @ centre
    return h, np.linalg.norm(apply_homography(h, image_xy) - world_xy, axis=1)
