"""trajpred: detect, track and forecast moving objects in video."""

__version__ = "0.1.0"
