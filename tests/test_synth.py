"""Synthetic scenes: files a user gets from `trajpred synth`, boxes checked against drawn pixels,
determinism, camera geometry, motion realism, YOLO export."""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from trajpred.cli import main
from trajpred.config import load_config, to_dict
from trajpred.formats import read_eth_ucy, read_mot
from trajpred.synth.render import iter_frames, render_background, write_scene, write_yolo_dataset
from trajpred.synth.world import Camera, CameraConfig, SynthConfig, simulate
from trajpred.tracks import bottom_centre

REPO = Path(__file__).resolve().parents[1]
SCENE_FILES = (
    "video.mp4",
    "gt_mot.txt",
    "gt_visibility.txt",
    "gt_world.txt",
    "homography.txt",
    "scene.json",
    "config.yaml",
)


@pytest.fixture(scope="module")
def cli_scene(tmp_path_factory) -> Path:
    """A 4 s scene written by the console command, as a user runs it."""
    out = tmp_path_factory.mktemp("synth") / "seed3"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trajpred",
            "synth",
            "--out",
            str(out),
            "--seed",
            "3",
            "--duration",
            "4",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and "40 frames 640x384" in proc.stdout
    return out


def _scene_of(out: Path):
    """Rebuild the scene from the config the command saved beside its outputs."""
    return simulate(load_config(SynthConfig, out / "config.yaml"))


def _visibility(out: Path) -> dict[tuple[int, int], float]:
    rows = np.loadtxt(out / "gt_visibility.txt", delimiter=",", skiprows=1, ndmin=2)
    return {(int(f), int(i)): v for f, i, v in rows}


@pytest.mark.slow
def test_cli_writes_video_and_readable_ground_truth(cli_scene):
    assert all((cli_scene / name).is_file() for name in SCENE_FILES)
    cap = cv2.VideoCapture(str(cli_scene / "video.mp4"))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 40
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 384)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    cap.release()

    mot = read_mot(cli_scene / "gt_mot.txt")
    world = read_eth_ucy(cli_scene / "gt_world.txt")
    info = json.loads((cli_scene / "scene.json").read_text())
    assert mot.frames().min() >= 1 and mot.frames().max() <= 40
    assert len(mot.track_ids()) == info["n_people"] >= 3
    # One world sample every 0.4 s = 4 frames, on frames 1, 5, 9, ...; same ids as the boxes.
    assert set(world.frames().tolist()) <= set(range(1, 41, 4))
    assert set(world.track_ids().tolist()) <= set(mot.track_ids().tolist())
    assert len(_visibility(cli_scene)) == len(mot)
    image_to_world = np.loadtxt(cli_scene / "homography.txt")
    np.testing.assert_allclose(
        image_to_world @ np.array(info["world_to_image"]), np.eye(3), atol=1e-9
    )
    assert (info["fps"], info["width"], info["height"], info["seed"]) == (10.0, 640, 384, 3)


def test_config_file_mirrors_the_defaults():
    from_file = load_config(SynthConfig, REPO / "configs" / "synth.yaml")
    assert to_dict(from_file) == to_dict(SynthConfig())


def test_camera_projection_by_hand_and_far_people_are_smaller():
    cam = Camera.from_config(CameraConfig(height_m=8.0, tilt_deg=45.0), 640, 384)
    # The optical axis meets the ground 8 m / tan(45 deg) = 8 m ahead, at the image centre.
    uv, depth = cam.project(np.array([[0.0, 8.0, 0.0]]))
    np.testing.assert_allclose(uv[0], [319.5, 191.5], atol=1e-9)
    assert depth[0] == pytest.approx(8 * math.sqrt(2))
    # A head 1.75 m above that point, in camera coordinates (right, down, forward) scaled by
    # sqrt(2): down = -8 + 6.25, forward = 8 + 6.25; focal = 320 px / tan(30 deg).
    head_uv, _ = cam.project(np.array([[0.0, 8.0, 1.75]]))
    focal = 320 / math.tan(math.radians(30))
    np.testing.assert_allclose(head_uv[0], [319.5, 191.5 + focal * -1.75 / 14.25], atol=1e-9)
    feet = np.array([[0.0, 8.0, 0.0], [0.0, 20.0, 0.0]])
    height_px = cam.project(feet)[0][:, 1] - cam.project(feet + [0.0, 0.0, 1.75])[0][:, 1]
    assert height_px[0] > 1.2 * height_px[1] > 0


