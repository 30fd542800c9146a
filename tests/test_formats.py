"""Track file readers and writers: hand-written files, round trips, real data, and bad files."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest

from trajpred.errors import InputError, TrajpredError
from trajpred.formats import (
    CSV_COLUMNS,
    read_csv,
    read_eth_ucy,
    read_mot,
    read_tracks,
    write_csv,
    write_eth_ucy,
    write_mot,
    write_tracks,
)
from trajpred.tracks import Tracks


def assert_same_tracks(expected: Tracks, got: Tracks, *, box: bool = True, extras: bool = True):
    """Same rows in writer order (frame, then id); box/class/conf only where the format keeps
    them."""
    expected = expected.sorted()
    np.testing.assert_array_equal(got.frame_id, expected.frame_id)
    np.testing.assert_array_equal(got.track_id, expected.track_id)
    np.testing.assert_array_equal(got.xy, expected.xy)
    assert got.units == expected.units
    if box:
        if expected.box_xywh is None:
            assert got.box_xywh is None
        else:
            np.testing.assert_array_equal(got.box_xywh, expected.box_xywh)
    if extras:
        np.testing.assert_array_equal(got.class_id, expected.class_id)
        np.testing.assert_array_equal(got.conf, expected.conf)


# ---------------------------------------------------------------- ETH/UCY


def test_eth_ucy_reads_float_ids(tmp_path):
    path = tmp_path / "scene.txt"
    path.write_text("780.0\t1.0\t8.46\t3.59\n790.0\t1.0\t9.57\t3.79\n780.0\t2.0\t-1.5\t0.0\n")
    t = read_eth_ucy(path)
    assert t.frame_id.tolist() == [780, 790, 780]
    assert t.track_id.tolist() == [1, 1, 2]
    assert t.xy.tolist() == [[8.46, 3.59], [9.57, 3.79], [-1.5, 0.0]]
    assert (t.units, t.box_xywh, t.source) == ("m", None, "scene.txt")
    assert t.class_id.tolist() == [-1, -1, -1] and t.conf.tolist() == [1.0, 1.0, 1.0]


def test_eth_ucy_accepts_spaces_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "scene.txt"
    path.write_bytes(b"0 3  1.25 2\r\n\r\n10\t3\t1.5\t2\r\n")
    t = read_eth_ucy(path)
    assert t.frame_id.tolist() == [0, 10] and t.xy.tolist() == [[1.25, 2.0], [1.5, 2.0]]


def test_eth_ucy_writer_sorts_and_writes_integer_ids(tmp_path):
    tracks = Tracks([10, 0, 0], [1, 2, 1], [[0.1, 1 / 3], [1.5, -2.25], [8.46, 3.59]])
    path = tmp_path / "out.txt"
    write_eth_ucy(path, tracks)
    assert path.read_text() == (
        "0\t1\t8.46\t3.59\n0\t2\t1.5\t-2.25\n10\t1\t0.1\t0.3333333333333333\n"
    )


def test_eth_ucy_round_trip(tmp_path, make_tracks):
    tracks = make_tracks(n_tracks=4, n_frames=6, first_frame=0, frame_step=10)
    tracks.xy = tracks.xy / 3.0  # values that %.6g would not round trip
    write_eth_ucy(tmp_path / "a.txt", tracks)
    assert_same_tracks(tracks, read_eth_ucy(tmp_path / "a.txt"))


def test_eth_ucy_writer_refuses_pixels(tmp_path, make_tracks):
    with pytest.raises(TrajpredError, match="metres"):
        write_eth_ucy(tmp_path / "a.txt", make_tracks(units="px", with_boxes=True))
    assert not (tmp_path / "a.txt").exists()


# ---------------------------------------------------------------- MOTChallenge


def test_mot_reads_results_layout(tmp_path):
    path = tmp_path / "results.txt"
    path.write_text("1,7,100,50,20,40,0.9,-1,-1,-1\n2,7,102,50,20,40,0.8,-1,-1,-1\n")
    t = read_mot(path)
    assert t.xy.tolist() == [[110.0, 90.0], [112.0, 90.0]]  # bottom centre: left + w/2, top + h
    assert t.box_xywh.tolist() == [[100, 50, 20, 40], [102, 50, 20, 40]]
    assert t.conf.tolist() == [0.9, 0.8] and t.class_id.tolist() == [-1, -1]
    assert (t.units, t.source) == ("px", "results.txt")


def test_mot_reads_gt_layout_with_class_and_mark(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,10,4,8,1,1,0.8\n1,2,30,10,4,8,0,7,1\n2,1,11,10,4,8,1,1,0.5\n")
    t = read_mot(path)
    assert t.class_id.tolist() == [1, 7, 1] and t.conf.tolist() == [1.0, 0.0, 1.0]
    kept = read_mot(path, ignore_zero_conf=True)
    assert kept.track_id.tolist() == [1, 1] and kept.frame_id.tolist() == [1, 2]


def test_mot_writer_text(tmp_path):
    tracks = Tracks(
        [2, 1],
        [3, 3],
        [[12, 26], [13, 26]],
        [[8, 6, 8, 20], [7, 6, 12, 20]],
        class_id=[5, 5],
        conf=[0.5, 1.0],
        units="px",
    )
    path = tmp_path / "out.txt"
    write_mot(path, tracks)
    assert path.read_text() == (
        "1,3,7.0,6.0,12.0,20.0,1.0,-1,-1,-1\n2,3,8.0,6.0,8.0,20.0,0.5,-1,-1,-1\n"
    )


def test_mot_round_trip(tmp_path, make_tracks):
    tracks = make_tracks(units="px", with_boxes=True, first_frame=1)
    tracks.conf = np.linspace(0.1, 1.0, len(tracks))
    write_mot(tmp_path / "a.txt", tracks)
    got = read_mot(tmp_path / "a.txt")
    assert_same_tracks(tracks, got, extras=False)
    np.testing.assert_array_equal(got.conf, tracks.sorted().conf)
    assert (got.class_id == -1).all()  # the results layout has no class column


def test_mot_writer_needs_boxes_and_1_based_frames(tmp_path, make_tracks):
    with pytest.raises(TrajpredError, match="box"):
        write_mot(tmp_path / "a.txt", make_tracks())
    with pytest.raises(TrajpredError, match=">= 1"):
        write_mot(tmp_path / "a.txt", make_tracks(units="px", with_boxes=True, first_frame=0))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- trajpred CSV


def test_csv_round_trip_with_boxes_class_and_conf(tmp_path, make_tracks):
    tracks = make_tracks(units="px", with_boxes=True)
    tracks.box_xywh[1] = np.nan  # a row without a box
    tracks.class_id[:] = 2
    tracks.conf = np.linspace(0.0, 1.0, len(tracks)) / 7
    write_csv(tmp_path / "a.csv", tracks)
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    assert_same_tracks(tracks, read_csv(tmp_path / "a.csv"))


def test_csv_round_trip_without_boxes(tmp_path, make_tracks):
    tracks = make_tracks()
    write_csv(tmp_path / "a.csv", tracks)
    assert (tmp_path / "a.csv").read_text().splitlines()[1] == "1,0,0.0,0.0,,,,,-1,1.0,m"
    assert_same_tracks(tracks, read_csv(tmp_path / "a.csv"))


def test_csv_minimal_columns_in_any_order(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("y, x ,track_id,frame\n2.5,1.5,4,10\n")
    t = read_csv(path)
    assert (t.frame_id.tolist(), t.track_id.tolist(), t.xy.tolist()) == ([10], [4], [[1.5, 2.5]])
    assert (t.units, t.box_xywh, t.class_id.tolist(), t.conf.tolist()) == ("m", None, [-1], [1.0])


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        (
            "frame,track_id,x,y,frame_id\n1,1,0,0,1\n",
            1,
            "unknown column 'frame_id' (did you mean 'frame'?)",
        ),
        ("frame,x,y\n1,0,0\n", 1, "missing column track_id"),
        ("frame,track_id,x,y,x\n1,1,0,0,0\n", 1, "repeated column x"),
        ("frame,track_id,x,y,left,top\n1,1,0,0,0,0\n", 1, "missing width, height"),
        ("1,1,0,0\n", 1, "no header row"),
        ("frame,track_id,x,y\n", 1, "no data rows"),
        ("frame,track_id,x,y,units\n1,1,0,0,m\n2,1,0,0,px\n", 3, "units 'px' differ"),
        ("frame,track_id,x,y,units\n1,1,0,0,km\n", 2, "units 'km'"),
        ("frame,track_id,x,y,left,top,width,height\n1,1,0,0,1,2,,\n", 2, "partly empty"),
        ("frame,track_id,x,y,left,top,width,height\n1,1,0,0,1,2,-3,4\n", 2, "negative box size"),
        ("frame,track_id,x,y\n1,1,,0\n", 2, "x is empty"),
    ],
)
def test_csv_header_and_cell_errors(tmp_path, text, line, fragment):
    path = tmp_path / "a.csv"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_csv(path)
    assert err.value.line == line and fragment in str(err.value), str(err.value)


# ---------------------------------------------------------------- any format


@pytest.mark.parametrize(
    "fmt, name, kwargs",
    [
        ("eth_ucy", "a.txt", {}),
        ("mot", "a.txt", {"units": "px", "with_boxes": True}),
        ("mot", "a.csv", {"units": "px", "with_boxes": True}),  # MOT results saved as .csv
        ("csv", "a.csv", {"units": "px", "with_boxes": True}),
        ("csv", "a.txt", {}),
    ],
)
def test_read_tracks_detects_format(tmp_path, make_tracks, fmt, name, kwargs):
    tracks = make_tracks(**kwargs)
    write_tracks(tmp_path / name, tracks, fmt)
    got = read_tracks(tmp_path / name)
    assert_same_tracks(tracks, got, box=fmt != "eth_ucy", extras=fmt == "csv")
    assert got.source == name


def test_unknown_format_is_a_user_error(tmp_path, make_tracks):
    with pytest.raises(TrajpredError, match="unknown track format 'json'"):
        write_tracks(tmp_path / "a.json", make_tracks(), "json")
    with pytest.raises(TrajpredError, match="unknown track format 'json'"):
        read_tracks(tmp_path / "a.json", "json")


@pytest.mark.parametrize("fmt", ["eth_ucy", "mot", "csv"])
def test_writers_replace_the_file_and_leave_no_temp_file(tmp_path, make_tracks, fmt):
    path = tmp_path / "out.txt"
    path.write_text("old contents\n")
    write_tracks(
        path, make_tracks(units="px" if fmt == "mot" else "m", with_boxes=fmt == "mot"), fmt
    )
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert "old" not in path.read_text()


# ---------------------------------------------------------------- real ETH/UCY files


def _manifest(shared_dir):
    with open(shared_dir / "data/eth_ucy/MANIFEST.tsv", newline="") as f:
        return {row[0]: row for row in csv.reader(f, delimiter="\t") if not row[0].startswith("#")}


@pytest.mark.parametrize("rel", ["eth/test/biwi_eth.txt", "univ/test/students001.txt"])
def test_real_eth_ucy_file_matches_manifest(shared_dir, rel):
    path = shared_dir / "data/eth_ucy" / rel
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    _, _, lines, n_peds, n_frames, _ = _manifest(shared_dir)[rel]
    start = time.perf_counter()
    t = read_tracks(path)
    elapsed = time.perf_counter() - start
    assert (len(t), len(t.track_ids()), len(t.frames())) == (int(lines), int(n_peds), int(n_frames))
    assert (t.units, t.source) == ("m", path.name)
    assert elapsed < 2.0  # ~0.05 s for the 21,813 lines of students001; loose for shared CPUs


# ---------------------------------------------------------------- bad files, every reader

READERS = {"eth_ucy": read_eth_ucy, "mot": read_mot, "csv": read_csv}
SEP = {"eth_ucy": "\t", "mot": ",", "csv": ","}
HEADER = {"eth_ucy": "", "mot": "", "csv": "frame,track_id,x,y\n"}


def row(fmt: str, frame="1", tid="1", x="0.5") -> str:
    """One valid data line; `x` is the third cell (x, or left for MOT)."""
    cells = [frame, tid, x, "2.5"] + (["10", "20", "1", "-1", "-1", "-1"] if fmt == "mot" else [])
    return SEP[fmt].join(cells)


def body(fmt: str, *rows: str) -> bytes:
    return (HEADER[fmt] + "".join(r + "\n" for r in rows)).encode()


# (case, file bytes or None for no file, line: of the data row, or "abs" + line for the raw
#  file, or None; expected fragment of the message, where {first} is the first data line)
BAD_FILES = [
    ("wrong_column_count", lambda f: body(f, row(f), row(f, "2") + SEP[f] + "7"), 2, "columns"),
    ("too_few_columns", lambda f: body(f, row(f), "1" + SEP[f] + "2"), 2, "columns"),
    (
        "non_numeric",
        lambda f: body(f, row(f), row(f, "2", x="abc")),
        2,
        "'abc' is not a finite number",
    ),
    ("non_numeric_id", lambda f: body(f, row(f, tid="ped7")), 1, "'ped7' is not a finite number"),
    ("nan", lambda f: body(f, row(f), row(f, "2", x="nan")), 2, "'nan' is not a finite number"),
    ("inf", lambda f: body(f, row(f, x="-inf")), 1, "'-inf' is not a finite number"),
    ("overflow", lambda f: body(f, row(f), row(f, "2", x="1e400")), 2, "too large"),
    ("underscore", lambda f: body(f, row(f, x="1_0")), 1, "'1_0' is not a finite number"),
    (
        "duplicate",
        lambda f: body(f, row(f), row(f, "2"), row(f, x="9")),
        3,
        "duplicate row for frame 1, track 1 (also on line {first})",
    ),
    ("negative_id", lambda f: body(f, row(f), row(f, "2", "-1")), 2, "id -1 is invalid"),
    ("fractional_id", lambda f: body(f, row(f, tid="1.5")), 1, "1.5 is not a whole number"),
    ("huge_id", lambda f: body(f, row(f, tid="9007199254740993")), 1, "too large"),
    ("empty", lambda f: b"", None, "empty"),
    ("blank_lines_only", lambda f: b"\n  \n\r\n", None, "empty"),
    ("missing", lambda f: None, None, "file not found"),
    ("binary", lambda f: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8", "abs1", "not a text file"),
    (
        "bad_utf8_later",
        lambda f: body(f, row(f)) + b"\xff\xfe1\n",
        "abs" + "{last}",
        "not a text file",
    ),
    (
        "nul_byte",
        lambda f: body(f, row(f), row(f, "2")) + b"\x00\n",
        "abs" + "{last}",
        "not a text file",
    ),
]


@pytest.mark.parametrize("fmt", list(READERS))
@pytest.mark.parametrize("case, make, line, fragment", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_file_raises_one_line_input_error(tmp_path, fmt, case, make, line, fragment):
    path = tmp_path / f"bad_{case}.txt"
    data = make(fmt)
    if data is not None:
        path.write_bytes(data)
    header_lines = HEADER[fmt].count("\n")
    if isinstance(line, str):  # a line of the raw file; {last}: the line after the valid rows
        line = int(line[3:].format(last=data.count(b"\n")))
    elif line is not None:
        line += header_lines
    with pytest.raises(InputError) as err:
        READERS[fmt](path)
    message = str(err.value)
    assert "\n" not in message and "\r" not in message
    assert path.name in message
    assert err.value.line == line, message
    if line is not None:
        assert f"{path.name}:{line}: " in message
    assert fragment.format(first=1 + header_lines) in message, message
