"""ADE/FDE of a trained forecaster, per scene and averaged, beside constant velocity, and how
honest its uncertainty is: NLL, KDE-NLL, coverage of r50/r90 and miss rate.

Examples:
  trajpred evaluate --checkpoint data/checkpoints/eth_ucy --data ../shared/data/eth_ucy --scene all
  trajpred evaluate --checkpoint runs/train/best.pt --data ../shared/data/eth_ucy --scene eth \\
      --save-predictions eth.csv --json eth.json --plot eth.png

--checkpoint is a .pt file or a folder with one <scene>.pt per leave-one-out scene.
--data is an ETH/UCY split root (<scene>/test/*.txt), or track files (folder, file or glob).
A checkpoint whose run config names files of an evaluated scene (trained or validated on them)
gets a one-line warning on stderr: that score is not held out.
"""

from __future__ import annotations


def add_scene_arguments(p, data: dict, scene_help: str) -> None:
    """--checkpoint, --data (argparse keywords `data`), --scene, --fps and --format: which
    checkpoint and scenes, as `evaluate` and `calibrate` take them."""
    p.add_argument("--checkpoint", required=True, help="checkpoint file, or folder of <scene>.pt")
    p.add_argument("--data", **data)
    p.add_argument("--scene", nargs="+", default=["all"], help=scene_help)
    p.add_argument(
        "--fps", type=float, default=0.0, help="frame rate of video-rate track files (resampled)"
    )
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", "eth_ucy", "mot", "csv"],
        help="track file format",
    )


def add_arguments(p) -> None:
    add_scene_arguments(
        p,
        {"default": "../shared/data/eth_ucy", "help": "ETH/UCY root or track files"},
        "scene names under --data (eth hotel univ zara1 zara2), or 'all'",
    )
    p.add_argument(
        "--k", type=int, default=20, help="samples for best-of-K (0: deterministic only)"
    )
    p.add_argument(
        "--calibration",
        default="online",
        choices=["online", "fixed"],
        help="radii r50/r90 as predict makes them (online: learning each file's recent errors "
        "as their truth arrives) or from the checkpoint's calibration alone (fixed)",
    )
    p.add_argument(
        "--kde-windows",
        type=int,
        default=2000,
        help="KDE-NLL (2000 samples per window) on this many windows drawn at random; 0: all",
    )
    p.add_argument("--save-predictions", metavar="FILE.csv", help="write every window's forecast")
    p.add_argument("--json", metavar="FILE.json", help="write the metrics as JSON")
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="plot sample forecasts and a reliability diagram (nominal vs observed coverage)",
    )


def run(args) -> int:
    import sys

    from ..atomic import write_text
    from ..evaluation import (
        check_evaluate_arguments,
        evaluate_scene,
        plot_forecasts,
        scenes_of,
        summary_rows,
        write_predictions,
    )
    from ..metrics import format_table, format_uncertainty_table, scores_to_json
    from ..outputs import input_files, refuse_overwriting_inputs

    for scene in args.scene:  # the same rules as trajpred.evaluate's, named as flags
        check_evaluate_arguments(
            flags=True,
            checkpoint=args.checkpoint,
            data=args.data,
            scene=scene,
            k=args.k,
            fps=args.fps,
            fmt=args.format,
            calibration=args.calibration,
            kde_windows=args.kde_windows,
        )
    refuse_overwriting_inputs(
        [args.save_predictions, args.json, args.plot], input_files(args.checkpoint, args.data)
    )
    scenes = scenes_of(args.scene, args.data)
    results = [
        evaluate_scene(
            args.checkpoint,
            args.data,
            s,
            args.k,
            args.fps,
            args.format,
            args.calibration,
            args.kde_windows,
        )
        for s in scenes
    ]
    for result in results:
        if result.warning:
            print(result.warning, file=sys.stderr)
    rows = summary_rows(results)
    units = rows[0].units
    print(
        f"deterministic ADE/FDE{f' and best-of-{args.k}' if args.k else ''} in {units}; "
        "CV = constant velocity (last observed step) on the same windows"
    )
    print(format_table(rows))
    print(
        "\nuncertainty: NLL of the truth under the predictive mixture and KDE-NLL (Trajectron++ "
        "protocol), nats; share of true positions inside the calibrated radii r50 / r90 "
        f"(goal 50 % / 90 %; {args.calibration} calibration); MR@2m = best-of-K endpoint "
        "farther than 2 m; CV = constant velocity with the Gaussian fitted at calibration"
    )
    print(format_uncertainty_table(rows))
    if args.save_predictions:
        write_predictions(args.save_predictions, results)
    if args.json:
        write_text(args.json, scores_to_json(rows) + "\n")
    if args.plot:
        plot_forecasts(args.plot, results)
    return 0
