"""One rule for the target of a fit or a round, shared by `regmix-fit` and `regmix-propose`.

The target the user names wins (with `target_goal`, default minimize). Without one, the target the learned-from rounds recorded in
their `<sweep>.sampler.json` is used, when they agree; rounds that recorded different targets
are refused (which one to optimise is the user's choice, not the first round's); a goal given
alone applies to the recorded target. Rounds with no
record here (W&B or CSV rounds, or a sweep sampled without a target) record nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.errors import AnalysisError
from analysis.target import Target, parse_target
from regmix.sweep.files import settings_path
from regmix.sweep.record import SweepRecord


def round_records(sweeps: Sequence[str], sweeps_dir: str | Path) -> dict[str, SweepRecord]:
    """The settings records of the rounds that have one in `sweeps_dir`."""
    out = {}
    for name in sweeps:
        path = settings_path(Path(sweeps_dir), name)
        if not path.is_file():
            continue
        try:
            record = SweepRecord.read(path)
        except (OSError, UnicodeDecodeError):
            record = None
        if record is None:
            raise AnalysisError(f"{path} is not a readable sweep record; rewrite it (regmix-sample sweep={name} overwrite=true)")
        out[name] = record
    return out


def resolve_target(given: Any, *, goal: str | None = None, records: dict[str, SweepRecord],
                   available: Sequence[str], sweeps_dir: str | Path = "sweeps") -> Target:
    """The target to optimise: `given` when set, else the one the rounds' `records` agree on."""
    if not _empty(given):
        return parse_target(given, available, goal)
    recorded = {}
    for name, record in records.items():
        if _empty(record.target):
            continue
        try:
            recorded[name] = parse_target(record.target, available, goal or record.target_goal)
        except AnalysisError as exc:
            raise AnalysisError(f"{settings_path(Path(sweeps_dir), name)} records target {record.target!r}, which these runs "
                                f"cannot give ({exc}); name the target: target=<key>") from None
    distinct = []
    for target in recorded.values():
        if not any(target.same_as(seen) for seen in distinct):
            distinct.append(target)
    if len(distinct) > 1:
        listed = "; ".join(f"{name}: {target.label}" + (" (maximize)" if target.maximize else "")
                           for name, target in recorded.items())
        raise AnalysisError(f"the rounds record different targets ({listed}); name the one to optimise: "
                            f"target=<key> or 'target={{key: weight, ...}}'")
    return distinct[0] if distinct else parse_target(None, available, goal)


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple, dict)) and not value)
