"""A synthetic world with exact ground truth: pedestrians on a ground plane seen by a fixed camera.

World frame: metres, x to the right of the camera, y forward (away from the camera), z up; the
ground is z = 0 and the camera stands at (0, 0, camera.height_m), pitched down by
camera.tilt_deg. Image frame: pixels, u right, v down, pixel centres at whole numbers (OpenCV).
`Camera.world_to_image` is the 3x3 homography ground (x, y, 1) -> image (u, v, 1);
`Camera.image_to_world` is its inverse (what homography.txt holds, as in ETH/UCY).

People are drawn as upright figures (see `figure_layout`): feet at the projection of their
ground position, head top at the projection of the point `height_m` above it, so a person's
box is exact: its bottom centre is the feet, its top the head.

`simulate(cfg)` runs the crowd at the video frame rate (goal-directed walkers with bounded
turn rate and acceleration, stops, social-force avoidance, people entering and leaving through
the area's borders) and returns a `SynthScene`; `trajpred.synth.render` draws it and writes
the files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..checks import SEED_MAX, between, check_fields, positive, require
from ..tracks import Tracks, bottom_centre
from .crowd import run_crowd


@dataclass
class CameraConfig:
    """The fixed camera: where it stands and where it looks (see the module doc for axes)."""

    height_m: float = 8.0  # camera centre above the ground
    tilt_deg: float = 40.0  # pitch below the horizon
    hfov_deg: float = 60.0  # horizontal field of view
    roll_deg: float = 0.0
    max_depth_m: float = 30.0  # people walk no farther than this (ground distance along y)

    def __post_init__(self) -> None:
        check_fields(
            self,
            height_m=between(0.5, 1000, low_open=True),
            tilt_deg=between(5, 80),
            hfov_deg=between(10, 120),
            roll_deg=between(-180, 180),
            max_depth_m=between(0, 1000, low_open=True),
        )


@dataclass
class SynthConfig:
    """Settings of `simulate`; configs/synth.yaml lists the same defaults."""

    width: int = 640  # video size in pixels (even numbers, for mp4v)
    height: int = 384
    fps: float = 10.0  # video frame rate; the crowd is simulated at this rate
    duration_s: float = 30.0
    seed: int = 0
    world_dt_s: float = 0.4  # step of the world ground truth (ETH/UCY: 0.4 s)
    n_agents: int = 20  # target number of people in the walkable area
    spawn_rate_per_s: float = 1.0  # arrivals through the borders while below n_agents
    area_margin_m: float = 2.0  # walkable area = the camera's ground footprint + margin
    n_points_of_interest: int = 3  # places inside the area people walk to before leaving
    poi_prob: float = 0.35  # chance that a person visits one before leaving
    speed_mean_mps: float = 1.3  # preferred walking speed ~ N(mean, std), clipped
    speed_std_mps: float = 0.25
    speed_min_mps: float = 0.6
    speed_max_mps: float = 2.0
    max_turn_deg_s: float = 90.0  # bound on how fast anyone turns
    wander_deg: float = 10.0  # slow random drift of the walking direction (std)
    max_accel_mps2: float = 1.0
    stop_rate_per_s: float = 0.015  # chance per second that a walker stops for a while
    stop_min_s: float = 2.0
    stop_max_s: float = 6.0
    avoidance: float = 1.0  # strength of the social-force push between people
    person_height_m: float = 1.75  # mean body height; std person_height_std_m
    person_height_std_m: float = 0.07
    min_box_height_px: float = 8.0  # smaller (or less visible area) -> not in ground truth
    min_visible_area_px: float = 60.0
    substep_s: float = 0.05  # longest simulation step
    camera: CameraConfig = field(default_factory=CameraConfig)
    # Structure that bends paths (off by default). Positions are fractions of the walkable area.
    obstacle_radius_m: float = 0.0  # > 0: a round obstacle everyone walks around ...
    obstacle_x: float = 0.5  # ... centred here
    obstacle_y: float = 0.5
    gate_y: float = 0.0  # > 0: a wall across the area at this depth, passable only through ...
    gate_x: float = 0.5  # ... one opening centred here ...
    gate_width_m: float = 2.5  # ... this wide
    # A second kind of agent (class 1 in the ground truth; drawn as people in the video).
    cyclist_share: float = 0.0  # share of arrivals who ride: faster, turn more slowly, ...
    cyclist_speed_mps: float = 3.0  # ... never stop and visit no point of interest
    cyclist_speed_std_mps: float = 0.4
    cyclist_speed_max_mps: float = 4.5
    cyclist_turn_deg_s: float = 30.0

    def __post_init__(self) -> None:
        check_fields(
            self,
            width=between(32, 7680),
            height=between(32, 4320),
            fps=between(0, 240, low_open=True),
            duration_s=between(0, 3600, low_open=True),
            seed=between(0, SEED_MAX),
            world_dt_s=positive(),
            n_agents=between(0, 1000),
            spawn_rate_per_s=between(0, 100),
            area_margin_m=between(0, 100),
            n_points_of_interest=between(0, 100),
            poi_prob=between(0, 1),
            speed_mean_mps=between(0, 10),
            speed_std_mps=between(0, 10),
            speed_min_mps=between(0, 10, low_open=True),
            speed_max_mps=between(0, 10, low_open=True),
            max_turn_deg_s=between(0, 3600, low_open=True),
            wander_deg=between(0, 360),
            max_accel_mps2=between(0, 100, low_open=True),
            stop_rate_per_s=between(0, 10),
            stop_min_s=between(0, 3600),
            stop_max_s=between(0, 3600),
            avoidance=between(0, 100),
            person_height_m=between(0.5, 3, low_open=True, high_open=True),
            person_height_std_m=between(0, 1),
            min_box_height_px=between(0),
            min_visible_area_px=between(0),
            substep_s=between(0.001, 1),
            obstacle_radius_m=between(0, 100),
            obstacle_x=between(0, 1),
            obstacle_y=between(0, 1),
            gate_y=between(0, 1, high_open=True),
            gate_x=between(0, 1),
            gate_width_m=between(0, 100, low_open=True),
            cyclist_share=between(0, 1),
            cyclist_speed_mps=between(0, 30),
            cyclist_speed_std_mps=between(0, 30),
            cyclist_speed_max_mps=between(0, 30, low_open=True),
            cyclist_turn_deg_s=between(0, 3600, low_open=True),
        )
        require(self.width % 2 == 0, "width", f"must be even (mp4v), got {self.width}")
        require(self.height % 2 == 0, "height", f"must be even (mp4v), got {self.height}")
        require(
            self.world_dt_s * self.fps >= 1 - 1e-9,
            "world_dt_s",
            f"must be at least one frame (1 / fps = {1 / self.fps:g} s), got {self.world_dt_s:g}",
        )
        require(
            self.speed_min_mps <= self.speed_max_mps,
            "speed_min_mps",
            f"must be <= speed_max_mps ({self.speed_max_mps:g}), got {self.speed_min_mps:g}",
        )
        require(
            self.stop_min_s <= self.stop_max_s,
            "stop_min_s",
            f"must be <= stop_max_s ({self.stop_max_s:g}), got {self.stop_min_s:g}",
        )
        vfov_half = math.degrees(
            math.atan(self.height / self.width * math.tan(math.radians(self.camera.hfov_deg / 2)))
        )
        require(
            self.camera.tilt_deg + vfov_half < 89,
            "camera.tilt_deg",
            f"with camera.hfov_deg {self.camera.hfov_deg:g} puts the image bottom behind the "
            f"camera (got {self.camera.tilt_deg:g}); lower one of them",
        )
        nearest = self.camera.height_m / math.tan(math.radians(self.camera.tilt_deg + vfov_half))
        require(
            self.camera.max_depth_m > nearest,
            "camera.max_depth_m",
            f"must reach past the image bottom ({nearest:.1f} m), got {self.camera.max_depth_m:g}",
        )

    @property
    def n_frames(self) -> int:
        return max(1, round(self.duration_s * self.fps))


@dataclass(frozen=True)
class Camera:
    """A pinhole camera above the ground plane (no lens distortion).

    K: (3, 3) intrinsics; R: (3, 3) world -> camera rotation; t: (3,) translation, so a world
    point X (metres) is at R @ X + t in camera coordinates (x right, y down, z forward).
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    @classmethod
    def from_config(cls, cfg: CameraConfig, width: int, height: int) -> Camera:
        f = (width / 2) / math.tan(math.radians(cfg.hfov_deg) / 2)
        K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
        s, c = math.sin(math.radians(cfg.tilt_deg)), math.cos(math.radians(cfg.tilt_deg))
        # Rows: camera right, down and forward axes in world coordinates.
        tilt = np.array([[1, 0, 0], [0, -s, -c], [0, c, -s]], dtype=np.float64)
        sr, cr = math.sin(math.radians(cfg.roll_deg)), math.cos(math.radians(cfg.roll_deg))
        roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
        R = roll @ tilt
        t = -R @ np.array([0.0, 0.0, cfg.height_m])
        return cls(K, R, t, width, height)

    @property
    def projection(self) -> np.ndarray:
        """(3, 4) world (x, y, z, 1) -> image (u, v, 1) up to scale."""
        return self.K @ np.hstack([self.R, self.t[:, None]])

    @property
    def world_to_image(self) -> np.ndarray:
        """(3, 3) homography ground (x, y, 1) metres -> image (u, v, 1) pixels."""
        return self.K @ np.column_stack([self.R[:, 0], self.R[:, 1], self.t])

    @property
    def image_to_world(self) -> np.ndarray:
        """(3, 3) homography image (u, v, 1) pixels -> ground (x, y, 1) metres."""
        return np.linalg.inv(self.world_to_image)

    def project(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) world points -> (N, 2) pixels and (N,) depth along the optical axis (metres)."""
        cam = np.asarray(xyz, np.float64) @ self.R.T + self.t
        z = cam[:, 2]
        uv = (cam @ self.K.T)[:, :2] / np.where(np.abs(z) > 1e-9, z, 1e-9)[:, None]
        return uv, z

    def ground_rays(self, uv: np.ndarray) -> np.ndarray:
        """(N, 2) pixels -> (N, 3) world directions of the rays through them (not unit)."""
        m = np.linalg.inv(self.K).T @ self.R  # (u, v, 1) @ m = ray
        # Written out per column: a BLAS matmul of a tall (N, 3) array is far slower here.
        return uv[:, :1] * m[0] + uv[:, 1:2] * m[1] + m[2]


@dataclass(frozen=True)
class Area:
    """The walkable rectangle on the ground, metres."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def contains(self, xy: np.ndarray, pad_m: float = 0.0) -> np.ndarray:
        """(N, 2) points -> (N,) bool, inside the rectangle grown by pad_m."""
        return (
            (xy[:, 0] >= self.x_min - pad_m)
            & (xy[:, 0] <= self.x_max + pad_m)
            & (xy[:, 1] >= self.y_min - pad_m)
            & (xy[:, 1] <= self.y_max + pad_m)
        )


