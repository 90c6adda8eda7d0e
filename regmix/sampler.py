"""RegMix's mixture generator and the mixtures table it writes.

The generator (reference code of arXiv 2407.01492, `mixture_config/synthesize_mixture.py`):

1. temper the token prior: p_T = p**temperature / sum;
2. per draw, pick a strength s uniformly from `n_strengths` log-spaced values in
   [min_strength, max_strength] and draw Dirichlet(p_T * s);
3. reject a draw if any weight exceeds min(cap_multiplier * p_i, 1) (p untempered);
4. zero weights below `min_weight`, renormalise, round to the `grid`;
5. oversample `oversample` x, sort, drop near-duplicates (L1 <= dedup_l1), draw the n wanted.

Differences from the reference, all on purpose:

- one explicit `np.random.Generator`, vectorised draws (the reference loops in Python over the
  global numpy and `random` states); same distribution, not the same numbers;
- Dirichlet draws are made in log space, so tiny concentrations (s * p_T down to ~1e-5) never
  give all-zero rows or NaN (numpy's gamma underflows to 0 there);
- rounding is largest-remainder on the grid, so every row sums to exactly 1 (in grid units) and
  never exceeds its cap (the reference's `np.round` gives sums of 0.996-1.003 and can round a
  capped weight up past its cap); rows that still break the cap or `min_weight` after
  renormalising and rounding are rejected, like step 3;
- selected rows keep the random order of the draw, so the first k rows of a table are a uniform
  random subset of it (a sweep can be cut short and stay unbiased).

Torch-free: the analysis draws its simulation candidates with the same `tempered_prior`,
`strength_grid` and `dirichlet_draws` (in float32, without grid and dedup).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from regmix.config import SamplerConfig
from regmix.mixture import check_domains
from regmix.errors import RegmixError

#: First column of a mixtures table: the row index that `mixture.index` selects.
INDEX_COLUMN = "index"

#: Rows drawn per vectorised batch: bounds memory at ~chunk * domains * 8 bytes per array
#: (17 domains: ~9 MB) whatever n * oversample is.
DRAW_CHUNK_ROWS = 65_536


class SamplerError(RegmixError):
    """Sampler settings or a prior that cannot produce mixtures; the message says the fix."""


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A validated prior + settings in vector form (columns in `domains` order)."""

    domains: tuple[str, ...]
    prior: np.ndarray
    """Untempered prior, normalised to sum 1."""
    support: np.ndarray
    """Domains with a positive prior: the only ones a draw can give weight to."""
    tempered: np.ndarray
    """p**temperature / sum over the support (0 outside it)."""
    strengths: np.ndarray
    cap: np.ndarray
    """min(cap_multiplier * prior, 1): the largest weight a domain may get."""
    grid_units: int
    """1 / grid: a rounded weight is an integer count of grid steps out of this many."""
    min_weight: float


def _check_settings(settings: SamplerConfig) -> int:
    """Validate settings; return the number of grid steps in 1."""
    s = settings

    def bad(field: str, value: object, rule: str) -> SamplerError:
        return SamplerError(f"sampler.{field}={value!r} is invalid: {rule}")

    if not (math.isfinite(s.temperature) and s.temperature > 0):
        raise bad("temperature", s.temperature, "use a positive number (reference: 0.5; 1 = no tempering)")
    if not (math.isfinite(s.min_strength) and s.min_strength > 0):
        raise bad("min_strength", s.min_strength, "use a positive Dirichlet strength (reference: 0.1)")
    if not (math.isfinite(s.max_strength) and s.max_strength >= s.min_strength):
        raise bad("max_strength", s.max_strength, f"use a number >= min_strength={s.min_strength}")
    if s.n_strengths < 1:
        raise bad("n_strengths", s.n_strengths, "use at least 1 (reference: 15)")
    if not (s.cap_multiplier >= 1):
        raise bad("cap_multiplier", s.cap_multiplier, "use >= 1, or no mixture can meet the caps (reference: 15)")
    if not (0 <= s.min_weight < 1):
        raise bad("min_weight", s.min_weight, "use a weight in [0, 1) (reference: 2e-4)")
    if not (math.isfinite(s.grid) and 0 < s.grid <= 0.5):
        raise bad("grid", s.grid, "use a step in (0, 0.5] that divides 1, e.g. 2e-4 or 1e-3")
    units = round(1.0 / s.grid)
    if abs(units * s.grid - 1.0) > 1e-9:
        raise bad("grid", s.grid, f"1/grid must be a whole number (1/{s.grid} = {1 / s.grid:.6g}); use e.g. 2e-4 or 1e-3")
    if s.oversample < 1:
        raise bad("oversample", s.oversample, "use at least 1 (reference: 100)")
    if not (s.dedup_l1 >= 0):
        raise bad("dedup_l1", s.dedup_l1, "use a distance >= 0 (reference: 1e-5)")
    return units


