"""Export the streaming forecaster of a checkpoint (a model or an ensemble) as one file.

Examples:
  trajpred export --checkpoint data/checkpoints/video.pt --out video.onnx
  trajpred export --checkpoint data/checkpoints/eth_ucy/eth.pt --out eth_int8.onnx --int8
  trajpred export --checkpoint runs/train/best.pt --format torchscript --out best.ts

The file holds one graph: the features of new observations per track, the recurrent state and
the neighbour inputs in, the new state and the forecast (mean, modes, sigma) out, for any number
of tracks. It carries the model config and the checkpoint's metadata (dt_s, obs/pred lengths,
scale mode, epoch, run config) as JSON, and is accepted wherever a checkpoint is:
  trajpred predict clip.mp4 --out runs/clip --checkpoint video.onnx
  trajpred evaluate --checkpoint eth.onnx --data ../shared/data/eth_ucy --scene eth
ONNX files run through onnxruntime (pip install "trajpred[onnx]"); TorchScript through torch.
"""

from __future__ import annotations

import argparse

SUFFIX_FORMATS = {".onnx": "onnx", ".ts": "torchscript", ".torchscript": "torchscript"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="trajpred checkpoint (.pt) to export")
    p.add_argument(
        "--format",
        choices=["onnx", "torchscript"],
        default=None,
        help="file format (default: from --out's suffix: .onnx, .ts or .torchscript)",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="the exported file")
    p.add_argument(
        "--int8",
        action="store_true",
        help="ONNX only: int8 weights by onnxruntime's dynamic quantisation (faster, less exact)",
    )


def run(args) -> int:
    from pathlib import Path

    from ..errors import TrajpredError
    from ..export_forecaster import export_forecaster
    from ..outputs import refuse_overwriting_inputs

    backend = args.format or SUFFIX_FORMATS.get(Path(args.out).suffix.lower())
    if backend is None:
        raise TrajpredError(
            f"--out {args.out}: say --format onnx or torchscript (or name it .onnx / .ts)"
        )
    refuse_overwriting_inputs([args.out], [args.checkpoint])
    result = export_forecaster(args.checkpoint, args.out, backend, args.int8)
    kind = f"ensemble of {result.members}" if result.members > 1 else "model"
    print(
        f"{result.path}: {backend}{' int8' if result.int8 else ''} {kind}, "
        f"{result.size_bytes / 1e6:.1f} MB; largest difference from PyTorch on 1, 7 and 50 "
        f"tracks: {result.max_diff:.2g} (model units)"
    )
    return 0
