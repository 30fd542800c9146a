"""Reliability of `trajpred export` and of exported files (issue 23): a new export replaces an
earlier one only once it is written, read back and checked; an exported file whose metadata
disagrees with its graph, or whose calibration is unusable, is refused when it is loaded, in one
line naming it (not a RuntimeError in the middle of a video); a write error names --out.

One small model (hidden_size 16, 3 modes, 2 neighbours), exported once per format; the bad files
are copies of those with their metadata edited.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import onnx
import pytest
import torch
from conftest import MAX_LINE, assert_one_line
from test_reliability_cli import small_disk  # noqa: F401 - the read-only folder fixture

import trajpred.export_forecaster as export_module
from trajpred.calibration import Calibration
from trajpred.checkpoint import load_forecaster, save_checkpoint
from trajpred.errors import InputError, TrajpredError
from trajpred.export_forecaster import export_forecaster
from trajpred.export_runtime import METADATA_KEY, quiet_torch
from trajpred.model import Forecaster, ForecasterConfig

SUFFIX = {"onnx": ".onnx", "torchscript": ".ts"}
CONFIG = ForecasterConfig(hidden_size=16, embed_size=8, num_modes=3, social_neighbours=2)


def small_checkpoint(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    calibration = Calibration([[1.2] * 12, [2.2] * 12], [1.0] * 12)
    payload = {"model_config": asdict(CONFIG), "model": Forecaster(CONFIG).state_dict()}
    save_checkpoint(path, {**payload, "calibration": calibration.to_dict()})
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(checkpoint, another checkpoint, {backend: its exported file}), made once."""
    folder = tmp_path_factory.mktemp("small")
    first = small_checkpoint(folder / "small.pt", seed=0)
    second = small_checkpoint(folder / "other.pt", seed=1)
    files = {b: folder / f"small{s}" for b, s in SUFFIX.items()}
    for backend, path in files.items():
        export_forecaster(first, path, backend)
    return first, second, files


def with_metadata(src: Path, dst: Path, edit) -> Path:
    """A copy of exported file `src` at `dst` whose metadata JSON text is edit(dict) (edit
    changes the dict in place and returns None) or the text edit returns."""
    if src.suffix == ".onnx":
        proto = onnx.load(str(src))
        (prop,) = proto.metadata_props
        prop.value = _edited(prop.value, edit)
        onnx.save(proto, str(dst))
    else:
        extra = {f"{METADATA_KEY}.json": ""}
        with quiet_torch():  # torch calls TorchScript deprecated on every load and save
            module = torch.jit.load(str(src), _extra_files=extra)
            text = _edited(extra[f"{METADATA_KEY}.json"], edit)
            torch.jit.save(module, str(dst), _extra_files={f"{METADATA_KEY}.json": text})
    return dst


def _edited(text: str, edit) -> str:
    meta = json.loads(text)
    result = edit(meta)
    return result if isinstance(result, str) else json.dumps(meta)


def assert_one_line_error(e: BaseException, path: Path, *words: str) -> None:
    message = str(e)
    assert "\n" not in message and len(message) <= MAX_LINE, message
    assert message.startswith(f"{path}: "), message
    for word in words:
        assert word in message, message


# ---------------------------------------------------------------- metadata against the graph


def _set(**changes):
    def edit(meta):
        for key, value in changes.items():
            (meta if key in meta else meta["model_config"])[key] = value

    return edit


# What a file's metadata may say that its graph does not hold: each was a RuntimeError from
# index_copy_ or from the graph, in the middle of streaming, or silently wrong forecasts.
LIES = {
    "hidden_size": _set(hidden_size=32),
    "num_layers": _set(num_layers=1),
    "pred_len": _set(pred_len=8, calibration=None),  # the calibration has 12 steps
    "num_modes": _set(num_modes=5),
    "members": _set(members=2),
    "input_size": _set(appearance_dim=2),
    "no_neighbours": _set(social_neighbours=0),
    "scene": _set(scene_input=True, scene_bounds=[0.0, 0.0, 320.0, 192.0], scene_units="px"),
}


@pytest.mark.parametrize("backend", list(SUFFIX))
@pytest.mark.parametrize("lie", list(LIES))
def test_metadata_that_disagrees_with_its_graph_is_refused_on_loading(
    small, tmp_path, backend, lie
):
    from trajpred import Forecaster as ApiForecaster

    bad = with_metadata(small[2][backend], tmp_path / f"bad{SUFFIX[backend]}", LIES[lie])
    with pytest.raises(InputError) as caught:
        load_forecaster(bad)
    assert_one_line_error(caught.value, bad, "metadata does not match its graph")
    with pytest.raises(TrajpredError) as caught:
        ApiForecaster(bad, fps=2.5)
    assert_one_line_error(caught.value, bad, "metadata does not match its graph")


