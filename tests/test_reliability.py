"""Reliability guarantees that need no detector run (in-process, fast): every setting has a range,
bad YAML and --set values are one bounded line, outputs never overwrite inputs, output folders
are locked, a failed run leaves earlier files intact, and error messages name the real problem.
tests/test_reliability_cli.py holds the ones that run the whole CLI (disk full, SIGTERM, noise).
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import typing
from pathlib import Path

import numpy as np
import pytest
from conftest import MAX_LINE, assert_one_line

from trajpred.adapt import AdaptConfig
from trajpred.checks import ConfigError, SettingError
from trajpred.cli import build_parser, main
from trajpred.config import load_config, to_dict
from trajpred.data import DataConfig
from trajpred.detect import MAX_IMGSZ, DetectorConfig
from trajpred.errors import InputError, OutputError, TrajpredError
from trajpred.model import ForecasterConfig
from trajpred.outputs import LOCK_NAME, OutputLock, refuse_overwriting_inputs
from trajpred.pipeline import ForecastConfig, PipelineConfig, read_homography
from trajpred.render import RenderConfig
from trajpred.synth.world import CameraConfig, SynthConfig
from trajpred.train import RunConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    AdaptConfig,
    DetectorConfig,
    ForecastConfig,
    PipelineConfig,
    RenderConfig,
    ForecasterConfig,
    DataConfig,
    TrainConfig,
    RunConfig,
    CameraConfig,
    SynthConfig,
]


# ---------------------------------------------------------------- every setting has a range


def _numeric_fields(cls):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if typing.get_origin(tp) in (list, tuple):
            continue
        kinds = set(typing.get_args(tp)) or {tp}
        if float in kinds or int in kinds:
            yield f.name, (float if float in kinds else int)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_numeric_setting_has_a_range(cls):
    """Each number in each config dataclass has a range, checked whenever one is built: no
    float takes NaN or infinity, no count, size or seed is negative."""
    fields = list(_numeric_fields(cls))
    if cls not in (PipelineConfig, RunConfig):  # those two hold only sections (and fps)
        assert fields, cls
    for name, kind in fields:
        bad = [math.nan, math.inf, -math.inf] if kind is float else [-1]
        for value in bad:
            with pytest.raises(SettingError) as err:
                cls(**{name: value})
            assert f"'{name}'" in str(err.value) and len(str(err.value)) < MAX_LINE


def test_defaults_and_shipped_configs_are_valid():
    for cls in CONFIGS:
        cls()
    load_config(RunConfig, ROOT / "configs" / "eth_ucy.yaml")
    load_config(RunConfig, ROOT / "configs" / "video.yaml")


def test_predict_yaml_mirrors_the_defaults():
    """configs/predict.yaml lists PipelineConfig's defaults (as synth.yaml does SynthConfig's)."""
    from_file = load_config(PipelineConfig, ROOT / "configs" / "predict.yaml")
    assert to_dict(from_file) == to_dict(PipelineConfig())


def test_a_checkpoint_with_an_impossible_setting_is_refused(tmp_path):
    from trajpred.checkpoint import load_forecaster, save_checkpoint

    good = to_dict(ForecasterConfig(hidden_size=8, embed_size=4, num_modes=2))
    save_checkpoint(tmp_path / "c.pt", {"model_config": {**good, "dt_s": 0.0}, "model": {}})
    with pytest.raises(InputError, match="'dt_s' must be > 0") as err:
        load_forecaster(tmp_path / "c.pt")
    assert "c.pt" in str(err.value) and "\n" not in str(err.value)


def test_cross_field_settings_are_checked():
    with pytest.raises(ConfigError, match="'train.min_obs_len' must be <= model.obs_len"):
        load_config(RunConfig, None, ["train.min_obs_len=9"])
    with pytest.raises(ConfigError, match="'data.fps' must be 0 .* >= 1 / model.dt_s"):
        load_config(RunConfig, None, ["data.fps=1"])  # 0.4 frames per 0.4 s step
    with pytest.raises(ConfigError, match="'camera.tilt_deg'"):
        load_config(SynthConfig, None, ["camera.tilt_deg=80", "camera.hfov_deg=120"])


# (command line, words the one error line must hold); each fails before any work, so the
# output folder is never created
SETTINGS = [
    (["train", "--set", "train.epochs=0"], ["--set", "'train.epochs' must be in [1, 100000]"]),
    (["train", "--set", "model.dt_s=-0.4"], ["'model.dt_s' must be > 0"]),
    (["train", "--set", "data.val_fraction=1"], ["'data.val_fraction' must be in (0, 1)"]),
    (["train", "--set", "train.seed=-1"], ["'train.seed'", "4294967295"]),
    (["train", "--set", "train.lr=.inf"], ["'train.lr'", "inf"]),
    (["train", "--set", "train.lr=1e-3", "train.batch_size=0"], ["'train.batch_size'"]),
    (["predict", "clip.mp4", "--conf", "2"], ["--conf", "'detector.conf' must be in [0, 1]"]),
    (["predict", "clip.mp4", "--imgsz", "100000"], ["--imgsz", f"[32, {MAX_IMGSZ}]"]),
    (["predict", "clip.mp4", "--fps", "nan"], ["--fps", "'fps'", "nan"]),
    (["predict", "clip.mp4", "--fps", "0"], ["--fps", "'fps' must be in (0,"]),
    (["predict", "clip.mp4", "--k", "1000000"], ["--k", "'forecast.k'"]),
    (["predict", "clip.mp4", "--set", "render.line_px=0"], ["'render.line_px'"]),
    (["predict", "clip.mp4", "--set", "forecast.drop_after_s=.nan"], ["'forecast.drop_after_s'"]),
    (["predict", "clip.mp4", "--set", "forecast.device=gpu"], ["'forecast.device' must be one of"]),
    (["predict", "clip.mp4", "--workers", "0"], ["--workers", "[1, 64]"]),
    (["track", "clip.mp4", "--set", "detector.device=gpu"], ["'detector.device' must be one of"]),
    (["synth", "--seed", "-1"], ["--seed", "'seed'"]),
    (["synth", "--duration", "1e300"], ["--duration", "'duration_s'"]),
    (["synth", "--width", "33"], ["--width", "'width' must be even"]),
    (["synth", "--set", "n_agents=-1"], ["--set", "'n_agents'"]),
    (["synth", "--images", "0", "--yolo-dataset", "y"], ["--images"]),
    (["demo", "--duration", "0"], ["--duration", "'duration_s'"]),
    (["demo", "--seed", "-5"], ["--seed"]),
    (["demo", "--imgsz", "8"], ["--imgsz", "'imgsz'"]),
]


@pytest.mark.parametrize("args, words", SETTINGS, ids=[" ".join(a) for a, _ in SETTINGS])
def test_out_of_range_settings_are_one_line_before_any_work(args, words, tmp_path, trajpred):
    out = tmp_path / "out"
    done = trajpred(*args, "--out", out)
    assert_one_line(done, *words)
    assert not out.exists()


def test_a_forecaster_on_a_missing_gpu_is_one_line(video_assets, tmp_path, trajpred):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the error of a machine without a GPU")
    done = trajpred(
        "predict", video_assets.scene.video, "--weights", video_assets.weights,
        "--out", tmp_path / "out", "--set", "forecast.device=cuda",
    )  # fmt: skip
    assert_one_line(done, "forecast.device cuda: no CUDA GPU")


# ---------------------------------------------------------------- YAML and --set


def _bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    return "\n".join(lines) + f"\ntrain:\n  epochs: *a{levels - 1}\n"


BAD_YAML = [
    ("not_yaml", "train: [1,\n", ["not valid YAML"]),
    ("alias_bomb", _bomb(), ["expands to more than"]),
    ("recursive", "train: &t\n  x: *t\n", ["refers to itself"]),
    ("bad_date", "data:\n  test_scene: 2001-02-30\n", ["not valid YAML", "day is out of range"]),
    ("not_a_mapping", "- 1\n- 2\n", ["mapping"]),
    ("wrong_type", "train:\n  epochs: [1, 2, 3]\n", ["'train.epochs' must be int"]),
    ("long_value", "train:\n  epochs: " + "x" * 5000 + "\n", ["'train.epochs' must be int"]),
    ("huge_int", "train:\n  lr: " + "9" * 400 + "\n", ["'train.lr' must be a finite number"]),
]


@pytest.mark.parametrize("name, text, words", BAD_YAML, ids=[c[0] for c in BAD_YAML])
def test_bad_config_files_are_one_bounded_line(name, text, words, tmp_path, trajpred):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    done = trajpred("train", "--config", path, "--out", tmp_path / "out")
    assert_one_line(done, path.name, *words)


def test_binary_or_folder_config_is_one_line(tmp_path, trajpred):
    (tmp_path / "bin.yaml").write_bytes(b"\x80\x81\x00\xff" * 10)
    assert_one_line(trajpred("train", "--config", tmp_path / "bin.yaml"), "not a text file")
    assert_one_line(trajpred("train", "--config", tmp_path), "is a folder")


SET_VALUES = [
    (["train.lr=[1,"], ["--set train.lr", "not valid YAML"]),
    (["data.test_scene=2001-02-30"], ["--set data.test_scene", "not valid YAML"]),
    (["=3"], ["not a config key"]),
    (["train..lr=3"], ["not a config key"]),
    (["train.lr"], ["expects key=value"]),
    (["train.lr=1", "train.lr.x=2"], ["'train.lr' must be float"]),
    (["train=3"], ["'train' must be a mapping"]),
    ([f"train.lrr={'y' * 3000}"], ["did you mean 'train.lr'"]),
]


@pytest.mark.parametrize("pairs, words", SET_VALUES, ids=[p[0][:20] for p, _ in SET_VALUES])
def test_bad_set_values_name_the_key(pairs, words, tmp_path, trajpred):
    assert_one_line(trajpred("train", "--out", tmp_path / "o", "--set", *pairs), *words)


def test_exponent_without_a_dot_is_a_float():
    """YAML 1.1 reads 1e-3 as text; a float setting takes it as the number."""
    assert load_config(RunConfig, None, ["train.lr=1e-3"]).train.lr == 1e-3


@pytest.mark.parametrize("command", ["predict", "track", "train", "synth"])
def test_one_set_syntax_for_every_command(command):
    """--set takes several pairs and may also be repeated, for every command."""
    positional = ["clip.mp4"] if command in ("predict", "track") else []
    extra = ["--out", "o"] if command in ("predict", "track") else []
    args = build_parser().parse_args(
        [command, *positional, *extra, "--set", "a=1", "b=2", "--set", "c=3"]
    )
    assert args.overrides == ["a=1", "b=2", "c=3"]


def test_help_defaults_come_from_the_config_dataclasses(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    d = PipelineConfig()
    for shown in (
        f"(default: {d.detector.conf})",
        f"(default: {d.detector.weights}",
        f"(default: {d.tracker})",
        f"(default: {d.forecast.k})",
        f"(default: {d.forecast.checkpoint})",
    ):
        assert shown in text, shown


def test_tracker_yaml_values_are_checked_before_any_frame(tmp_path):
    from trajpred.tracking import build_tracker

    cases = {
        "track_high_thresh: abc": "'track_high_thresh' must be float",
        "track_buffer: 2.5": "'track_buffer' must be int",
        "fuse_score: 3": "'fuse_score' must be true or false",
        "match_thresh: 7": "'match_thresh' must be in [0, 1]",
        "track_bufer: 30": "did you mean 'track_buffer'",
        "tracker_type: [1, 2]": "tracker_type",
    }
    for i, (line, message) in enumerate(cases.items()):
        path = tmp_path / f"t{i}.yaml"
        path.write_text(f"tracker_type: bytetrack\n{line}\n")
        with pytest.raises(TrajpredError, match=message.replace("[", r"\[")) as err:
            build_tracker(str(path))
        assert path.name in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "bomb.yaml").write_text(_bomb())
    with pytest.raises(ConfigError, match="expands to more than"):
        build_tracker(str(tmp_path / "bomb.yaml"))
    # Keys a file leaves out take ultralytics' defaults instead of failing on the first frame.
    (tmp_path / "short.yaml").write_text("tracker_type: bytetrack\ntrack_buffer: 10\n")
    assert build_tracker(str(tmp_path / "short.yaml")).args.track_high_thresh > 0


# ---------------------------------------------------------------- outputs never destroy inputs


def test_an_output_that_is_an_input_is_refused_through_links(tmp_path):
    data = tmp_path / "a.mp4"
    data.write_bytes(b"video")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.mp4").symlink_to(data)
    os.link(data, tmp_path / "hard.mp4")
    for out in (
        data,
        tmp_path / "sub" / ".." / "a.mp4",
        tmp_path / "link.mp4",
        tmp_path / "hard.mp4",
    ):
        with pytest.raises(TrajpredError, match="is an input of this command"):
            refuse_overwriting_inputs([tmp_path / "other.csv", out], [tmp_path / "x.pt", data])
    refuse_overwriting_inputs([tmp_path / "new.csv"], [data])  # a new file is fine
    assert data.read_bytes() == b"video"


def _video(path: Path, n: int = 3) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for _ in range(n):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    return path


def test_commands_refuse_to_overwrite_their_inputs(tmp_path, trajpred, eth_ucy_like_root):
    from trajpred.demo import untrained_checkpoint

    clip = _video(tmp_path / "clip.mp4")
    out = tmp_path / "run"
    out.mkdir()
    annotated = _video(out / "annotated.mp4")
    (out / "forecasts.csv").write_text("frame\n")
    ckpt = untrained_checkpoint(tmp_path / "c.pt")
    data_file = eth_ucy_like_root / "toy" / "test" / "walks_test.txt"
    (tmp_path / "alias.mp4").symlink_to(clip)
    cases = [
        ["track", clip, "--out", clip],
        ["track", clip, "--out", tmp_path / "alias.mp4"],
        ["track", clip, "--out", tmp_path / "run" / ".." / "clip.mp4"],
        ["predict", clip, "--out", clip],
        ["predict", annotated, "--out", out],
        ["predict", clip, "--out", tmp_path, "--config", tmp_path / "config.yaml"],
        ["evaluate", "--checkpoint", ckpt, "--data", eth_ucy_like_root, "--json", ckpt],
        ["evaluate", "--checkpoint", ckpt, "--data", eth_ucy_like_root, "--plot", data_file],
        ["evaluate", "--checkpoint", ckpt, "--data", data_file, "--save-predictions", data_file],
    ]
    before = {p: p.read_bytes() for p in (clip, annotated, Path(ckpt), data_file)}
    (tmp_path / "config.yaml").write_text("")  # predict would write tmp_path/config.yaml too
    for args in cases:
        done = trajpred(*args)
        assert_one_line(done, "is an input of this command")
    for path, content in before.items():
        assert path.read_bytes() == content, path


def test_train_never_replaces_an_earlier_run(tmp_path, trajpred, eth_ucy_like_root):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"earlier")
    done = trajpred(
        "train", "--out", out, "--set", f"data.root={eth_ucy_like_root}", "data.test_scene=toy"
    )
    assert_one_line(done, "holds an earlier training run", "--resume")
    assert (out / "last.pt").read_bytes() == b"earlier"


def test_a_folder_in_use_is_locked_and_a_stale_lock_is_taken_over(tmp_path, trajpred):
    out = tmp_path / "scene"
    out.mkdir()
    with OutputLock(out):
        assert str(os.getpid()) in (out / LOCK_NAME).read_text()
        done = trajpred("synth", "--out", out, "--duration", "1", "--width", "64", "--height", "64")
        assert_one_line(done, "in use by another trajpred run", f"pid {os.getpid()}")
        with pytest.raises(TrajpredError, match="in use"):
            OutputLock(out).acquire()
    assert not (out / LOCK_NAME).exists()
    # A lock file left by a run that was killed: its PID is gone and nobody holds the lock.
    dead = subprocess.Popen(["true"])
    dead.wait()
    (out / LOCK_NAME).write_text(f"{dead.pid}\n")
    done = trajpred("synth", "--out", out, "--duration", "1", "--width", "64", "--height", "64")
    assert done.returncode == 0, done.stderr
    assert (out / "video.mp4").is_file() and not (out / LOCK_NAME).exists()


@pytest.mark.parametrize("command", ["predict", "track", "train", "demo"])
def test_each_command_refuses_an_output_in_use(command, tmp_path, trajpred, eth_ucy_like_root):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"never read: the lock comes first")
    out = tmp_path / ("tracks.csv" if command == "track" else "out")
    args = {
        "predict": [clip, "--out", out],
        "track": [clip, "--out", out],
        "train": ["--out", out, "--set", f"data.root={eth_ucy_like_root}", "data.test_scene=toy"],
        "demo": ["--out", out, "--duration", "1"],
    }[command]
    if command != "track":  # a folder output; track's lock sits beside its CSV file
        out.mkdir()
    with OutputLock(out, file=command == "track"):
        done = trajpred(command, *args)
    assert_one_line(done, "in use by another trajpred run", f"pid {os.getpid()}")


def test_a_file_output_is_locked_too(tmp_path):
    with OutputLock(tmp_path / "tracks.csv", file=True):
        with pytest.raises(TrajpredError, match="tracks.csv: in use"):
            OutputLock(tmp_path / "tracks.csv", file=True).acquire()
        OutputLock(tmp_path / "other.csv", file=True).acquire()


def test_sources_skip_earlier_outputs_and_existing_files_are_files(tmp_path, monkeypatch):
    from trajpred.predict_files import is_predict_output
    from trajpred.video import expand_source

    videos = tmp_path / "videos"
    (videos / "runs" / "clip").mkdir(parents=True)
    _video(videos / "clip.mp4")
    _video(videos / "runs" / "clip" / "annotated.mp4")  # an earlier predict's output
    (videos / "runs" / "clip" / "forecasts.csv").write_text("frame\n")
    _video(videos / ".clip.partial.mp4")  # a killed run's partial file
    found, several = expand_source(str(videos / "**" / "*.mp4"), skip=is_predict_output)
    assert several and [v.uri for v in found] == [str(videos / "clip.mp4")]
    found, _ = expand_source(str(videos), skip=is_predict_output)
    assert [v.uri for v in found] == [str(videos / "clip.mp4")]
    # Names that would read as a webcam index or a glob are files when they exist.
    monkeypatch.chdir(tmp_path)
    for name in ("0", "take[1].mp4", "what?.mp4", "star*.mp4"):
        (tmp_path / name).write_bytes(b"a video")
        found, several = expand_source(name)
        assert not several and found[0].uri == name and not found[0].is_stream, name
    found, _ = expand_source("7")  # absent: a webcam index
    assert found[0].is_stream


# ---------------------------------------------------------------- failed runs keep earlier files


def fail_tracker_on_frame(n: int, monkeypatch) -> None:
    """The tracker raises on frame n, as a setting that only fails there would."""
    from trajpred import tracking

    real, calls = tracking.Tracker.update_with_index, []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise RuntimeError(f"tracker failed on frame {n}")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(tracking.Tracker, "update_with_index", failing)


def test_a_failed_track_run_leaves_the_earlier_csv(tmp_path, trajpred, video_assets, monkeypatch):
    """A failure on the third frame (e.g. a tracker setting that only fails there) removes the
    run's partial file; the CSV of the earlier run stays byte for byte."""
    clip = video_assets.scene.video
    csv = tmp_path / "tracks.csv"
    csv.write_text("frame,track_id,x,y\n1,1,0.5,0.5\n")
    fail_tracker_on_frame(3, monkeypatch)
    args = ["--weights", video_assets.weights, "--imgsz", video_assets.imgsz, "--no-progress"]
    with pytest.raises(RuntimeError, match="frame 3"):
        main(["track", str(clip), "--out", str(csv), *map(str, args)])
    assert csv.read_text() == "frame,track_id,x,y\n1,1,0.5,0.5\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks.csv"]


