"""`trajpred predict|track SOURCE --ray` and `trajpred summary`, as a user runs them.

The Ray tests share one local Ray instance (2 CPUs, started once for the module, shut down
after); the CLI runs in-process and finds Ray already up, as in a notebook, except where a
test starts it in a process of its own (to kill the driver, or to Ctrl-C it): that one joins
the instance by its address. The worker-kill tests use the test-only hook
TRAJPRED_TEST_KILL_AT_FRAME=N:MARKER (trajpred/ray_tasks.py): the driver reads it and passes it
to the tasks; the first task that reaches frame N while MARKER does not exist creates MARKER
and SIGKILLs its own worker process, once. Nothing else reads it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, assert_one_line, clip, doc_table, run_trajpred, start_trajpred

from trajpred.ray_runs import RUNS_COLUMNS

CSVS = ("tracks.csv", "tracks_mot.txt", "forecasts.csv")


def runs(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "runs.csv", newline="") as f:
        return {Path(r["video"]).name: r for r in csv.DictReader(f)}


def model_args(assets) -> list:
    return [
        "--weights",
        assets.weights,
        "--imgsz",
        assets.imgsz,
        "--device",
        "cpu",
        "--no-progress",
    ]


def predict(assets, source, out, *extra) -> list:
    """predict's arguments: CSV files only (the same bytes wherever they ran)."""
    return [
        "predict",
        source,
        "--out",
        out,
        "--checkpoint",
        assets.checkpoint,
        "--no-video",
        *model_args(assets),
        *extra,
    ]


# ---------------------------------------------------------------- without Ray (fast)


