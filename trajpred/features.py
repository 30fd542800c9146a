"""Positions <-> model features, the same way for whole windows and for one streaming step.

Normalisation (so one model serves metres and pixels, any direction of travel):
- scale: positions are divided by `scale`, source units per model unit. Ground-plane data is
  in metres (scale 1). Pixel tracks use the box height: scale = box height / 1.7, i.e. pixels
  per metre for a person, so model units are roughly metres in both cases.
- heading: every step's displacement is written in the frame of the direction of the last
  displacement that moved more than `MOVING_EPS` (the heading), so features are invariant to
  rotation and built from the past only; a track's LSTM state can therefore be advanced one
  step at a time without re-encoding its window. Forecasts come out in the heading frame of
  the last step, relative to the last position, and are mapped back here.
- scene (camera-specific models only, `ForecasterConfig.scene_input`): where the track stands,
  mapped from the scene's bounds to [-1, 1], with sin/cos terms, and its heading in the
  scene's own axes (these are deliberately not rotation invariant: they say where in this
  camera's view the track is, which is what a scene-specific model learns from).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import BOX_FEATURES, SCENE_FREQUENCIES, ForecasterConfig, ForecastOutput

PERSON_HEIGHT_M = 1.7
MOVING_EPS = 0.02  # model units (~metres) per step below which the heading is kept


@dataclass
class Heading:
    """Per-track normalisation state. direction: (B, 2) unit vectors; known: (B,) bool."""

    direction: torch.Tensor
    known: torch.Tensor

    @classmethod
    def unknown(cls, batch: int, device=None) -> Heading:
        direction = torch.zeros(batch, 2, device=device)
        direction[:, 0] = 1.0
        return cls(direction, torch.zeros(batch, dtype=torch.bool, device=device))


def rotate_into(direction: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Express vectors v (..., 2) in the frame whose +x axis is `direction` (..., 2)."""
    c, s = direction[..., 0], direction[..., 1]
    return torch.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]], -1)


