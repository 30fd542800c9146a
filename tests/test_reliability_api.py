"""The Python API keeps the CLI's promises: `trajpred.Forecaster` and `trajpred.evaluate` check
every argument by the rules the CLI applies to the same setting (one function for both), raise
a ValueError that is also a TrajpredError and names the argument, and never hand out a NaN.
Also: a video write that fails (a full disk) is one line of ours, without OpenCV's own.
"""

from __future__ import annotations

import pytest

import trajpred
from trajpred.cli import main
from trajpred.demo import untrained_checkpoint
from trajpred.errors import TrajpredError


def refused(call, argument: str, *words: str) -> str:
    """`call()` raises a ValueError that is a TrajpredError (one line in the CLI), whose message
    starts with the argument's name and holds `words`; returns the message."""
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert isinstance(caught.value, TrajpredError), repr(caught.value)
    assert message.startswith(f"{argument} "), message
    assert "\n" not in message and len(message) <= 300, message
    for word in words:
        assert word in message, message
    return message


# ---------------------------------------------------------------- trajpred.evaluate


@pytest.mark.parametrize(
    "kwargs, argument, words",
    [
        ({"k": -1}, "k", "[0, 100]"),  # returned a score
        ({"k": 2.5}, "k", "integer"),  # a TypeError about slices
        ({"k": 101}, "k", "[0, 100]"),  # accepted; the CLI's cap is MAX_K = 100
        ({"kde_windows": -1}, "kde_windows", ">= 0"),
        ({"fps": -1.0}, "fps", "[0, 1000]"),
        ({"fmt": "xml"}, "fmt", "'xml'"),
        ({"calibration": "live"}, "calibration", "'online' or 'fixed'"),
        ({"scene": 3}, "scene", "str"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_evaluate_arguments_follow_the_cli_rules(kwargs, argument, words, eth_ucy_like_root):
    args = {"checkpoint": untrained_checkpoint(eth_ucy_like_root / "c.pt")}
    args |= {"data": str(eth_ucy_like_root), "scene": "toy", "k": 0, "kde_windows": 10}
    refused(lambda: trajpred.evaluate(**{**args, **kwargs}), argument, *words)


def test_the_evaluate_command_checks_its_flags_with_the_same_rules(
    tmp_path, capfd, eth_ucy_like_root
):
    """`trajpred evaluate --k 101` ran (its only check was --k >= 0); now the API's rule, named
    as the flag, before any file is read."""
    ckpt = untrained_checkpoint(tmp_path / "c.pt")
    base = ["evaluate", "--checkpoint", ckpt, "--data", eth_ucy_like_root, "--scene", "toy"]
    for flag, value, words in (
        ("--k", "101", "--k must be an integer in [0, 100], got 101"),
        ("--kde-windows", "-1", "--kde-windows must be an integer >= 0, got -1"),
        ("--fps", "1e9", "--fps must be in [0, 1000], got 1000000000.0"),
    ):
        try:
            code = main([str(a) for a in [*base, flag, value]])
        except SystemExit as e:
            code = e.code
        err = capfd.readouterr().err
        assert code == 2 and err.count("\n") == 1 and words in err, err
