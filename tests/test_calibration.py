"""Calibrated uncertainty (trajpred/calibration.py): the radii hold what they promise on data the
calibration never saw, the density and KDE-NLL are what they say, and the calibration travels
with checkpoints and exports."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from conftest import curvy_walks, run_trajpred

from trajpred.calibration import (
    LEVELS,
    Calibration,
    ForecastOutcomes,
    OnlineCalibration,
    conformal_quantile,
    fit_sigma_scale,
    gaussian,
    gaussian_radius,
    mixture_log_density,
    sample_mixture,
)
from trajpred.checkpoint import load_forecaster, save_checkpoint
from trajpred.config import to_dict
from trajpred.errors import InputError
from trajpred.evaluation import calibrate_on
from trajpred.forecast import forecast_on
from trajpred.metrics import coverage, kde_nll
from trajpred.model import Forecaster, ForecasterConfig
from trajpred.windows import make_windows


def noisy_windows(seed: int, n_tracks: int = 600):
    """Windows of curvy walks whose positions jitter with a per-track noise level (from 1 to
    15 cm), so errors are heteroscedastic and heavy-tailed over the pool."""
    tracks = curvy_walks(n_tracks, n_steps=21, seed=seed)
    g = np.random.default_rng(seed + 100)
    level = g.uniform(0.01, 0.15, n_tracks)[tracks.track_id.astype(int)]
    tracks.xy = tracks.xy + g.standard_normal(tracks.xy.shape) * level[:, None]
    return make_windows(tracks, 8, 12, 1, 0)


def test_radii_cover_their_levels_on_held_out_synthetic_walks():
    """Fitted on one set of walks, r50 and r90 hold 50 % and 90 % of another set's true
    positions (same distribution), per step within sampling error, where the uncalibrated
    Gaussian reading of an untrained model's sigma does not."""
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig())  # untrained: constant velocity and small sigmas
    fit_on, held_out = noisy_windows(1), noisy_windows(2)
    assert len(fit_on) > 1000 and len(held_out) > 1000
    model.calibration = calibrate_on(model, fit_on, "walks")
    fc = forecast_on(model, held_out)
    for radius, level in ((fc.r50, 0.5), (fc.r90, 0.9)):
        per_step = coverage(fc.mean, held_out.fut_xy, radius)
        assert abs(per_step.mean() - level) < 0.05, (level, per_step)
        assert np.abs(per_step - level).max() < 0.1, (level, per_step)
    raw = forecast_on(model, held_out, calibration=gaussian(12))
    for radius, level in ((raw.r50, 0.5), (raw.r90, 0.9)):  # the raw sigma promises otherwise
        assert abs(coverage(raw.mean, held_out.fut_xy, radius).mean() - level) > 0.05
    np.testing.assert_array_equal(fc.mean, raw.mean)  # calibration never moves the forecast


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1.0, 10.0)[:, None]  # 9 scores: ceil(10 * 0.5) = 5th, ceil(10 * 0.9) = 9th
    assert conformal_quantile(scores, 0.5)[0] == 5.0
    assert conformal_quantile(scores, 0.9)[0] == 9.0
    assert conformal_quantile(scores, 0.99)[0] == 9.0  # capped at the largest


def test_gaussian_radius_holds_its_level_of_a_2d_gaussian():
    g = np.random.default_rng(0)
    r = np.linalg.norm(g.standard_normal((200_000, 2)), axis=1)
    for level in LEVELS:
        assert abs((r <= gaussian_radius(level)).mean() - level) < 0.005


def test_mixture_density_and_sigma_scale():
    g = np.random.default_rng(1)
    n, steps = 4000, 3
    centre = g.normal(0, 5, (n, 1, steps, 2))
    sigma = np.full((n, 1, steps), 0.5)
    # one mode: the density is the isotropic Gaussian's, written out
    xy = centre[:, 0] + g.normal(0, 1.5, (n, steps, 2))  # truth spreads 3x wider than sigma
    got = mixture_log_density(xy, centre, np.ones((n, 1)), sigma)
    d2 = ((xy - centre[:, 0]) ** 2).sum(-1)
    np.testing.assert_allclose(got, -np.log(2 * np.pi * 0.25) - d2 / 0.5)
    np.testing.assert_allclose(fit_sigma_scale(xy, centre, np.ones((n, 1)), sigma), 3.0, rtol=0.05)
    # two equal modes at the same place: the same density as one
    two = mixture_log_density(
        xy, np.repeat(centre, 2, 1), np.full((n, 2), 0.5), np.repeat(sigma, 2, 1)
    )
    np.testing.assert_allclose(two, got)