def normalize_prior(prior: Mapping[str, float], domains: Sequence[str] | None = None) -> dict[str, float]:
    """The prior as shares summing to 1, keyed by domain (in `domains` order when given).

    Raises `SamplerError` for unknown, missing, negative or non-finite entries.
    """
    if not prior:
        raise SamplerError("the prior is empty; give every train domain a share (e.g. its token count)")
    if domains is not None:
        domains = list(domains)
        try:
            check_domains(prior, domains, what="sampler prior")
        except ValueError as exc:
            raise SamplerError(str(exc)) from None
        missing = [d for d in domains if d not in prior]
        if missing:
            raise SamplerError(
                f"sampler prior lacks domain(s) {missing}; give every train domain a share (0 excludes it)"
            )
    else:
        domains = list(prior)
    values = {}
    for d in domains:
        try:
            v = float(prior[d])
        except (TypeError, ValueError):
            raise SamplerError(f"prior of domain {d!r} is {prior[d]!r}, not a number") from None
        if not math.isfinite(v) or v < 0:
            raise SamplerError(f"prior of domain {d!r} is {v}; shares must be finite and >= 0")
        values[d] = v
    total = sum(values.values())
    if total <= 0:
        raise SamplerError("every prior share is 0; give at least one domain a positive share")
    return {d: v / total for d, v in values.items()}


def _plan(prior: Mapping[str, float], settings: SamplerConfig, *, caps: bool = True) -> _Plan:
    units = _check_settings(settings)
    shares = normalize_prior(prior)
    p = np.array(list(shares.values()), dtype=np.float64)
    support = p > 0
    tempered = tempered_prior(p, settings.temperature)
    strengths = strength_grid(settings)
    cap = np.minimum(settings.cap_multiplier * p, 1.0) if caps else np.ones_like(p)
    return _Plan(
        domains=tuple(shares),
        prior=p,
        support=support,
        tempered=tempered,
        strengths=strengths,
        cap=cap,
        grid_units=units,
        min_weight=float(settings.min_weight),
    )


def tempered_prior(prior: np.ndarray, temperature: float) -> np.ndarray:
    """p**temperature renormalised over the domains with p > 0 (the others stay 0); float64."""
    tempered = np.zeros_like(prior, dtype=np.float64)
    support = prior > 0
    tempered[support] = prior[support] ** temperature
    return tempered / tempered.sum()


def strength_grid(settings: SamplerConfig) -> np.ndarray:
    """The Dirichlet strengths: `n_strengths` log-spaced values in [min_strength, max_strength]."""
    if settings.n_strengths == 1 or settings.min_strength == settings.max_strength:
        return np.array([settings.min_strength], dtype=np.float64)
    return np.logspace(math.log10(settings.min_strength), math.log10(settings.max_strength), settings.n_strengths)


