"""The environment fails, the tool does not: a full disk or a read-only file system in the middle
of a run, SIGTERM, and library noise, each met by the real CLI in a subprocess.

A full disk is real where the test may mount a small tmpfs (as root); elsewhere the same writes
are made to fail by a file size limit (RLIMIT_FSIZE, so the kernel answers EFBIG instead of
ENOSPC). Either way: one line naming the file, exit code 2, earlier results intact. A read-only
file system is a tmpfs remounted read-only, elsewhere a folder without write permission (root
bypasses those: its run then drops the capability that lets it, with setpriv).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from conftest import clip, start_trajpred

from trajpred.checkpoint import load_checkpoint
from trajpred.formats import read_csv

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


class SmallDisk:
    """A folder whose file system can be filled on demand (`fill(leave)`): a tmpfs mounted for
    the test where that is allowed, else a limit on the size of any file the CLI writes."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.limit: int | None = None
        self.prefix: list[str] = []  # before the CLI's command line
        self.mounted = (
            "TRAJPRED_TEST_NO_TMPFS" not in os.environ  # to try the fallback where root
            and os.geteuid() == 0
            and shutil.which("mount") is not None
            and subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)],
                capture_output=True,
            ).returncode
            == 0
        )

    def fill(self, leave: int) -> None:
        """Leave about `leave` bytes that can still be written."""
        if self.mounted:
            free = shutil.disk_usage(self.folder).free
            with open(self.folder / "filler", "wb") as f:
                f.write(b"\0" * max(free - leave, 0))
        else:
            self.limit = leave

    def read_only(self) -> str:
        """Make the folder unwritable for the CLI; the reason it will be given."""
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(self.folder)], check=True)
            return "Read-only file system"
        self.folder.chmod(0o555)
        if os.geteuid() == 0:  # root writes anywhere, unless it runs without CAP_DAC_OVERRIDE
            if shutil.which("setpriv") is None:
                pytest.skip("as root, a read-only folder needs a mountable tmpfs or setpriv")
            self.prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
        return "Permission denied"

    def fill_while(self, when, *args, leave: int, timeout=240) -> subprocess.CompletedProcess:
        """Run the CLI and leave `leave` bytes once `when()` (the run is writing): a tmpfs is
        filled, else the file size limit is set on the run's processes as they are. (A limit
        from the start would also refuse the shared memory predict passes frames through.)"""
        proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "trajpred", *map(str, args)],
            cwd=ROOT, env={**os.environ, "YOLO_OFFLINE": "1"}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not when():
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the disk could be filled"
        if self.mounted:
            self.fill(leave)
        else:  # Python ignores SIGXFSZ: a write past the limit fails with EFBIG
            for pid in (proc.pid, *descendants(proc.pid)):
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (leave, leave))
        stdout, stderr = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)

    def _limit_file_size(self) -> None:  # runs in the child, before exec
        if self.limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self.limit))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a fatal signal

    def run(self, *args, timeout=240) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.prefix, sys.executable, "-m", "trajpred", *map(str, args)],
            cwd=ROOT,
            env={**os.environ, "YOLO_OFFLINE": "1"},
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=self._limit_file_size,
        )


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # "pid (name) state ppid ...": the name may hold spaces
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
    found, todo = [], [pid]
    while todo:
        pid = todo.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found += children
        todo += children
    return found


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    folder.mkdir()
    disk = SmallDisk(folder)
    yield disk
    if disk.mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    folder.chmod(0o755)  # after read_only(), so that the folder can be removed


def assert_write_error(done, *names):
    """One line, exit 2, naming one of `names` and saying the write failed."""
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "cannot write" in lines[0] and any(n in lines[0] for n in names), lines[0]
    assert "No space left on device" in lines[0] or "too large" in lines[0].lower(), lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def detector_args(assets) -> list[str]:
    args = ["--weights", assets.weights, "--imgsz", assets.imgsz, "--device", "cpu"]
    return [*map(str, args), "--no-progress"]


