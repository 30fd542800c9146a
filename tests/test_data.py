"""Training data from explicit files: MOT gt.txt at video rate, held-out validation tail."""

import numpy as np

from trajpred.data import DataConfig, load_split


def write_mot_gt(path, fps=10, seconds=60):
    """Track 1 walks right (mark 1); track 2 is an ignored region (mark 0), 9-column gt.txt."""
    rows = []
    for f in range(1, int(fps * seconds) + 1):
        rows.append(f"{f},1,{100 + 3 * f},200,20,50,1,1,1.0")
        rows.append(f"{f},2,{400 - 2 * f},220,20,50,0,1,1.0")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_mot_gt_is_resampled_and_zero_marks_are_dropped(tmp_path):
    gt = write_mot_gt(tmp_path / "gt.txt")
    cfg = DataConfig(train_files=[str(gt)], fps=10.0)
    train, report = load_split(cfg, "train", 8, 12, 0.4)
    val, _ = load_split(cfg, "val", 8, 12, 0.4)
    assert set(train.track_id) == {1} and report.tracks == 1
    steps = np.diff(train.obs_xy[:, :, 0], axis=1)
    np.testing.assert_allclose(steps, 3 * 4, atol=1e-4)  # 3 px per frame, 4 frames per 0.4 s step
    assert train.frame_id.max() < val.frame_id.min()  # validation is the held-out tail
    kept = load_split(
        DataConfig(train_files=[str(gt)], fps=10.0, ignore_zero_conf=False), "train", 8, 12, 0.4
    )[0]
    assert set(kept.track_id) == {1, 2}