def test_boxes_hold_the_drawn_people():
    """Foreground = pixels that differ from the same frame rendered without people."""
    scene = simulate(SynthConfig(seed=3, duration_s=2.0))
    frames = iter_frames(scene)
    assert inspect.isgenerator(frames)
    n_isolated = 0
    for t, (frame, empty) in enumerate(zip(frames, iter_frames(scene, people=False), strict=False)):
        fg = np.abs(frame.astype(np.int16) - empty).sum(axis=2) > 0
        rows = np.arange(scene.frame_rows(t).start, scene.frame_rows(t).stop)
        rows = rows[scene.in_gt[rows]]
        boxes = scene.gt_box_xywh[rows]
        in_boxes = np.zeros_like(fg)
        for x, y, w, h in boxes:
            in_boxes[int(y) : int(math.ceil(y + h)) + 1, int(x) : int(math.ceil(x + w)) + 1] = True
        assert (fg & in_boxes).sum() >= 0.97 * fg.sum()
        for k, (x, y, w, h) in enumerate(boxes):
            inside = fg[int(y) : int(math.ceil(y + h)) + 1, int(x) : int(math.ceil(x + w)) + 1]
            if scene.visibility[rows[k]] > 0.5:
                assert inside.mean() > 0.3
            # A person alone in its neighbourhood: the drawn pixels span the box to within 1 px.
            others = np.delete(
                scene.box_xywh[scene.frame_rows(t)],
                np.flatnonzero(
                    np.arange(scene.frame_rows(t).start, scene.frame_rows(t).stop) == rows[k]
                ),
                0,
            )
            pad = 8
            near = (
                (others[:, 0] < x + w + 2 * pad)
                & (others[:, 0] + others[:, 2] > x - 2 * pad)
                & (others[:, 1] < y + h + 2 * pad)
                & (others[:, 1] + others[:, 3] > y - 2 * pad)
            )
            if scene.visibility[rows[k]] == 1.0 and not near.any():
                x0, y0 = max(int(x) - pad, 0), max(int(y) - pad, 0)
                ys, xs = np.nonzero(fg[y0 : int(y + h) + pad, x0 : int(x + w) + pad])
                drawn = np.array([xs.min() + x0, ys.min() + y0, xs.max() + x0, ys.max() + y0])
                np.testing.assert_allclose(drawn, [x, y, x + w, y + h], atol=1.0)
                n_isolated += 1
    assert n_isolated >= 10


@pytest.mark.slow
def test_video_shows_people_inside_the_boxes(cli_scene):
    """The decoded mp4 against the empty background: strong differences fall in the boxes."""
    background = render_background(_scene_of(cli_scene)).astype(np.int16)
    mot = read_mot(cli_scene / "gt_mot.txt")
    cap = cv2.VideoCapture(str(cli_scene / "video.mp4"))
    for frame_id in range(1, 41):
        ok, frame = cap.read()
        assert ok
        if frame_id % 10:
            continue
        changed = np.abs(frame - background).max(axis=2) > 60
        in_boxes = np.zeros_like(changed)
        for x, y, w, h in mot.box_xywh[mot.frame_id == frame_id]:
            in_boxes[max(int(y) - 2, 0) : int(y + h) + 3, max(int(x) - 2, 0) : int(x + w) + 3] = (
                True
            )
        assert changed.sum() > 200
        assert (changed & in_boxes).sum() >= 0.95 * changed.sum()
    cap.release()


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_differs(cli_scene, tmp_path):
    again = write_scene(_scene_of(cli_scene), tmp_path / "again").out_dir
    for name in SCENE_FILES:
        assert (again / name).read_bytes() == (cli_scene / name).read_bytes(), name
    other = write_scene(simulate(SynthConfig(seed=4, duration_s=4.0)), tmp_path / "other").out_dir
    for name in ("video.mp4", "gt_mot.txt", "gt_world.txt"):
        assert (other / name).read_bytes() != (cli_scene / name).read_bytes(), name


