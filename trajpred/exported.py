"""Exported forecasters (`trajpred export`'s ONNX and TorchScript files): their metadata, and
running them with the interface of a `Forecaster`.

An exported file holds one graph, the model's `advance` (trajpred/model.py): the features of T
new observations per track, the recurrent state and the neighbour inputs in; the new state and
the forecast (mean, modes, mode logits, per-step sigma) out. The number of tracks, T (1 when
streaming, obs_len - 1 for a whole window) and the number of neighbours are dynamic; an
ensemble's members are inside the one graph. Feature building (heading frame, scale,
neighbour selection) stays in trajpred/features.py and trajpred/forecast.py, and
`ExportedForecaster` offers the methods those call (`cfg`, `state_size`, `advance`, calling it
on windows), so `TrackStreams`, `forecast_windows`, `predict` and `evaluate` run an exported
file with the same code as a checkpoint.

The file carries `ExportMetadata` as JSON: in the ONNX model's metadata_props under "trajpred",
or as the TorchScript archive's extra file "trajpred.json". Writing them: trajpred/export.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import __version__
from .calibration import calibration_of
from .config import ConfigError, from_dict
from .errors import InputError, first_line
from .features import MOVING_EPS, PERSON_HEIGHT_M
from .model import NEIGHBOUR_FEATURES, ForecasterConfig, ForecastOutput

FORMAT = "trajpred-forecaster-export"
VERSION = 1
METADATA_KEY = "trajpred"  # ONNX metadata_props key; TorchScript extra file METADATA_KEY.json
TORCHSCRIPT_SUFFIXES = (".ts", ".torchscript")
ONNX_HINT = 'install it with: pip install "trajpred[onnx]"'
SCALE_MODE = (
    "positions are divided by a scale, source units per model unit: 1 for ground-plane metres, "
    f"box height / {PERSON_HEIGHT_M} for pixel tracks (pixels per metre of a person)"
)
# Graph inputs and outputs, in order, with their shapes (B tracks, T steps, K neighbours,
# L layers, S state_size, M modes, P pred_len); positions in the heading frame, model units.
INPUTS = {
    "features": "(B, T, input_size) float32: one row per observation (trajpred.features)",
    "h": "(L, B, S) float32: recurrent state (zeros for a new track)",
    "c": "(L, B, S) float32: recurrent cell state",
    "last_speed": "(B,) float32: last step along the heading, model units per step",
    "nbr_features": f"(B, K, {NEIGHBOUR_FEATURES}) float32: nearest neighbours (social models)",
    "nbr_mask": "(B, K) bool: which neighbour rows are real (social models)",
    "scene": "(B, S_scene) float32: where the track stands (camera-specific models)",
}
OUTPUTS = {
    "new_h": "(L, B, S) float32",
    "new_c": "(L, B, S) float32",
    "mean": "(B, P, 2) float32: deterministic forecast, offsets from the last position",
    "modes": "(B, M, P, 2) float32: mixture trajectories, offsets from the last position",
    "mode_logits": "(B, M) float32",
    "mode_sigma": "(B, M, P) float32: standard deviation per step, model units",
}


@dataclass
class ExportMetadata:
    """What an exported forecaster says about itself.

    model_config: ForecasterConfig's fields (obs_len, pred_len, dt_s, ...). members: 1, or the
    ensemble's size (states side by side: state_size = members * hidden_size). backend: "onnx"
    or "torchscript"; int8: weights quantised by onnxruntime's dynamic quantisation. source:
    the checkpoint's file name; checkpoint: its epoch, best validation ADE and run config.
    scale_mode, person_height_m, moving_eps: how trajpred turns positions into features.
    inputs/outputs: the graph's tensors, in order, with shapes. calibration: how sigma becomes
    the calibrated radii r50/r90 (trajpred/calibration.py `Calibration`), or None.
    """

    model_config: dict
    members: int
    backend: str
    int8: bool = False
    source: str = ""
    checkpoint: dict = field(default_factory=dict)
    scale_mode: str = SCALE_MODE
    person_height_m: float = PERSON_HEIGHT_M
    moving_eps: float = MOVING_EPS
    inputs: dict = field(default_factory=lambda: dict(INPUTS))
    outputs: dict = field(default_factory=lambda: dict(OUTPUTS))
    calibration: dict | None = None  # the checkpoint's Calibration (None in older exports)
    format: str = FORMAT
    version: int = VERSION
    trajpred_version: str = __version__

    def __post_init__(self) -> None:
        if self.format != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        if self.version != VERSION:
            raise ValueError(f"export version {self.version} (this trajpred reads {VERSION})")
        if self.backend not in ("onnx", "torchscript") or self.members < 1:
            raise ValueError(f"backend {self.backend!r}, members {self.members}")
        if (self.person_height_m, self.moving_eps) != (PERSON_HEIGHT_M, MOVING_EPS):
            raise ValueError("built with other feature constants than this trajpred's")

    @property
    def cfg(self) -> ForecasterConfig:
        return from_dict(ForecasterConfig, self.model_config, where="export metadata")

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str, path: str | os.PathLike) -> ExportMetadata:
        """Parse and check; InputError naming `path` on anything unusable."""
        try:
            meta = cls(**json.loads(text))
            meta.cfg  # noqa: B018 - validates the model config
        except (ValueError, TypeError, ConfigError) as e:
            raise InputError(path, f"exported forecaster with unusable metadata ({e})") from None
        return meta


@contextlib.contextmanager
def quiet_torch():
    """torch's TorchScript and legacy ONNX export announce their deprecation on every call, and
    tracing warns about the Python branches it fixes (none depends on the batch); the files
    they write are what trajpred documents and checks, so keep the console to our one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def import_or_hint(module: str, path: str | os.PathLike):
    """Import an optional dependency, or one line saying which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise InputError(path, f"needs {top}, which is not installed; {ONNX_HINT}") from None


def is_exported(path: str | os.PathLike) -> bool:
    """Whether `path` names an exported forecaster rather than a checkpoint: by suffix (.onnx,
    .ts, .torchscript), or a TorchScript archive with trajpred metadata under any name."""
    path = Path(path)
    if path.suffix.lower() in (".onnx", *TORCHSCRIPT_SUFFIXES):
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith(f"/extra/{METADATA_KEY}.json") for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


class _OnnxRunner:
    """One onnxruntime session: tensors in (by name; a graph drops inputs it does not read,
    such as the neighbours of a model without them), tensors out."""

    def __init__(self, session):
        self.session = session
        self.names = [i.name for i in session.get_inputs()]

    def __call__(self, inputs: dict) -> list[torch.Tensor]:
        feed = {n: inputs[n].detach().cpu().contiguous().numpy() for n in self.names}
        return [torch.from_numpy(a) for a in self.session.run(None, feed)]

    def to(self, device) -> None:
        """Tensors move to `device` after the run; onnxruntime itself runs on the CPU."""


class _TorchScriptRunner:
    def __init__(self, module):
        self.module = module

    def __call__(self, inputs: dict) -> list[torch.Tensor]:
        return list(self.module(*(inputs[n] for n in INPUTS)))

    def to(self, device) -> None:
        self.module.to(device)


class ExportedForecaster:
    """A forecaster read from an exported file, with the methods `TrackStreams` and
    `forecast_windows` call on a `Forecaster`: `cfg`, `state_size`, `eval`, `to`, `advance`,
    and calling it on whole windows. `meta` is the file's ExportMetadata."""

    def __init__(self, runner, meta: ExportMetadata, path: str | os.PathLike):
        self._runner = runner
        self.meta = meta
        self.cfg = meta.cfg
        self.calibration = calibration_of(meta.calibration, self.cfg.pred_len, path)
        self.path = Path(path)
        self.device = torch.device("cpu")

    @property
    def state_size(self) -> int:
        return self.cfg.hidden_size * self.meta.members

    def eval(self) -> ExportedForecaster:
        return self

    def to(self, device) -> ExportedForecaster:
        self.device = torch.device(device)
        self._runner.to(self.device)
        return self

    def advance(
        self,
        features,
        state,
        last_speed,
        nbr_features=None,
        nbr_mask=None,
        scene=None,
        mixture: bool = True,
    ):
        """As Forecaster.advance: features (B, T, input_size), state (h, c) or None, last_speed
        (B,), optional neighbours (B, K, 6) and mask (B, K), the scene vector of a
        camera-specific model -> (new state, ForecastOutput). The graph always decodes the
        whole mixture, so `mixture` changes nothing here."""
        b = len(features)
        if state is None:
            shape = (self.cfg.num_layers, b, self.state_size)
            state = (features.new_zeros(shape), features.new_zeros(shape))
        if nbr_features is None:  # one neighbour row, masked out: pools to zeros, as None does
            nbr_features = features.new_zeros(b, 1, NEIGHBOUR_FEATURES)
            nbr_mask = torch.zeros(b, 1, dtype=torch.bool, device=features.device)
        elif nbr_mask is None:  # every neighbour row is real
            nbr_mask = torch.ones(nbr_features.shape[:2], dtype=torch.bool, device=features.device)
        if scene is None:
            if self.cfg.reads_scene:  # the graph always reads the scene vector
                raise ValueError("a camera-specific forecaster needs its scene input")
            scene = features.new_zeros(b, 1)  # not read by the graph
        inputs = (features, *state, last_speed, nbr_features, nbr_mask, scene)
        outputs = self._runner(dict(zip(INPUTS, inputs, strict=True)))
        h, c, mean, modes, logits, sigma = (t.to(self.device) for t in outputs)
        return (h, c), ForecastOutput(mean, modes, logits, sigma)

    def __call__(
        self, features, last_speed, nbr_features=None, nbr_mask=None, scene=None
    ) -> ForecastOutput:
        """Whole windows (B, T, input_size) encoded from a zero state, as Forecaster.forward."""
        return self.advance(features, None, last_speed, nbr_features, nbr_mask, scene)[1]


