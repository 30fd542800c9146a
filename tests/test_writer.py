"""The writer process: same forecasts as the in-process pipeline, errors come back as one line,
a dead writer is reported instead of waited for."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from conftest import clip

from trajpred.atomic import partial_path
from trajpred.commands.predict import predict_video
from trajpred.detect import DetectorConfig
from trajpred.errors import TrajpredError
from trajpred.pipeline import ForecastConfig, Pipeline, PipelineConfig
from trajpred.video import VideoReader, VideoSource
from trajpred.writer import WriterProcess


@pytest.fixture(scope="module")
def pipeline(video_assets):
    return Pipeline(
        PipelineConfig(
            detector=DetectorConfig(
                weights=video_assets.weights, imgsz=video_assets.imgsz, device="cpu"
            ),
            forecast=ForecastConfig(checkpoint=video_assets.checkpoint),
        )
    )


@pytest.fixture(scope="module")
def writer():
    with WriterProcess() as w:
        yield w


def _reader(video_assets) -> VideoReader:
    return VideoReader(VideoSource(str(video_assets.scene.video), "scene"))


@pytest.mark.slow
def test_writer_forecasts_match_the_in_process_pipeline(video_assets, pipeline, writer, tmp_path):
    with _reader(video_assets) as reader:
        expected = [(r.frame_id, r.forecasts) for r in pipeline.process(reader)]
    seen = []
    with _reader(video_assets) as reader:
        summary = predict_video(
            pipeline,
            reader,
            tmp_path,
            progress=False,
            writer=writer,
            on_result=lambda r: seen.append((r.frame_id, r.forecasts)),
        )
    assert summary.frames == len(expected) == len(seen)
    assert sum(len(f) for _, f in seen) > 50, "too few forecasts to compare"
    for (frame_a, a), (frame_b, b) in zip(expected, seen, strict=False):
        assert frame_a == frame_b
        np.testing.assert_array_equal(a.track_id, b.track_id)
        np.testing.assert_allclose(a.xy, b.xy, atol=1e-4)
    # The same writer serves the next video, starting its forecaster state afresh.
    with _reader(video_assets) as reader:
        again = predict_video(pipeline, reader, tmp_path / "again", progress=False, writer=writer)
    assert again.frames == summary.frames
    assert (tmp_path / "again" / "forecasts.csv").read_text() == (
        tmp_path / "forecasts.csv"
    ).read_text()


@pytest.mark.slow
def test_writer_error_is_one_line_and_the_writer_serves_on(
    video_assets, pipeline, writer, tmp_path
):
    out = tmp_path / "blocked"
    partial_path(out / "annotated.mp4").mkdir(parents=True)  # where the writer's video would go
    with _reader(video_assets) as reader, pytest.raises(TrajpredError) as info:
        predict_video(pipeline, reader, out, progress=False, writer=writer)
    assert "\n" not in str(info.value) and "annotated" in str(info.value)
    assert not (out / "tracks.csv").exists()
    with _reader(video_assets) as reader:
        assert (
            predict_video(pipeline, reader, tmp_path / "ok", progress=False, writer=writer).frames
            > 0
        )


@pytest.mark.slow
def test_a_dead_writer_is_an_error_not_a_hang(video_assets, pipeline, tmp_path):
    with WriterProcess() as writer:
        writer.wait_ready()
        os.kill(writer._proc.pid, signal.SIGKILL)
        writer._proc.join(10)
        with (
            _reader(video_assets) as reader,
            pytest.raises(TrajpredError, match="writer process stopped"),
        ):
            predict_video(pipeline, reader, tmp_path, progress=False, writer=writer)


def test_predict_in_process_publishes_every_output(video_assets, tmp_path, monkeypatch):
    """The fast loop's one `predict` run to success (the CLI in-process, its writer process):
    every file it publishes, and what each holds. With --tracker botsort, which it must use."""
    import cv2
    import yaml

    import trajpred.tracking as tracking
    from trajpred.cli import main
    from trajpred.formats import read_csv, read_tracks
    from trajpred.predict_files import OUTPUT_NAMES

    built, real_build = [], tracking.build_tracker
    monkeypatch.setattr(
        tracking, "build_tracker", lambda name: built.append(real_build(name)) or built[-1]
    )
    n, out = 16, tmp_path / "out"
    video = clip(video_assets, tmp_path / "clip.mp4", n)
    zones = tmp_path / "zones.yaml"
    zones.write_text("zones: [{name: z, polygon: [[0, 0], [160, 0], [160, 96]]}]\n")
    args = ["predict", video, "--out", out, "--weights", video_assets.weights, "--imgsz",
            video_assets.imgsz, "--checkpoint", video_assets.checkpoint, "--device", "cpu",
            "--tracker", "botsort", "--k", "2", "--zones", zones, "--no-progress"]  # fmt: skip
    assert main([str(a) for a in args]) == 0
    assert [type(t).__name__ for t in built] == ["BOTSORT"]
    assert yaml.safe_load((out / "config.yaml").read_text())["tracker"] == "botsort"
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES)  # no partial, no lock

    tracks, mot = read_csv(out / "tracks.csv"), read_tracks(out / "tracks_mot.txt")
    assert tracks.units == "px" and len(tracks) > 3 * n and tracks.frame_id.max() == n
    np.testing.assert_array_equal(tracks.frame_id, mot.frame_id)
    np.testing.assert_array_equal(tracks.track_id, mot.track_id)
    np.testing.assert_allclose(tracks.xy, mot.xy, atol=0.02)

    lines = (out / "forecasts.csv").read_text().splitlines()
    assert lines[0] == "frame,track_id,step,target_frame,x,y,r50,r90"
    fc = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    r50, r90 = fc[:, 6].reshape(-1, 12), fc[:, 7].reshape(-1, 12)
    assert (r50 > 0).all() and (r90 > r50).all() and (np.diff(r90, axis=1) > 0).all()
    assert len(fc) > 0 and len(fc) % 12 == 0  # 12 steps per forecast
    frame, track, step = fc[:, 0].astype(int), fc[:, 1].astype(int), fc[:, 2].astype(int)
    np.testing.assert_array_equal(step, np.tile(np.arange(1, 13), len(fc) // 12))
    np.testing.assert_array_equal(fc[:, 3], frame + 4 * step)  # 0.4 s at 10 fps
    seen = set(zip(tracks.frame_id.tolist(), tracks.track_id.tolist(), strict=True))
    assert all((int(f), int(t)) in seen for f, t in zip(frame, track, strict=True))
    assert frame.min() >= 5  # a track's first forecast waits for its second sample, 0.4 s on
    # The untrained forecaster walks on at constant velocity: each forecast is a straight line.
    xy = fc[:, 4:6].reshape(-1, 12, 2)
    np.testing.assert_allclose(np.diff(xy, 2, axis=1), 0, atol=0.03)
    # --k 2: two sampled trajectories per forecast row block, the same frames and tracks
    lines = (out / "samples.csv").read_text().splitlines()
    assert lines[0] == "frame,track_id,sample,step,x,y"
    samples = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    assert len(samples) == 2 * len(fc)
    np.testing.assert_array_equal(samples[::24, :2], fc[::12, :2])
    np.testing.assert_array_equal(samples[:24, 2], np.repeat([1, 2], 12))

    frames = {}
    for name in ("annotated", "raw"):
        cap = cv2.VideoCapture(str(out / "annotated.mp4" if name == "annotated" else video))
        frames[name] = [cap.read()[1] for _ in range(n + 1)]
        cap.release()
    assert frames["annotated"][-1] is None  # all n frames, no more
    last, raw = (frames[name][n - 1].astype(int) for name in ("annotated", "raw"))
    assert last.shape == raw.shape and (np.abs(last - raw).max(-1) > 80).sum() > 200  # drawn


def test_ctrl_c_during_a_message_is_raised_after_it():
    from trajpred.atomic import HoldInterrupt

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    reached_end = False
    with pytest.raises(KeyboardInterrupt):
        with HoldInterrupt():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # give the signal handler a chance to run inside the block
                pass
            reached_end = True
    assert reached_end, "Ctrl-C cut the block short"
    restored = signal.signal(signal.SIGINT, before)  # even where SIGINT was ignored (nohup, &)
    assert restored is signal.default_int_handler  # the handler of before the block is back


def test_a_failure_in_the_writer_comes_back_as_the_same_kind_of_error():
    import pickle

    from trajpred.writer import Failure, FrameDone

    user = pickle.loads(pickle.dumps(FrameDone(None, Failure.of(TrajpredError("x.mp4: bad")))))
    with pytest.raises(TrajpredError, match=r"^x.mp4: bad$"):
        user.error.raise_()
    try:
        raise ValueError("a bug")
    except ValueError as e:
        bug = Failure.of(e)
    assert not bug.user_error and "Traceback" in bug.message
    with pytest.raises(RuntimeError, match="(?s)writer process: Traceback.*ValueError: a bug"):
        bug.raise_()
