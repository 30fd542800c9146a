"""`trajpred predict|track SOURCE --ray [ADDRESS]`: one Ray task per video, on this machine or a
Ray cluster, with an index of what is done (OUT/runs.csv) so a run can be resumed.

- SOURCE: a video file, a folder or glob of videos, or a text file listing videos (one a line;
  blank lines and lines starting with # are skipped; relative paths are read from the list
  file's folder). Outputs go where a local run of a folder puts them: OUT/<video stem>/ for
  predict, OUT/<video stem>.csv for track, with the same bytes.
- ADDRESS: none starts a local Ray instance for the run; `auto` joins the cluster this machine
  belongs to; `ray://HOST:10001` or `HOST:6379` joins that one. Only paths and results cross
  the network: every node reads the videos and writes the outputs at the same paths (a shared
  file system), and has trajpred installed.
- Each task asks for `ray.num_cpus` CPUs (torch threads: one fewer) and `ray.num_gpus` GPUs
  (fractional: 0.25 runs four videos per GPU); a task whose worker dies (killed, out of memory,
  a node lost) runs again from the start of its video, up to `ray.max_retries` times, into a
  fresh staging folder (trajpred/ray_tasks.py, what runs on the workers).
- A stream URL (rtsp://, http://, tcp://, ...) in SOURCE or the list is a long-lived actor: it
  runs until the stream ends; Ctrl-C (or SIGTERM) stops the streams after their current frame,
  keeps their outputs (status `stopped`) and drops the videos not finished.
- OUT/runs.csv (video,status,frames,fps,seconds,error,output) is rewritten atomically as each
  video ends. Running the same command again skips the videos it lists as done whose outputs
  are there (`--redo` runs them again), so a driver that was killed resumes where it stopped;
  a video that fails for its own reasons (a corrupt file, a full disk) is recorded with its
  one-line error and the others go on; exit code 2 if any failed.
- `trajpred summary OUT` adds up runs.csv and the per-video CSVs.
- `trajpred adapt SOURCE --ray`: the videos are tracked as Ray tasks, the fit runs in the
  driver (`track_videos_on_ray`), as a local adapt does; no runs.csv.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import between, check_fields, require, whole
from .errors import InputError, TrajpredError, first_line
from .ray_tasks import (
    KILL_HOOK,
    STAGING_PREFIX,
    Progress,
    RunSpec,
    StreamRunner,
    output_of,
    run_video,
    task_threads,
    video_key,
)
from .video import STREAM_SCHEMES, VIDEO_SUFFIXES, VideoSource, expand_source

RUNS_NAME = "runs.csv"
RUNS_COLUMNS = ("video", "status", "frames", "fps", "seconds", "error", "output")
LIST_SUFFIXES = (".txt", ".list", ".lst")
INSTALL_HINT = '--ray needs Ray, which is not installed: pip install -e ".[ray]"'
STREAM_STOP_S = 30.0  # how long Ctrl-C waits for the streams to close their outputs


@dataclass
class RayConfig:
    """Resources and retries of each video's Ray task (`--set ray.num_gpus=0.25`)."""

    num_cpus: float = 1.0  # CPUs per task; its torch threads: one fewer, 1 to 8
    num_gpus: float = 0.0  # GPUs per task; fractional shares a GPU (0.25: four tasks on one)
    max_retries: int = 2  # runs again after its worker died, at most this many times

    def __post_init__(self) -> None:
        check_fields(
            self,
            num_cpus=between(0, 1024),
            num_gpus=between(0, 64),
            max_retries=whole(0, 100),
        )
        require(
            self.num_cpus > 0 or self.num_gpus > 0,
            "num_cpus",
            "must be above 0 when ray.num_gpus is 0: a task that asks for nothing lets Ray start "
            "every video at once",
        )


@dataclass
class RaySettings:
    """The `ray.` keys of --set, kept apart from PipelineConfig so a video's config.yaml is the
    same wherever it ran."""

    ray: RayConfig = field(default_factory=RayConfig)


def add_ray_arguments(p: argparse.ArgumentParser, redo: bool = True) -> None:
    """--ray [ADDRESS] and (redo) --redo: for predict, track and (without --redo) adapt."""
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=argparse.SUPPRESS,  # absent: no Ray (read with getattr(args, "ray", None))
        metavar="ADDRESS",
        help=("one Ray task per video" if redo else "track each video as a Ray task, then fit here")
        + " (needs the ray extra): alone, a local Ray instance; `auto` or ray://HOST:10001 "
        "joins a cluster. "
        + (
            "OUT is a folder (outputs as for a folder of videos) with an index, OUT/runs.csv; a "
            "rerun skips the videos done. "
            if redo
            else ""
        )
        + "--set ray.num_cpus=, ray.num_gpus=, ray.max_retries= (default: 1, 0, 2). Put it "
        "after SOURCE, or write --ray=auto (default: off)",
    )
    if not redo:
        return
    p.add_argument(
        "--redo",
        action="store_true",
        help="with --ray: run again the videos OUT/runs.csv lists as done",
    )


