"""Zones, lines and near misses (`predict --zones`): the zones file, the event probabilities
and their outputs, as a user meets them."""

from __future__ import annotations

import csv
import re
import time

import numpy as np
import pytest
from conftest import assert_one_line, box_at

from trajpred.crossings import approach_times, crossing_times
from trajpred.errors import InputError
from trajpred.events import EventsConfig, EventWatch, sample_grid, sample_paths, weibull_radius
from trajpred.zones import inside, parse_zones, read_zones

SQUARE = [[0, 0], [10, 0], [10, 10], [0, 10]]


def watch(spec: dict, **cfg) -> EventWatch:
    return EventWatch(parse_zones(spec, "z.yaml"), EventsConfig(**cfg), dt_s=0.4, pred_len=12)


def walk(start, velocity, pred_len: int = 12, radius: float = 0.3):
    """One track at `start` forecast to walk at `velocity` per 0.4 s step, with r50 = radius
    and r90 = 2 * radius at every step."""
    here = np.array([start], float)
    steps = np.arange(1, pred_len + 1)[None, :, None]
    mean = here[:, None] + np.array(velocity, float) * steps
    r50 = np.full((1, pred_len), radius)
    return here, mean, r50, 2 * r50


# ------------------------------------------------------------------ the zones file


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"zones": [{"name": "a", "polygon": [[0, 0], [1, 0]]}]}, ["zones[0] (a)", "3"]),
        (
            {"zones": [{"name": "bow", "polygon": [[0, 0], [10, 10], [10, 0], [0, 10]]}]},
            ["zones[0] (bow)", "crosses itself"],
        ),
        ({"zones": [{"name": "door", "polygon": SQUARE, "units": "m"}]}, ["door", "homography"]),
        ({"zones": [{"name": "a", "polygon": SQUARE, "colour": "red"}]}, ["zones[0]", "colour"]),
        ({"zone": []}, ["unknown key", "'zone'"]),
        ({"lines": [{"name": "k", "points": [[0, 0], [0, 0]]}]}, ["lines[0] (k)", "same"]),
        ({"lines": [{"name": "k", "points": [[0, 0], [1, 1], [2, 2]]}]}, ["lines[0]", "2 points"]),
        (
            {
                "zones": [{"name": "a", "polygon": SQUARE}],
                "lines": [{"name": "a", "points": SQUARE[:2]}],
            },
            ["'a'", "twice"],
        ),
        ({"near_miss": {"distance": -1}}, ["near_miss", "distance"]),
        ({"near_miss": {"distance": 1, "units": "m"}}, ["near_miss", "homography"]),
        ({"zones": [{"name": "a", "polygon": [[0, 0], [1, "x"], [2, 2]]}]}, ["zones[0]", "number"]),
        ({}, ["nothing to watch"]),
    ],
)
def test_bad_zone_files_name_the_file_and_entry(spec, words):
    with pytest.raises(InputError) as e:
        parse_zones(spec, "zones.yaml")
    message = str(e.value)
    assert message.startswith("zones.yaml: ") and "\n" not in message
    for word in words:
        assert word in message, message


def test_near_miss_in_pixels_is_refused_with_a_homography():
    with pytest.raises(InputError, match="give them in m"):
        parse_zones({"near_miss": {"distance": 30}}, "z.yaml", np.eye(3))


def test_pixel_zones_move_to_the_ground_plane_with_a_homography():
    h = np.diag([0.1, 0.1, 1.0])  # 10 px per metre, no perspective
    zones = parse_zones(
        {"zones": [{"name": "a", "polygon": [[0, 0], [100, 0], [100, 50]]}]}, "z", h
    )
    assert zones.units == "m"
    np.testing.assert_allclose(zones.zones[0].polygon, [[0, 0], [10, 0], [10, 5]])
    np.testing.assert_allclose(zones.zones[0].image, [[0, 0], [100, 0], [100, 50]])


def test_read_zones_reads_yaml(tmp_path):
    path = tmp_path / "zones.yaml"
    path.write_text(
        "zones:\n  - {name: crossing, polygon: [[120, 400], [620, 400], [640, 470], [100, 470]]}\n"
        "lines:\n  - {name: kerb, points: [[100, 380], [660, 380]]}\n"
        "near_miss: {distance: 40}\n"
    )
    zones = read_zones(path)
    assert [z.name for z in zones.zones] == ["crossing"] and zones.lines[0].name == "kerb"
    assert zones.near_miss.distance == 40
    path.write_text("zones: [")
    with pytest.raises(InputError, match="zones.yaml"):
        read_zones(path)


