"""Fit the forecaster to one camera, unsupervised: the tracker's own tracks are the labels.

Tracks SOURCE (a video, or a folder or glob of videos of the same camera, taken in order), or
reads --tracks (a tracks.csv of an earlier `track`/`predict`/`adapt` run of this camera; give
SOURCE too, or --fps), holds out the last --val-fraction of the footage in time, fine-tunes the
starting forecaster (--checkpoint; default the shipped video model) on the rest, and writes into
OUT: adapted.pt (a checkpoint for `trajpred predict --checkpoint`), tracks.csv, report.json,
and train/ (training log, config and the split it trained on).
These replace an earlier run's together, train/ as a whole, only when
the run is complete: a run that fails or is stopped leaves OUT as it was. No input may lie in
train/ (copy an earlier run's best.pt elsewhere to start from it).

Candidates: the fine-tuned weights (--average: also the mean weights of several fine-tunes,
each of which left out part of the footage), the starting model with a scene prior (the
mean future of earlier tracks that stood and moved alike), and either fine-tune with the
prior. The printed table gives their ADE/FDE cross-validated in time (each quarter of the
footage forecast from what was learnt without it) beside constant velocity and the starting
model on the same windows. The best ships only if it beats the starting model on ADE and FDE
and, resampling tracks (bootstrap), is at most 1 % worse with 95 % confidence; otherwise
adapted.pt holds the starting model unchanged and the last line says so. History length:
--obs-len, or by default the longest of 8, 6, 4, 3, 2 samples that gives enough windows (the
table says which). With --homography the forecaster learns and is scored on the ground plane
(metres).

Examples:
  trajpred adapt clip.mp4 --out runs/cam1 --weights data/detector/synth_yolo.pt
  trajpred adapt traffic.avi --out runs/road --weights yolov8n.pt --classes car bus truck
  trajpred adapt clip.mp4 --tracks runs/clip/tracks.csv --out runs/cam1 --epochs 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..ray_runs import add_ray_arguments
from .predict import add_detector_arguments, load_pipeline_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..adapt import AdaptConfig

    add_detector_arguments(p)
    for action in p._actions:  # SOURCE may be left out when --tracks and --fps say it all
        if action.dest == "source":
            action.nargs, action.default = "?", None
    d = AdaptConfig()
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_ray_arguments(p, redo=False)  # tracks SOURCE's videos as Ray tasks: trajpred/ray_runs.py
    p.add_argument(
        "--tracks", metavar="CSV", help="tracks of this camera from an earlier run: no tracking"
    )
    p.add_argument("--checkpoint", default=d.checkpoint, help="starting forecaster")
    p.add_argument(
        "--homography",
        metavar="H.txt",
        help="3x3 image -> ground plane matrix: adapt and score in metres",
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help="most epochs (stops early)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=d.val_fraction,
        help="last part of the footage in time held out for validation",
    )
    p.add_argument(
        "--obs-len",
        type=int,
        default=d.obs_len,
        help="longest history in a window (samples, 2-16); 0: the longest of 8, 6, 4, 3, 2 "
        "that gives enough windows",
    )
    p.add_argument(
        "--no-finetune",
        action="store_true",
        help="keep the starting model's weights (only the scene prior adapts)",
    )
    p.add_argument(
        "--no-prior",
        action="store_true",
        help="no scene prior (the mean future of this camera's earlier tracks that stood and "
        "moved alike)",
    )
    p.add_argument(
        "--no-scene-input",
        action="store_true",
        help="plain fine-tuning: the model is not told where in the view a track is",
    )
    p.add_argument(
        "--average",
        action="store_true",
        help="one more candidate: the mean weights of 6 fine-tunes that each left out part of "
        "the footage (twice the training time; see README)",
    )
    p.add_argument(
        "--no-class-input", action="store_true", help="the model is not told the track's class"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")


def _tracks_from_csv(args, config, out: Path):
    """(pixel tracks, fps, video info dict) from --tracks, checked against SOURCE / --fps."""
    from ..errors import InputError, TrajpredError
    from ..formats import read_tracks
    from ..video import VideoReader, expand_source

    tracks = read_tracks(args.tracks)
    if tracks.units != "px" or tracks.box_xywh is None:
        raise InputError(args.tracks, "needs pixel tracks with boxes (a `trajpred track` CSV)")
    meta = _tracks_metadata(Path(args.tracks))
    info: dict[str, Any] = {}  # what report.json records of the video
    if args.source:
        videos, several = expand_source(args.source)
        if several:
            raise TrajpredError("with --tracks, SOURCE must be the one video the tracks come from")
        with VideoReader(videos[0], config.fps) as reader:
            v = reader.info
        info = {"fps": v.fps, "width": v.width, "height": v.height, "frames": v.n_frames}
    fps = config.fps or info.get("fps") or meta.get("fps")
    if not fps:
        raise TrajpredError(f"{args.tracks}: frame rate unknown; give --fps or the SOURCE video")
    if meta.get("fps") and abs(meta["fps"] - fps) > 1e-3 * fps:
        raise InputError(
            args.tracks,
            f"tracked at {meta['fps']:g} fps, but {'--fps' if config.fps else 'the video'} "
            f"says {fps:g} fps",
        )
    size = (info.get("width"), info.get("height"))
    if meta.get("width") and info and (meta["width"], meta["height"]) != size:
        raise InputError(
            args.tracks,
            f"tracked at {meta['width']}x{meta['height']} px, the video is {size[0]}x{size[1]}",
        )
    if info:
        # Tracker boxes may overhang the border a little; their bottom centres do not go far.
        right, bottom = (float(v) for v in tracks.xy.max(axis=0))
        if right > 1.1 * info["width"] or bottom > 1.1 * info["height"]:
            raise InputError(
                args.tracks,
                f"tracks reach {right:.0f}x{bottom:.0f} px, beyond the video's "
                f"{size[0]}x{size[1]}: tracks of another resolution or camera",
            )
        last = int(tracks.frame_id.max()) if len(tracks) else 0
        if info.get("frames") and last > info["frames"] * 1.01 + 2:
            raise InputError(
                args.tracks,
                f"frames run to {last}, the video has {info['frames']} at {info['fps']:g} fps: "
                f"tracks of another frame rate or video",
            )
    return tracks, float(fps), {**meta, **info, "fps": float(fps)}


def _tracks_metadata(path: Path) -> dict:
    """fps / width / height an earlier `adapt` recorded beside its tracks.csv (report.json)."""
    report = path.parent / "report.json"
    try:
        video = json.loads(report.read_text()).get("video", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return video if isinstance(video, dict) else {}


def _track_videos(args, config, work: Path, progress: bool):
    """Track every video of SOURCE in order -> (tracks, fps, video info); ids and frames are
    offset so the videos follow one another in time without sharing a track."""
    from ..errors import TrajpredError
    from ..pipeline import Pipeline
    from ..tracks import Tracks
    from ..video import VideoReader, expand_source
    from ..video_tracks import tracks_of_video

    if not args.source:
        raise TrajpredError("give SOURCE (a video, folder or glob) or --tracks")
    videos, _ = expand_source(args.source)
    VideoReader(videos[0], config.fps).close()  # a bad video fails before the model loads
    pipeline = Pipeline(config, forecast=False)
    parts, frame_offset, id_offset = [], 0, 0
    info: dict[str, Any] = {}  # what report.json records of the video
    for k, video in enumerate(videos):
        csv = work / f"tracks_{k}.csv"
        t, v, frames = tracks_of_video(pipeline, video, csv, progress)
        csv.unlink()
        if info and abs(v.fps - info["fps"]) > 1e-3 * info["fps"]:
            raise TrajpredError(f"{video.uri}: {v.fps:g} fps, the first video has {info['fps']:g}")
        info = {"fps": v.fps, "width": v.width, "height": v.height, "frames": frame_offset + frames}
        t.frame_id += frame_offset
        t.track_id += id_offset
        parts.append(t)
        frame_offset += frames
        id_offset = int(t.track_id.max()) + 1 if len(t) else id_offset
    tracks = Tracks.concat(parts) if parts else Tracks.empty("px", True)
    return tracks, float(info["fps"]), info


def run(args: argparse.Namespace) -> int:
    from ..adapt import AdaptConfig, adapt, live_ground_tracks, load_start
    from ..atomic import StagedFolder, Staging
    from ..outputs import input_files, output_guard
    from ..paths import resolve_data_path
    from ..pipeline import read_homography
    from ..ray_runs import adapt_ray_settings, track_videos_on_ray
    from .predict import pipeline_inputs

    cfg = AdaptConfig(
        checkpoint=args.checkpoint,
        epochs=args.epochs,
        val_fraction=args.val_fraction,
        obs_len=args.obs_len,
        scene_input=not args.no_scene_input,
        prior=not args.no_prior,
        finetune=not args.no_finetune,
        class_input=not args.no_class_input,
        average=args.average,
        seed=args.seed,
    )
    ray_config = adapt_ray_settings(args)  # None without --ray
    config = load_pipeline_config(args)
    out = Path(args.out)
    tracks_csv = out / "tracks.csv"
    keep_tracks = args.tracks and tracks_csv.exists() and tracks_csv.samefile(args.tracks)
    writes = [out / "adapted.pt", out / "report.json", *([] if keep_tracks else [tracks_csv])]
    # train/ is replaced as a whole: no input may lie anywhere in it (an earlier run's best.pt
    # or train.csv given as --checkpoint or --tracks), nor in its partial or outgoing copy.
    train = StagedFolder(out / "train")
    reads = [
        *input_files(args.source),
        args.tracks,
        resolve_data_path(cfg.checkpoint),
        *pipeline_inputs(config, args, []),  # detector weights, homography, config, tracker
    ]
    with output_guard(out, writes=writes, reads=reads, replaces=train.paths):
        homography = read_homography(args.homography) if args.homography else None
        _, start = load_start(cfg.checkpoint)  # a bad checkpoint fails before any tracking
        progress = not args.no_progress
        if args.tracks:  # bad tracks are refused before anything is made in OUT
            tracks, fps, video = _tracks_from_csv(args, config, out)
        # Everything is written under hidden partial names and published together at the end:
        # a run that fails or is stopped leaves an earlier run's files exactly as they were.
        staging = Staging()
        try:
            work = train.create()
            if ray_config is not None:
                tracks, fps, video = track_videos_on_ray(args, config, ray_config, work, progress)
            elif not args.tracks:
                tracks, fps, video = _track_videos(args, config, work, progress)
            learn_on = (
                tracks
                if homography is None
                else live_ground_tracks(tracks, homography, fps, start.cfg.dt_s, config.forecast)
            )
            report, payload = adapt(learn_on, fps, work, cfg, progress)
            payload = _name_published_folder(work, train.path, payload)
            _stage_results(staging, out, payload, None if keep_tracks else tracks, report, video)
            _publish(train, staging)
        except BaseException:
            staging.discard()
            train.discard()
            raise
    print(report.table())
    print(f"-> {out / 'adapted.pt'}, {tracks_csv}, {out / 'report.json'}")
    return 0


def _stage_results(staging, out: Path, payload: dict, tracks, report, video: dict) -> None:
    """adapted.pt (checked: it loads back as a forecaster), tracks.csv (unless `tracks` is
    None: --tracks was OUT/tracks.csv itself) and report.json, under their partial names."""
    from ..atomic import write_json
    from ..checkpoint import load_forecaster, save_checkpoint
    from ..errors import OutputError, TrajpredError
    from ..formats import write_csv

    with staging.file(out / "adapted.pt") as path:
        save_checkpoint(path, payload)
        try:
            load_forecaster(path)
        except TrajpredError as e:
            raise OutputError(out / "adapted.pt", f"does not load back ({e})") from None
    if tracks is not None:
        with staging.file(out / "tracks.csv") as path:
            write_csv(path, tracks)
    with staging.file(out / "report.json") as path:
        write_json(path, {**report.to_dict(), "video": video})


def _publish(train, staging) -> None:
    """train/ and the staged files into place, with Ctrl-C and SIGTERM held until both are:
    never a new train/ beside an earlier adapted.pt."""
    from ..atomic import HoldInterrupt

    with HoldInterrupt():
        train.publish()
        staging.publish()


def _name_published_folder(work: Path, final: Path, payload: dict) -> dict:
    """The run configs that name the partial folder `work` (the training files adapt wrote,
    init_from, out_dir) name `final`, where they will be: config.yaml files in `work`, and the
    returned copy of `payload` (adapted.pt's, which `evaluate` reads to tell trained files)."""
    from ..atomic import write_text

    old, new = str(work), str(final)
    for config in work.rglob("config.yaml"):
        text = config.read_text()
        if old in text:
            write_text(config, text.replace(old, new))

    def moved(obj):
        if isinstance(obj, dict):
            return {k: moved(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [moved(v) for v in obj]
        if isinstance(obj, str) and obj.startswith(old):
            return new + obj[len(old) :]
        return obj

    return {k: v if k == "model" else moved(v) for k, v in payload.items()}
