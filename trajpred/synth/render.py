"""Draw a `SynthScene` and write it out: video, ground truth, homography, YOLO dataset.

`write_scene(scene, out_dir)` writes, in out_dir:
- video.mp4: the rendered frames (OpenCV 'mp4v'); the same scene gives the same bytes.
- gt_mot.txt: MOTChallenge `frame,id,left,top,width,height,conf,-1,-1,-1`, 1-based frames,
  boxes tight around the drawn people and clipped to the image, conf 1.
- gt_visibility.txt: `frame,id,visibility` for the same rows (header line first): the share of
  each person's full box inside the image and not hidden by nearer people's boxes.
- gt_world.txt: ETH/UCY `frame ped x y` (tab separated, metres on the ground plane) every
  world_dt_s; frame = the 1-based video frame of the sample, ped = the MOT track id.
- homography.txt: 3x3 image (u, v, 1) pixels -> world ground (x, y, 1) metres, as ETH/UCY's
  H.txt (divide by the third coordinate). scene.json holds it too, with its inverse
  world_to_image, the camera matrices, fps, size, seed and counts.
- config.yaml: the resolved SynthConfig.

Frames are drawn one at a time (`iter_frames`): a textured ground seen through the camera,
then people far to near (painter's algorithm) so nearer people hide farther ones.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from ..atomic import Staging, atomic_open, atomic_path, write_json, write_text
from ..config import save_config, to_dict
from ..errors import TrajpredError
from ..formats import write_eth_ucy, write_mot
from ..video import VideoWriter
from .world import FIGURE, SynthConfig, SynthScene, figure_layout, simulate

SHIFT = 4  # OpenCV drawing with 1/16 pixel precision
ONE = 1 << SHIFT
# No anti-aliasing: OpenCV's anti-aliased edges reach a pixel beyond the shape, which would
# put drawn pixels outside the exact boxes. Video compression softens the edges anyway.
LINE = cv2.LINE_8


def render_background(scene: SynthScene) -> np.ndarray:
    """(H, W, 3) uint8 BGR: paving tiles (with grass patches) on the ground, sky above the horizon.

    Drawn at twice the resolution and shrunk, so far tiles do not alias. The look (tile size,
    colours, patches) comes from the numpy Generator stream 2 of the scene's seed.
    """
    cfg, cam = scene.cfg, scene.camera
    rng = np.random.default_rng([cfg.seed, 2])
    tile_m = rng.uniform(0.4, 1.2)
    grout = rng.uniform(0.03, 0.08) / tile_m  # grout width as a share of a tile
    paving = (
        cv2.cvtColor(
            np.array([[[rng.uniform(0, 30), rng.uniform(0, 90), rng.uniform(110, 200)]]], np.uint8),
            cv2.COLOR_HSV2BGR,
        )[0, 0]
        / 255.0
    )
    grass = (
        cv2.cvtColor(
            np.array(
                [[[rng.uniform(35, 55), rng.uniform(80, 200), rng.uniform(60, 150)]]], np.uint8
            ),
            cv2.COLOR_HSV2BGR,
        )[0, 0]
        / 255.0
    )
    tile_shade = rng.uniform(0.9, 1.1, (64, 64))
    patches = rng.random((12, 12))
    grass_share = rng.choice([0.0, 0.2, 0.4])

    big_w, big_h = 2 * cfg.width, 2 * cfg.height
    u, v = np.meshgrid((np.arange(big_w) - 0.5) / 2, (np.arange(big_h) - 0.5) / 2)
    rays = cam.ground_rays(np.column_stack([u.ravel(), v.ravel()]))
    down = -rays[:, 2]
    ground = down > 1e-6
    s = np.where(ground, cfg.camera.height_m / np.maximum(down, 1e-6), 0.0)
    xy = rays[:, :2] * s[:, None]
    ground &= np.hypot(xy[:, 0], xy[:, 1]) < 300.0

    tx, ty = xy[:, 0] / tile_m, xy[:, 1] / tile_m
    ix, iy = np.floor(tx).astype(np.int64), np.floor(ty).astype(np.int64)
    shade = tile_shade[iy % 64, ix % 64]
    joint = (tx - ix < grout) | (ty - iy < grout)
    shade = np.where(joint, rng.uniform(0.7, 0.85), shade)
    # Far away a pixel covers many tiles: fade the pattern to its mean instead of aliasing.
    # Ground covered by one pixel along the view ~ distance^2 / (focal * camera height).
    distance = s * np.linalg.norm(rays, axis=1)
    footprint_m = distance**2 / (cam.K[0, 0] * cfg.camera.height_m)
    fade = np.clip(1.5 - footprint_m / (0.25 * tile_m), 0.0, 1.0)
    shade = 0.95 + (shade - 0.95) * fade
    # Grass where a smooth noise field (12 x 12 cells of 5 m, bilinear) is low.
    cells = ((xy + 30.0) / 5.0).astype(np.float32).reshape(big_h, big_w, 2)
    patchiness = cv2.remap(
        patches.astype(np.float32),
        cells[..., 0],
        cells[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).ravel()
    colour = np.where(
        (patchiness < grass_share)[:, None],
        grass * rng.uniform(0.8, 1.2, (len(s), 1)),
        paving * shade[:, None],
    )
    # Sky: brighter towards the horizon.
    sky = np.array([0.92, 0.80, 0.62]) * (0.8 + 0.2 * np.clip(v.ravel() / big_h, 0, 1))[:, None]
    colour = np.where(ground[:, None], colour * (0.9 + 0.1 * patchiness)[:, None], sky)
    img = (colour.reshape(big_h, big_w, 3) * 255).clip(0, 255).astype(np.uint8)
    small = cv2.resize(img, (cfg.width, cfg.height), interpolation=cv2.INTER_AREA)
    grain = rng.normal(0, 4, (cfg.height, cfg.width, 1))
    return np.clip(small + grain, 0, 255).astype(np.uint8)


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * ONE)), int(round(y * ONE))


def _quad(
    img, top_x: float, top_y: float, bottom_x: float, bottom_y: float, half_w: float, colour
) -> None:
    """A limb: a quadrilateral of horizontal half-width half_w between two centre points."""
    pts = np.array(
        [
            _pt(top_x - half_w, top_y),
            _pt(top_x + half_w, top_y),
            _pt(bottom_x + half_w, bottom_y),
            _pt(bottom_x - half_w, bottom_y),
        ],
        np.int32,
    )
    cv2.fillConvexPoly(img, pts, colour, LINE, SHIFT)


def draw_people(img: np.ndarray, scene: SynthScene, t: int) -> None:
    """Draw the people of frame t (0-based) into img, far to near, in place."""
    rows = np.arange(scene.frame_start[t], scene.frame_start[t + 1])
    rows = rows[(scene.depth_m[rows] > 0.5) & (scene.box_xywh[rows, 3] >= 2)]
    rows = rows[np.argsort(-scene.depth_m[rows], kind="stable")]
    if not len(rows):
        return
    idx = scene.person_id[rows] - 1
    box = scene.box_xywh[rows]
    h = box[:, 3]
    u, v = box[:, 0] + box[:, 2] / 2, box[:, 1] + box[:, 3]
    parts = figure_layout(h, scene.width_scale[idx], scene.swing[rows])
    f = FIGURE
    for k in range(len(rows)):
        shirt, trousers, skin, hair = (
            tuple(int(c) for c in colour) for colour in scene.colours_bgr[idx[k]]
        )
        far_leg = tuple(int(c * 0.8) for c in trousers)
        arm = tuple(int(c * 0.85) for c in shirt)
        hk, uk, vk = h[k], u[k], v[k]
        foot, hip = parts["foot_dx"][k], parts["hip_dx"][k]
        for sign, colour in ((-1, far_leg), (1, trousers)):
            _quad(
                img,
                uk + sign * hip,
                vk - f.hip_y * hk,
                uk + sign * foot,
                vk,
                f.leg_w * hk / 2,
                colour,
            )
        shoulder, hand = parts["shoulder_dx"][k], parts["hand_dx"][k]
        for sign in (-1, 1):
            _quad(
                img,
                uk + sign * shoulder,
                vk - f.shoulder_y * hk,
                uk + sign * hand,
                vk - f.hand_y * hk,
                f.arm_w * hk / 2,
                arm,
            )
        _quad(img, uk, vk - (1 - f.head_r) * hk, uk, vk - f.shoulder_y * hk, 0.02 * hk, skin)
        cv2.ellipse(
            img,
            _pt(uk, vk - f.torso_cy * hk),
            _pt(parts["torso_rx"][k], f.torso_ry * hk),
            0,
            0,
            360,
            shirt,
            -1,
            LINE,
            SHIFT,
        )
        centre, r = _pt(uk, vk - hk + f.head_r * hk), int(round(f.head_r * hk * ONE))
        cv2.circle(img, centre, r, skin, -1, LINE, SHIFT)
        cv2.ellipse(img, centre, (r, r), 0, 180, 360, hair, -1, LINE, SHIFT)


def render_frame(scene: SynthScene, t: int, background: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR frame t (0-based): a copy of background with the people drawn."""
    frame = background.copy()
    draw_people(frame, scene, t)
    return frame


