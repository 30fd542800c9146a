"""The forecaster: a multi-layer LSTM over per-step motion features, with two heads.

- a deterministic head: one future trajectory (trained on ADE);
- a mixture head: `num_modes` trajectories, their probabilities and a per-step isotropic
  standard deviation (trained winner-takes-all), for uncertainty and best-of-K.

Both heads predict *corrections to constant velocity* in the heading frame, so an untrained
model already forecasts like the constant-velocity baseline. The model sees only normalised
features (see trajpred/features.py); it knows nothing of files, pixels or metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

if TYPE_CHECKING:
    from .calibration import Calibration

from .checks import between, check_fields, one_of, positive, require, shown

MOTION_FEATURES = 3  # along-heading step, across-heading step, step length
BOX_FEATURES = 3  # has_box flag, box aspect w/h, change of log box height
NEIGHBOUR_FEATURES = 6  # a neighbour's position, velocity and velocity relative to ours
SCENE_FREQUENCIES = (1, 2, 4)  # sin/cos of pi * f * position: a map the heads can learn quickly
SCENE_FEATURES = 2 + 4 * len(SCENE_FREQUENCIES) + 2  # position, its Fourier terms, heading
PRIOR_KEY_FEATURES = 4  # scene prior: position in scene bounds, velocity (model units per step)
PRIOR_VELOCITY_WEIGHT = 2.0  # velocity against position in the prior's distance (chosen by CV)


@dataclass
class ForecasterConfig:
    obs_len: int = 8  # observed steps (positions) in a training window
    pred_len: int = 12  # predicted steps
    dt_s: float = 0.4  # seconds per step; video is resampled to it
    appearance_dim: int = 0  # length of the optional appearance vector per step (0 = none)
    box_features: bool = (
        True  # feed box aspect / size change when boxes exist (scale uses them always)
    )
    embed_size: int = 64
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.0
    num_modes: int = 20
    social_neighbours: int = 0  # >0: the heads also see this many nearest neighbours (pooled)
    social_size: int = 32
    # Camera-specific models (`trajpred adapt`): the heads also read where the track stands in
    # the scene and which way it heads there (and its class when scene_classes is not empty),
    # through a branch whose last layer starts at zero, so the model starts as the generic one.
    scene_input: bool = False
    scene_bounds: list[float] = field(default_factory=list)  # x_min, y_min, x_max, y_max -> +-1
    scene_units: str = ""  # units of scene_bounds: "px" (image) or "m" (ground plane)
    scene_classes: list[int] = field(default_factory=list)  # class ids given a one-hot input
    scene_size: int = 64
    # Scene prior (`trajpred adapt`): the mean future (as a correction to constant velocity, in
    # the heading frame) of the scene_prior_k nearest of scene_prior_size remembered windows of
    # this camera, nearest in (position, velocity); the deterministic forecast becomes
    # (1 - w) * forecast + w * prior with w = scene_prior_weight. Needs scene_bounds.
    scene_prior_size: int = 0  # remembered windows (0 = no prior)
    scene_prior_k: int = 64
    scene_prior_weight: float = 0.0

    @property
    def reads_scene(self) -> bool:
        """Whether the model reads each track's scene vector (position, heading, class)."""
        return self.scene_input or self.scene_prior_size > 0

    def __post_init__(self) -> None:
        sizes = between(1, 4096)  # beyond, the model alone would not fit in memory
        check_fields(
            self,
            obs_len=between(2, 1000),  # a step's motion needs two positions
            pred_len=between(1, 1000),
            dt_s=positive(),
            appearance_dim=between(0, 4096),
            embed_size=sizes,
            hidden_size=sizes,
            num_layers=between(1, 16),
            dropout=between(0, 1, high_open=True),
            num_modes=between(1, 1000),
            social_neighbours=between(0, 1000),
            social_size=sizes,
            scene_units=one_of("", "px", "m"),
            scene_size=sizes,
            scene_prior_size=between(0, 10_000_000),
            scene_prior_k=between(1, 100_000),
            scene_prior_weight=between(0, 1),
        )
        bounds = self.scene_bounds
        require(
            not bounds
            or (
                len(bounds) == 4
                and all(math.isfinite(v) for v in bounds)
                and bounds[0] < bounds[2]
                and bounds[1] < bounds[3]
            ),
            "scene_bounds",
            f"must be empty or [x_min, y_min, x_max, y_max] with min < max, got {shown(bounds)}",
        )

    @property
    def input_size(self) -> int:
        return MOTION_FEATURES + BOX_FEATURES + self.appearance_dim

    @property
    def scene_features(self) -> int:
        """Width of the scene vector the heads read (0 without scene input)."""
        return SCENE_FEATURES + len(self.scene_classes) if self.reads_scene else 0


