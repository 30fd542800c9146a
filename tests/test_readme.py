"""The README's Python examples run, offline, so they cannot rot, and print what they say.

Each ```python block of the "Python API" section runs on its own, in a folder laid out as the
examples expect: `clip.mp4` (a short synthetic video at 25 fps), `data/` (the shipped models)
and `../shared/data/eth_ucy` (the real ETH/UCY data where present, else a small stand-in of
synthetic walks in its layout).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DIR, curvy_walks, readme_table

from trajpred.cli import main
from trajpred.detect import SHIPPED_DETECTOR
from trajpred.formats import read_mot, read_tracks, write_eth_ucy
from trajpred.pipeline import SHIPPED_FORECASTER

REPO = Path(__file__).resolve().parents[1]


def python_examples(section: str = "Python API") -> list[str]:
    """The ```python blocks of one `## section` of README.md, in order."""
    text = (REPO / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory) -> Path:
    for needed in (SHIPPED_DETECTOR, SHIPPED_FORECASTER, REPO / "data/checkpoints/eth_ucy"):
        if not needed.exists():
            pytest.skip(f"{needed} is absent")
    root = tmp_path_factory.mktemp("readme")
    work = root / "work"
    work.mkdir()
    (work / "data").symlink_to(REPO / "data")
    synth = ["synth", "--out", str(root / "scene"), "--seed", "1", "--duration", "4"]
    assert main([*synth, "--fps", "25", "--width", "320", "--height", "192"]) == 0
    shutil.copy(root / "scene" / "video.mp4", work / "clip.mp4")
    if SHARED_DIR.is_dir():
        (root / "shared").symlink_to(SHARED_DIR)
    else:
        test = root / "shared/data/eth_ucy/eth/test"
        test.mkdir(parents=True)
        write_eth_ucy(test / "walks.txt", curvy_walks(12, n_steps=30))
    return work


def test_readme_has_the_examples():
    blocks = python_examples()
    assert len(blocks) == 4
    assert "model.track(" in blocks[0] and "forecaster.update(result)" in blocks[0]


NUMBER = r"-?\d+(?:\.\d+)?"  # what the examples print for a finite number (never nan)


def check_tracking_loop(out: str, work: Path) -> None:
    """`track N: (x, y) px on frame F`, 3.2 s (80 frames at 25 fps) ahead, for tracks with a
    forecast, every one near the 320 x 192 image (ultralytics logs its frames between them)."""
    lines = [line for line in out.splitlines() if line.startswith("track ")]
    pattern = rf"track (\d+): \(({NUMBER}), ({NUMBER})\) px on frame (\d+)"
    rows = np.array([re.fullmatch(pattern, line).groups() for line in lines], float)
    assert len(rows) > 100, out[-2000:]  # most of the 13 people, on most of the 100 frames
    assert (np.abs(rows[:, 1:3] - [160, 96]) < [320, 192]).all(), rows[:, 1:3]
    # A track's first forecast comes one step (10 frames) after it appears, 80 frames ahead.
    assert rows[:, 3].min() >= 1 + 10 + 80 and rows[:, 3].max() == 100 + 80


def check_one_walker(out: str, work: Path) -> None:
    """Track 7 at x = 145 px on frame 9, walking right at 20 px per 0.4 s step: the next three
    positions near constant velocity (x 165, 185, 205; y 300)."""
    head, body = out.split(" ", 1)
    assert head == "[7]", out
    xy = np.array(re.findall(NUMBER, body), float).reshape(-1, 2)
    assert xy.shape == (3, 2), out
    np.testing.assert_allclose(xy[:, 0], 145 + 20 * np.arange(1, 4), atol=8)
    np.testing.assert_allclose(xy[:, 1], 300, atol=4)


def check_pipeline(out: str, work: Path) -> None:
    """`N tracks`: the ids of tracks.csv, which holds boxes of the scene's 13 people (917 in
    the ground truth) on the video's 100 frames, in the image."""
    count = re.fullmatch(r"(\d+) tracks\n", out)
    assert count, out
    tracks = read_tracks(work / "tracks.csv")
    truth = read_mot(work.parent / "scene" / "gt_mot.txt")
    assert int(count.group(1)) == len(tracks.track_ids()) >= len(truth.track_ids())
    assert 0.7 * len(truth) < len(tracks) < 2 * len(truth)
    assert tracks.frame_id.min() >= 1 and tracks.frame_id.max() <= 100
    assert (tracks.xy >= -10).all() and (tracks.xy <= [330, 202]).all()


def check_evaluation(out: str, work: Path) -> None:
    """ADE, FDE and best-of-20 ADE of the shipped ETH model: README's results table where the
    real data is, else finite and ordered on the stand-in; and no warning (None)."""
    first, second = out.strip().splitlines()
    ade, fde, min_ade = (float(v) for v in first.split())
    assert second == "None"
    if SHARED_DIR.is_dir():
        row = readme_table("| scene | windows | ADE |")["eth"]
        printed = [f"{v:.3f}" for v in (ade, fde, min_ade)]
        assert printed == [row["ADE"], row["FDE"], row["minADE20"]]
    else:
        assert np.isfinite([ade, fde, min_ade]).all() and 0 < min_ade <= ade < fde


CHECKS = [check_tracking_loop, check_one_walker, check_pipeline, check_evaluation]


@pytest.mark.parametrize("index", range(4))
def test_readme_python_example_runs(index, example_dir, monkeypatch, capsys):
    monkeypatch.chdir(example_dir)
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    code = python_examples()[index]
    exec(compile(code, f"README.md Python API example {index + 1}", "exec"), {})
    CHECKS[index](capsys.readouterr().out, example_dir)
