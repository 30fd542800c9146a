"""Training killed with SIGKILL at random moments resumes with --resume and loses nothing."""

import random
import re
import signal
import subprocess
import sys
import time

import pytest

from trajpred.checkpoint import load_checkpoint
from trajpred.outputs import LOCK_NAME

pytestmark = pytest.mark.slow  # training in a subprocess, killed and resumed

EPOCHS = 40
CHECKPOINTS = {"best.pt", "last.pt"}
OUTPUTS = CHECKPOINTS | {"log.csv", "config.yaml"}
TEMPORARY = re.compile(r"\.(best|last|log\.csv|config\.yaml)\.[^.]+\.tmp(\.pt)?")


def test_sigkill_at_random_points_then_resume(eth_ucy_like_root, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "trajpred",
        "train",
        "--no-progress",
        "--out",
        str(out),
        "--resume",
        "--set",
        f"data.root={eth_ucy_like_root}",
        "data.test_scene=toy",
        f"train.epochs={EPOCHS}",
        "train.patience=100",
        "model.hidden_size=32",
        "model.embed_size=16",
        "model.num_modes=4",
        "train.batch_size=32",
        "train.threads=1",
    ]
    rng = random.Random(1234)
    kills = 0
    for _ in range(3):
        before = load_checkpoint(out / "last.pt")["epoch"] if (out / "last.pt").exists() else 0
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Kill at a random moment once this run has made progress (mid-epoch or mid-write).
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if (out / "last.pt").exists() and load_checkpoint(out / "last.pt")["epoch"] > before:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        err = proc.stderr.read().decode(errors="replace")
        assert proc.returncode == -signal.SIGKILL, (
            f"training ended on its own ({proc.returncode}): {err[-1500:]}"
        )
        # A kill mid-write can leave only the atomic writers' hidden temporaries beside the
        # outputs (".last.<random>.tmp.pt", ".log.csv.<random>.tmp"); the next run removes them.
        # The killed run's lock file stays too; the next run takes it over.
        names = {p.name for p in out.iterdir()}
        assert names - {n for n in names if TEMPORARY.fullmatch(n)} <= OUTPUTS | {LOCK_NAME}, names
        for name in CHECKPOINTS & names:  # every checkpoint left behind loads
            state = load_checkpoint(out / name)
            assert 1 <= state["epoch"] <= EPOCHS
    assert kills == 3, "training finished before it could be interrupted; the test proved nothing"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == EPOCHS
    assert [h["epoch"] for h in last["history"]] == list(range(1, EPOCHS + 1))
    assert not list(out.glob(".*tmp*")), "temporary files left behind"
