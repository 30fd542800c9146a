"""Read and write track files: ETH/UCY text, MOTChallenge gt/results, and trajpred's own CSV.

Every reader returns a `Tracks` whose `source` is the file name, and raises `InputError`
("path:line: problem", one line) for any file it cannot use: no other exception escapes a
reader, whatever bytes the file holds. Blank lines are skipped; CRLF line ends are accepted.

Every writer sorts rows by frame then track id and writes through `atomic.write_text`, so a
crash never leaves a half-written file. Floats are written with repr(), the shortest text
that reads back as the same float64, so write -> read returns identical arrays.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .atomic import write_text
from .errors import InputError, TrajpredError
from .tracks import UNITS, Tracks, bottom_centre

FORMATS = ("eth_ucy", "mot", "csv")
ETH_UCY_COLUMNS = ("frame_id", "ped_id", "x", "y")  # names as in the data README
MOT_COLUMNS = ("frame", "id", "left", "top", "width", "height", "conf", "x", "y", "z")
MOT_GT_COLUMNS = ("frame", "id", "left", "top", "width", "height", "mark", "class", "visibility")
CSV_COLUMNS = (
    "frame",
    "track_id",
    "x",
    "y",
    "left",
    "top",
    "width",
    "height",
    "class_id",
    "conf",
    "units",
)
CSV_REQUIRED = CSV_COLUMNS[:4]
# Ground-plane position in metres of the same point, written with a homography
# (`trajpred track --homography`); read as the positions with ground_plane=True.
CSV_WORLD_COLUMNS = ("wx", "wy")
BOX_COLUMNS = ("left", "top", "width", "height")

# Positions and box values (metres or pixels) must lie within +-MAX_COORD. Beyond it nothing
# real is measured (a pixel coordinate of a million, a metre coordinate of a thousand km), the
# model's float32 inputs lose sub-decimetre precision, and squared distances in the metrics
# overflow to inf and NaN. Coordinates in a global frame (e.g. UTM) need an origin subtracted.
MAX_COORD = 1e6
# Ids and frames stay below 2**53: from there on a float64 field cannot hold every whole number,
# so "9007199254740993" would read silently as ...992.
_MAX_ID = 2**53
# A finite decimal number in ASCII. float() alone also takes 'nan', 'inf', '1_000' and
# non-ASCII digits, none of which belong in these files.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Rows holding one of these characters get the strict per-cell check: every spelling of NaN
# and infinity contains an 'n', and plain numbers are ASCII without underscores.
_SUSPECT = re.compile(r"[nN_]|[^\x00-\x7f]")

Lines = list[tuple[int, str]]  # (1-based line number, text without the line break)


# ---------------------------------------------------------------- shared parsing helpers


def _load_lines(path: str | os.PathLike) -> Lines:
    """The file's non-blank lines with their numbers; unreadable or binary files -> InputError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a file") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL character in the path
        raise InputError(path, f"cannot read file ({getattr(e, 'strerror', None) or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            path,
            "not a text file (bytes that are not UTF-8)",
            line=data.count(b"\n", 0, e.start) + 1,
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise InputError(path, "not a text file (NUL byte)", line=text.count("\n", 0, nul) + 1)
    text = text.removeprefix("\ufeff")  # byte-order mark that spreadsheet programs add
    # Split on "\n" only: str.splitlines() also breaks at form feeds and other separators
    # that editors do not count, which would shift every reported line number.
    return [(i, s.rstrip("\r")) for i, s in enumerate(text.split("\n"), 1) if s.strip()]


def _show(text: str) -> str:
    """A cell quoted for an error message: short, and escaped so the message stays one line."""
    return repr(text if len(text) <= 30 else text[:30] + "...")


def _cell(rows: list[list[str]], i: int, j: int) -> str:
    """Cell (i, j) as written in the file (stripped, cut to 30 characters), for a message."""
    text = rows[i][j].strip()
    return text if len(text) <= 30 else text[:30] + "..."


def _show_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _strict_cells(path, line_no: int, cells: list[str], names, allow_empty: bool) -> list[float]:
    """Slow exact parse of one row that names the first bad cell; empty -> NaN if allowed."""
    out = []
    for name, cell in zip(names, cells, strict=False):
        cell = cell.strip()
        if not cell and allow_empty:
            out.append(math.nan)
        elif not cell:
            raise InputError(path, f"{name} is empty", line_no)
        elif _NUMBER.fullmatch(cell):
            out.append(float(cell))
        else:
            raise InputError(path, f"{name} {_show(cell)} is not a finite number", line_no)
    return out


def _numbers(
    path,
    rows: list[list[str]],
    line_nos: list[int],
    names,
    allow_empty: bool = False,
    coordinates: tuple[str, ...] = (),
) -> np.ndarray:
    """Text cells -> (N, W) float64; empty cells are NaN when allowed, else an error; columns
    named in `coordinates` must lie within +-MAX_COORD."""
    values = []
    for cells, line_no in zip(rows, line_nos, strict=False):
        try:
            row = (
                [float(c) if c.strip() else math.nan for c in cells]
                if allow_empty
                else [float(c) for c in cells]
            )
        except ValueError:
            row = None
        if row is None or _SUSPECT.search("".join(cells)):
            row = _strict_cells(path, line_no, cells, names, allow_empty)
        values.append(row)
    out = np.array(values, dtype=np.float64).reshape(len(rows), len(names))
    # '1e400' passes every check above and overflows to inf.
    big = np.isinf(out)
    if big.any():
        i, j = np.argwhere(big)[0]
        raise InputError(path, f"{names[j]} {_show(rows[i][j].strip())} is too large", line_nos[i])
    cols = [j for j, name in enumerate(names) if name in coordinates]
    absurd = np.abs(out[:, cols]) > MAX_COORD
    if absurd.any():
        i, k = np.argwhere(absurd)[0]
        raise InputError(
            path,
            f"{names[cols[k]]} {_cell(rows, i, cols[k])} is out of range (coordinates must lie "
            f"within +-{MAX_COORD:g}, metres or pixels)",
            line_nos[i],
        )
    return out


def _split_rows(
    path, lines: Lines, split: Callable[[str], list[str]], widths: dict, what: str
) -> tuple[list[list[str]], list[int], tuple[str, ...]]:
    """Split each line into cells; the first row picks the layout from `widths`, the rest
    follow it."""
    if not lines:
        raise InputError(path, "empty file: no data rows")
    rows = [split(text) for _, text in lines]
    line_nos = [n for n, _ in lines]
    width = len(rows[0])
    if width not in widths:
        layouts = " or ".join(f"{n} ({','.join(names)})" for n, names in widths.items())
        raise InputError(path, f"found {width} {what} columns, expected {layouts}", line_nos[0])
    for cells, line_no in zip(rows, line_nos, strict=False):
        if len(cells) != width:
            raise InputError(
                path,
                f"found {len(cells)} {what} columns, expected {width} like line {line_nos[0]}",
                line_no,
            )
    return rows, line_nos, widths[width]


def _whole(
    path, values: np.ndarray, line_nos: list[int], name: str, minimum: int, rows, column: int
) -> np.ndarray:
    """A float column that must hold whole numbers >= minimum -> int64; a bad value is shown
    as written in the file (rows[i][column])."""
    bad = (values != np.round(values)) | (values < minimum) | (np.abs(values) >= _MAX_ID)
    if bad.any():
        i = int(np.argmax(bad))
        v = float(values[i])
        written = _cell(rows, i, column) or _show_number(v)
        problem = (
            f"{name} {written} is not a whole number"
            if not v.is_integer()
            else f"{name} {written} is too large"
            if abs(v) >= _MAX_ID
            else f"{name} {written} is invalid (must be >= {minimum})"
        )
        raise InputError(path, problem, line_nos[i])
    return values.astype(np.int64)


def _check_box(path, box: np.ndarray, line_nos: list[int]) -> None:
    """Widths and heights must not be negative; rows without a box (NaN) pass."""
    bad = (box[:, 2:] < 0).any(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            path,
            f"negative box size {_show_number(box[i, 2])} x {_show_number(box[i, 3])}",
            line_nos[i],
        )


def _check_duplicates(path, tracks: Tracks, line_nos: list[int]) -> None:
    """Two rows for one (frame, track) make positions ambiguous; name both lines."""
    if len(tracks.duplicate_rows()) == 0:
        return
    first_line: dict[tuple[int, int], int] = {}
    for key, line_no in zip(
        zip(tracks.frame_id.tolist(), tracks.track_id.tolist(), strict=False),
        line_nos,
        strict=False,
    ):
        if key in first_line:
            raise InputError(
                path,
                f"duplicate row for frame {key[0]}, track {key[1]} "
                f"(also on line {first_line[key]})",
                line_no,
            )
        first_line[key] = line_no


# ---------------------------------------------------------------- ETH/UCY


def read_eth_ucy(path: str | os.PathLike) -> Tracks:
    """Read an ETH/UCY file: `frame_id ped_id x y` per line, tab (or any whitespace) separated.

    Frame and pedestrian ids may be written as floats ("780.0"); they must be whole numbers
    >= 0. Positions are metres, so units is "m" and box_xywh is None.
    """
    return _parse_eth_ucy(path, _load_lines(path))


def _parse_eth_ucy(path, lines: Lines) -> Tracks:
    rows, line_nos, names = _split_rows(
        path, lines, str.split, {4: ETH_UCY_COLUMNS}, "whitespace-separated"
    )
    values = _numbers(path, rows, line_nos, names, coordinates=("x", "y"))
    tracks = Tracks(
        _whole(path, values[:, 0], line_nos, "frame_id", 0, rows, 0),
        _whole(path, values[:, 1], line_nos, "ped_id", 0, rows, 1),
        values[:, 2:4],
        units="m",
        source=Path(path).name,
    )
    _check_duplicates(path, tracks, line_nos)
    return tracks


def write_eth_ucy(path: str | os.PathLike, tracks: Tracks) -> None:
    """Write `frame_id ped_id x y`, tab separated, ids as integers. Boxes, class and conf are
    dropped.

    Only metre tracks: ETH/UCY files carry no units, and every reader takes them as metres.
    """
    if tracks.units != "m":
        raise TrajpredError(
            f"{os.fspath(path)}: ETH/UCY files hold metres, these tracks are "
            f"in {tracks.units}; write CSV or MOT instead"
        )
    t = _writable(path, tracks, min_frame=0)
    write_text(
        path,
        "".join(
            f"{f}\t{i}\t{x!r}\t{y!r}\n"
            for f, i, (x, y) in zip(
                t.frame_id.tolist(), t.track_id.tolist(), t.xy.tolist(), strict=False
            )
        ),
    )


# ---------------------------------------------------------------- MOTChallenge


def read_mot(path: str | os.PathLike, ignore_zero_conf: bool = False) -> Tracks:
    """Read a MOTChallenge gt or results file (comma separated, 1-based frames).

    10 columns `frame,id,left,top,width,height,conf,x,y,z` (results, MOT15 gt): x,y,z are
    world coordinates, usually -1, and are ignored; class_id is -1.
    9 columns `frame,id,left,top,width,height,mark,class,visibility` (MOT16/17/20 gt): the
    0/1 mark becomes conf, class becomes class_id, visibility is ignored.
    Positions are the boxes' bottom centres in pixels. With `ignore_zero_conf`, rows whose
    conf (or mark) is 0 are dropped, as MOT evaluation does for gt.
    """
    return _parse_mot(path, _load_lines(path), ignore_zero_conf)


def _parse_mot(path, lines: Lines, ignore_zero_conf: bool) -> Tracks:
    rows, line_nos, names = _split_rows(
        path, lines, lambda s: s.split(","), {10: MOT_COLUMNS, 9: MOT_GT_COLUMNS}, "comma-separated"
    )
    values = _numbers(path, rows, line_nos, names, coordinates=BOX_COLUMNS)
    box = values[:, 2:6]
    _check_box(path, box, line_nos)
    xy = bottom_centre(box)
    if not np.isfinite(xy).all():  # top + height can overflow although each is finite
        raise InputError(path, "box too large", line_nos[int(np.argmin(np.isfinite(xy).all(1)))])
    class_id = (
        _whole(path, values[:, 7], line_nos, "class", -1, rows, 7) if len(names) == 9 else None
    )
    tracks = Tracks(
        _whole(path, values[:, 0], line_nos, "frame", 1, rows, 0),
        _whole(path, values[:, 1], line_nos, "id", 0, rows, 1),
        xy,
        box,
        class_id,
        values[:, 6],
        units="px",
        source=Path(path).name,
    )
    _check_duplicates(path, tracks, line_nos)
    return tracks.select(tracks.conf != 0) if ignore_zero_conf else tracks


def write_mot(path: str | os.PathLike, tracks: Tracks) -> None:
    """Write the 10-column MOTChallenge results layout
    `frame,id,left,top,width,height,conf,-1,-1,-1`.

    Needs a box on every row and frames >= 1. class_id is not stored (the results layout has
    no class column), and xy is not either: a reader recomputes it as the box's bottom centre.
    """
    t = _writable(path, tracks, min_frame=1, stores_xy=False)
    if t.box_xywh is None or np.isnan(t.box_xywh).any():
        raise TrajpredError(f"{os.fspath(path)}: MOT files need a box on every row")
    write_text(
        path,
        "".join(
            f"{f},{i},{left!r},{top!r},{w!r},{h!r},{c!r},-1,-1,-1\n"
            for f, i, (left, top, w, h), c in zip(
                t.frame_id.tolist(),
                t.track_id.tolist(),
                t.box_xywh.tolist(),
                t.conf.tolist(),
                strict=False,
            )
        ),
    )


# ---------------------------------------------------------------- trajpred CSV


def read_csv(path: str | os.PathLike, ground_plane: bool = False) -> Tracks:
    """Read trajpred's CSV: a header row naming columns from CSV_COLUMNS, in any order.

    frame, track_id, x, y are required. The four box columns come together or not at all;
    a row with all four empty has no box (NaN), and a file with no box values at all gives
    box_xywh None. Empty class_id -> -1, empty conf -> 1. units ("m" or "px") must agree on
    every row; when absent or empty it is "px" if the file has boxes, else "m".
    The ground-plane columns wx, wy (metres) are optional and come together; with
    ground_plane=True they are required and become the positions: units "m", no boxes (a
    box's pixel height must not set the scale of metres).
    """
    return _parse_csv(path, _load_lines(path), ground_plane)


def _check_header(path, names: list[str], line_no: int) -> None:
    if all(_NUMBER.fullmatch(n) for n in names):
        raise InputError(
            path,
            f"no header row; the first line must name the columns, e.g. {','.join(CSV_COLUMNS)}",
            line_no,
        )
    valid = CSV_COLUMNS + CSV_WORLD_COLUMNS
    unknown = [n for n in dict.fromkeys(names) if n not in valid]
    if unknown:
        described = []
        for n in unknown[:5]:  # a garbage header can hold thousands
            close = difflib.get_close_matches(n, valid, n=1, cutoff=0.6)
            described.append(_show(n) + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise InputError(
            path,
            f"unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(described)}; valid: {','.join(valid)}",
            line_no,
        )
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    missing = [n for n in CSV_REQUIRED if n not in names]
    some_box = [n for n in BOX_COLUMNS if n in names]
    if repeated:
        raise InputError(path, f"repeated column {', '.join(repeated)}", line_no)
    if missing:
        raise InputError(path, f"missing column {', '.join(missing)}", line_no)
    if some_box and len(some_box) < 4:
        absent = [n for n in BOX_COLUMNS if n not in names]
        raise InputError(path, f"box columns come together: missing {', '.join(absent)}", line_no)
    if sum(n in names for n in CSV_WORLD_COLUMNS) == 1:
        raise InputError(path, "ground-plane columns wx, wy come together", line_no)


def _parse_csv(path, lines: Lines, ground_plane: bool = False) -> Tracks:
    if not lines:
        raise InputError(path, "empty file: no header and no data rows")
    header_no, header = lines[0]
    names = [n.strip() for n in header.split(",")]
    _check_header(path, names, header_no)
    if ground_plane and "wx" not in names:
        raise InputError(
            path,
            "no ground-plane columns wx, wy (export tracks with `trajpred track --homography "
            "H.txt`, or leave data.ground_plane off)",
            header_no,
        )
    if len(lines) == 1:
        raise InputError(path, "no data rows after the header", header_no)
    rows, line_nos, _ = _split_rows(
        path, lines[1:], lambda s: s.split(","), {len(names): tuple(names)}, "comma-separated"
    )
    numeric = [j for j, n in enumerate(names) if n != "units"]
    values = _numbers(
        path,
        [[cells[j] for j in numeric] for cells in rows],
        line_nos,
        [names[j] for j in numeric],
        allow_empty=True,
        coordinates=("x", "y", *BOX_COLUMNS),
    )
    col = {names[j]: values[:, k] for k, j in enumerate(numeric)}
    for name in CSV_REQUIRED + (CSV_WORLD_COLUMNS if ground_plane else ()):
        empty = np.isnan(col[name])
        if empty.any():
            raise InputError(path, f"{name} is empty", line_nos[int(np.argmax(empty))])

    box = None
    if "left" in col:
        box = np.stack([col[n] for n in BOX_COLUMNS], axis=1)
        n_empty = np.isnan(box).sum(axis=1)
        partial = (n_empty > 0) & (n_empty < 4)
        if partial.any():
            raise InputError(
                path,
                "box is partly empty: give left, top, width, height or none",
                line_nos[int(np.argmax(partial))],
            )
        _check_box(path, box, line_nos)
        if n_empty.all():
            box = None
    class_id = None
    if "class_id" in col:
        class_id = _whole(
            path,
            np.nan_to_num(col["class_id"], nan=-1.0),
            line_nos,
            "class_id",
            -1,
            rows,
            names.index("class_id"),
        )
    conf = np.nan_to_num(col["conf"], nan=1.0) if "conf" in col else None
    units = _csv_units(path, rows, line_nos, names, default="px" if box is not None else "m")
    tracks = Tracks(
        _whole(path, col["frame"], line_nos, "frame", 0, rows, names.index("frame")),
        _whole(path, col["track_id"], line_nos, "track_id", 0, rows, names.index("track_id")),
        np.stack([col["x"], col["y"]], axis=1),
        box,
        class_id,
        conf,
        units,
        source=Path(path).name,
    )
    _check_duplicates(path, tracks, line_nos)
    if ground_plane:
        world = np.stack([col["wx"], col["wy"]], axis=1)
        return Tracks(
            tracks.frame_id, tracks.track_id, world, None, class_id, conf, "m", tracks.source
        )
    return tracks


def _csv_units(path, rows, line_nos, names, default: str) -> str:
    """The one unit all rows share; empty cells take the file's unit."""
    if "units" not in names:
        return default
    j = names.index("units")
    units = None
    for cells, line_no in zip(rows, line_nos, strict=False):
        cell = cells[j].strip()
        if not cell:
            continue
        if cell not in UNITS:
            raise InputError(path, f"units {_show(cell)} must be 'm' or 'px'", line_no)
        if units is None:
            units = cell
        elif cell != units:
            raise InputError(path, f"units '{cell}' differ from '{units}' on earlier rows", line_no)
    return units or default


def write_csv(path: str | os.PathLike, tracks: Tracks) -> None:
    """Write the full CSV_COLUMNS header and one row per observation; no box -> empty cells."""
    t = _writable(path, tracks, min_frame=0)
    n = len(t)
    boxes = t.box_xywh.tolist() if t.box_xywh is not None else [[math.nan] * 4] * n
    lines = [",".join(CSV_COLUMNS) + "\n"]
    for f, i, (x, y), box, k, c in zip(
        t.frame_id.tolist(),
        t.track_id.tolist(),
        t.xy.tolist(),
        boxes,
        t.class_id.tolist(),
        t.conf.tolist(),
        strict=False,
    ):
        box_cells = ",,," if math.isnan(box[0]) else ",".join(map(repr, box))
        lines.append(f"{f},{i},{x!r},{y!r},{box_cells},{k},{c!r},{t.units}\n")
    write_text(path, "".join(lines))


def _writable(path, tracks: Tracks, min_frame: int, stores_xy: bool = True) -> Tracks:
    """Rows sorted by frame then id, after refusing what the readers would reject (MOT files
    store boxes only: their positions are not checked, a reader derives them)."""
    where = os.fspath(path)
    if len(tracks) and tracks.frame_id.min() < min_frame:
        raise TrajpredError(f"{where}: frame ids must be >= {min_frame} in this format")
    if len(tracks) and tracks.track_id.min() < 0:
        raise TrajpredError(f"{where}: track ids must be >= 0")
    if len(tracks) and max(tracks.frame_id.max(), tracks.track_id.max()) >= _MAX_ID:
        raise TrajpredError(f"{where}: frame and track ids must be < 2**53")
    if len(tracks.duplicate_rows()):
        raise TrajpredError(f"{where}: tracks have more than one row for a (frame, track id)")
    if stores_xy and not (np.abs(tracks.xy) <= MAX_COORD).all():
        raise TrajpredError(f"{where}: positions must be finite and within +-{MAX_COORD:g}")
    box = tracks.box_xywh
    if box is not None:
        n_nan = np.isnan(box).sum(axis=1)
        big = (np.abs(box) > MAX_COORD) | np.isinf(box)
        if ((n_nan > 0) & (n_nan < 4)).any() or big.any() or (box[:, 2:] < 0).any():
            raise TrajpredError(
                f"{where}: boxes must be all-NaN or within +-{MAX_COORD:g} with sizes >= 0"
            )
    if not np.isfinite(tracks.conf).all():
        raise TrajpredError(f"{where}: conf holds NaN or infinite values")
    return tracks.sorted()


# ---------------------------------------------------------------- any format


def _detect(path, lines: Lines) -> str:
    """Header row -> csv; comma-separated numbers -> mot; whitespace-separated -> eth_ucy."""
    if not lines:
        return "csv" if Path(path).suffix.lower() == ".csv" else "eth_ucy"
    first = lines[0][1]
    if "," not in first:
        return "eth_ucy"
    cells = [c.strip() for c in first.split(",")]
    if not all(_NUMBER.fullmatch(c) for c in cells):
        return "csv"
    # A headerless .csv that is not MOT-shaped: let the CSV reader say the header is missing.
    if Path(path).suffix.lower() == ".csv" and len(cells) not in (9, 10):
        return "csv"
    return "mot"


def read_tracks(
    path: str | os.PathLike,
    format: str = "auto",
    *,
    ignore_zero_conf: bool = False,
    ground_plane: bool = False,
) -> Tracks:
    """Read any supported file; format "auto" looks at the first line (see `_detect`).

    `ignore_zero_conf` applies to MOT files only (see `read_mot`). `ground_plane`: positions
    in metres on the ground: a CSV's wx, wy columns (see `read_csv`); ETH/UCY files are in
    metres already; MOT files have none.
    """
    if format not in ("auto", *FORMATS):
        raise TrajpredError(f"unknown track format '{format}'; choose auto, {', '.join(FORMATS)}")
    lines = _load_lines(path)
    format = _detect(path, lines) if format == "auto" else format
    if format == "mot":
        if ground_plane:
            raise InputError(path, "MOT files hold no ground-plane positions (data.ground_plane)")
        return _parse_mot(path, lines, ignore_zero_conf)
    if format == "csv":
        return _parse_csv(path, lines, ground_plane)
    return _parse_eth_ucy(path, lines)


def write_tracks(path: str | os.PathLike, tracks: Tracks, format: str) -> None:
    """Write `tracks` as "eth_ucy", "mot" or "csv" (see the write_* functions for what each
    keeps)."""
    writers = {"eth_ucy": write_eth_ucy, "mot": write_mot, "csv": write_csv}
    if format not in writers:
        raise TrajpredError(f"unknown track format '{format}'; choose {', '.join(FORMATS)}")
    writers[format](path, tracks)
