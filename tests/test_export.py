"""`trajpred export`: ONNX and TorchScript files stream a whole video like PyTorch, describe
themselves, take any number of tracks, and load wherever a checkpoint does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import doc_table

from trajpred.checkpoint import load_forecaster
from trajpred.cli import main
from trajpred.errors import InputError
from trajpred.export_forecaster import example_inputs, export_forecaster
from trajpred.export_runtime import ExportedForecaster, load_exported
from trajpred.features import PERSON_HEIGHT_M
from trajpred.forecast import forecast_windows
from trajpred.pipeline import ForecastConfig, LiveForecaster, Pipeline, PipelineConfig

ROOT = Path(__file__).resolve().parents[1]
VIDEO_MODEL = ROOT / "data" / "checkpoints" / "video.pt"  # one model, 8 neighbours, no boxes
ENSEMBLE = ROOT / "data" / "checkpoints" / "eth_ucy" / "eth.pt"  # 3 members, box features
SUFFIX = {"onnx": ".onnx", "torchscript": ".ts"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """export(checkpoint, backend, int8=False) -> path of the exported file, made once."""
    for path in (VIDEO_MODEL, ENSEMBLE):
        if not path.is_file():
            pytest.skip(f"shipped checkpoint {path} is absent")
    folder, made = tmp_path_factory.mktemp("exported"), {}

    def export(checkpoint: Path, backend: str, int8: bool = False) -> Path:
        key = (checkpoint, backend, int8)
        if key not in made:
            out = folder / f"{checkpoint.stem}{'_int8' if int8 else ''}{SUFFIX[backend]}"
            made[key] = export_forecaster(checkpoint, out, backend, int8).path
        return made[key]

    return export


@pytest.fixture(scope="module")
def video_tracks(video_assets):
    """(fps, [(frame_id, TrackedBoxes)]) of the synthetic test video, detected and tracked once."""
    from trajpred.detect import DetectorConfig
    from trajpred.video import VideoSource

    config = PipelineConfig(DetectorConfig(weights=video_assets.weights, imgsz=320, device="cpu"))
    pipeline = Pipeline(config, forecast=False)
    with pipeline.open(VideoSource(str(video_assets.scene.video), "video")) as reader:
        frames = [(r.frame_id, r.tracks) for r in pipeline.track_frames(reader)]
        return reader.info.fps, frames


def stream(model, fps: float, frames, k: int = 3) -> list:
    live = LiveForecaster(model, fps, ForecastConfig(k=k))
    return [live.update(frame_id, tracks) for frame_id, tracks in frames]


@pytest.mark.parametrize("backend", ["onnx", "torchscript"])
@pytest.mark.parametrize("checkpoint", [VIDEO_MODEL, ENSEMBLE], ids=["model", "ensemble"])
def test_exported_forecaster_streams_a_whole_video_like_pytorch(
    exported, video_tracks, checkpoint, backend
):
    fps, frames = video_tracks
    expect = stream(load_forecaster(checkpoint), fps, frames)
    model = load_forecaster(exported(checkpoint, backend))
    assert isinstance(model, ExportedForecaster)
    got = stream(model, fps, frames)
    # 1e-4 in model units (about metres): pixels over the smallest scale (box height / 1.7).
    heights = np.concatenate([t.box_xywh[:, 3] for _, t in frames])
    px_per_unit = max(1.0, heights.min()) / PERSON_HEIGHT_M
    n = 0
    for e, g in zip(expect, got, strict=True):
        np.testing.assert_array_equal(e.track_id, g.track_id)
        for a, b in ((e.xy, g.xy), (e.r50, g.r50), (e.r90, g.r90), (e.samples, g.samples)):
            assert np.abs(a - b).max(initial=0) / px_per_unit <= 1e-4
        n += len(e)
    assert n > 100  # forecasts on most frames of the 60, not a vacuous comparison


@pytest.mark.parametrize("backend", ["onnx", "torchscript"])
def test_api_forecaster_takes_an_exported_file(exported, video_tracks, backend):
    """`trajpred.Forecaster(FILE)` with the exported video model gives the .pt checkpoint's
    forecasts within the export guide's 1e-4 model units, fed the tracked video as plain arrays."""
    from trajpred import Forecaster

    fps, frames = video_tracks
    pt, other = (
        Forecaster(VIDEO_MODEL, fps=fps, k=3),
        Forecaster(exported(VIDEO_MODEL, backend), fps=fps, k=3),
    )
    heights = np.concatenate([t.box_xywh[:, 3] for _, t in frames])
    px_per_unit = max(1.0, heights.min()) / PERSON_HEIGHT_M
    n = 0
    for frame_id, tracks in frames:
        xyxy = np.column_stack(
            [tracks.box_xywh[:, :2], tracks.box_xywh[:, :2] + tracks.box_xywh[:, 2:]]
        )
        e = pt.update(tracks.track_id, xyxy, frame_id=frame_id)
        g = other.update(tracks.track_id, xyxy, frame_id=frame_id)
        np.testing.assert_array_equal(e.track_id, g.track_id)
        for a, b in ((e.xy, g.xy), (e.r50, g.r50), (e.r90, g.r90), (e.samples, g.samples)):
            assert np.abs(a - b).max(initial=0) / px_per_unit <= 1e-4
        n += len(e)
    assert n > 100