def walkable_area(camera: Camera, cam_cfg: CameraConfig, margin_m: float) -> Area:
    """The bounding rectangle of the image's ground footprint up to max_depth_m, plus margin."""
    w, h = camera.width - 1, camera.height - 1
    k = np.linspace(0, 1, 33)
    border = np.concatenate(
        [
            np.column_stack([k * w, np.zeros_like(k)]),
            np.column_stack([k * w, np.full_like(k, h)]),
            np.column_stack([np.zeros_like(k), k * h]),
            np.column_stack([np.full_like(k, w), k * h]),
        ]
    )
    rays = camera.ground_rays(border)
    hit = rays[:, 2] < -1e-9  # rays that reach the ground (a low camera sees the sky too)
    xy = np.zeros((len(rays), 2))
    xy[hit] = rays[hit, :2] * (cam_cfg.height_m / -rays[hit, 2])[:, None]
    far = ~hit | (xy[:, 1] > cam_cfg.max_depth_m)
    # Rays that miss the ground or land beyond max_depth_m: where they cross y = max_depth_m.
    xy[far] = np.column_stack(
        [rays[far, 0] / rays[far, 1] * cam_cfg.max_depth_m, np.full(far.sum(), cam_cfg.max_depth_m)]
    )
    lo, hi = xy.min(axis=0) - margin_m, xy.max(axis=0) + margin_m
    return Area(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


@dataclass(frozen=True)
class FigureShape:
    """A drawn person, as fractions of its image height h (feet at v, head top at v - h)."""

    head_r: float = 0.068
    torso_cy: float = 0.63  # torso ellipse centre above the feet
    torso_ry: float = 0.19
    torso_rx: float = 0.125  # times the person's width_scale
    hip_y: float = 0.47
    hip_dx: float = 0.05  # half the gap between the legs seen from the front
    leg_w: float = 0.075  # horizontal thickness of a leg
    leg_swing: float = 0.11  # foot offset at full stride seen from the side
    shoulder_y: float = 0.78
    shoulder_dx: float = 0.105  # times width_scale
    hand_y: float = 0.43
    arm_w: float = 0.05
    arm_swing: float = 0.05


FIGURE = FigureShape()


def figure_layout(h_px: np.ndarray, width_scale: np.ndarray, swing: np.ndarray) -> dict:
    """Horizontal offsets (pixels, right of the feet; the figure is mirror-symmetric) of the parts.

    h_px, width_scale, swing: (N,) arrays; swing in [-1, 1] is the stride seen in the image.
    Returns (N,) arrays: foot_dx, hip_dx, shoulder_dx, hand_dx, torso_rx, half_width; half_width
    bounds every part, so the figure's box is [u - half_width, v - h, 2 * half_width, h].
    """
    f = FIGURE
    foot = h_px * (f.hip_dx * (1 - np.abs(swing)) + f.leg_swing * swing)
    hip = h_px * f.hip_dx
    shoulder = h_px * f.shoulder_dx * width_scale
    hand = shoulder + h_px * (0.01 - f.arm_swing * swing)
    torso = h_px * f.torso_rx * width_scale
    half = np.maximum.reduce(
        [
            np.abs(foot) + h_px * f.leg_w / 2,
            hip + h_px * f.leg_w / 2,
            np.abs(hand) + h_px * f.arm_w / 2,
            shoulder + h_px * f.arm_w / 2,
            torso,
            np.full_like(h_px, f.head_r) * h_px,
        ]
    )
    return dict(
        foot_dx=foot,
        hip_dx=hip,
        shoulder_dx=shoulder,
        hand_dx=hand,
        torso_rx=torso,
        half_width=half,
    )


@dataclass
class SynthScene:
    """A simulated scene: one row per (frame, person in the walkable area), sorted by frame.

    Per row (N rows): person_id (N,) int64, 1-based, the track id in every ground-truth file;
    world_xy_m (N, 2) ground position in metres; heading_rad (N,), speed_mps (N,);
    swing (N,) stride seen in the image in [-1, 1]; box_xywh (N, 4) the drawn figure's full box
    (left, top, width, height, pixels, may leave the image); depth_m (N,) camera depth of the feet
    (larger = farther; drawing goes far to near); gt_box_xywh (N, 4) box clipped to the image;
    visibility (N,) in [0, 1]: the share of the full box inside the image and not covered by the
    boxes of nearer people; in_gt (N,) bool: the person is in the ground truth on that frame
    (in front of the camera, clipped box at least min_box_height_px tall and
    min_visible_area_px in area; occluded people stay in, with their visibility).
    frame_start (n_frames + 1,): rows of frame t (0-based) are frame_start[t]:frame_start[t + 1].
    Per person (P people, index person_id - 1): height_m (P,), width_scale (P,),
    colours_bgr (P, 4, 3) uint8: shirt, trousers, skin, hair; class_id (P,) 0 walker,
    1 cyclist (cfg.cyclist_share; only the ground truth tells them apart, not the video).
    """

    cfg: SynthConfig
    camera: Camera
    area: Area
    points_of_interest: np.ndarray
    frame_start: np.ndarray
    person_id: np.ndarray
    world_xy_m: np.ndarray
    heading_rad: np.ndarray
    speed_mps: np.ndarray
    swing: np.ndarray
    box_xywh: np.ndarray
    depth_m: np.ndarray
    gt_box_xywh: np.ndarray
    visibility: np.ndarray
    in_gt: np.ndarray
    height_m: np.ndarray
    width_scale: np.ndarray
    colours_bgr: np.ndarray
    class_id: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.frame_start) - 1

    @property
    def frame_index(self) -> np.ndarray:
        """(N,) 0-based video frame of each row."""
        return np.repeat(np.arange(self.n_frames), np.diff(self.frame_start))

    def frame_rows(self, t: int) -> slice:
        return slice(int(self.frame_start[t]), int(self.frame_start[t + 1]))

    def world_frame_ids(self) -> np.ndarray:
        """1-based video frames of the world ground truth, one every world_dt_s (nearest frame)."""
        step = self.cfg.world_dt_s * self.cfg.fps
        return np.unique(1 + np.round(np.arange(0, self.n_frames, step)).astype(np.int64))

    def mot_tracks(self) -> Tracks:
        """Image ground truth: clipped boxes of the rows in_gt, 1-based frames, class_id (0
        person, 1 cyclist)."""
        rows = np.flatnonzero(self.in_gt)
        box = self.gt_box_xywh[rows]
        return Tracks(
            self.frame_index[rows] + 1,
            self.person_id[rows],
            bottom_centre(box),
            box,
            self.class_id[self.person_id[rows] - 1],
            np.ones(len(rows)),
            units="px",
            source="gt_mot.txt",
        )

    def world_tracks(self) -> Tracks:
        """World ground truth (metres) every world_dt_s, for the people in the image then."""
        rows = np.flatnonzero(self.in_gt & np.isin(self.frame_index + 1, self.world_frame_ids()))
        return Tracks(
            self.frame_index[rows] + 1,
            self.person_id[rows],
            self.world_xy_m[rows],
            class_id=self.class_id[self.person_id[rows] - 1],
            units="m",
            source="gt_world.txt",
        )