def dirichlet_draws(
    tempered: np.ndarray, strengths: np.ndarray, rng: np.random.Generator, rows: int, *, dtype=np.float64
) -> np.ndarray:
    """`rows` Dirichlet(p_T * s) draws, s uniform over `strengths`; shape (rows, domains), `dtype`.

    Log-space gamma variates: G(a) = G(a + 1) * U**(1/a), so log G = log G(a+1) - E/a with
    E ~ Exp(1). At a ~ 1e-4 plain gamma draws underflow to 0 for every domain (a 0/0 row);
    in log space the row normalises by a softmax and stays exact. Domains with p_T = 0 get 0.
    float32 (simulation candidates) halves the time and memory of float64 (sweep tables).
    """
    support = tempered > 0
    strength = strengths.astype(dtype)[rng.integers(len(strengths), size=rows)]
    alpha = strength[:, None] * tempered[support].astype(dtype)[None, :]
    log_g = rng.standard_gamma(alpha + dtype(1.0), dtype=dtype)
    np.log(np.maximum(log_g, np.finfo(dtype).tiny, out=log_g), out=log_g)
    noise = rng.standard_exponential(alpha.shape, dtype=dtype)
    noise /= alpha
    log_g -= noise
    log_g -= log_g.max(axis=1, keepdims=True)
    np.exp(log_g, out=log_g)
    log_g /= log_g.sum(axis=1, keepdims=True)
    if support.all():
        return log_g  # no column to leave at 0: a scatter into a fresh table would copy every row
    out = np.zeros((rows, len(tempered)), dtype=dtype)
    out[:, np.flatnonzero(support)] = log_g
    return out


def _draw_dirichlet(plan: _Plan, rng: np.random.Generator, rows: int) -> np.ndarray:
    return dirichlet_draws(plan.tempered, plan.strengths, rng, rows)


def _within_cap(plan: _Plan, weights: np.ndarray) -> np.ndarray:
    return np.all(weights <= plan.cap[None, :], axis=1)


