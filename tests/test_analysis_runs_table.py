"""Run sources (local records, CSV) and validation of the runs table: what is kept, dropped, merged, refused."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.runs_table import validate_runs
from analysis.sources.csv_tables import load_csv_runs
from analysis.sources.local import load_local_runs
from analysis.target import parse_target
from regmix.run_record import RunRecord, write_record

PAPER = Path(os.environ.get("REGMIX_PAPER_DATA", Path(__file__).resolve().parents[1] / "../shared/data/regmix-paper"))


def record(i: int, *, weights=None, losses=None, status="finished", model="tiny", corpus="c1", tokens=1000) -> dict:
    weights = weights if weights is not None else {"a": 0.5, "b": 0.3, "c": 0.2}
    losses = losses if losses is not None else {"a": 3.0 + 0.01 * i, "b": 2.0, "t": 4.0 - 0.01 * i}
    return {
        "status": status,
        "run_name": f"mix{i:04d}",
        "sweep": "s",
        "mixture_index": i,
        "mixture": weights,
        "val_loss": losses if status == "finished" else {},
        "tokens": tokens,
        "model": model,
        "corpus": {"name": "syn", "content_hash": corpus, "train_tokens": {"a": 500, "b": 300, "c": 200}},
    }


def distinct(i: int) -> dict:
    """A different valid mixture per i."""
    x = 0.1 + 0.01 * i
    return {"a": x, "b": 0.6 - x, "c": 0.4}


def write_runs(root: Path, records: list[dict]) -> Path:
    for rec in records:
        write_record(root / rec["run_name"], RunRecord.from_dict(rec))
    return root


def test_local_source_reads_records_with_their_prior_and_validates(tmp_path):
    write_runs(tmp_path, [record(i, weights=distinct(i)) for i in range(6)])
    raw = load_local_runs(str(tmp_path), label="local")
    assert list(raw.weights.index) == [f"mix{i:04d}" for i in range(6)]
    assert raw.prior == {"a": 500.0, "b": 300.0, "c": 200.0}
    table, report = validate_runs(raw, required_losses=["t"])
    assert len(table) == 6 and table.domains == ["a", "b", "c"]
    np.testing.assert_allclose(table.weights.sum(axis=1), 1.0)
    assert report.dropped == [] and "6 runs read, 6 used" in report.lines()[0]


def test_unfinished_unreadable_and_bad_rows_are_dropped_with_reasons(tmp_path):
    records = [record(i, weights=distinct(i)) for i in range(6)]
    records.append(record(6, status="failed"))
    records.append(record(7, weights={"a": 0.5, "b": 0.2, "c": 0.1}))  # sums to 0.8
    records.append(record(8, weights=distinct(8), losses={"a": 3.0, "b": 2.0, "t": float("nan")}))
    records.append(record(9, weights={"a": 0.5, "b": 0.5}))  # does not name c
    write_runs(tmp_path, records)
    (tmp_path / "mix0010").mkdir()
    (tmp_path / "mix0010" / "result.json").write_text("{not json")
    table, report = validate_runs(load_local_runs(str(tmp_path)), required_losses=["t"])
    assert len(table) == 6
    reasons = {run: reason for run, reason, _ in report.dropped}
    assert reasons["mix0006"] == "not finished"
    assert reasons["mix0007"].startswith("weights do not sum to 1")
    assert reasons["mix0008"].startswith("missing or non-finite target loss")
    assert reasons["mix0009"] == "mixture names other domains than the other runs"
    assert reasons["mix0010"] == "unreadable result.json"
    text = "\n".join(report.lines())
    assert "mix0007 (sum 0.8)" in text and "mix0008 (t=nan)" in text and "lacks ['c']" in text


def test_duplicate_mixtures_are_merged_and_their_spread_kept(tmp_path):
    same = {"a": 0.5, "b": 0.3, "c": 0.2}
    records = [record(i, weights=distinct(i)) for i in range(4)]
    records += [record(10 + k, weights=same, losses={"a": 3.0, "b": 2.0, "t": t}) for k, t in enumerate((4.0, 4.2, 4.4))]
    write_runs(tmp_path, records)
    table, report = validate_runs(load_local_runs(str(tmp_path)), required_losses=["t"])
    assert len(table) == 5
    assert table.losses.loc["mix0010", "t"] == pytest.approx(4.2)
    assert table.spread.loc["mix0010", "t"] == pytest.approx(0.2)
    assert table.runs.loc["mix0010", "n_merged"] == 3
    assert report.merged == [["mix0010", "mix0011", "mix0012"]]
    assert report.noise["t"] == pytest.approx(0.2)
    assert math.isnan(table.spread.loc["mix0000", "t"])


@pytest.mark.parametrize(
    ("field", "values", "message"),
    [("model", ("tiny", "1m"), "mix model sizes"), ("corpus", ("c1", "c2"), "mix corpora: "), ("tokens", (1000, 2000), "mix token budgets")],
)
def test_runs_of_different_models_corpora_or_budgets_are_refused_unless_allowed(tmp_path, field, values, message):
    records = [record(i, weights=distinct(i), **{field: values[i % 2]}) for i in range(6)]
    raw = load_local_runs(str(write_runs(tmp_path, records)))
    with pytest.raises(AnalysisError, match=message) as info:
        validate_runs(raw, required_losses=["t"])
    assert "allow_mixed=true" in str(info.value)
    table, _ = validate_runs(raw, required_losses=["t"], allow_mixed=True)
    assert len(table) == 6


def test_bad_input_gets_a_clear_message(tmp_path):
    with pytest.raises(AnalysisError, match=r"has no runs \(looked in .*nothing"):
        validate_runs(load_local_runs(str(tmp_path / "nothing")), required_losses=["t"])
    write_runs(tmp_path / "failed", [record(i, status="failed") for i in range(3)])
    with pytest.raises(AnalysisError, match=r"none of the 3 runs .* is finished \(failed 3\)"):
        validate_runs(load_local_runs(str(tmp_path / "failed")), required_losses=["t"])
    write_runs(tmp_path / "ok", [record(i, weights=distinct(i)) for i in range(5)])
    with pytest.raises(AnalysisError, match=r"no run of local logged a loss for 'zzz'; logged domains are \['a', 'b', 't'\]"):
        validate_runs(load_local_runs(str(tmp_path / "ok")), required_losses=["zzz"])
    nan_runs = [record(i, weights=distinct(i), losses={"t": float("nan")}) for i in range(5)]
    write_runs(tmp_path / "nan", nan_runs)
    raw = load_local_runs(str(tmp_path / "nan"))
    with pytest.raises(AnalysisError, match="no usable runs.*non-finite target loss.*mix0000"):
        validate_runs(raw, required_losses=["t"])


def test_targets_one_domain_a_list_or_weights():
    losses = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 5.0]})
    assert parse_target("a", ["a", "b"]).values(losses).tolist() == [1.0, 2.0]
    assert parse_target(["a", "b"], ["a", "b"]).values(losses).tolist() == [2.0, 3.5]
    weighted = parse_target({"a": 3, "b": 1}, ["a", "b"])
    assert weighted.weights == {"a": 0.75, "b": 0.25} and weighted.values(losses).tolist() == [1.5, 2.75]
    with pytest.raises(AnalysisError, match=r"no target given: set target=<domain> \(one of \['a', 'b'\]\)"):
        parse_target(None, ["a", "b"])
    with pytest.raises(AnalysisError, match=r"target names key\(s\) \['c'\] that no run logged"):
        parse_target({"a": 1, "c": 1}, ["a", "b"])
    with pytest.raises(AnalysisError, match="finite weights >= 0"):
        parse_target({"a": -1}, ["a", "b"])


def _write_csvs(tmp_path: Path, mixtures: pd.DataFrame, losses: pd.DataFrame) -> tuple[str, str]:
    m, l = tmp_path / "mix.csv", tmp_path / "loss.csv"
    mixtures.to_csv(m, index=False)
    losses.to_csv(l, index=False)
    return str(m), str(l)


def test_csv_source_joins_on_index_and_maps_column_names(tmp_path):
    mixtures = pd.DataFrame({"id": [1, 2, 3, 4, 5], "w_x": [0.2, 0.4, 0.6, 0.8, 1.0], "w_y": [0.8, 0.6, 0.4, 0.2, 0.0]})
    losses = pd.DataFrame({"id": [2, 1, 3, 4, 6], "val/x_loss": [1.0, 2.0, 3.0, 4.0, 5.0], "val/old_loss": [5, 4, 3, 2, 1], "note": list("abcde")})
    m, l = _write_csvs(tmp_path, mixtures, losses)
    raw = load_csv_runs(mixtures=m, losses=l, index="id", weight_prefix="w_", loss_prefix="val/", loss_suffix="_loss",
                        rename={"old": "y"}, model="1m")
    assert list(raw.weights.columns) == ["x", "y"] and list(raw.losses.columns) == ["x", "y"]
    assert raw.losses.loc["1", "x"] == 2.0  # joined by index, not by row position
    assert sorted(raw.dropped) == [("5", "no row in the losses table", ""), ("6", "no row in the mixtures table", "")]
    table, report = validate_runs(raw, required_losses=["x"])
    assert len(table) == 4 and report.total == 6 and set(table.runs["model"]) == {"1m"}


def test_csv_source_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(AnalysisError, match="source=csv needs source.mixtures"):
        load_csv_runs(mixtures=None, losses="x.csv")
    m, l = _write_csvs(tmp_path, pd.DataFrame({"index": [1], "a": [1.0]}), pd.DataFrame({"index": [1], "a": [2.0]}))
    with pytest.raises(AnalysisError, match=r"does not exist; fix source.losses"):
        load_csv_runs(mixtures=m, losses=str(tmp_path / "missing.csv"))
    with pytest.raises(AnalysisError, match=r"is not a readable CSV \(Error tokenizing data. C error: .*\); fix source.mixtures$"):
        load_csv_runs(mixtures=__file__, losses=l)
    with pytest.raises(AnalysisError, match=r"matches weight_prefix='train_'.*fix source.weight_prefix"):
        load_csv_runs(mixtures=m, losses=l, weight_prefix="train_")
    with pytest.raises(AnalysisError, match=r"has no index column 'run_id'.*set source.index"):
        load_csv_runs(mixtures=m, losses=l, index="run_id")


@pytest.mark.skipif(not PAPER.is_dir(), reason="the paper's data (../shared/data/regmix-paper) is absent")
def test_paper_tables_load_with_domains_renamed():
    raw = load_csv_runs(
        mixtures=str(PAPER / "train_mixture_1m.csv"),
        losses=str(PAPER / "train_pile_loss_1m.csv"),
        weight_prefix="train_the_pile_",
        loss_prefix="metric/the_pile_",
        loss_suffix="_val_loss",
    )
    table, report = validate_runs(raw, required_losses=["pile_cc"])
    assert len(table) == 512 and len(table.domains) == 17 and len(table.loss_domains) == 13
    assert "pile_cc" in table.domains and "enron_emails" not in table.loss_domains
    assert report.dropped == []
