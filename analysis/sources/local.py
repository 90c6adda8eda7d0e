"""Run source: the training app's run records (`result.json`) under a folder."""

from __future__ import annotations

from pathlib import Path

from analysis.runs_table import RawRuns
from analysis.sources.records import records_to_raw
from regmix.run_record import RECORD_NAME, iter_records


def load_local_runs(root: str, *, label: str = "local") -> RawRuns:
    """Every run record under `root` (recursively). A run's id is its folder relative to root.

    Unreadable records are reported as dropped; folders without a record are not runs yet.
    """
    base = Path(root)
    items, dropped = [], []
    if base.is_dir():
        for path, record in iter_records(base):
            run_id = path.parent.relative_to(base).as_posix()
            if run_id == ".":
                run_id = base.name
            if record is None:
                dropped.append((run_id, f"unreadable {RECORD_NAME}", ""))
            else:
                items.append((run_id, record))
    where = f"{base}/**/{RECORD_NAME}" + ("" if base.is_dir() else " (folder does not exist)")
    return records_to_raw(items, source=label, location=where, dropped=dropped)