def fake_run(out: Path) -> Path:
    """A --ray predict run's OUT by hand: two videos done, one failed."""
    out.mkdir()
    rows = [
        ("/v/a.mp4", "done", "3", "10.00", "0.30", "", "a"),
        ("/v/b.mp4", "done", "2", "20.00", "0.10", "", "b"),
        ("/v/c.mp4", "failed", "", "", "0.01", "/v/c.mp4: not a video OpenCV can read", "c"),
    ]
    with open(out / "runs.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerows([RUNS_COLUMNS, *rows])
    for name, tracks, forecasts in (
        ("a", "1,1\n1,2\n2,1\n3,1\n", "1,1,1\n1,1,2\n1,2,1\n2,1,1\n"),
        ("b", "1,7\n2,7\n", "2,7,1\n"),
    ):
        (out / name).mkdir()
        (out / name / "tracks.csv").write_text("frame,track_id\n" + tracks)
        (out / name / "forecasts.csv").write_text("frame,track_id,step\n" + forecasts)
    return out


def test_summary_adds_up_the_index_and_the_csvs(trajpred, tmp_path):
    out = fake_run(tmp_path / "out")
    done = trajpred("summary", out)
    assert done.returncode == 0, done.stderr
    assert "3 videos (2 done, 1 failed), 5 frames, 3 tracks, 4 forecasts, mean 15.0 fps" in (
        done.stdout
    )
    assert "failed /v/c.mp4: /v/c.mp4: not a video OpenCV can read" in done.stdout
    totals = json.loads((out / "summary.json").read_text())
    counts = [totals[k] for k in ("videos", "frames", "tracks", "forecasts")]
    assert counts == [3, 5, 3, 4]
    assert totals["failures"] == [
        {"video": "/v/c.mp4", "error": "/v/c.mp4: not a video OpenCV can read"}
    ]
    assert [v["tracks"] for v in totals["per_video"][:2]] == [2, 1]


def test_summary_of_a_bad_out_is_one_line(trajpred, tmp_path):
    assert_one_line(trajpred("summary", tmp_path / "nowhere"), "nowhere", "not found")
    assert_one_line(trajpred("summary", tmp_path), "runs.csv", "--ray run")
    (tmp_path / "runs.csv").write_text("video,status\nx,done\n")
    assert_one_line(trajpred("summary", tmp_path), "runs.csv", "not a runs index")
    out = fake_run(tmp_path / "out")
    (out / "b" / "forecasts.csv").unlink()
    assert_one_line(trajpred("summary", out), "forecasts.csv", "missing")
    assert not (out / "summary.json").exists()


def test_without_ray_the_flag_says_how_to_install_it(trajpred, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    (tmp_path / "a.mp4").write_bytes(b"")
    done = trajpred("predict", tmp_path, "--out", tmp_path / "out", "--ray")
    assert_one_line(done, "--ray needs Ray", 'pip install -e ".[ray]"')
    done = trajpred("track", tmp_path, "--out", tmp_path / "out", "--ray", "auto")
    assert_one_line(done, 'pip install -e ".[ray]"')


def test_bad_ray_settings_and_lists_are_one_line(trajpred, tmp_path):
    pytest.importorskip("ray")
    (tmp_path / "a.mp4").write_bytes(b"")
    out = tmp_path / "out"
    done = trajpred("predict", tmp_path, "--out", out, "--ray", "--set", "ray.num_gpus=-1")
    assert_one_line(done, "ray.num_gpus", "--set")
    done = trajpred("predict", tmp_path, "--out", out, "--ray", "--set", "ray.num_cpus=0")
    assert_one_line(done, "ray.num_cpus", "every video at once")
    done = trajpred("predict", tmp_path, "--out", out, "--ray", "--set", "ray.retries=1")
    assert_one_line(done, "did you mean 'ray.max_retries'")
    listing = tmp_path / "videos.txt"
    listing.write_text("# two videos\na.mp4\n\nmissing.mp4\n")
    assert_one_line(trajpred("track", listing, "--out", out, "--ray"), "videos.txt:4", "missing")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.mp4").write_bytes(b"")
    listing.write_text("a.mp4\nsub/a.mp4\n")
    assert_one_line(trajpred("track", listing, "--out", out, "--ray"), "videos.txt:2", "line 1")
    assert_one_line(trajpred("track", tmp_path, "--out", out, "--ray", "x"), "not an address")
    done = trajpred("track", tmp_path, "--out", out, "--ray", "127.0.0.1:1")
    assert_one_line(done, "127.0.0.1:1", "cannot reach")
    done = trajpred("predict", tmp_path, "--out", out, "--ray", "--workers", "2")
    assert_one_line(done, "--workers", "ray.num_cpus")
    assert_one_line(trajpred("predict", "0", "--out", out, "--ray"), "not a webcam")
    listing.write_text("rtsp://cam/1\nrtsp://cam:1/\n")  # both would write OUT/cam_1
    assert_one_line(trajpred("predict", listing, "--out", out, "--ray"), "videos.txt:2", "cam_1")
    assert not (out / "runs.csv").exists()


def test_a_task_larger_than_the_local_instance_is_refused():
    """--ray alone on a machine without what one task asks for: one line, not a run whose
    tasks wait for ever."""
    from trajpred.errors import TrajpredError
    from trajpred.ray_runs import RayConfig, _check_fits

    here = {"CPU": 2.0}
    _check_fits(here, RayConfig(num_cpus=2))
    with pytest.raises(TrajpredError, match=r"ray.num_gpus=0.25: this machine has 0 GPUs"):
        _check_fits(here, RayConfig(num_gpus=0.25))
    with pytest.raises(TrajpredError, match=r"ray.num_cpus=3: this machine has 2 CPUs"):
        _check_fits(here, RayConfig(num_cpus=3))


def test_the_bar_counts_a_failed_video_as_settled():
    """A video that failed half-way leaves the bar at 100 % once every video has ended."""
    from trajpred.ray_tasks import Progress

    progress = Progress()
    progress.start("a", 10)
    progress.start("b", 20)
    progress.set("a", 10)
    progress.set("b", 7)  # b fails at its 7th frame
    assert progress.snapshot() == (30, 17)
    progress.end("a")
    progress.end("b")
    assert progress.snapshot() == (30, 30)
    progress.start("stream", 0)  # a stream: as many expected as read
    progress.set("stream", 5)
    assert progress.snapshot() == (35, 35)


def test_runs_csv_that_cannot_be_written_is_tried_again(tmp_path, monkeypatch):
    """A full disk when one video ends: runs.csv keeps its earlier rows, the next video's end
    writes them all; if it never goes through, the run ends with that error."""
    import trajpred.ray_runs as ray_runs
    from trajpred.errors import OutputError
    from trajpred.video import VideoSource

    real = ray_runs.write_runs
    full = {"on": True}

    def write_runs(out, rows):
        if full["on"]:
            raise OutputError(out / "runs.csv", "cannot write (No space left on device)")
        real(out, rows)

    monkeypatch.setattr(ray_runs, "write_runs", write_runs)
    index = ray_runs._Index(tmp_path, {})
    done = {"status": "done", "frames": 3, "seconds": 0.5, "tracks": 1}
    index.record("predict", VideoSource(str(tmp_path / "a.mp4"), "a"), done)
    assert not (tmp_path / "runs.csv").exists()
    with pytest.raises(OutputError, match="No space left"):
        index.report()
    full["on"] = False
    index.record("predict", VideoSource(str(tmp_path / "b.mp4"), "b"), done)
    index.report()
    assert sorted(runs(tmp_path)) == ["a.mp4", "b.mp4"]


KEPT_SCALE = ROOT / "data" / "benchmarks" / "scale_2026-12-07"
CLIP_FRAMES = (30, 120, 600)


def test_the_guide_shows_the_kept_scale_benchmark():
    """docs/guides/multiprocess.md's figures are those of the JSON files bench_scale.py wrote."""
    names = ("bench_scale.json", "bench_scale_120frames.json", "bench_scale_600frames.json")
    reports = [json.loads((KEPT_SCALE / name).read_text()) for name in names]
    arms = [report["arms"] for report in reports]
    table = doc_table("| arm | videos at once |")
    assert set(table) == set(arms[0]) == set(arms[1]) == set(arms[2])
    for arm, row in table.items():
        assert row["videos at once"] == str(arms[0][arm]["videos_at_once"])
        for frames, kept in zip(CLIP_FRAMES, arms, strict=True):
            assert row[f"frames/s, {frames}-frame clips"] == f"{kept[arm]['throughput_fps']:g}"

    def cells(arm: str, key: str) -> str:
        return " / ".join(f"{kept[arm][key]:g}" for kept in arms)

    ray = doc_table("| Ray arm |")
    assert set(ray) == {"ray1", "ray2"}
    for arm, row in ray.items():
        assert row["fixed costs per video (s)"] == cells(arm, "overhead_per_video_s")
        assert row["Ray's own per video (s)"] == cells(arm, "ray_overhead_per_video_s")
    assert ray["ray2"]["two at a time over one, once started"] == cells("ray2", "steady_scaling")
    training = reports[2]["training"]
    page = (ROOT / "docs" / "guides" / "multiprocess.md").read_text()
    for figure in (
        f"{training['processes1']['epoch_s']:g} s",
        f"{training['processes2']['epoch_s']:g} s",
        f"{training['speedup']:g}x",
    ):
        assert figure in page, figure


# ---------------------------------------------------------------- with a local Ray instance


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(video_assets, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for name, n in (("a", 14), ("b", 10), ("c", 8)):
        clip(video_assets, folder / f"{name}.mp4", n)
    return folder


@pytest.fixture(scope="module")
def local_outputs(video_assets, clips, tmp_path_factory) -> Path:
    """The same clips through the local (one process) path, the annotated video included."""
    from trajpred.cli import main

    out = tmp_path_factory.mktemp("local") / "out"
    args = [a for a in predict(video_assets, clips, out) if a != "--no-video"]
    assert main([str(a) for a in args]) == 0
    return out


def assert_same_csvs(ray_out: Path, local_out: Path, names=("a", "b", "c"), files=CSVS) -> None:
    for name in names:
        for file in files:
            ray_file, local_file = ray_out / name / file, local_out / name / file
            assert ray_file.read_bytes() == local_file.read_bytes(), (name, file)


@pytest.mark.slow
def test_a_corrupt_video_is_recorded_and_the_others_complete(
    ray_cluster, video_assets, clips, local_outputs, trajpred, tmp_path
):
    listing = tmp_path / "videos.txt"
    (tmp_path / "broken.mp4").write_bytes(b"\x00not a video" * 100)
    listing.write_text(f"{clips / 'a.mp4'}\nbroken.mp4\n{clips / 'c.mp4'}\n")
    out = tmp_path / "out"
    done = trajpred(*predict(video_assets, listing, out, "--ray"))
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "failed" in last and "broken.mp4" in last and "Traceback" not in done.stderr
    index = runs(out)
    assert index["broken.mp4"]["status"] == "failed"
    assert "not a video OpenCV can read" in index["broken.mp4"]["error"]
    assert index["a.mp4"]["status"] == index["c.mp4"]["status"] == "done"
    assert_same_csvs(out, local_outputs, ("a", "c"))
    assert not (out / "broken").exists()


@pytest.mark.slow
def test_a_worker_killed_mid_video_is_retried_to_the_same_outputs(
    ray_cluster, video_assets, clips, local_outputs, trajpred, tmp_path, monkeypatch
):
    marker = tmp_path / "killed"
    monkeypatch.setenv("TRAJPRED_TEST_KILL_AT_FRAME", f"5:{marker}")
    out = tmp_path / "out"
    done = trajpred(*predict(video_assets, clips, out, "--ray"))
    assert done.returncode == 0, done.stderr
    assert marker.exists()  # a worker did die at frame 5
    assert all(r["status"] == "done" for r in runs(out).values())
    assert_same_csvs(out, local_outputs)
    assert not list(out.rglob(".*partial*")) and not list(out.glob(".ray-staging-*"))


@pytest.mark.slow
def test_ray_track_in_a_subprocess_starts_and_stops_its_own_ray(video_assets, trajpred, tmp_path):
    """As a user types it: no Ray running, `--ray` alone starts a local instance for the run."""
    pytest.importorskip("ray")
    video = clip(video_assets, tmp_path / "solo.mp4", 6)
    out = tmp_path / "out"
    done = run_trajpred("track", video, "--out", out, *model_args(video_assets), "--ray")
    assert done.returncode == 0, done.stderr
    assert "solo: 6 frames" in done.stdout and "1 of 1 videos done, 0 failed" in done.stdout
    assert "Traceback" not in done.stderr
    assert runs(out)["solo.mp4"]["status"] == "done" and (out / "solo.csv").is_file()
    local = tmp_path / "local.csv"  # the same bytes as a local run
    assert trajpred("track", video, "--out", local, *model_args(video_assets)).returncode == 0
    assert (out / "solo.csv").read_bytes() == local.read_bytes()
    summary = trajpred("summary", out)
    assert summary.returncode == 0, summary.stderr
    assert "1 video (1 done, 0 failed), 6 frames" in summary.stdout


@pytest.mark.slow
def test_adapt_on_ray_tracks_what_adapt_does_locally(
    ray_cluster, video_assets, clips, trajpred, tmp_path
):
    """adapt SOURCE --ray: the videos tracked as Ray tasks give adapt the same tracks, frames
    and ids offset the same way, as its local tracking (the fitting that follows is adapt's)."""
    import argparse

    import numpy as np

    from trajpred.commands.adapt import _track_videos
    from trajpred.config import load_config
    from trajpred.pipeline import PipelineConfig
    from trajpred.ray_runs import RayConfig, track_videos_on_ray

    config = load_config(
        PipelineConfig,
        None,
        [
            f"detector.weights={video_assets.weights}",
            f"detector.imgsz={video_assets.imgsz}",
            "detector.device=cpu",
        ],
    )
    args = argparse.Namespace(source=str(clips), ray="local", no_progress=True)
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local = _track_videos(args, config, tmp_path / "local", False)
    on_ray = track_videos_on_ray(args, config, RayConfig(), tmp_path / "ray", False)
    assert local[1:] == on_ray[1:]  # fps, and the video info report.json records
    assert local[2]["frames"] == 32 and len(local[0]) > 0
    for name in ("frame_id", "track_id", "xy", "box_xywh"):
        np.testing.assert_array_equal(getattr(local[0], name), getattr(on_ray[0], name))
    assert not list((tmp_path / "ray").iterdir())  # its per-video CSVs are gone

    # As a user runs it: these clips are too short to adapt on, and --ray says so as adapt does.
    adapt = ["adapt", clips, "--out", tmp_path / "cam", *model_args(video_assets)]
    assert_one_line(trajpred(*adapt, "--ray"), "too few windows")
    done = trajpred(*adapt, "--tracks", tmp_path / "t.csv", "--ray")
    assert_one_line(done, "--ray", "--tracks")


# ---------------------------------------------------------------- faults: driver, disk


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow
def test_a_killed_driver_resumes_where_it_stopped(
    ray_cluster, video_assets, clips, local_outputs, trajpred, tmp_path
):
    """SIGKILL of the driver (it joined the cluster, `--ray auto`) once the first video is
    recorded: the same command again runs only the others, and every video ends the same bytes
    as a local run, the annotated video included (one task at a time, so that the kill is
    mid-run). Then the command again: nothing runs, nothing is touched; a video whose outputs
    went missing runs again."""
    address = ray_cluster.get_runtime_context().gcs_address
    out = tmp_path / "out"
    args = [a for a in predict(video_assets, clips, out) if a != "--no-video"]
    command = [*args, "--ray", "auto", "--set", "ray.num_cpus=2"]
    # `auto` finds the cluster as on a cluster's node: RAY_ADDRESS (Ray jobs set it) or the
    # address `ray start` records
    driver = start_trajpred(*command, env={"RAY_ADDRESS": address})
    wait_for(lambda: (out / "runs.csv").is_file(), driver)
    driver.kill()
    driver.communicate()
    first = runs(out)
    assert 1 <= len(first) < 3 and all(r["status"] == "done" for r in first.values()), first

    done = trajpred(*command)
    assert done.returncode == 0, done.stderr
    assert f"skipped {len(first)} of 3 videos" in done.stdout, done.stdout
    assert f"{3 - len(first)} of {3 - len(first)} videos done, 0 failed" in done.stdout
    index = runs(out)
    assert [index[v]["frames"] for v in ("a.mp4", "b.mp4", "c.mp4")] == ["14", "10", "8"]
    assert all(r["status"] == "done" and r["error"] == "" for r in index.values())
    assert_same_csvs(out, local_outputs, files=(*CSVS, "config.yaml", "annotated.mp4"))
    assert not list(out.glob(".ray-staging-*")) and not list(out.rglob(".*partial*"))

    # The same command again: nothing runs, nothing is touched.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    done = trajpred(*command)
    assert done.returncode == 0 and "skipped 3 of 3 videos" in done.stdout, done.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before

    # A video whose outputs went missing runs again.
    (out / "b" / "tracks.csv").unlink()
    done = trajpred(*command)
    assert "skipped 2 of 3" in done.stdout and "1 of 1 videos done" in done.stdout
    assert_same_csvs(out, local_outputs)
    summary = trajpred("summary", out)
    assert summary.returncode == 0 and "3 videos (3 done, 0 failed), 32 frames" in summary.stdout


@pytest.mark.slow
def test_a_full_disk_fails_its_video_alone(
    ray_cluster, video_assets, clips, local_outputs, trajpred, tmp_path
):
    """The disk fills while one video is written (a long one, on a small tmpfs): that video is
    recorded as failed with the file and the reason, nothing of it is left, and the videos
    before and after it complete (the rerun that then finishes it is the killed driver's)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs")
    mount = ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("this machine does not let the test mount a tmpfs")
    try:
        clip(video_assets, tmp_path / "long.mp4", 120)
        listing = tmp_path / "videos.txt"
        listing.write_text(f"{clips / 'a.mp4'}\nlong.mp4\n{clips / 'c.mp4'}\n")
        out = disk / "out"
        # one video at a time, and room for about the short ones' outputs only
        command = predict(video_assets, listing, out, "--ray", "--set", "ray.num_cpus=2")
        out.mkdir()
        short = sum(  # what a and c write (about), a tenth of what the long video does
            (local_outputs / name / file).stat().st_size + 4096 for name in "ac" for file in CSVS
        )
        with open(disk / "filler", "wb") as f:
            f.write(b"\0" * (shutil.disk_usage(disk).free - 2 * short - 64_000))
        done = trajpred(*command)
        assert done.returncode == 2, done.stdout + done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert "long.mp4" in last and "No space left on device" in last, done.stderr
        assert any(name in last for name in CSVS), last
        index = runs(out)
        assert index["long.mp4"]["status"] == "failed" and "No space" in index["long.mp4"]["error"]
        assert index["a.mp4"]["status"] == index["c.mp4"]["status"] == "done"
        assert_same_csvs(out, local_outputs, ("a", "c"))
        assert not (out / "long").exists() and not list(out.glob(".ray-staging-*"))

    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# ---------------------------------------------------------------- streams: long-lived actors


class StreamServer:
    """A stream over TCP on this machine (tcp://127.0.0.1:PORT): each connection gets the
    bytes of an MJPEG AVI of the test scene, `pause` seconds between 16 kB pieces (a live
    camera's pace), then the stream ends."""

    def __init__(self, video_assets, folder: Path, frames: int, pause: float = 0.0):
        import socket
        import threading

        import cv2

        path = folder / f"stream{frames}.avi"
        cap = cv2.VideoCapture(str(clip(video_assets, folder / f"stream{frames}.mp4", frames)))
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 192))
        while (frame := cap.read()[1]) is not None:
            writer.write(frame)
        writer.release()
        self.data, self.pause = path.read_bytes(), pause
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self.socket.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            threading.Thread(target=self._send, args=(connection,), daemon=True).start()

    def _send(self, connection) -> None:
        with connection, contextlib.suppress(OSError):
            for start in range(0, len(self.data), 16_000):
                connection.sendall(self.data[start : start + 16_000])
                time.sleep(self.pause)

    def close(self) -> None:
        self.socket.close()


@pytest.mark.slow
def test_a_stream_is_an_actor_that_restarts_and_stops_on_ctrl_c(
    ray_cluster, video_assets, tmp_path
):
    """A (slow, live) stream URL in the list runs as one actor. Its worker killed at frame 5, the
    actor starts again and reads the stream anew; Ctrl-C in the driver then ends the stream
    after its frame: its outputs are published, runs.csv records it as stopped, and neither
    attempt leaves a staging folder."""
    server = StreamServer(video_assets, tmp_path, 300, pause=0.05)
    listing = tmp_path / "cameras.txt"
    listing.write_text(f"# one camera\n{server.url}\n")
    marker, out = tmp_path / "killed", tmp_path / "out"
    address = ray_cluster.get_runtime_context().gcs_address
    try:
        driver = start_trajpred(
            *predict(video_assets, listing, out, "--ray", address),
            env={"TRAJPRED_TEST_KILL_AT_FRAME": f"5:{marker}"},
        )
        # the restarted actor's staging has tracks
        wait_for(lambda: marker.exists() and any(out.glob(".ray-staging-*/*tracks*")), driver)
        time.sleep(1.0)
        driver.send_signal(signal.SIGINT)
        stdout, stderr = driver.communicate(timeout=60)
    finally:
        server.close()
    assert driver.returncode == 130, stdout + stderr
    assert "interrupted" in stderr.strip().splitlines()[-1] and "Traceback" not in stderr
    row = runs(out)[server.url.split("/")[-1]]
    assert row["video"] == server.url, row
    assert row["status"] == "stopped" and 0 < int(row["frames"]) < 300, row
    name = server.url.removeprefix("tcp://").replace(":", "_")  # OUT/127.0.0.1_PORT
    tracks = (out / name / "tracks.csv").read_text().splitlines()
    assert max(int(line.split(",")[0]) for line in tracks[1:]) <= int(row["frames"])
    assert (out / name / "config.yaml").is_file() and (out / name / "forecasts.csv").is_file()
    assert not list(out.glob(".ray-staging-*"))
