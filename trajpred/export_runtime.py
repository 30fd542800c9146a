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
or as the TorchScript archive's extra file "trajpred.json". Writing them:
trajpred/export_forecaster.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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
        if self.backend not in ("onnx", "torchscript"):
            raise ValueError(f"backend {str(self.backend)[:40]!r}")
        if type(self.members) is not int or self.members < 1:
            raise ValueError(f"members must be a whole number >= 1, got {str(self.members)[:40]}")
        if (self.person_height_m, self.moving_eps) != (PERSON_HEIGHT_M, MOVING_EPS):
            raise ValueError("built with other feature constants than this trajpred's")

    @property
    def cfg(self) -> ForecasterConfig:
        return from_dict(ForecasterConfig, self.model_config, where="export metadata")

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    def shapes(self) -> dict[str, tuple]:
        """The shape of every graph input and output that this metadata implies, by name: ints
        where the model config fixes a size, "B" (tracks), "T" (steps), "K" (neighbours)."""
        cfg = self.cfg
        state = (cfg.num_layers, "B", cfg.hidden_size * self.members)
        modes, steps = cfg.num_modes, cfg.pred_len
        return {
            "features": ("B", "T", cfg.input_size),
            "h": state,
            "c": state,
            "last_speed": ("B",),
            "nbr_features": ("B", "K", NEIGHBOUR_FEATURES),
            "nbr_mask": ("B", "K"),
            "scene": ("B", max(1, cfg.scene_features)),
            "new_h": state,
            "new_c": state,
            "mean": ("B", steps, 2),
            "modes": ("B", modes, steps, 2),
            "mode_logits": ("B", modes),
            "mode_sigma": ("B", modes, steps),
        }

    def settings_of(self, name: str) -> str:
        """The metadata settings that decide the shape of graph tensor `name`, in words."""
        cfg = self.cfg
        if name in ("h", "c", "new_h", "new_c"):
            return (
                f"num_layers {cfg.num_layers}, hidden_size {cfg.hidden_size} x "
                f"{self.members} member(s)"
            )
        return {
            "features": f"input size {cfg.input_size}",
            "scene": f"{cfg.scene_features} scene features",
            "mean": f"pred_len {cfg.pred_len}",
        }.get(name, f"num_modes {cfg.num_modes}, pred_len {cfg.pred_len}")

    @classmethod
    def from_json(cls, text: str, path: str | os.PathLike) -> ExportMetadata:
        """Parse and check; InputError naming `path` on anything unusable."""
        try:
            meta = cls(**json.loads(text))
            meta.cfg  # noqa: B018 - validates the model config
        except (ValueError, TypeError, ConfigError, RecursionError) as e:  # JSON nested too deep
            why = first_line(e)
            raise InputError(path, f"exported forecaster with unusable metadata ({why})") from None
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
    # The graph keeps only the inputs it reads: the neighbours of a social model, the scene
    # vector of a camera-specific one.
    reads = {i.name for i in session.get_inputs()}
    _check_branches(meta, path, "nbr_features" in reads, "scene" in reads)
    expect = meta.shapes()
    for tensor in (*session.get_inputs(), *session.get_outputs()):
        declared = tuple(d if isinstance(d, int) else (d or "?") for d in tensor.shape)
        want = expect[tensor.name]
        if len(declared) != len(want) or any(
            isinstance(d, int) and isinstance(w, int) and d != w
            for d, w in zip(declared, want, strict=False)
        ):
            _disagree(path, meta, tensor.name, declared)
    return _checked(ExportedForecaster(_OnnxRunner(session), meta, path))


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
    # Which optional branches the traced model has, by its parameters' names (as in model.py).
    tensors = dict(module.named_parameters())
    tensors |= dict(module.named_buffers())
    social = any(".social." in name for name in tensors)
    scene = any(".scene." in name or name.endswith("prior_keys") for name in tensors)
    _check_branches(meta, path, social, scene)
    # The recurrent state and the input size, from the LSTMs' and the embedding's weights
    # (weight_hh_l{layer}: (4 * hidden_size, hidden_size), one per layer and member).
    cfg, want = meta.cfg, meta.shapes()
    lstm = {n: t.shape for n, t in tensors.items() if re.search(r"lstm\.weight_hh_l\d+$", n)}
    if lstm and len({shape[1] for shape in lstm.values()}) == 1:
        layers = 1 + max(int(n.rsplit("_l", 1)[1]) for n in lstm)
        members = sum(n.endswith("_l0") for n in lstm)
        state = (layers, "B", next(iter(lstm.values()))[1] * members)
        if state != want["h"]:
            _disagree(path, meta, "h", state)
    embed = [t.shape for n, t in tensors.items() if n.endswith("embed.0.weight")]
    if embed and embed[0][1] != cfg.input_size:
        _disagree(path, meta, "features", ("B", "T", embed[0][1]))
    # An LSTM holds 4 * hidden_size**2 weights per layer and member, so its state for one track
    # is far smaller than the model: a bigger one is a metadata lie, not worth allocating.
    if cfg.num_layers * cfg.hidden_size * meta.members > sum(t.numel() for t in tensors.values()):
        _disagree(path, meta, "h", ("?", "B", "?"))
    return _checked(ExportedForecaster(_TorchScriptRunner(module.eval()), meta, path))


