"""The examples of README.md and of the documentation (docs/**/*.md) run, offline, so they
cannot rot, and print what they say; their command lines are ones the console script accepts.

One mechanism for every page (conftest's `doc_blocks`):

- each ```python block carries an `<!-- example: NAME -->` comment on the line before it, and
  runs on its own with the check CHECKS[NAME] on what it prints, in a folder laid out as the
  examples expect: `clip.mp4` (a short synthetic video at 25 fps), `data/` (the shipped models)
  and `../shared/data/eth_ucy` (the real ETH/UCY data where present, else a small stand-in of
  synthetic walks in its layout). A block shown on several pages runs once;
- each `trajpred ...` line of a ```bash block is parsed by `trajpred.cli.build_parser`, the
  parser the console script and the command-line reference are built from: a renamed or
  removed flag, a missing required argument or a bad choice fails here.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DIR, curvy_walks, doc_blocks, doc_table

from trajpred.cli import build_parser, main
from trajpred.detect import SHIPPED_DETECTOR
from trajpred.formats import read_mot, read_tracks, write_eth_ucy
from trajpred.pipeline import SHIPPED_FORECASTER

REPO = Path(__file__).resolve().parents[1]


def python_examples() -> dict[tuple[str, str], list[str]]:
    """{(check name, code): the pages that show it}: every ```python block of the README and
    the docs, once per distinct code and check."""
    examples: dict[tuple[str, str], list[str]] = {}
    for page, line, name, code in doc_blocks("python"):
        examples.setdefault((name or "", code), []).append(f"{page}:{line}")
    return examples


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
    """ADE, FDE and best-of-20 ADE of the shipped ETH model: the ETH/UCY benchmark page's
    results table where the real data is, else finite and ordered on the stand-in; and no
    warning (None)."""
    first, second = out.strip().splitlines()
    ade, fde, min_ade = (float(v) for v in first.split())
    assert second == "None"
    if SHARED_DIR.is_dir():
        row = doc_table("| scene | windows | ADE |")["eth"]
        printed = [f"{v:.3f}" for v in (ade, fde, min_ade)]
        assert printed == [row["ADE"], row["FDE"], row["minADE20"]]
    else:
        assert np.isfinite([ade, fde, min_ade]).all() and 0 < min_ade <= ade < fde


def check_zones_api(out: str, work: Path) -> None:
    """`door P% in T s [p1 p2 p3]`: a walker 100 px from the door at 100 px/s, heading for
    it, enters it within the horizon, in about a second, and within 2 s."""
    pattern = rf"door (\d+)% in ({NUMBER})s \[({NUMBER}), ({NUMBER}), ({NUMBER})\]\n"
    match = re.fullmatch(pattern, out)
    assert match, out
    percent, t, p1, p2, p3 = (float(v) for v in match.groups())
    assert percent >= 80 and 0.5 < t < 2.0 and p1 <= p2 <= p3 <= percent / 100 + 1e-9, out
    assert p2 >= 0.5, out


CHECKS = {
    "tracking_loop": check_tracking_loop,
    "zones_api": check_zones_api,
    "one_walker": check_one_walker,
    "pipeline": check_pipeline,
    "evaluation": check_evaluation,
}
EXAMPLES = python_examples()


def test_every_python_example_is_checked():
    """Every ```python block names its check, the README shows the tracking loop, and the docs
    show every example at least once (the Python API guide)."""
    for (name, _), pages in EXAMPLES.items():
        assert name in CHECKS, f"{pages}: a python block without <!-- example: NAME --> ({name!r})"
    readme = {name for (name, _), pages in EXAMPLES.items() if any("README" in p for p in pages)}
    docs = {name for (name, _), pages in EXAMPLES.items() if any("docs/" in p for p in pages)}
    assert readme == {"tracking_loop"} and docs == set(CHECKS)
    (loop,) = [code for (name, code) in EXAMPLES if name == "tracking_loop"]
    assert "model.track(" in loop and "forecaster.update(result)" in loop


@pytest.mark.parametrize(
    "name, code", list(EXAMPLES), ids=[f"{n}@{ps[0]}" for (n, _), ps in EXAMPLES.items()]
)
def test_python_example_runs(name, code, example_dir, monkeypatch, capsys):
    monkeypatch.chdir(example_dir)
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    pages = ", ".join(EXAMPLES[name, code])
    exec(compile(code, f"example {name} ({pages})", "exec"), {})
    CHECKS[name](capsys.readouterr().out, example_dir)


def trajpred_commands(code: str) -> list[list[str]]:
    """The arguments of each `trajpred ...` (or `python -m trajpred ...`, `torchrun ... -m
    trajpred ...`) command of a shell block: continuation lines joined, comments dropped, one
    command per `&&`, `;` or `|`."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = next((i for i, w in enumerate(words) if w in ("&&", ";", "|", "||")), None)
            command, words = (words, []) if cut is None else (words[:cut], words[cut + 1 :])
            starts = [i + 1 for i, w in enumerate(command) if w == "trajpred"]
            starts = [i for i in starts if i == 1 or command[i - 2] == "-m"]
            commands += [command[i:] for i in starts[:1]]
    return commands


SHELL_COMMANDS = [
    (f"{page}:{line}", args)
    for page, line, _, code in doc_blocks("bash")
    for args in trajpred_commands(code)
]


def test_the_pages_run_every_command():
    """The shell blocks hold the commands a reader needs (and the parsing above finds them)."""
    names = {args[0] for _, args in SHELL_COMMANDS if args}
    assert names >= {"demo", "predict", "track", "train", "evaluate", "adapt", "export"}
    assert names >= {"calibrate", "homography"}
    readme = {args[0] for where, args in SHELL_COMMANDS if where.startswith("README")}
    assert readme >= {"demo", "predict", "track", "train", "evaluate"}


@pytest.mark.parametrize("where, args", SHELL_COMMANDS, ids=[w for w, _ in SHELL_COMMANDS])
def test_shell_command_is_one_trajpred_accepts(where, args):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(args)
        except SystemExit as stop:
            assert stop.code == 0, f"{where}: trajpred {shlex.join(args)}: {stderr.getvalue()}"
