"""RegMix's mixture generator: seeding, the reference constraints, dedup, errors, streaming."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from regmix.config import SamplerConfig
from regmix.mixture import Mixture
from regmix.sampler import (
    INDEX_COLUMN,
    SamplerError,
    _dedup,
    _plan,
    _round_to_grid,
    candidate_sampler,
    normalize_prior,
    sample_mixtures,
)
from regmix.sweep.table import mixtures_from_table

# The paper's 17 Pile domains. pile_cc, pubmed_central, arxiv, github and enron_emails are the
# shares facts.md quotes; the other twelve are plausible made-up shares that bring the sum to 1.
PILE_PRIOR = {
    "arxiv": 0.1133,
    "freelaw": 0.0796,
    "nih_exporter": 0.0039,
    "pubmed_central": 0.1854,
    "wikipedia_en": 0.0511,
    "dm_mathematics": 0.0160,
    "github": 0.1018,
    "philpapers": 0.0037,
    "stackexchange": 0.0665,
    "enron_emails": 0.0018,
    "gutenberg_pg_19": 0.0271,
    "pile_cc": 0.2369,
    "ubuntu_irc": 0.0118,
    "europarl": 0.0079,
    "hackernews": 0.0080,
    "pubmed_abstracts": 0.0388,
    "uspto_backgrounds": 0.0464,
}
REFERENCE = SamplerConfig()  # facts.md section 1: the reference generator's settings


@pytest.fixture(scope="module")
def paper_table() -> pd.DataFrame:
    return sample_mixtures(PILE_PRIOR, 512, seed=42, settings=REFERENCE)


def weights_of(table: pd.DataFrame) -> np.ndarray:
    return table.drop(columns=[INDEX_COLUMN]).to_numpy()


def test_prior_sums_to_one():
    assert math.isclose(sum(PILE_PRIOR.values()), 1.0, abs_tol=1e-12)


def test_same_seed_same_table_different_seed_different(paper_table):
    again = sample_mixtures(PILE_PRIOR, 512, seed=42, settings=REFERENCE)
    pd.testing.assert_frame_equal(paper_table, again)
    other = sample_mixtures(PILE_PRIOR, 512, seed=43, settings=REFERENCE)
    assert not np.array_equal(weights_of(paper_table), weights_of(other))


def test_table_layout(paper_table):
    assert list(paper_table.columns) == [INDEX_COLUMN, *PILE_PRIOR]
    assert paper_table[INDEX_COLUMN].tolist() == list(range(512))
    stats = paper_table.attrs["sampler_stats"]
    assert stats["drawn"] == 512 * REFERENCE.oversample
    assert 512 <= stats["distinct"] <= stats["valid_after_rounding"] <= stats["within_cap"] <= stats["drawn"]


def test_reference_constraints_on_the_paper_prior(paper_table):
    w = weights_of(paper_table)
    p = np.array(list(PILE_PRIOR.values()))
    cap = np.minimum(REFERENCE.cap_multiplier * p, 1.0)
    assert np.all(w <= cap + 1e-12), "a weight exceeds min(15 * prior, 1)"
    # Rows sum to 1 within one grid step (largest-remainder rounding makes it exact).
    assert np.abs(w.sum(axis=1) - 1.0).max() <= REFERENCE.grid
    assert np.abs(w.sum(axis=1) - 1.0).max() < 1e-9
    steps = w / REFERENCE.grid
    assert np.abs(steps - np.round(steps)).max() < 1e-6, "weights off the 2e-4 grid"
    assert np.all((w == 0) | (w >= REFERENCE.min_weight - 1e-12))
    assert len(np.unique(w, axis=0)) == 512, "duplicate mixtures in the table"
    # Small domains are capped well below 1 (enron 15 * 0.0018 = 0.027), big ones may dominate.
    assert w[:, list(PILE_PRIOR).index("enron_emails")].max() <= 0.027 + 1e-12
    assert [Mixture.from_vector(row, PILE_PRIOR) for row in w[:3]]


def test_min_weight_above_grid_and_coarse_grid_respected():
    settings = SamplerConfig(min_weight=1e-3, grid=2e-4)
    w = weights_of(sample_mixtures(PILE_PRIOR, 200, seed=0, settings=settings))
    assert np.all((w == 0) | (w >= 1e-3 - 1e-12))
    coarse = SamplerConfig(grid=1e-3, min_weight=1e-3)
    w = weights_of(sample_mixtures(PILE_PRIOR, 200, seed=0, settings=coarse))
    assert np.abs(w * 1000 - np.round(w * 1000)).max() < 1e-6
    assert np.abs(w.sum(axis=1) - 1.0).max() < 1e-9


def test_rounding_is_exact_and_never_breaks_a_cap():
    plan = _plan({"a": 0.05, "b": 0.3, "c": 0.65}, SamplerConfig(cap_multiplier=2.0, grid=0.01, min_weight=0.0))
    rng = np.random.default_rng(1)
    raw = rng.dirichlet([1.0, 1.0, 1.0], size=5000)
    units, ok = _round_to_grid(plan, raw)
    assert np.all(units.sum(axis=1) == 100)
    cap_units = np.floor(plan.cap * 100 + 1e-9)
    assert np.all(units[ok] <= cap_units)
    # Rows whose raw weights are within the caps are rounded without leaving them.
    within = np.all(raw <= plan.cap, axis=1)
    assert ok[within].mean() > 0.99
    assert np.abs(units[ok] / 100 - raw[ok]).max() <= 0.01 + 1e-12


def test_dedup_drops_exact_and_near_duplicates():
    units = np.array([[5, 5, 0], [5, 5, 0], [4, 6, 0], [0, 0, 10], [0, 1, 9]])
    exact = _dedup(units, grid_units=10, dedup_l1=1e-5)
    assert len(exact) == 4
    # 0.2 in weight = 2 steps of 0.1: [4,6,0] ~ [5,5,0] and [0,1,9] ~ [0,0,10] merge.
    near = _dedup(units, grid_units=10, dedup_l1=0.2)
    assert len(near) == 2
    assert np.all(np.abs(np.diff(near, axis=0)).sum(axis=1) > 2)


def test_dedup_shrinks_a_spiky_sample():
    # Tiny strengths put (almost) all mass on one domain: many draws coincide.
    spiky = SamplerConfig(min_strength=1e-3, max_strength=1e-3, n_strengths=1, oversample=50)
    table = sample_mixtures({"a": 0.4, "b": 0.35, "c": 0.25}, 3, seed=0, settings=spiky)
    stats = table.attrs["sampler_stats"]
    assert stats["distinct"] < stats["valid_after_rounding"] / 10


def test_tiny_strengths_give_no_nan():
    settings = SamplerConfig(min_strength=1e-6, max_strength=1e-6, n_strengths=1)
    plan = _plan(PILE_PRIOR, settings)
    chunks = list(candidate_sampler(PILE_PRIOR, 20_000, seed=3, settings=settings, apply_caps=False))
    w = np.concatenate(chunks)
    assert len(w) == 20_000 and np.isfinite(w).all()
    assert np.allclose(w.sum(axis=1), 1.0)
    assert (w.max(axis=1) > 0.999).mean() > 0.99  # strength ~0: one domain takes everything
    assert plan.strengths.tolist() == [1e-6]


def test_zero_prior_domain_never_gets_weight():
    prior = {**PILE_PRIOR, "empty": 0.0}
    table = sample_mixtures(prior, 64, seed=0, settings=REFERENCE)
    assert list(table.columns)[-1] == "empty"
    assert (table["empty"] == 0).all()


def test_mean_and_spread_match_the_tempered_dirichlet_mixture():
    """E[w] = p_T and Var[w_i] = p_T(1 - p_T) * E_s[1 / (s + 1)] without caps (s: the strengths)."""
    p = np.array(list(PILE_PRIOR.values()))
    p_t = p**0.5 / (p**0.5).sum()
    n = 200_000
    w = np.concatenate(list(candidate_sampler(PILE_PRIOR, n, seed=7, settings=REFERENCE, apply_caps=False)))
    assert w.shape == (n, 17)
    assert np.abs(w.mean(axis=0) - p_t).max() < 0.005
    strengths = np.logspace(np.log10(0.1), np.log10(5.0), 15)
    expected_var = p_t * (1 - p_t) * np.mean(1.0 / (strengths + 1.0))
    ratio = w.var(axis=0) / expected_var
    assert np.all((ratio > 0.9) & (ratio < 1.1)), ratio


def test_candidate_sampler_streams_in_domain_order_and_always_ends():
    order = list(reversed(PILE_PRIOR))
    chunks = list(
        candidate_sampler(PILE_PRIOR, 10_000, seed=0, settings=REFERENCE, domains=order, chunk_size=3000)
    )
    assert len(chunks) == 4 and all(c.shape[1] == 17 for c in chunks)
    assert all(len(c) <= 3000 for c in chunks)
    w = np.concatenate(chunks)
    p = np.array([PILE_PRIOR[d] for d in order])
    assert np.all(w <= np.minimum(15 * p, 1.0) + 1e-12)
    assert int(np.argmax(w.mean(axis=0))) == order.index("pile_cc")
    # Caps almost nothing can meet: the stream still ends after its draws, with few rows.
    harsh = SamplerConfig(cap_multiplier=1.0)
    kept = sum(len(c) for c in candidate_sampler(PILE_PRIOR, 5000, seed=0, settings=harsh))
    assert kept < 5000
    same = np.concatenate(
        list(candidate_sampler(PILE_PRIOR, 10_000, seed=0, settings=REFERENCE, domains=order, chunk_size=3000))
    )
    assert np.array_equal(w, same)


def test_candidate_sampler_can_round_to_the_grid():
    w = np.concatenate(list(candidate_sampler(PILE_PRIOR, 2000, seed=1, settings=REFERENCE, round_to_grid=True)))
    assert np.abs(w / 2e-4 - np.round(w / 2e-4)).max() < 1e-6
    assert np.abs(w.sum(axis=1) - 1).max() < 1e-9


def test_too_many_mixtures_for_what_dedup_leaves():
    with pytest.raises(SamplerError, match=r"n_mixtures <= \d+"):
        sample_mixtures({"a": 0.5, "b": 0.5}, 50, seed=0, settings=SamplerConfig(oversample=1, grid=0.1, min_weight=0.1))


@pytest.mark.parametrize(
    "prior, match",
    [
        ({}, "empty"),
        ({"a": 0.5, "b": -0.1}, "'b'.*>= 0"),
        ({"a": 0.5, "b": float("nan")}, "'b'"),
        ({"a": 0.0, "b": 0.0}, "every prior share is 0"),
        ({"a": 0.5, "b": "x"}, "not a number"),
    ],
)
def test_bad_priors(prior, match):
    with pytest.raises(SamplerError, match=match):
        sample_mixtures(prior, 4, seed=0, settings=REFERENCE)


def test_prior_against_corpus_domains():
    with pytest.raises(SamplerError, match="unknown domain.*'zz'"):
        normalize_prior({"a": 1.0, "zz": 1.0}, ["a", "b"])
    with pytest.raises(SamplerError, match=r"lacks domain\(s\) \['b'\]"):
        normalize_prior({"a": 1.0}, ["a", "b"])
    assert normalize_prior({"b": 3.0, "a": 1.0}, ["a", "b"]) == {"a": 0.25, "b": 0.75}


@pytest.mark.parametrize(
    "change, match",
    [
        ({"grid": 3e-4}, "sampler.grid"),
        ({"cap_multiplier": 0.5}, "sampler.cap_multiplier"),
        ({"temperature": 0.0}, "sampler.temperature"),
        ({"min_strength": 2.0, "max_strength": 1.0}, "sampler.max_strength"),
        ({"oversample": 0}, "sampler.oversample"),
        ({"min_weight": 1.0}, "sampler.min_weight"),
    ],
)
def test_bad_settings(change, match):
    with pytest.raises(SamplerError, match=match):
        sample_mixtures(PILE_PRIOR, 4, seed=0, settings=SamplerConfig(**change))


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_n(n):
    with pytest.raises(SamplerError, match="n_mixtures"):
        sample_mixtures(PILE_PRIOR, n, seed=0, settings=REFERENCE)


def test_paper_data_setting_is_less_sparse(paper_table):
    paper_data = SamplerConfig(temperature=0.1, min_strength=1.0, max_strength=5.0, n_strengths=10)
    other = sample_mixtures(PILE_PRIOR, 512, seed=42, settings=paper_data)
    nonzero_ref = (weights_of(paper_table) > 0).sum(axis=1).mean()
    nonzero_old = (weights_of(other) > 0).sum(axis=1).mean()
    assert nonzero_old > nonzero_ref  # stronger, flatter draws spread weight over more domains


def test_rows_become_mixtures(paper_table):
    mixtures = mixtures_from_table(paper_table.head(5))
    assert len(mixtures) == 5
    assert set(mixtures[0]) == set(PILE_PRIOR)
    assert mixtures[2]["pile_cc"] == paper_table.loc[2, "pile_cc"]