# ------------------------------------------------------------------ the geometry


def test_crossing_times_find_the_first_edge_crossing_and_its_side():
    edges = np.array([[[0.0, 0.0], [10.0, 0.0]]])  # a line along +x: "in" is y < 0
    a = np.array([[[5.0, 2.0]], [[5.0, -2.0]], [[20.0, 2.0]]])  # (K=3, S=1, 2)
    b = np.array([[[5.0, -2.0]], [[5.0, 2.0]], [[20.0, -2.0]]])
    neg, pos = crossing_times(a, b, np.array([3, 7, 0]), edges)
    np.testing.assert_allclose(neg[:, 0], [3.5, np.inf, np.inf])  # downwards, half way: in
    np.testing.assert_allclose(pos[:, 0], [np.inf, 7.5, np.inf])  # upwards: out
    # supervision's LineZone counts "in" on the side where cross(end - start, p - start) < 0
    p = np.array([5.0, -2.0])
    (ex, ey), (px, py) = edges[0, 1] - edges[0, 0], p - edges[0, 0]
    assert ex * py - ey * px < 0


def test_approach_times_match_a_dense_search():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-5, 5, (200, 1, 2)), rng.uniform(-5, 5, (200, 1, 2))
    t = approach_times(a, b, np.zeros(200, np.int64), 2.0)[:, 0]
    u = np.linspace(0, 1, 20001)[None, :, None]
    dist = np.linalg.norm(a + u * (b - a), axis=-1)  # (200, 20001)
    first = np.where((dist <= 2.0).any(1), np.argmax(dist <= 2.0, axis=1) / 20000, np.inf)
    np.testing.assert_allclose(t, first, atol=1e-4)


def test_weibull_radius_keeps_the_calibrated_quantiles():
    r50, r90 = np.array([[1.0, 2.0]]), np.array([[3.0, 3.5]])
    r = weibull_radius(r50, r90, np.array([0.5, 0.9]))
    np.testing.assert_allclose(r[0], [[1.0, 2.0], [3.0, 3.5]])


def test_inside_is_the_even_odd_rule():
    poly = np.array(SQUARE, float)
    xy = np.array([[5, 5], [15, 5], [-1, 5], [5, 9.9]])
    assert inside(poly, xy).tolist() == [True, False, False, True]


def test_sample_clouds_hold_the_calibrated_coverage_and_lean_along_the_heading():
    grid = sample_grid(4000)
    here, mean, r50, r90 = walk([0, 0], [1.0, 0.0], radius=0.5)
    paths = sample_paths(here, mean, r50, r90, grid, cross_ratio=0.4)
    err = paths[0, :, 1:] - mean[0][None]  # (S, P, 2)
    dist = np.linalg.norm(err, axis=-1)
    assert abs((dist <= r50[0]).mean() - 0.5) < 0.02 and abs((dist <= r90[0]).mean() - 0.9) < 0.02
    ratio = np.median(np.abs(err[..., 1])) / np.median(np.abs(err[..., 0]))
    assert 0.3 < ratio < 0.5, ratio  # heading +x: across is y


# ------------------------------------------------------------------ the probabilities


def test_a_walker_heading_into_a_zone_will_enter_it_and_one_walking_away_will_not():
    w = watch({"zones": [{"name": "door", "polygon": [[10, -2], [12, -2], [12, 2], [10, 2]]}]})
    here, mean, r50, r90 = walk([0, 0], [1.0, 0.0])  # 2.5 m/s: at x = 10 after 4 s
    ev = w.update(np.array([7]), here, mean, r50, r90)
    assert len(ev) == 1 and ev.name[0] == "door" and ev.kind[0] == "zone"
    assert ev.probability[0] > 0.95
    assert ev.p_within[0, 0] < 0.05 and ev.p_within[0, 2] < 0.05  # not within 1 s, nor 3 s
    assert abs(ev.t_median_s[0] - 4.0) < 0.3
    assert ev.alert[0] and ev.label(0).startswith("door")
    again = w.update(np.array([7]), here, mean, r50, r90)
    assert not again.alert[0]  # an alert is raised once per track and target
    away = w.update(np.array([8]), *walk([0, 0], [-1.0, 0.0]))
    assert len(away) == 0


