"""Fit an image -> ground plane homography (H.txt, metres) from point pairs you read off a frame.

Give at least 4 points on the ground, each as pixels in the image and as metres on the ground,
in the same order, no 3 of them on one line: the corners of a floor tile grid, the ends of two
lane markings, the corners of a court or a parking bay. Measure the metres from any point in
view (x, y on the ground; the axes' directions do not matter, the units do). More pairs than 4
are fitted in the least-squares sense and average out reading errors. The reprojection error
(each image point mapped to the ground, distance to its world point) is printed in metres.

Examples:
  trajpred homography --image-points "102,388 530,391 470,210 160,208" \\
      --world-points "0,0 4,0 4,6 0,6" --out H.txt --check 640x384
  trajpred homography --csv pairs.csv --out H.txt     # rows x,y,X,Y; a header row is optional

Then: trajpred predict clip.mp4 --out runs/clip --homography H.txt
"""

from __future__ import annotations

import argparse
import re

import numpy as np


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--image-points",
        metavar='"x,y x,y ..."',
        help="pixel positions of the points in a frame (x right, y down)",
    )
    p.add_argument(
        "--world-points",
        metavar='"X,Y X,Y ..."',
        help="the same points on the ground plane, metres, in the same order",
    )
    p.add_argument(
        "--csv",
        metavar="PAIRS",
        help="instead of the two lists: a file of x,y,X,Y rows (header and '#' comments allowed)",
    )
    p.add_argument("--out", required=True, metavar="H.txt", help="homography file to write")
    p.add_argument(
        "--check",
        metavar="WxH",
        help="image size (e.g. 640x384): also print where the image corners land on the ground",
    )


def parse_points(text: str, what: str) -> np.ndarray:
    """'x1,y1 x2,y2 ...' (spaces or ';' between pairs) -> (N, 2) float64."""
    from ..errors import TrajpredError

    pairs = [p for p in re.split(r"[\s;]+", text.strip()) if p]
    out = []
    for pair in pairs:
        cells = pair.split(",")
        try:
            if len(cells) != 2:
                raise ValueError
            out.append([float(cells[0]), float(cells[1])])
        except ValueError:
            raise TrajpredError(f"{what}: '{pair[:40]}' is not an x,y pair of numbers") from None
    return np.array(out, np.float64).reshape(-1, 2)


def read_pairs(path: str) -> tuple[np.ndarray, np.ndarray]:
    """A CSV of x,y,X,Y rows -> (image (N, 2), world (N, 2)); a first row that is not numbers
    is a header; blank lines and '#' comments are skipped."""
    from ..errors import InputError

    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"cannot read ({getattr(e, 'strerror', None) or e})") from None
    rows, first = [], True
    for n, line in enumerate(lines, 1):
        text = line.split("#")[0].strip()
        if not text:
            continue
        try:
            values = [float(c) for c in text.split(",")]
        except ValueError:
            if first:  # a header row
                first = False
                continue
            raise InputError(path, f"'{text[:40]}' is not 4 numbers x,y,X,Y", n) from None
        first = False
        if len(values) != 4:
            raise InputError(path, f"{len(values)} values; each row is x,y,X,Y", n)
        rows.append(values)
    a = np.array(rows, np.float64).reshape(-1, 4)
    return a[:, :2], a[:, 2:]


def corner_lines(h: np.ndarray, size: str) -> list[str]:
    """Where the image corners (and the bottom centre) land on the ground, one line each."""
    from ..errors import TrajpredError
    from ..geometry import MAX_IMAGE_PX, GroundPlane

    match = re.fullmatch(r"\s*(\d{1,9})\s*[xX]\s*(\d{1,9})\s*", size)
    sizes = [int(match[1]), int(match[2])] if match else [0]
    if not (0 < min(sizes) and max(sizes) <= MAX_IMAGE_PX):
        raise TrajpredError(
            f"--check: '{size[:40]}' is not an image size WIDTHxHEIGHT (each 1 to "
            f"{MAX_IMAGE_PX:g} pixels), e.g. 640x384"
        )
    w, h_px = sizes
    ground = GroundPlane(h)
    points = {
        "top left": (0, 0),
        "top right": (w - 1, 0),
        "bottom left": (0, h_px - 1),
        "bottom right": (w - 1, h_px - 1),
        "bottom centre": ((w - 1) / 2, h_px - 1),
    }
    out = []
    for name, (u, v) in points.items():
        try:
            x, y = ground.to_ground(np.array([[u, v]]), 0, np.zeros(1))[0]
            where = f"({x:.2f}, {y:.2f}) m"
        except TrajpredError:  # above the horizon, or absurdly far: say so instead
            where = "no ground there (above or at the horizon)"
        out.append(f"  {name:13s} ({u:g}, {v:g}) px -> {where}")
    return out


def run(args: argparse.Namespace) -> int:
    from ..atomic import write_text
    from ..errors import TrajpredError
    from ..geometry import fit_homography, format_homography
    from ..outputs import refuse_overwriting_inputs

    lists = args.image_points is not None or args.world_points is not None
    if args.csv and lists:
        raise TrajpredError("give either --csv or --image-points with --world-points, not both")
    refuse_overwriting_inputs([args.out], [args.csv])
    if args.csv:
        image_xy, world_xy = read_pairs(args.csv)
    elif args.image_points is not None and args.world_points is not None:
        image_xy = parse_points(args.image_points, "--image-points")
        world_xy = parse_points(args.world_points, "--world-points")
    else:
        raise TrajpredError("give --image-points and --world-points (at least 4 pairs), or --csv")
    fit = fit_homography(image_xy, world_xy)
    corners = corner_lines(fit.h, args.check) if args.check else []
    comment = (
        f"image (pixels) -> ground plane (metres), fitted by `trajpred homography` from "
        f"{len(image_xy)} point pairs; reprojection error rms {fit.rms_m:.4f} m, "
        f"max {fit.max_m:.4f} m"
    )
    try:
        write_text(args.out, format_homography(fit.h, comment))
    except OSError as e:
        raise TrajpredError(f"{args.out}: cannot write ({e.strerror or e})") from None
    worst = int(np.argmax(fit.errors_m))
    print(
        f"fitted from {len(image_xy)} point pairs: reprojection error rms {fit.rms_m:.4f} m, "
        f"max {fit.max_m:.4f} m (pair {worst + 1}) -> {args.out}"
    )
    if len(image_xy) > 4:
        print("  per pair (m): " + " ".join(f"{e:.4f}" for e in fit.errors_m))
    else:
        print("  (4 pairs fit exactly: add more to see how well the points were read)")
    if corners:
        print("image corners on the ground:")
        print("\n".join(corners))
    return 0
