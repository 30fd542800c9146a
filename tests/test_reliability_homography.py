"""Reliability of homographies (issue 23), in-process and fast: every homography, from a file
(`--homography`, `Forecaster(homography=path)`) or as an array (`Forecaster(homography=H)`),
goes through one check that does not depend on the matrix's scale; a file that is not text is
one line naming it; a camera that looks straight down has no horizon; and `trajpred
homography` answers absurd input with one line of its own, not numpy's warnings.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from conftest import assert_one_line

from trajpred import Forecaster
from trajpred.errors import InputError, TrajpredError
from trajpred.geometry import (
    GroundPlane,
    apply_homography,
    format_homography,
    read_homography,
)
from trajpred.synth.world import Camera, CameraConfig

FPS = 10.0


def low_camera() -> np.ndarray:
    """A 4 m high camera tilted 20 degrees, 640x384 pixels (the horizon just above the image)."""
    return Camera.from_config(CameraConfig(height_m=4.0, tilt_deg=20.0), 640, 384).image_to_world


def straight_down(metres_per_px: float = 0.02, angle: float = 0.3) -> np.ndarray:
    """A camera looking straight down: a rotation and a scale, no perspective (no horizon)."""
    c, s = metres_per_px * np.cos(angle), metres_per_px * np.sin(angle)
    return np.array([[c, -s, -3.0], [s, c, 1.5], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "v.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (64, 64))
    for _ in range(3):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def cv_checkpoint(tmp_path_factory) -> str:
    from trajpred.demo import untrained_checkpoint

    return untrained_checkpoint(tmp_path_factory.mktemp("api") / "cv.pt")


def box_at(x: float, y: float = 300.0, w: float = 30.0, h: float = 90.0) -> list[float]:
    return [x - w / 2, y - h, x + w / 2, y]


# ------------------------------------------------------------------ one checked reader


@pytest.mark.parametrize("command", ["predict", "track", "adapt"])
def test_a_binary_homography_file_is_one_line_naming_it(command, tmp_path, trajpred, tiny_video):
    """A matrix saved with np.save ended in a UnicodeDecodeError traceback."""
    np.save(tmp_path / "H.npy", low_camera())
    out = tmp_path / ("out.csv" if command == "track" else "out")
    done = trajpred(
        command, tiny_video, "--out", out, "--homography", tmp_path / "H.npy", "--no-progress"
    )
    assert_one_line(done, "H.npy", "not a text file")


def test_the_api_reads_a_binary_homography_file_as_one_error(tmp_path, cv_checkpoint):
    np.save(tmp_path / "H.npy", low_camera())
    with pytest.raises(TrajpredError, match="H.npy: .*not a text file") as refused:
        Forecaster(cv_checkpoint, fps=FPS, homography=tmp_path / "H.npy")
    assert "\n" not in str(refused.value)


# ------------------------------------------------------------------ up to scale


BAD_MATRICES = {
    "singular": ([[1, 2, 3], [4, 5, 6], [7, 8, 9]], "singular"),
    "singular, scaled up": (1e8 * np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9.0]]), "singular"),
    "zero": (np.zeros((3, 3)), "singular"),
    "all NaN": (np.full((3, 3), np.nan), "NaN"),
    "infinite": ([[1, 0, 0], [0, np.inf, 0], [0, 0, 1]], "infinite"),
}


@pytest.mark.parametrize("name", list(BAD_MATRICES))
def test_a_bad_matrix_is_refused_alike_as_a_file_and_as_an_array(name, tmp_path, cv_checkpoint):
    """One check for both: the API raised numpy's LinAlgError for a singular matrix, accepted
    an all-NaN one, and accepted a singular one that a file (absolute determinant test) did
    not, or the other way round once scaled."""
    h, problem = BAD_MATRICES[name]
    h = np.asarray(h, np.float64)
    path = tmp_path / "H.txt"
    path.write_text("\n".join(" ".join(repr(float(v)) for v in row) for row in h) + "\n")
    with pytest.raises(InputError, match=problem) as from_file:
        Forecaster(cv_checkpoint, fps=FPS, homography=path)
    with pytest.raises(ValueError, match=problem) as from_array:
        Forecaster(cv_checkpoint, fps=FPS, homography=h)
    assert str(from_array.value).startswith("homography")
    assert str(from_file.value) == f"{path}: {from_array.value}"


@pytest.mark.parametrize("scale", [1e-9, 1e-4, -1e-5])
def test_a_scaled_homography_is_the_same_homography(scale, tmp_path, cv_checkpoint):
    """A homography is defined up to scale: a file of H x 1e-4 was "singular" (an absolute
    determinant test) while the API accepted the same matrix; both now forecast the same."""
    h = np.diag([0.5, 0.5, 1.0])  # 2 px per metre
    path = tmp_path / "H.txt"
    path.write_text(format_homography(h * scale))
    np.testing.assert_allclose(read_homography(path), h * scale, rtol=1e-11)
    outs = []
    for homography in (h, path, h * scale):
        f = Forecaster(cv_checkpoint, fps=FPS, homography=homography)
        for frame in range(1, 6):
            out = f.update([1], np.array([box_at(100.0 + 5 * frame)]))
        outs.append(out)
    for out in outs[1:]:
        np.testing.assert_allclose(out.world_xy, outs[0].world_xy, rtol=1e-6)
        np.testing.assert_allclose(out.xy, outs[0].xy, rtol=1e-6)


# ------------------------------------------------------------------ no horizon, no refusal


def test_exact_pairs_from_a_camera_looking_straight_down_are_fitted(tmp_path, trajpred):
    """Exact pairs from a camera with no perspective: OpenCV's fit leaves a perspective term of
    about 1e-12 whose sign decided a "horizon" that put every point above it, for about half
    of all point sets. Each is fitted now, and the file maps every image point."""
    h = straight_down()
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.linspace(0, 639, 9), np.linspace(0, 383, 7)), -1).reshape(-1, 2)
    for n in range(8):
        image = rng.uniform([0, 0], [640, 384], (4 + n % 4, 2))
        world = apply_homography(h, image)
        fmt = lambda a: " ".join(f"{x!r},{y!r}" for x, y in a.tolist())  # noqa: E731
        out = tmp_path / f"H{n}.txt"
        done = trajpred(
            "homography", "--image-points", fmt(image), "--world-points", fmt(world), "--out", out
        )
        assert done.returncode == 0, (n, done.stderr)
        fitted = read_homography(out)
        plane = GroundPlane(fitted, str(out))
        got = plane.to_ground(grid, 1, np.zeros(len(grid)))
        np.testing.assert_allclose(got, apply_homography(h, grid), atol=1e-4)


def test_a_rounding_level_perspective_term_is_no_horizon():
    """A straight-down homography whose perspective terms are rounding noise (as an inverse or
    a product of matrices leaves them) used to refuse every point as above the horizon when
    that noise was negative; a real horizon is still enforced."""
    h = straight_down()
    h[2, :2] = [3e-18, -2e-17]
    points = np.array([[0.0, 0.0], [639.0, 383.0], [320.0, 200.0]])
    np.testing.assert_allclose(
        GroundPlane(h).to_ground(points, 1, np.arange(3)), apply_homography(h, points), atol=1e-9
    )
    with pytest.raises(TrajpredError, match="above the horizon"):
        GroundPlane(low_camera()).to_ground(np.array([[320.0, -200.0]]), 1, np.zeros(1))


# ------------------------------------------------------------------ one line from us


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ("--image-points", "1e200,0 1e201,0 0,1e200 1e200,1e200"),
            ("image points must be pixels", "1e+06"),
        ),
        (
            ("--image-points", "0,0 100,0 100,100 0,100", "--check", "1" + "0" * 400 + "x10"),
            ("--check",),
        ),
    ],
)
def test_absurd_input_to_the_homography_command_is_one_line_of_ours(
    args, words, tmp_path, trajpred
):
    """Points near the float limit printed four numpy overflow warnings before the error; an
    absurd --check size ended in an OverflowError traceback."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        done = trajpred(
            "homography", *args, "--world-points", "0,0 1,0 1,1 0,1", "--out", tmp_path / "H.txt"
        )
    assert not [w for w in seen if issubclass(w.category, RuntimeWarning)], seen
    assert_one_line(done, *words)
    assert not (tmp_path / "H.txt").exists()


def test_check_homography_returns_a_float_copy():
    from trajpred.geometry import check_homography

    h = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    got = check_homography(h)
    assert got.dtype == np.float64 and got.shape == (3, 3)
    with pytest.raises(ValueError, match="homography must be a 3x3 matrix"):
        check_homography(np.eye(2))
