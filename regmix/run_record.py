"""The run record: the one file a proxy run leaves that the project owns.

Offline W&B runs keep no readable config or summary (only the binary `run-<id>.wandb`
log), so each training run writes `result.json` in its own folder, atomically, when it
ends. The analysis reads these records; a folder without a record whose status is
`finished` is never used and a rerun trains it again. Torch-free: analysis imports this.

`RunRecord` is the record as a typed object: training builds and writes one, and every
source of the analysis (local records, W&B runs) reads runs as `RunRecord`s. Layout on disk
(JSON object, the fields of `RunRecord`)::

    schema        1
    status        "finished" | "failed" | "preempted"
    run_name      folder name, e.g. "mix0007"
    sweep         sweep name (the folder runs/<sweep>/ by default)
    mixture_index row of the sweep's mixtures table, or null
    mixture       {domain: weight}   (the weights the run trained on)
    val_loss      {domain: mean cross-entropy in nats/token}   (finished runs)
    tokens        training tokens seen
    model         model config name, e.g. "tiny"
    n_params      {"total": int, "non_embedding": int}
    corpus        {"name", "path", "content_hash", "tokenizer"}
    seed          data/init seed
    wandb         {"id", "project", "entity", "mode", "dir", "sweep_id", "url"} or null
    config        the full resolved config
    error         one-line message (failed runs)
    started_at / ended_at   ISO-8601 UTC; wall_s seconds
    steps, train_s          optimizer steps; seconds of the step loop (benchmarks)
    data_wait_s             seconds of the step loop spent waiting for the next batch
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from regmix.atomic_file import write_text_atomic
from regmix.json_record import record_to_dict, split_known
from regmix.errors import RegmixError

RECORD_NAME = "result.json"
SCHEMA_VERSION = 1
FINISHED, FAILED, PREEMPTED = "finished", "failed", "preempted"
STATUSES = (FINISHED, FAILED, PREEMPTED)
#: What `train_run` returns for `dry_run=true`: never written.
DRY_RUN = "dry_run"


@dataclass
class RunRecord:
    """One run's record. Values are kept as read (validation of a runs table is the analysis's
    job, which names and drops a bad run instead of failing on it)."""

    status: Optional[str] = None
    """finished | failed | preempted (dry_run: returned, never written)."""
    run_name: Optional[str] = None
    sweep: Optional[str] = None
    mixture_index: Optional[int] = None
    mixture_name: Optional[str] = None
    mixture: dict[str, Any] = field(default_factory=dict)
    """domain -> weight the run trained on."""
    val_loss: dict[str, Any] = field(default_factory=dict)
    """domain -> mean cross-entropy on its validation slice (nats/token); finished runs."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Other numeric results by summary key (e.g. a downstream accuracy a W&B run logged), so a
    fit can target them (`target=<key> target_goal=maximize`); empty for regmix-train's runs."""
    tokens: Optional[int] = None
    """Training tokens seen."""
    model: Optional[str] = None
    n_params: Optional[dict[str, int]] = None
    corpus: Any = None
    """`CorpusMeta.identity`: name, path, content_hash, tokenizer (train_tokens per domain)."""
    seed: Optional[int] = None
    wandb: Optional[dict[str, Any]] = None
    """id, project, entity, mode, dir, sweep_id, url."""
    config: dict[str, Any] = field(default_factory=dict)
    """The full resolved config."""
    error: Optional[str] = None
    started_at: Optional[str] = None
    ended_at: Optional[str] = None
    wall_s: Optional[float] = None
    steps: Optional[int] = None
    train_s: Optional[float] = None
    data_wait_s: Optional[float] = None
    """Seconds of train_s the step loop waited for its next batch (regmix.prefetch)."""
    resumed_from_step: Optional[int] = None
    """The checkpoint step a resumed run started from (None: trained from step 0)."""
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys of a newer record this version does not know (kept when rewritten)."""

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunRecord":
        known, extra = split_known(cls, data)
        for key in ("mixture", "val_loss", "config"):  # mappings by contract; anything else reads as empty
            if not isinstance(known.get(key, {}), Mapping):
                known[key] = {}
        return cls(**known, extra=extra)


def write_record(run_dir: str | os.PathLike, record: RunRecord) -> Path:
    """Write `record` to `run_dir/result.json` atomically (temp file + fsync + rename).

    A reader never sees a half-written file, and a finished record is never replaced by a
    later failed attempt (the caller skips finished runs before training).
    """
    if record.status not in STATUSES:
        raise ValueError(f"run record status must be one of {STATUSES}, got {record.status!r}")
    payload = json.dumps(record.to_dict(), indent=2, sort_keys=False, default=str)
    return write_text_atomic(Path(run_dir) / RECORD_NAME, payload + "\n", fsync=True)


class RecordError(RegmixError):
    """A run record that exists but cannot be read; the message names the file and the fix."""


def _record_path(run_dir_or_file: str | os.PathLike) -> Path:
    path = Path(run_dir_or_file)
    return path / RECORD_NAME if path.is_dir() else path


def load_record(run_dir_or_file: str | os.PathLike) -> RunRecord | None:
    """The record in a run folder (or at a path); None when there is none; `RecordError` when
    there is a file that is not a record (truncated, edited, not UTF-8): such a file is never
    replaced unseen, since it may be the only trace of a finished run."""
    path = _record_path(run_dir_or_file)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else f"not JSON: {exc}"
        raise RecordError(
            f"{path} is not a readable run record ({reason}); move it away to train this run again, or restore it"
        ) from None
    if not isinstance(data, dict):
        raise RecordError(f"{path} is not a run record (a JSON object); move it away to train this run again")
    return RunRecord.from_dict(data)


def read_record(run_dir_or_file: str | os.PathLike) -> RunRecord | None:
    """The record in a run folder (or at a path), or None when there is none or it is unreadable."""
    try:
        return load_record(run_dir_or_file)
    except RecordError:
        return None


def is_finished(run_dir: str | os.PathLike) -> bool:
    record = read_record(run_dir)
    return record is not None and record.finished


def iter_records(root: str | os.PathLike) -> Iterator[tuple[Path, RunRecord | None]]:
    """Every `result.json` under `root` (recursively), sorted by path, with its parsed record."""
    for path in sorted(Path(root).rglob(RECORD_NAME)):
        yield path, read_record(path)
