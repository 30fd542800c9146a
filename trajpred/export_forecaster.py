"""`trajpred export`: a checkpoint's streaming forecaster written as one ONNX or TorchScript
file, then read back and compared with PyTorch.

What the file holds and how it is run: trajpred/export_runtime.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_path, temp_path_for
from .checkpoint import load_checkpoint, model_from_payload
from .errors import InputError, OutputError, TrajpredError
from .export_runtime import (
    INPUTS,
    METADATA_KEY,
    OUTPUTS,
    ExportedForecaster,
    ExportMetadata,
    import_or_hint,
    is_exported,
    load_exported,
    quiet_torch,
)
from .model import NEIGHBOUR_FEATURES, Ensemble, Forecaster

# The largest difference from PyTorch (model units) a float32 file may show on random inputs
# when read back: measured 2e-6 for ONNX, 0 for TorchScript. int8 files are only checked to
# load and give finite outputs.
MAX_DIFF = 1e-3


class AdvanceGraph(nn.Module):
    """The model's `advance` with plain tensors in and out, in the order of INPUTS and
    OUTPUTS: the module that is traced and exported."""

    def __init__(self, model: Forecaster | Ensemble):
        super().__init__()
        self.model = model

    def forward(self, features, h, c, last_speed, nbr_features, nbr_mask, scene):
        (h, c), out = self.model.advance(
            features, (h, c), last_speed, nbr_features, nbr_mask, scene
        )
        return h, c, out.mean, out.modes, out.mode_logits, out.mode_sigma


def example_inputs(
    model: Forecaster | Ensemble, batch: int = 3, steps: int = 2, seed: int = 0
) -> tuple:
    """Random inputs of the graph's shapes (tracing, and checking an export against PyTorch)."""
    cfg, g = model.cfg, torch.Generator().manual_seed(seed)
    k = max(1, cfg.social_neighbours)
    state = (cfg.num_layers, batch, model.state_size)
    return (
        torch.randn(batch, steps, cfg.input_size, generator=g) * 0.3,
        torch.randn(*state, generator=g) * 0.3,
        torch.randn(*state, generator=g) * 0.3,
        torch.rand(batch, generator=g),
        torch.randn(batch, k, NEIGHBOUR_FEATURES, generator=g),
        torch.rand(batch, k, generator=g) > 0.3,
        torch.rand(batch, max(1, cfg.scene_features), generator=g),
    )


