"""Typed configs: dataclasses hold the defaults, YAML files and `--set key=value` override them.

An unknown key is an error that suggests the nearest valid one; a value of the wrong type is an
error that names the key and the expected type; a value out of range is an error from the
dataclass's own `__post_init__` (with the rules of trajpred/checks.py), so no command and no
checkpoint ever holds an impossible setting. Every such error is one line that names the key
and where its value came from (the YAML file, `--set`, or the flag), quoting at most a few
dozen characters of the value. `to_dict` gives the resolved config that every command saves
beside its outputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from .checks import ConfigError, SettingError, shown
from .errors import first_line

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")

MAX_YAML_BYTES = 1 << 20  # a config is a few hundred bytes; anything this large is a mistake
MAX_YAML_VALUES = 100_000  # values a YAML document may expand to (aliases can multiply them)


# ---------------------------------------------------------------- dicts -> dataclasses


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


# YAML 1.1 reads "1e-3" (no dot) as text; a float setting takes it as the number it spells.
_EXPONENT_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp` and convert where that is safe (ints where
    floats are expected); raises ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, tp, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError("config", f"'{key}' must be a list, got {shown(value)}", key)
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, key) for v in value]
        return tuple(items) if origin is tuple else items
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError("config", f"'{key}' must be a mapping of {tp.__name__} fields", key)
        return from_dict(tp, value, prefix=f"{key}.")
    return _coerce_scalar(value, tp, key)


def _coerce_union(value: Any, tp: Any, key: str) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is not type(None):
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
    raise ConfigError("config", f"'{key}' must be {_type_name(tp)}, got {shown(value)}", key)


def _coerce_scalar(value: Any, tp: Any, key: str) -> Any:
    if tp is Any:
        return value
    if tp is float and isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
        value = float(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 1e308:  # float() would overflow
            raise ConfigError("config", f"'{key}' must be a finite number, got {shown(value)}", key)
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError("config", f"'{key}' must be true or false, got {shown(value)}", key)
    wrong_number = tp in (int, float) and isinstance(value, bool)
    if wrong_number or (isinstance(tp, type) and not isinstance(value, tp)):
        raise ConfigError("config", f"'{key}' must be {tp.__name__}, got {shown(value)}", key)
    return value


def _unknown_key(key: str, valid: list[str], prefix: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; valid keys: {', '.join(valid)}"
    return ConfigError("config", f"unknown config key {shown(prefix + key)}{hint}", prefix + key)


def from_dict(cls: type[T], data: dict, where: str | None = None, prefix: str = "") -> T:
    """Build dataclass `cls` from a (possibly partial) nested dict, checking keys, types and
    ranges; errors name the dotted key and, when given, `where` the data came from."""
    try:
        fields = [f.name for f in dataclasses.fields(cls)]
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in (data or {}).items():
            if key not in fields:
                raise _unknown_key(str(key), fields, prefix)
            kwargs[key] = _coerce(value, hints[key], f"{prefix}{key}")
        try:
            return cls(**kwargs)
        except SettingError as e:
            raise ConfigError("config", f"'{prefix}{e.key}' {e.problem}", prefix + e.key) from None
    except ConfigError as e:
        if where is None or e.detail is None:
            raise
        raise ConfigError(where, e.detail, e.key) from None


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def merge(base: dict, update: dict) -> dict:
    """Nested dict merge: values in `update` win, sub-dicts are merged key by key."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def nested(dotted: str, value: Any) -> dict:
    """'detector.conf', 0.3 -> {'detector': {'conf': 0.3}}."""
    *parents, leaf = dotted.split(".")
    node: dict = {}
    out = node
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out