def _round_to_grid(plan: _Plan, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero small weights, renormalise, round to the grid by largest remainder.

    Returns (units, ok): integer grid steps per domain, each row summing to `grid_units`, and a
    mask of rows that still meet the caps and `min_weight` (others must be dropped).
    """
    k = plan.grid_units
    w = np.where(weights < plan.min_weight, 0.0, weights)
    total = w.sum(axis=1, keepdims=True)
    ok = total[:, 0] > 0
    w = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    scaled = w * k
    units = np.floor(scaled).astype(np.int64)
    remainder = scaled - units
    deficit = k - units.sum(axis=1)
    # 1e-9: a cap that is a whole number of steps (e.g. 1.0) must not lose its last step to fp.
    cap_units = np.floor(plan.cap * k + 1e-9).astype(np.int64)
    # Priority of getting one more step: the remainder; a zeroed domain only as a last resort;
    # never a domain already at its cap.
    priority = np.where(w > 0, remainder, -1.0)
    priority = np.where(units + 1 <= cap_units[None, :], priority, -np.inf)
    order = np.argsort(-priority, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :].repeat(len(order), axis=0), axis=1)
    bump = rank < deficit[:, None]
    ok &= ~np.any(bump & np.isneginf(priority), axis=1)
    units = units + bump
    ok &= np.all(units <= cap_units[None, :], axis=1)
    nonzero = units > 0
    ok &= ~np.any(nonzero & (units < plan.min_weight * k - 1e-9), axis=1)
    return units, ok


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def candidate_sampler(
    prior: Mapping[str, float],
    n_candidates: int,
    *,
    seed: int | np.random.Generator,
    settings: SamplerConfig,
    domains: Sequence[str] | None = None,
    chunk_size: int = DRAW_CHUNK_ROWS,
    apply_caps: bool = True,
    round_to_grid: bool = False,
) -> Iterator[np.ndarray]:
    """Stream candidate mixtures in chunks: arrays of shape (<= chunk_size, len(domains)).

    Draws exactly `n_candidates` rows from the generator (steps 1-3, and 4 when
    `round_to_grid`), in `chunk_size` batches; rows failing the caps are dropped, never
    redrawn, so a chunk may be shorter (even empty) and the loop always ends. Columns follow
    `domains` (default: the prior's order). Memory is bounded by one chunk.
    """
    if n_candidates < 0 or chunk_size < 1:
        raise SamplerError(f"n_candidates={n_candidates} and chunk_size={chunk_size}: use n >= 0, chunk >= 1")
    if domains is not None:
        prior = normalize_prior(prior, domains)
    plan = _plan(prior, settings, caps=apply_caps)
    rng = _rng(seed)
    left = n_candidates
    while left > 0:
        rows = min(chunk_size, left)
        left -= rows
        w = _draw_dirichlet(plan, rng, rows)
        w = w[_within_cap(plan, w)]  # all rows when caps are off (cap = 1)
        if round_to_grid:
            units, ok = _round_to_grid(plan, w)
            w = units[ok] / plan.grid_units
        yield w


def _dedup(units: np.ndarray, grid_units: int, dedup_l1: float) -> np.ndarray:
    """Sorted rows with near-duplicates (L1 <= dedup_l1, in weight units) dropped."""
    rows = np.unique(units, axis=0)  # sorted; exact duplicates gone
    # Two distinct grid rows with equal sums differ by at least 2 steps in L1, so below that
    # distance exact dedup is the whole job (the reference setting: 1e-5 << 2 * 2e-4).
    if dedup_l1 < 2.0 / grid_units or len(rows) < 2:
        return rows
    # The reference's greedy pass: keep a row if it is far enough from the last kept one.
    limit = dedup_l1 * grid_units + 1e-9
    keep = [0]
    for i in range(1, len(rows)):
        if np.abs(rows[i] - rows[keep[-1]]).sum() > limit:
            keep.append(i)
    return rows[keep]


MAX_MIXTURES = 100_000
"""Most mixtures one table may hold. Sampling costs about 0.75 ms per mixture (100x oversampled
and deduplicated; measured on a loaded 2-core box), so 10^5 is about a minute, while
n_mixtures=10^8 ran without bound; and no sweep trains 10^5 proxies (the paper: 512)."""


def check_n_mixtures(n) -> None:
    """Raise `SamplerError` unless 1 <= n <= MAX_MIXTURES."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise SamplerError(f"n_mixtures={n!r} is invalid: ask for at least 1 mixture (the paper: 512)")
    if n > MAX_MIXTURES:
        raise SamplerError(
            f"n_mixtures={n} is more than {MAX_MIXTURES:,}, the most one sweep table holds (the paper trains 512); "
            "ask for fewer, or sample several sweeps with different seed= values"
        )


def sample_mixtures(
    prior: Mapping[str, float], n: int, *, seed: int, settings: SamplerConfig
) -> pd.DataFrame:
    """`n` distinct proxy mixtures from RegMix's generator, seeded.

    Returns the mixtures table: an `index` column 0..n-1, then one weight column per domain
    of `prior`, in the prior's order (weights on the grid, each row summing to 1). Counts of
    the funnel (drawn, within caps, valid after rounding, distinct) are in
    `table.attrs["sampler_stats"]`.
    """
    check_n_mixtures(n)
    plan = _plan(prior, settings)
    rng = np.random.default_rng(seed)
    drawn = int(n) * settings.oversample
    kept: list[np.ndarray] = []
    within_cap = 0
    left = drawn
    while left > 0:
        rows = min(DRAW_CHUNK_ROWS, left)
        left -= rows
        w = _draw_dirichlet(plan, rng, rows)
        w = w[_within_cap(plan, w)]
        within_cap += len(w)
        units, ok = _round_to_grid(plan, w)
        kept.append(units[ok].astype(np.int32))
    units = np.concatenate(kept) if kept else np.zeros((0, len(plan.domains)), dtype=np.int32)
    valid = len(units)
    distinct = _dedup(units, plan.grid_units, settings.dedup_l1)
    if len(distinct) < n:
        raise SamplerError(
            f"only {len(distinct)} distinct mixtures survived of {drawn} drawn "
            f"({within_cap} within the caps); ask for n_mixtures <= {len(distinct)}, "
            "raise sampler.oversample, or loosen sampler.cap_multiplier / sampler.grid"
        )
    chosen = distinct[rng.choice(len(distinct), size=n, replace=False)]
    table = pd.DataFrame(chosen / plan.grid_units, columns=list(plan.domains))
    table.insert(0, INDEX_COLUMN, np.arange(n))
    table.attrs["sampler_stats"] = {
        "drawn": drawn,
        "within_cap": within_cap,
        "valid_after_rounding": valid,
        "distinct": int(len(distinct)),
    }
    return table
