"""`trajpred adapt` keeps the promises of the other commands: no output over an input (also any
file inside the folders it writes: OUT and OUT/train), and a run that fails, is refused or is
stopped (Ctrl-C, SIGTERM) leaves every file of an earlier run byte for byte, with no new file
visible; a run that succeeds replaces train/ as a whole, so that it matches its report.

The in-process tests stand in a fake `trajpred.adapt.adapt` (it writes into its work folder,
then fails or returns) so that they need no training; the slow ones stop the real CLI.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import assert_one_line, build_tracks, clip, start_trajpred
from test_reliability_cli import terminate_when

from trajpred.adapt import AdaptReport, ArmScore
from trajpred.checkpoint import load_checkpoint, load_forecaster
from trajpred.errors import TrajpredError
from trajpred.formats import write_csv

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "checkpoints" / "video.pt"


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (hidden ones too) and folder below `folder`, files with their bytes."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def camera_tracks(path: Path, n_frames: int = 400) -> Path:
    """Pixel tracks with boxes, enough for adapt's windows at 10 fps (400 frames: 40 s)."""
    tracks = build_tracks(n_tracks=10, n_frames=n_frames, units="px", with_boxes=True)
    tracks.xy *= 10.0
    write_csv(path, tracks)
    return path


def earlier_run(out: Path) -> dict[str, bytes | None]:
    """The files an earlier adapt left in `out` (stand-ins); their snapshot."""
    (out / "train" / "fold3").mkdir(parents=True)
    (out / "adapted.pt").write_bytes(b"the earlier model")
    (out / "report.json").write_text('{"earlier": true}\n')
    (out / "train" / "best.pt").write_bytes(b"the earlier fine-tune")
    (out / "train" / "log.csv").write_text("epoch\n1\n")
    (out / "train" / "fold3" / "best.pt").write_bytes(b"an earlier --average fine-tune")
    return snapshot(out)


def fake_adapt(fail: BaseException | None = None):
    """A stand-in for trajpred.adapt.adapt: writes into its work folder as the real one does
    (checkpoints, a fold, a config that names the folder), then raises `fail` or returns."""

    def adapt(tracks, fps, work_dir, cfg, progress=True, **_):
        work_dir = Path(work_dir)
        (work_dir / "fold0").mkdir(parents=True, exist_ok=True)
        (work_dir / "best.pt").write_bytes(b"the new fine-tune")
        (work_dir / "fold0" / "best.pt").write_bytes(b"a new fold")
        (work_dir / "config.yaml").write_text(f"train:\n  out_dir: {work_dir}\n")
        if fail is not None:
            raise fail
        scores = [ArmScore("starting model", 2.0, 3.0), ArmScore("adapted model", 1.0, 2.0)]
        report = AdaptReport("px", fps, 100, 20, scores, True, 1, 0.1)
        payload = load_checkpoint(SHIPPED)
        return report, {k: v for k, v in payload.items() if k not in ("format", "version")}

    return adapt


# ---------------------------------------------------------------- no output over an input


@pytest.mark.parametrize(
    "flag, name",
    [
        ("--checkpoint", "train/best.pt"),  # restart from the earlier fine-tune
        ("--tracks", "train/train.csv"),  # the split an earlier run trained on
        ("--checkpoint", "link.pt"),  # a symlink outside OUT to train/start.pt
    ],
)
def test_adapt_refuses_an_input_inside_the_folders_it_writes(flag, name, tmp_path, trajpred):
    out = tmp_path / "out"
    (out / "train").mkdir(parents=True)
    shutil.copyfile(SHIPPED, out / "train" / "best.pt")
    shutil.copyfile(SHIPPED, out / "train" / "start.pt")
    camera_tracks(out / "train" / "train.csv")
    (tmp_path / "link.pt").symlink_to(out / "train" / "start.pt")
    tracks = camera_tracks(tmp_path / "tracks.csv")
    given = out / name if name.startswith("train/") else tmp_path / name
    args = {"--tracks": tracks, "--checkpoint": SHIPPED, flag: given}
    before = snapshot(out)
    done = trajpred(
        "adapt", "--tracks", args["--tracks"], "--checkpoint", args["--checkpoint"], "--fps", 10,
        "--out", out, "--epochs", 1, "--no-progress",
    )  # fmt: skip
    assert_one_line(done, str(given), "is an input of this command")
    assert snapshot(out) == before  # the input and everything else as it was


# ---------------------------------------------------------------- a refused run writes nothing


@pytest.mark.parametrize("problem", ["too few windows", "malformed tracks"])
def test_a_refused_adapt_leaves_no_train_folder(problem, tmp_path, trajpred):
    tracks = tmp_path / "tracks.csv"
    if problem == "too few windows":
        camera_tracks(tracks, n_frames=40)  # 4 s: no track lasts one window
    else:
        tracks.write_text("frame,track_id,x,y\n1,0,zero,0\n")
    out = tmp_path / "out"
    done = trajpred("adapt", "--tracks", tracks, "--fps", 10, "--out", out, "--no-progress")
    assert_one_line(done, "tracks.csv" if problem != "too few windows" else problem)
    assert snapshot(out) == {}  # no train/, no partial file, no lock


