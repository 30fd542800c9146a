"""Running the forecaster: on batches of windows, and streaming over live tracks.

Both paths build features with trajpred/features.py, so a track advanced one step at a time
gets the same forecast as its window encoded at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .features import (
    PERSON_HEIGHT_M,
    Heading,
    neighbour_features,
    output_positions,
    scene_features,
    speed_along,
    step_features,
    to_positions,
    window_features,
    window_scale,
)
from .model import Forecaster, ForecastOutput


@dataclass
class Forecasts:
    """Forecasts for N tracks/windows, in the source's units.

    mean: (N, pred_len, 2) deterministic forecast.
    samples: (N, K, pred_len, 2) K trajectories (the K most probable modes when K <= modes,
        else every mode and then draws of a mode with its Gaussian noise; see draw_samples),
        or None.
    sigma: (N, pred_len) standard deviation of the most probable mode, source units, or None.
    """

    mean: np.ndarray
    samples: np.ndarray | None = None
    sigma: np.ndarray | None = None


def draw_samples(
    out: ForecastOutput,
    modes_xy: torch.Tensor,
    scale: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, k, pred_len, 2) trajectories in source units from the mixture head: the k most
    probable modes, most probable first; for k above the M modes, all M modes and then k - M
    draws (a mode picked by probability, plus its Gaussian noise).

    The samples of a smaller k are the first ones of a larger k (from the same generator state),
    so best-of-K never gets worse as K grows.
    """
    m = out.mode_logits.shape[1]
    order = out.mode_logits.sort(dim=1, descending=True, stable=True).indices[:, : min(k, m)]
    top = modes_xy[torch.arange(len(order), device=order.device)[:, None], order]
    if k <= m:
        return top
    # One draw at a time, on the CPU, so the first draws do not depend on k or the device.
    probs = out.mode_logits.softmax(1).cpu()
    sigma_xy = (out.mode_sigma * scale[:, None, None]).cpu()  # (B, M, pred_len) source units
    centres = modes_xy.cpu()
    rows = torch.arange(len(probs))
    draws = []
    for _ in range(k - m):
        pick = torch.multinomial(probs, 1, generator=generator)[:, 0]  # (B,)
        noise = torch.randn(centres[:, 0].shape, generator=generator)  # (B, pred_len, 2)
        draws.append(centres[rows, pick] + noise * sigma_xy[rows, pick][..., None])
    return torch.cat([top, torch.stack(draws, 1).to(top.device)], 1)


def top_mode_sigma(out: ForecastOutput, scale: torch.Tensor) -> torch.Tensor:
    best = out.mode_logits.argmax(1)
    return out.mode_sigma[torch.arange(len(best)), best] * scale[:, None]


def window_inputs(
    model: Forecaster,
    obs: torch.Tensor,
    box: torch.Tensor | None,
    nbr_xy: torch.Tensor | None = None,
    nbr_mask: torch.Tensor | None = None,
    class_id: torch.Tensor | None = None,
):
    """Everything the model reads from a batch of windows: (inputs for model(...), heading, scale).

    class_id (B,) is read only by camera-specific models with class input (cfg.scene_classes).
    """
    scale = window_scale(box, len(obs))
    features, heading, speed = window_features(obs, scale, box if model.cfg.box_features else None)
    nbr = None
    if model.cfg.social_neighbours > 0 and nbr_xy is not None:
        nbr = neighbour_features(nbr_xy, obs[:, -1], obs[:, -1] - obs[:, -2], heading, scale)
    scene = (
        scene_features(obs[:, -1], heading.direction, class_id, model.cfg)
        if model.cfg.reads_scene
        else None
    )
    return (features, speed, nbr, nbr_mask if nbr is not None else None, scene), heading, scale


