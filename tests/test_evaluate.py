"""Evaluation: on the real ETH/UCY files (skipped without ../shared) the loader and metric
reproduce the data README's constant-velocity anchor and the shipped checkpoints reproduce the
results table of docs/benchmarks/eth_ucy.md; best-of-K never gets worse as K grows; a checkpoint
evaluated on files it trained on is named."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ETH_UCY_SCENES, curvy_walks, doc_table, markdown_table

import trajpred
from trajpred.checkpoint import load_checkpoint, load_forecaster, save_checkpoint
from trajpred.cli import main
from trajpred.config import to_dict
from trajpred.data import DataConfig, load_split
from trajpred.demo import untrained_checkpoint
from trajpred.evaluation import evaluate_scene
from trajpred.forecast import draw_samples, forecast_windows
from trajpred.formats import write_eth_ucy
from trajpred.metrics import ade, constant_velocity, fde, format_table, min_ade_fde
from trajpred.model import ForecastOutput

REPO = Path(__file__).resolve().parents[1]
SHIPPED_ETH_UCY = REPO / "data/checkpoints/eth_ucy"
# The ETH/UCY results table (docs/benchmarks/eth_ucy.md): the shipped checkpoints' scores, as
# printed.
RESULTS_HEADER = "| scene | windows | ADE | FDE | CV ADE | CV FDE | minADE20 | minFDE20 |"
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


def test_shipped_checkpoint_gives_the_readme_row_on_eth(shared_dir):
    ckpt = SHIPPED_ETH_UCY / "eth.pt"
    if not ckpt.exists():
        pytest.skip("no shipped ETH checkpoint")
    # KDE-NLL on a few windows: this test reads ADE/FDE
    result = evaluate_scene(
        str(ckpt), str(shared_dir / "data/eth_ucy"), "eth", k=20, kde_windows=50
    )
    assert np.isfinite(result.forecasts.mean).all()
    # Every figure as the benchmark page prints it (3 decimals): a regression of 0.001 m shows.
    printed = markdown_table(format_table([result.score]), RESULTS_HEADER)
    assert printed["eth"] == doc_table(RESULTS_HEADER)["eth"]


@pytest.mark.slow  # 34,161 windows through five ensembles: about 17 s on 2 cores
def test_evaluate_all_scenes_with_the_checkpoint_folder_prints_the_doc_table(shared_dir, capsys):
    """`trajpred evaluate --checkpoint data/checkpoints/eth_ucy --scene all`, as README.md runs
    it (one checkpoint per scene from the folder, K = 20 by default), prints the benchmark table:
    all five scenes and the average, deterministic and best-of-20, to the last printed digit."""
    if not all((SHIPPED_ETH_UCY / f"{s}.pt").is_file() for s in ETH_UCY_SCENES):
        pytest.skip(f"shipped checkpoints in {SHIPPED_ETH_UCY} are absent")
    # the uncertainty scores' KDE-NLL on few windows: this test reads the ADE/FDE table
    args = [
        "evaluate",
        "--checkpoint",
        str(SHIPPED_ETH_UCY),
        "--scene",
        "all",
        "--kde-windows",
        "50",
    ]
    assert main([*args, "--data", str(shared_dir / "data/eth_ucy")]) == 0
    printed = markdown_table(capsys.readouterr().out, RESULTS_HEADER)
    readme = doc_table(RESULTS_HEADER)  # docs/benchmarks/eth_ucy.md
    assert list(printed) == [*ETH_UCY_SCENES, "avg"] == list(readme)
    for scene, row in readme.items():
        assert printed[scene] == row, scene


def _mixture(logits: list[list[float]], n_steps: int = 3, seed: int = 0):
    """A ForecastOutput with the given mode logits (B, M), random mode paths and sigma 0.5, and
    the modes' positions (B, M, n_steps, 2) in source units (scale 1)."""

    g = torch.Generator().manual_seed(seed)
    logits_t = torch.tensor(logits)
    b, m = logits_t.shape
    modes = torch.randn(b, m, n_steps, 2, generator=g)
    out = ForecastOutput(modes[:, 0], modes, logits_t, torch.full((b, m, n_steps), 0.5))
    return out, modes, torch.ones(b)


def test_draw_samples_by_hand():

    out, modes, scale = _mixture([[0.0, 2.0, 1.0]])
    one = draw_samples(out, modes, scale, 1)
    assert torch.equal(one[0, 0], modes[0, 1])  # the most probable mode
    all_three = draw_samples(out, modes, scale, 3)
    assert torch.equal(all_three[0], modes[0, [1, 2, 0]])  # every mode, most probable first
    five = draw_samples(out, modes, scale, 5, torch.Generator().manual_seed(0))
    assert five.shape == (1, 5, 3, 2) and torch.equal(five[:, :3], all_three)
    # The 2 draws beyond the modes are modes plus noise: new trajectories, not copies.
    assert not any(torch.equal(five[0, j], modes[0, i]) for j in (3, 4) for i in range(3))


