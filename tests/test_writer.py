"""The writer process: same forecasts as the in-process pipeline, errors come back as one line,
a dead writer is reported instead of waited for."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

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


def test_ctrl_c_during_a_message_is_raised_after_it():
    from trajpred.writer import _HoldInterrupt

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    reached_end = False
    with pytest.raises(KeyboardInterrupt):
        with _HoldInterrupt():
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
