"""Property tests: readers raise only InputError on any bytes; writers round trip any valid
Tracks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from trajpred.errors import InputError
from trajpred.formats import (
    MAX_COORD,
    read_csv,
    read_eth_ucy,
    read_mot,
    read_tracks,
    write_csv,
    write_eth_ucy,
    write_mot,
)
from trajpred.tracks import Tracks, bottom_centre

READERS = {"eth_ucy": read_eth_ucy, "mot": read_mot, "csv": read_csv, "auto": read_tracks}
# Module-scoped folders are shared by every example; each example overwrites the same file.
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("formats_property")


def only_input_errors(reader, path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        reader(path)
    except InputError as e:
        assert "\n" not in str(e)


# Cells that reach deep into the parsers: numbers, bad numbers, header names, units.
TOKENS = st.sampled_from(
    [
        "1",
        "0",
        "-1",
        "2.5",
        "780.0",
        "1e400",
        "9007199254740993",
        "nan",
        "-inf",
        "",
        " ",
        "x",
        "1_0",
        "\u0661",
        "\u2028",
        "frame",
        "track_id",
        "y",
        "left",
        "top",
        "width",
        "height",
        "class_id",
        "conf",
        "units",
        "m",
        "px",
        '"m"',
    ]
)
LINE = st.tuples(st.lists(TOKENS, max_size=12), st.sampled_from([",", "\t", " "])).map(
    lambda cells_sep: cells_sep[1].join(cells_sep[0])
)
TEXT = st.tuples(st.lists(LINE, max_size=8), st.sampled_from(["\n", "\r\n"])).map(
    lambda lines_end: lines_end[1].join(lines_end[0]).encode()
)


@pytest.mark.parametrize("fmt", list(READERS))
@SETTINGS
@given(data=st.binary(max_size=200))
def test_random_bytes_raise_only_input_error(workdir, fmt, data):
    only_input_errors(READERS[fmt], workdir / f"random_{fmt}.txt", data)


@pytest.mark.parametrize("fmt", list(READERS))
@SETTINGS
@given(data=TEXT, suffix=st.sampled_from([".txt", ".csv"]))
def test_random_table_text_raises_only_input_error(workdir, fmt, data, suffix):
    only_input_errors(READERS[fmt], workdir / f"table_{fmt}{suffix}", data)


# ---------------------------------------------------------------- round trips

FINITE = st.floats(allow_nan=False, allow_infinity=False)  # the whole float64 range, with -0.0
COORD = st.floats(-MAX_COORD, MAX_COORD, allow_nan=False)  # every coordinate a file may hold
SIZE = st.floats(0, 1e4, allow_nan=False)


@st.composite
def tracks_strategy(draw, fmt: str) -> Tracks:
    """Valid Tracks for `fmt`: unique (frame, id) keys, ids < 2**53, MOT frames from 1."""
    keys = draw(
        st.lists(
            st.tuples(st.integers(1 if fmt == "mot" else 0, 2**53 - 1), st.integers(0, 2**53 - 1)),
            min_size=1,
            max_size=20,
            unique=True,
        )
    )
    n = len(keys)
    frame_id, track_id = np.array(keys, dtype=np.int64).T
    conf = draw(arrays(np.float64, n, elements=st.floats(0, 1)))
    if fmt == "eth_ucy":
        return Tracks(frame_id, track_id, draw(arrays(np.float64, (n, 2), elements=COORD)))
    if fmt == "mot":
        box = np.concatenate(
            [
                draw(arrays(np.float64, (n, 2), elements=COORD)),
                draw(arrays(np.float64, (n, 2), elements=SIZE)),
            ],
            axis=1,
        )
        return Tracks(frame_id, track_id, bottom_centre(box), box, conf=conf, units="px")
    box = None
    if draw(st.booleans()):
        box = np.concatenate(
            [
                draw(arrays(np.float64, (n, 2), elements=COORD)),
                draw(arrays(np.float64, (n, 2), elements=st.floats(0, MAX_COORD))),
            ],
            axis=1,
        )
        no_box = draw(arrays(bool, n))
        no_box[0] = False  # a file with no box values at all reads back as box None
        box[no_box] = np.nan
    class_id = draw(arrays(np.int64, n, elements=st.integers(-1, 1000)))
    return Tracks(
        frame_id,
        track_id,
        draw(arrays(np.float64, (n, 2), elements=COORD)),
        box,
        class_id,
        draw(arrays(np.float64, n, elements=FINITE)),
        units=draw(st.sampled_from(["m", "px"])),
    )


def check_round_trip(write, read, path, tracks: Tracks, keeps_box: bool, keeps_class: bool):
    write(path, tracks)
    got, want = read(path), tracks.sorted()
    np.testing.assert_array_equal(got.frame_id, want.frame_id)
    np.testing.assert_array_equal(got.track_id, want.track_id)
    np.testing.assert_array_equal(got.xy, want.xy)
    assert got.units == want.units
    if keeps_box:
        np.testing.assert_array_equal(got.box_xywh, want.box_xywh)
        np.testing.assert_array_equal(got.conf, want.conf)
    if keeps_class:
        np.testing.assert_array_equal(got.class_id, want.class_id)


@SETTINGS
@given(tracks=tracks_strategy("eth_ucy"))
def test_eth_ucy_round_trip(workdir, tracks):
    check_round_trip(write_eth_ucy, read_eth_ucy, workdir / "rt.txt", tracks, False, False)


@SETTINGS
@given(tracks=tracks_strategy("mot"))
def test_mot_round_trip(workdir, tracks):
    check_round_trip(write_mot, read_mot, workdir / "rt_mot.txt", tracks, True, False)


@SETTINGS
@given(tracks=tracks_strategy("csv"))
def test_csv_round_trip(workdir, tracks):
    check_round_trip(write_csv, read_csv, workdir / "rt.csv", tracks, True, True)
    assert (read_csv(workdir / "rt.csv").box_xywh is None) == (tracks.box_xywh is None)
