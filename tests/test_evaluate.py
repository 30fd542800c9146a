"""Evaluation on the real ETH/UCY files (skipped without ../shared): the loader and metric
reproduce the data README's constant-velocity anchor, and the shipped checkpoints load."""

from pathlib import Path

import numpy as np
import pytest

from trajpred.data import DataConfig, load_split
from trajpred.evaluate import evaluate_scene
from trajpred.metrics import ade, constant_velocity, fde

REPO = Path(__file__).resolve().parents[1]
# Constant velocity (last step), all agents, from ../shared/data/eth_ucy/README.md.
CV_ANCHOR = {
    "eth": (1.08, 2.28),
    "hotel": (0.32, 0.61),
    "zara1": (0.43, 0.95),
    "zara2": (0.32, 0.72),
}


@pytest.mark.parametrize("scene", sorted(CV_ANCHOR))
def test_constant_velocity_reproduces_the_readme(scene, shared_dir):
    windows, _ = load_split(
        DataConfig(root=str(shared_dir / "data/eth_ucy"), test_scene=scene), "test", 8, 12, 0.4
    )
    cv = constant_velocity(windows.obs_xy, 12)
    assert ade(cv, windows.fut_xy).mean() == pytest.approx(CV_ANCHOR[scene][0], abs=0.006)
    assert fde(cv, windows.fut_xy).mean() == pytest.approx(CV_ANCHOR[scene][1], abs=0.006)


def test_shipped_checkpoint_evaluates_on_eth(shared_dir):
    ckpt = REPO / "data/checkpoints/eth_ucy/eth.pt"
    if not ckpt.exists():
        pytest.skip("no shipped ETH checkpoint")
    result = evaluate_scene(str(ckpt), str(shared_dir / "data/eth_ucy"), "eth", k=20)
    assert result.score.windows == 364
    assert np.isfinite(result.forecasts.mean).all()
    assert result.score.min_ade < result.score.ade  # 20 modes cover more than one forecast
    assert (
        result.score.ade < result.score.cv_ade
    )  # the shipped model beats constant velocity on ETH