PREDICT_FILES = ("annotated.mp4", "tracks.csv", "tracks_mot.txt", "forecasts.csv", "config.yaml")
TRAIN = ["model.hidden_size=16", "model.embed_size=8", "model.num_modes=2", "train.threads=1"]


# ---------------------------------------------------------------- a full disk, a read-only one


def test_predict_on_a_full_disk_keeps_the_earlier_outputs(small_disk, video_assets):
    out = small_disk.folder / "out"
    ckpt = ["--checkpoint", video_assets.checkpoint, *detector_args(video_assets)]
    short = clip(video_assets, small_disk.folder.parent / "short.mp4", 8)
    first = small_disk.run("predict", short, "--out", out, *ckpt)
    assert first.returncode == 0, first.stderr
    before = snapshot(out)
    assert sorted(before) == sorted(PREDICT_FILES)
    long = clip(video_assets, small_disk.folder.parent / "long.mp4", 300)
    done = small_disk.fill_while(
        lambda: rows(out / ".tracks.partial.csv") > 2, "predict", long, "--out", out, *ckpt,
        leave=16_000,
    )  # fmt: skip
    assert_write_error(done, *PREDICT_FILES)
    assert snapshot(out) == before  # nothing replaced, no partial file, no lock left


def test_track_on_a_full_disk_keeps_the_earlier_csv(small_disk, video_assets):
    csv = small_disk.folder / "tracks.csv"
    short = clip(video_assets, small_disk.folder.parent / "short.mp4", 8)
    first = small_disk.run("track", short, "--out", csv, *detector_args(video_assets))
    assert first.returncode == 0, first.stderr
    before = csv.read_bytes()
    long = clip(video_assets, small_disk.folder.parent / "long.mp4", 120)
    small_disk.fill(leave=16_000)
    done = small_disk.run("track", long, "--out", csv, *detector_args(video_assets))
    assert_write_error(done, "tracks.csv")
    assert csv.read_bytes() == before
    assert {p.name for p in small_disk.folder.iterdir()} - {"filler"} == {"tracks.csv"}


def test_train_and_evaluate_on_a_full_disk_keep_loadable_checkpoints(small_disk, eth_ucy_like_root):
    run = small_disk.folder / "run"
    data = [f"data.root={eth_ucy_like_root}", "data.test_scene=toy", *TRAIN]
    first = small_disk.run("train", "--no-progress", "--out", run, "--set", *data, "train.epochs=1")
    assert first.returncode == 0, first.stderr
    before = snapshot(run)
    small_disk.fill(leave=12_000)  # a few pages (tmpfs counts whole pages): no checkpoint
    done = small_disk.run(
        "train", "--no-progress", "--out", run, "--resume", "--set", *data, "train.epochs=3"
    )
    assert_write_error(done, "last.pt", "best.pt", "log.csv")
    assert snapshot(run) == before
    assert load_checkpoint(run / "last.pt")["epoch"] == 1

    metrics = small_disk.folder / "metrics.json"
    metrics.write_text("{}\n")
    done = small_disk.run(
        "evaluate", "--checkpoint", run / "best.pt", "--data", eth_ucy_like_root, "--scene",
        "toy", "--k", "0", "--json", metrics, "--save-predictions", small_disk.folder / "p.csv",
    )  # fmt: skip
    assert_write_error(done, "p.csv", "metrics.json")
    assert metrics.read_text() == "{}\n" and not (small_disk.folder / "p.csv").exists()