def rotate_from(direction: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inverse of rotate_into."""
    c, s = direction[..., 0], direction[..., 1]
    return torch.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], -1)


def step_features(
    step_xy: torch.Tensor,
    heading: Heading,
    box_wh: torch.Tensor | None = None,
    prev_box_wh: torch.Tensor | None = None,
    appearance: torch.Tensor | None = None,
) -> tuple[torch.Tensor, Heading]:
    """One step's features from its displacement (B, 2) in model units.

    Returns features (B, MOTION + BOX [+ appearance]) and the heading after this step.
    """
    length = step_xy.norm(dim=-1)
    moving = length > MOVING_EPS
    unit = step_xy / length.clamp_min(1e-9)[:, None]
    # A track's first moving step defines its first heading.
    ref = torch.where((~heading.known & moving)[:, None], unit, heading.direction)
    if box_wh is None or prev_box_wh is None:
        box = step_xy.new_zeros(len(step_xy), BOX_FEATURES)
    else:
        box = torch.stack(
            [
                torch.ones_like(length),
                box_wh[:, 0] / box_wh[:, 1].clamp_min(1e-6),
                torch.log(box_wh[:, 1].clamp_min(1e-6) / prev_box_wh[:, 1].clamp_min(1e-6)),
            ],
            -1,
        )
    motion = [rotate_into(ref, step_xy), length[:, None]]
    parts = [*motion, box] + ([appearance] if appearance is not None else [])
    new_heading = Heading(torch.where(moving[:, None], unit, ref), heading.known | moving)
    return torch.cat(parts, -1), new_heading


def window_scale(obs_box_wh: torch.Tensor | None, batch: int, device=None) -> torch.Tensor:
    """(B,) source units per model unit: 1 without boxes, median box height / 1.7 with them."""
    if obs_box_wh is None:
        return torch.ones(batch, device=device)
    return obs_box_wh[..., 1].median(dim=1).values.clamp_min(1.0) / PERSON_HEIGHT_M


def window_features(
    obs_xy: torch.Tensor,
    scale: torch.Tensor,
    obs_box_wh: torch.Tensor | None = None,
    appearance: torch.Tensor | None = None,
):
    """obs_xy (B, T, 2) source units -> features (B, T-1, F), final Heading, last speed (B,).

    `appearance` (B, T, A), when given, is taken at each step's end point.
    """
    steps = (obs_xy[:, 1:] - obs_xy[:, :-1]) / scale[:, None, None]
    heading = Heading.unknown(len(obs_xy), obs_xy.device)
    feats = []
    for t in range(steps.shape[1]):
        box, prev_box = (
            (obs_box_wh[:, t + 1], obs_box_wh[:, t]) if obs_box_wh is not None else (None, None)
        )
        app = appearance[:, t + 1] if appearance is not None else None
        f, heading = step_features(steps[:, t], heading, box, prev_box, app)
        feats.append(f)
    return torch.stack(feats, 1), heading, speed_along(steps[:, -1], heading)


def speed_along(step_xy: torch.Tensor, heading: Heading) -> torch.Tensor:
    """(B,) the last step's length along the current heading: the constant-velocity speed
    (rotate_into's first component, in two ops)."""
    return (heading.direction * step_xy).sum(-1)


def to_positions(
    rel: torch.Tensor, origin: torch.Tensor, heading: Heading, scale: torch.Tensor
) -> torch.Tensor:
    """Heading-frame offsets (B, ..., steps, 2) in model units -> source positions."""
    extra = rel.dim() - 2
    view = lambda x: x.view(x.shape[0], *([1] * extra), *x.shape[1:])  # noqa: E731
    return view(origin) + view(scale[:, None]) * rotate_from(view(heading.direction), rel)


def to_heading_frame(
    xy: torch.Tensor, origin: torch.Tensor, heading: Heading, scale: torch.Tensor
) -> torch.Tensor:
    """Source positions (B, steps, 2) -> heading-frame offsets in model units (for losses)."""
    return rotate_into(heading.direction[:, None], (xy - origin[:, None]) / scale[:, None, None])


def output_positions(
    out: ForecastOutput, origin, heading, scale
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (B, pred_len, 2), modes (B, M, pred_len, 2)) in source units."""
    if out.modes is None:
        raise ValueError("a forecast decoded without its modes (mixture=False) has no modes")
    return to_positions(out.mean, origin, heading, scale), to_positions(
        out.modes, origin, heading, scale
    )


def neighbour_features(
    nbr_xy: torch.Tensor,
    origin: torch.Tensor,
    own_step: torch.Tensor,
    heading: Heading,
    scale: torch.Tensor,
) -> torch.Tensor:
    """Neighbours at the last two observations, nbr_xy (B, K, 2, 2) source units, seen from each
    agent at `origin` (B, 2) with last step own_step (B, 2): (B, K, 6) in its heading frame, model
    units: relative position, the neighbour's step, and its step relative to the agent's."""
    last, k = nbr_xy[:, :, 1], nbr_xy.shape[1]
    # One rotation for the neighbours' offsets, their steps and our own step (few small ops:
    # the live forecaster builds these on every observation).
    moves = torch.cat([last - origin[:, None], last - nbr_xy[:, :, 0], own_step[:, None]], 1)
    turned = rotate_into(heading.direction[:, None], moves / scale[:, None, None])
    rel, step, own = turned.split([k, k, 1], 1)
    return torch.cat([rel, step, step - own], -1)


def scene_features(
    xy: torch.Tensor,
    direction: torch.Tensor,
    class_id: torch.Tensor | None,
    cfg: ForecasterConfig,
) -> torch.Tensor:
    """Last positions xy (B, 2) in source units, heading directions (B, 2), class ids (B,) or
    None -> (B, cfg.scene_features): position scaled so cfg.scene_bounds span [-1, 1] (clamped
    to +-1.5), sin and cos of pi * f * position for f in SCENE_FREQUENCIES, the heading, and a
    one-hot of the class over cfg.scene_classes (all zero for other or unknown classes)."""
    x_min, y_min, x_max, y_max = cfg.scene_bounds
    lo = xy.new_tensor([x_min, y_min])
    size = xy.new_tensor([x_max - x_min, y_max - y_min]).clamp_min(1e-6)
    pos = (2 * (xy - lo) / size - 1).clamp(-1.5, 1.5)
    parts = [pos]
    for f in SCENE_FREQUENCIES:
        parts += [torch.sin(torch.pi * f * pos), torch.cos(torch.pi * f * pos)]
    parts.append(direction)
    if cfg.scene_classes:
        classes = xy.new_tensor(cfg.scene_classes)
        ids = (
            xy.new_full((len(xy),), -1.0) if class_id is None else class_id.to(xy.dtype).reshape(-1)
        )
        parts.append((ids[:, None] == classes[None, :]).to(xy.dtype))
    return torch.cat(parts, -1)