@torch.no_grad()
def forecast_windows(
    model: Forecaster,
    obs_xy: np.ndarray,
    obs_box_wh: np.ndarray | None = None,
    k: int = 0,
    batch_size: int = 4096,
    seed: int = 0,
    nbr_xy: np.ndarray | None = None,
    nbr_mask: np.ndarray | None = None,
    class_id: np.ndarray | None = None,
) -> Forecasts:
    """Forecast from observed windows obs_xy (N, T, 2) in source units (neighbours and class
    ids (N,) optional)."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    means, samples, sigmas = [], [], []
    part = lambda a, start: None if a is None else torch.as_tensor(a[start : start + batch_size])  # noqa: E731
    for start in range(0, len(obs_xy), batch_size):
        obs = torch.as_tensor(obs_xy[start : start + batch_size], dtype=torch.float32)
        inputs, heading, scale = window_inputs(
            model,
            obs,
            part(obs_box_wh, start),
            part(nbr_xy, start),
            part(nbr_mask, start),
            part(class_id, start),
        )
        out = model(*inputs)
        mean, modes = output_positions(out, obs[:, -1], heading, scale)
        means.append(mean.numpy())
        sigmas.append(top_mode_sigma(out, scale).numpy())
        if k:
            samples.append(draw_samples(out, modes, scale, k, generator).numpy())
    n, steps = len(obs_xy), model.cfg.pred_len
    return Forecasts(
        np.concatenate(means) if means else np.zeros((n, steps, 2), np.float32),
        (np.concatenate(samples) if samples else np.zeros((n, k, steps, 2), np.float32))
        if k
        else None,
        np.concatenate(sigmas) if sigmas else np.zeros((n, steps), np.float32),
    )


class TrackStreams:
    """LSTM state of every live track, advanced one model step (dt_s) at a time, in batches.

    A track's first observation only sets its position; each later one adds one displacement
    feature and one LSTM step, so a forecast never re-encodes the track's history. Positions
    are in source units (pixels or metres); `box_wh` (pixels) sets the per-track scale
    (box height / 1.7 = pixels per metre, smoothed) and the box features.
    """

    def __init__(self, model: Forecaster, device: str | torch.device = "cpu", capacity: int = 64):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.slot: dict[int, int] = {}
        self._free: list[int] = []
        self._clock = 0  # observe() calls so far: tracks observed in one call are neighbours
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        cfg, dev = self.model.cfg, self.device
        old = getattr(self, "h", None)
        n_old = 0 if old is None else old.shape[1]
        new = {
            "h": torch.zeros(cfg.num_layers, capacity, self.model.state_size, device=dev),
            "c": torch.zeros(cfg.num_layers, capacity, self.model.state_size, device=dev),
            "last_xy": torch.zeros(capacity, 2, device=dev),
            "last_box": torch.zeros(capacity, 2, device=dev),
            "last_step": torch.zeros(capacity, 2, device=dev),
            "direction": torch.tensor([[1.0, 0.0]], device=dev).repeat(capacity, 1),
            "known": torch.zeros(capacity, dtype=torch.bool, device=dev),
            "scale": torch.ones(capacity, device=dev),
            "count": torch.zeros(capacity, dtype=torch.long, device=dev),
            "observed_at": torch.full((capacity,), -1, dtype=torch.long, device=dev),
            "class_id": torch.full((capacity,), -1, dtype=torch.long, device=dev),
        }
        for name, tensor in new.items():
            if old is not None:
                dim = 1 if name in ("h", "c") else 0
                tensor.narrow(dim, 0, n_old).copy_(getattr(self, name))
            setattr(self, name, tensor)
        self._free.extend(range(capacity - 1, n_old - 1, -1))

    def _slots(self, track_ids) -> torch.Tensor:
        for tid in map(int, track_ids):
            if tid not in self.slot:
                if not self._free:
                    self._alloc(2 * self.h.shape[1])
                self.slot[tid] = self._free.pop()
        return torch.tensor(
            [self.slot[int(t)] for t in track_ids], dtype=torch.long, device=self.device
        )

    def drop(self, track_ids) -> None:
        """Forget tracks that ended; their slots are reused."""
        for tid in map(int, track_ids):
            s = self.slot.pop(tid, None)
            if s is not None:
                self.count[s] = 0
                self.known[s] = False
                self.class_id[s] = -1
                self.direction[s] = torch.tensor([1.0, 0.0], device=self.device)
                self.h[:, s] = 0
                self.c[:, s] = 0
                self._free.append(s)

    def n_observed(self, track_ids) -> np.ndarray:
        """(N,) observations seen per track (0 for unknown ids)."""
        counts = self.count.cpu().numpy()
        return np.array(
            [counts[self.slot[int(t)]] if int(t) in self.slot else 0 for t in track_ids],
            dtype=np.int64,
        )

    @torch.no_grad()
    def observe(
        self,
        track_ids,
        xy: np.ndarray,
        box_wh: np.ndarray | None = None,
        appearance: np.ndarray | None = None,
        class_id: np.ndarray | None = None,
    ) -> None:
        """One observation per listed track, one model step after its previous one (class ids
        (N,) are kept for camera-specific models that read the class)."""
        if len(track_ids) == 0:
            return
        slots = self._slots(track_ids)
        xy_t = torch.as_tensor(np.asarray(xy), dtype=torch.float32, device=self.device)
        box_t = (
            None
            if box_wh is None
            else torch.as_tensor(np.asarray(box_wh), dtype=torch.float32, device=self.device)
        )
        first = self.count[slots] == 0
        if box_t is not None:
            # pixels per metre from the box height, smoothed so one bad box cannot jump the scale
            fresh = box_t[:, 1].clamp_min(1.0) / PERSON_HEIGHT_M
            self.scale[slots] = torch.where(first, fresh, 0.8 * self.scale[slots] + 0.2 * fresh)
        cont = slots[~first]
        if len(cont):
            rows = ~first
            step = (xy_t[rows] - self.last_xy[cont]) / self.scale[cont, None]
            heading = Heading(self.direction[cont], self.known[cont])
            app = (
                None
                if appearance is None
                else torch.as_tensor(appearance, dtype=torch.float32, device=self.device)[rows]
            )
            use_box = box_t is not None and self.model.cfg.box_features
            feats, heading = step_features(
                step,
                heading,
                box_t[rows] if use_box else None,
                self.last_box[cont] if use_box else None,
                app,
            )
            _, (h, c) = self.model.step(feats, (self.h[:, cont], self.c[:, cont]))
            self.h[:, cont], self.c[:, cont] = h, c
            self.direction[cont], self.known[cont] = heading.direction, heading.known
            self.last_step[cont] = step
        self.last_xy[slots] = xy_t
        if box_t is not None:
            self.last_box[slots] = box_t
        if class_id is not None:
            self.class_id[slots] = torch.as_tensor(np.asarray(class_id), device=self.device)
        self.count[slots] += 1
        self.observed_at[slots] = self._clock
        self._clock += 1

    def _neighbours(self, slots: torch.Tensor, heading):
        """Neighbour features of the forecast tracks from every live track's last two samples
        (the same quantities windows carry), or (None, None) for a model without them."""
        k = self.model.cfg.social_neighbours
        if k <= 0:
            return None, None
        live = torch.tensor(sorted(self.slot.values()), dtype=torch.long, device=self.device)
        live = live[self.count[live] >= 2]
        if len(live) == 0:
            return None, None
        last = self.last_xy[live]  # (L, 2) source units
        prev = last - self.last_step[live] * self.scale[live, None]
        dist = torch.cdist(self.last_xy[slots], last)  # (B, L)
        # Not oneself, and only tracks sampled at the same moment (same observe() call).
        dist[
            (slots[:, None] == live[None, :])
            | (self.observed_at[slots][:, None] != self.observed_at[live][None, :])
        ] = float("inf")
        near = dist.topk(min(k, len(live)), dim=1, largest=False)
        mask = torch.isfinite(near.values)
        pair = torch.stack([prev[near.indices], last[near.indices]], 2)  # (B, k', 2, 2)
        own_step = self.last_step[slots] * self.scale[slots, None]
        return neighbour_features(
            pair, self.last_xy[slots], own_step, heading, self.scale[slots]
        ), mask

    @torch.no_grad()
    def forecast(self, track_ids, k: int = 0) -> Forecasts:
        """Forecasts from each track's current state (tracks need >= 2 observations)."""
        slots = self._slots(track_ids)
        heading = Heading(self.direction[slots], self.known[slots])
        nbr, mask = self._neighbours(slots, heading)
        scene = (
            scene_features(
                self.last_xy[slots], heading.direction, self.class_id[slots], self.model.cfg
            )
            if self.model.cfg.reads_scene
            else None
        )
        out = self.model.decode(
            self.h[-1, slots], speed_along(self.last_step[slots], heading), nbr, mask, scene
        )
        scale, origin = self.scale[slots], self.last_xy[slots]
        mean = to_positions(out.mean, origin, heading, scale)
        samples = None
        if k:
            samples = (
                draw_samples(out, to_positions(out.modes, origin, heading, scale), scale, k)
                .cpu()
                .numpy()
            )
        return Forecasts(mean.cpu().numpy(), samples, top_mode_sigma(out, scale).cpu().numpy())