def split_ray_settings(overrides: list[str]) -> tuple[RayConfig, list[str]]:
    """--set pairs -> (RayConfig from the `ray.` ones, the others for PipelineConfig)."""
    from .config import load_config

    mine = [p for p in overrides if p.split("=", 1)[0].strip().split(".")[0].strip() == "ray"]
    rest = [p for p in overrides if p not in mine]
    return load_config(RaySettings, None, mine).ray, rest


# ---------------------------------------------------------------- sources


def ray_sources(source: str, skip: Callable[[Path], bool] | None) -> list[VideoSource]:
    """SOURCE -> videos: what `expand_source` accepts, or a text file listing videos and
    stream URLs; not a webcam (it belongs to one machine: run predict there)."""
    path = Path(str(source).strip()).expanduser()
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        videos = _listed_videos(path)
    else:
        videos, _ = expand_source(source, skip=skip)
    if any(v.is_stream and v.uri.isdigit() for v in videos):
        raise InputError(source, "--ray runs video files and stream URLs, not a webcam")
    return videos


def stream_name(url: str) -> str:
    """A stream's output folder: its URL without the scheme, in letters, digits and . _ -."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[-1]).strip("._-")
    return name[:80] or "stream"


def _listed_videos(listing: Path) -> list[VideoSource]:
    try:
        text = listing.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(listing, f"cannot read the list of videos ({first_line(e, 80)})") from None
    videos: list[VideoSource] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{listing}:{number}"
        if line.lower().startswith(STREAM_SCHEMES):
            video = VideoSource(line, stream_name(line), is_stream=True)
        else:
            path = Path(line).expanduser()
            path = path if path.is_absolute() else listing.parent / path
            if not path.is_file():
                raise InputError(where, f"{line}: video not found")
            if path.suffix.lower() not in VIDEO_SUFFIXES:
                raise InputError(where, f"{line}: not a video file ({', '.join(VIDEO_SUFFIXES)})")
            video = VideoSource(str(path), path.stem)
        if video.name in seen:
            raise InputError(
                where,
                f"{line}: named {video.name} like the video of line {seen[video.name]}; their "
                "outputs would share OUT/" + video.name,
            )
        seen[video.name] = number
        videos.append(video)
    if not videos:
        raise InputError(listing, "lists no videos (one path a line)")
    return videos


# ---------------------------------------------------------------- runs.csv


def read_runs(out: Path) -> dict[str, dict[str, str]]:
    """OUT/runs.csv -> {video: row}; absent: {}; unreadable or malformed: one InputError."""
    path = out / RUNS_NAME
    if not path.exists():
        return {}
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != RUNS_COLUMNS:
                raise InputError(path, f"not a runs index (header {','.join(RUNS_COLUMNS)})")
            rows = {}
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    n = len(RUNS_COLUMNS)
                    raise InputError(path, f"line {reader.line_num}: not {n} fields")
                rows[row["video"]] = row
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(path, f"cannot read ({first_line(e, 80)})") from None
    return rows


def write_runs(out: Path, rows: dict[str, dict[str, str]]) -> None:
    """OUT/runs.csv, all rows, atomically (temporary file + rename)."""
    from .atomic import write_text

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, RUNS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows.values())
    write_text(out / RUNS_NAME, buffer.getvalue())


def _row(key: str, output: str, result: dict[str, Any]) -> dict[str, str]:
    frames = result.get("frames")
    seconds = result.get("seconds")
    return {
        "video": key,
        "status": result["status"],
        "frames": "" if frames is None else str(frames),
        "fps": "" if not frames or not seconds else f"{frames / seconds:.2f}",
        "seconds": "" if seconds is None else f"{seconds:.2f}",
        "error": result.get("error") or "",
        "output": output,
    }


# ---------------------------------------------------------------- the driver


def import_ray():
    try:
        import ray
    except ImportError:
        raise TrajpredError(INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def connected(ray, address: str, ray_config: RayConfig) -> Iterator[None]:
    """Ray up for the block: already initialised (a test, a notebook) is used as it is; else a
    local instance (address 'local') or the cluster at `address`, shut down afterwards. A local
    instance that cannot hold one task of `ray_config` is refused: its tasks would wait forever
    (a cluster may yet grow, by its autoscaler, and is left to Ray)."""
    if ray.is_initialized():
        yield
        return
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    _check_reachable(address)
    try:
        if address == "local":
            ray.init(address="local", include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise TrajpredError(
            f"--ray {address}: cannot join the cluster ({first_line(e, 160)})"
        ) from None
    try:
        if address == "local":
            _check_fits(ray.cluster_resources(), ray_config)
        yield
    finally:
        ray.shutdown()


def _check_fits(resources: dict[str, float], ray_config: RayConfig) -> None:
    """One task's CPUs and GPUs are there (`resources`: Ray's, of this machine)."""
    for key, name, wanted in (
        ("CPU", "num_cpus", ray_config.num_cpus),
        ("GPU", "num_gpus", ray_config.num_gpus),
    ):
        have = resources.get(key, 0.0)
        if wanted > have:
            raise TrajpredError(
                f"--set ray.{name}={wanted:g}: this machine has {have:g} {key}s for Ray, so each "
                "video's task would wait for ever"
            )


def _check_reachable(address: str) -> None:
    """HOST:PORT and ray://HOST:PORT answer, checked in seconds: Ray itself waits minutes for
    an address where nothing listens."""
    import socket

    if address in ("local", "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise TrajpredError(
            f"--ray {address}: not an address; give auto, ray://HOST:10001 or HOST:6379 "
            "(and write SOURCE before --ray)"
        )
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise TrajpredError(f"--ray {address}: cannot reach the cluster ({why})") from None


def _check_models(config, command: str) -> None:
    """Model files the tasks will load, checked once here rather than failed once per video."""
    from .paths import resolve_data_path

    weights = config.detector.weights
    if ("/" in weights or os.sep in weights) and not resolve_data_path(weights).exists():
        raise InputError(weights, "detector weights not found")
    if command == "predict" and not resolve_data_path(config.forecast.checkpoint).is_file():
        raise InputError(config.forecast.checkpoint, "forecaster checkpoint not found")
    zones = config.events.zones if command == "predict" else None
    for extra in (config.forecast.homography, zones):
        if extra is not None and not Path(extra).is_file():
            raise InputError(extra, "not found")


def _is_done(out: Path, command: str, row: dict[str, str] | None) -> bool:
    if row is None or row["status"] != "done":
        return False
    target = out / row["output"]
    return (target / "tracks.csv").is_file() if command == "predict" else target.is_file()


def run_ray(
    args: argparse.Namespace,
    command: str,
    load_pipeline_config: Callable,
    pipeline_inputs: Callable,
    predict_video: Callable | None = None,
) -> int:
    """`trajpred predict|track SOURCE --ray [ADDRESS]` (see the module's docstring); the
    command gives its config loader, its list of inputs and (predict) its `predict_video`."""
    from .outputs import OutputLock, refuse_overwriting_inputs, writable_folder
    from .predict_files import OUTPUT_NAMES, is_predict_output

    ray = import_ray()
    if getattr(args, "workers", 1) != 1:
        raise TrajpredError(
            "--workers runs a pool of processes on this machine; with --ray each video is a Ray "
            "task: --set ray.num_cpus= sets each one's share of the CPUs"
        )
    ray_config, args.overrides = split_ray_settings(args.overrides)
    config = load_pipeline_config(args)
    videos = ray_sources(args.source, skip=is_predict_output)
    out = Path(args.out)
    names = [output_of(command, v) for v in videos]
    outputs = [out, out / RUNS_NAME]
    for name in names:
        outputs += [out / name / n for n in OUTPUT_NAMES] if command == "predict" else [out / name]
    refuse_overwriting_inputs(outputs, pipeline_inputs(config, args, videos))
    _check_models(config, command)
    with OutputLock(writable_folder(out)):
        _clear_staging(out)
        rows = read_runs(out)
        todo = [
            v for v in videos if args.redo or not _is_done(out, command, rows.get(video_key(v)))
        ]
        if len(todo) < len(videos):
            print(
                f"skipped {len(videos) - len(todo)} of {len(videos)} videos, done in an earlier "
                f"run ({out / RUNS_NAME}; --redo runs them again)",
                flush=True,
            )
        if not todo:
            return 0
        try:
            with connected(ray, args.ray, ray_config):
                results = _run_tasks(
                    ray, ray_config, config, command, todo, out, rows, args.no_progress,
                    predict_video,
                )  # fmt: skip
        finally:  # Ctrl-C too: what killed or cancelled attempts left
            _clear_staging(out)
    failed = [(key, r["error"]) for key, r in results.items() if r["status"] == "failed"]
    done = len(todo) - len(failed)
    print(f"{done} of {len(todo)} videos done, {len(failed)} failed -> {out / RUNS_NAME}")
    for key, error in failed:
        print(f"trajpred {command}: failed {key}: {error}", file=sys.stderr)
    return 2 if failed else 0


def _clear_staging(out: Path) -> None:
    """Staging folders an attempt left when its worker was killed."""
    for path in out.glob(f"{STAGING_PREFIX}*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


def _run_tasks(
    ray,
    ray_config: RayConfig,
    config,
    command,
    todo,
    out,
    rows,
    no_progress: bool,
    predict_video: Callable | None = None,
):
    """Submit one task per video file and one actor per stream; record each in `rows` and
    runs.csv (unless rows is None) as it ends -> {video key: result}. Ctrl-C: the streams are
    stopped and recorded (their outputs kept), the unfinished videos dropped."""
    from tqdm import tqdm

    progress = None if no_progress else ray.remote(num_cpus=0)(Progress).remote()
    pending, streams = _submit(ray, ray_config, command, config, todo, out, progress, predict_video)
    results: dict[str, dict[str, Any]] = {}
    index = _Index(out, rows)
    bar = tqdm(total=0, unit="frame", disable=no_progress, dynamic_ncols=True)
    counted = _FrameCount(todo if progress is not None else [])

    def collect(timeout: float) -> None:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
        for ref in ready:
            video = pending.pop(ref)
            streams.pop(ref, None)
            result = results[video_key(video)] = _result(ray, ref, ray_config)
            index.record(command, video, result)
            if progress is not None:
                progress.end.remote(video_key(video))
            if result["status"] != "failed":
                bar.write(_line(video, result, out / output_of(command, video)))
        failed = sum(r["status"] == "failed" for r in results.values())
        _show(ray, progress, bar, counted.total, len(results), len(todo), failed)

    try:
        while pending:
            collect(0.5)
    except KeyboardInterrupt:
        for ref in [r for r in pending if r not in streams]:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
            del pending[ref]
        for actor in streams.values():
            actor.stop.remote()
        deadline = time.monotonic() + STREAM_STOP_S
        while pending and time.monotonic() < deadline:  # the streams close their outputs
            collect(0.5)
        raise
    finally:
        bar.close()
    index.report()
    return results


def _submit(ray, ray_config: RayConfig, command, config, todo, out, progress, predict_video):
    """One task per video file, one actor per stream -> ({ref: video}, {stream's ref: actor})."""
    resources = {"num_cpus": ray_config.num_cpus, "num_gpus": ray_config.num_gpus}
    task = ray.remote(run_video).options(
        **resources, max_retries=ray_config.max_retries, retry_exceptions=False
    )
    runner = ray.remote(StreamRunner).options(
        **resources,
        max_restarts=ray_config.max_retries,
        max_task_retries=ray_config.max_retries,
        max_concurrency=2,  # stop() while run() reads
    )
    spec = RunSpec(
        command,
        config,
        str(out.resolve()),
        task_threads(ray_config.num_cpus),
        progress,
        os.environ.get(KILL_HOOK),
        predict_video,
    )
    pending: dict[Any, VideoSource] = {}
    streams: dict[Any, Any] = {}
    for video in todo:
        if video.is_stream:
            actor = runner.remote()
            ref = actor.run.remote(spec, video)
            streams[ref] = actor
        else:
            ref = task.remote(spec, video)
        pending[ref] = video
    return pending, streams


class _Index:
    """OUT/runs.csv kept as videos end. A write that fails (a full disk) is retried at the next
    video's end; the earlier file stays whole meanwhile (atomic writes), and `report()` raises
    the last failure if it never went through, once every video has ended."""

    def __init__(self, out: Path, rows: dict[str, dict[str, str]] | None):
        self.out, self.rows = out, rows
        self.error: TrajpredError | None = None

    def record(self, command: str, video: VideoSource, result: dict[str, Any]) -> None:
        if self.rows is None:
            return
        key = video_key(video)
        self.rows[key] = _row(key, output_of(command, video), result)
        try:
            write_runs(self.out, self.rows)
            self.error = None
        except TrajpredError as e:
            self.error = e

    def report(self) -> None:
        if self.error is not None:
            raise self.error


class _FrameCount:
    """Frames the containers say the videos hold (0 for a stream or a file this machine cannot
    open), counted on a thread while the tasks start: opening thousands of files one after
    another would hold the first task back for minutes. `total` is 0 until it is done."""

    def __init__(self, videos: list[VideoSource]):
        import threading

        self.total = 0
        threading.Thread(target=self._count, args=(videos,), daemon=True).start()

    def _count(self, videos: list[VideoSource]) -> None:
        import cv2

        total = 0
        for video in videos:
            if video.is_stream:
                continue
            cap = cv2.VideoCapture(video.uri)
            total += max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))) if cap.isOpened() else 0
            cap.release()
        self.total = total


