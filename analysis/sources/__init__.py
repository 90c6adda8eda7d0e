"""Run sources behind one interface: `load_runs(SourceConfig) -> RawRuns`.

- local: the training app's run records (result.json) under a folder, or under
  `<runs_dir>/<sweep>` for each of several sweeps (the rounds of an active search);
- csv:   a mixtures table and a losses table joined on an index column;
- wandb: the W&B public API (`wandb_api.load_wandb_runs`, run-record-shaped dicts).
"""

from __future__ import annotations

from collections.abc import Sequence

from analysis.errors import AnalysisError
from analysis.runs_table import RawRuns

KINDS = ("local", "csv", "wandb")


def load_runs(cfg, *, sweeps: Sequence[str] = (), runs_dir: str = "runs") -> RawRuns:
    """Runs from the source `cfg` (an `analysis.config.SourceConfig`) as one raw table.

    A local source without a `root` reads `<runs_dir>/<sweep>` of each of `sweeps`.
    """
    label = cfg.label or cfg.kind
    if cfg.kind == "local":
        from analysis.rounds import concat_raw, local_roots
        from analysis.sources.local import load_local_runs

        if cfg.root is not None:
            return load_local_runs(cfg.root, label=label)
        if not sweeps:
            raise AnalysisError("a local source needs a folder: set sweep=<name> (runs/<name>/) or source.root=<folder>")
        roots = local_roots(sweeps, runs_dir)
        return concat_raw([load_local_runs(str(r), label=label) for r in roots], sweeps, source=label)
    if cfg.kind == "csv":
        from analysis.sources.csv_tables import load_csv_runs

        mixtures, losses = cfg.mixtures, cfg.losses
        if cfg.dataset:
            mixtures, losses = _dataset_files(cfg.dataset, mixtures, losses)
        return load_csv_runs(
            mixtures=mixtures,
            losses=losses,
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
            run_id = str((record.wandb or {}).get("id") or record.run_name or position)
            items.append((run_id, record))
        w = cfg.wandb
        groups = [w.group] if isinstance(w.group, str) else list(w.group or [])
        where = f"W&B {w.entity or '<default entity>'}/{w.project}" + (f" sweep {w.sweep}" if w.sweep else "") + (
            f" group {'|'.join(groups)}" if groups else ""
        )
        return records_to_raw(items, source=label, location=where)
    raise AnalysisError(f"source.kind={cfg.kind!r} is unknown; use one of {list(KINDS)} (e.g. source=local)")


def _dataset_files(dataset: str, *names: str | None) -> list[str]:
    """Paths of a released dataset's files (fetched and verified on first use)."""
    from analysis import paper_data

    if dataset != paper_data.DATASET:
        raise AnalysisError(f"source.dataset={dataset!r} is unknown; use {paper_data.DATASET!r} or give file paths")
    missing = [n for n in names if not n]
    if missing:
        raise AnalysisError(f"source.dataset={dataset} needs source.mixtures and source.losses (file names)")
    folder = paper_data.locate(names, log=lambda line: print(line, flush=True))
    return [str(folder / name) for name in names]
