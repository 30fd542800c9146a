"""Frames -> detections: the adapter that runs ultralytics' YOLO and reads its results.

This module and tracking.py (the tracker's adapter, which also reads `YOLO.track` results) are
the only ones that import ultralytics; no ultralytics type leaves them.

`Detector(cfg).detect(frame)` runs YOLO on one BGR frame and returns `Detections`, a plain
dataclass of numpy arrays. Weights are anything ultralytics loads (.pt, .onnx, an OpenVINO
folder). A local path must exist; an ultralytics release name (e.g. `yolo11n.pt`) is downloaded
by ultralytics when it is not found locally, and offline that fails at once with a one-line
error that says how to pass a local file instead (no retry loop).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checks import between, check_fields, non_empty, one_of, optional
from .errors import TrajpredError, first_line
from .paths import PACKAGE_ROOT, resolve_data_path

SHIPPED_DETECTOR = PACKAGE_ROOT / "data" / "detector" / "synth_yolo.pt"
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_IMGSZ = 640  # ultralytics' default inference size
# Inference sizes above this exhaust a machine's memory: YOLO's feature maps grow with the
# square of the size (a 100000 px request was killed for lack of memory).
MAX_IMGSZ = 4096


@dataclass
class DetectorConfig:
    weights: str = "yolo11n.pt"  # any weights ultralytics loads; see module docstring
    classes: list[str | int] = field(default_factory=lambda: ["person"])  # names or ids
    conf: float = 0.25  # detections at or above count (see Detector.query_conf)
    imgsz: int | None = None  # inference size in pixels; None: the size the weights were
    # trained at (ultralytics records it in .pt files), else 640
    device: str = "auto"  # auto | cpu | cuda
    half: bool = False  # fp16 inference (ultralytics' half=True; GPU only, ignored on the CPU)

    def __post_init__(self) -> None:
        check_fields(
            self,
            weights=non_empty,
            classes=non_empty,
            conf=between(0, 1),
            imgsz=optional(between(32, MAX_IMGSZ)),
            device=one_of(*DEVICES),
        )


@dataclass
class Detections:
    """The detections of one frame.

    box_xywh: (N, 4) float64 left, top, width, height in pixels of the frame.
    conf: (N,) float64 confidence in [0, 1]. class_id: (N,) int64 detector class ids.
    """

    box_xywh: np.ndarray
    conf: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        self.box_xywh = np.asarray(self.box_xywh, dtype=np.float64).reshape(-1, 4)
        n = len(self.box_xywh)
        self.conf = np.asarray(self.conf, dtype=np.float64).reshape(n)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(n)

    def __len__(self) -> int:
        return len(self.box_xywh)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    def select(self, rows) -> Detections:
        return Detections(self.box_xywh[rows], self.conf[rows], self.class_id[rows])


def detections_from_ultralytics(result) -> Detections:
    """One ultralytics `Results` (predict or track) -> Detections (track ids, if any, dropped)."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Detections.empty()
    xyxy = boxes.xyxy.cpu().numpy().astype(np.float64)
    return Detections(
        np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]]),
        boxes.conf.cpu().numpy(),
        boxes.cls.cpu().numpy(),
    )