def test_samples_follow_the_mixture():
    g = np.random.default_rng(2)
    mode_xy = np.zeros((1, 2, 1, 2))
    mode_xy[0, 1] = 10.0
    draws = sample_mixture(mode_xy, np.array([[0.25, 0.75]]), np.full((1, 2, 1), 1.0), 20_000, g)
    near_second = (np.linalg.norm(draws[0, :, 0] - 10.0, axis=-1) < 5).mean()
    assert abs(near_second - 0.75) < 0.02
    assert abs(draws[0, :, 0][draws[0, :, 0, 0] < 5].std() - 1.0) < 0.05


def test_kde_nll_matches_scipys_gaussian_kde():
    stats = pytest.importorskip("scipy.stats")
    g = np.random.default_rng(3)
    samples = g.normal(0, [1.0, 2.0], (3, 50, 2, 2))  # 3 windows, 50 samples, 2 steps
    truth = g.normal(0, 1, (3, 2, 2))
    truth[0, 0] = 40.0  # far out: clipped at -20
    expect = []
    for i in range(3):
        for t in range(2):
            log_pdf = stats.gaussian_kde(samples[i, :, t].T).logpdf(truth[i, t])[0]
            expect.append(max(log_pdf, -20.0))
    assert kde_nll(samples, truth, batch=2) == pytest.approx(-np.mean(expect), rel=1e-9)


def test_calibration_travels_with_checkpoints(tmp_path):
    cfg = ForecasterConfig()
    calibration = Calibration(
        [[1.0 + s / 10 for s in range(12)], [3.0 + s / 10 for s in range(12)]],
        [2.0] * 12,
        cv_sigma=[0.1 * (s + 1) for s in range(12)],
        windows=7,
        source="test",
        units="m",
    )
    payload = {"model_config": to_dict(cfg), "model": Forecaster(cfg).state_dict()}
    save_checkpoint(tmp_path / "cal.pt", {**payload, "calibration": calibration.to_dict()})
    model = load_forecaster(tmp_path / "cal.pt")
    assert model.calibration == calibration
    sigma = np.ones((2, 12))
    r50, r90 = model.calibration.radii(sigma)
    np.testing.assert_allclose(r50[0], calibration.radius_scale[0])
    np.testing.assert_allclose(r90[1], calibration.radius_scale[1])

    save_checkpoint(tmp_path / "plain.pt", payload)  # an older checkpoint: still loads
    assert load_forecaster(tmp_path / "plain.pt").calibration is None
    bad = calibration.to_dict() | {"radius_scale": [[1.0] * 12, [math.nan] * 12]}
    save_checkpoint(tmp_path / "bad.pt", {**payload, "calibration": bad})
    with pytest.raises(InputError, match="bad.pt.*unusable calibration.*radius_scale"):
        load_forecaster(tmp_path / "bad.pt")
    short = gaussian(3).to_dict()
    save_checkpoint(tmp_path / "short.pt", {**payload, "calibration": short})
    with pytest.raises(InputError, match="calibration has 3 steps, the model 12"):
        load_forecaster(tmp_path / "short.pt")


def test_exported_files_carry_the_calibration(tmp_path):
    from trajpred.export_forecaster import export_forecaster

    cfg = ForecasterConfig(hidden_size=16, embed_size=8, num_modes=3)
    calibration = Calibration([[2.0] * 12, [5.0] * 12], [1.5] * 12)
    payload = {"model_config": to_dict(cfg), "model": Forecaster(cfg).state_dict()}
    save_checkpoint(tmp_path / "cal.pt", {**payload, "calibration": calibration.to_dict()})
    export_forecaster(tmp_path / "cal.pt", tmp_path / "cal.ts", "torchscript", False)
    assert load_forecaster(tmp_path / "cal.ts").calibration == calibration
    save_checkpoint(tmp_path / "plain.pt", payload)
    export_forecaster(tmp_path / "plain.pt", tmp_path / "plain.ts", "torchscript", False)
    assert load_forecaster(tmp_path / "plain.ts").calibration is None


