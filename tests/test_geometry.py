"""The ground plane: reading and fitting homographies, mapping points both ways, and the
`trajpred homography` command."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_trajpred

from trajpred.cli import main
from trajpred.errors import TrajpredError
from trajpred.geometry import (
    MIN_DEPTH_RATIO,
    GroundPlane,
    apply_homography,
    fit_homography,
    format_homography,
    read_homography,
)
from trajpred.synth.world import Camera, CameraConfig


def low_camera() -> np.ndarray:
    """Image -> ground homography of a 4 m high camera tilted 20 degrees, 640x384 pixels: the
    horizon lies 10 px above the image, so depth changes a lot from bottom to top."""
    return Camera.from_config(CameraConfig(height_m=4.0, tilt_deg=20.0), 640, 384).image_to_world


IMAGE_POINTS = np.array([[100.0, 380.0], [540.0, 370.0], [420.0, 150.0], [200.0, 160.0]])


def test_fit_recovers_a_known_homography_exactly():
    h = low_camera()
    image = np.vstack([IMAGE_POINTS, [[320.0, 250.0], [600.0, 300.0]]])
    fit = fit_homography(image, apply_homography(h, image))
    # OpenCV's least squares stops refining at about 1e-6 relative: sub-millimetre here.
    np.testing.assert_allclose(fit.h, h / h[2, 2], rtol=1e-4, atol=1e-6)
    assert fit.max_m < 1e-3 and fit.errors_m.shape == (6,)
    grid = np.stack(np.meshgrid(np.linspace(0, 639, 5), np.linspace(40, 383, 5)), -1)
    np.testing.assert_allclose(apply_homography(fit.h, grid), apply_homography(h, grid), atol=5e-3)


def test_written_homography_reads_back(tmp_path):
    h = low_camera()
    path = tmp_path / "H.txt"
    path.write_text(format_homography(h, "fitted\nfrom 4 pairs"))
    assert path.read_text().startswith("# fitted\n# from 4 pairs\n")
    np.testing.assert_allclose(read_homography(path), h, rtol=1e-11)


@pytest.mark.parametrize(
    "image, world, message",
    [
        (IMAGE_POINTS[:3], IMAGE_POINTS[:3], "3 point pairs: a homography needs at least 4"),
        (IMAGE_POINTS, IMAGE_POINTS[:3], "4 image points but 3 world points"),
        # Three of the four image points on the line y = x.
        (
            [[0, 0], [10, 10], [20, 20], [30, 5]],
            IMAGE_POINTS,
            "image points are (nearly) collinear",
        ),
        (IMAGE_POINTS, [[0, 0], [1, 0], [2, 0], [3, 0]], "world points are (nearly) collinear"),
        (IMAGE_POINTS, [[0, 0], [1, np.nan], [2, 2], [0, 3]], "finite"),
        (IMAGE_POINTS, [[0, 0], [4, 0], [4, 6], [0, 6]] + np.array([5e5, 4e6]), "local metres"),
        # The last two world points swapped: the fit folds part of the image over the horizon.
        (IMAGE_POINTS, [[0, 0], [4, 0], [0, 6], [4, 6]], "same order"),
    ],
)
def test_degenerate_point_sets_are_refused(image, world, message):
    with pytest.raises(TrajpredError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit_homography(np.array(image, float), np.array(world, float))


def test_points_map_to_the_ground_and_back():
    ground = GroundPlane(low_camera(), "H.txt")
    px = np.array([[320.0, 380.0], [100.0, 200.0], [600.0, 30.0]])
    m = ground.to_ground(px, 1, np.arange(3))
    back, valid = ground.to_image(m[:, None], m)
    np.testing.assert_allclose(back[:, 0], px, atol=1e-6)
    assert valid.all()


def test_bad_track_points_name_the_frame_and_the_track():
    ground = GroundPlane(low_camera(), "H.txt")
    horizon_v = -(ground.h[2, 0] * 320.0 + ground.h[2, 2]) / ground.h[2, 1]
    for v, what in ((horizon_v, "non-finite"), (horizon_v - 50, "above the horizon")):
        with pytest.raises(TrajpredError, match=f"H.txt: frame 12, track 7: .* {what}"):
            ground.to_ground(np.array([[300.0, 200.0], [320.0, v]]), 12, np.array([3, 7]))
    with pytest.raises(TrajpredError, match=r"frame 5, track 2: .* m from the ground plane"):
        ground.to_ground(np.array([[320.0, horizon_v + 0.01]]), 5, np.array([2]))


def test_steps_near_or_behind_the_camera_stay_at_the_last_one_before():
    ground = GroundPlane(low_camera())
    here = np.array([[0.0, 6.0]])
    # Walking straight at the camera (which stands at the origin), 1.5 m per step.
    y = 6.0 - 1.5 * np.arange(1, 7)
    path = np.stack([np.zeros(6), y], 1)[None]
    px, valid = ground.to_image(path, here)
    assert np.isfinite(px).all()
    # Depth along the optical axis of a ground point (0, y) seen 4 m up, tilted 20 degrees.
    depth = lambda y: y * np.cos(np.radians(20)) + 4 * np.sin(np.radians(20))  # noqa: E731
    expected = depth(y) > MIN_DEPTH_RATIO * depth(6.0)
    assert valid[0].tolist() == expected.tolist() and 0 < expected.sum() < 6
    last = int(expected.sum()) - 1
    np.testing.assert_allclose(
        px[0, : last + 1], apply_homography(ground.h_inv, path[0, : last + 1])
    )
    np.testing.assert_allclose(px[0, last + 1 :], np.repeat(px[0, last : last + 1], 5 - last, 0))


def test_local_scales_match_finite_differences():
    ground = GroundPlane(low_camera())
    px = np.array([[320.0, 300.0], [80.0, 60.0]])
    m = apply_homography(ground.h, px)
    eps = 1e-3
    for j in range(2):
        d_u = (apply_homography(ground.h, px[j] + [eps, 0]) - m[j]) / eps
        d_v = (apply_homography(ground.h, px[j] + [0, eps]) - m[j]) / eps
        np.testing.assert_allclose(
            ground.image_jacobian(px[j : j + 1])[0], np.column_stack([d_u, d_v]), rtol=1e-4
        )
        # pixels per metre: the square root of the area scale of ground -> image
        jac = np.column_stack([d_u, d_v])
        np.testing.assert_allclose(
            ground.pixels_per_metre(m[j]), 1 / np.sqrt(abs(np.linalg.det(jac))), rtol=1e-4
        )


# ------------------------------------------------------------------ the command


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["homography", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_command_fits_and_writes_h(tmp_path, capsys):
    h = low_camera()
    image = np.vstack([IMAGE_POINTS, [[320.0, 250.0]]])
    world = apply_homography(h, image)
    fmt = lambda a: " ".join(f"{x!r},{y!r}" for x, y in a.tolist())  # noqa: E731
    code, out, err = run_cli(
        capsys,
        *("--image-points", fmt(image), "--world-points", fmt(world)),
        *("--out", tmp_path / "H.txt", "--check", "640x384"),
    )
    assert code == 0, err
    assert "fitted from 5 point pairs: reprojection error rms 0.000" in out
    assert "top left" in out and "bottom centre (319.5, 383) px -> (" in out
    np.testing.assert_allclose(
        read_homography(tmp_path / "H.txt"), h / h[2, 2], rtol=1e-4, atol=1e-6
    )
    # The same pairs from a CSV with a header row.
    rows = "\n".join(
        f"{a!r},{b!r},{c!r},{d!r}" for a, b, c, d in np.hstack([image, world]).tolist()
    )
    (tmp_path / "pairs.csv").write_text("x,y,X,Y\n" + rows + "\n")
    code, out, err = run_cli(capsys, "--csv", tmp_path / "pairs.csv", "--out", tmp_path / "H2.txt")
    assert code == 0, err
    np.testing.assert_allclose(
        read_homography(tmp_path / "H2.txt"), h / h[2, 2], rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("--image-points", "0,0 1,0 1,1", "--world-points", "0,0 1,0 1,1"), "at least 4"),
        (("--image-points", "0,0 1,1 2,2 3,0", "--world-points", "0,0 1,0 1,1 0,1"), "collinear"),
        (("--image-points", "0,0 1,0 1,inf 0,1", "--world-points", "0,0 1,0 1,1 0,1"), "finite"),
        (("--image-points", "0,0 1,0 1 0,1", "--world-points", "0,0 1,0 1,1 0,1"), "'1' is not"),
        (
            (
                "--image-points",
                "0,0 1,0 1,1 0,1",
            ),
            "give --image-points and --world-points",
        ),
        (("--csv", "missing.csv"), "cannot read"),
    ],
)
def test_command_refuses_bad_input_in_one_line(tmp_path, capsys, args, message):
    code, out, err = run_cli(capsys, *args, "--out", tmp_path / "H.txt")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert message in err and err.startswith("trajpred homography: error:")
    assert not (tmp_path / "H.txt").exists()


@pytest.mark.slow
def test_console_script_fits_from_a_csv_and_refuses_degenerate_pairs(tmp_path):
    """`python -m trajpred homography` as a user runs it: point pairs from a CSV give H.txt;
    pairs with three collinear points are one line and exit 2, and write nothing."""
    h = low_camera()
    image = np.vstack([IMAGE_POINTS, [[320.0, 250.0]]])
    world = apply_homography(h, image)
    rows = [f"{a!r},{b!r},{c!r},{d!r}" for a, b, c, d in np.hstack([image, world]).tolist()]
    (tmp_path / "pairs.csv").write_text("\n".join(["x,y,X,Y", *rows]) + "\n")

    def cli(*args):
        return run_trajpred("homography", *args, timeout=120)

    done = cli("--csv", tmp_path / "pairs.csv", "--out", tmp_path / "H.txt")
    assert done.returncode == 0, done.stderr
    assert "reprojection error" in done.stdout
    np.testing.assert_allclose(
        read_homography(tmp_path / "H.txt"), h / h[2, 2], rtol=1e-4, atol=1e-6
    )
    bad = cli(
        "--image-points",
        "0,0 1,1 2,2 3,0",
        "--world-points",
        "0,0 1,0 1,1 0,1",
        "--out",
        tmp_path / "H2.txt",
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "collinear" in bad.stderr and not (tmp_path / "H2.txt").exists()
