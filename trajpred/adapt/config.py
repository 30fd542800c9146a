"""The settings of `adapt` (`trajpred adapt --help` shows the ones with flags)."""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import SEED_MAX, between, check_fields, non_empty, require

OBS_LENS = (8, 6, 4, 3, 2)  # automatic history lengths, longest first (the video model: 2-16)


@dataclass
class AdaptConfig:
    """Settings of `adapt`; `trajpred adapt --help` shows the ones with flags."""

    checkpoint: str = "data/checkpoints/video.pt"  # the starting forecaster
    epochs: int = 30
    val_fraction: float = 0.2  # the last part of the footage in time, held out
    obs_len: int = 0  # longest history in a window (samples of dt_s); 0: automatic (OBS_LENS)
    min_obs_len: int = 2  # train on random history lengths min_obs_len..obs_len
    phases: int = 4  # training windows start at this many offsets within one dt_s step
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 1e-4
    patience: int = 6  # epochs without a better held-out ADE before stopping
    augment_speed: float = 0.1
    augment_noise: float = 0.06  # as the shipped model (model units, ~metres)
    scene_input: bool = True  # the heads read where the track is (see the module doc)
    class_input: bool = True  # ... and its class, when the footage holds several classes
    prior: bool = True  # blend in the scene prior (mean future of similar earlier tracks)
    prior_k: int = 64  # windows averaged by the scene prior (chosen by CV in time: 4-256)
    finetune: bool = True  # fine-tune the weights (else the starting model + scene prior only)
    folds: int = 4  # time blocks of the footage for the guard's cross-validation
    average: bool = False  # also a weight average of fine-tunes that each left 2 blocks out
    max_regression: float = 0.01  # ship only if confidently at most this much worse (relative)
    confidence: float = 0.95  # one-sided, bootstrap over the tracks
    min_train_windows: int = 100
    min_val_windows: int = 20
    seed: int = 0
    threads: int = 0  # torch CPU threads (0 = torch's default)

    def __post_init__(self) -> None:
        check_fields(
            self,
            checkpoint=non_empty,
            epochs=between(1, 100_000),
            val_fraction=between(0, 1, low_open=True, high_open=True),
            obs_len=between(0, 1000),
            min_obs_len=between(2, 1000),
            phases=between(1, 1000),
            batch_size=between(1, 1_000_000),
            lr=between(0),
            weight_decay=between(0),
            patience=between(1),
            augment_speed=between(0, 1, high_open=True),
            augment_noise=between(0),
            prior_k=between(1, 100_000),
            folds=between(2, 1000),
            max_regression=between(0, 1),
            confidence=between(0, 1, low_open=True, high_open=True),
            min_train_windows=between(1),
            min_val_windows=between(1),
            seed=between(0, SEED_MAX),
            threads=between(0, 1024),
        )
        require(
            not (self.average and self.finetune) or self.folds >= 3,
            "folds",
            f"must be >= 3 to average fine-tunes (each leaves 2 blocks out), got {self.folds}",
        )
        require(self.obs_len != 1, "obs_len", "must be 0 (automatic) or >= 2 (a step needs two)")
        longest = self.obs_len or max(OBS_LENS)
        require(
            self.min_obs_len <= longest,
            "min_obs_len",
            f"must be <= obs_len ({longest}), got {self.min_obs_len}",
        )