def test_an_uncalibrated_checkpoint_warns_once_and_reads_sigma_as_a_gaussian(tmp_path):
    from trajpred.pipeline import load_model

    cfg = ForecasterConfig()
    save_checkpoint(
        tmp_path / "plain.pt", {"model_config": to_dict(cfg), "model": Forecaster(cfg).state_dict()}
    )
    with pytest.warns(UserWarning, match="plain.pt has no calibration") as caught:
        model = load_model(str(tmp_path / "plain.pt"))
    assert len(caught) == 1
    fc = forecast_on(model, noisy_windows(3, n_tracks=4))
    np.testing.assert_allclose(fc.r50, gaussian_radius(0.5) * fc.sigma, rtol=1e-6)
    np.testing.assert_allclose(fc.r90, gaussian_radius(0.9) * fc.sigma, rtol=1e-6)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"levels": [0.5, 0.8]}, "levels must be"),
        ({"sigma_scale": [0.0] * 12}, "sigma_scale must hold finite factors"),
        ({"radius_scale": [[2.0] * 12, [1.0] * 12]}, "must not shrink"),
        ({"cv_sigma": [1.0] * 5}, "cv_sigma must be empty or 12"),
    ],
)
def test_a_calibration_is_validated_where_it_is_defined(change, words):
    good = gaussian(12).to_dict()
    with pytest.raises(ValueError, match=words):
        Calibration(**(good | change))


def test_online_factors_are_the_stored_ones_until_enough_truth_then_recent_quantiles():
    stored = Calibration([[1.0] * 3, [2.0] * 3], [1.0] * 3)
    online = OnlineCalibration(stored, window=100, min_scores=10)
    online.add(np.zeros(9, int), np.arange(9.0))  # step 0: 9 scores, one short
    np.testing.assert_array_equal(online.factors(), [[1.0] * 3, [2.0] * 3])
    online.add(np.array([0]), np.array([9.0]))  # scores 0..9: ranks ceil(11 * p)
    np.testing.assert_array_equal(online.factors()[:, 0], [5.0, 9.0])
    np.testing.assert_array_equal(online.factors()[:, 1:], [[1.0] * 2, [2.0] * 2])
    online.add(np.zeros(200, int), np.full(200, 0.5))  # the window keeps the latest 100
    np.testing.assert_array_equal(online.factors()[:, 0], [0.5, 0.5])
    r50, r90 = online.radii(np.full((2, 3), 2.0))
    np.testing.assert_array_equal(r50[:, 0], [1.0, 1.0])
    np.testing.assert_array_equal(r90[:, 2], [4.0, 4.0])


def test_forecast_outcomes_score_each_forecast_against_the_sample_it_predicted():
    online = OnlineCalibration(gaussian(3), window=10, min_scores=1)
    outcomes = ForecastOutcomes(online, 3, capacity=1)
    mean = np.array([[[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]])
    outcomes.made([7], np.array([5]), mean, np.full((1, 3), 0.5))  # at sample 5: 6, 7, 8
    outcomes.made([8], np.array([5]), mean, np.ones((1, 3)))  # grows past its capacity
    outcomes.arrive([7, 9], np.array([7, 7]), np.array([[2.0, 1.0], [0.0, 0.0]]))  # 9: unknown
    assert online.count.tolist() == [0, 1, 0]  # step 2 (index 1) of track 7 only
    assert online.scores[0, 1] == 2.0  # 1 off, sigma 0.5
    outcomes.forget(7)
    outcomes.arrive([7, 8], np.array([8, 8]), np.array([[3.0, 0.0], [3.0, 3.0]]))
    assert online.count.tolist() == [0, 1, 1] and online.scores[0, 2] == 3.0  # track 8 only


def test_live_radii_learn_the_errors_of_the_video_they_forecast():
    """A stored calibration 5 times too wide: the live forecaster's online radii come to hold
    50 % / 90 % of the tracks' later positions; with calibration=fixed they hold far more."""
    from trajpred.pipeline import ForecastConfig, LiveForecaster
    from trajpred.tracking import TrackedBoxes

    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig())
    fps, n, frames = 2.5, 30, 90  # one frame per model step
    g = np.random.default_rng(4)
    start, velocity = g.uniform(0, 400, (n, 2)), g.normal(0, 8, (n, 2))
    turn = g.normal(0, 3, (frames, n, 2)).cumsum(0)  # random-walk drift: errors grow with steps
    xy = start + velocity * np.arange(frames)[:, None, None] + turn  # (frames, n, 2) pixels
    ids = np.arange(1, n + 1)
    results = {}
    for mode in ("online", "fixed"):
        fitted = calibrate_on(model, noisy_windows(5, n_tracks=50), "walks")
        model.calibration = dataclasses.replace(
            fitted, radius_scale=(5 * np.asarray(fitted.radius_scale)).tolist()
        )
        live = LiveForecaster(model, fps, ForecastConfig(calibration=mode))
        made = []
        for f in range(frames):
            box = np.column_stack([xy[f] - [10, 60], np.tile([20.0, 60.0], (n, 1))])
            fc = live.update(f + 1, TrackedBoxes(ids, box, np.ones(n), np.zeros(n)))
            made.append(fc)
        inside = [[], []]
        for f in range(45, frames - 12):  # the second half, once the online window is full
            fc = made[f]
            truth = xy[f + 1 : f + 13].transpose(1, 0, 2)[fc.track_id - 1]  # (M, 12, 2)
            err = np.linalg.norm(fc.xy - truth, axis=-1)
            inside[0].append((err <= fc.r50).mean())
            inside[1].append((err <= fc.r90).mean())
        results[mode] = np.mean(inside, axis=1)
    assert abs(results["online"][0] - 0.5) < 0.08 and abs(results["online"][1] - 0.9) < 0.06
    assert results["fixed"][0] > 0.8  # the stored radii alone over-cover


