"""A video's tracks written to trajpred's CSV frame by frame (what `trajpred track` writes), and
read back as `Tracks` (what `adapt` and the scripts learn from).

`track_video` streams one open video through a tracking `Pipeline` (forecast=False) into a CSV
that replaces its target only when the run ends; `tracks_of_video` opens the video, does that
and reads the file back, so the positions are those a later `adapt --tracks` or `train` reads.
"""

from __future__ import annotations

import time
from pathlib import Path


class TrackingInterrupted(KeyboardInterrupt):
    """Ctrl-C while `track_video` ran: what it had written by then (the CSV holds those rows
    when frames > 0)."""

    def __init__(self, frames: int, tracks: int, seconds: float) -> None:
        super().__init__()
        self.frames, self.tracks, self.seconds = frames, tracks, seconds


def track_video(pipeline, reader, out_csv: Path, progress: bool) -> tuple[int, int, float]:
    """Write one video's tracks to out_csv frame by frame -> (frames, tracks, seconds).

    Rows grow in a hidden partial file that replaces out_csv when the run ends: on success, or
    on Ctrl-C once at least one frame was processed (complete rows; `TrackingInterrupted`, a
    KeyboardInterrupt, is raised with the counts so far). A run that fails, or stops before its
    first frame, removes it, so an earlier out_csv stays as it was.
    """
    from tqdm import tqdm

    from .atomic import Staging, writing
    from .formats import CSV_COLUMNS, CSV_WORLD_COLUMNS
    from .geometry import GroundPlane
    from .predict_files import track_rows

    ground = None
    if pipeline.homography is not None:
        ground = GroundPlane(pipeline.homography, pipeline.config.forecast.homography)
    ids: set[int] = set()
    frames, start = 0, time.perf_counter()
    staging = Staging()
    try:
        with (
            writing(out_csv),
            open(staging.stage(out_csv), "w", newline="") as f,
            tqdm(
                total=reader.info.n_frames,
                unit="frame",
                desc=reader.source.name,
                disable=not progress,
                dynamic_ncols=True,
            ) as bar,
        ):
            f.write(",".join(CSV_COLUMNS + (CSV_WORLD_COLUMNS if ground else ())) + "\n")
            for result in pipeline.process(reader):
                t = result.tracks
                world = (
                    None if ground is None else ground.to_ground(t.xy, result.frame_id, t.track_id)
                )
                f.write(track_rows(result.frame_id, t, world))
                f.flush()
                ids.update(result.tracks.track_id.tolist())
                frames += 1
                bar.update()
    except KeyboardInterrupt as e:
        if frames:
            staging.publish()
        else:
            staging.discard()
        raise TrackingInterrupted(frames, len(ids), time.perf_counter() - start) from e
    except BaseException:
        staging.discard()
        raise
    staging.publish()
    return frames, len(ids), time.perf_counter() - start


def tracks_of_video(pipeline, video, out_csv: Path, progress: bool):
    """(pixel Tracks, VideoInfo, frames processed) of one video (a VideoSource): tracked into
    out_csv by `track_video` and read back, so the positions are those of a tracks.csv that
    `adapt --tracks` or `train` would read later (rounded to 0.01 px)."""
    from .formats import read_tracks

    with pipeline.open(video) as reader:
        frames, _, _ = track_video(pipeline, reader, out_csv, progress)
        info = reader.info
    return read_tracks(out_csv, "csv"), info, frames