def _show(ray, progress, bar, counted: int, finished: int, videos: int, failed: int) -> None:
    """The bar: frames done of the larger of the containers' count and the tasks' own."""
    if progress is None:
        return
    with contextlib.suppress(Exception):
        total, done = ray.get(progress.snapshot.remote(), timeout=5)
        bar.total, bar.n = max(total, counted, bar.total), done
    bar.set_postfix_str(f"videos {finished}/{videos}, failed {failed}", refresh=False)
    bar.refresh()


def _result(ray, ref, ray_config: RayConfig) -> dict[str, Any]:
    """A task's result; a worker that died more often than allowed, or a bug, as a failure."""
    from .cli import one_line

    try:
        return ray.get(ref)
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError):
        tries = ray_config.max_retries + 1
        error = f"its worker died {tries} time{'s' if tries > 1 else ''} (killed, out of memory?)"
    except ray.exceptions.RayTaskError as e:
        error = one_line(f"{type(e.cause).__name__}: {first_line(e.cause)}")
    except ray.exceptions.RayError as e:
        error = one_line(f"{type(e).__name__}: {first_line(e)}")
    return {"status": "failed", "error": error}


def _line(video: VideoSource, result: dict[str, Any], target: Path) -> str:
    fps = result["frames"] / max(result["seconds"], 1e-9)
    frames, tracks = result["frames"], result["tracks"]
    state = "stopped after " if result["status"] == "stopped" else ""
    return f"{video.name}: {state}{frames} frames, {tracks} tracks, {fps:.1f} fps -> {target}"