def test_best_of_k_never_gets_worse_as_k_grows_synthetic():

    g = np.random.default_rng(1)
    out, modes, scale = _mixture(g.normal(size=(200, 20)).tolist(), n_steps=12)
    gt = g.normal(size=(200, 12, 2))
    previous = None
    for k in (1, 5, 20, 40, 60):
        samples = draw_samples(out, modes, scale, k, torch.Generator().manual_seed(3)).numpy()
        scores = np.stack(min_ade_fde(samples, gt))  # (2, N)
        if previous is not None:
            assert np.array_equal(samples[:, : previous[0].shape[1]], previous[0])
            assert (scores <= previous[1]).all()  # window by window, ADE and FDE
        previous = samples, scores


def test_best_of_k_never_gets_worse_as_k_grows_on_eth(shared_dir):

    ckpt = REPO / "data/checkpoints/eth_ucy/eth.pt"
    if not ckpt.exists():
        pytest.skip("no shipped ETH checkpoint")
    model = load_forecaster(ckpt)
    windows, _ = load_split(
        DataConfig(root=str(shared_dir / "data/eth_ucy"), test_scene="eth"),
        "test",
        8,
        12,
        0.4,
        model.cfg.social_neighbours,
    )
    previous = None
    for k in (1, 5, 20, 40):
        fc = forecast_windows(
            model,
            windows.obs_xy,
            windows.obs_box_wh,
            k,
            nbr_xy=windows.nbr_xy,
            nbr_mask=windows.nbr_mask,
        )
        scores = np.stack(min_ade_fde(fc.samples, windows.fut_xy))
        if previous is not None:
            assert (scores <= previous + 1e-9).all()
            assert scores.mean(1)[0] < previous.mean(1)[0]  # more samples help on average
        previous = scores


def _trained_checkpoint(path: Path, data: dict) -> str:
    """An untrained model saved with a run config whose data section is `data`."""

    payload = load_checkpoint(untrained_checkpoint(path))
    run = {"data": {**to_dict(DataConfig()), **data}}
    keep = ("model_config", "model", "calibration")
    save_checkpoint(path, {k: payload[k] for k in keep} | {"run_config": run})
    return str(path)


@pytest.fixture
def two_scene_root(tmp_path) -> Path:
    """ETH/UCY-shaped root: scene `a` tests recording rec.txt, whose first part rec_train.txt
    trains scene `b`; scene `b` tests other.txt."""

    root = tmp_path / "root"
    files = {"a/test/rec.txt": 1, "b/train/rec_train.txt": 2, "b/val/rec_val.txt": 3}
    files |= {"b/test/other.txt": 4, "a/train/other_train.txt": 5}
    for name, seed in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_eth_ucy(root / name, curvy_walks(6, seed=seed))
    return root


def test_evaluate_names_test_files_the_checkpoint_trained_on(two_scene_root, tmp_path):

    # Trained leave-one-out for scene b (on rec_train.txt): scene a's rec.txt is leaked.
    ckpt = _trained_checkpoint(tmp_path / "b.pt", {"root": str(two_scene_root), "test_scene": "b"})
    leaked = evaluate_scene(ckpt, str(two_scene_root), "a", k=0)
    assert leaked.trained_on == ["rec.txt"]
    assert leaked.warning.startswith("warning: ") and "rec.txt" in leaked.warning
    assert "'a'" in leaked.warning and "\n" not in leaked.warning
    held_out = evaluate_scene(ckpt, str(two_scene_root), "b", k=0)
    assert held_out.trained_on == [] and held_out.warning is None
    # Trained elsewhere on the same layout: the run config's root is rebased on the data's.
    moved = _trained_checkpoint(tmp_path / "m.pt", {"root": "/nowhere/root", "test_scene": "b"})
    assert evaluate_scene(moved, str(two_scene_root), "a", k=0).trained_on == ["rec.txt"]
    # Explicit files: the very test file, given as a track file.
    test_file = str(two_scene_root / "b/test/other.txt")
    direct = _trained_checkpoint(tmp_path / "d.pt", {"train_files": [test_file]})
    assert evaluate_scene(direct, test_file, "mine", k=0).trained_on == ["other.txt"]
    # No run config (an untrained model): nothing known, no warning.

    bare = untrained_checkpoint(tmp_path / "bare.pt")
    assert evaluate_scene(bare, str(two_scene_root), "a", k=0).trained_on == []


def test_evaluate_cli_warns_in_one_line(two_scene_root, tmp_path, capsys):

    ckpt = _trained_checkpoint(tmp_path / "b.pt", {"root": str(two_scene_root), "test_scene": "b"})
    args = ["evaluate", "--checkpoint", ckpt, "--data", str(two_scene_root), "--k", "0"]
    assert main([*args, "--scene", "a", "b"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rec.txt" in err and "'a'" in err


def test_shipped_video_model_is_flagged_on_eth_ucy(shared_dir):

    ckpt = REPO / "data/checkpoints/video.pt"
    if not ckpt.exists():
        pytest.skip("no shipped video checkpoint")
    result = trajpred.evaluate(
        str(ckpt), str(shared_dir / "data/eth_ucy"), "eth", k=0, kde_windows=50
    )
    assert result.trained_on == ["biwi_eth.txt"] and "not a held-out score" in result.warning
    assert (
        trajpred.evaluate(
            str(REPO / "data/checkpoints/eth_ucy"), str(shared_dir / "data/eth_ucy"), "eth", k=0
        ).trained_on
        == []
    )
