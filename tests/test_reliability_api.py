"""The Python API keeps the CLI's promises: `trajpred.Forecaster` and `trajpred.evaluate` check
every argument by the rules the CLI applies to the same setting (one function for both), raise
a ValueError that is also a TrajpredError and names the argument, and never hand out a NaN.
Also: a video write that fails (a full disk) is one line of ours, without OpenCV's own.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import box_at

import trajpred
from trajpred import Forecaster
from trajpred.cli import main
from trajpred.demo import untrained_checkpoint
from trajpred.errors import TrajpredError

ROOT = Path(__file__).resolve().parents[1]
FPS = 10.0  # 4 frames per 0.4 s model step


def refused(call, argument: str, *words: str) -> str:
    """`call()` raises a ValueError that is a TrajpredError (one line in the CLI), whose message
    starts with the argument's name and holds `words`; returns the message."""
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert isinstance(caught.value, TrajpredError), repr(caught.value)
    assert message.startswith(f"{argument} "), message
    assert "\n" not in message and len(message) <= 300, message
    for word in words:
        assert word in message, message
    return message


def test_forecaster_settings_follow_the_cli_rules(cv_checkpoint):
    """The rules of predict's --fps (at most 1000), forecast.k (an integer in [0, 100]) and
    --device; `fps=1e300` was accepted, `k=101` a SettingError that is no ValueError."""
    make = lambda **kw: lambda: Forecaster(cv_checkpoint, **{"fps": FPS, **kw})  # noqa: E731
    refused(make(fps=1e300), "fps", "(0, 1000]")
    refused(make(fps=True), "fps")
    refused(make(k=101), "k", "[0, 100]", "101")
    refused(make(k=2.5), "k", "integer")
    refused(make(k=-1), "k")
    refused(make(device="tpu"), "device", "'tpu'")
    refused(make(calibration="live"), "calibration", "'online' or 'fixed'")
    refused(lambda: Forecaster(3, fps=FPS), "checkpoint", "path")
    assert Forecaster(cv_checkpoint, fps=np.float32(25), k=np.int64(2)).fps == 25.0


def test_an_empty_frame_as_empty_arrays_gives_empty_forecasts(cv_checkpoint):
    forecaster = Forecaster(cv_checkpoint, fps=FPS)
    for frame in range(1, 6):
        f = forecaster.update([7], np.array([box_at(100.0 + 5 * frame)]))
    assert len(f) == 1
    empty = forecaster.update([], [])  # the track was not seen on this frame
    assert len(empty) == 0 and empty.xy.shape == (0, 12, 2) and forecaster.frame_id == 6
    assert len(forecaster.update(np.array([], int), np.zeros((0, 4)))) == 0


@pytest.mark.parametrize(
    "ids, words",
    [
        (["a"], "got 'a'"),
        (["7"], "got '7'"),  # a str is no id, even one that reads as a number
        ([2**70], f"got {2**70}"),  # beyond int64: was Python's OverflowError
        ([2**63], f"got {2**63}"),  # a uint64 that wrapped to a negative id
        ([2**53], f"got {2**53}"),  # as in track files: float64 cannot hold every id beyond
        ([-1], "got -1"),
        ([None], "got None"),
        ([True], "got True"),
    ],
    ids=["str", "numeric-str", "2**70", "2**63", "2**53", "negative", "None", "bool"],
)
def test_track_ids_follow_the_track_file_rules(ids, words, cv_checkpoint):
    forecaster = Forecaster(cv_checkpoint, fps=FPS)
    refused(lambda: forecaster.update(ids, np.array([box_at(100.0)])), "track_ids", words)
    sv = SimpleNamespace(xyxy=np.array([box_at(100.0)]), tracker_id=np.array(ids), class_id=None)
    refused(lambda: forecaster.update(sv), "track_ids", words)
    refused(
        lambda: forecaster.update([1], np.array([box_at(100.0)]), classes=["person"]), "classes"
    )
    assert forecaster.frame_id == 0  # a refused frame does not count


@pytest.mark.parametrize("frame_id", [2**64, 2**53, 0, 2.0, "3"])
def test_frame_ids_follow_the_track_file_rules(frame_id, cv_checkpoint):
    """Frame ids are integers in [1, 2**53 - 1]: 2**64 was an OverflowError from numpy, and
    2**70 on a frame with a track hung in the sampling loop (floats cannot count that far)."""
    forecaster = Forecaster(cv_checkpoint, fps=FPS)
    refused(lambda: forecaster.update([], np.zeros((0, 4)), frame_id=frame_id), "frame_id")
    last = 2**53 - 1  # the largest frame id: the model's steps still count up to it
    for frame in range(last - 12, last + 1, 4):
        f = forecaster.update([1], np.array([box_at(frame - last + 120.0)]), frame_id=frame)
    assert f.track_id.tolist() == [1] and np.isfinite(f.xy).all()


