"""Where the files that ship with trajpred live (data/, configs/ beside the package)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def resolve_data_path(path: str) -> Path:
    """`path` as given when it exists; else a relative path found under the package's install
    root (so "data/detector/synth_yolo.pt" or "configs/eth_ucy.yaml" work from any folder);
    else `path` unchanged (and the caller reports it missing)."""
    given = Path(path).expanduser()
    if given.exists() or given.is_absolute() or not (PACKAGE_ROOT / given).exists():
        return given
    return PACKAGE_ROOT / given