def test_a_track_standing_still_still_has_a_round_cloud():
    """A forecast that stands exactly still (no heading) spreads its samples all round."""
    lines = [
        {"name": "east", "points": [[0.5, -10], [0.5, 10]]},
        {"name": "north", "points": [[-10, 0.5], [10, 0.5]]},
        {"name": "west", "points": [[-0.5, -10], [-0.5, 10]]},
    ]
    ev = watch({"lines": lines}).update(np.array([1]), *walk([0, 0], [0.0, 0.0], radius=1.0))
    assert ev.name.tolist() == ["east", "north", "west"]
    assert ev.probability.min() > 0.2 and np.ptp(ev.probability) < 0.05


def test_a_track_inside_a_zone_has_no_entry_event():
    w = watch({"zones": [{"name": "a", "polygon": SQUARE}]})
    assert len(w.update(np.array([1]), *walk([5, 5], [0.1, 0.0]))) == 0


def test_line_crossings_say_which_way():
    w = watch({"lines": [{"name": "kerb", "points": [[-10, 5], [10, 5]]}]})
    up = w.update(np.array([1]), *walk([0, 0], [0.0, 1.0]))  # towards +y: cross > 0, "out"
    assert up.direction.tolist() == ["out"] and up.probability[0] > 0.95
    down = w.update(np.array([2]), *walk([0, 10], [0.0, -1.0]))
    assert down.direction.tolist() == ["in"]


def test_two_walkers_on_a_collision_course_are_a_near_miss():
    w = watch({"near_miss": {"distance": 1.0}})
    ha, ma, ra, qa = walk([0, 0], [0.5, 0.0])
    hb, mb, rb, qb = walk([10, 0], [-0.5, 0.0])
    ev = w.update(
        np.array([3, 4]),
        np.concatenate([ha, hb]),
        np.concatenate([ma, mb]),
        np.concatenate([ra, rb]),
        np.concatenate([qa, qb]),
    )
    assert ev.kind.tolist() == ["near_miss"] and ev.other_track_id.tolist() == [4]
    assert ev.probability[0] > 0.9 and abs(ev.t_median_s[0] - 3.6) < 0.4  # 9 m closing at 2.5 m/s
    parallel = w.update(
        np.array([3, 4]),
        np.concatenate([ha, ha + [0, 5]]),
        np.concatenate([ma, ma + [0, 5]]),
        np.concatenate([ra, ra]),
        np.concatenate([qa, qa]),
    )
    assert len(parallel) == 0


def test_probabilities_are_calibrated_when_the_truth_follows_the_forecast_distribution():
    """Truths drawn from the distribution the samples stand for (independent draws, not the
    grid) enter the zone as often as the probabilities say: a wrong sign, direction or radius
    in the sampling breaks this."""
    rng = np.random.default_rng(1)
    zone = [[4, -1], [6, -1], [6, 1], [4, 1]]
    w = watch({"zones": [{"name": "z", "polygon": zone}]}, min_probability=1e-9, cross_ratio=0.5)
    poly = np.array(zone, float)
    edges = np.stack([poly, np.roll(poly, -1, 0)], 1)
    predicted, observed = [], []
    for _ in range(300):
        heading = rng.uniform(-0.6, 0.6)
        speed = rng.uniform(0.2, 0.6)
        here, mean, r50, r90 = walk(
            [0, 0], [speed * np.cos(heading), speed * np.sin(heading)], radius=0.8
        )
        ev = w.update(np.array([1]), here, mean, r50, r90, 0.5)
        p = ev.probability[0] if len(ev) else 0.0
        # 20 truths from the same law: one quantile and one (squeezed) direction per path
        q = rng.uniform(size=20)
        theta = rng.uniform(0, 2 * np.pi, 20)
        grid = (q, np.stack([np.cos(theta), np.sin(theta)], 1))
        truth = sample_paths(here, mean, r50, r90, grid, 0.5)[0]  # (20, P + 1, 2)
        a, b = truth[:, :-1].reshape(-1, 1, 2), truth[:, 1:].reshape(-1, 1, 2)
        neg, pos = crossing_times(a, b, np.tile(np.arange(12.0), 20), edges)
        entered = np.isfinite(np.minimum(neg, pos).reshape(20, 12)).any(1)
        predicted.append(p)
        observed.append(entered.mean())
    predicted, observed = np.array(predicted), np.array(observed)
    for lo in (0.0, 0.2, 0.4, 0.6, 0.8):
        rows = (predicted >= lo) & (predicted < lo + 0.2)
        if rows.sum() >= 15:
            assert abs(observed[rows].mean() - predicted[rows].mean()) < 0.06, lo