@dataclass
class ForecastOutput:
    """Future positions relative to the last observation, in the heading frame, model units.

    mean: (B, pred_len, 2) deterministic forecast.
    modes: (B, M, pred_len, 2); mode_logits: (B, M); mode_sigma: (B, M, pred_len) std-dev.
    Decoded with mixture=False, modes is None and the mixture is its most probable mode alone
    (M = 1): all a forecast without samples reads (its sigma).
    """

    mean: torch.Tensor
    modes: torch.Tensor | None
    mode_logits: torch.Tensor
    mode_sigma: torch.Tensor

    def cpu(self) -> ForecastOutput:
        """The same output with every tensor on the CPU (a model trained on a GPU)."""
        return ForecastOutput(
            self.mean.cpu(),
            None if self.modes is None else self.modes.cpu(),
            self.mode_logits.cpu(),
            self.mode_sigma.cpu(),
        )


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)), written out: onnxruntime's Softplus kernel took 4x as long as these
    elementwise ops on an exported forecast (136 vs 36 us for 50 tracks' sigmas); same values
    as torch's softplus within 1e-6."""
    return x.clamp_min(0) + torch.log1p(torch.exp(-x.abs()))


def mode_sigma(raw: torch.Tensor) -> torch.Tensor:
    """Per-step standard deviations (..., steps) from the mode head's raw sigma outputs: each
    step adds a positive increment, so uncertainty grows along the forecast."""
    return (softplus(raw) + 1e-3).cumsum(-1)


def _mlp(in_size: int, hidden: int, out_size: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_size, hidden), nn.ReLU(), nn.Linear(hidden, out_size))


def _linear(layer: nn.Module) -> nn.Linear:
    """A layer of an `_mlp` (or the scene branch) known to be Linear, typed as one."""
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"expected a Linear layer, got {type(layer).__name__}")
    return layer


class _Recurrent(nn.Module):
    """What a Forecaster and an Ensemble share: the recurrent state, streaming one observation
    at a time (`advance`, `step`) and whole windows (`forward`), on top of their own `encode`
    and `decode`."""

    cfg: ForecasterConfig
    # set where a checkpoint is loaded (plain attribute, not a buffer); None: uncalibrated
    calibration: Calibration | None

    @property
    def state_size(self) -> int:
        """Width of the recurrent state (h and c are (num_layers, B, state_size))."""
        raise NotImplementedError

    def encode(
        self, features: torch.Tensor, state=None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """features (B, T, input_size) -> top-layer output (B, H) at the last step, new state."""
        raise NotImplementedError

    def decode(
        self,
        hidden: torch.Tensor,
        last_speed: torch.Tensor,
        nbr_features: torch.Tensor | None = None,
        nbr_mask: torch.Tensor | None = None,
        scene: torch.Tensor | None = None,
        mixture: bool = True,
    ) -> ForecastOutput:
        raise NotImplementedError

    def zero_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.cfg.num_layers, batch, self.state_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def step(self, features: torch.Tensor, state):
        """Advance many tracks by one observation: features (B, input_size)."""
        return self.encode(features.unsqueeze(1), state)

    def advance(
        self,
        features: torch.Tensor,
        state,
        last_speed: torch.Tensor,
        nbr_features: torch.Tensor | None = None,
        nbr_mask: torch.Tensor | None = None,
        scene: torch.Tensor | None = None,
        mixture: bool = True,
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], ForecastOutput]:
        """Encode features (B, T, input_size) from `state` (None: zeros) and forecast from the
        new state: (new state, ForecastOutput). Streaming calls it with T = 1 per observation,
        so observing and forecasting is one call; it is the graph `trajpred export` writes
        (with the whole mixture)."""
        hidden, state = self.encode(features, state)
        return state, self.decode(hidden, last_speed, nbr_features, nbr_mask, scene, mixture)

    def forward(
        self,
        features: torch.Tensor,
        last_speed: torch.Tensor,
        nbr_features: torch.Tensor | None = None,
        nbr_mask: torch.Tensor | None = None,
        scene: torch.Tensor | None = None,
    ) -> ForecastOutput:
        return self.advance(features, None, last_speed, nbr_features, nbr_mask, scene)[1]


