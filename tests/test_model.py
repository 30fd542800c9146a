"""The forecaster: starts at constant velocity, is rotation invariant, streams like it batches;
an ensemble of forecasters behaves as one model."""

import math

import numpy as np
import pytest
import torch

from trajpred.features import window_features
from trajpred.forecast import TrackStreams, forecast_windows
from trajpred.metrics import constant_velocity
from trajpred.model import Ensemble, Forecaster, ForecasterConfig


def walks(n=6, t=8, seed=0):
    g = np.random.default_rng(seed)
    steps = g.normal(0, 0.15, (n, t, 2)) + np.array([0.4, 0.1])
    return np.cumsum(steps, 1).astype(np.float32)


def trained_like(seed=0):
    torch.manual_seed(seed)
    model = Forecaster(ForecasterConfig(hidden_size=32, embed_size=16, num_modes=4))
    with torch.no_grad():  # move off the constant-velocity start so the checks mean something
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def test_untrained_model_forecasts_constant_velocity():
    obs = walks()
    model = Forecaster(ForecasterConfig(hidden_size=32, embed_size=16, num_modes=4))
    fc = forecast_windows(model, obs)
    np.testing.assert_allclose(fc.mean, constant_velocity(obs, 12), atol=1e-4)


def test_forecast_rotates_and_translates_with_the_input():
    obs = walks()
    model = trained_like()
    a = math.radians(70)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
    moved = obs @ rot.T + np.array([100.0, -40.0], np.float32)
    base, turned = forecast_windows(model, obs), forecast_windows(model, moved)
    np.testing.assert_allclose(base.mean @ rot.T + np.array([100.0, -40.0]), turned.mean, atol=1e-3)


@pytest.mark.parametrize("kind", ["single", "ensemble"])
def test_streaming_steps_match_batch_encoding(kind):
    obs = walks(n=5)
    model = (
        trained_like() if kind == "single" else Ensemble([trained_like(1), trained_like(2)]).eval()
    )
    ids = np.array([7, 3, 11, 42, 5])
    streams = TrackStreams(model, capacity=2)  # forces the slot store to grow
    for t in range(obs.shape[1]):
        streams.observe(ids, obs[:, t])
    np.testing.assert_allclose(
        streams.forecast(ids).mean, forecast_windows(model, obs).mean, atol=1e-4
    )
    assert streams.n_observed(ids).tolist() == [8] * 5


def test_streams_are_independent_per_track_and_slots_are_reused():
    obs = walks(n=3)
    model = trained_like()
    streams = TrackStreams(model, capacity=4)
    for t in range(obs.shape[1]):
        streams.observe([1, 2], obs[:2, t])
        if t >= 4:
            streams.observe([3], obs[2:, t])  # a track that started later
    expect = forecast_windows(model, obs[:2]).mean
    np.testing.assert_allclose(streams.forecast([1, 2]).mean, expect, atol=1e-4)
    streams.drop([1])
    for t in range(obs.shape[1]):
        streams.observe([9], obs[:1, t])  # takes the freed slot, starts from a clean state
    np.testing.assert_allclose(streams.forecast([9]).mean, expect[:1], atol=1e-4)


def test_window_features_use_only_the_observed_window():
    obs = torch.as_tensor(walks(n=2, t=8))
    f_short, _, _ = window_features(obs[:, :6], torch.ones(2))
    f_long, _, _ = window_features(obs, torch.ones(2))
    torch.testing.assert_close(f_short, f_long[:, :5])


def test_samples_have_the_requested_count():
    model = trained_like()
    fc = forecast_windows(model, walks(), k=3)
    assert fc.samples.shape == (6, 3, 12, 2)
    fc = forecast_windows(model, walks(), k=10)  # more samples than modes: drawn with noise
    assert fc.samples.shape == (6, 10, 12, 2) and np.isfinite(fc.samples).all()