# ---------------------------------------------------------------- earlier results stay


@pytest.mark.parametrize(
    "fail, code",
    [(TrajpredError("the fine-tune failed"), 2), (KeyboardInterrupt(), 130)],
    ids=["error", "ctrl-c"],
)
def test_a_failed_adapt_leaves_the_earlier_run_as_it_was(
    fail, code, tmp_path, trajpred, monkeypatch
):
    monkeypatch.setattr("trajpred.adapt.adapt", fake_adapt(fail))
    out = tmp_path / "out"
    before = earlier_run(out)
    tracks = camera_tracks(tmp_path / "tracks.csv")
    done = trajpred("adapt", "--tracks", tracks, "--fps", 10, "--out", out, "--no-progress")
    assert_one_line(done, code=code)
    assert snapshot(out) == before  # train/ too, byte for byte, and nothing hidden left


def test_a_failed_save_leaves_the_earlier_run_as_it_was(tmp_path, trajpred, monkeypatch):
    from trajpred.errors import OutputError

    def full_disk(path, payload):
        raise OutputError(path, "cannot write (No space left on device)")

    monkeypatch.setattr("trajpred.adapt.adapt", fake_adapt())
    monkeypatch.setattr("trajpred.checkpoint.save_checkpoint", full_disk)
    out = tmp_path / "out"
    before = earlier_run(out)
    tracks = camera_tracks(tmp_path / "tracks.csv")
    done = trajpred("adapt", "--tracks", tracks, "--fps", 10, "--out", out, "--no-progress")
    assert_one_line(done, "adapted.pt", "No space left on device")
    assert snapshot(out) == before


def test_a_successful_adapt_replaces_train_as_a_whole(tmp_path, trajpred, monkeypatch):
    monkeypatch.setattr("trajpred.adapt.adapt", fake_adapt())
    out = tmp_path / "out"
    earlier_run(out)
    tracks = camera_tracks(tmp_path / "tracks.csv")
    done = trajpred("adapt", "--tracks", tracks, "--fps", 10, "--out", out, "--no-progress")
    assert done.returncode == 0, done.stderr
    after = snapshot(out)
    # train/ is this run's only (the earlier run's fold3/ and log.csv are gone with it), and no
    # partial file or lock is left beside the results.
    assert sorted(after) == [
        "adapted.pt", "report.json", "tracks.csv", "train", "train/best.pt", "train/config.yaml",
        "train/fold0", "train/fold0/best.pt",
    ]  # fmt: skip
    assert after["train/best.pt"] == b"the new fine-tune"
    assert after["train/config.yaml"].decode() == f"train:\n  out_dir: {out / 'train'}\n"
    load_forecaster(out / "adapted.pt")


# ---------------------------------------------------------------- SIGTERM


def start(*args) -> subprocess.Popen:
    """The CLI in its own process group, as a service manager starts it."""
    return start_trajpred(*args, env={"OMP_NUM_THREADS": "1"}, new_session=True)


def written(out: Path, name: str, rows: int = 0) -> bool:
    """A file `name` (under any folder below `out`, hidden ones too) with more than `rows` lines."""
    for p in out.rglob(name):
        try:
            if p.read_text().count("\n") > rows:
                return True
        except OSError:
            pass
    return False


@pytest.mark.slow  # the CLI in a subprocess
def test_sigterm_while_adapt_trains_leaves_the_earlier_run_as_it_was(tmp_path):
    out = tmp_path / "out"
    before = earlier_run(out)
    tracks = camera_tracks(tmp_path / "tracks.csv")
    proc = start("adapt", "--tracks", tracks, "--fps", 10, "--out", out, "--no-progress")
    stderr = terminate_when(proc, lambda: written(out, "val.csv"))  # the fine-tune starts
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines() == ["trajpred adapt: terminated"], stderr
    assert snapshot(out) == before


@pytest.mark.slow  # the CLI in a subprocess, with the detector
def test_sigterm_while_adapt_tracks_leaves_no_tracks_file(tmp_path, video_assets):
    video = clip(video_assets, tmp_path / "long.mp4", 600)
    out = tmp_path / "out"
    before = earlier_run(out)
    proc = start(
        "adapt", video, "--out", out, "--weights", video_assets.weights, "--imgsz",
        video_assets.imgsz, "--device", "cpu", "--no-progress",
    )  # fmt: skip
    stderr = terminate_when(proc, lambda: written(out, ".tracks_0.partial.csv", 20))
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "trajpred adapt: terminated" in stderr, stderr
    assert snapshot(out) == before  # no train/tracks_0.csv
