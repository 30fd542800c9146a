"""Tracks -> fixed-length windows (obs_len observed + pred_len future steps).

The benchmark convention (Social GAN, Trajectron++): slide over the sorted *distinct* frame ids
of one file with stride 1, and keep an agent in a window only if it is present in all
obs_len + pred_len frames. No minimum number of agents per window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .tracks import Tracks


@dataclass
class Windows:
    """N agent-windows, positions in the source's units.

    obs_xy: (N, obs_len, 2) float32 observed positions (metres or pixels).
    fut_xy: (N, pred_len, 2) float32 future positions, same units.
    obs_box_wh: (N, obs_len, 2) float32 box width/height in pixels, or None without boxes.
    file_index: (N,) int64 index into `files`; frame_id: (N,) int64 last observed frame id;
    track_id: (N,) int64.
    nbr_xy: (N, K, 2, 2) float32 or None: the K nearest other agents present at the last two
        observed frames, [:, :, 0] at the one before last, [:, :, 1] at the last (source units);
        nbr_mask: (N, K) bool, False for padding.
    class_id: (N,) int64 detector class of the track at its last observed frame (-1 unknown).
    """

    obs_xy: np.ndarray
    fut_xy: np.ndarray
    obs_box_wh: np.ndarray | None
    file_index: np.ndarray
    frame_id: np.ndarray
    track_id: np.ndarray
    files: list[str] = field(default_factory=list)
    units: str = "m"
    nbr_xy: np.ndarray | None = None
    nbr_mask: np.ndarray | None = None
    # None when constructing means unknown (-1 each); __post_init__ makes it an array.
    class_id: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        n = len(self.obs_xy)
        if self.class_id is None:
            self.class_id = np.full(n, -1, np.int64)
        if self.obs_xy.ndim != 3 or self.obs_xy.shape[2] != 2 or self.fut_xy.shape[0] != n:
            raise ValueError(f"bad window shapes {self.obs_xy.shape} / {self.fut_xy.shape}")

    def __len__(self) -> int:
        return len(self.obs_xy)

    @property
    def obs_len(self) -> int:
        return self.obs_xy.shape[1]

    @property
    def pred_len(self) -> int:
        return self.fut_xy.shape[1]

    def select(self, rows) -> Windows:
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return Windows(
            self.obs_xy[rows],
            self.fut_xy[rows],
            pick(self.obs_box_wh),
            self.file_index[rows],
            self.frame_id[rows],
            self.track_id[rows],
            self.files,
            self.units,
            pick(self.nbr_xy),
            pick(self.nbr_mask),
            self.class_id[rows],
        )

    @staticmethod
    def concat(parts: list[Windows]) -> Windows:
        """Join windows from several files; file_index is renumbered into the joined `files`."""
        parts = [p for p in parts if p is not None]
        files: list[str] = []
        file_index = []
        for p in parts:
            file_index.append(p.file_index + len(files))
            files.extend(p.files)

        if not parts:
            raise ValueError("no windows to join")

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        def cat_optional(name: str) -> np.ndarray | None:
            arrays = [getattr(p, name) for p in parts]
            return None if any(a is None for a in arrays) else np.concatenate(arrays)

        return Windows(
            cat("obs_xy"),
            cat("fut_xy"),
            cat_optional("obs_box_wh"),
            np.concatenate(file_index),
            cat("frame_id"),
            cat("track_id"),
            files,
            parts[0].units,
            cat_optional("nbr_xy"),
            cat_optional("nbr_mask"),
            cat("class_id"),
        )


def make_windows(
    tracks: Tracks, obs_len: int, pred_len: int, stride: int = 1, neighbours: int = 0
) -> Windows:
    """All agent-windows of one file (see the module docstring for the protocol), with the
    `neighbours` nearest other agents at the last observed frames when neighbours > 0."""
    seq_len = obs_len + pred_len
    frames = tracks.frames()
    obs, fut, boxes, last_frame, ids, last_pos, classes = [], [], [], [], [], [], []
    for track_id, rows in tracks.by_track():
        pos = np.searchsorted(frames, rows.frame_id)
        # Split the track into runs of consecutive distinct-frame indices; a window needs
        # the agent in every one of its seq_len frames.
        breaks = np.flatnonzero(np.diff(pos) != 1) + 1
        for run in np.split(np.arange(len(pos)), breaks):
            starts = [s for s in range(0, len(run) - seq_len + 1) if pos[run[s]] % stride == 0]
            for s in starts:
                idx = run[s : s + seq_len]
                obs.append(rows.xy[idx[:obs_len]])
                fut.append(rows.xy[idx[obs_len:]])
                if rows.box_xywh is not None:
                    boxes.append(rows.box_xywh[idx[:obs_len], 2:4])
                last_frame.append(rows.frame_id[idx[obs_len - 1]])
                classes.append(rows.class_id[idx[obs_len - 1]])
                last_pos.append(pos[idx[obs_len - 1]])
                ids.append(track_id)
    n = len(obs)
    nbr_xy, nbr_mask = (
        _neighbours(
            tracks, frames, np.asarray(last_pos, np.int64), np.asarray(ids, np.int64), neighbours
        )
        if neighbours > 0
        else (None, None)
    )
    return Windows(
        obs_xy=np.asarray(obs, np.float32).reshape(n, obs_len, 2),
        fut_xy=np.asarray(fut, np.float32).reshape(n, pred_len, 2),
        obs_box_wh=(
            np.asarray(boxes, np.float32).reshape(n, obs_len, 2)
            if tracks.box_xywh is not None
            else None
        ),
        file_index=np.zeros(n, np.int64),
        frame_id=np.asarray(last_frame, np.int64),
        track_id=np.asarray(ids, np.int64),
        files=[tracks.source],
        units=tracks.units,
        nbr_xy=nbr_xy,
        nbr_mask=nbr_mask,
        class_id=np.asarray(classes, np.int64),
    )


def _neighbours(
    tracks: Tracks, frames: np.ndarray, last_pos: np.ndarray, ids: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(N, k, 2, 2) positions of the k nearest other agents present at both of the last two
    observed distinct frames of each window, and their (N, k) mask. Only observed frames are
    read, so no future leaks in."""
    order = np.lexsort((tracks.track_id, tracks.frame_id))
    frame_pos = np.searchsorted(frames, tracks.frame_id[order])
    starts = np.searchsorted(frame_pos, np.arange(len(frames) + 1))
    tid, xy = tracks.track_id[order], tracks.xy[order]
    out = np.zeros((len(ids), k, 2, 2), np.float32)
    mask = np.zeros((len(ids), k), bool)
    for i, (p, me) in enumerate(zip(last_pos.tolist(), ids.tolist(), strict=False)):
        if p == 0:
            continue
        a, b = slice(starts[p - 1], starts[p]), slice(starts[p], starts[p + 1])
        both, ia, ib = np.intersect1d(tid[a], tid[b], assume_unique=True, return_indices=True)
        keep = both != me
        if not keep.any():
            continue
        prev, last = xy[a][ia[keep]], xy[b][ib[keep]]
        mine = xy[b][tid[b] == me][0]
        near = np.argsort(np.linalg.norm(last - mine, axis=1))[:k]
        out[i, : len(near), 0], out[i, : len(near), 1] = prev[near], last[near]
        mask[i, : len(near)] = True
    return out, mask