def test_a_disagreeing_file_is_one_line_for_the_cli(small, tmp_path, trajpred, eth_ucy_like_root):
    bad = with_metadata(small[2]["onnx"], tmp_path / "bad.onnx", LIES["pred_len"])
    done = trajpred("evaluate", "--checkpoint", bad, "--data", eth_ucy_like_root, "--scene", "toy")
    assert_one_line(done, str(bad), "pred_len 8")


def test_the_files_export_writes_pass_their_own_check(small):
    for path in small[2].values():
        model = load_forecaster(path)
        assert model.cfg == CONFIG and model.calibration.radius_scale[0][0] == 1.2


# ---------------------------------------------------------------- an unusable calibration


def _calibration(value):
    def edit(meta):
        meta["calibration"] = value

    return edit


def _calibration_nested_too_deep(meta):
    meta["calibration"] = None
    return json.dumps(meta).replace('"calibration": null', '"calibration": ' + "[" * 100_000)


GOOD = Calibration([[1.2] * 12, [2.2] * 12], [1.0] * 12).to_dict()
CALIBRATIONS = {
    "not_a_dict": (_calibration([1, 2]), "unusable calibration"),
    "unknown_key": (_calibration({**GOOD, "scale": 2}), "unusable calibration"),
    "other_steps": (
        _calibration(Calibration([[1.2] * 8, [2.2] * 8], [1.0] * 8).to_dict()),
        "calibration has 8 steps, the model 12",
    ),
    "nan": (_calibration({**GOOD, "sigma_scale": [float("nan")] * 12}), "unusable calibration"),
    "shrinking": (
        _calibration({**GOOD, "radius_scale": [[2.2] * 12, [1.2] * 12]}),
        "must not shrink",
    ),
    "levels": (_calibration({**GOOD, "levels": list(range(500))}), "unusable calibration"),
    "nested_too_deep": (_calibration_nested_too_deep, "unusable metadata"),
}


@pytest.mark.parametrize("backend", list(SUFFIX))
@pytest.mark.parametrize("case", list(CALIBRATIONS))
def test_an_unusable_calibration_is_one_line_naming_the_file(small, tmp_path, backend, case):
    edit, words = CALIBRATIONS[case]
    bad = with_metadata(small[2][backend], tmp_path / f"bad{SUFFIX[backend]}", edit)
    with pytest.raises(InputError) as caught:
        load_forecaster(bad)
    assert_one_line_error(caught.value, bad, words)


# ---------------------------------------------------------------- a failed export changes nothing


def _fails(model, exported):
    raise InputError(exported.path, "stands for any failed check")


def _interrupted(model, exported):
    raise KeyboardInterrupt


FAILURES = {  # what the read-back check meets, in place of max_difference
    "check_fails": (_fails, 2, "failed its read-back check"),
    "not_finite": (lambda model, exported: float("nan"), 2, "differs from PyTorch by nan"),
    "too_far": (lambda model, exported: 0.5, 2, "differs from PyTorch by 0.5"),
    "interrupted": (_interrupted, 130, "interrupted"),
}


@pytest.mark.parametrize("backend", list(SUFFIX))
@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_export_leaves_the_earlier_file(
    small, tmp_path, trajpred, monkeypatch, backend, failure
):
    _, other, files = small
    out = tmp_path / f"model{SUFFIX[backend]}"
    out.write_bytes(files[backend].read_bytes())  # the earlier good export
    before = sorted(p.name for p in tmp_path.iterdir())
    check, code, words = FAILURES[failure]
    monkeypatch.setattr(export_module, "max_difference", check)
    done = trajpred("export", "--checkpoint", other, "--out", out)
    assert out.read_bytes() == files[backend].read_bytes(), "the earlier export was replaced"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr
    if code == 2:
        assert lines[0].startswith(f"trajpred export: error: {out}: "), lines[0]


def test_export_without_onnxruntime_leaves_the_earlier_file(small, tmp_path, trajpred, monkeypatch):
    """onnx can write the file but it cannot be read back: the earlier export stays."""
    _, other, files = small
    out = tmp_path / "model.onnx"
    out.write_bytes(files["onnx"].read_bytes())
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    done = trajpred("export", "--checkpoint", other, "--out", out)
    assert out.read_bytes() == files["onnx"].read_bytes(), "the earlier export was replaced"
    assert_one_line(done, str(out), "onnxruntime")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


@pytest.mark.slow  # the CLI in a subprocess that may not write there
def test_export_into_a_read_only_folder_names_out(small, small_disk):  # noqa: F811
    first, _, files = small
    out = small_disk.folder / "model.onnx"
    out.write_bytes(b"earlier")
    why = small_disk.read_only()
    done = small_disk.run("export", "--checkpoint", first, "--out", out)
    assert_one_line(done, f"{out}: cannot write ({why})")
    assert out.read_bytes() == b"earlier"
