"""The console script as a user runs it: help with defaults, one-line errors, exit code 2."""

import subprocess
import sys

import pytest

from trajpred.cli import COMMANDS

pytestmark = pytest.mark.slow  # every test runs the console script in a subprocess


def trajpred(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "trajpred", *args], capture_output=True, text=True, timeout=timeout
    )


def test_top_level_help_lists_every_command():
    done = trajpred("--help")
    assert done.returncode == 0
    for name in COMMANDS:
        assert name in done.stdout


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_has_help_with_defaults(command):
    done = trajpred(command, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: trajpred " + command in done.stdout
    assert "(default:" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["train", "--no-such-flag"],
        ["evaluate"],
        ["evaluate", "--checkpoint", "x.pt", "--k", "many"],
    ],
)
def test_bad_arguments_are_one_line_exit_2(args):
    done = trajpred(*args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_user_errors_are_one_line_exit_2(tmp_path):
    done = trajpred(
        "evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--data", str(tmp_path)
    )
    assert done.returncode == 2
    assert (
        "missing.pt" in done.stderr
        and done.stderr.count("\n") == 1
        and "Traceback" not in done.stderr
    )
    done = trajpred("train", "--set", "train.lrr=1")
    assert done.returncode == 2 and "did you mean 'train.lr'" in done.stderr