# zara1: where docs/benchmarks/eth_ucy.md says int8 costs most (an export and 2,356 windows:
# a few seconds)
@pytest.mark.parametrize("scene", ["eth", pytest.param("zara1", marks=pytest.mark.slow)])
def test_int8_gives_the_readme_figures_on_eth_ucy(exported, shared_dir, scene):
    """The int8 export of a shipped ensemble scores the int8 table (docs/benchmarks/eth_ucy.md)
    on the real test windows (ADE, FDE, best-of-20), to its printed digits: a coarser
    quantisation shows."""
    from trajpred.evaluation import evaluate_scene

    checkpoint = ENSEMBLE.with_name(f"{scene}.pt")
    if not checkpoint.is_file():
        pytest.skip(f"shipped checkpoint {checkpoint} is absent")
    int8 = exported(checkpoint, "onnx", int8=True)
    s = evaluate_scene(str(int8), str(shared_dir / "data/eth_ucy"), scene, k=20).score
    row = doc_table("| scene | ADE fp32 | ADE int8 |")[scene]
    printed = [f"{v:.3f}" for v in (s.ade, s.fde, s.min_ade, s.min_fde)]
    readme = [row["ADE int8"], row["FDE int8"]]
    readme += [row[f"{name}20 fp32 / int8"].split(" / ")[1] for name in ("minADE", "minFDE")]
    assert printed == readme


@pytest.mark.parametrize("backend", ["onnx", "torchscript"])
def test_any_number_of_tracks_steps_and_neighbours(exported, backend):
    torch_model = load_forecaster(ENSEMBLE)
    model = load_forecaster(exported(ENSEMBLE, backend))
    for batch, steps in ((1, 1), (7, 7), (50, 1)):
        features, h, c, speed, nbr, mask, _ = example_inputs(torch_model, batch, steps, seed=batch)
        for neighbours in (nbr, nbr[:, :1], None):  # all, one, none at all
            m = None if neighbours is None else mask[:, : neighbours.shape[1]]
            with torch.no_grad():
                (eh, ec), e = torch_model.advance(features, (h, c), speed, neighbours, m)
            (gh, gc), g = model.advance(features, (h, c), speed, neighbours, m)
            assert g.mean.shape == (batch, 12, 2) and gh.shape == (2, batch, 3 * 128)
            for a, b in ((eh, gh), (ec, gc), (e.mean, g.mean), (e.modes, g.modes)):
                torch.testing.assert_close(b, a, atol=1e-4, rtol=0)
            for a, b in ((e.mode_logits, g.mode_logits), (e.mode_sigma, g.mode_sigma)):
                torch.testing.assert_close(b, a, atol=1e-4, rtol=0)


@pytest.mark.slow  # the console script in a subprocess
def test_export_command_writes_a_self_describing_file(tmp_path):
    if not VIDEO_MODEL.is_file():
        pytest.skip(f"shipped checkpoint {VIDEO_MODEL} is absent")
    out = tmp_path / "video.onnx"
    result = subprocess.run(
        [sys.executable, "-m", "trajpred", "export", "--checkpoint", VIDEO_MODEL, "--out", out],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "video.onnx: onnx model" in result.stdout and "difference from PyTorch" in result.stdout
    import onnx

    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    meta = json.loads(props["trajpred"])
    config = meta["model_config"]
    assert (config["dt_s"], config["obs_len"], config["pred_len"]) == (0.4, 16, 12)
    assert meta["members"] == 1 and meta["source"] == "video.pt" and not meta["int8"]
    assert "box height / 1.7" in meta["scale_mode"] and meta["checkpoint"]["run_config"]
    assert list(meta["inputs"])[:3] == ["features", "h", "c"] and "mean" in meta["outputs"]
    model = load_forecaster(out)
    assert model.cfg == load_forecaster(VIDEO_MODEL).cfg and model.meta.backend == "onnx"


def test_torchscript_is_recognised_under_any_name(exported, tmp_path):
    from trajpred.checkpoint import load_checkpoint

    renamed = tmp_path / "ensemble.pt"
    shutil.copy(exported(ENSEMBLE, "torchscript"), renamed)
    model = load_forecaster(renamed)
    assert isinstance(model, ExportedForecaster) and model.meta.members == 3
    assert model.meta.model_config["obs_len"] == 8 and model.meta.backend == "torchscript"
    with pytest.raises(InputError, match="needs the .pt checkpoint it came from"):
        load_checkpoint(renamed)  # what training from it (train.init_from) reads


@pytest.mark.slow  # predict starts its writer process
def test_evaluate_and_predict_accept_an_exported_file(
    exported, eth_ucy_like_root, video_assets, tmp_path, capsys
):
    tables = []
    for checkpoint in (ENSEMBLE, exported(ENSEMBLE, "onnx")):
        args = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(eth_ucy_like_root)]
        assert main([*args, "--scene", "toy"]) == 0
        tables.append(capsys.readouterr().out)
    assert tables[0] == tables[1] and "| toy |" in tables[0]

    out = tmp_path / "predict"
    args = ["predict", str(video_assets.scene.video), "--out", str(out), "--no-progress"]
    args += ["--weights", video_assets.weights, "--imgsz", "320", "--device", "cpu"]
    assert main([*args, "--checkpoint", str(exported(VIDEO_MODEL, "onnx"))]) == 0
    rows = (out / "forecasts.csv").read_text().splitlines()
    assert rows[0] == "frame,track_id,step,target_frame,x,y,r50,r90" and len(rows) > 1000


