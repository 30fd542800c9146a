"""The README's Python examples run, offline, so they cannot rot.

Each ```python block of the "Python API" section runs on its own, in a folder laid out as the
examples expect: `clip.mp4` (a short synthetic video at 25 fps), `data/` (the shipped models)
and `../shared/data/eth_ucy` (the real ETH/UCY data where present, else a small stand-in of
synthetic walks in its layout).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import SHARED_DIR, curvy_walks

from trajpred.cli import main
from trajpred.detect import SHIPPED_DETECTOR
from trajpred.formats import write_eth_ucy
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


@pytest.mark.parametrize("index", range(4))
def test_readme_python_example_runs(index, example_dir, monkeypatch, capsys):
    monkeypatch.chdir(example_dir)
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    code = python_examples()[index]
    exec(compile(code, f"README.md Python API example {index + 1}", "exec"), {})
    out = capsys.readouterr().out
    expected = ["track ", "[7]", " tracks", "None"][index]
    assert expected in out, out[-2000:]