@contextlib.contextmanager
def _quiet_logging():
    """onnxruntime's quantiser logs advice on the root logger (shape pre-processing, which
    made no difference to this graph's int8 speed or outputs when tried)."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def metadata_for(
    model: Forecaster | Ensemble, payload: dict, source: str, backend: str, int8: bool
):
    """ExportMetadata of `model`, loaded from checkpoint `payload` read from `source`."""
    keep = {k: payload[k] for k in ("epoch", "best_val_ade", "run_config") if k in payload}
    members = len(model.members) if isinstance(model, Ensemble) else 1
    plain = json.loads(json.dumps(keep, default=str))  # what JSON keeps of it
    calibration = getattr(model, "calibration", None)
    return ExportMetadata(
        asdict(model.cfg),
        members,
        backend,
        int8,
        Path(source).name,
        plain,
        calibration=None if calibration is None else calibration.to_dict(),
    )


def write_onnx(
    model: Forecaster | Ensemble, meta: ExportMetadata, path: Path, opset: int = 17
) -> None:
    """`model`'s advance graph as ONNX at `path` (as it is: `export_forecaster` gives a
    temporary file), meta in metadata_props; int8 (meta.int8): weights quantised by
    onnxruntime's dynamic quantisation."""
    onnx = import_or_hint("onnx", path)
    if meta.int8:
        quantization = import_or_hint("onnxruntime.quantization", path)
    tmp, tmp_q = temp_path_for(path), temp_path_for(path)
    axes = {"features": {0: "B", 1: "T"}, "last_speed": {0: "B"}, "scene": {0: "B"}}
    axes |= {name: {1: "B"} for name in ("h", "c", "new_h", "new_c")}
    axes |= {name: {0: "B", 1: "K"} for name in ("nbr_features", "nbr_mask")}
    axes |= {name: {0: "B"} for name in ("mean", "modes", "mode_logits", "mode_sigma")}
    try:
        with quiet_torch():
            torch.onnx.export(
                AdvanceGraph(model).eval(),
                example_inputs(model),
                str(tmp),
                input_names=list(INPUTS),
                output_names=list(OUTPUTS),
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
        if meta.int8:
            with _quiet_logging():
                quantization.quantize_dynamic(str(tmp), str(tmp_q), per_channel=True)
            tmp, tmp_q = tmp_q, tmp
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        proto.metadata_props.add(key=METADATA_KEY, value=meta.to_json())
        proto.doc_string = "trajpred streaming forecaster; metadata_props['trajpred'] says how"
        with open(path, "wb") as f:
            f.write(proto.SerializeToString())
    finally:
        for name in (tmp, tmp_q):
            name.unlink(missing_ok=True)


def write_torchscript(model: Forecaster | Ensemble, meta: ExportMetadata, path: Path) -> None:
    """`model`'s advance graph traced to TorchScript at `path` (as it is: `export_forecaster`
    gives a temporary file), meta as an extra file."""
    with quiet_torch(), torch.no_grad():
        traced = torch.jit.trace(AdvanceGraph(model).eval(), example_inputs(model))
    with open(path, "wb") as f, quiet_torch():
        torch.jit.save(traced, f, _extra_files={f"{METADATA_KEY}.json": meta.to_json()})


@dataclass
class ExportResult:
    """What `export_forecaster` wrote. max_diff: the largest difference between the file's
    outputs and PyTorch's (model units) on random inputs of 1, 7 and 50 tracks."""

    path: Path
    backend: str
    int8: bool
    size_bytes: int
    members: int
    max_diff: float


def export_forecaster(
    checkpoint: str | os.PathLike, out: str | os.PathLike, backend: str, int8: bool = False
) -> ExportResult:
    """Write checkpoint's forecaster (a model or an ensemble) as ONNX or TorchScript at `out`,
    read it back and compare it with PyTorch."""
    out = Path(out)
    if backend not in ("onnx", "torchscript"):
        raise TrajpredError(f"unknown export format {backend!r} (onnx or torchscript)")
    if int8 and backend != "onnx":
        raise TrajpredError("--int8 needs --format onnx (onnxruntime's dynamic quantisation)")
    if (out.suffix.lower() == ".onnx") != (backend == "onnx"):
        want = ".onnx" if backend == "onnx" else "a suffix other than .onnx (e.g. .ts)"
        raise InputError(out, f"a {backend} file needs {want}: the suffix says how to load it")
    if is_exported(checkpoint):
        raise InputError(checkpoint, "already an exported forecaster; export its .pt checkpoint")
    if backend == "onnx":  # what writing and reading back need, before any work
        for module in ("onnx", "onnxruntime", "onnxruntime.quantization")[: 3 if int8 else 2]:
            import_or_hint(module, out)
    payload = load_checkpoint(checkpoint)
    model = model_from_payload(payload, checkpoint)
    meta = metadata_for(model, payload, os.fspath(checkpoint), backend, int8)
    # Written, read back and checked under a temporary name beside `out`, renamed over it
    # only then: a failed or interrupted export leaves an earlier file at `out` as it was.
    with atomic_path(out) as tmp:
        try:
            (write_onnx if backend == "onnx" else write_torchscript)(model, meta, tmp)
        except OutputError as e:  # a temporary file of the writer's: name the user's file
            raise OutputError(out, e.problem) from None
        diff = read_back(model, tmp, out, int8)
        size = tmp.stat().st_size
    return ExportResult(out, backend, int8, size, meta.members, diff)


def read_back(model: Forecaster | Ensemble, tmp: Path, out: Path, int8: bool) -> float:
    """Load the file written at `tmp` as any user would (metadata checked against the graph)
    and compare it with `model`: its largest difference from PyTorch. InputError naming `out`
    when it does not load, gives non-finite outputs or (fp32) differs by more than MAX_DIFF."""
    try:
        diff = max_difference(model, load_exported(tmp))
    except InputError as e:
        raise InputError(
            out, f"the exported file failed its read-back check ({e.problem})"
        ) from None
    if not math.isfinite(diff) or (not int8 and diff > MAX_DIFF):
        raise InputError(
            out,
            f"the exported file failed its read-back check: it differs from PyTorch by {diff:.3g} "
            f"model units (at most {MAX_DIFF:g} expected)",
        )
    return diff


@torch.no_grad()
def max_difference(model: Forecaster | Ensemble, exported: ExportedForecaster) -> float:
    """Largest absolute difference between every output of `exported` and of `model`, on
    random inputs of 1, 7 and 50 tracks (model units)."""
    worst = 0.0
    for batch in (1, 7, 50):
        features, h, c, *rest = example_inputs(model, batch, seed=batch)
        (expect_h, expect_c), expect = model.advance(features, (h, c), *rest)
        (got_h, got_c), got = exported.advance(features, (h, c), *rest)
        pairs = [(expect_h, got_h), (expect_c, got_c)]
        pairs += [(getattr(expect, k), getattr(got, k)) for k in vars(expect)]
        worst = max(worst, *(float((a - b).abs().max()) for a, b in pairs))
    return worst
