"""The synthetic crowd: pedestrians walking on the ground plane, simulated in metres.

Goal-directed walkers with a bounded turn rate and acceleration, slowly drifting preferred
speed and direction, occasional stops, social-force avoidance of each other, people entering
and leaving through the borders of the walkable area. `run_crowd` records every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: world.py imports this module
    from .world import Area, SynthConfig

GAIT_CYCLE_M = 1.4  # ground covered by one full stride cycle (two steps)
ARRIVE_M = 0.8  # a goal this close counts as reached
EXIT_OUT_M = 1.5  # exits lie this far outside the area, so people walk out of it
SPEED_TAU_S = 5.0  # each person's preferred speed drifts around their own mean ...
SPEED_DRIFT_MPS = 0.12  # ... by about this much
WANDER_TAU_S = 4.0  # the drift of the walking direction: a random target angle with this
WANDER_LAG_S = 1.5  # time constant, followed with this lag (so headings change smoothly)
SOCIAL_RANGE_M = 0.6  # social force: A * exp((range - distance) / falloff), A = cfg.avoidance
SOCIAL_FALLOFF_M = 0.3
SOCIAL_BEHIND = 0.3  # weight of people behind relative to people ahead
MAX_AGE_S = 180.0  # after this long in the area a person heads for an exit
OBSTACLE_CLEARANCE_M = 0.6  # people keep this far from the obstacle's edge
SIDE_NORMALS = np.array([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # see _border_points


@dataclass
class CrowdRecord:
    """The crowd's state at every frame: one row per (frame, person in the area), by frame.

    frame_start (n_frames + 1,) row offsets; person_id (N,) 1-based; world_xy_m (N, 2);
    heading_rad (N,); speed_mps (N,); walk_phase (N,) radians of the stride cycle;
    points_of_interest (Q, 2) metres; n_people: ids run 1..n_people; kind (n_people,) each
    person's kind by id - 1 (0 walker, 1 cyclist).
    """

    frame_start: np.ndarray
    person_id: np.ndarray
    world_xy_m: np.ndarray
    heading_rad: np.ndarray
    speed_mps: np.ndarray
    walk_phase: np.ndarray
    points_of_interest: np.ndarray
    n_people: int
    kind: np.ndarray


class Crowd:
    """People walking on the ground plane.

    Each name in PER_PERSON is an array over the people now in the area, (n,) or (n, 2):
    id, position and goal (metres), whether the goal is an exit, the side they came in by,
    heading (rad), speed, mean and current preferred speed (m/s), seconds left standing,
    stride phase (rad), direction drift and its target (rad), seconds in the area, kind (0
    walker, 1 cyclist: faster, turns more slowly, never stops, visits no point of interest).
    """

    PER_PERSON = (
        "id",
        "pos",
        "goal",
        "goal_is_exit",
        "entry_side",
        "heading",
        "speed",
        "mean_speed",
        "pref_speed",
        "stop_left",
        "phase",
        "wander",
        "wander_target",
        "age",
        "kind",
    )
    id: np.ndarray
    pos: np.ndarray
    goal: np.ndarray
    goal_is_exit: np.ndarray
    entry_side: np.ndarray
    heading: np.ndarray
    speed: np.ndarray
    mean_speed: np.ndarray
    pref_speed: np.ndarray
    stop_left: np.ndarray
    phase: np.ndarray
    wander: np.ndarray
    wander_target: np.ndarray
    age: np.ndarray
    kind: np.ndarray

    def __init__(self, cfg: SynthConfig, area: Area, rng: np.random.Generator):
        self.cfg, self.area, self.rng = cfg, area, rng
        size = np.array([area.x_max - area.x_min, area.y_max - area.y_min])
        self.side_len = np.array([size[0], size[1], size[0], size[1]])
        self.poi = (
            np.array([area.x_min, area.y_min])
            + size * 0.2
            + rng.random((cfg.n_points_of_interest, 2)) * size * 0.6
        )
        # (centre (2,), radius incl. clearance) or None
        self.obstacle: tuple[np.ndarray, float] | None = None
        if cfg.obstacle_radius_m > 0:
            centre = np.array([area.x_min, area.y_min]) + size * [cfg.obstacle_x, cfg.obstacle_y]
            self.obstacle = (centre, cfg.obstacle_radius_m + OBSTACLE_CLEARANCE_M)
            self.poi = self._outside_obstacle(self.poi, 1.0)
        self.gate = None  # (wall y, opening x_min, opening x_max) or None
        if cfg.gate_y > 0:
            gx = area.x_min + size[0] * cfg.gate_x
            half = max(cfg.gate_width_m / 2 - 0.3, 0.05)
            self.gate = (area.y_min + size[1] * cfg.gate_y, gx - half, gx + half)
        self.next_id = 1
        self.kind_by_id: list[np.ndarray] = []
        dtypes = {"id": np.int64, "goal_is_exit": bool, "entry_side": np.int64, "kind": np.int64}
        for name in self.PER_PERSON:
            shape = (0, 2) if name in ("pos", "goal") else (0,)
            setattr(self, name, np.zeros(shape, dtypes.get(name, np.float64)))

    def _outside_obstacle(self, xy: np.ndarray, extra_m: float) -> np.ndarray:
        """(n, 2) points moved radially out of the obstacle (plus extra_m) where inside it."""
        if self.obstacle is None:
            return xy
        centre, radius = self.obstacle
        d = xy - centre
        r = np.linalg.norm(d, axis=1, keepdims=True)
        inside = r < radius + extra_m
        out = centre + d / np.maximum(r, 1e-6) * (radius + extra_m)
        return np.where(inside, out, xy)

    def _route(self, to_goal: np.ndarray) -> np.ndarray:
        """(n, 2) where each person heads for now: through the gate when the goal is beyond the
        wall, past the obstacle along a tangent when it blocks the way; the goal otherwise."""
        if self.gate is not None:
            wall_y, x0, x1 = self.gate
            goal_y = self.pos[:, 1] + to_goal[:, 1]
            cross = (self.pos[:, 1] - wall_y) * (goal_y - wall_y) < 0
            beyond = wall_y + np.sign(goal_y - wall_y) * 1.0  # aim 1 m past the wall
            gate_pt = np.column_stack([np.clip(self.pos[:, 0], x0, x1), beyond])
            to_goal = np.where(cross[:, None], gate_pt - self.pos, to_goal)
        if self.obstacle is not None:
            centre, radius = self.obstacle
            d = centre - self.pos
            dist = np.linalg.norm(d, axis=1)
            length2 = np.maximum((to_goal**2).sum(1), 1e-9)
            t = np.clip((d * to_goal).sum(1) / length2, 0, 1)
            closest = np.linalg.norm(self.pos + t[:, None] * to_goal - centre, axis=1)
            blocked = (closest < radius) & (dist > radius)
            half = np.arcsin(np.clip(radius / np.maximum(dist, 1e-6), 0, 1)) * 1.1
            base = np.arctan2(d[:, 1], d[:, 0])
            want = np.arctan2(to_goal[:, 1], to_goal[:, 0])
            left, right = base + half, base - half
            off = lambda a: np.abs(np.angle(np.exp(1j * (a - want))))  # noqa: E731
            side = np.where(off(left) < off(right), left, right)
            tangent = np.column_stack([np.cos(side), np.sin(side)]) * dist[:, None]
            inside = dist <= radius  # step out radially first
            away = -d / np.maximum(dist, 1e-6)[:, None] * (radius + 1.0 - dist)[:, None]
            to_goal = np.where(blocked[:, None], tangent, to_goal)
            to_goal = np.where(inside[:, None], away, to_goal)
        return to_goal

    # -- people arriving and leaving

    def _border_points(self, exclude_side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) side to avoid (-1: none) -> (n, 2) border points and (n,) their sides.

        Sides: 0 near (y_min), 1 right (x_max), 2 far (y_max), 3 left (x_min); a side is chosen
        in proportion to its length, the point uniformly along it.
        """
        n = len(exclude_side)
        weight = np.where(np.arange(4)[None, :] == exclude_side[:, None], 0.0, self.side_len)
        cum = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)
        side = np.minimum((cum < self.rng.random(n)[:, None]).sum(axis=1), 3)
        along = self.rng.random(n)
        a = self.area
        x = np.select(
            [side == 1, side == 3],
            [np.full(n, a.x_max), np.full(n, a.x_min)],
            a.x_min + along * (a.x_max - a.x_min),
        )
        y = np.select(
            [side == 0, side == 2],
            [np.full(n, a.y_min), np.full(n, a.y_max)],
            a.y_min + along * (a.y_max - a.y_min),
        )
        return np.column_stack([x, y]), side

    def _exit_goals(self, pos: np.ndarray, entry_side: np.ndarray) -> np.ndarray:
        """(n, 2) exits beyond the border, not on the entry side and not too near `pos`."""
        goal = np.zeros_like(pos)
        todo = np.arange(len(pos))
        for _ in range(5):
            point, side = self._border_points(entry_side[todo])
            goal[todo] = point + SIDE_NORMALS[side] * EXIT_OUT_M
            near = np.linalg.norm(goal[todo] - pos[todo], axis=1) < 0.4 * self.side_len.min()
            todo = todo[near]
            if not len(todo):
                break
        return goal

    def _goals(
        self, pos: np.ndarray, entry_side: np.ndarray, kind: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """First goals of new people: a point of interest (poi_prob, walkers only) or an exit."""
        n = len(pos)
        goal = self._exit_goals(pos, entry_side)
        visit = (self.rng.random(n) < self.cfg.poi_prob) & (len(self.poi) > 0) & (kind == 0)
        if visit.any():
            goal[visit] = self.poi[self.rng.integers(0, len(self.poi), visit.sum())]
        return goal, ~visit

    def add(self, pos: np.ndarray, entry_side: np.ndarray) -> None:
        """Add people at (n, 2) positions, facing their first goal at their preferred speed."""
        cfg, rng, n = self.cfg, self.rng, len(pos)
        if n == 0:
            return
        kind = np.zeros(n, np.int64)
        if cfg.cyclist_share > 0:  # no draw otherwise: walker-only scenes stay as they were
            kind = (rng.random(n) < cfg.cyclist_share).astype(np.int64)
        goal, is_exit = self._goals(pos, entry_side, kind)
        mean = np.clip(
            rng.normal(cfg.speed_mean_mps, cfg.speed_std_mps, n),
            cfg.speed_min_mps,
            cfg.speed_max_mps,
        )
        if kind.any():
            riding = kind == 1
            mean[riding] = np.clip(
                rng.normal(cfg.cyclist_speed_mps, cfg.cyclist_speed_std_mps, riding.sum()),
                cfg.speed_min_mps,
                cfg.cyclist_speed_max_mps,
            )
        to_goal = goal - pos
        new = dict(
            id=np.arange(self.next_id, self.next_id + n),
            pos=pos,
            goal=goal,
            goal_is_exit=is_exit,
            entry_side=entry_side,
            heading=np.arctan2(to_goal[:, 1], to_goal[:, 0]),
            speed=mean,
            mean_speed=mean,
            pref_speed=mean,
            stop_left=np.zeros(n),
            phase=rng.uniform(0, 2 * np.pi, n),
            wander=np.zeros(n),
            wander_target=np.zeros(n),
            age=np.zeros(n),
            kind=kind,
        )
        self.kind_by_id.append(kind)
        for name in self.PER_PERSON:
            setattr(self, name, np.concatenate([getattr(self, name), new[name]]))
        self.next_id += n

    def _free(self, pos: np.ndarray, min_gap_m: float = 1.0) -> np.ndarray:
        """(n, 2) candidates -> (n,) bool: at least min_gap_m from everyone, earlier ones
        included."""
        keep = np.zeros(len(pos), bool)
        taken = self.pos
        for i, p in enumerate(pos):
            if len(taken) == 0 or np.min(np.linalg.norm(taken - p, axis=1)) >= min_gap_m:
                keep[i] = True
                taken = np.vstack([taken, p])
        return keep

    def populate(self) -> None:
        """The people already in the area when the video starts, some of them standing."""
        a, n = self.area, self.cfg.n_agents
        pos = np.column_stack(
            [self.rng.uniform(a.x_min, a.x_max, 3 * n), self.rng.uniform(a.y_min, a.y_max, 3 * n)]
        )
        if self.obstacle is not None:
            pos = self._outside_obstacle(pos, 0.0)
        pos = pos[self._free(pos)][:n]
        first = len(self.id)
        self.add(pos, np.full(len(pos), -1))
        standing = (self.rng.random(len(pos)) < 0.1) & (self.kind[first:] == 0)
        self.stop_left[first:][standing] = self.rng.uniform(0, self.cfg.stop_max_s, standing.sum())
        self.speed[first:][standing] = 0.0

    def arrive_and_leave(self, dt_s: float) -> None:
        """Remove people who walked out; let new ones in while the area holds fewer than
        n_agents."""
        gone = self.goal_is_exit & (
            ~self.area.contains(self.pos, 0.5)
            | (np.linalg.norm(self.goal - self.pos, axis=1) < ARRIVE_M)
        )
        if gone.any():
            for name in self.PER_PERSON:
                setattr(self, name, getattr(self, name)[~gone])
        if len(self.id) >= self.cfg.n_agents:
            return
        k = self.rng.poisson(self.cfg.spawn_rate_per_s * dt_s)
        if k:
            point, side = self._border_points(np.full(k, -1))
            pos = point + SIDE_NORMALS[side] * 0.3  # just outside, walking in
            keep = self._free(pos)
            self.add(pos[keep], side[keep])

    # -- walking

    def _avoidance(self, forward: np.ndarray) -> np.ndarray:
        """(n, 2) social-force push in m/s: away from near people, stronger from those ahead,
        with a sideways part (everyone keeps right) that resolves head-on meetings."""
        n = len(self.pos)
        if n < 2 or self.cfg.avoidance == 0:
            return np.zeros((n, 2))
        d = self.pos[None, :, :] - self.pos[:, None, :]  # (n, n, 2): d[i, j] = pos_j - pos_i
        r = np.linalg.norm(d, axis=2)
        np.fill_diagonal(r, np.inf)
        unit = d / np.maximum(r, 1e-6)[:, :, None]
        ahead = np.einsum("id,ijd->ij", forward, unit)  # cos of the angle to j
        weight = SOCIAL_BEHIND + (1 - SOCIAL_BEHIND) * (1 + ahead) / 2
        mag = self.cfg.avoidance * np.exp((SOCIAL_RANGE_M - r) / SOCIAL_FALLOFF_M) * weight
        right = np.stack([unit[:, :, 1], -unit[:, :, 0]], axis=2)
        sideways = (mag * np.clip(ahead, 0, 1))[:, :, None] * right
        push = -(mag[:, :, None] * unit).sum(1) + 0.5 * sideways.sum(1)
        norm = np.linalg.norm(push, axis=1, keepdims=True)
        return push * np.minimum(1.0, 1.5 / np.maximum(norm, 1e-9))

    def step(self, h: float) -> None:
        """Advance everyone by h seconds."""
        cfg, rng, n = self.cfg, self.rng, len(self.id)
        if n == 0:
            return
        forward = np.column_stack([np.cos(self.heading), np.sin(self.heading)])
        to_goal = self.goal - self.pos
        dist = np.linalg.norm(to_goal, axis=1)
        # Head for the goal, off by a slowly drifting angle that fades in the last metres.
        if self.obstacle is not None or self.gate is not None:
            to_goal = self._route(to_goal)
        aim = np.arctan2(to_goal[:, 1], to_goal[:, 0]) + self.wander * np.clip(dist / 3.0, 0, 1)
        wish = self.pref_speed[:, None] * np.column_stack(
            [np.cos(aim), np.sin(aim)]
        ) + self._avoidance(forward)
        turn = np.angle(np.exp(1j * (np.arctan2(wish[:, 1], wish[:, 0]) - self.heading)))
        riding = self.kind == 1
        max_turn = np.radians(np.where(riding, cfg.cyclist_turn_deg_s, cfg.max_turn_deg_s)) * h
        self.heading = np.angle(np.exp(1j * (self.heading + np.clip(turn, -max_turn, max_turn))))
        # Slow down for sharp turns and when arriving at a point of interest; stand when stopped.
        want = np.minimum(np.linalg.norm(wish, axis=1), 1.2 * self.pref_speed)
        want *= np.clip(np.cos(turn), 0.2, 1.0)
        want = np.where(self.goal_is_exit, want, want * np.clip(dist / 1.5, 0.3, 1.0))
        want[self.stop_left > 0] = 0.0
        a = cfg.max_accel_mps2 * h
        self.speed = np.maximum(self.speed + np.clip(want - self.speed, -2 * a, a), 0.0)
        self.pos = (
            self.pos
            + np.column_stack([np.cos(self.heading), np.sin(self.heading)])
            * (self.speed * h)[:, None]
        )
        self.phase = (self.phase + 2 * np.pi * self.speed * h / GAIT_CYCLE_M) % (2 * np.pi)
        self.stop_left = np.maximum(self.stop_left - h, 0.0)
        self.age += h
        # Ornstein-Uhlenbeck drifts: preferred speed around the person's mean, direction around 0.
        self.pref_speed += (
            self.mean_speed - self.pref_speed
        ) * h / SPEED_TAU_S + SPEED_DRIFT_MPS * math.sqrt(
            2 * h / SPEED_TAU_S
        ) * rng.standard_normal(n)
        top = np.where(riding, cfg.cyclist_speed_max_mps, cfg.speed_max_mps)
        self.pref_speed = np.clip(self.pref_speed, cfg.speed_min_mps, top)
        self.wander_target += -self.wander_target * h / WANDER_TAU_S + math.radians(
            cfg.wander_deg
        ) * math.sqrt(2 * h / WANDER_TAU_S) * rng.standard_normal(n)
        self.wander += (self.wander_target - self.wander) * h / WANDER_LAG_S

        stops = (
            (self.stop_left == 0) & (self.speed > 0.5) & (rng.random(n) < cfg.stop_rate_per_s * h)
        ) & ~riding
        self.stop_left[stops] = rng.uniform(cfg.stop_min_s, cfg.stop_max_s, stops.sum())
        # At a point of interest: often linger, then head for an exit. Old-timers leave too.
        done = ~self.goal_is_exit & ((dist < ARRIVE_M) | (self.age > MAX_AGE_S))
        if done.any():
            linger = done & (rng.random(n) < 0.6)
            self.stop_left[linger] = rng.uniform(cfg.stop_min_s, 1.5 * cfg.stop_max_s, linger.sum())
            self.goal[done] = self._exit_goals(self.pos[done], self.entry_side[done])
            self.goal_is_exit[done] = True


def run_crowd(cfg: SynthConfig, area: Area, rng: np.random.Generator) -> CrowdRecord:
    """Simulate cfg.n_frames video frames; each frame is split into steps of <= substep_s."""
    crowd = Crowd(cfg, area, rng)
    crowd.populate()
    dt = 1.0 / cfg.fps
    n_sub = max(1, math.ceil(dt / cfg.substep_s - 1e-9))
    counts, parts = [], []
    for _ in range(cfg.n_frames):
        counts.append(len(crowd.id))
        parts.append(
            [a.copy() for a in (crowd.id, crowd.pos, crowd.heading, crowd.speed, crowd.phase)]
        )
        for _ in range(n_sub):
            crowd.step(dt / n_sub)
        crowd.arrive_and_leave(dt)
    cols = [np.concatenate(c) for c in zip(*parts, strict=False)]
    return CrowdRecord(
        np.r_[0, np.cumsum(counts)].astype(np.int64),
        cols[0].astype(np.int64),
        cols[1].reshape(-1, 2),
        cols[2],
        cols[3],
        cols[4],
        crowd.poi,
        crowd.next_id - 1,
        np.concatenate(crowd.kind_by_id) if crowd.kind_by_id else np.zeros(0, np.int64),
    )