# ---------------------------------------------------------------- adapt


def adapt_ray_settings(args: argparse.Namespace) -> RayConfig | None:
    """For `adapt SOURCE --ray`: the RayConfig (its `ray.` keys taken out of args.overrides,
    before the pipeline's config reads them), or None without --ray."""
    if getattr(args, "ray", None) is None:
        return None
    import_ray()
    if args.tracks:
        raise TrajpredError("--ray tracks SOURCE's videos; with --tracks there is none to track")
    ray_config, args.overrides = split_ray_settings(args.overrides)
    return ray_config


def track_videos_on_ray(args, config, ray_config: RayConfig, work: Path, progress: bool):
    """`adapt`'s tracking of SOURCE, one Ray task per video -> (tracks, fps, video info), the
    same as adapt's local tracking: videos in order, frames and ids offset so they follow one
    another without sharing a track. The per-video CSVs go to work/ray_tracks/ (the run's
    staging folder); any failed video fails the run, in one line."""
    import torch

    from .formats import read_tracks
    from .tracks import Tracks

    if not args.source:
        raise TrajpredError("give SOURCE (a video, folder or glob) or --tracks")
    videos = ray_sources(args.source, skip=None)
    _check_models(config, "track")
    folder = work / "ray_tracks"
    folder.mkdir()
    ray = import_ray()
    with connected(ray, args.ray, ray_config):
        results = _run_tasks(ray, ray_config, config, "track", videos, folder, None, not progress)
    failed = [(key, r["error"]) for key, r in results.items() if r["status"] == "failed"]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise TrajpredError(f"{failed[0][0]}: {failed[0][1]}{more}")
    parts, frame_offset, id_offset = [], 0, 0
    info: dict[str, Any] = {}
    for video in videos:
        result = results[video_key(video)]
        fps = result["video"]["fps"]
        if info and abs(fps - info["fps"]) > 1e-3 * info["fps"]:
            raise TrajpredError(f"{video.uri}: {fps:g} fps, the first video has {info['fps']:g}")
        info = {**result["video"], "frames": frame_offset + result["frames"]}
        t = read_tracks(folder / output_of("track", video), "csv")
        t.frame_id += frame_offset
        t.track_id += id_offset
        parts.append(t)
        frame_offset += result["frames"]
        id_offset = int(t.track_id.max()) + 1 if len(t) else id_offset
    shutil.rmtree(folder, ignore_errors=True)
    # The fitting that follows runs here, on the torch threads a local adapt gets once the
    # detector has loaded (ultralytics: the CPUs less one, at most 8), so it fits the same.
    torch.set_num_threads(task_threads(os.cpu_count() or 1))
    tracks = Tracks.concat(parts) if parts else Tracks.empty("px", True)
    return tracks, float(info["fps"]), info