def iter_frames(scene: SynthScene, people: bool = True) -> Iterator[np.ndarray]:
    """Yield the scene's frames in order, (H, W, 3) uint8 BGR, one at a time.

    people=False yields the bare background for every frame (for foreground masks in tests).
    """
    background = render_background(scene)
    for t in range(scene.n_frames):
        yield render_frame(scene, t, background) if people else background.copy()


def write_video(scene: SynthScene, path: str | os.PathLike, progress: bool = False) -> Path:
    """Render every frame into an mp4 ('mp4v') at path, atomically; returns path."""
    path = Path(path)
    cfg = scene.cfg
    with atomic_path(path) as tmp:
        writer = VideoWriter(tmp, cfg.fps, cfg.width, cfg.height, shown_as=path)
        try:
            for frame in tqdm(
                iter_frames(scene),
                total=scene.n_frames,
                unit="frame",
                desc="rendering",
                disable=None if progress else True,
                leave=False,
            ):
                writer.write(frame)
        finally:
            writer.close()
        writer.verify()
    return path


@dataclass
class ScenePaths:
    """The files `write_scene` wrote."""

    out_dir: Path
    video: Path
    gt_mot: Path
    gt_visibility: Path
    gt_world: Path
    homography: Path
    scene_json: Path
    config: Path


