"""Shared test builders: small hand-checkable Tracks, and the shared data folder (or a skip)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trajpred.tracks import Tracks, bottom_centre

ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = ROOT.parent / "shared"
ETH_UCY_SCENES = ("eth", "hotel", "univ", "zara1", "zara2")


# --set overrides for a model and a run small enough to train in a test in about a second
TINY_TRAIN = (
    "model.obs_len=3",
    "model.pred_len=3",
    "model.hidden_size=16",
    "model.embed_size=8",
    "model.num_modes=2",
    "train.epochs=1",
    "train.batch_size=16",
)


def run_trajpred(*args, cwd=None, env=None, timeout=180) -> subprocess.CompletedProcess:
    """`python -m trajpred ARGS` as a user runs it: offline (YOLO_OFFLINE), from the repository
    root unless `cwd`, with `env` added to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "trajpred", *map(str, args)],
        cwd=cwd or ROOT,
        env={**os.environ, "YOLO_OFFLINE": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_trajpred(*args, env=None, new_session: bool = False) -> subprocess.Popen:
    """`python -m trajpred ARGS` started and left running, as a user starts it (or a service
    manager, in a process group of its own, with `new_session`): offline, from the repository
    root, stdout and stderr piped, and Ctrl-C stopping it as from a terminal even where the
    tests run with SIGINT ignored (nohup, &)."""
    return subprocess.Popen(
        [sys.executable, "-m", "trajpred", *map(str, args)],
        cwd=ROOT,
        env={**os.environ, "YOLO_OFFLINE": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def markdown_table(text: str, header: str) -> dict[str, dict[str, str]]:
    """The markdown table of `text` whose header row starts with `header` (e.g. "| scene |
    windows |"), as {first cell: {column name: cell}}, cells as printed; fails if absent. Tests
    read the documentation's figures with it, so a test and the page cannot drift apart. A
    table indented under a list item counts too."""
    lines = [line.strip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith(header)), None)
    assert start is not None, f"no table with the header {header!r}"
    names = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    return rows


def doc_pages() -> list[Path]:
    """The pages a reader meets: README.md, then docs/**/*.md (the mkdocs site), sorted."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def doc_table(header: str) -> dict[str, dict[str, str]]:
    """`markdown_table` of the README or the docs page that holds the table whose header row
    starts with `header`. Where several pages show it, they must agree cell for cell (a copy
    cannot go stale on its own); fails if no page has it."""
    found = {}
    for page in doc_pages():
        text = page.read_text()
        if any(line.strip().startswith(header) for line in text.splitlines()):
            found[page.relative_to(ROOT).as_posix()] = markdown_table(text, header)
    assert found, f"no page of README.md and docs/ has a table with the header {header!r}"
    (first, table), *others = found.items()
    for page, other in others:
        assert other == table, f"{page} and {first} show the table {header!r} differently"
    return table


EXAMPLE_MARKER = re.compile(r"<!-- example: ([a-z_]+) -->")


def doc_blocks(lang: str) -> list[tuple[str, int, str | None, str]]:
    """Every fenced ```LANG block of README.md and docs/**/*.md, in order, as (page, line of
    the fence, name, code): the name is that of an `<!-- example: NAME -->` comment on the
    line before the fence (None without one), which says how a test checks the example."""
    blocks = []
    for page in doc_pages():
        lines = page.read_text().splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() == f"```{lang}":
                indent = len(lines[i]) - len(lines[i].lstrip())
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
                code = "\n".join(line[indent:] for line in lines[i + 1 : end]) + "\n"
                marker = EXAMPLE_MARKER.fullmatch(lines[i - 1].strip()) if i else None
                name = marker.group(1) if marker else None
                blocks.append((page.relative_to(ROOT).as_posix(), i + 1, name, code))
                i = end
            i += 1
    return blocks


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run small tensors: one thread avoids oversubscribing 2-core CI machines, where
    subprocess tests (torchrun, the CLI) run beside the pytest process."""
    import torch

    torch.set_num_threads(1)


def build_tracks(
    n_tracks: int = 3,
    n_frames: int = 4,
    units: str = "m",
    with_boxes: bool = False,
    first_frame: int = 1,
    frame_step: int = 1,
) -> Tracks:
    """Track k walks from (k, 0) with velocity (0.5, 0.25 * k) per frame step; one row per frame.

    With boxes (pixels), each box is 10 x 20 and xy is its bottom centre, as a MOT reader gives.
    Rows come track by track, not sorted by frame, so writers' sorting is exercised.
    """
    k, step = np.meshgrid(np.arange(n_tracks), np.arange(n_frames), indexing="ij")
    k, step = k.ravel(), step.ravel()
    xy = np.stack([k + 0.5 * step, 0.25 * k * step], axis=1)  # (N, 2)
    box = None
    if with_boxes:
        box = np.stack(
            [xy[:, 0] - 5.0, xy[:, 1] - 20.0, np.full(len(k), 10.0), np.full(len(k), 20.0)], axis=1
        )  # (N, 4) left, top, width, height
        xy = bottom_centre(box)
    return Tracks(first_frame + frame_step * step, k, xy, box, units=units)


@pytest.fixture
def make_tracks():
    """The `build_tracks` builder, for tests that take it as a fixture."""
    return build_tracks


@pytest.fixture
def shared_dir() -> Path:
    """The repository's sibling ../shared folder; skips the test where it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared data folder {SHARED_DIR} is absent")
    return SHARED_DIR


def camera_checkpoint(path, units: str) -> str:
    """A small camera-specific forecaster as `trajpred adapt` writes one: its scene input reads
    positions in `units` ("px": the image, 640x384; "m": a 20 x 20 m ground plane)."""
    from trajpred.checkpoint import save_checkpoint
    from trajpred.config import to_dict
    from trajpred.model import Forecaster, ForecasterConfig

    bounds = [0.0, 0.0, 640.0, 384.0] if units == "px" else [-10.0, -10.0, 10.0, 10.0]
    cfg = ForecasterConfig(hidden_size=16, embed_size=8, num_modes=2, scene_input=True)
    cfg.scene_bounds, cfg.scene_units = bounds, units
    save_checkpoint(path, {"model_config": to_dict(cfg), "model": Forecaster(cfg).state_dict()})
    return str(path)


def curvy_walks(
    n_tracks: int = 12, n_steps: int = 40, seed: int = 0, first_frame: int = 0
) -> Tracks:
    """Pedestrian-like tracks in metres at ETH/UCY spacing (10 frame ids per 0.4 s step):
    steady speed with a constant turn rate per track, so a model can beat constant velocity."""
    g = np.random.default_rng(seed)
    rows = []
    for tid in range(n_tracks):
        heading, speed, turn = g.uniform(0, 2 * np.pi), g.uniform(0.3, 0.6), g.uniform(-0.15, 0.15)
        pos = g.uniform(-5, 5, 2)
        start = first_frame + 10 * int(g.integers(0, 5))
        for step in range(n_steps):
            rows.append((start + 10 * step, tid, *pos))
            heading += turn
            pos = pos + speed * np.array([np.cos(heading), np.sin(heading)])
    a = np.array(rows)
    return Tracks(a[:, 0], a[:, 1], a[:, 2:4], source="walks.txt")


@pytest.fixture
def eth_ucy_like_root(tmp_path) -> Path:
    """A tiny leave-one-out folder `root/toy/{train,val,test}/*.txt` of curvy walks."""
    from trajpred.formats import write_eth_ucy

    root = tmp_path / "eth_ucy"
    for split, seed, n in (("train", 1, 40), ("val", 2, 10), ("test", 3, 10)):
        (root / "toy" / split).mkdir(parents=True)
        write_eth_ucy(root / "toy" / split / f"walks_{split}.txt", curvy_walks(n, seed=seed))
    return root


def clip(assets, path: Path, n: int) -> Path:
    """An mp4 of `n` frames of the `video_assets` scene (its 60 frames over again past 60)."""
    import cv2

    cap = cv2.VideoCapture(str(assets.scene.video))
    frames = [cap.read()[1] for _ in range(min(n, 60))]
    cap.release()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 192))
    for i in range(n):
        writer.write(frames[i % len(frames)])
    writer.release()
    return path


