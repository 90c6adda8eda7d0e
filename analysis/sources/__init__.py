"""Run sources behind one interface: `load_runs(SourceConfig) -> RawRuns`.

- local: the training app's run records (result.json) under a folder;
- csv:   a mixtures table and a losses table joined on an index column;
- wandb: the W&B public API (`wandb_api.load_wandb_runs`, run-record-shaped dicts).
"""

from __future__ import annotations

from analysis.errors import AnalysisError
from analysis.runs_table import RawRuns

KINDS = ("local", "csv", "wandb")


def load_runs(cfg) -> RawRuns:
    """Runs from the source `cfg` (an `analysis.config.SourceConfig`) as one raw table."""
    label = cfg.label or cfg.kind
    if cfg.kind == "local":
        from analysis.sources.local import load_local_runs

        return load_local_runs(cfg.root, label=label)
    if cfg.kind == "csv":
        from analysis.sources.csv_tables import load_csv_runs

        return load_csv_runs(
            mixtures=cfg.mixtures,
            losses=cfg.losses,
            index=cfg.index,
            weight_prefix=cfg.weight_prefix,
            weight_suffix=cfg.weight_suffix,
            loss_prefix=cfg.loss_prefix,
            loss_suffix=cfg.loss_suffix,
            rename=dict(cfg.rename or {}),
            model=cfg.model,
            tokens=cfg.tokens,
            corpus=cfg.corpus,
            label=label,
        )
    if cfg.kind == "wandb":
        from analysis.sources.records import records_to_raw
        from analysis.sources.wandb_api import load_wandb_runs

        records = load_wandb_runs(cfg.wandb)
        items = []
        for position, record in enumerate(records):
            run_id = str((record.get("wandb") or {}).get("id") or record.get("run_name") or position)
            items.append((run_id, record))
        w = cfg.wandb
        where = f"W&B {w.entity or '<default entity>'}/{w.project}" + (f" sweep {w.sweep}" if w.sweep else "") + (
            f" group {w.group}" if w.group else ""
        )
        return records_to_raw(items, source=label, location=where)
    raise AnalysisError(f"source.kind={cfg.kind!r} is unknown; use one of {list(KINDS)} (e.g. source=local)")
