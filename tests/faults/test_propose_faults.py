"""regmix-propose refuses what it cannot use with one line, and writes no sweep."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.support.synthetic_runs import TARGET, draw_mixtures, linear_loss, synthetic_records
from regmix.run_record import write_record

from .helpers import cli

LOSS = linear_loss(4, seed=0)


def _runs(root: Path, status: str = "finished") -> None:
    for rec in synthetic_records(LOSS, 8, seed=0, sweep="r0"):
        rec.status = status
        write_record(root / "runs" / "r0" / rec.run_name, rec)


def _pool(path: Path, n: int, domains: list[str]) -> Path:
    frame = pd.DataFrame(draw_mixtures(n, LOSS.domains, seed=1), columns=domains)
    frame.insert(0, "index", range(n))
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "what, status, args, match",
    [
        ("regmix-propose on a sweep with no finished runs", "failed", ["sweep=r0"], "finished"),
        ("regmix-propose on an unknown sweep", "finished", ["sweep=nope"], "unknown"),
        ("regmix-propose k=9 from a pool of 8", "finished", ["sweep=r0", "k=9", "candidates=pool8.csv"], "larger than"),
        ("regmix-propose from a pool of other domains", "finished", ["sweep=r0", "candidates=other.csv"], "other domains"),
    ],
)
def test_propose_bad_input(tmp_path, bad_input, what, status, args, match):
    _runs(tmp_path, status)
    _pool(tmp_path / "pool8.csv", 8, LOSS.domains)
    _pool(tmp_path / "other.csv", 20, [*LOSS.domains[:-1], "elsewhere"])
    done = cli("regmix-propose", *args, "out=r1", f"target={TARGET}", "acquisition.n_bags=2", cwd=tmp_path)
    assert match in bad_input(what, done)
    assert not (tmp_path / "sweeps").exists(), "a refused proposal writes nothing"