def _leaf_keys(data: dict, prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        yield f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaf_keys(value, f"{prefix}{key}.")


# ---------------------------------------------------------------- YAML


def _count_values(data: Any, limit: int) -> int:
    """How many values `data` holds once every alias is expanded (stops counting past `limit`);
    each shared node is counted once per place it appears, but visited once."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, (list, dict)):
            return 1
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise ConfigError("a value refers to itself (a recursive YAML alias)")
        active.add(id(node))
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        active.discard(id(node))
        sizes[id(node)] = total
        return total

    try:
        return size(data)
    except RecursionError:
        raise ConfigError("nested too deeply") from None


def parse_yaml(text: str, where: str) -> Any:
    """YAML text -> plain data, safely: any YAML error, a document whose aliases expand to more
    than MAX_YAML_VALUES values, or one that refers to itself is one ConfigError line."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None and "\n" in text.strip() else ""
        problem = getattr(e, "problem", None) or first_line(e)
        raise ConfigError(f"{where}{line}", f"not valid YAML ({problem})") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as e:  # e.g. 2001-02-30
        raise ConfigError(where, f"not valid YAML ({first_line(e, 100)})") from None
    try:
        n = _count_values(data, MAX_YAML_VALUES)
    except ConfigError as e:
        raise ConfigError(where, f"refused: {e}") from None
    if n > MAX_YAML_VALUES:
        raise ConfigError(
            where, f"refused: expands to more than {MAX_YAML_VALUES:,} values (YAML aliases?)"
        )
    return data


def read_yaml(path: str | os.PathLike) -> dict:
    """A YAML file that holds a mapping -> dict; any problem is one ConfigError line."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a config file" if path.is_dir() else "config file not found"
        raise ConfigError(os.fspath(path), what)
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ConfigError(os.fspath(path), f"over {MAX_YAML_BYTES >> 20} MiB: not a config")
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(os.fspath(path), f"cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ConfigError(os.fspath(path), "not a text file (bytes that are not UTF-8)") from None
    data = parse_yaml(text, os.fspath(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(os.fspath(path), "a config must be a mapping of keys to values")
    return data


def parse_overrides(pairs: list[str] | None) -> dict:
    """['train.lr=1e-3', 'data.test_scene=eth'] -> nested dict; values are parsed as YAML.
    A later pair wins over an earlier one that sets the same key (or a key above it)."""
    out: dict = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError("--set", f"expects key=value, got {shown(pair)}")
        dotted, raw = pair.split("=", 1)
        parts = [p.strip() for p in dotted.split(".")]
        if not all(parts):
            raise ConfigError("--set", f"{shown(dotted)} is not a config key (e.g. train.lr)")
        value = parse_yaml(raw, f"--set {'.'.join(parts)}") if raw.strip() else ""
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[parts[-1]] = value
    return out


# ---------------------------------------------------------------- loading, for every command


def load_config(
    cls: type[T],
    path: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    base: dict | None = None,
    flags: dict[str, tuple[str, Any]] | None = None,
) -> T:
    """Defaults of `cls`, then `base`, then the YAML file at `path`, then `--set` overrides,
    then command-line flags ({'--conf': ('detector.conf', 0.3)}). An error names the key and
    the layer its value came from."""
    layers = [("config", base or {})]
    if path is not None:
        layers.append((os.fspath(path), read_yaml(path)))
    if overrides:
        layers.append(("--set", parse_overrides(overrides)))
    for flag, (key, value) in (flags or {}).items():
        layers.append((flag, nested(key, value)))
    data: dict = {}
    sources: dict[str, str] = {}
    for name, layer in layers:
        _check_sections(cls, layer, name)
        data = merge(data, layer)
        sources.update(dict.fromkeys(_leaf_keys(layer), name))
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        if e.key is None or e.detail is None:
            raise
        raise ConfigError(_source(sources, e.key), e.detail, e.key) from None


def _check_sections(cls: type, layer: dict, where: str, prefix: str = "") -> None:
    """A section (a nested config) must be a mapping in every layer, not only in the merged
    result: else a later layer's keys would quietly replace the bad value."""
    hints = typing.get_type_hints(cls)
    for key, value in layer.items():
        tp = hints.get(key) if isinstance(key, str) else None
        if not (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
            continue
        if not isinstance(value, dict):
            detail = f"'{prefix}{key}' must be a mapping of {tp.__name__} fields"
            raise ConfigError(where, detail, prefix + key)
        _check_sections(tp, value, where, f"{prefix}{key}.")


def _source(sources: dict[str, str], key: str) -> str:
    """The layer that set `key` (or the key above it, or one below it); 'config' for defaults."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in sources:
            return sources[".".join(parts[:n])]
    below = [name for k, name in sources.items() if k.startswith(key + ".")]
    return below[-1] if below else "config"


def add_config_arguments(p: argparse.ArgumentParser, default: str | None, example: str) -> None:
    """--config YAML and --set KEY=VALUE, the same for every command: --set takes one or more
    pairs and may be repeated (`--set a=1 b=2 --set c=3`)."""
    p.add_argument(
        "--config",
        metavar="YAML",
        default=argparse.SUPPRESS if default is None else default,
        help="config file" + ("" if default else " (default: the built-in defaults)"),
    )
    add_set_argument(p, "override config keys", example)


def add_set_argument(p: argparse.ArgumentParser, what: str, example: str) -> None:
    """--set KEY=VALUE: one or more pairs, repeatable (`--set a=1 b=2 --set c=3`), into
    args.overrides."""
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        nargs="+",
        action="extend",
        default=[],
        dest="overrides",
        help=f"{what}; values are YAML; repeatable (e.g. --set {example})",
    )


def flag_settings(args: argparse.Namespace, flag_keys: dict[str, str]) -> dict:
    """The flags the user gave (argparse.SUPPRESS defaults are absent) as load_config `flags`."""
    return {
        f"--{flag.replace('_', '-')}": (key, getattr(args, flag))
        for flag, key in flag_keys.items()
        if hasattr(args, flag)
    }


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    from .atomic import write_text

    write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
