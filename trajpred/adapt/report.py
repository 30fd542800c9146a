"""What `adapt` did: window counts, cross-validated scores, the guard's decision and the
calibration, as the table the command prints and the JSON it writes (report.json).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field


@dataclass
class ArmScore:
    """One forecaster's mean errors on the cross-validated windows, in the tracks' units."""

    arm: str
    ade: float
    fde: float


@dataclass
class AdaptReport:
    """What `adapt` did: window counts, cross-validated scores, and what adapted.pt holds.
    val_windows and scores are over the cross-validation's windows (all of the footage)."""

    units: str
    fps: float
    train_windows: int
    val_windows: int
    scores: list[ArmScore]
    adapted: bool  # False: adapted.pt holds the starting model unchanged
    epochs: int
    seconds: float
    classes: list[int] = field(default_factory=list)
    checkpoint: str = ""
    obs_len: int = 8
    obs_len_how: str = "given"  # "given" (--obs-len) or why it was chosen automatically
    train_windows_all_phases: int = 0  # training windows over all start offsets (phases)
    prior_windows: int = 0  # windows the scene prior remembers
    prior_weight: float = 0.0  # weight of the scene prior in the shipped forecast
    change: list[float] = field(default_factory=list)  # relative ADE, FDE change vs start
    change_upper: list[float] = field(default_factory=list)  # their one-sided upper bounds
    guard: str = ""  # how the ship / keep decision was made
    averaged: int = 0  # fine-tunes in the averaged candidate's weights (0: no such candidate)
    # the uncertainty calibration shipped in adapted.pt (`calibrate_camera`): coverage of r50
    # and r90 on the later half of the footage the model did not train on, [before, after]
    calibration: dict = field(default_factory=dict)

    def score(self, arm: str) -> ArmScore:
        return next(s for s in self.scores if s.arm == arm)

    def verdict(self) -> str:
        start, new = self.score("starting model"), self.score("adapted model")
        if self.adapted:
            return (
                f"adapted: cross-validated FDE {start.fde:.3g} -> {new.fde:.3g} {self.units} "
                f"({100 * (new.fde / start.fde - 1):+.1f} %); adapted.pt holds the adapted model"
            )
        return (
            "adaptation did not beat the starting model (cross-validated in time) "
            f"(ADE {new.ade:.3g} vs {start.ade:.3g}, FDE {new.fde:.3g} vs {start.fde:.3g} "
            f"{self.units}; {self.guard}): adapted.pt holds the starting model unchanged"
        )

    def table(self) -> str:
        lines = [
            f"cross-validated in time: {self.val_windows} windows "
            f"(fine-tuned on {self.train_windows}; "
            f"history {self.obs_len} samples, {self.obs_len_how}), {self.units}",
            f"{'forecaster':<24} {'ADE':>9} {'FDE':>9}",
        ]
        lines += [f"{s.arm:<24} {s.ade:9.3f} {s.fde:9.3f}" for s in self.scores]
        if self.guard:
            lines.append(f"guard: {self.guard}")
        return "\n".join(lines + [self.verdict(), self.calibration_line()])

    def calibration_line(self) -> str:
        c = self.calibration
        if not c.get("fitted"):
            return f"uncertainty: not calibrated for this camera ({c.get('why', 'not run')})"
        (b50, a50), (b90, a90) = c["coverage_r50"], c["coverage_r90"]
        return (
            f"uncertainty calibrated on this camera ({c['windows']} windows): on the later "
            f"{c['held_out_windows']}, true positions inside r50 {100 * b50:.0f} % -> "
            f"{100 * a50:.0f} %, inside r90 {100 * b90:.0f} % -> {100 * a90:.0f} % (goal 50 / 90)"
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def plain(obj):
    """Floats that json and weights_only loading both accept (inf/nan kept as floats)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