@pytest.mark.slow
def test_a_failed_predict_run_leaves_every_earlier_file(tmp_path, video_assets, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    earlier = {}
    for name in ("annotated.mp4", "tracks.csv", "tracks_mot.txt", "forecasts.csv", "config.yaml"):
        earlier[name] = f"earlier {name}".encode()
        (out / name).write_bytes(earlier[name])
    fail_tracker_on_frame(5, monkeypatch)
    args = [
        "predict", video_assets.scene.video, "--out", out, "--weights", video_assets.weights,
        "--imgsz", video_assets.imgsz, "--checkpoint", video_assets.checkpoint, "--no-progress",
    ]  # fmt: skip
    with pytest.raises(RuntimeError, match="frame 5"):
        main([str(a) for a in args])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier


# ---------------------------------------------------------------- messages name the real problem


def test_video_writer_says_why_it_cannot_write(tmp_path):
    from trajpred.video import VideoWriter

    cases = [
        (tmp_path / "a.mp4", 10.0, 1, 1, "refuses a 1 x 1 frame"),
        (tmp_path / "b.mp4", 0.001, 64, 64, "refuses a frame rate of 0.001 fps"),
        (tmp_path / "missing" / "c.mp4", 10.0, 64, 64, "cannot write a video here"),
    ]
    for path, fps, w, h, message in cases:
        with pytest.raises(OutputError, match=message) as err:
            VideoWriter(path, fps, w, h)
        assert path.name in str(err.value)


def test_messages_name_nan_homographies_and_ids_as_written(tmp_path):
    from trajpred.formats import read_eth_ucy, read_mot

    (tmp_path / "H.txt").write_text("1 0 0\n0 nan 0\n0 0 1\n")
    with pytest.raises(InputError, match=r"holds NaN \(row 2, column 2\)"):
        read_homography(tmp_path / "H.txt")
    (tmp_path / "ids.txt").write_text("1\t99999999999999999999\t0.5\t0.5\n")
    with pytest.raises(InputError, match="ped_id 99999999999999999999 is too large"):
        read_eth_ucy(tmp_path / "ids.txt")
    (tmp_path / "mot.txt").write_text("1,12345678901234567890123,1,1,2,2,1,-1,-1,-1\n")
    with pytest.raises(InputError, match="id 12345678901234567890123 is too large"):
        read_mot(tmp_path / "mot.txt")


def test_absurd_coordinates_are_refused_not_scored_as_nan(tmp_path, trajpred, eth_ucy_like_root):
    """|x|, |y| (and box values) above 1e6 are refused: beyond, float32 model inputs lose their
    precision and squared distances overflow, which gave NaN metrics with exit code 0."""
    from trajpred.demo import untrained_checkpoint
    from trajpred.formats import MAX_COORD, write_eth_ucy
    from trajpred.tracks import Tracks

    test = eth_ucy_like_root / "toy" / "test" / "walks_test.txt"
    lines = test.read_text().splitlines()
    f, i, x, y = lines[5].split("\t")
    lines[5] = "\t".join([f, i, "1e300", y])
    test.write_text("\n".join(lines) + "\n")
    ckpt = untrained_checkpoint(tmp_path / "c.pt")
    done = trajpred("evaluate", "--checkpoint", ckpt, "--data", eth_ucy_like_root, "--scene", "toy")
    assert_one_line(done, "walks_test.txt:6", "x 1e300 is out of range")
    with pytest.raises(TrajpredError, match="within"):
        write_eth_ucy(tmp_path / "w.txt", Tracks([1], [1], [[2 * MAX_COORD, 0.0]]))


def test_video_rate_fps_on_eth_ucy_is_a_clear_line(tmp_path, trajpred, eth_ucy_like_root):
    """ETH/UCY files are at the model step already; an fps under 1 / dt_s (here 1 fps, a model
    step of 0.4 frames) used to end in an IndexError."""
    from trajpred.demo import untrained_checkpoint

    ckpt = untrained_checkpoint(tmp_path / "c.pt")
    for fps in ("1", "2"):
        done = trajpred(
            "evaluate", "--checkpoint", ckpt, "--data", eth_ucy_like_root, "--scene", "toy",
            "--fps", fps, "--k", "0",
        )  # fmt: skip
        assert_one_line(done, "walks_test.txt", "model step spans", "ETH/UCY")
