"""Settings checked once, when a command's config is composed, before any work.

A command's rules are a table (a tuple of `OneOf`, `Range`, `Matches` and `Relation` rows,
each naming a dotted key of the composed config) kept beside the app: `regmix.settings_rules`
for the training side, `analysis.settings_rules` for regmix-fit / regmix-propose. The Hydra
callback `SettingsCheck` (conf/hydra_shared.yaml; each primary config names its table) runs
the table on `on_run_start` / `on_multirun_start`, before Hydra makes a run folder and before
the command reads, writes or logs anything: a typo costs a second, not a run. The first
broken rule raises `SettingsError` with one line naming the key, the bad value and what is
valid.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from regmix.errors import SettingsError

_MISSING = object()


@dataclass(frozen=True)
class OneOf:
    """`key` takes one of `values` (each item of it, when the value is a list)."""

    key: str
    values: tuple[Any, ...]
    optional: bool = False
    """None is allowed too (the field's 'unset')."""
    note: str = ""

    def problem(self, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if item not in self.values:
                shown = f"{value!r} (item {item!r})" if items != [value] else repr(value)
                return f"{self.key}={shown} is not valid; use one of: {', '.join(map(str, self.values))}{self.note}"
        return None


@dataclass(frozen=True)
class Range:
    """`key` is a number in [low, high] (open ends with `low_open` / `high_open`); ints stay ints."""

    key: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    """None is allowed too (the field's 'unset', e.g. 'None = train.seq_len')."""
    note: str = ""
    """What the edge values mean, appended to the message (e.g. '; 0 = no checkpoints')."""

    def valid_text(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
        text = "a number " + " and ".join(parts) if parts else "a finite number"
        return text + (" (or null)" if self.optional else "")

    def problem(self, value: Any) -> str | None:
        if value is None and self.optional:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        return None if ok else f"{self.key}={value!r} is out of range; use {self.valid_text()}{self.note}"


def _number(x: float) -> str:
    """100000 as '100,000' (not '1e+05'), 0.5 as '0.5'."""
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


@dataclass(frozen=True)
class Matches:
    """`key` is a string matching `pattern` (whole); `valid` says in words what matches."""

    key: str
    pattern: str
    valid: str

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and re.fullmatch(self.pattern, value):
            return None
        return f"{self.key}={value!r} is not valid; use {self.valid}"


@dataclass(frozen=True)
class Relation:
    """A rule over several keys: `holds(*values)` must be true; `fix` says what to change,
    naming the settings relative to their section (a section may be mounted under a prefix)."""

    keys: tuple[str, ...]
    holds: Callable[..., bool]
    fix: str
    skip_none: bool = True
    """A None among the values (an unset optional setting) means the rule does not apply."""

    @property
    def key(self) -> str:
        return self.keys[0]

    def problem_of(self, values: Sequence[Any]) -> str | None:
        if (self.skip_none and any(v is None for v in values)) or self.holds(*values):
            return None
        given = ", ".join(f"{k}={v!r}" for k, v in zip(self.keys, values))
        return f"{given} do not fit together: {self.fix}"


Rule = OneOf | Range | Matches | Relation


def under(prefix: str, rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """`rules` of a config section, mounted at `prefix` (e.g. the demo's `proxy_train`)."""
    out: list[Rule] = []
    for rule in rules:
        if isinstance(rule, Relation):
            out.append(Relation(tuple(f"{prefix}.{k}" for k in rule.keys), rule.holds, rule.fix, rule.skip_none))
        else:
            out.append(type(rule)(**{**rule.__dict__, "key": f"{prefix}.{rule.key}"}))
    return tuple(out)


def _value(cfg: Any, key: str) -> Any:
    """The value at dotted `key` of a DictConfig or a dataclass; _MISSING when it is absent or
    cannot be resolved here (an interpolation only the running app can resolve)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    node = cfg
    for part in key.split("."):
        try:
            if isinstance(node, DictConfig):
                if part not in node:
                    return _MISSING
                node = node[part]
            else:
                node = getattr(node, part)
        except AttributeError:
            return _MISSING
        except Exception:  # an interpolation that needs the running app (e.g. ${hydra:...})
            return _MISSING
    if isinstance(node, (DictConfig, ListConfig)):
        node = OmegaConf.to_container(node, resolve=True)
    return node


def problems(cfg: Any, rules: Iterable[Rule]) -> list[str]:
    """Every broken rule's line: single-key rules in table order, then the relations whose keys
    passed their own rules."""
    found = []
    broken: set[str] = set()  # keys already refused on their own: their relations would only echo it
    for rule in sorted(rules, key=lambda r: isinstance(r, Relation)):
        if isinstance(rule, Relation):
            values = [_value(cfg, k) for k in rule.keys]
            if any(v is _MISSING for v in values) or broken.intersection(rule.keys):
                continue
            line = rule.problem_of(values)
        else:
            value = _value(cfg, rule.key)
            if value is _MISSING:
                continue
            line = rule.problem(value)
            if line:
                broken.add(rule.key)
        if line:
            found.append(line)
    return found


def check(cfg: Any, rules: Iterable[Rule]) -> None:
    """Raise `SettingsError` with the first broken rule's line (and how many more there are)."""
    found = problems(cfg, rules)
    if found:
        more = f" (and {len(found) - 1} more bad setting(s))" if len(found) > 1 else ""
        raise SettingsError(found[0] + more)


def check_value(key: str, value: Any, rules: Iterable[Rule]) -> None:
    """Check one value of `key` against the single-key rules that name it (a swept value)."""
    for rule in rules:
        if not isinstance(rule, Relation) and rule.key == key:
            line = rule.problem(value)
            if line:
                raise SettingsError(line)


def load_rules(path: str) -> tuple[Rule, ...]:
    """The table at `module.NAME` (how a primary config names its rules)."""
    module, _, name = path.rpartition(".")
    return tuple(getattr(importlib.import_module(module), name))
