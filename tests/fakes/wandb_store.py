"""What the loopback W&B fake stores: runs, sweeps and agents, in W&B's own shapes.

Runs keep their config in the server's storage form (`{key: {"value": ..., "desc": ...}}`,
what the public API returns) and answer filter/order keys (`state`, `config.a.b`,
`summary_metrics.x`) the way W&B's run filters read them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from .run_filters import MISSING

EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
"""Creation time of the first stored object; later ones are one second apart (deterministic)."""


def to_storage_form(config: Mapping[str, Any]) -> dict[str, Any]:
    """A plain config in W&B's server-side storage form: each top-level key -> {"value", "desc"}."""
    return {key: {"value": value, "desc": None} for key, value in config.items()}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class FakeRun:
    """One run as the fake backend stores it."""

    entity: str
    project: str
    name: str
    """The run id (W&B calls it `name` in GraphQL)."""
    display_name: str
    state: str
    config: dict[str, Any]
    """W&B storage form: {key: {"value": ..., "desc": ...}} (what the server returns)."""
    summary: dict[str, Any]
    sweep: Optional[str]
    group: Optional[str]
    tags: list[str]
    job_type: Optional[str]
    seq: int
    """Creation order; `created_at` is derived from it so that ordering is deterministic."""
    history: list[dict[str, Any]] = field(default_factory=list)
    exitcode: Optional[int] = None
    preempting: bool = False
    agent_id: Optional[str] = None
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def storage_id(self) -> str:
        return b64(f"Run:v1:{self.name}:{self.project}:{self.entity}")

    @property
    def created_at(self) -> str:
        return iso(EPOCH + timedelta(seconds=self.seq))

    @property
    def plain_config(self) -> dict[str, Any]:
        """The config as `run.config` shows it (storage wrappers removed)."""
        return {
            k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in self.config.items()
        }

    def lookup(self, key: str) -> Any:
        """The run's value for a filter/order key (`state`, `config.a.b`, `summary_metrics.x`...)."""
        simple = {
            "name": self.name,
            "id": self.name,
            "displayName": self.display_name,
            "display_name": self.display_name,
            "state": self.state,
            "sweep": self.sweep,
            "sweepName": self.sweep,
            "group": self.group,
            "tags": self.tags,
            "jobType": self.job_type,
            "job_type": self.job_type,
            "createdAt": self.created_at,
            "created_at": self.created_at,
            "heartbeatAt": self.created_at,
            "heartbeat_at": self.created_at,
            "username": self.entity,
            "entity": self.entity,
        }
        if key in simple:
            return simple[key]
        if key.startswith("config."):
            return _dig_config(self.config, key[len("config.") :])
        for prefix in ("summary_metrics.", "summaryMetrics."):
            if key.startswith(prefix):
                return _dig(self.summary, key[len(prefix) :])
        return MISSING


def _dig(tree: Any, dotted: str) -> Any:
    """Value at a dotted path; a literal key containing dots wins over descending."""
    if isinstance(tree, Mapping) and dotted in tree:
        return tree[dotted]
    head, _, rest = dotted.partition(".")
    while rest:
        if isinstance(tree, Mapping) and head in tree:
            return _dig(tree[head], rest)
        nxt, _, rest = rest.partition(".")
        head = f"{head}.{nxt}"
    if isinstance(tree, Mapping) and head in tree:
        return tree[head]
    return MISSING


def _dig_config(storage: Mapping[str, Any], dotted: str) -> Any:
    """`config.<key>[.value][.<sub>...]` against the storage form, as W&B's filters read it."""
    for top in sorted(storage, key=len, reverse=True):
        if dotted == top or dotted.startswith(top + "."):
            value = storage[top]
            value = value["value"] if isinstance(value, dict) and "value" in value else value
            rest = dotted[len(top) + 1 :]
            if rest.startswith("value"):
                rest = rest[len("value") + 1 :]
            return value if not rest else _dig(value, rest)
    return MISSING


@dataclass
class FakeSweep:
    entity: str
    project: str
    name: str
    config: dict[str, Any]
    seq: int
    state: str = "RUNNING"
    queue: list[str] = field(default_factory=list)
    """Preempted runs waiting to be resumed by the next free agent."""

    @property
    def storage_id(self) -> str:
        return b64(f"Sweep:{self.seq}")


@dataclass
class FakeAgent:
    id: str
    sweep: FakeSweep
    host: str
    heartbeats: int = 0
