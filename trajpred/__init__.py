"""trajpred: detect, track and forecast moving objects in video.

The public Python API (see docs/guides/python.md):

- `Forecaster`: forecasts for your own tracking loop, one `update()` per frame
  (ultralytics `Results`, `supervision.Detections` with tracker ids, or plain arrays).
- `Pipeline`, `PipelineConfig`: what `trajpred predict` runs, yielding one `FrameResult`
  (with its `FrameForecasts`) per frame.
- `FrameEvents`, `EventsConfig`, `read_zones`: zones, lines and near misses forecast with
  their probabilities (`Forecaster(zones=...)`, `predict --zones`).
- `Tracks`, `read_tracks`, `write_tracks`: track files (ETH/UCY, MOTChallenge, CSV).
- `evaluate`: a checkpoint's ADE/FDE on one scene, as a `SceneResult` (`trajpred evaluate`).

Names are imported on first use, so `import trajpred` stays cheap (no torch, no ultralytics).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> (module, name there)
_EXPORTS = {
    "Forecaster": ("live", "Forecaster"),
    "Pipeline": ("pipeline", "Pipeline"),
    "PipelineConfig": ("pipeline", "PipelineConfig"),
    "FrameResult": ("results", "FrameResult"),
    "FrameForecasts": ("results", "FrameForecasts"),
    "FrameEvents": ("results", "FrameEvents"),
    "EventsConfig": ("events", "EventsConfig"),
    "read_zones": ("zones", "read_zones"),
    "Tracks": ("tracks", "Tracks"),
    "read_tracks": ("formats", "read_tracks"),
    "write_tracks": ("formats", "write_tracks"),
    "evaluate": ("evaluation", "evaluate_scene"),
    "SceneResult": ("evaluation", "SceneResult"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trajpred' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
