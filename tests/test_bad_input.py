"""Bad input through the CLI, as a user meets it: one line naming the file and the problem,
exit code 2, no traceback, and nothing already written damaged."""

from collections import OrderedDict

import pytest
import torch
from conftest import build_tracks, camera_checkpoint

from trajpred.checkpoint import save_checkpoint
from trajpred.model import Forecaster, ForecasterConfig


class NotTensors:  # pickled by the "malicious" checkpoint below
    pass


def good_checkpoint(path, **cfg):
    model = Forecaster(ForecasterConfig(hidden_size=16, embed_size=8, num_modes=2, **cfg))
    save_checkpoint(path, {"model_config": vars(model.cfg), "model": model.state_dict()})


def truncated(tmp):
    good_checkpoint(tmp / "c.pt")
    data = (tmp / "c.pt").read_bytes()
    (tmp / "c.pt").write_bytes(data[: len(data) // 2])
    return tmp / "c.pt"


def pickled_object(tmp):
    torch.save({"format": "trajpred-forecaster", "version": 1, "model": NotTensors()}, tmp / "c.pt")
    return tmp / "c.pt"


def foreign(tmp):
    torch.save(OrderedDict(weight=torch.zeros(3)), tmp / "c.pt")
    return tmp / "c.pt"


def garbage(tmp):
    (tmp / "c.pt").write_bytes(b"\x00\x01not a checkpoint at all" * 10)
    return tmp / "c.pt"


def bad_weights(tmp):
    model = Forecaster(ForecasterConfig(hidden_size=16, embed_size=8, num_modes=2))
    cfg = dict(vars(model.cfg), hidden_size=32)  # config says 32, weights are 16
    save_checkpoint(tmp / "c.pt", {"model_config": cfg, "model": model.state_dict()})
    return tmp / "c.pt"


@pytest.mark.parametrize(
    "make, message",
    [
        (truncated, "truncated or corrupt"),
        (pickled_object, "refused"),
        (foreign, "not a trajpred checkpoint"),
        (garbage, "not a readable checkpoint"),
        (bad_weights, "do not fit its config"),
        (lambda tmp: tmp / "absent.pt", "checkpoint not found"),
    ],
)
def test_bad_checkpoints(make, message, tmp_path, eth_ucy_like_root, trajpred):
    path = make(tmp_path)
    done = trajpred(
        "evaluate", "--checkpoint", str(path), "--data", str(eth_ucy_like_root), "--scene", "toy"
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and path.name in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_resume_with_a_different_model_is_refused_and_keeps_the_checkpoint(
    tmp_path, eth_ucy_like_root, trajpred
):
    out = tmp_path / "run"
    out.mkdir()
    good_checkpoint(out / "last.pt")
    before = (out / "last.pt").read_bytes()
    done = trajpred(
        "train",
        "--out",
        str(out),
        "--resume",
        "--set",
        f"data.root={eth_ucy_like_root}",
        "data.test_scene=toy",
        "model.hidden_size=64",
    )
    assert (
        done.returncode == 2 and "does not match" in done.stderr and "hidden_size=16" in done.stderr
    )
    assert (out / "last.pt").read_bytes() == before


@pytest.mark.parametrize(
    "content, message",
    [
        ("1\t1\t0.5\t0.5\n2\t1\t0.5\n", ":2: "),  # wrong column count, line 2
        ("1\t1\t0.5\t0.5\n2\t1\tabc\t0.5\n", ":2: "),  # not a number
        ("1\t1\tnan\t0.5\n", ":1: "),  # NaN
        ("1\t1\t0.5\t0.5\n1\t1\t0.6\t0.5\n", ":2: "),  # duplicate (frame, id)
        ("", "empty"),
    ],
)
def test_malformed_track_files(content, message, tmp_path, eth_ucy_like_root, trajpred):
    bad = eth_ucy_like_root / "toy" / "test" / "bad.txt"
    bad.write_text(content)
    good_checkpoint(tmp_path / "c.pt")
    done = trajpred(
        "evaluate",
        "--checkpoint",
        str(tmp_path / "c.pt"),
        "--data",
        str(eth_ucy_like_root),
        "--scene",
        "toy",
    )
    assert done.returncode == 2
    assert "bad.txt" in done.stderr and message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_short_tracks_are_skipped_and_counted(tmp_path, eth_ucy_like_root, trajpred):
    (eth_ucy_like_root / "toy" / "train" / "short.txt").write_text(
        "".join(f"{10 * f}\t77\t{0.4 * f}\t0.0\n" for f in range(5))
    )
    done = trajpred(
        "train",
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
        "--set",
        f"data.root={eth_ucy_like_root}",
        "data.test_scene=toy",
        "train.epochs=1",
        "model.hidden_size=16",
        "model.embed_size=8",
        "model.num_modes=2",
    )
    assert done.returncode == 0, done.stderr
    assert (
        "41 tracks" in done.stdout and "(1 tracks shorter than one window skipped)" in done.stdout
    )


def test_output_folder_that_cannot_be_written(tmp_path, eth_ucy_like_root, trajpred):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    done = trajpred(
        "train",
        "--out",
        str(blocker / "run"),
        "--set",
        f"data.root={eth_ucy_like_root}",
        "data.test_scene=toy",
        "train.epochs=1",
    )
    assert done.returncode == 2 and "cannot create the output folder" in done.stderr
    assert done.stderr.count("\n") == 1 and blocker.read_text() == "I am a file"


def test_config_with_unknown_key_and_wrong_type(tmp_path, trajpred):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epoch: 3\n")
    done = trajpred("train", "--config", str(cfg))
    assert (
        done.returncode == 2
        and "c.yaml" in done.stderr
        and "did you mean 'train.epochs'" in done.stderr
    )
    cfg.write_text("train:\n  epochs: three\n")
    done = trajpred("train", "--config", str(cfg))
    assert done.returncode == 2 and "'train.epochs' must be int" in done.stderr


@pytest.mark.parametrize("units", ["px", "m"])
def test_adapt_refuses_a_camera_model_of_the_other_units(units, tmp_path, trajpred):
    """A model adapted in pixels, adapted again with --homography (metres), or one adapted in
    metres without it, would read its scene input in the wrong units: one line, exit 2."""
    from trajpred.formats import write_csv

    camera = camera_checkpoint(tmp_path / f"{units}.pt", units)
    tracks = build_tracks(n_tracks=4, n_frames=40, units="px", with_boxes=True)
    tracks.xy *= 10.0  # pixels
    write_csv(tmp_path / "tracks.csv", tracks)
    (tmp_path / "H.txt").write_text("0.1 0 0\n0 0.1 0\n0 0 1\n")
    args = ["adapt", "--tracks", str(tmp_path / "tracks.csv"), "--fps", "10"]
    args += ["--checkpoint", camera, "--out", str(tmp_path / "out"), "--no-progress"]
    done = trajpred(*args, *(["--homography", str(tmp_path / "H.txt")] if units == "px" else []))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"{units}.pt" in done.stderr and "adapted to this camera" in done.stderr
    assert not (tmp_path / "out" / "adapted.pt").exists()


@pytest.mark.slow  # predict starts its writer process
def test_predict_refuses_a_pixel_camera_model_with_a_homography(video_assets, tmp_path, trajpred):
    camera = camera_checkpoint(tmp_path / "px.pt", "px")
    args = ["predict", str(video_assets.scene.video), "--out", str(tmp_path / "out")]
    args += ["--weights", video_assets.weights, "--imgsz", "320", "--no-progress"]
    done = trajpred(
        *args, "--checkpoint", camera, "--homography", str(video_assets.scene.homography)
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "px.pt" in done.stderr
    assert "adapted to this camera in pixels" in done.stderr
    assert not (tmp_path / "out" / "forecasts.csv").exists()
