"""The choice with uncertainty, on runs tables with a known answer: the evidence picks the driver,
the risk-aware objective stays near the runs, constraints hold (token budget, penalties)."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from analysis.errors import AnalysisError
from analysis.fit import run_fit
from tests.support.synthetic_runs import TARGET, interaction_loss, linear_loss, synthetic_records
from regmix.run_record import write_record
from tests.test_analysis_fit import compose_fit, local_overrides


def write_runs(root, records, tokens: dict | None = None):
    for rec in records:
        if tokens is not None:
            rec.corpus["train_tokens"] = dict(tokens)
        write_record(root / rec.run_name, rec)
    return root


def test_a_badly_wrong_regressor_does_not_drive(tmp_path):
    """Known answer: a quadratic bowl, 96 runs. Ridge cannot rank it (out-of-fold Spearman < 0.6),
    the old run-count rule would have let it drive (< 128 runs); the evidence picks a tree model and
    the emitted mixture lands near the bowl's centre and beats ridge's pick on the true loss."""
    bowl = interaction_loss(5, seed=1)
    root = write_runs(tmp_path / "runs", synthetic_records(bowl, 96, noise=0.01))
    overrides = [*local_overrides(tmp_path, root)]
    result = run_fit(compose_fit(overrides), progress=False)
    assert result.comparison.loc["ridge", "oof_spearman"] < 0.6
    assert result.drive in ("lightgbm", "xgboost")
    domains = result.table.domains
    emitted = result.mixture.vector(domains)
    assert np.abs(emitted - bowl.optimum()).sum() <= 0.3
    ridge = run_fit(compose_fit([*overrides, "regressor.drive=rule", "out=ridge", "overwrite=true"]), progress=False)
    assert ridge.drive == "ridge"
    assert bowl(emitted[None])[0] < bowl(ridge.mixture.vector(domains)[None])[0]


def test_token_budget_caps_the_small_domain_at_max_epochs(tmp_path):
    """Known answer: a linear loss whose best domain has few tokens. Without a budget the choice
    puts nearly everything on it; with a budget of 10,000 tokens and max_epochs=2, its 500 tokens
    allow weight <= 2 * 500 / 10,000 = 0.1, and the emitted mixture respects it."""
    loss = linear_loss(5, seed=3)
    small = loss.domains[int(np.argmax(loss.gain))]
    tokens = {d: (500 if d == small else 1_000_000) for d in loss.domains}
    root = write_runs(tmp_path / "runs", synthetic_records(loss, 40, noise=0.01), tokens)
    uniform = "{" + ", ".join(f"{d}: 1" for d in loss.domains) + "}"  # candidates around uniform, not the token counts
    base = [*local_overrides(tmp_path, root), f"simulation.prior={uniform}"]
    free = run_fit(compose_fit(base), progress=False)
    assert free.mixture[small] > 0.5
    capped = run_fit(compose_fit([*base, "simulation.token_budget=10000", "simulation.max_epochs=2",
                                  "out=capped"]), progress=False)
    assert capped.mixture[small] <= 0.1 + 1e-4
    assert capped.mixture[small] * 10_000 / 500 <= 2 + 2e-3  # epochs of the small domain
    provenance = OmegaConf.load(capped.emitted).provenance
    assert provenance.constraints.token_budget.max_epochs == 2
    assert provenance.constraints.token_budget.caps[small] == pytest.approx(0.1)
    with pytest.raises(AnalysisError, match="max_epochs"):
        run_fit(compose_fit([*base, "simulation.token_budget=1e9", "simulation.max_epochs=1", "out=no"]), progress=False)


def test_l1_penalty_pulls_toward_the_prior_and_is_recorded(tmp_path):
    loss = linear_loss(5, seed=3)
    root = write_runs(tmp_path / "runs", synthetic_records(loss, 40, noise=0.01))
    base = [*local_overrides(tmp_path, root)]
    free = run_fit(compose_fit(base), progress=False)
    pulled = run_fit(compose_fit([*base, "choice.l1_penalty=2.0", "out=pulled"]), progress=False)
    prior = np.full(5, 0.2)
    domains = free.table.domains
    assert np.abs(pulled.mixture.vector(domains) - prior).sum() < np.abs(free.mixture.vector(domains) - prior).sum() - 0.2
    assert OmegaConf.load(pulled.emitted).provenance.constraints.l1_penalty == 2.0
