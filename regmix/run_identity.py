"""A run's identity: every setting that changes what the run computes, defined once.

Three checks use it: a checkpoint is resumed only by a run of the same identity, a finished
run is returned only to a rerun of the same identity (another identity is refused, naming the
settings that differ), and the fit's setup check compares runs by it (`setup_line`).

The identity is every field of the train app's config (`regmix.config.TrainAppConfig`, walked
from the schema, so a new field counts until it is declared neutral below), except:
- `NEUTRAL`: settings that change how or where a run executes, or what it leaves behind, but
  not the numbers it computes;
- `data` and `mixture`: identified by what they resolved to, the corpus's content hash and the
  weights by domain name (the same corpus under another folder or name is the same data; the
  same weights from a table row or the command line are the same mixture).

`train.precision=auto` is recorded as what it resolved to (fp32 or bf16, see `regmix.train`),
so the identity sees the arithmetic the run really used. Torch-free: the analysis imports it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from regmix.config import TrainAppConfig
from regmix.run_record import RunRecord

#: Dotted config paths left out of the identity, each with why it cannot change a run's losses.
NEUTRAL: dict[str, str] = {
    "train.device": "where it runs; the precision it implies is recorded resolved (train.precision)",
    "train.threads": "CPU threads: the same arithmetic, faster or slower",
    "train.compile": "torch.compile: the same model, fused kernels",
    "train.micro_batch_size": "gradient accumulation: the same optimizer step up to float rounding",
    "train.logits_budget": "chunked cross-entropy: the same loss, less memory",
    "train.prefetch": "batches cut ahead in a thread: the same batches (tests/test_prefetch.py)",
    "train.log_every": "logging cadence",
    "train.checkpoint_every": "checkpoint cadence: a resumed run ends bit for bit like an uninterrupted one",
    "train.keep_checkpoint": "what the run folder keeps after the end",
    "eval.batch_size": "evaluation batching: the same mean loss over the same slice",
    "tracker": "W&B settings (mode, project, entity, group, tags)",
    "sweep": "a label; the mixture it selects is identified by its weights",
    "out_dir": "a path",
    "run_name": "a folder name",
    "dry_run": "trains nothing",
}
#: Sections identified by what they resolved to rather than by their settings.
RESOLVED: dict[str, str] = {
    "data": "the corpus's content hash (RunRecord.corpus['content_hash'])",
    "mixture": "the weights by domain name (RunRecord.mixture)",
}
#: What differs between the runs of one fit by design: left out of the fit's setup line
#: (`setup_line`). Different seeds of one mixture are replicas, merged into a noise estimate.
PER_RUN = ("seed",)
#: The value of a setting a record does not hold (written by an older regmix): it never equals
#: a real value, so such runs compare as different.
NOT_RECORDED = "<not recorded>"
#: Weights equal to this many decimals are the same mixture.
WEIGHT_DECIMALS = 9


def _schema_paths(cls: type = TrainAppConfig, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf field of the schema, in declaration order."""
    paths = []
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            paths.extend(_schema_paths(type(default), f"{path}."))
        else:
            paths.append(path)
    return paths


def _excluded(path: str) -> bool:
    return any(path == key or path.startswith(f"{key}.") for key in (*NEUTRAL, *RESOLVED))


#: The dotted paths that make up `settings()`.
IDENTITY_PATHS: tuple[str, ...] = tuple(p for p in _schema_paths() if not _excluded(p))


def _lookup(config: Mapping[str, Any], path: str) -> Any:
    node: Any = config
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return NOT_RECORDED
        node = node[key]
    return node


def _plain(value: Any) -> Any:
    """One spelling per value: 0.1 == 1e-1, 100 == 100.0 (YAML, the command line and JSON differ)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    value = float(value)
    return int(value) if value.is_integer() else value


def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The identity's settings in a resolved train config (`RunRecord.config`), by dotted path."""
    values = {path: _plain(_lookup(config, path)) for path in IDENTITY_PATHS}
    if values.get("eval.seq_len") is None:  # None means train.seq_len: the same slice either way
        values["eval.seq_len"] = values.get("train.seq_len")
    return values


def run_identity(record: RunRecord) -> dict[str, Any]:
    """What makes two runs the same run: `settings`, the corpus's content hash and the mixture."""
    corpus = record.corpus if isinstance(record.corpus, Mapping) else {}
    return {
        "settings": settings(record.config),
        "corpus": corpus.get("content_hash", NOT_RECORDED),
        "mixture": {str(d): round(float(w), WEIGHT_DECIMALS) for d, w in sorted(record.mixture.items()) if w > 0},
    }


def identity_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """'<setting> <old> -> <new>' for each part where two identities differ (empty: the same run)."""
    if not isinstance(old, Mapping) or not isinstance(old.get("settings"), Mapping):
        return ["its identity was written by another version of regmix"]
    out = []
    old_settings, new_settings = old.get("settings") or {}, new.get("settings") or {}
    for path in sorted(set(old_settings) | set(new_settings), key=_order):
        a, b = old_settings.get(path, NOT_RECORDED), new_settings.get(path, NOT_RECORDED)
        if a != b:
            out.append(f"{path} {a} -> {b}")
    if old.get("corpus") != new.get("corpus"):
        out.append(f"corpus {old.get('corpus')} -> {new.get('corpus')}")
    if old.get("mixture") != new.get("mixture"):
        out.append("mixture weights differ")
    return out


def _order(path: str) -> int:
    return IDENTITY_PATHS.index(path) if path in IDENTITY_PATHS else len(IDENTITY_PATHS)


_SEP = "; "


def setup_line(config: Any) -> str | None:
    """One comparable line of what shaped a run's losses beyond its mixture (the fit's setup
    check): `settings` less `PER_RUN`, as 'path=value; ...'; None without a config (CSV
    tables, the paper's data)."""
    if not isinstance(config, Mapping) or not config:
        return None
    values = settings(config)
    return _SEP.join(f"{path}={values[path]}" for path in IDENTITY_PATHS if path not in PER_RUN)


def setup_differences(counts: Mapping[str, int]) -> str:
    """'<setting>: <value> (<n> runs), ...' for the settings that differ among `setup_line`s
    (a mapping line -> number of runs)."""
    parsed = {line: dict(item.partition("=")[::2] for item in str(line).split(_SEP)) for line in counts}
    paths = sorted({p for values in parsed.values() for p in values}, key=_order)
    parts = []
    for path in paths:
        by_value: dict[str, int] = {}
        for line, values in parsed.items():
            value = values.get(path, NOT_RECORDED)
            by_value[value] = by_value.get(value, 0) + int(counts[line])
        if len(by_value) > 1:
            parts.append(f"{path}: " + ", ".join(f"{v} ({n} runs)" for v, n in by_value.items()))
    return "; ".join(parts)