def test_fifty_tracks_and_five_zones_take_a_few_milliseconds():
    rng = np.random.default_rng(0)
    spec = {
        "zones": [
            {
                "name": f"z{i}",
                "polygon": [
                    [100 + 350 * i, 500],
                    [300 + 350 * i, 500],
                    [300 + 350 * i, 700],
                    [100 + 350 * i, 700],
                ],
            }  # fmt: skip
            for i in range(5)
        ],
        "near_miss": {"distance": 40},
    }
    w = watch(spec)
    here = rng.uniform([0, 0], [1920, 1080], (50, 2))
    mean = here[:, None] + rng.normal(0, 15, (50, 1, 2)) * np.arange(1, 13)[None, :, None]
    r50 = np.tile(np.linspace(2, 30, 12), (50, 1))
    w.update(np.arange(50), here, mean, r50, 2 * r50)
    start = time.perf_counter()
    for _ in range(20):
        w.update(np.arange(50), here, mean, r50, 2 * r50)
    ms = (time.perf_counter() - start) / 20 * 1e3
    assert ms < 50, f"{ms:.1f} ms per frame"  # scripts/events_benchmark.py measures it


# ------------------------------------------------------------------ settings and the CLI


@pytest.mark.parametrize(
    "setting, words",
    [
        ("events.alert=1.5", ["events.alert"]),
        ("events.min_probability=0", ["events.min_probability"]),
        ("events.samples=65", ["events.samples", "multiple of 10"]),
    ],
)
def test_bad_event_settings_fail_before_work(trajpred, tmp_path, setting, words):
    done = trajpred("predict", tmp_path / "none.mp4", "--out", tmp_path / "o", "--set", setting)
    assert_one_line(done, *words)


def test_a_bad_zones_file_fails_in_one_line_before_the_detector_loads(
    trajpred, tmp_path, video_assets
):
    bad = tmp_path / "zones.yaml"
    bad.write_text("zones:\n  - {name: bow, polygon: [[0, 0], [10, 10], [10, 0], [0, 10]]}\n")
    done = trajpred(
        "predict",
        video_assets.scene.video,
        "--out",
        tmp_path / "o",
        "--zones",
        bad,
        "--weights",
        tmp_path / "no_such_weights.pt",  # fmt: skip
    )
    assert_one_line(done, "zones.yaml", "bow", "crosses itself")
    metres = tmp_path / "metres.yaml"
    metres.write_text("zones:\n  - {name: door, polygon: [[0, 0], [1, 0], [1, 1]], units: m}\n")
    done = trajpred("predict", video_assets.scene.video, "--out", tmp_path / "o", "--zones", metres)
    assert_one_line(done, "metres.yaml", "door", "homography")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


ZONES_YAML = (
    "zones:\n  - {name: middle, polygon: [[80, 90], [240, 90], [240, 180], [80, 180]]}\n"
    "lines:\n  - {name: across, points: [[160, 20], [160, 190]]}\n"
    "near_miss: {distance: 25}\n"
)