@pytest.fixture(scope="session")
def video_assets(tmp_path_factory):
    """A short synthetic scene (320x192, 6 s at 10 fps, with ground truth), the shipped detector
    and an untrained forecaster checkpoint (it forecasts constant velocity), for the pipeline,
    predict and demo tests; skips where the shipped detector is absent."""
    from types import SimpleNamespace

    from trajpred.demo import untrained_checkpoint
    from trajpred.detect import SHIPPED_DETECTOR
    from trajpred.synth.render import write_scene
    from trajpred.synth.world import SynthConfig, simulate

    if not SHIPPED_DETECTOR.is_file():
        pytest.skip(f"shipped detector {SHIPPED_DETECTOR} is absent (scripts/train_detector.py)")
    root = tmp_path_factory.mktemp("video_assets")
    scene = write_scene(
        simulate(SynthConfig(width=320, height=192, fps=10.0, duration_s=6.0, seed=11, n_agents=8)),
        root / "scene",
    )
    return SimpleNamespace(
        weights=str(SHIPPED_DETECTOR),
        imgsz=320,
        scene=scene,
        checkpoint=untrained_checkpoint(root / "untrained.pt"),
    )


MAX_LINE = 300  # what "a few hundred characters" means for an error line


@pytest.fixture
def trajpred(capfd):
    """The CLI in-process, as the console script runs it: (exit code, stdout, stderr) as a
    CompletedProcess."""
    from trajpred.cli import main

    def run(*args):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:
            code = e.code
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def assert_one_line(done, *words, code: int = 2):
    """The run ended with `code` and one stderr line of at most MAX_LINE characters, no
    traceback, holding every word."""
    assert done.returncode == code, done.stdout[-2000:] + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(lines[0]) <= MAX_LINE, lines[0]
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def cv_checkpoint(tmp_path_factory) -> str:
    """An untrained forecaster: it forecasts exactly constant velocity."""
    from trajpred.demo import untrained_checkpoint

    return untrained_checkpoint(tmp_path_factory.mktemp("cv") / "cv.pt")


def box_at(x: float, y: float = 300.0, w: float = 30.0, h: float = 90.0) -> list[float]:
    """xyxy of a w x h box whose bottom centre is (x, y)."""
    return [x - w / 2, y - h, x + w / 2, y]