def test_int8_file_is_smaller_and_close(exported, eth_ucy_like_root):
    from trajpred.data import DataConfig, load_split
    from trajpred.metrics import ade

    fp32, int8 = load_forecaster(ENSEMBLE), load_forecaster(exported(ENSEMBLE, "onnx", int8=True))
    assert int8.meta.int8 and exported(ENSEMBLE, "onnx", int8=True).stat().st_size < (
        exported(ENSEMBLE, "onnx").stat().st_size / 3
    )
    cfg = DataConfig(root=str(eth_ucy_like_root), test_scene="toy")
    windows, _ = load_split(cfg, "test", 8, 12, 0.4, 8)
    inputs = (windows.obs_xy, windows.obs_box_wh)
    kw = {"nbr_xy": windows.nbr_xy, "nbr_mask": windows.nbr_mask}
    a, b = forecast_windows(fp32, *inputs, **kw).mean, forecast_windows(int8, *inputs, **kw).mean
    gap = np.linalg.norm(a - b, axis=-1)  # metres, over 4.8 s forecasts
    assert len(gap) > 50 and gap.mean() < 0.1
    assert abs(ade(b, windows.fut_xy).mean() - ade(a, windows.fut_xy).mean()) < 0.05


def test_missing_onnxruntime_names_the_extra(exported, eth_ucy_like_root, monkeypatch, capsys):
    path = exported(ENSEMBLE, "onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    args = ["evaluate", "--checkpoint", str(path), "--data", str(eth_ucy_like_root)]
    assert main([*args, "--scene", "toy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'install it with: pip install "trajpred[onnx]"' in err[0]
    assert str(path) in err[0] and "onnxruntime" in err[0]

    monkeypatch.setitem(sys.modules, "onnx", None)
    out = path.with_name("again.onnx")
    assert main(["export", "--checkpoint", str(ENSEMBLE), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install "trajpred[onnx]"' in err[0] and not out.exists()


def test_unusable_exported_files_are_one_line_errors(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a readable ONNX model"):
        load_exported(garbage)
    (tmp_path / "garbage.ts").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="not a readable TorchScript file"):
        load_exported(tmp_path / "garbage.ts")
    foreign = tmp_path / "foreign.onnx"
    with warnings.catch_warnings():  # the legacy exporter (no onnxscript) says it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Linear(2, 2), (torch.ones(1, 2),), str(foreign), dynamo=False)
    with pytest.raises(InputError, match="without trajpred metadata"):
        load_exported(foreign)
    with pytest.raises(InputError, match="not found"):
        load_forecaster(tmp_path / "missing.onnx")


# How far an exported detector's boxes (px) and scores may be from the .pt's: onnxruntime
# computes in fp32 (measured 6e-5 px); OpenVINO's CPU plugin in bf16 where the CPU has it
# (8-bit mantissa; measured 0.92 px and 0.012).
EXPORTED_ATOL = {"onnx": (1e-3, 1e-5), "openvino": (2.0, 0.03)}


@pytest.mark.slow  # exports the detector and tracks a video: seconds
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_a_detector_exported_by_ultralytics_tracks_like_its_pt(fmt, video_assets, tmp_path):
    """--weights takes what `yolo export` writes (an .onnx file, an OpenVINO folder): the shipped
    detector exported finds the boxes of its .pt, and `track` gives the same tracks."""
    import cv2
    from ultralytics import YOLO

    from trajpred.demo import match_boxes
    from trajpred.detect import Detector, DetectorConfig
    from trajpred.formats import read_csv

    if fmt == "openvino":
        pytest.importorskip("openvino", reason="OpenVINO is not installed")
    pt = shutil.copy(video_assets.weights, tmp_path / "synth_yolo.pt")
    # dynamic: letterboxed to the frame's aspect like the .pt (a fixed square input pads more)
    exported = YOLO(pt).export(format=fmt, imgsz=video_assets.imgsz, dynamic=True, verbose=False)
    cfg = DetectorConfig(weights=str(pt), imgsz=video_assets.imgsz, device="cpu")
    detectors = Detector(cfg), Detector(DetectorConfig(**{**vars(cfg), "weights": exported}))
    assert Path(detectors[1].weights) == Path(exported)
    box_atol, conf_atol = EXPORTED_ATOL[fmt]
    cap = cv2.VideoCapture(str(video_assets.scene.video))
    for frame in (cap.read()[1] for _ in range(5)):
        want, got = (d.confident(d.detect(frame)) for d in detectors)
        pairs = np.array(match_boxes(want.box_xywh, got.box_xywh))
        assert len(want) == len(got) == len(pairs) > 0
        np.testing.assert_allclose(
            got.box_xywh[pairs[:, 1]], want.box_xywh[pairs[:, 0]], atol=box_atol
        )
        np.testing.assert_allclose(got.conf[pairs[:, 1]], want.conf[pairs[:, 0]], atol=conf_atol)
    cap.release()
    tracks = []
    for weights in (pt, exported):
        out = tmp_path / f"{Path(weights).stem}.csv"
        args = ["track", video_assets.scene.video, "--out", out, "--weights", weights]
        assert main([*map(str, args), "--imgsz", str(video_assets.imgsz), "--no-progress"]) == 0
        tracks.append(read_csv(out))
    if fmt == "onnx":  # fp32: the very same tracks, to the written 0.01 px
        np.testing.assert_array_equal(tracks[1].frame_id, tracks[0].frame_id)
        np.testing.assert_array_equal(tracks[1].track_id, tracks[0].track_id)
        np.testing.assert_allclose(tracks[1].box_xywh, tracks[0].box_xywh, atol=0.011)
    else:  # bf16 boxes may confirm a track a frame earlier or later, or start two in turn
        assert abs(len(tracks[1]) - len(tracks[0])) <= 0.05 * len(tracks[0])


@pytest.mark.slow  # the script in a subprocess
def test_bench_forecaster_times_each_backend(exported, tmp_path):
    out = tmp_path / "bench.json"
    onnx_file = exported(VIDEO_MODEL, "onnx")
    done = subprocess.run(
        [sys.executable, ROOT / "scripts" / "bench_forecaster.py", VIDEO_MODEL, onnx_file]
        + ["--tracks", "7", "--repeats", "5", "--frame-ms", "10", "--out", out],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert list(report["forecasters"]) == [str(VIDEO_MODEL), str(onnx_file)]
    for row in report["forecasters"].values():
        t = row["total_ms_median"]
        assert t > 0 and row["share_of_sampling_frame_median"] == round(t / (10 + t), 4)


@pytest.mark.parametrize("backend", ["onnx", "torchscript"])
def test_camera_specific_model_exports_with_its_scene_input(tmp_path, backend):
    from dataclasses import asdict

    from trajpred.checkpoint import save_checkpoint
    from trajpred.model import Forecaster, ForecasterConfig

    cfg = ForecasterConfig(hidden_size=16, embed_size=8, num_modes=3, social_neighbours=2)
    cfg.scene_input, cfg.scene_bounds, cfg.scene_units = True, [0.0, 0.0, 320.0, 192.0], "px"
    cfg.scene_classes = [0, 2]
    torch.manual_seed(0)
    model = Forecaster(cfg).eval()
    with torch.no_grad():  # off the zero start of the scene branch, so the scene matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    save_checkpoint(
        tmp_path / "camera.pt", {"model_config": asdict(cfg), "model": model.state_dict()}
    )
    out = tmp_path / f"camera{SUFFIX[backend]}"
    assert export_forecaster(tmp_path / "camera.pt", out, backend).max_diff < 1e-4
    exported = load_forecaster(out)
    assert exported.cfg == cfg
    *inputs, scene = example_inputs(model, 7, 1, seed=3)
    with torch.no_grad():
        expect = model.advance(inputs[0], tuple(inputs[1:3]), *inputs[3:], scene)[1].mean
        moved = model.advance(inputs[0], tuple(inputs[1:3]), *inputs[3:], scene + 1)[1].mean
    got = exported.advance(inputs[0], tuple(inputs[1:3]), *inputs[3:], scene)[1].mean
    torch.testing.assert_close(got, expect, atol=1e-4, rtol=0)
    assert (moved - expect).abs().max() > 1e-3  # the scene input is read
    with pytest.raises(ValueError, match="scene input"):
        exported.advance(inputs[0], None, *inputs[3:])