def simulate(cfg: SynthConfig) -> SynthScene:
    """Run the crowd for cfg.duration_s and compute every person's box and visibility.

    Deterministic: the same cfg gives the same scene (numpy Generator streams seeded from
    cfg.seed: 0 for the crowd, 1 for people's looks).
    """
    camera = Camera.from_config(cfg.camera, cfg.width, cfg.height)
    area = walkable_area(camera, cfg.camera, cfg.area_margin_m)
    crowd = run_crowd(cfg, area, np.random.default_rng([cfg.seed, 0]))
    looks = np.random.default_rng([cfg.seed, 1])
    n_people = crowd.n_people
    height_m = np.clip(
        looks.normal(cfg.person_height_m, cfg.person_height_std_m, n_people),
        cfg.person_height_m - 0.3,
        cfg.person_height_m + 0.3,
    )
    width_scale = looks.uniform(0.85, 1.2, n_people)
    colours = _clothing_colours(looks, n_people)

    idx = crowd.person_id - 1
    xy = crowd.world_xy_m
    n = len(xy)
    feet, depth = camera.project(np.column_stack([xy, np.zeros(n)]))
    head, _ = camera.project(np.column_stack([xy, height_m[idx]]))
    h_px = np.maximum(feet[:, 1] - head[:, 1], 0.0)
    # The stride shows fully when walking across the view, not when walking along it.
    view = np.arctan2(xy[:, 1], xy[:, 0])
    across = np.abs(np.sin(crowd.heading_rad - view))
    swing = across * np.clip(crowd.speed_mps / 1.3, 0, 1) * np.sin(crowd.walk_phase)
    half = figure_layout(h_px, width_scale[idx], swing)["half_width"]
    box = np.column_stack([feet[:, 0] - half, feet[:, 1] - h_px, 2 * half, h_px])
    gt_box, visibility = _clip_and_occlude(box, depth, crowd.frame_start, cfg.width, cfg.height)
    in_gt = (
        (depth > 0.5)
        & (gt_box[:, 3] >= cfg.min_box_height_px)
        & (gt_box[:, 2] >= 2)
        & (gt_box[:, 2] * gt_box[:, 3] >= cfg.min_visible_area_px)
    )
    return SynthScene(
        cfg,
        camera,
        area,
        crowd.points_of_interest,
        crowd.frame_start,
        crowd.person_id,
        xy,
        crowd.heading_rad,
        crowd.speed_mps,
        swing,
        box,
        depth,
        gt_box,
        visibility,
        in_gt,
        height_m,
        width_scale,
        colours,
        crowd.kind,
    )


