"""Add up a `predict --ray` or `track --ray` run: videos, frames, tracks, forecasts, failures.

Reads OUT/runs.csv (the run's index: one row per video) and each done video's CSV files
(OUT/<video>/tracks.csv and forecasts.csv for predict, OUT/<video>.csv for track), prints the
totals and writes them, with one entry per video, to OUT/summary.json. Tracks are counted per
video (ids restart for each video); a forecast is one (frame, track) that got forecasts; mean
fps is the mean of the videos' own frame rates of processing.

Example:
  trajpred predict videos/ --out runs/all --ray && trajpred summary runs/all
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", metavar="OUT", help="output folder of a --ray run (holds runs.csv)")
    p.add_argument(
        "--json",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="where to write the totals and the per-video entries (default: OUT/summary.json)",
    )


def _count_csv(path: Path) -> tuple[int, int]:
    """(distinct track ids, distinct consecutive (frame, track_id) pairs) of a tracks or
    forecasts CSV, read as a stream."""
    from ..errors import InputError

    if not path.is_file():
        raise InputError(path, "missing, though runs.csv lists its video as done")
    ids: set[str] = set()
    pairs, last = 0, None
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if header[:2] != ["frame", "track_id"]:
                raise InputError(path, "not a trajpred CSV (header frame,track_id,...)")
            for row in reader:
                key = (row[0], row[1])
                ids.add(row[1])
                if key != last:
                    pairs, last = pairs + 1, key
    except (OSError, UnicodeDecodeError, csv.Error, IndexError) as e:
        raise InputError(path, f"cannot read ({type(e).__name__})") from None
    return len(ids), pairs


def _video(out: Path, row: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "video": row["video"],
        "status": row["status"],
        "output": row["output"],
        "frames": int(row["frames"]) if row["frames"] else 0,
        "fps": float(row["fps"]) if row["fps"] else None,
        "seconds": float(row["seconds"]) if row["seconds"] else None,
    }
    if row["status"] != "done":
        entry["error"] = row["error"]
        return entry
    target = out / row["output"]
    if target.is_dir():  # predict
        entry["tracks"], _ = _count_csv(target / "tracks.csv")
        _, entry["forecasts"] = _count_csv(target / "forecasts.csv")
    else:  # track
        entry["tracks"], _ = _count_csv(target)
        entry["forecasts"] = 0
    return entry


def summarize(out: str | os.PathLike) -> dict[str, Any]:
    """The totals of the run in `out` and one entry per video, as summary.json holds them."""
    from ..errors import InputError
    from ..ray_runs import RUNS_NAME, read_runs

    out = Path(out)
    if not out.is_dir():
        raise InputError(out, "not found" if not out.exists() else "not a folder")
    if not (out / RUNS_NAME).is_file():
        raise InputError(out / RUNS_NAME, "not found: OUT must be the output of a --ray run")
    try:
        videos = [_video(out, row) for row in read_runs(out).values()]
    except ValueError:
        raise InputError(out / RUNS_NAME, "frames, fps or seconds is not a number") from None
    done = [v for v in videos if v["status"] == "done"]
    rates = [v["fps"] for v in done if v["fps"] is not None]
    return {
        "videos": len(videos),
        "done": len(done),
        "failed": len(videos) - len(done),
        "frames": sum(v["frames"] for v in done),
        "tracks": sum(v["tracks"] for v in done),
        "forecasts": sum(v["forecasts"] for v in done),
        "mean_fps": round(sum(rates) / len(rates), 2) if rates else None,
        "seconds": round(sum(v["seconds"] or 0.0 for v in videos), 2),
        "failures": [{"video": v["video"], "error": v["error"]} for v in videos if "error" in v],
        "per_video": videos,
    }


def run(args: argparse.Namespace) -> int:
    from ..atomic import write_json
    from ..outputs import OutputLock, input_files, refuse_overwriting_inputs

    out = Path(args.out)
    target = Path(getattr(args, "json", out / "summary.json"))
    totals = summarize(out)  # before the lock: a bad OUT is one line, and nothing is created
    read = [out / "runs.csv", *(out / v["output"] for v in totals["per_video"] if v["output"])]
    refuse_overwriting_inputs([target], input_files(*read))
    with OutputLock(out):  # not while a run still writes runs.csv
        totals = summarize(out)
        write_json(target, totals)
    fps = "n/a" if totals["mean_fps"] is None else f"{totals['mean_fps']:.1f}"
    print(
        f"{out}: {totals['videos']} video{'' if totals['videos'] == 1 else 's'} "
        f"({totals['done']} done, {totals['failed']} failed), "
        f"{totals['frames']} frames, {totals['tracks']} tracks, {totals['forecasts']} forecasts, "
        f"mean {fps} fps"
    )
    for failure in totals["failures"]:
        print(f"failed {failure['video']}: {failure['error']}")
    print(f"-> {target}")
    return 0
