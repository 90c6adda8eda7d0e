"""Run source: the W&B public API (finished runs of a sweep, group or tag).

Placeholder seam: the W&B issue replaces the body of `load_wandb_runs`; the config
dataclass below is the interface the analysis composes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional


@dataclass
class WandbSourceConfig:
    """Where to pull proxy runs from on W&B."""

    entity: Optional[str] = None
    """W&B entity (user or team); None = the API key's default entity."""
    project: str = "regmix"
    sweep: Optional[str] = None
    """Sweep id (the 8-character id `wandb sweep` printed)."""
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    per_page: int = 1000
    """Runs per GraphQL page: the pull costs ceil(runs / per_page) requests."""
    timeout_s: int = 60
    retries: int = 5


def load_wandb_runs(cfg: WandbSourceConfig) -> list[dict[str, Any]]:
    """Finished runs as run-record-shaped dicts (see `regmix.run_record`)."""
    raise NotImplementedError("the W&B API source is not built yet (source=local and source=csv work)")
