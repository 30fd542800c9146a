"""Self-describing checkpoints: config, weights, optimiser state, epoch and best metric.

A checkpoint holds one model's weights under "model", or an ensemble's under "members" (one
state dict per member, all of the config under "model_config"; see `ensemble_payload`), and
optionally its uncertainty calibration under "calibration" (trajpred/calibration.py), which a
loaded model carries as `model.calibration` (None without).

Written atomically (temp file, then rename) and read with `weights_only=True`, so a checkpoint
can only hold tensors and plain data; anything else is refused with a one-line error.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .atomic import atomic_path
from .calibration import calibration_of
from .config import ConfigError, from_dict
from .errors import InputError, first_line
from .model import Ensemble, Forecaster, ForecasterConfig

if TYPE_CHECKING:
    from typing import TypeAlias

    from .export_runtime import ExportedForecaster

    # What `load_forecaster` gives: a checkpoint's model or an exported file, one interface.
    LoadedForecaster: TypeAlias = Forecaster | Ensemble | ExportedForecaster

FORMAT = "trajpred-forecaster"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Save `payload` (plain data and tensors) as a trajpred checkpoint, atomically."""
    payload = {"format": FORMAT, "version": VERSION, **payload}
    with atomic_path(path, errors=(OSError, RuntimeError)) as tmp:  # RuntimeError: disk full
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by save_checkpoint; InputError on anything else."""
    from .export_runtime import is_exported

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    if is_exported(path):  # e.g. train.init_from or adapt given what predict accepts
        raise InputError(path, "an exported forecaster; this needs the .pt checkpoint it came from")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):  # a pickled class or function: never executed
            raise InputError(
                path,
                "refused: holds Python objects other than tensors and plain data "
                "(only trajpred checkpoints are loaded)",
            ) from None
        raise InputError(path, "not a readable checkpoint: truncated or corrupt") from None
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        TypeError,
    ) as e:
        raise InputError(
            path, f"not a readable checkpoint: truncated or corrupt ({first_line(e, 120)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(path, "not a trajpred checkpoint")
    if payload.get("version") != VERSION:
        raise InputError(
            path,
            f"checkpoint version {payload.get('version')} is not supported "
            f"(this trajpred reads version {VERSION})",
        )
    return payload


def check_config(
    cfg: ForecasterConfig, expect: ForecasterConfig | None, path: str | os.PathLike
) -> None:
    """InputError naming every field where `cfg` (read from `path`) differs from `expect`."""
    if expect is not None and cfg != expect:
        diff = [k for k in vars(cfg) if getattr(cfg, k) != getattr(expect, k)]
        raise InputError(
            path,
            "checkpoint's model config does not match the requested model: "
            + ", ".join(f"{k}={getattr(cfg, k)} (wanted {getattr(expect, k)})" for k in diff),
        )


def model_from_payload(
    payload: dict, path: str | os.PathLike = "checkpoint", expect: ForecasterConfig | None = None
) -> Forecaster | Ensemble:
    """Rebuild the forecaster from a loaded checkpoint (its config is inside)."""
    try:
        cfg = from_dict(ForecasterConfig, payload["model_config"], where=os.fspath(path))
    except (KeyError, ConfigError) as e:
        raise InputError(path, f"checkpoint has no valid model config ({e})") from None
    check_config(cfg, expect, path)
    weights = payload["members"] if "members" in payload else [payload.get("model")]
    if not isinstance(weights, list) or not weights:
        raise InputError(path, "checkpoint has no model weights")
    members = [Forecaster(cfg) for _ in weights]
    try:
        for member, state in zip(members, weights, strict=False):
            member.load_state_dict(state)
    except (KeyError, RuntimeError, TypeError, AttributeError) as e:
        raise InputError(
            path, f"checkpoint weights do not fit its config ({first_line(e)})"
        ) from None
    model: Forecaster | Ensemble = members[0] if "members" not in payload else Ensemble(members)
    model.eval()
    # plain attribute, not a buffer: checkpoints without one load as before
    model.calibration = calibration_of(payload.get("calibration"), cfg.pred_len, path)
    return model


def ensemble_payload(paths: list[str | os.PathLike]) -> dict:
    """One checkpoint payload holding the models of several checkpoints of one config as an
    Ensemble (their configs must match; the first one's run config and metadata are kept)."""
    payloads = [load_checkpoint(p) for p in paths]
    models = [model_from_payload(p, path) for p, path in zip(payloads, paths, strict=False)]
    for model, path in zip(models[1:], paths[1:], strict=False):
        if model.cfg != models[0].cfg:
            raise InputError(
                path, f"model config differs from {os.fspath(paths[0])}'s: cannot ensemble"
            )
    members = [
        m.state_dict()
        for model in models
        for m in (model.members if isinstance(model, Ensemble) else [model])
    ]
    keep = {
        k: v
        for k, v in payloads[0].items()
        if k in ("model_config", "run_config", "epoch", "history")
    }  # not "calibration": it was fitted on one member, not on their mean
    return {**keep, "members": members}


def load_forecaster(
    path: str | os.PathLike, expect: ForecasterConfig | None = None
) -> LoadedForecaster:
    """`Forecaster` rebuilt from a checkpoint file alone, in eval mode on the CPU; an exported
    file (`trajpred export`: .onnx, .ts, .torchscript or a TorchScript archive) gives an
    `ExportedForecaster`, which streams and forecasts windows the same way."""
    return load_forecaster_and_metadata(path, expect)[0]


def load_forecaster_and_metadata(
    path: str | os.PathLike, expect: ForecasterConfig | None = None
) -> tuple[LoadedForecaster, dict]:
    """`load_forecaster`, and what the file says of its training: the checkpoint's payload
    (model_config, run_config, epoch, ...), or what an exported file's metadata kept of it."""
    from .export_runtime import is_exported, load_exported

    if is_exported(path):
        model = load_exported(path)
        check_config(model.cfg, expect, path)
        return model, {**model.meta.checkpoint, "model_config": model.meta.model_config}
    payload = load_checkpoint(path)
    return model_from_payload(payload, path, expect), payload
