"""Range checks for settings: the rules every config dataclass's `__post_init__` applies (and
commands apply to flags that are not config keys), with one message shape for all:
"'key' must be in [0, 1], got 1.5". Standard library only, so the model file can use it.
"""

from __future__ import annotations

import math
import numbers
import os
import reprlib
from collections.abc import Callable
from typing import Any

from .errors import TrajpredError

SEED_MAX = 2**32 - 1  # seeds as numpy's legacy seeding and every generator here accept them


class ConfigError(TrajpredError):
    """A bad config: `where` the value came from, `detail` the problem, `key` the dotted key
    (None when the problem is not one key's, e.g. a file that is not YAML)."""

    def __init__(self, where: str, detail: str | None = None, key: str | None = None):
        super().__init__(where if detail is None else f"{where}: {detail}")
        self.where, self.detail, self.key = where, detail, key


class ArgumentError(ConfigError, ValueError):
    """A bad argument of a public function, or a command-line flag that is no config key:
    "k must be an integer in [0, 100], got 101" (a flag reads "--k must ..."). A ValueError
    for Python callers, a TrajpredError (one line, exit 2) for the CLI."""

    def __init__(self, name: str, problem: str):
        TrajpredError.__init__(self, f"{name} {problem}")
        self.where, self.detail, self.key, self.problem = name, problem, name, problem


class SettingError(ConfigError):
    """A value out of range, raised by a config dataclass's `__post_init__` with the field's
    name; `from_dict` adds the section ("train.") and where the value came from."""

    key: str  # always a field's name

    def __init__(self, key: str, problem: str):
        super().__init__(f"'{key}' {problem}")
        self.key, self.problem = key, problem


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 2, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 40, 40, 40


def shown(value: Any) -> str:
    """`value` for an error message: repr cut to a few dozen characters, never walking all of a
    huge (or self-referencing) structure."""
    return _REPR.repr(value)


# ---------------------------------------------------------------- range rules


Rule = Callable[[Any], "str | None"]  # value -> what is wrong with it, or None


def between(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Rule:
    """A finite number in [low, high] (an end left out where `*_open`; None: unbounded)."""
    wanted = _interval(low, high, low_open, high_open) or "a finite number"

    def rule(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return f"must be a number {wanted}, got {shown(value)}"
        number = float(value)
        ok = math.isfinite(number)
        if ok and low is not None:
            ok = number > low if low_open else number >= low
        if ok and high is not None:
            ok = number < high if high_open else number <= high
        return None if ok else f"must be {wanted}, got {shown(value)}"

    return rule


def whole(low: int | None = None, high: int | None = None) -> Rule:
    """An integer in [low, high] (None: unbounded): ints and numpy integers; not bools, and not
    2.0 either (a count that arrives as a float is a mistake somewhere)."""
    interval = _interval(low, high)
    wanted = f"an integer {interval}" if interval else "an integer"

    def rule(value: Any) -> str | None:
        ok = not isinstance(value, bool) and isinstance(value, numbers.Integral)
        ok = ok and (low is None or value >= low) and (high is None or value <= high)
        return None if ok else f"must be {wanted}, got {shown(value)}"

    return rule


def _interval(low, high, low_open: bool = False, high_open: bool = False) -> str:
    """'in [0, 1]', '>= 0', '< 5', or '' for no bounds."""
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"in {left}{_num(low)}, {_num(high)}{right}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_num(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_num(high)}"
    return ""


def _num(x: float) -> str:
    """A bound as written: whole numbers in full (4294967295, not 4.29497e+09)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def positive() -> Rule:
    """A finite number > 0 (rates, time steps, sizes in metres)."""
    return between(0, low_open=True)


def one_of(*choices: Any) -> Rule:
    def rule(value: Any) -> str | None:
        if value in choices:
            return None
        return f"must be one of {', '.join(map(str, choices))}, got {shown(value)}"

    return rule


def non_empty(value: Any) -> str | None:
    return None if value else f"must not be empty, got {shown(value)}"


def path_like(value: Any) -> str | None:
    """A file or folder name: a non-empty str or os.PathLike."""
    if isinstance(value, str | os.PathLike) and os.fspath(value):
        return None
    return f"must be a path (a non-empty str or os.PathLike), got {shown(value)}"


def text(value: Any) -> str | None:
    """A non-empty str."""
    if isinstance(value, str) and value:
        return None
    return f"must be a non-empty str, got {shown(value)}"


def choice(*choices: str) -> Rule:
    """One of a few strings, as an argument or flag: "must be 'online' or 'fixed', got 'x'"."""
    quoted = [repr(c) for c in choices]
    wanted = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)

    def rule(value: Any) -> str | None:
        if isinstance(value, str) and value in choices:
            return None
        return f"must be {wanted}, got {shown(value)}"

    return rule


def optional(rule: Rule) -> Rule:
    """`rule`, or None."""
    return lambda value: None if value is None else rule(value)


def check_fields(obj: Any, **rules: Rule) -> None:
    """Apply one rule per field of a config dataclass; the first broken one raises SettingError.
    Called from `__post_init__`, so every way of building a config is checked."""
    for name, rule in rules.items():
        problem = rule(getattr(obj, name))
        if problem is not None:
            raise SettingError(name, problem)


def check_flag(flag: str, value: Any, rule: Rule) -> None:
    """A command-line flag that is no config key, checked with the same rules and messages."""
    problem = rule(value)
    if problem is not None:
        raise ConfigError(flag, problem)


def check_arguments(
    rules: dict[str, Rule], values: dict[str, Any], names: dict[str, str] | None = None
) -> None:
    """A public function's arguments and the command-line flags that feed them, checked by the
    same `rules` {argument: rule}; the first bad value raises ArgumentError named as in `names`
    (e.g. {"kde_windows": "--kde-windows"} for the CLI), else as the argument."""
    for name, value in values.items():
        problem = rules[name](value)
        if problem is not None:
            raise ArgumentError((names or {}).get(name, name), problem)


def require(ok: bool, key: str, problem: str) -> None:
    """A check that involves several fields, named after the one to change."""
    if not ok:
        raise SettingError(key, problem)
