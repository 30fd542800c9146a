"""Fit a checkpoint's uncertainty calibration on data it was not trained on.

Examples:
  trajpred calibrate --checkpoint runs/mine/best.pt --data held_out_tracks.csv --fps 25 \\
      --out runs/mine/calibrated.pt
  trajpred calibrate --checkpoint runs/hotel/best.pt --data ../shared/data/eth_ucy --scene hotel \\
      --split val --out runs/hotel/calibrated.pt
  trajpred calibrate --checkpoint data/checkpoints/eth_ucy --data ../shared/data/eth_ucy \\
      --scene all --split val --out calibrated/          # one <scene>.pt per scene

The radii r50 and r90 that `predict`, `evaluate` and `trajpred.Forecaster` report are the
model's own spread times per-step factors, fitted here so that 50 % and 90 % of the true
positions of these windows fall inside them (split-conformal quantiles; the predictive density
is rescaled by maximum likelihood too). Calibrate on what the model will see when it is used:
tracks from `trajpred track` of the same kind of camera for a video model (their own future is
the label), held-out annotated tracks for a model evaluated on annotations. The forecasts
themselves do not change. The output is the checkpoint with its calibration; `trajpred train`
and `trajpred adapt` calibrate on their validation data already.
"""

from __future__ import annotations


def add_arguments(p) -> None:
    from .evaluate import add_scene_arguments

    add_scene_arguments(
        p,
        {"required": True, "help": "ETH/UCY root, or track files (file/folder/glob)"},
        "with an ETH/UCY root: scene names, or 'all'; else a name for the data",
    )
    p.add_argument(
        "--split",
        default="val",
        choices=["train", "val", "test"],
        help="with an ETH/UCY root: which split of each scene to calibrate on",
    )
    p.add_argument(
        "--out",
        required=True,
        help="calibrated checkpoint (a folder when --checkpoint is a folder)",
    )


def run(args) -> int:
    from pathlib import Path

    from ..errors import TrajpredError
    from ..evaluation import calibrate_checkpoint, scenes_of
    from ..outputs import input_files, refuse_overwriting_inputs

    if not (args.fps >= 0):
        raise TrajpredError(f"--fps must be >= 0, got {args.fps}")
    scenes = scenes_of(args.scene, args.data)
    folder = Path(args.checkpoint).is_dir()
    outs = [Path(args.out) / f"{s}.pt" if folder else Path(args.out) for s in scenes]
    if not folder and len(scenes) > 1:
        raise TrajpredError("one --checkpoint file calibrates on one scene: name one --scene")
    refuse_overwriting_inputs([args.out, *outs], input_files(args.checkpoint, args.data))
    for scene, out in zip(scenes, outs, strict=True):
        report = calibrate_checkpoint(
            args.checkpoint, args.data, scene, out, args.split, args.fps, args.format
        )
        print(report)
    return 0