def _clothing_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 4, 3) uint8 BGR: shirt (any hue), trousers (dark), skin tone, hair (dark)."""
    hsv = np.zeros((n, 4, 3))
    hsv[:, 0] = np.column_stack(
        [rng.uniform(0, 180, n), rng.uniform(0.2, 1, n) * 255, rng.uniform(0.25, 1, n) * 255]
    )
    hsv[:, 1] = np.column_stack(
        [rng.uniform(90, 130, n), rng.uniform(0, 0.6, n) * 255, rng.uniform(0.1, 0.5, n) * 255]
    )
    hsv[:, 2] = np.column_stack(
        [rng.uniform(5, 20, n), rng.uniform(0.3, 0.6, n) * 255, rng.uniform(0.35, 0.95, n) * 255]
    )
    hsv[:, 3] = np.column_stack(
        [rng.uniform(5, 25, n), rng.uniform(0.2, 0.8, n) * 255, rng.uniform(0.05, 0.5, n) * 255]
    )
    # OpenCV HSV (H in [0, 180)) -> BGR, done with one cvtColor on an (n, 4) image.
    return (
        cv2.cvtColor(hsv.astype(np.uint8).reshape(n, 4, 3), cv2.COLOR_HSV2BGR)
        if n
        else np.zeros((0, 4, 3), np.uint8)
    )


def _clip_and_occlude(
    box: np.ndarray, depth: np.ndarray, frame_start: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) full boxes -> (N, 4) boxes clipped to the image and (N,) visibility.

    Visibility counts whole pixels: the share of the full box's area that lies in the image and
    outside every box of a person nearer to the camera on the same frame.
    """
    x0 = np.clip(box[:, 0], 0, width)
    y0 = np.clip(box[:, 1], 0, height)
    x1 = np.clip(box[:, 0] + box[:, 2], 0, width)
    y1 = np.clip(box[:, 1] + box[:, 3], 0, height)
    clipped = np.column_stack([x0, y0, x1 - x0, y1 - y0])
    full_area = np.maximum(box[:, 2] * box[:, 3], 1e-9)
    visibility = clipped[:, 2] * clipped[:, 3] / full_area
    for t in range(len(frame_start) - 1):
        s, e = int(frame_start[t]), int(frame_start[t + 1])
        if e - s < 2:
            continue
        f = slice(s, e)
        overlap = (
            (x0[f, None] < x1[None, f])
            & (x0[None, f] < x1[f, None])
            & (y0[f, None] < y1[None, f])
            & (y0[None, f] < y1[f, None])
            & (depth[None, f] < depth[f, None])
        )  # [i, j]: j is nearer and overlaps i
        for i in np.flatnonzero(overlap.any(axis=1)):
            r = s + i
            ix0, iy0 = int(math.floor(x0[r])), int(math.floor(y0[r]))
            covered = np.zeros((int(math.ceil(y1[r])) - iy0, int(math.ceil(x1[r])) - ix0), bool)
            for j in s + np.flatnonzero(overlap[i]):
                covered[
                    max(int(round(y0[j])) - iy0, 0) : max(int(round(y1[j])) - iy0, 0),
                    max(int(round(x0[j])) - ix0, 0) : max(int(round(x1[j])) - ix0, 0),
                ] = True
            share = covered.mean() if covered.size else 0.0
            visibility[r] *= 1.0 - share
    return clipped, np.clip(visibility, 0.0, 1.0)