@pytest.fixture(scope="module")
def zones_run(tmp_path_factory, video_assets):
    """`trajpred predict --zones` on the synthetic clip: (zones file, output folder)."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("zones_run")
    zones, out = root / "zones.yaml", root / "out"
    zones.write_text(ZONES_YAML)
    done = subprocess.run(
        [sys.executable, "-m", "trajpred", "predict", str(video_assets.scene.video),
         "--out", str(out), "--zones", str(zones), "--weights", video_assets.weights,
         "--imgsz", str(video_assets.imgsz), "--checkpoint", video_assets.checkpoint,
         "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return zones, out


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # a predict subprocess or a demo run: seconds
def test_predict_with_zones_writes_events_and_alerts_and_draws_them(zones_run):
    import cv2

    _, out = zones_run
    events, alerts = _rows(out / "events.csv"), _rows(out / "alerts.csv")
    assert list(events[0]) == [
        "frame", "track_id", "kind", "name", "direction", "other_track_id", "probability",
        "p_1s", "p_2s", "p_3s", "t_median_s",
    ]  # fmt: skip
    assert {e["kind"] for e in events} >= {"zone", "line"}
    probability = np.array([float(e["probability"]) for e in events])
    assert (probability >= 0.05).all() and (probability <= 1).all()
    for e in events:  # within 1 s <= within 2 s <= within 3 s <= within the horizon
        p = [float(e[k]) for k in ("p_1s", "p_2s", "p_3s", "probability")]
        assert p == sorted(p), e
    # every alert is the first events.csv row of its track and target at >= 0.5
    first = {}
    for e in events:
        key = (e["track_id"], e["kind"], e["name"], e["direction"], e["other_track_id"])
        if float(e["probability"]) >= 0.5 and key not in first:
            first[key] = e["frame"]
    assert (
        alerts
        and {
            (a["track_id"], a["kind"], a["name"], a["direction"], a["other_track_id"]): a["frame"]
            for a in alerts
        }
        == first
    )
    # the zone's outline is drawn: the annotated frame is cyan along its top edge
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    ok, frame = cap.read()
    cap.release()
    edge = frame[90, 100:220].astype(int)
    assert ok and (np.abs(edge - [255, 255, 0]).sum(1) < 120).mean() > 0.5


@pytest.mark.slow  # a predict subprocess or a demo run: seconds
def test_the_api_gives_the_events_predict_writes(zones_run, video_assets):
    """The same tracks through `Forecaster(zones=...)` give events.csv's rows, byte for byte."""
    import dataclasses

    from trajpred import Forecaster
    from trajpred.pipeline import Pipeline, PipelineConfig
    from trajpred.predict_files import event_rows

    zones, out = zones_run
    cfg = PipelineConfig()
    cfg = dataclasses.replace(
        cfg, detector=dataclasses.replace(cfg.detector, weights=video_assets.weights, imgsz=320)
    )
    forecaster = Forecaster(video_assets.checkpoint, fps=10.0, zones=zones)
    text = []
    for result in Pipeline(cfg, forecast=False).run(str(video_assets.scene.video)):
        t = result.tracks
        xyxy = np.column_stack([t.box_xywh[:, :2], t.box_xywh[:, :2] + t.box_xywh[:, 2:]])
        fc = forecaster.update(t.track_id, xyxy, t.class_id, frame_id=result.frame_id)
        assert fc.events is not None
        text.append(event_rows(dataclasses.replace(result, forecasts=fc)))
    assert "".join(text) == (out / "events.csv").read_text().split("\n", 1)[1]


@pytest.mark.slow  # a predict subprocess or a demo run: seconds
def test_demo_with_zones_scores_the_events_against_the_truth(trajpred, tmp_path):
    out = tmp_path / "demo"
    done = trajpred("demo", "--zones", "--out", out, "--duration", 8, "--no-progress")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("events: "))
    cases = int(re.search(r"events: (\d+) cases", line).group(1))
    skill = re.search(r"Brier skill (-?[\d.]+) \(constant velocity (-?[\d.]+), inside now", line)
    assert cases > 100 and skill and float(skill.group(1)) > 0.2, line
    assert re.search(r"^alerts at 0.5: \d+, \d+ % came true, median lead", done.stdout, re.M)
    zones = read_zones(out / "scene" / "zones.yaml")  # the targets it placed, as a zones file
    assert len(zones.zones) == 4 and zones.near_miss is not None
    assert _rows(out / "events.csv") and (out / "alerts.csv").is_file()


def test_event_tally_scores_a_hand_made_case():
    """One walker heading into a zone at constant speed, forecast exactly (tight radii): the
    probabilities separate the frames it enters within the horizon from those it does not,
    and its one alert fires a horizon (4.8 s) ahead and comes true."""
    from trajpred.event_scores import EventTally
    from trajpred.results import FrameForecasts
    from trajpred.tracking import TrackedBoxes

    zones = parse_zones(
        {"zones": [{"name": "z", "polygon": [[20, -5], [30, -5], [30, 5], [20, 5]]}]}, "z"
    )
    cfg = EventsConfig()
    w = EventWatch(zones, cfg, 0.4, 12)
    tally = EventTally(zones, cfg, 0.4, 12, fps=10.0)
    for f in range(1, 121):  # x = 0.25 px per frame (1 px per 0.4 s step): x = 20 on frame 81
        x = 0.25 * (f - 1)
        tracks = TrackedBoxes(
            np.array([1]), np.array([[x - 2, -10, 4, 10]]), np.ones(1), np.zeros(1, np.int64)
        )
        here = np.array([[x, 0.0]])
        mean = here[:, None] + np.array([1.0, 0.0]) * np.arange(1, 13)[None, :, None]
        r50 = np.full((1, 12), 0.2)
        events = w.update(np.array([1]), here, mean, r50, 2 * r50)
        fc = FrameForecasts(np.array([1]), mean, r50, 2 * r50, np.arange(12), events=events)
        tally.add(f, tracks, fc, 0.5)
    scores = tally.result()
    model = scores["cases"]["zone"]["model"]
    assert model["cases"] > 5 and model["auroc"] == 1.0 and model["brier"] < 0.05
    assert scores["cases"]["zone"]["inside_now"]["brier_skill"] < 0
    alert = scores["alerts"]["model"]
    assert alert["alerts"] == 1 and alert["precision"] == 1.0
    assert abs(alert["median_lead_s"] - 4.8) < 0.5  # fires once the zone is within reach


