"""Video in and out, one frame at a time (OpenCV): sources, frame reading, mp4 writing.

A SOURCE is a video file, a folder of videos, a glob pattern ("clips/*.mp4"), a webcam index
("0") or a stream URL (rtsp://, rtmp://, http(s)://). A file that exists is always that file,
whatever its name ("0", "take[1].mp4"). `expand_source` turns a SOURCE into a list of
`VideoSource`s; `VideoReader` yields one frame at a time, never holding the video in memory.
OpenCV's and FFmpeg's own console messages are kept off the terminal: each problem they
report becomes one line of ours.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError, OutputError, TrajpredError

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


def expand_source(
    source: str, skip: Callable[[Path], bool] | None = None
) -> tuple[list[VideoSource], bool]:
    """SOURCE -> (videos, several); `several` is True for a folder or glob (one output folder
    each).

    A folder or glob leaves out hidden files (a tool's partial and temporary files) and those
    `skip` names (e.g. trajpred's own outputs of an earlier run).
    """
    text = str(source).strip()
    path = Path(text).expanduser()
    if path.is_file():  # before any other reading: "0" or "a[1].mp4" that exist are files
        return [VideoSource(str(path), path.stem)], False
    if path.is_dir():
        files = _listed(path.iterdir(), skip)
        if not files:
            raise InputError(path, f"folder holds no videos ({', '.join(VIDEO_SUFFIXES)})")
        return _named(files), True
    if text.isdigit():
        return [VideoSource(text, f"webcam{text}", is_stream=True)], False
    if text.lower().startswith(STREAM_SCHEMES):
        return [VideoSource(text, "stream", is_stream=True)], False
    if glob.has_magic(text):
        files = _listed(map(Path, glob.iglob(os.path.expanduser(text), recursive=True)), skip)
        if not files:
            raise InputError(text, "no video file matches this pattern")
        return _named(files), True
    if not path.exists():
        raise InputError(path, "video not found")
    raise InputError(path, "not a file")


def _listed(paths: Iterator[Path], skip: Callable[[Path], bool] | None) -> list[Path]:
    """Video files among `paths`, sorted, without hidden files and those `skip` names."""
    return sorted(
        p
        for p in paths
        if p.suffix.lower() in VIDEO_SUFFIXES
        and not p.name.startswith(".")
        and p.is_file()
        and not (skip and skip(p))
    )


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
        webcam = source.is_stream and source.uri.isdigit()
        with quiet_native_stderr():  # e.g. OpenCV's [ERROR] lines when no webcam is there
            self._cap = cv2.VideoCapture(int(source.uri) if webcam else source.uri)
            opened = self._cap.isOpened()
            ok, first = self._cap.read() if opened else (False, None)
        if not opened:
            self._cap.release()
            what = (
                f"no webcam with index {source.uri} (or it is in use)"
                if webcam
                else "cannot open stream"
                if source.is_stream
                else "not a video OpenCV can read"
            )
            raise InputError(source.uri, what)
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
        """(H, W, 3) uint8 BGR frames in order, from the first.

        The next frame is decoded on a worker thread while the caller works on this one
        (OpenCV releases the GIL while decoding), as ultralytics' own video loop does on a
        CPU: decoding a 768x576 frame takes 1-3 ms, otherwise added to every frame's detection.
        At most one frame is read ahead."""
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trajpred-decode") as pool:
            pending = pool.submit(self._cap.read)
            try:
                while True:
                    ok, frame = pending.result()
                    if not ok or frame is None:
                        return
                    pending = pool.submit(self._cap.read)
                    yield frame
            finally:
                # the capture must not be released while a read is running on it
                with contextlib.suppress(Exception):
                    pending.result()

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send what C libraries (OpenCV, FFmpeg) print on file descriptor 2 to /dev/null inside
    the block; the problems they report reach the user as one line of ours instead."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to keep quiet
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def quiet_opencv_log() -> Iterator[None]:
    """OpenCV's own log lines (e.g. `[ WARN:0@1.2] global cap_ffmpeg.cpp:219 write FFmpeg:
    Failed to write frame`, once per frame on a full disk) off inside the block, for calls
    whose failures reach the user as one line of ours (`VideoWriter.verify`). Unlike
    `quiet_native_stderr` it leaves file descriptor 2 alone, so it is cheap enough for every
    frame and hides nothing of ours. A level chosen with OPENCV_LOG_LEVEL is kept."""
    if "OPENCV_LOG_LEVEL" in os.environ:
        yield
        return
    log = cv2.utils.logging
    previous = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(previous)


def _open_mp4v(path: str | os.PathLike, fps: float, width: int, height: int) -> cv2.VideoWriter:
    with quiet_native_stderr():
        return cv2.VideoWriter(
            os.fspath(path), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (int(width), int(height))
        )


def why_no_video(path: Path, fps: float, width: int, height: int) -> str:
    """Why OpenCV could not open an mp4v writer at `path`: the folder, the frame rate or the
    frame size (each tried alone in a scratch folder), in words."""
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return "cannot write a video here (the folder is missing or not writable)"
    scratch = Path(tempfile.mkdtemp(prefix="trajpred-probe-"))
    try:
        for ok_fps, ok_size, problem in (
            (fps, (64, 64), f"the mp4v encoder refuses a frame rate of {fps:g} fps"),
            (25.0, (width, height), f"the mp4v encoder refuses a {width} x {height} frame"),
        ):
            probe = _open_mp4v(scratch / "probe.mp4", ok_fps, *ok_size)
            works = probe.isOpened()
            probe.release()
            if not works:
                return problem
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return "OpenCV cannot write an mp4v video here"


class VideoWriter:
    """An mp4 (OpenCV 'mp4v') written one frame at a time; `close()` finalises the file, so a
    video closed after Ctrl-C is still playable up to its last frame. OpenCV does not report
    failed writes (a full disk): `verify()` reads the closed file back and raises OutputError
    unless it holds every frame written. Errors name `shown_as` (default: `path`), e.g. the
    final name of a video written under a partial one."""

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        width: int,
        height: int,
        shown_as: str | os.PathLike | None = None,
    ):
        self.path = Path(path)
        self.shown_as = Path(shown_as or path)
        self._writer = _open_mp4v(self.path, fps, width, height)
        if not self._writer.isOpened():
            raise OutputError(self.shown_as, why_no_video(self.path, fps, width, height))
        self.n_frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        with quiet_opencv_log():  # a failed write is verify()'s one line, not a line per frame
            self._writer.write(frame_bgr)
        self.n_frames += 1

    def close(self) -> None:
        with quiet_opencv_log():
            self._writer.release()

    def verify(self) -> None:
        """After close(): the file opens and holds n_frames frames, or OutputError."""
        with quiet_native_stderr():
            cap = cv2.VideoCapture(os.fspath(self.path))
            found = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
            cap.release()
        if found != self.n_frames and self.n_frames > 0:
            why = "No space left on device"
            with contextlib.suppress(OSError):
                if shutil.disk_usage(self.path.parent).free > 1 << 20:
                    why = f"{max(found, 0)} of {self.n_frames} frames could be read back"
            raise OutputError(self.shown_as, f"cannot write the video ({why})")

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