def _shape(shape) -> str:
    return f"({', '.join(map(str, shape))}{',' if len(shape) == 1 else ''})"


def _disagree(path: Path, meta: ExportMetadata, name: str, graph_shape) -> None:
    """Raise the one line for a graph tensor whose shape is not the metadata's."""
    want = _shape(meta.shapes()[name])
    raise InputError(
        path,
        f"metadata does not match its graph: {name} is {_shape(graph_shape)} in the graph, "
        f"{want} by the metadata ({meta.settings_of(name)}); re-export the checkpoint",
    )


def _check_branches(meta: ExportMetadata, path: Path, social: bool, scene: bool) -> None:
    """The graph has the neighbour (scene) branch exactly when the metadata says it has."""
    cfg = meta.cfg
    social_key = f"social_neighbours {cfg.social_neighbours}"
    scene_key = f"scene_input {cfg.scene_input}, scene_prior_size {cfg.scene_prior_size}"
    for what, key, said, has in (
        ("neighbour", social_key, cfg.social_neighbours > 0, social),
        ("scene", scene_key, cfg.reads_scene, scene),
    ):
        if said != has:
            raise InputError(
                path,
                f"metadata does not match its graph: the metadata ({key}) says the model "
                f"{'has' if said else 'has no'} {what} input, the graph "
                f"{'reads one' if has else 'reads none'}; re-export the checkpoint",
            )


def _checked(model: ExportedForecaster) -> ExportedForecaster:
    """`model` after one dry run on one track, one step, one neighbour, all zeros, shaped as
    its metadata says: every output has the shape the metadata implies and is finite. A file
    whose metadata disagrees with its graph fails here, in one line naming it, rather than in
    the middle of a video."""
    meta, path = model.meta, model.path
    sizes = {"B": 1, "T": 1, "K": 1}
    expect = {n: tuple(sizes.get(d, d) for d in shape) for n, shape in meta.shapes().items()}
    inputs = {
        name: torch.zeros(expect[name], dtype=torch.bool if name == "nbr_mask" else None)
        for name in INPUTS
    }
    try:
        with torch.no_grad(), quiet_torch():
            outputs = model._runner(inputs)
    except Exception as e:  # onnxruntime's exception types are not importable by name
        shown = ", ".join(f"{n} {_shape(meta.shapes()[n])}" for n in ("features", "h", "scene"))
        raise InputError(
            path,
            f"metadata does not match its graph: the graph does not run on the inputs its "
            f"metadata describes ({shown}): {_last_line(e)}",
        ) from None
    for name, tensor in zip(OUTPUTS, outputs, strict=True):
        if tuple(tensor.shape) != expect[name]:
            dims = meta.shapes()[name]
            got: tuple = tuple(tensor.shape)
            if len(got) == len(dims):  # the track axis as "B", as the metadata writes it
                got = tuple("B" if d == "B" else n for n, d in zip(got, dims, strict=True))
            _disagree(path, meta, name, got)
        if not torch.isfinite(tensor.float()).all():
            raise InputError(path, f"its graph gives non-finite {name} for a still track")
    return model


def _last_line(e: BaseException) -> str:
    """What went wrong, in one line: TorchScript puts its own traceback first and the error
    last; onnxruntime says it first."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if len(lines) > 1 and "TorchScript" in lines[0]:
        return first_line(Exception(lines[-1]), 120)
    return first_line(e, 120)
