"""Video in and out, one frame at a time (OpenCV): sources, frame reading, mp4 writing.

A SOURCE is a video file, a folder of videos, a glob pattern ("clips/*.mp4"), a webcam index
("0") or a stream URL (rtsp://, rtmp://, http(s)://). `expand_source` turns it into a list of
`VideoSource`s; `VideoReader` yields one frame at a time, never holding the video in memory.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError, TrajpredError

VIDEO_SUFFIXES = (
    ".mp4",
    ".avi",
    ".mov",
    ".mkv",
    ".m4v",
    ".mpeg",
    ".mpg",
    ".webm",
    ".wmv",
    ".asf",
    ".ts",
    ".gif",
)
STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "tcp://", "udp://")
MAX_FPS = 1000.0  # containers that report more (or 0, or NaN) do not know their frame rate


@dataclass(frozen=True)
class VideoSource:
    """One input: `uri` is what OpenCV opens (path, URL or webcam index as text); `name` names its
    output folder (the file stem, 'webcam0', or 'stream'); `is_stream` for live sources."""

    uri: str
    name: str
    is_stream: bool = False


@dataclass(frozen=True)
class VideoInfo:
    """fps: frames per second used for timing (the container's, or the --fps override);
    width, height: pixels; n_frames: the container's frame count (an estimate, None for
    streams); frame k (1-based) is shown at time (k - 1) / fps seconds."""

    fps: float
    width: int
    height: int
    n_frames: int | None


def expand_source(source: str) -> tuple[list[VideoSource], bool]:
    """SOURCE -> (videos, several); `several` is True for a folder or glob (one output folder
    each)."""
    text = str(source).strip()
    if text.isdigit():
        return [VideoSource(text, f"webcam{text}", is_stream=True)], False
    if text.lower().startswith(STREAM_SCHEMES):
        return [VideoSource(text, "stream", is_stream=True)], False
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
        )
        if not files:
            raise InputError(path, f"folder holds no videos ({', '.join(VIDEO_SUFFIXES)})")
        return _named(files), True
    if any(c in text for c in "*?["):
        files = sorted(
            Path(p)
            for p in glob.glob(os.path.expanduser(text), recursive=True)
            if Path(p).is_file()
        )
        if not files:
            raise InputError(text, "no file matches this pattern")
        return _named(files), True
    if not path.exists():
        raise InputError(path, "video not found")
    if not path.is_file():
        raise InputError(path, "not a file")
    return [VideoSource(str(path), path.stem)], False


def _named(files: list[Path]) -> list[VideoSource]:
    """Sources named by file stem; stems shared by several files get their suffix appended."""
    stems = [f.stem for f in files]
    return [
        VideoSource(str(f), f.stem if stems.count(f.stem) == 1 else f"{f.stem}_{f.suffix[1:]}")
        for f in files
    ]


def frame_rate(reported: float, override: float | None, where: str) -> float:
    """The fps to use: the override when given, else the container's if it is believable."""
    if override is not None:
        if not (math.isfinite(override) and 0 < override <= MAX_FPS):
            raise TrajpredError(f"--fps must be in (0, {MAX_FPS:g}], got {override}")
        return float(override)
    if not (math.isfinite(reported) and 0 < reported <= MAX_FPS):
        raise InputError(
            where, f"frame rate unknown (the container says {reported:g} fps); give it with --fps"
        )
    return float(reported)


class VideoReader:
    """Frames of one source, read one at a time; use as a context manager (releases the capture).

    Opening checks that the source is a readable video with at least one frame and a known
    frame rate (or `fps`), so those problems are one-line errors before any output is written.
    """

    def __init__(self, source: VideoSource, fps: float | None = None):
        self.source = source
        # FFmpeg would print its own complaint (e.g. "moov atom not found") beside our one-line
        # error; silenced unless the user chose a level (read when OpenCV first opens a video).
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        uri: str | int = int(source.uri) if source.uri.isdigit() else source.uri
        self._cap = cv2.VideoCapture(uri)
        if not self._cap.isOpened():
            self._cap.release()
            what = "cannot open stream" if source.is_stream else "not a video OpenCV can read"
            raise InputError(source.uri, what)
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise InputError(source.uri, "video has no frames")
        reported = self._cap.get(cv2.CAP_PROP_FPS)
        try:
            rate = frame_rate(reported, fps, source.uri)
        except TrajpredError:
            self._cap.release()
            raise
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._first: np.ndarray | None = first
        self.info = VideoInfo(
            rate, first.shape[1], first.shape[0], None if source.is_stream or count <= 0 else count
        )

    def __iter__(self) -> Iterator[np.ndarray]:
        """(H, W, 3) uint8 BGR frames in order, from the first."""
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        while True:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                return
            yield frame

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoWriter:
    """An mp4 (OpenCV 'mp4v') written one frame at a time; `close()` finalises the file, so a
    video closed after Ctrl-C is still playable up to its last frame."""

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int):
        self.path = Path(path)
        self._writer = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (int(width), int(height))
        )
        if not self._writer.isOpened():
            raise InputError(self.path, "cannot write video here")
        self.n_frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        self._writer.write(frame_bgr)
        self.n_frames += 1

    def close(self) -> None:
        self._writer.release()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