def resample_tracks(tracks: Tracks, frames_per_step: float) -> Tracks:
    """Resample video-rate tracks to the model's time step by linear interpolation in time.

    `frames_per_step` = fps * dt_s (e.g. 25 fps * 0.4 s = 10 frames). Output frame ids are the
    (rounded) video frames of the samples, so windows over distinct frame ids step by dt_s.
    Samples are taken on a global grid (frame 1, 1 + k * frames_per_step, ...) so all tracks
    of one video share the same sample frames.
    """
    if not frames_per_step >= 1:  # also NaN
        raise InputError(
            tracks.source or "tracks",
            f"a model step spans {frames_per_step:g} frames at this frame rate (fps * dt_s); it "
            f"must span at least one: give the frame rate of video-rate tracks, and none (fps "
            f"0) for tracks already at the model step such as ETH/UCY",
        )
    parts = []
    for track_id, rows in tracks.by_track():
        f = rows.frame_id.astype(np.float64)
        k0 = np.ceil((f[0] - 1) / frames_per_step - 1e-9)
        k1 = np.floor((f[-1] - 1) / frames_per_step + 1e-9)
        if k1 < k0:
            continue
        grid = 1 + np.arange(k0, k1 + 1) * frames_per_step
        # Do not interpolate across gaps longer than one step: split there instead.
        gap = np.diff(f) > frames_per_step + 1e-9
        seg_id = np.r_[0, np.cumsum(gap)]
        seg_of_grid = seg_id[np.clip(np.searchsorted(f, grid, side="right") - 1, 0, len(f) - 1)]
        seg_end = np.searchsorted(f, grid, side="left")
        ok = seg_of_grid == seg_id[np.clip(seg_end, 0, len(f) - 1)]
        grid = grid[ok]
        if len(grid) == 0:
            continue
        xy = np.stack([np.interp(grid, f, rows.xy[:, i]) for i in range(2)], axis=1)
        box = (
            None
            if rows.box_xywh is None
            else np.stack([np.interp(grid, f, rows.box_xywh[:, i]) for i in range(4)], axis=1)
        )
        parts.append(
            Tracks(
                np.rint(grid),
                np.full(len(grid), track_id),
                xy,
                box,
                np.full(len(grid), rows.class_id[0]),
                np.interp(grid, f, rows.conf),
                tracks.units,
                tracks.source,
            )
        )
    out = Tracks.concat(parts) if parts else Tracks.empty(tracks.units, tracks.box_xywh is not None)
    out.source = tracks.source
    return out