class Forecaster(_Recurrent):
    prior_keys: torch.Tensor  # buffers of a scene prior (scene_prior_size > 0)
    prior_corrections: torch.Tensor

    def __init__(self, cfg: ForecasterConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Sequential(nn.Linear(cfg.input_size, cfg.embed_size), nn.ReLU())
        self.lstm = nn.LSTM(
            cfg.embed_size,
            cfg.hidden_size,
            cfg.num_layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        steps = cfg.pred_len
        head_in = cfg.hidden_size
        if cfg.social_neighbours > 0:
            # Neighbours enter at decode time only (max-pooled, as in Social GAN's pooling), so
            # each track's recurrent state stays its own and can be advanced on its own.
            self.social = _mlp(NEIGHBOUR_FEATURES, cfg.social_size, cfg.social_size)
            head_in += cfg.social_size
        self.mean_head = _mlp(head_in, cfg.hidden_size, steps * 2)
        self.mode_head = _mlp(head_in, 2 * cfg.hidden_size, cfg.num_modes * (steps * 3 + 1))
        # Start exactly at constant velocity: zero corrections until training moves them.
        # The mode head keeps small random weights so its modes differ from the start
        # (identical modes would all lose winner-takes-all training but one).
        nn.init.zeros_(_linear(self.mean_head[-1]).weight)
        nn.init.zeros_(_linear(self.mean_head[-1]).bias)
        with torch.no_grad():
            _linear(self.mode_head[-1]).weight.mul_(0.1)
        if cfg.scene_input:
            # Added to the heads' input; zero last layer: forecasts start exactly as without it.
            size = cfg.scene_size
            self.scene = nn.Sequential(
                nn.Linear(cfg.scene_features, size),
                nn.ReLU(),
                nn.Linear(size, size),
                nn.ReLU(),
                nn.Linear(size, head_in),
            )
            nn.init.zeros_(_linear(self.scene[-1]).weight)
            nn.init.zeros_(_linear(self.scene[-1]).bias)
        if cfg.scene_prior_size > 0:
            n = cfg.scene_prior_size
            self.register_buffer("prior_keys", torch.zeros(n, PRIOR_KEY_FEATURES))
            self.register_buffer("prior_corrections", torch.zeros(n, steps, 2))

    def scene_prior(self, scene: torch.Tensor, last_speed: torch.Tensor) -> torch.Tensor:
        """(B, pred_len, 2): the mean correction to constant velocity (heading frame, model
        units) of the remembered windows nearest to each track in (position, velocity)."""
        keys = prior_keys(scene, last_speed)
        k = min(self.cfg.scene_prior_k, len(self.prior_keys))
        near = torch.cdist(keys, self.prior_keys).topk(k, largest=False).indices  # (B, k)
        return self.prior_corrections[near].mean(1)

    @property
    def state_size(self) -> int:
        """Width of the recurrent state (h and c are (num_layers, B, state_size))."""
        return self.cfg.hidden_size

    def encode(self, features: torch.Tensor, state=None):
        """features (B, T, input_size) -> top-layer output (B, H) at the last step, new state."""
        out, state = self.lstm(self.embed(features), state)
        return out[:, -1], state

    def pool_neighbours(
        self, features: torch.Tensor | None, mask: torch.Tensor | None, batch: int
    ) -> torch.Tensor:
        """(B, K, NEIGHBOUR_FEATURES), (B, K) bool or None (every row real) -> (B, social_size);
        zeros without neighbours."""
        if features is None or features.shape[1] == 0:
            return torch.zeros(
                batch, self.cfg.social_size, device=_linear(self.mean_head[0]).weight.device
            )
        encoded = self.social(features)
        if mask is None:
            return encoded.amax(1)
        encoded = encoded.masked_fill(~mask[..., None], -1e9).amax(1)
        return torch.where(mask.any(1, keepdim=True), encoded, torch.zeros_like(encoded))

    def decode(
        self,
        hidden: torch.Tensor,
        last_speed: torch.Tensor,
        nbr_features: torch.Tensor | None = None,
        nbr_mask: torch.Tensor | None = None,
        scene: torch.Tensor | None = None,
        mixture: bool = True,
    ) -> ForecastOutput:
        """hidden (B, H), last_speed (B,) model units per step, optional neighbour features
        (B, K, NEIGHBOUR_FEATURES) with mask (B, K) (None: all real), optional scene vector
        (B, scene_features) -> ForecastOutput; mixture=False: without the modes' trajectories
        (see `top_mode`)."""
        b, m, steps = hidden.shape[0], self.cfg.num_modes, self.cfg.pred_len
        if self.cfg.social_neighbours > 0:
            hidden = torch.cat([hidden, self.pool_neighbours(nbr_features, nbr_mask, b)], -1)
        if self.cfg.scene_input and scene is not None:
            hidden = hidden + self.scene(scene)
        k = torch.arange(1, steps + 1, device=hidden.device, dtype=hidden.dtype)
        # Constant velocity in the heading frame: keep going along +x at the last speed.
        along = last_speed[:, None] * k
        cv = torch.stack([along, torch.zeros_like(along)], -1)
        mean = cv + self.mean_head(hidden).view(b, steps, 2).cumsum(1)
        if self.cfg.scene_prior_size > 0 and scene is not None:
            w = self.cfg.scene_prior_weight
            mean = (1 - w) * mean + w * (cv + self.scene_prior(scene, last_speed))
        if not mixture:
            return ForecastOutput(mean, None, *self.top_mode(hidden))
        raw = self.mode_head(hidden).view(b, m, steps * 3 + 1)
        modes = cv[:, None] + raw[..., : steps * 2].reshape(b, m, steps, 2).cumsum(2)
        return ForecastOutput(mean, modes, raw[..., -1], mode_sigma(raw[..., steps * 2 : -1]))

    def top_mode(self, head_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logit (B, 1), sigma (B, 1, pred_len)) of the most probable mode. The mode head's last
        layer is evaluated on its logit and sigma rows only (a third of them: the trajectories
        are skipped), which gives the same numbers as the whole head."""
        m, steps = self.cfg.num_modes, self.cfg.pred_len
        first, relu, last_layer = self.mode_head
        last = _linear(last_layer)
        # Each mode's outputs are its trajectory (2 * steps), its sigmas (steps) and its logit.
        rows = slice(steps * 2, None)
        weight = last.weight.view(m, steps * 3 + 1, -1)[:, rows].reshape(m * (steps + 1), -1)
        bias = last.bias.view(m, steps * 3 + 1)[:, rows].reshape(-1)
        raw = nn.functional.linear(relu(first(head_input)), weight, bias).view(-1, m, steps + 1)
        best = raw[..., -1].argmax(1, keepdim=True)[..., None]  # (B, 1, 1)
        top = raw.gather(1, best.expand(-1, -1, steps + 1))  # (B, 1, steps + 1)
        return top[..., -1], mode_sigma(top[..., :-1])


def prior_keys(scene: torch.Tensor, last_speed: torch.Tensor) -> torch.Tensor:
    """(B, PRIOR_KEY_FEATURES) where a scene prior looks its neighbours up: the position in the
    scene bounds ([-1, 1]) and PRIOR_VELOCITY_WEIGHT x the velocity (model units per step,
    ~metres per 0.4 s: a 1 m/s difference weighs like a fifth of the scene's width)."""
    direction = scene[:, SCENE_FEATURES - 2 : SCENE_FEATURES]
    velocity = PRIOR_VELOCITY_WEIGHT * last_speed[:, None] * direction
    return torch.cat([scene[:, :2], velocity], -1)


class Ensemble(_Recurrent):
    """Forecasters of one config trained from different seeds, used as one model (same methods).

    The deterministic forecast is the members' mean: its distance to the truth is never more
    than the members' average distance (triangle inequality), so its ADE and FDE are at most
    the members' average on every window. The mixture (uncertainty, best-of-K) is the first
    member's: pooling every member's modes makes the K most probable ones near-duplicates
    (measured on ETH: minFDE20 0.69 m with one member's modes, 1.05 m pooled). The recurrent
    state is the members' states side by side along the hidden axis, so a track's state is
    still one row.
    """

    def __init__(self, members: list[Forecaster]):
        super().__init__()
        if not members or any(m.cfg != members[0].cfg for m in members):
            raise ValueError("an ensemble needs one or more members of the same config")
        self.cfg = members[0].cfg
        self.members = nn.ModuleList(members)

    @property
    def state_size(self) -> int:
        return self.cfg.hidden_size * len(self.members)

    def forecasters(self) -> list[Forecaster]:
        """The members, typed (nn.ModuleList holds them as Modules)."""
        return [cast(Forecaster, m) for m in self.members]

    def encode(self, features: torch.Tensor, state=None):
        n = len(self.members)
        states = (
            [None] * n
            if state is None
            else list(zip(state[0].chunk(n, -1), state[1].chunk(n, -1), strict=False))
        )
        outs, hs, cs = [], [], []
        for member, member_state in zip(self.forecasters(), states, strict=False):
            out, (h, c) = member.encode(features, member_state)
            outs.append(out)
            hs.append(h)
            cs.append(c)
        return torch.cat(outs, -1), (torch.cat(hs, -1), torch.cat(cs, -1))

    def decode(
        self,
        hidden: torch.Tensor,
        last_speed: torch.Tensor,
        nbr_features: torch.Tensor | None = None,
        nbr_mask: torch.Tensor | None = None,
        scene: torch.Tensor | None = None,
        mixture: bool = True,
    ) -> ForecastOutput:
        # Only the first member's mixture is used: the others decode without their modes.
        outs = [
            member.decode(h, last_speed, nbr_features, nbr_mask, scene, mixture and i == 0)
            for i, (member, h) in enumerate(
                zip(self.forecasters(), hidden.chunk(len(self.members), -1), strict=True)
            )
        ]
        first = outs[0]
        return ForecastOutput(
            torch.stack([o.mean for o in outs]).mean(0),
            first.modes,
            first.mode_logits,
            first.mode_sigma,
        )