def scene_info(scene: SynthScene) -> dict:
    """What scene.json holds: sizes, timing, seed, counts, camera and both homographies."""
    cfg, cam = scene.cfg, scene.camera
    in_gt_ids = np.unique(scene.person_id[scene.in_gt])
    return {
        "fps": cfg.fps,
        "width": cfg.width,
        "height": cfg.height,
        "seed": cfg.seed,
        "n_frames": scene.n_frames,
        "duration_s": scene.n_frames / cfg.fps,
        "world_dt_s": cfg.world_dt_s,
        "world_frame_step": cfg.world_dt_s * cfg.fps,
        "n_people": int(len(in_gt_ids)),
        "n_people_simulated": int(len(scene.height_m)),
        "n_boxes": int(scene.in_gt.sum()),
        "world_to_image": cam.world_to_image.tolist(),
        "image_to_world": cam.image_to_world.tolist(),
        "camera": {
            "K": cam.K.tolist(),
            "R": cam.R.tolist(),
            "t": cam.t.tolist(),
            "projection": cam.projection.tolist(),
            **to_dict(cfg.camera),
        },
        "area_m": {
            "x_min": scene.area.x_min,
            "x_max": scene.area.x_max,
            "y_min": scene.area.y_min,
            "y_max": scene.area.y_max,
        },
        "conventions": "world: metres on the ground, x right, y away from the camera, z up, "
        "camera at (0, 0, height_m); image: pixels, pixel centres at whole "
        "numbers; frames 1-based; world_to_image maps (x, y, 1) to (u, v, 1).",
    }