def test_a_read_only_file_system_is_one_line(small_disk, eth_ucy_like_root):
    (small_disk.folder / "kept.txt").write_text("earlier")
    why = small_disk.read_only()
    for args in (
        ["synth", "--out", small_disk.folder / "scene", "--duration", "1"],
        ["synth", "--out", small_disk.folder, "--duration", "1"],
        ["train", "--out", small_disk.folder / "run", "--set", f"data.root={eth_ucy_like_root}"],
    ):
        done = small_disk.run(*args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert why in done.stderr, done.stderr
    assert (small_disk.folder / "kept.txt").read_text() == "earlier"


# ---------------------------------------------------------------- SIGTERM ends like Ctrl-C


def start(*args) -> subprocess.Popen:
    """The CLI in its own process group, as a service manager starts it."""
    return start_trajpred(*args, new_session=True)


def terminate_when(proc: subprocess.Popen, ready) -> str:
    """SIGTERM to the whole process group (systemd, `docker stop` with an init) once `ready()`;
    returns stderr."""
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be stopped"
    os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    return stderr


def rows(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def test_sigterm_stops_predict_and_track_like_ctrl_c(tmp_path, video_assets):
    video = clip(video_assets, tmp_path / "long.mp4", 600)
    out = tmp_path / "out"
    proc = start(
        "predict", video, "--out", out, "--checkpoint", video_assets.checkpoint,
        *detector_args(video_assets),
    )  # fmt: skip
    stderr = terminate_when(proc, lambda: rows(out / ".tracks.partial.csv") > 40)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "leaked" not in stderr, stderr
    assert "interrupted after" in stderr and "trajpred predict: terminated" in stderr, stderr
    n = frame_count(out / "annotated.mp4")
    assert 0 < n < 600 and read_csv(out / "tracks.csv").frame_id.max() <= n
    for name in PREDICT_FILES:
        assert (out / name).read_text(errors="replace").endswith("\n") or name.endswith(".mp4")
    assert sorted(p.name for p in out.iterdir()) == sorted(PREDICT_FILES)  # no partial, no lock

    csv = tmp_path / "tracks.csv"
    proc = start("track", video, "--out", csv, *detector_args(video_assets))
    stderr = terminate_when(proc, lambda: rows(tmp_path / ".tracks.partial.csv") > 40)
    assert proc.returncode == 143, stderr
    assert "interrupted after" in stderr and "Traceback" not in stderr, stderr
    tracks = read_csv(csv)  # complete rows: it reads
    assert len(tracks) > 30 and csv.read_text().endswith("\n")
    assert not list(tmp_path.glob(".*"))


def test_sigterm_stops_train_with_checkpoints_that_resume(tmp_path, eth_ucy_like_root):
    run = tmp_path / "run"
    data = ["--set", f"data.root={eth_ucy_like_root}", "data.test_scene=toy", *TRAIN]
    proc = start("train", "--no-progress", "--out", run, *data, "train.epochs=500")
    stderr = terminate_when(proc, lambda: (run / "last.pt").exists())
    assert proc.returncode == 143, stderr
    assert "trajpred train: terminated" in stderr and "Traceback" not in stderr, stderr
    epoch = load_checkpoint(run / "last.pt")["epoch"]
    load_checkpoint(run / "best.pt")
    done = subprocess.run(
        [sys.executable, "-m", "trajpred", "train", "--no-progress", "--out", run, "--resume",
         *data, f"train.epochs={epoch + 1}"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(run / "last.pt")["epoch"] == epoch + 1


# ---------------------------------------------------------------- library noise


def test_library_noise_stays_off_the_terminal(tmp_path, video_assets):
    absent_webcam = subprocess.run(
        [sys.executable, "-m", "trajpred", "predict", "7", "--out", tmp_path / "o",
         *detector_args(video_assets)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert absent_webcam.returncode == 2 and absent_webcam.stderr.count("\n") == 1
    assert "no webcam with index 7" in absent_webcam.stderr, absent_webcam.stderr
    # An --imgsz that is no multiple of the stride: one line of ours, not one per frame.
    short = clip(video_assets, tmp_path / "short.mp4", 12)
    done = subprocess.run(
        [sys.executable, "-m", "trajpred", "track", short, "--out", tmp_path / "t.csv",
         "--weights", video_assets.weights, "--imgsz", "100", "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "YOLO_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [
        "trajpred track: warning: imgsz 100 is not a multiple of the detector's stride 32; "
        "using 128"
    ], done.stderr