def fp16_argument() -> dict:
    """ultralytics' keyword for fp16 inference: `quantize=16` where it exists (it replaced
    `half`, which now warns on every call), else `half=True`."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}


def resolve_device(device: str, setting: str = "--device") -> str:
    """auto | cpu | cuda -> the torch device string ("cpu" or "cuda:0"); `setting` names the
    option in the error."""
    import torch

    if device == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda:0"
    if device == "cuda":
        raise TrajpredError(f"{setting} cuda: no CUDA GPU is available (use cpu or auto)")
    return "cpu"


def _is_release_name(weights: str) -> bool:
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    return os.sep not in weights and "/" not in weights and weights in GITHUB_ASSETS_NAMES


def _local_file_hint() -> str:
    hint = f" (e.g. --weights {SHIPPED_DETECTOR})" if SHIPPED_DETECTOR.exists() else ""
    return f"pass a local weights file with --weights PATH{hint}"


def check_weights(weights: str) -> str:
    """The weights path or release name to give YOLO(); downloads a missing release file once.

    A missing local path is an error. A release name not found locally needs the internet:
    offline -> an immediate error; online -> one download attempt, no retries.
    """
    from ultralytics.utils import SETTINGS, is_online

    if not _is_release_name(weights):
        path = resolve_data_path(weights)
        if not path.exists():
            raise TrajpredError(f"detector weights {weights} not found; {_local_file_hint()}")
        return str(path)
    for local in (Path(weights), Path(SETTINGS["weights_dir"]) / weights):
        if local.is_file():
            return str(local)
    if not is_online():
        raise TrajpredError(
            f"cannot download detector weights {weights}: no internet; {_local_file_hint()}"
        )
    from ultralytics.utils.downloads import attempt_download_asset

    try:
        return attempt_download_asset(weights, retry=0)
    except Exception as e:  # requests/urllib raise many types; each ends as one line
        raise TrajpredError(
            f"cannot download detector weights {weights} ({first_line(e, 120)}); "
            f"{_local_file_hint()}"
        ) from None


def load_yolo(weights: str, device: str = "cpu", imgsz: int = 64):
    """An ultralytics YOLO model from weights passed through `check_weights`, run once on a blank
    image: exported formats (ONNX, OpenVINO) load their runtime only then, so a missing runtime
    or an unreadable file is a one-line error here rather than a traceback on the first frame."""
    from ultralytics import YOLO

    try:
        model = YOLO(weights, task="detect")
        model.predict(
            np.zeros((imgsz, imgsz, 3), np.uint8), imgsz=imgsz, device=device, verbose=False
        )
        return model
    except Exception as e:  # ultralytics raises many types for a bad file; each ends as one line
        raise TrajpredError(f"cannot load detector weights {weights}: {first_line(e)}") from None


def class_ids(names: dict[int, str], classes: list[str | int]) -> list[int]:
    """Class names or ids (as text or int) -> ids of the model; unknown -> an error listing the
    valid ones."""
    by_name = {str(n).lower(): int(i) for i, n in names.items()}
    ids = []
    for c in classes:
        text = str(c).strip()
        if text.isdigit() and int(text) in names:
            ids.append(int(text))
        elif text.lower() in by_name:
            ids.append(by_name[text.lower()])
        else:
            shown = ", ".join(f"{i}={n}" for i, n in list(names.items())[:12])
            more = ", ..." if len(names) > 12 else ""
            raise TrajpredError(
                f"class {text!r} is not one of the detector's classes ({shown}{more})"
            )
    return sorted(set(ids))


def _stride_multiple(imgsz: int, model) -> int:
    """imgsz rounded up to a multiple of the model's largest stride, once, with one warning:
    ultralytics would round it itself and print its warning on every frame."""
    strides = getattr(getattr(model, "model", None), "stride", None)
    try:
        stride = int(max(strides)) if strides is not None else 32
    except (TypeError, ValueError):
        stride = 32
    rounded = -(-imgsz // stride) * stride
    if rounded != imgsz:
        warnings.warn(
            f"imgsz {imgsz} is not a multiple of the detector's stride {stride}; using {rounded}",
            stacklevel=3,
        )
    return rounded


def _direct_predictor(model) -> Callable[[np.ndarray], Any] | None:
    """One frame -> ultralytics Results through the model's set-up predictor: its
    preprocess, inference and postprocess, the steps `YOLO.predict` runs per frame, without
    what `predict` redoes on every call (argument merging, a new image loader, callbacks,
    profilers): about 1 ms of CPU a frame at 640 px. None where this ultralytics' predictor
    lacks those steps (`detect` then keeps calling `predict`); tests/test_pipeline.py checks
    that both give the same boxes."""
    predictor = getattr(model, "predictor", None)
    steps = ("pre_transform", "preprocess", "inference", "postprocess")
    if predictor is None or not all(callable(getattr(predictor, s, None)) for s in steps):
        return None
    to_tensor = CpuInput(predictor)

    def run(frame_bgr: np.ndarray):
        image = to_tensor(frame_bgr)
        raw = predictor.inference(image)
        predictor.batch = ([""], [frame_bgr], [""])  # paths, images, log strings
        return predictor.postprocess(raw, image, [frame_bgr])[0]

    return run


class CpuInput:
    """ultralytics' `preprocess` for one BGR frame on the CPU at fp32, in 1.1 ms instead of
    2.4 (768x576 -> 640x640): the same letterbox (ultralytics' own `pre_transform`), then
    BGR -> RGB planes divided by 255 straight into a reused float32 buffer, where torch's
    permute, flip, cast and divide each made a full copy. The result is equal to
    `preprocess`'s element for element (tested). The buffer is reused from frame to frame:
    inference is synchronous and nothing keeps the input tensor. Other devices, fp16 and
    other channel counts go through `preprocess`."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.buffer: np.ndarray | None = None
        # The set-up predictor's device and precision do not change from frame to frame.
        self.cpu_fp32 = getattr(getattr(predictor, "device", None), "type", None) == "cpu" and (
            not getattr(predictor.model, "fp16", False)
        )

    def __call__(self, frame_bgr: np.ndarray):
        import cv2
        import torch

        # decided before letterboxing, so that `preprocess` never letterboxes a frame twice
        bgr_uint8 = frame_bgr.dtype == np.uint8 and frame_bgr.ndim == 3 and frame_bgr.shape[2] == 3
        if not (self.cpu_fp32 and bgr_uint8):
            return self.predictor.preprocess([frame_bgr])
        letterboxed = self.predictor.pre_transform([frame_bgr])[0]
        h, w = letterboxed.shape[:2]
        if self.buffer is None or self.buffer.shape != (1, 3, h, w):
            self.buffer = np.empty((1, 3, h, w), np.float32)
        for plane, channel in zip(cv2.split(letterboxed)[::-1], self.buffer[0], strict=True):
            np.divide(plane, np.float32(255), out=channel, dtype=np.float32)
        return torch.from_numpy(self.buffer)


class Detector:
    """YOLO on one frame at a time.

    `query_conf` is the threshold YOLO runs at: min(cfg.conf, low_conf), so a tracker with a
    second, low-score association (ByteTrack) sees the weak boxes too; `Detections` returned by
    `detect` hold every box down to `query_conf`, and `confident(d)` keeps those >= cfg.conf.
    """

    def __init__(self, cfg: DetectorConfig, low_conf: float | None = None):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.half = cfg.half and self.device != "cpu"  # fp16 kernels are a GPU's
        self.weights = check_weights(cfg.weights)  # the local file actually loaded
        self.model = load_yolo(self.weights, self.device)
        trained = self.model.overrides.get("imgsz")
        self.imgsz = _stride_multiple(
            cfg.imgsz or (trained if isinstance(trained, int) else DEFAULT_IMGSZ), self.model
        )
        self.names = {int(i): str(n) for i, n in self.model.names.items()}
        self.class_ids = class_ids(self.names, cfg.classes)
        self.query_conf = cfg.conf if low_conf is None else min(cfg.conf, low_conf)
        self._predictor: Callable[[np.ndarray], Any] | None = None

    def predict(self, frame_bgr: np.ndarray):
        """ultralytics' Results of one frame through `YOLO.predict` with this detector's
        settings (the whole call: its callbacks and hooks, such as the Detect layer's features,
        run too)."""
        return self.model.predict(
            frame_bgr,
            conf=self.query_conf,
            classes=self.class_ids,
            imgsz=self.imgsz,
            device=self.device,
            verbose=False,
            **(fp16_argument() if self.half else {}),
        )[0]

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """(H, W, 3) uint8 BGR frame -> Detections of the configured classes."""
        if self._predictor is None:
            result = self.predict(frame_bgr)
            # That call left ultralytics' predictor set up with these settings (letterbox
            # size, thresholds, classes, warm-up done): later frames go straight through it.
            self._predictor = _direct_predictor(self.model)
            return detections_from_ultralytics(result)
        return detections_from_ultralytics(self._predictor(frame_bgr))

    def confident(self, detections: Detections) -> Detections:
        return detections.select(detections.conf >= self.cfg.conf)