def test_platt_fit_recovers_a_known_map():
    from trajpred.event_calibration import fit_platt, logit

    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 20000)
    y = rng.uniform(size=p.size) < 1 / (1 + np.exp(-(2.0 * logit(p) + 0.5)))
    a, b = fit_platt(p, y.astype(float))
    assert abs(a - 2.0) < 0.15 and abs(b - 0.5) < 0.1, (a, b)


def test_online_event_calibration_learns_from_outcomes():
    """Walkers start one per 0.4 s left of a line; 80 % walk across it within the horizon,
    20 % walk away, and every one was said to cross with probability 0.3: once their outcomes
    are in, 0.3 maps to about 0.8; a calibration that never sees outcomes keeps 0.3."""
    from trajpred.event_calibration import EventCalibration
    from trajpred.results import FrameEvents

    edges = np.array([[[5.0, -10.0], [5.0, 10.0]]])
    cal = EventCalibration([("line", "l", edges)], None, horizon_s=4.8, dt_s=0.4)
    rng = np.random.default_rng(0)
    speed = {}
    for k in range(4000):  # frames 0.1 s apart
        t = 0.1 * k
        if k % 4 == 0:
            tid = k // 4
            speed[tid] = 2.0 if rng.uniform() < 0.8 else -2.0
            row = FrameEvents(
                np.array([tid]), np.array(["line"], object), np.array(["l"], object),
                np.array(["in"], object), np.array([-1]), np.array([0.3]),
                np.full((1, 3), 0.1), np.array([2.5]), np.zeros(1, bool),
            )  # fmt: skip
            cal.record(t, row)
        alive = [i for i in speed if 0 <= t - 0.4 * i <= 6.0]
        xy = np.array([[speed[i] * (t - 0.4 * i), 0.0] for i in alive]).reshape(-1, 2)
        cal.observe(t, np.array(alive, np.int64), xy)
    mapped = cal.apply(np.array(["line"], object), np.array([0.3]))[0]
    assert 0.7 < mapped < 0.9, mapped
    fresh = EventCalibration([("line", "l", edges)], None, horizon_s=4.8, dt_s=0.4)
    assert fresh.apply(np.array(["line"], object), np.array([0.3]))[0] == 0.3


def test_zones_in_metres_on_the_ground_plane(cv_checkpoint):
    """With a homography a zone in metres watches the forecast on the ground plane: a walker
    heading for a band across its way 3 m ahead, at 1 m per 0.4 s step, most likely enters it
    in about 1.2 s (the untrained model's radii are wide: some samples fall short)."""
    from trajpred import Forecaster

    h = np.diag([0.01, 0.01, 1.0])  # 100 px per metre, no perspective
    zones = {
        "zones": [{"name": "door", "polygon": [[6, -9], [8, -9], [8, 15], [6, 15]], "units": "m"}],
        "near_miss": {"distance": 1.0, "units": "m"},
    }
    forecaster = Forecaster(cv_checkpoint, fps=10.0, homography=h, zones=zones)
    for frame in range(1, 10):  # x = 1 m + 0.25 m per frame; at 3 m on frame 9
        x = 100 + 25 * (frame - 1)
        f = forecaster.update([1], [box_at(x, 300)])
    assert f.world_xy is not None and f.events is not None
    (e,) = np.flatnonzero(f.events.name == "door")
    assert f.events.probability[e] > 0.7 and 0.8 < f.events.t_median_s[e] < 1.8
