"""Running the forecaster: on batches of windows, and streaming over live tracks.

Both paths build features with trajpred/features.py, so a track advanced one step at a time
gets the same forecast as its window encoded at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import torch

from .calibration import Calibration, calibration_for
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
from .model import ForecastOutput
from .slots import Slots
from .windows import Windows

if TYPE_CHECKING:
    from .checkpoint import LoadedForecaster


@dataclass
class Forecasts:
    """Forecasts for N tracks/windows, in the source's units.

    mean: (N, pred_len, 2) deterministic forecast.
    samples: (N, K, pred_len, 2) K trajectories (the K most probable modes when K <= modes,
        else every mode and then draws of a mode with its Gaussian noise; see draw_samples),
        or None.
    sigma: (N, pred_len) standard deviation of the most probable mode, source units: the
        model's raw spread, which the calibration turns into r50/r90 (trajpred/calibration.py).
    r50, r90: (N, pred_len) radii of the circles centred on `mean` that hold 50 % and 90 % of
        true positions (calibrated), source units.
    mixture: with mixture=True, the predictive mixture in source units (Mixture), else None.
    """

    mean: np.ndarray
    samples: np.ndarray | None
    sigma: np.ndarray
    r50: np.ndarray
    r90: np.ndarray
    mixture: Mixture | None = None


@dataclass
class Mixture:
    """The predictive distribution of N windows' future positions, source units: mode_xy
    (N, M, P, 2) mode centres, mode_prob (N, M) weights, mode_sigma (N, M, P) isotropic standard
    deviations (the calibration's sigma_scale applied)."""

    mode_xy: np.ndarray
    mode_prob: np.ndarray
    mode_sigma: np.ndarray


def draw_samples(
    out: ForecastOutput,
    modes_xy: torch.Tensor,
    scale: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    sigma_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, k, pred_len, 2) trajectories in source units from the mixture head: the k most
    probable modes, most probable first; for k above the M modes, all M modes and then k - M
    draws (a mode picked by probability, plus its Gaussian noise, its sigma times the
    calibration's sigma_scale (pred_len,) when given).

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
    if sigma_scale is not None:
        sigma_xy = sigma_xy * sigma_scale.cpu()
    centres = modes_xy.cpu()
    rows = torch.arange(len(probs))
    draws = []
    for _ in range(k - m):
        pick = torch.multinomial(probs, 1, generator=generator)[:, 0]  # (B,)
        noise = torch.randn(centres[:, 0].shape, generator=generator)  # (B, pred_len, 2)
        draws.append(centres[rows, pick] + noise * sigma_xy[rows, pick][..., None])
    return torch.cat([top, torch.stack(draws, 1).to(top.device)], 1)


def top_mode_sigma(out: ForecastOutput, scale: torch.Tensor) -> torch.Tensor:
    best = out.mode_logits.argmax(1)[:, None, None].expand(-1, 1, out.mode_sigma.shape[2])
    return out.mode_sigma.gather(1, best)[:, 0] * scale[:, None]


def window_inputs(
    model: LoadedForecaster,
    obs: torch.Tensor,
    box: torch.Tensor | None,
    nbr_xy: torch.Tensor | None = None,
    nbr_mask: torch.Tensor | None = None,
    class_id: torch.Tensor | None = None,
):
    """What the model reads from a batch of windows: (inputs of model(...), heading, scale).

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
    model: LoadedForecaster,
    obs_xy: np.ndarray,
    obs_box_wh: np.ndarray | None = None,
    k: int = 0,
    batch_size: int = 4096,
    seed: int = 0,
    nbr_xy: np.ndarray | None = None,
    nbr_mask: np.ndarray | None = None,
    class_id: np.ndarray | None = None,
    mixture: bool = False,
    calibration: Calibration | None = None,
) -> Forecasts:
    """Forecast from observed windows obs_xy (N, T, 2) in source units (neighbours and class
    ids (N,) optional). mixture: also return the predictive mixture. calibration: what turns
    sigma into radii and scales the mixture (default: the model's own)."""
    model.eval()
    calibration = calibration or calibration_for(model)
    sigma_scale = torch.tensor(calibration.sigma_scale, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in ("mean", "sigma", "samples", "mode_xy", "mode_prob", "mode_sigma")
    }
    # A model on a GPU reads its inputs there; everything after its forward pass stays on the
    # CPU, so sampling draws the same numbers wherever the model runs.
    params = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
    device = params.device if params is not None else torch.device("cpu")

    def part(a: np.ndarray | None, start: int) -> torch.Tensor | None:
        return None if a is None else torch.as_tensor(a[start : start + batch_size])

    def on_device(t: torch.Tensor | None) -> torch.Tensor | None:
        return t if t is None or device.type == "cpu" else t.to(device)

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
        out = model(*(on_device(t) for t in inputs))
        if device.type != "cpu":
            out = out.cpu()
        mean, modes = output_positions(out, obs[:, -1], heading, scale)
        parts["mean"].append(mean.numpy())
        parts["sigma"].append(top_mode_sigma(out, scale).numpy())
        if k:
            parts["samples"].append(
                draw_samples(out, modes, scale, k, generator, sigma_scale).numpy()
            )
        if mixture:
            parts["mode_xy"].append(modes.numpy())
            parts["mode_prob"].append(out.mode_logits.softmax(1).numpy())
            sigma_xy = out.mode_sigma * scale[:, None, None] * sigma_scale
            parts["mode_sigma"].append(sigma_xy.numpy())
    n, steps, m = len(obs_xy), model.cfg.pred_len, model.cfg.num_modes
    empty = {
        "mean": (n, steps, 2),
        "sigma": (n, steps),
        "samples": (n, k, steps, 2),
        "mode_xy": (n, m, steps, 2),
        "mode_prob": (n, m),
        "mode_sigma": (n, m, steps),
    }
    joined = {
        name: np.concatenate(arrays) if arrays else np.zeros(empty[name], np.float32)
        for name, arrays in parts.items()
    }
    r50, r90 = calibration.radii(joined["sigma"])
    return Forecasts(
        joined["mean"],
        joined["samples"] if k else None,
        joined["sigma"],
        r50,
        r90,
        Mixture(joined["mode_xy"], joined["mode_prob"], joined["mode_sigma"]) if mixture else None,
    )


def forecast_on(
    model: LoadedForecaster,
    windows: Windows,
    k: int = 0,
    mixture: bool = False,
    calibration: Calibration | None = None,
) -> Forecasts:
    """`forecast_windows` on a Windows batch: its positions, boxes, neighbours and classes."""
    return forecast_windows(
        model,
        windows.obs_xy,
        windows.obs_box_wh,
        k=k,
        nbr_xy=windows.nbr_xy,
        nbr_mask=windows.nbr_mask,
        class_id=windows.class_id,
        mixture=mixture,
        calibration=calibration,
    )


class TrackStreams:
    """LSTM state of every live track, advanced one model step (dt_s) at a time, in batches.

    A track's first observation only sets its position; each later one adds one displacement
    feature, one LSTM step and a fresh forecast from the new state, all tracks of one `observe`
    call in one model call (`advance`), so a forecast never re-encodes the track's history and
    costs no second call. Positions are in source units (pixels or metres); `box_wh` (pixels)
    sets the per-track scale (box height / 1.7 = pixels per metre, smoothed) and the box
    features.

    samples: whether `forecast` may draw samples (k > 0). Without them each step decodes the
    mixture's most probable mode alone (its sigma is all a forecast reads then), which skips
    most of the mode head's work, and no mixture is kept.
    """

    MIXTURE_FIELDS = ("fc_mean", "fc_modes", "fc_logits", "fc_sigma")
    # Per-slot state, one row per slot (h and c: along dim 1), (re)allocated by `_alloc`.
    h: torch.Tensor
    c: torch.Tensor
    last_xy: torch.Tensor
    last_box: torch.Tensor
    direction: torch.Tensor
    known: torch.Tensor
    scale: torch.Tensor
    class_id: torch.Tensor
    fc_xy: torch.Tensor
    fc_top_sigma: torch.Tensor

    def __init__(
        self,
        model: LoadedForecaster,
        device: str | torch.device = "cpu",
        capacity: int = 64,
        samples: bool = True,
    ):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.calibration = calibration_for(model)
        self._sigma_scale = torch.tensor(self.calibration.sigma_scale, device=self.device)
        self.samples = samples
        # what each slot keeps of its latest forecast
        self.forecast_fields = ("fc_xy", "fc_top_sigma", *(self.MIXTURE_FIELDS if samples else ()))
        self.count = np.zeros(0, np.int64)  # observations per slot (bookkeeping: on the host)
        self.slots = Slots(self._alloc, capacity)
        self.slot = self.slots.row  # track id -> slot

    def _alloc(self, capacity: int) -> None:
        cfg, dev = self.model.cfg, self.device
        n_old = len(self.count)
        m, p = cfg.num_modes, cfg.pred_len
        new = {
            "h": torch.zeros(cfg.num_layers, capacity, self.model.state_size, device=dev),
            "c": torch.zeros(cfg.num_layers, capacity, self.model.state_size, device=dev),
            "last_xy": torch.zeros(capacity, 2, device=dev),
            "last_box": torch.zeros(capacity, 2, device=dev),
            "direction": torch.tensor([[1.0, 0.0]], device=dev).repeat(capacity, 1),
            "known": torch.zeros(capacity, dtype=torch.bool, device=dev),
            "scale": torch.ones(capacity, device=dev),
            "class_id": torch.full((capacity,), -1, dtype=torch.long, device=dev),
            # The forecast made at each track's latest observation: mean positions and top
            # mode's sigma in source units (what every frame reads), and with samples the
            # mixture in the heading frame and model units (read only to draw samples).
            "fc_xy": torch.zeros(capacity, p, 2, device=dev),
            "fc_top_sigma": torch.zeros(capacity, p, device=dev),
        }
        if self.samples:
            new |= {
                "fc_mean": torch.zeros(capacity, p, 2, device=dev),
                "fc_modes": torch.zeros(capacity, m, p, 2, device=dev),
                "fc_logits": torch.zeros(capacity, m, device=dev),
                "fc_sigma": torch.zeros(capacity, m, p, device=dev),
            }
        for name, tensor in new.items():
            if n_old:
                dim = 1 if name in ("h", "c") else 0
                tensor.narrow(dim, 0, n_old).copy_(getattr(self, name))
            setattr(self, name, tensor)
        self.count = np.concatenate([self.count, np.zeros(capacity - n_old, np.int64)])

    @overload
    def _on_device(self, a: np.ndarray, dtype: Any = ...) -> torch.Tensor: ...
    @overload
    def _on_device(self, a: None, dtype: Any = ...) -> None: ...
    @overload
    def _on_device(self, a: np.ndarray | None, dtype: Any = ...) -> torch.Tensor | None: ...
    def _on_device(self, a: np.ndarray | None, dtype: Any = np.float32) -> torch.Tensor | None:
        if a is None:
            return None
        # numpy converts (float64 positions to float32) in a fraction of torch's time
        return torch.as_tensor(np.ascontiguousarray(a, dtype), device=self.device)

    @torch.inference_mode()  # state made inside inference mode is changed only inside it
    def drop(self, track_ids) -> None:
        """Forget tracks that ended; their slots are reused."""
        for tid in map(int, track_ids):
            s = self.slots.release(tid)
            if s is not None:
                self.count[s] = 0
                self.known[s] = False
                self.class_id[s] = -1
                self.direction[s] = torch.tensor([1.0, 0.0], device=self.device)
                for name in ("h", "c"):
                    getattr(self, name)[:, s] = 0
                for name in self.forecast_fields:
                    getattr(self, name)[s] = 0

    def n_observed(self, track_ids) -> np.ndarray:
        """(N,) observations seen per track (0 for unknown ids)."""
        return np.array(
            [self.count[self.slot[int(t)]] if int(t) in self.slot else 0 for t in track_ids],
            dtype=np.int64,
        )

    @torch.inference_mode()  # cheaper than no_grad: no version counters on ~100 small ops
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
        index = self.slots.rows(track_ids)
        first = self.count[index] == 0
        slots = self._on_device(index, np.int64)
        xy_t, box_t, app = self._on_device(xy), self._on_device(box_wh), self._on_device(appearance)
        if box_t is not None:
            # pixels per metre from the box height, smoothed so one bad box cannot jump the scale
            fresh = box_t[:, 1].clamp_min(1.0) / PERSON_HEIGHT_M
            scale = 0.8 * self.scale.index_select(0, slots) + 0.2 * fresh
            if first.any():
                scale = torch.where(self._on_device(first, bool), fresh, scale)
            self.scale.index_copy_(0, slots, scale)
        if class_id is not None and self.model.cfg.reads_scene:  # read when stepping, below
            self.class_id[slots] = self._on_device(class_id, np.int64)
        if not first.any():  # the usual call: every track continues
            self._advance(slots, xy_t, box_t, app)
        else:
            # a new track stays where it is until its second observation
            new = self._on_device(first, bool)
            self.fc_xy[slots[new]] = xy_t[new, None]
            rows = self._on_device(np.flatnonzero(~first), np.int64)
            if len(rows):
                pick = lambda t: None if t is None else t[rows]  # noqa: E731
                self._advance(slots[rows], xy_t[rows], pick(box_t), pick(app))
        self.last_xy.index_copy_(0, slots, xy_t)
        if box_t is not None:
            self.last_box.index_copy_(0, slots, box_t)
        self.count[index] += 1

    def _advance(self, cont, xy, box, appearance) -> None:
        """Step and forecast the tracks in slots `cont`, observed now at xy (C, 2)."""
        # index_select / index_copy_ rather than [cont]: the same copies, at a fraction of the
        # cost of advanced indexing on ~50 rows (this runs on every sampling frame).
        rows = lambda name, dim=0: getattr(self, name).index_select(dim, cont)  # noqa: E731
        scale, prev_xy = rows("scale"), rows("last_xy")
        step = (xy - prev_xy) / scale[:, None]
        use_box = box is not None and self.model.cfg.box_features
        feats, heading = step_features(
            step,
            Heading(rows("direction"), rows("known")),
            box if use_box else None,
            rows("last_box") if use_box else None,
            appearance,
        )
        nbr, mask = self._neighbours(prev_xy, xy, heading, scale)
        cfg = self.model.cfg
        scene = (
            scene_features(xy, heading.direction, rows("class_id"), cfg)
            if cfg.reads_scene
            else None
        )
        (h, c), out = self.model.advance(
            feats[:, None],
            (rows("h", 1), rows("c", 1)),
            speed_along(step, heading),
            nbr,
            mask,
            scene,
            mixture=self.samples,
        )
        new = {
            "h": h,
            "c": c,
            "direction": heading.direction,
            "known": heading.known,
            "fc_xy": to_positions(out.mean, xy, heading, scale),
            "fc_top_sigma": top_mode_sigma(out, scale),
        }
        if self.samples:
            new |= dict(zip(self.MIXTURE_FIELDS, vars(out).values(), strict=True))
        for name, value in new.items():
            getattr(self, name).index_copy_(1 if name in ("h", "c") else 0, cont, value)

    def _neighbours(self, prev_xy, xy, heading: Heading, scale):
        """Neighbour features of tracks observed together at xy (C, 2), previously at prev_xy:
        each one's nearest others of the same call (the same quantities windows carry), and
        their mask: None, as every row is a real neighbour; (None, None) for a model without
        them."""
        k = self.model.cfg.social_neighbours
        if k <= 0 or len(xy) < 2:
            return None, None
        dist = torch.cdist(xy, xy)  # (C, C) source units
        dist.fill_diagonal_(float("inf"))  # not oneself
        near = dist.topk(min(k, len(xy) - 1), dim=1, largest=False).indices
        pair = torch.stack([prev_xy, xy], 1).index_select(0, near.flatten())
        pair = pair.view(*near.shape, 2, 2)  # (C, k', 2, 2)
        return neighbour_features(pair, xy, xy - prev_xy, heading, scale), None

    @torch.inference_mode()
    def forecast(self, track_ids, k: int = 0) -> Forecasts:
        """Each track's forecast made at its latest observation, in source units (a track with
        fewer than 2 observations is forecast to stay at its last position, sigma and radii
        0)."""
        slots = self._on_device(self.slots.rows(track_ids), np.int64)
        samples: np.ndarray | None = None
        if k:
            if not self.samples:
                raise ValueError("these TrackStreams keep no mixture to sample: use samples=True")
            heading = Heading(self.direction[slots], self.known[slots])
            scale, origin = self.scale[slots], self.last_xy[slots]
            fc_mean, fc_modes, fc_logits, fc_sigma = (
                getattr(self, name)[slots] for name in self.MIXTURE_FIELDS
            )
            out = ForecastOutput(fc_mean, fc_modes, fc_logits, fc_sigma)
            modes = to_positions(fc_modes, origin, heading, scale)
            drawn = draw_samples(out, modes, scale, k, sigma_scale=self._sigma_scale)
            samples = drawn.cpu().numpy()
        mean, sigma = (
            t.index_select(0, slots).cpu().numpy() for t in (self.fc_xy, self.fc_top_sigma)
        )
        return Forecasts(mean, samples, sigma, *self.calibration.radii(sigma))