@pytest.mark.slow
def test_world_ground_truth_projects_to_the_feet(cli_scene):
    mot = read_mot(cli_scene / "gt_mot.txt")
    world = read_eth_ucy(cli_scene / "gt_world.txt")
    visibility = _visibility(cli_scene)
    world_to_image = np.linalg.inv(np.loadtxt(cli_scene / "homography.txt"))
    boxes = {
        (f, i): b
        for f, i, b in zip(mot.frame_id.tolist(), mot.track_id.tolist(), mot.box_xywh, strict=False)
    }
    checked = 0
    for f, i, xy in zip(world.frame_id.tolist(), world.track_id.tolist(), world.xy, strict=False):
        box = boxes[(f, i)]
        inside = box[0] > 1 and box[1] > 1 and box[0] + box[2] < 639 and box[1] + box[3] < 383
        if visibility[(f, i)] < 1.0 or not inside:
            continue
        p = world_to_image @ [xy[0], xy[1], 1.0]
        np.testing.assert_allclose(p[:2] / p[2], bottom_centre(box[None])[0], atol=1.0)
        checked += 1
    assert checked >= 20


def test_motion_is_plausible():
    cfg = SynthConfig(seed=1)
    scene = simulate(cfg)
    order = np.lexsort((scene.frame_index, scene.person_id))
    pid, frame, xy = scene.person_id[order], scene.frame_index[order], scene.world_xy_m[order]
    step = (pid[1:] == pid[:-1]) & (frame[1:] == frame[:-1] + 1)
    move = xy[1:] - xy[:-1]
    speed = np.linalg.norm(move, axis=1) * cfg.fps
    walking = speed[step][speed[step] > 0.3]
    assert speed[step].max() < 2.5
    assert 1.0 < np.median(walking) < 1.6
    assert 0.02 < np.mean(speed[step] < 0.05) < 0.3  # some people stand a while
    heading = np.arctan2(move[:, 1], move[:, 0])
    both = step[1:] & step[:-1] & (speed[1:] > 0.3) & (speed[:-1] > 0.3)
    turn_deg_s = np.degrees(np.abs(np.angle(np.exp(1j * np.diff(heading)))))[both] * cfg.fps
    # The bound holds per simulation step; directions between whole frames may exceed it a bit.
    assert turn_deg_s.max() < 1.15 * cfg.max_turn_deg_s
    assert np.median(turn_deg_s) < 10  # mostly smooth walking
    assert len(np.unique(scene.person_id)) > cfg.n_agents  # people came and went
    assert not scene.class_id.any() and not scene.mot_tracks().class_id.any()  # walkers only


def test_cyclists_are_class_one_ride_faster_turn_slower_and_never_stop():
    cfg = SynthConfig(seed=2, duration_s=60.0, cyclist_share=0.5)
    scene = simulate(cfg)
    riding = scene.class_id[scene.person_id - 1] == 1
    assert 0.3 < scene.class_id.mean() < 0.7
    gt = scene.mot_tracks()
    assert set(np.unique(gt.class_id)) == {0, 1}
    np.testing.assert_array_equal(gt.class_id, scene.class_id[gt.track_id - 1])
    world = scene.world_tracks()
    np.testing.assert_array_equal(world.class_id, scene.class_id[world.track_id - 1])
    moving = scene.speed_mps > 0.3
    assert np.median(scene.speed_mps[riding & moving]) > 2 * np.median(
        scene.speed_mps[~riding & moving]
    )
    assert scene.speed_mps[riding].max() <= cfg.cyclist_speed_max_mps * 1.2 + 1e-9
    assert not (scene.speed_mps[riding] == 0).any()  # riders never stop; walkers do
    assert (scene.speed_mps[~riding] == 0).any()


def test_yolo_dataset_layout_and_labels(tmp_path):
    data = write_yolo_dataset(tmp_path / "yolo", seeds=[11, 12, 13], n_images=6)
    assert (data.n_train, data.n_val) == (4, 2) and data.n_boxes > 0
    spec = yaml.safe_load(data.data_yaml.read_text())
    assert spec["names"] == {0: "person"} and spec["train"] == "images/train"
    for split, n in (("train", 4), ("val", 2)):
        images = sorted((tmp_path / "yolo" / "images" / split).glob("*.jpg"))
        labels = sorted((tmp_path / "yolo" / "labels" / split).glob("*.txt"))
        assert len(images) == len(labels) == n
        assert [p.stem for p in images] == [p.stem for p in labels]
        assert cv2.imread(str(images[0])).shape == (384, 640, 3)
        for label in labels:
            for line in label.read_text().splitlines():
                cls, *box = line.split()
                assert cls == "0" and len(box) == 4
                assert all(0.0 <= float(v) <= 1.0 for v in box)


def test_unwritable_output_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["synth", "--out", str(blocker / "scene"), "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot" in err and "Traceback" not in err
