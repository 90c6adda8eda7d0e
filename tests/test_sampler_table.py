"""The mixtures table on disk: written by regmix-sample, read by regmix-train via `mixture_at`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regmix.config import SamplerConfig
from regmix.mixture import Mixture
from regmix.sampler import sample_mixtures
from regmix.sweep.files import table_path
from regmix.sweep.table import MixturesTableError, mixture_at, read_mixtures_table, write_mixtures_table

PRIOR = {"web": 0.5, "code": 0.3, "math": 0.15, "chat": 0.05}


@pytest.fixture()
def table_file(tmp_path):
    table = sample_mixtures(PRIOR, 24, seed=1, settings=SamplerConfig())
    path = table_path(tmp_path / "sweeps", "demo")
    digest = write_mixtures_table(path, table)
    assert len(digest) == 64
    return path, table


def write_csv(path, text):
    path.write_text(text)
    return path


def test_round_trip_is_exact(table_file):
    path, table = table_file
    assert path.name == "demo.mixtures.csv"
    back = read_mixtures_table(path)
    assert list(back.columns) == list(table.columns)
    assert np.array_equal(back.to_numpy(), table.to_numpy())


def test_domains_reorder_and_fill_missing(table_file):
    path, table = table_file
    order = ["chat", "math", "extra", "code", "web"]
    back = read_mixtures_table(path, order)
    assert list(back.columns) == ["index", *order]
    assert (back["extra"] == 0).all()
    assert np.array_equal(back["web"].to_numpy(), table["web"].to_numpy())


def test_mixture_at_returns_the_row(table_file):
    path, table = table_file
    mixture = mixture_at(path, 7, list(PRIOR))
    assert isinstance(mixture, Mixture)
    assert mixture.to_dict() == {d: float(table.loc[7, d]) for d in PRIOR}


def test_missing_file_says_to_run_regmix_sample(tmp_path):
    with pytest.raises(MixturesTableError, match=r"run `regmix-sample sweep=pile`"):
        mixture_at(tmp_path / "pile.mixtures.csv", 0, list(PRIOR))


def test_index_out_of_range_names_the_valid_range(table_file):
    path, _ = table_file
    with pytest.raises(MixturesTableError, match=r"mixture.index=24 .*valid: 0\.\.23"):
        mixture_at(path, 24, list(PRIOR))


def test_columns_naming_unknown_domains(table_file):
    path, _ = table_file
    with pytest.raises(MixturesTableError, match=r"unknown domain\(s\) \['chat'\]"):
        read_mixtures_table(path, ["web", "code", "math"])


@pytest.mark.parametrize(
    "row, match",
    [
        ("3,0.5,0.2,0.0,0.0", "row index 3 .*sums to 0.7"),
        ("3,1.2,-0.2,0.0,0.0", "row index 3 "),
        ("3,,0.5,0.5,0.0", "row index 3 "),
        ("3,abc,0.5,0.5,0.0", "row index 3 "),
    ],
)
def test_rows_that_are_not_mixtures(tmp_path, row, match):
    path = write_csv(tmp_path / "t.mixtures.csv", f"index,web,code,math,chat\n0,1,0,0,0\n{row}\n")
    with pytest.raises(MixturesTableError, match=match):
        read_mixtures_table(path)


@pytest.mark.parametrize(
    "text, match",
    [
        ("web,code\n0.5,0.5\n", "no 'index' column"),
        ("index\n0\n", "no domain columns"),
        ("index,web,code\n0,1,0\n0,0,1\n", r"index value\(s\) \[0\] appear more than once"),
        ("index,web,code\n-1,1,0\n", "whole numbers >= 0"),
        ("", "not a readable CSV"),
    ],
)
def test_malformed_tables(tmp_path, text, match):
    path = write_csv(tmp_path / "t.mixtures.csv", text)
    with pytest.raises(MixturesTableError, match=match):
        read_mixtures_table(path)


def test_rounded_tables_within_tolerance_load(tmp_path):
    # The paper's released tables are on a 1e-3 grid with rows summing to 0.996-1.003.
    path = write_csv(tmp_path / "paper.mixtures.csv", "index,web,code\n0,0.502,0.501\n1,0.25,0.748\n")
    table = read_mixtures_table(path)
    assert table["index"].tolist() == [0, 1]
    assert mixture_at(path, 1)["code"] == pytest.approx(0.748)


def test_table_is_plain_csv(table_file):
    path, table = table_file
    raw = pd.read_csv(path)
    assert list(raw.columns) == ["index", *PRIOR]
    assert raw["index"].tolist() == list(range(24))
    assert path.read_text().splitlines()[0] == "index,web,code,math,chat"