@pytest.mark.parametrize("samples", [True, False])
def test_streaming_with_neighbours_matches_windows(samples):
    """A social model: neighbours pooled at decode time from the other live tracks equal the
    neighbours windows carry, when every agent is observed at every step (with or without the
    mixture kept for samples)."""
    from trajpred.tracks import Tracks
    from trajpred.windows import make_windows

    obs = walks(n=5, t=20, seed=3)
    torch.manual_seed(1)
    model = Forecaster(
        ForecasterConfig(hidden_size=32, embed_size=16, num_modes=4, social_neighbours=3)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    frames, ids = np.meshgrid(np.arange(20) * 10, np.arange(5), indexing="xy")
    tracks = Tracks(frames.ravel(), ids.ravel(), obs.reshape(-1, 2))  # (5, 20) agent-major
    windows = make_windows(tracks, 8, 12, neighbours=3)
    first = windows.frame_id == 70  # windows whose last observed frame is the 8th
    assert first.sum() == 5 and windows.nbr_mask[first].all()
    expect = forecast_windows(
        model, windows.obs_xy[first], nbr_xy=windows.nbr_xy[first], nbr_mask=windows.nbr_mask[first]
    )
    streams = TrackStreams(model, samples=samples)
    for t in range(8):
        streams.observe(np.arange(5), obs[:, t])
    order = np.argsort(windows.track_id[first])
    got = streams.forecast(np.arange(5))
    np.testing.assert_allclose(got.mean, expect.mean[order], atol=1e-4)
    np.testing.assert_allclose(got.sigma, expect.sigma[order], atol=1e-4)
    alone = forecast_windows(model, windows.obs_xy[first])  # the neighbours change the forecast
    assert np.abs(alone.mean - expect.mean).max() > 1e-3


def test_ensemble_averages_its_members_deterministic_forecasts(tmp_path):
    from trajpred.checkpoint import ensemble_payload, load_forecaster, save_checkpoint
    from trajpred.metrics import ade

    obs, fut = walks(n=40, t=20, seed=5)[:, :8], walks(n=40, t=20, seed=5)[:, 8:]
    members = [trained_like(1), trained_like(2), trained_like(3)]
    paths = []
    for i, m in enumerate(members):
        paths.append(tmp_path / f"m{i}.pt")
        save_checkpoint(paths[-1], {"model_config": vars(m.cfg), "model": m.state_dict()})
    save_checkpoint(tmp_path / "ens.pt", ensemble_payload(paths))
    ensemble = load_forecaster(tmp_path / "ens.pt")
    assert isinstance(ensemble, Ensemble) and len(ensemble.members) == 3
    means = [forecast_windows(m, obs).mean for m in members]
    fc = forecast_windows(ensemble, obs, k=12)
    np.testing.assert_allclose(fc.mean, np.mean(means, 0), atol=1e-5)
    # Never worse than the members' average error, window by window.
    member_ade = np.mean([ade(m, fut) for m in means], 0)
    assert (ade(fc.mean, fut) <= member_ade + 1e-6).all()
    first = forecast_windows(members[0], obs, k=12)  # the mixture is the first member's
    np.testing.assert_allclose(fc.samples, first.samples, atol=1e-5)
    np.testing.assert_allclose(fc.sigma, first.sigma, atol=1e-5)


def social_model(seed=1, **cfg):
    torch.manual_seed(seed)
    model = Forecaster(
        ForecasterConfig(hidden_size=32, embed_size=16, num_modes=6, social_neighbours=3, **cfg)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.mark.parametrize("kind", ["single", "ensemble"])
def test_streams_without_samples_forecast_exactly_as_with_them(kind):
    """samples=False decodes the most probable mode alone (`Forecaster.top_mode`) instead of the
    whole mixture: the forecasts and sigmas must not change at all, through tracks that start
    late, pause and end."""
    model = social_model() if kind == "single" else Ensemble([social_model(1), social_model(2)])
    obs = walks(n=9, t=12, seed=4) * 40.0  # pixels
    box = np.random.default_rng(0).uniform([10, 30], [30, 90], (9, 12, 2))
    ids = np.array([4, 8, 15, 16, 23, 42, 7, 9, 1])
    full, lean = TrackStreams(model, capacity=4), TrackStreams(model, capacity=4, samples=False)
    for t in range(12):
        rows = np.arange(9) if t % 4 else np.arange(9)[(np.arange(9) + t) % 3 > 0]
        rows = rows[rows < 5 + t]  # tracks start one by one
        for streams in (full, lean):
            if t == 7:
                streams.drop(ids[:2])
            streams.observe(ids[rows], obs[rows, t], box[rows, t])
        a, b = full.forecast(ids[rows]), lean.forecast(ids[rows])
        np.testing.assert_array_equal(a.mean, b.mean)
        np.testing.assert_array_equal(a.sigma, b.sigma)
    assert (a.sigma > 0).all()
    with pytest.raises(ValueError, match="samples=True"):
        lean.forecast(ids, k=2)


def test_top_mode_is_the_whole_mixtures_most_probable_mode():
    model = social_model()
    hidden, speed = torch.randn(40, 32), torch.rand(40)
    nbr = torch.randn(40, 3, 6)
    with torch.no_grad():
        full = model.decode(hidden, speed, nbr, None)
        top = model.decode(hidden, speed, nbr, None, mixture=False)
        masked = model.decode(hidden, speed, nbr, torch.ones(40, 3, dtype=torch.bool))
    best = full.mode_logits.argmax(1)
    rows = torch.arange(40)
    assert top.modes is None and top.mode_logits.shape == (40, 1)
    torch.testing.assert_close(top.mean, full.mean, rtol=0, atol=0)
    torch.testing.assert_close(top.mode_logits[:, 0], full.mode_logits[rows, best], rtol=0, atol=0)
    torch.testing.assert_close(top.mode_sigma[:, 0], full.mode_sigma[rows, best], rtol=0, atol=0)
    torch.testing.assert_close(masked.mean, full.mean, rtol=0, atol=0)  # mask None: all real


def test_neighbour_features_match_the_written_out_geometry():
    """The live forecaster's neighbour features (one rotation for every vector at once) against
    the geometry written out per agent and neighbour."""
    from trajpred.features import Heading, neighbour_features, speed_along

    g = np.random.default_rng(2)
    nbr, origin, own = (
        g.normal(0, 50, (6, 4, 2, 2)),
        g.normal(0, 50, (6, 2)),
        g.normal(0, 3, (6, 2)),
    )
    angle, scale = g.uniform(-np.pi, np.pi, 6), g.uniform(5, 40, 6)
    direction = np.stack([np.cos(angle), np.sin(angle)], -1)
    heading = Heading(torch.as_tensor(direction), torch.ones(6, dtype=torch.bool))
    got = neighbour_features(
        *map(torch.as_tensor, (nbr, origin, own)), heading, torch.tensor(scale)
    )
    for i in range(6):
        c, s = direction[i]
        into = np.array([[c, s], [-s, c]]) / scale[i]  # rotation into the heading frame, scaled
        for j in range(4):
            step = into @ (nbr[i, j, 1] - nbr[i, j, 0])
            want = [*into @ (nbr[i, j, 1] - origin[i]), *step, *(step - into @ own[i])]
            np.testing.assert_allclose(got[i, j].numpy(), want, rtol=1e-12, atol=1e-12)
    speed = speed_along(torch.as_tensor(own), heading).numpy()
    np.testing.assert_allclose(speed, (direction * own).sum(1), rtol=1e-12, atol=1e-12)