def write_scene(
    scene: SynthScene, out_dir: str | os.PathLike, progress: bool = False
) -> ScenePaths:
    """Write the video and every ground-truth file of `scene` into out_dir (see module doc).

    The files are written under hidden partial names and published together at the end, so a
    run that fails half-way (a full disk) leaves an earlier scene in out_dir as it was."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TrajpredError(f"{out}: exists and is not a folder")
    staging = Staging()
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = _write_scene_files(scene, out, staging, progress)
        staging.publish()
        return paths
    except OSError as e:
        raise TrajpredError(f"{out}: cannot write the scene ({e.strerror or e})") from None
    finally:
        staging.discard()


def scene_paths(out: Path) -> ScenePaths:
    """Where `write_scene` puts each file in the folder `out`."""
    return ScenePaths(
        out,
        out / "video.mp4",
        out / "gt_mot.txt",
        out / "gt_visibility.txt",
        out / "gt_world.txt",
        out / "homography.txt",
        out / "scene.json",
        out / "config.yaml",
    )


def _write_scene_files(
    scene: SynthScene, out: Path, staging: Staging, progress: bool
) -> ScenePaths:
    paths = scene_paths(out)
    with staging.file(paths.gt_mot) as path:
        write_mot(path, scene.mot_tracks())
    rows = np.flatnonzero(scene.in_gt)
    rows = rows[np.lexsort((scene.person_id[rows], scene.frame_index[rows]))]  # as write_mot
    with staging.file(paths.gt_visibility) as path:
        write_text(
            path,
            "frame,id,visibility\n"
            + "".join(
                f"{f},{i},{x:.4f}\n"
                for f, i, x in zip(
                    (scene.frame_index[rows] + 1).tolist(),
                    scene.person_id[rows].tolist(),
                    scene.visibility[rows].tolist(),
                    strict=False,
                )
            ),
        )
    with staging.file(paths.gt_world) as path:
        write_eth_ucy(path, scene.world_tracks())
    with staging.file(paths.homography) as path, atomic_open(path, "w") as f:
        np.savetxt(
            f,
            scene.camera.image_to_world,
            header="image (u, v, 1) pixels -> world ground (x, y, 1) metres",
        )
    with staging.file(paths.scene_json) as path:
        write_json(path, scene_info(scene))
    with staging.file(paths.config) as path:
        save_config(scene.cfg, path)
    with staging.file(paths.video) as path:
        write_video(scene, path, progress)
    return paths


# ---------------------------------------------------------------- YOLO detection dataset


@dataclass
class YoloDataset:
    """What `write_yolo_dataset` wrote: root/{images,labels}/{train,val}/ and root/data.yaml."""

    root: Path
    data_yaml: Path
    n_train: int
    n_val: int
    n_boxes: int


def varied_config(base: SynthConfig, seed: int) -> SynthConfig:
    """base with seed set and the camera and crowd varied (from Generator stream 3 of seed)."""
    rng = np.random.default_rng([seed, 3])
    camera = dataclasses.replace(
        base.camera,
        height_m=rng.uniform(4.0, 12.0),
        tilt_deg=rng.uniform(20.0, 55.0),
        hfov_deg=rng.uniform(45.0, 80.0),
        roll_deg=rng.uniform(-4.0, 4.0),
        max_depth_m=rng.uniform(20.0, 40.0),
    )
    return dataclasses.replace(base, seed=seed, camera=camera, n_agents=int(rng.integers(6, 31)))


_IMAGE_NAME = re.compile(r"scene\d+_frame\d+\.(jpg|txt)")


def write_yolo_dataset(
    out_dir: str | os.PathLike,
    seeds: Iterable[int],
    n_images: int,
    base: SynthConfig | None = None,
    val_fraction: float = 0.2,
    min_visibility: float = 0.3,
    min_box_px: float = 8.0,
    progress: bool = False,
) -> YoloDataset:
    """Sample n_images frames from one scene per seed (camera, crowd and looks varied) as a
    YOLO dataset: images/{train,val}/sceneS_frameF.jpg, labels/.../sceneS_frameF.txt with
    `0 cx cy w h` (class 0 = person, as in COCO; normalised to [0, 1]), and data.yaml.

    The last round(val_fraction * len(seeds)) scenes (at least one) are the validation split;
    with a single seed, the last frames are. Boxes of people less than min_visibility visible
    or under min_box_px tall are left out. Earlier files of this naming scheme are replaced.
    """
    base = base or SynthConfig()
    seeds = list(seeds)
    if not seeds or n_images < 1:
        raise TrajpredError("a YOLO dataset needs at least one seed and one image")
    root = Path(out_dir)
    for split in ("train", "val"):
        for kind in ("images", "labels"):
            folder = root / kind / split
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise TrajpredError(f"{folder}: cannot create folder ({e.strerror or e})") from None
            for old in folder.iterdir():
                if _IMAGE_NAME.fullmatch(old.name):
                    old.unlink()
    n_val_scenes = max(1, round(val_fraction * len(seeds))) if len(seeds) > 1 else 0
    per_scene = np.full(len(seeds), n_images // len(seeds))
    per_scene[: n_images % len(seeds)] += 1
    counts = {"train": 0, "val": 0}
    n_boxes = 0
    bar = tqdm(
        total=n_images,
        unit="image",
        desc="yolo dataset",
        disable=None if progress else True,
        leave=False,
    )
    for k, (seed, n) in enumerate(zip(seeds, per_scene, strict=False)):
        if n == 0:
            continue
        cfg = varied_config(base, seed)
        cfg = dataclasses.replace(cfg, duration_s=max(10.0, float(n) + 4.0))
        scene = simulate(cfg)
        background = render_background(scene)
        frames = np.linspace(2 * cfg.fps, scene.n_frames - 1, n).round().astype(int)
        look = np.random.default_rng([seed, 4])
        # One seed: its last frames are the validation split; else the last scenes are.
        first_val = (
            (n if k < len(seeds) - n_val_scenes else 0)
            if n_val_scenes
            else (n - max(1, round(val_fraction * n)) if n > 1 else n)
        )
        for i, t in enumerate(frames):
            split = "val" if i >= first_val else "train"
            image = render_frame(scene, int(t), background)
            image = cv2.convertScaleAbs(
                image, alpha=look.uniform(0.75, 1.25), beta=look.uniform(-25, 25)
            )
            if look.random() < 0.3:
                image = cv2.GaussianBlur(image, (3, 3), 0)
            name = f"scene{seed}_frame{int(t) + 1:05d}"
            image_path = root / "images" / split / f"{name}.jpg"
            if not cv2.imwrite(str(image_path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
                raise TrajpredError(f"{image_path}: cannot write image")
            lines = _yolo_labels(scene, int(t), min_visibility, min_box_px)
            write_text(root / "labels" / split / f"{name}.txt", "".join(lines))
            counts[split] += 1
            n_boxes += len(lines)
            bar.update()
    bar.close()
    data_yaml = root / "data.yaml"
    write_text(
        data_yaml,
        yaml.safe_dump(
            {
                "path": str(root.resolve()),
                "train": "images/train",
                "val": "images/val",
                "nc": 1,
                "names": {0: "person"},
            },
            sort_keys=False,
        ),
    )
    return YoloDataset(root, data_yaml, counts["train"], counts["val"], n_boxes)


def _yolo_labels(scene: SynthScene, t: int, min_visibility: float, min_box_px: float) -> list[str]:
    """`0 cx cy w h` lines (normalised) for the people of frame t worth detecting."""
    rows = np.arange(scene.frame_start[t], scene.frame_start[t + 1])
    box = scene.gt_box_xywh[rows]
    keep = (
        scene.in_gt[rows] & (scene.visibility[rows] >= min_visibility) & (box[:, 3] >= min_box_px)
    )
    w, h = scene.cfg.width, scene.cfg.height
    norm = np.column_stack(
        [
            (box[:, 0] + box[:, 2] / 2) / w,
            (box[:, 1] + box[:, 3] / 2) / h,
            box[:, 2] / w,
            box[:, 3] / h,
        ]
    )[keep].clip(0.0, 1.0)
    return [f"0 {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}\n" for cx, cy, bw, bh in norm.tolist()]