@pytest.mark.slow  # the console script, as a user runs it
def test_calibrate_then_evaluate_from_the_command_line(eth_ucy_like_root, tmp_path):
    from trajpred.demo import untrained_checkpoint

    start = untrained_checkpoint(tmp_path / "start.pt")
    out = tmp_path / "calibrated.pt"
    args = ["calibrate", "--checkpoint", start, "--data", eth_ucy_like_root, "--scene", "toy"]
    done = run_trajpred(*args, "--split", "val", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "inside r50" in done.stdout and "-> 5" in done.stdout  # 5x.x % after
    assert load_forecaster(out).calibration.fitted
    # refused in one line: the output over its own checkpoint
    again = run_trajpred(*args, "--out", start)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    plot = tmp_path / "toy.png"
    done = run_trajpred(
        "evaluate", "--checkpoint", out, "--data", eth_ucy_like_root, "--scene", "toy",
        "--json", tmp_path / "toy.json", "--plot", plot,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for head in ("NLL", "KDE-NLL", "in r50", "in r90", "MR@2m", "CV NLL", "online calibration"):
        assert head in done.stdout, head
    row = json.loads((tmp_path / "toy.json").read_text())[0]
    for name in ("nll", "kde_nll", "cov50", "cov90", "miss_rate", "cv_nll", "cv_cov90"):
        assert row[name] is not None and math.isfinite(row[name]), name
    assert 0 <= row["cov50"] <= row["cov90"] <= 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_scores_fixed_and_online_radii_apart(eth_ucy_like_root, tmp_path):
    """Online coverage comes from the radii learnt on each file's earlier windows, fixed from
    the stored calibration: a stored calibration 4x too wide over-covers when fixed only."""
    from trajpred.demo import untrained_checkpoint
    from trajpred.evaluation import calibrate_checkpoint, evaluate_scene

    start = untrained_checkpoint(tmp_path / "start.pt")
    out = tmp_path / "calibrated.pt"
    calibrate_checkpoint(start, str(eth_ucy_like_root), "toy", out, "val")
    payload = torch.load(out, weights_only=True)
    wide = np.asarray(payload["calibration"]["radius_scale"]) * 4
    payload["calibration"]["radius_scale"] = wide.tolist()
    save_checkpoint(out, payload)
    fixed = evaluate_scene(str(out), str(eth_ucy_like_root), "toy", 0, calibration="fixed")
    online = evaluate_scene(str(out), str(eth_ucy_like_root), "toy", 0, calibration="online")
    assert fixed.score.cov50 > 0.9
    assert online.score.cov50 < fixed.score.cov50  # the toy test file is short: only partly
    assert fixed.score.ade == online.score.ade
    with pytest.raises(ValueError, match="calibration must be"):
        evaluate_scene(str(out), str(eth_ucy_like_root), "toy", 0, calibration="live")
