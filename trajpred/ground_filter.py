"""Smoothing tracks on the ground plane: a constant-velocity Kalman filter per track whose
measurement noise is the detector's pixel noise carried through the homography.

Why: a box's bottom edge jitters by a few pixels whatever the distance, but on the ground a
pixel covers more and more metres with depth (about depth**2 / (focal * camera height) along
the line of sight). On a synthetic low camera (4 m high, tilted 20 degrees; detector boxes
against ground truth) the bottom centre's error was 1-4 px at every distance, which is
0.06 m of depth at 10 m but 0.8-1.0 m beyond 18 m: steps of noise larger than the steps
people take in 0.4 s, far beyond the observation noise the forecaster was trained with
(<= 0.06 m). Each measurement's noise is therefore J diag(noise_px**2) J^T, J the local
Jacobian of image -> ground at the measured pixel, so the filter trusts far measurements
along the line of sight little and near ones a lot; the motion model is constant velocity with
white acceleration noise (`accel_mps2`).
"""

from __future__ import annotations

import numpy as np

from .geometry import GroundPlane
from .tracks import Tracks


class GroundFilter:
    """Per-track constant-velocity Kalman filters on the ground plane, updated one video frame
    at a time for all the tracks seen on it (batched).

    noise_px: standard deviation of a bottom centre, pixels (the same along u and v).
    accel_mps2: standard deviation of the acceleration the motion model allows, m/s^2.
    speed_mps: prior standard deviation of a new track's velocity, m/s.
    """

    def __init__(
        self,
        ground: GroundPlane,
        noise_px: float,
        accel_mps2: float = 1.0,
        speed_mps: float = 1.5,
    ):
        self.ground = ground
        self.noise_px, self.accel_mps2, self.speed_mps = noise_px, accel_mps2, speed_mps
        self.state: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}  # id -> (x, P, time_s)

    def drop(self, track_id: int) -> None:
        self.state.pop(track_id, None)

    def update(self, time_s: float, track_ids, xy_px: np.ndarray, xy_m: np.ndarray) -> np.ndarray:
        """Filter one frame: tracks `track_ids` measured at xy_px (N, 2) pixels, xy_m (N, 2)
        metres (xy_px on the ground) at `time_s` -> (N, 2) filtered ground positions, metres."""
        n = len(xy_m)
        if n == 0:
            return np.zeros((0, 2))
        jac = self.ground.image_jacobian(xy_px)  # (N, 2, 2) metres per pixel
        r = self.noise_px**2 * jac @ jac.transpose(0, 2, 1)  # (N, 2, 2) measurement noise, m^2
        x = np.zeros((n, 4))
        p = np.zeros((n, 4, 4))
        dt = np.zeros(n)
        new = np.zeros(n, bool)
        for j, tid in enumerate(map(int, track_ids)):
            if tid in self.state:
                x[j], p[j], t = self.state[tid]
                dt[j] = time_s - t
            else:
                new[j] = True
        # New tracks start at their measurement, at rest with an uncertain velocity.
        x[new, :2] = xy_m[new]
        p[new, :2, :2] = r[new]
        p[new, 2:, 2:] = self.speed_mps**2 * np.eye(2)
        # Predict (constant velocity over dt, white acceleration noise).
        f = np.tile(np.eye(4), (n, 1, 1))
        f[:, 0, 2] = f[:, 1, 3] = dt
        q = np.zeros((n, 4, 4))
        a2 = self.accel_mps2**2
        for i in range(2):
            q[:, i, i] = a2 * dt**4 / 4
            q[:, i, i + 2] = q[:, i + 2, i] = a2 * dt**3 / 2
            q[:, i + 2, i + 2] = a2 * dt**2
        x = np.einsum("nij,nj->ni", f, x)
        p = f @ p @ f.transpose(0, 2, 1) + q
        # Update with the measurement (H = [I 0]).
        s = p[:, :2, :2] + r
        gain = p[:, :, :2] @ np.linalg.inv(s)  # (N, 4, 2)
        x = x + np.einsum("nij,nj->ni", gain, xy_m - x[:, :2])
        p = p - gain @ p[:, :2, :]
        for j, tid in enumerate(map(int, track_ids)):
            self.state[tid] = (x[j], p[j], time_s)
        return x[:, :2].copy()


def ground_tracks(
    tracks: Tracks,
    ground: GroundPlane,
    fps: float,
    noise_px: float,
    restart_after_frames: float,
) -> Tracks:
    """Pixel tracks (bottom centres, 1-based video frames) -> the ground positions in metres
    that the live forecaster reads from them (trajpred/pipeline.py, LiveForecaster): each
    frame mapped through `ground` (its checks name the frame and track of a bad point) and,
    with noise_px > 0, filtered here frame by frame in order, a track's filter restarting
    after a gap of more than `restart_after_frames` frames, as the live forecaster restarts
    it. `adapt` learns from these, so an adapted model sees the histories it will be given:
    fitted to raw positions, it learnt to damp jitter that the live filter has removed."""
    tracks = tracks.sorted()
    world = np.zeros_like(tracks.xy, dtype=np.float64)
    smoother = GroundFilter(ground, noise_px) if noise_px > 0 else None
    last_seen: dict[int, int] = {}
    frames, starts = np.unique(tracks.frame_id, return_index=True)
    ends = np.append(starts[1:], len(tracks.frame_id))
    for frame, a, b in zip(frames.tolist(), starts.tolist(), ends.tolist(), strict=True):
        ids, xy = tracks.track_id[a:b], tracks.xy[a:b]
        world[a:b] = ground.to_ground(xy, int(frame), ids)
        if smoother is None:
            continue
        for tid in ids.tolist():
            if frame - last_seen.get(tid, frame) > restart_after_frames:
                smoother.drop(tid)
            last_seen[tid] = frame
        world[a:b] = smoother.update((frame - 1) / fps, ids, xy, world[a:b])
    return Tracks(tracks.frame_id, tracks.track_id, world, None, tracks.class_id, tracks.conf, "m")
