"""Hand-computed metric cases and the constant-velocity baseline."""

import numpy as np
import pytest

from trajpred.metrics import (
    ade,
    average_row,
    constant_velocity,
    fde,
    format_table,
    min_ade_fde,
    score_scene,
)


def straight_line(n=3, obs_len=8, pred_len=12, v=(0.4, -0.1)):
    t = np.arange(obs_len + pred_len, dtype=float)
    track = np.stack([t * v[0], t * v[1]], -1)
    both = np.repeat(track[None], n, 0) + np.arange(n)[:, None, None]
    return both[:, :obs_len], both[:, obs_len:]


def test_constant_velocity_is_exact_on_a_straight_line():
    obs, fut = straight_line()
    pred = constant_velocity(obs, 12)
    assert ade(pred, fut) == pytest.approx(np.zeros(3), abs=1e-12)
    assert fde(pred, fut) == pytest.approx(np.zeros(3), abs=1e-12)


def test_hand_computed_ade_fde():
    gt = np.zeros((1, 4, 2))
    pred = np.array([[[3, 4], [0, 1], [0, 0], [6, 8]]], float)  # errors 5, 1, 0, 10
    assert ade(pred, gt)[0] == pytest.approx(4.0)
    assert fde(pred, gt)[0] == pytest.approx(10.0)


def test_min_ade_and_min_fde_are_minimised_separately():
    """The sample with the lowest ADE is not the one with the lowest FDE: each minimum is taken
    over all samples on its own (the benchmark's convention), not both from one sample."""
    gt = np.zeros((1, 2, 2))
    samples = np.array(
        [
            [
                [[0, 0], [0, 2]],  # errors 0, 2: ADE 1, FDE 2 (the best ADE)
                [[3, 0], [0.5, 0]],  # errors 3, 0.5: ADE 1.75, FDE 0.5 (the best FDE)
                [[0, 4], [0, 4]],  # errors 4, 4
            ]
        ]
    )
    min_ade, min_fde = min_ade_fde(samples, gt)
    assert min_ade[0] == pytest.approx(1.0)  # by the best ADE's sample: FDE would be 2
    assert min_fde[0] == pytest.approx(0.5)  # by the best FDE's sample: ADE would be 1.75


def test_constant_velocity_uses_only_the_last_step():
    obs = np.array([[[0, 0], [5, 5], [6, 5]]], float)
    assert constant_velocity(obs, 2)[0].tolist() == [[7, 5], [8, 5]]


def test_score_rows_and_table():
    obs, fut = straight_line()
    row = score_scene("line", fut + 1.0, fut, obs, samples=np.stack([fut, fut + 2], 1))
    assert row.ade == pytest.approx(np.sqrt(2)) and row.cv_ade == pytest.approx(0)
    assert row.min_ade == pytest.approx(0) and row.k == 2
    avg = average_row([row, score_scene("b", fut, fut, obs, samples=np.stack([fut, fut], 1))])
    assert avg.ade == pytest.approx(np.sqrt(2) / 2) and avg.windows == 6
    table = format_table([row, avg])
    assert "minADE2" in table and "| avg | 6 |" in table