def load_exported(path: str | os.PathLike) -> ExportedForecaster:
    """An exported forecaster: .onnx through onnxruntime (the "onnx" extra), anything else as
    TorchScript; InputError (one line) on a missing runtime or an unusable file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "exported forecaster not found")
    if path.suffix.lower() == ".onnx":
        return _load_onnx(path)
    return _load_torchscript(path)


def _load_onnx(path: Path) -> ExportedForecaster:
    ort = import_or_hint("onnxruntime", path)
    options = ort.SessionOptions()
    # As many threads as torch would use (the predict writer process runs with one), and no
    # spinning between calls: the other cores belong to the detector.
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types, not importable by name
        raise InputError(path, f"not a readable ONNX model ({first_line(e)})") from None
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if text is None:
        raise InputError(path, "ONNX model without trajpred metadata (not from trajpred export)")
    meta = ExportMetadata.from_json(text, path)
    names = [o.name for o in session.get_outputs()]
    if names != list(OUTPUTS) or not {i.name for i in session.get_inputs()} <= set(INPUTS):
        raise InputError(path, f"ONNX graph's inputs/outputs are not trajpred's ({names})")
    return ExportedForecaster(_OnnxRunner(session), meta, path)


def _load_torchscript(path: Path) -> ExportedForecaster:
    extra = {f"{METADATA_KEY}.json": ""}
    try:
        with quiet_torch():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise InputError(path, f"not a readable TorchScript file ({first_line(e)})") from None
    if not extra[f"{METADATA_KEY}.json"]:
        raise InputError(path, "TorchScript file without trajpred metadata (not from export)")
    meta = ExportMetadata.from_json(extra[f"{METADATA_KEY}.json"], path)
    return ExportedForecaster(_TorchScriptRunner(module.eval()), meta, path)
