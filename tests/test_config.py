"""Typed configs: YAML and --set override dataclass defaults; bad keys and types are one-line
errors."""

import pytest

from trajpred.config import ConfigError, load_config, parse_overrides
from trajpred.train import RunConfig


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.01\n  epochs: 3\nmodel:\n  hidden_size: 64\n")
    cfg = load_config(RunConfig, path, ["train.epochs=7", "data.test_scene=hotel"])
    assert cfg.train.lr == 0.01 and cfg.train.epochs == 7
    assert cfg.model.hidden_size == 64 and cfg.model.num_layers == 2  # default kept
    assert cfg.data.test_scene == "hotel"


def test_the_shipped_config_loads():
    cfg = load_config(RunConfig, "configs/eth_ucy.yaml")
    assert cfg.model.obs_len == 8 and cfg.model.pred_len == 12 and cfg.model.dt_s == 0.4


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lrr=0.1", "did you mean 'train.lr'"),
        ("modle.hidden_size=3", "did you mean 'model'"),
        ("train.epochs=ten", "'train.epochs' must be int"),
        ("train.augment_flip=3", "must be true or false"),
        ("data.train_files=abc", "must be a list"),
    ],
)
def test_bad_keys_and_types_are_named(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as err:
        load_config(RunConfig, None, [override])
    assert "\n" not in str(err.value)


def test_int_is_accepted_for_float_and_lists_parse():
    cfg = load_config(RunConfig, None, ["train.lr=1", "data.train_files=[a.csv, b.csv]"])
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.data.train_files == ["a.csv", "b.csv"]


def test_override_needs_equals_sign():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["train.lr"])


def test_bad_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  lr: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml:"):
        load_config(RunConfig, path)