def test_absurd_coordinates_are_refused_and_forecasts_are_never_nan(cv_checkpoint):
    """Box values beyond +-1e6 (the limit for track files) gave NaN forecasts silently; at the
    limit, with zero-size boxes and the shipped model (boxes scale its input), all is finite."""
    forecaster = Forecaster(cv_checkpoint, fps=FPS)
    for bad in (1e300, 2e6, -1e7):
        refused(lambda b=bad: forecaster.update([1], np.array([box_at(b)])), "xyxy", "1e+06")
    refused(lambda: forecaster.update([1], [["a", 0, 1, 1]]), "xyxy", "numbers")
    refused(lambda: forecaster.update([1], [[2**2000, 0, 1, 1]]), "xyxy", "1e+06")
    sv = SimpleNamespace(xyxy=np.array([box_at(1e300)]), tracker_id=np.array([1]), class_id=None)
    refused(lambda: Forecaster(cv_checkpoint, fps=FPS).update(sv), "xyxy")

    forecaster = Forecaster(fps=FPS, k=3)  # the shipped video model
    edge = 1e6
    for frame in range(1, 14):
        far = edge - 1e5 * (frame % 3)  # jumping 100 km a frame, along the edge
        f = forecaster.update(
            [1, 2, 3],
            np.array([[-edge, -edge, -edge, -edge], [far, far, edge, edge], [0, 0, 0, 1e-9]]),
        )
    assert len(f) == 3
    for values in (f.xy, f.r50, f.r90, f.samples):
        assert np.isfinite(values).all()


# ---------------------------------------------------------------- trajpred.evaluate


@pytest.mark.parametrize(
    "kwargs, argument, words",
    [
        ({"k": -1}, "k", "[0, 100]"),  # returned a score
        ({"k": 2.5}, "k", "integer"),  # a TypeError about slices
        ({"k": 101}, "k", "[0, 100]"),  # accepted; the CLI's cap is MAX_K = 100
        ({"kde_windows": -1}, "kde_windows", ">= 0"),
        ({"fps": -1.0}, "fps", "[0, 1000]"),
        ({"fmt": "xml"}, "fmt", "'xml'"),
        ({"calibration": "live"}, "calibration", "'online' or 'fixed'"),
        ({"scene": 3}, "scene", "str"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_evaluate_arguments_follow_the_cli_rules(kwargs, argument, words, eth_ucy_like_root):
    args = {"checkpoint": untrained_checkpoint(eth_ucy_like_root / "c.pt")}
    args |= {"data": str(eth_ucy_like_root), "scene": "toy", "k": 0, "kde_windows": 10}
    refused(lambda: trajpred.evaluate(**{**args, **kwargs}), argument, *words)


def test_the_evaluate_command_checks_its_flags_with_the_same_rules(
    tmp_path, capfd, eth_ucy_like_root
):
    """`trajpred evaluate --k 101` ran (its only check was --k >= 0); now the API's rule, named
    as the flag, before any file is read."""
    ckpt = untrained_checkpoint(tmp_path / "c.pt")
    base = ["evaluate", "--checkpoint", ckpt, "--data", eth_ucy_like_root, "--scene", "toy"]
    for flag, value, words in (
        ("--k", "101", "--k must be an integer in [0, 100], got 101"),
        ("--kde-windows", "-1", "--kde-windows must be an integer >= 0, got -1"),
        ("--fps", "1e9", "--fps must be in [0, 1000], got 1000000000.0"),
    ):
        try:
            code = main([str(a) for a in [*base, flag, value]])
        except SystemExit as e:
            code = e.code
        err = capfd.readouterr().err
        assert code == 2 and err.count("\n") == 1 and words in err, err


# ---------------------------------------------------------------- library noise


@pytest.mark.slow  # a fresh interpreter with a file size limit
def test_a_video_write_that_fails_is_one_line_without_opencvs_own(tmp_path):
    """On a full disk (here a file size limit: EFBIG) OpenCV printed `[ WARN:0@...] global
    cap_ffmpeg.cpp:219 write FFmpeg: Failed to write frame` once per frame beside our line."""
    code = textwrap.dedent(
        """
        import resource, signal, sys
        import numpy as np
        from trajpred.errors import TrajpredError
        from trajpred.video import VideoWriter

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16000, 16000))
        writer = VideoWriter(sys.argv[1], 25, 320, 240)
        noise = np.random.default_rng(0).integers(0, 255, (20, 240, 320, 3), dtype=np.uint8)
        for frame in noise:
            writer.write(frame)
        writer.close()
        try:
            writer.verify()
        except TrajpredError as e:
            print(e, file=sys.stderr)
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENCV_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "v.mp4")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "v.mp4: cannot write the video" in lines[0], done.stderr
