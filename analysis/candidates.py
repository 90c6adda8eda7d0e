"""Simulation candidates: RegMix's generator, streamed in float32 chunks, within caps and minimums.

The generator is the one `regmix.sampler` uses for proxy tables (SamplerConfig's semantics):
temper the prior (p**temperature), pick a strength per draw from log-spaced values, draw
Dirichlet(p_T * s) in log space, reject draws above min(cap_multiplier * p, 1), zero weights
below min_weight and renormalise. Here it runs in float32 and skips the grid and dedup: a
simulation scores a million throwaway candidates, and float32 halves the time and memory of
drawing them (weights keep ~7 significant digits; every kept weight is >= min_weight).

On top of it the analysis adds the user's constraints:

- minimums m: a draw d becomes m + (1 - sum m) * d, so every candidate meets them exactly;
- caps c: candidates with any weight above c are rejected (and drawn again).

Both are convex (box) constraints, so any average of candidates meets them too.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from analysis.errors import AnalysisError
from regmix.config import SamplerConfig
from regmix.mixture import check_domains
from regmix.sampler import SamplerError, dirichlet_draws, normalize_prior, strength_grid, tempered_prior

#: Give up when fewer than this share of draws meets the caps: the simulation would spend
#: minutes drawing (100 domains around a uniform prior with the paper's strengths: 0.3%).
MIN_ACCEPTANCE = 0.01
#: Chunks drawn before the acceptance is judged.
ACCEPTANCE_CHUNKS = 4
#: Draw threads when `simulation.draw_threads=0`: every core, up to this many (each holds a
#: block ahead and ~4 MiB of scratch; beyond it the screen's predictions are the bound).
MAX_DEFAULT_DRAW_THREADS = 8
#: Rows per generator block. A block's tables (~1 MiB each at 17 domains) stay in the CPU's
#: cache: on one thread, about 10% faster than the 131,072-row chunks drawn before.
BLOCK_ROWS = 16_384


@dataclass(frozen=True)
class CandidateSpace:
    """Where candidates live: the prior, the generator's settings and the user's box constraints."""

    domains: tuple[str, ...]
    prior: np.ndarray
    """Untempered token prior (sums to 1), in `domains` order."""
    settings: SamplerConfig
    minimums: np.ndarray
    caps: np.ndarray
    """User caps (1 where none)."""

    @property
    def generator_cap(self) -> np.ndarray:
        """min(cap_multiplier * prior, 1): the generator rejects draws above it."""
        return np.minimum(self.settings.cap_multiplier * self.prior, 1.0)

    @property
    def lower(self) -> np.ndarray:
        return self.minimums

    @property
    def upper(self) -> np.ndarray:
        """Largest weight a candidate can have: the user cap, and the generator's cap as the
        minimums transform maps it."""
        return np.minimum(self.caps, self.minimums + (1.0 - self.minimums.sum()) * self.generator_cap)

    def prior_dict(self) -> dict[str, float]:
        return dict(zip(self.domains, map(float, self.prior)))


def _check_settings(s: SamplerConfig) -> None:
    rules = [
        ("temperature", s.temperature > 0, "use a positive number (reference: 0.5)"),
        ("min_strength", s.min_strength > 0, "use a positive Dirichlet strength (reference: 0.1)"),
        ("max_strength", s.max_strength >= s.min_strength, f"use a number >= min_strength={s.min_strength}"),
        ("n_strengths", s.n_strengths >= 1, "use at least 1 (reference: 15)"),
        ("cap_multiplier", s.cap_multiplier >= 1, "use >= 1 (reference: 15)"),
        ("min_weight", 0 <= s.min_weight < 1, "use a weight in [0, 1) (reference: 2e-4)"),
    ]
    for name, ok, fix in rules:
        if not ok:
            raise AnalysisError(f"simulation.sampler.{name}={getattr(s, name)!r} is invalid: {fix}")


def _bounds(values: Mapping[str, float], domains: Sequence[str], what: str, default: float) -> np.ndarray:
    if not isinstance(values, Mapping):
        raise AnalysisError(f"simulation.{what}={values!r} is not a mapping; write it as '{{domain: weight}}'")
    check_domains(values, domains, what=f"simulation.{what}")
    out = np.full(len(domains), default, dtype=np.float64)
    for i, d in enumerate(domains):
        if d in values:
            v = float(values[d])
            if not (0.0 <= v <= 1.0):
                raise AnalysisError(f"simulation.{what}.{d}={v} is outside [0, 1]; give a weight between 0 and 1")
            out[i] = v
    return out


def candidate_space(
    domains: Sequence[str],
    prior: Mapping[str, float],
    settings: SamplerConfig,
    *,
    caps: Mapping[str, float] | None = None,
    minimums: Mapping[str, float] | None = None,
) -> CandidateSpace:
    """Validate prior and constraints against the train domains; raise `AnalysisError` on conflict."""
    domains = list(domains)
    _check_settings(settings)
    if not isinstance(prior, Mapping):
        raise AnalysisError(f"the prior {prior!r} is not a mapping; write it as simulation.prior='{{domain: share}}'")
    try:
        shares = normalize_prior(prior, domains)
    except SamplerError as exc:
        raise AnalysisError(f"{exc} (set simulation.prior={{domain: share}})") from None
    lo = _bounds(minimums or {}, domains, "minimums", 0.0)
    hi = _bounds(caps or {}, domains, "caps", 1.0)
    if lo.sum() >= 1.0:
        raise AnalysisError(f"simulation.minimums sum to {lo.sum():.4g}; they must leave room below 1")
    clash = [d for d, a, b in zip(domains, lo, hi) if a > b]
    if clash:
        raise AnalysisError(f"simulation minimums exceed caps for {clash}; lower the minimum or raise the cap")
    space = CandidateSpace(tuple(domains), np.array([shares[d] for d in domains]), settings, lo, hi)
    if space.upper.sum() < 1.0 - 1e-9:
        raise AnalysisError(
            f"the caps allow at most {space.upper.sum():.4g} in total (user caps and "
            f"{settings.cap_multiplier:g} x prior); raise simulation.caps or sampler.cap_multiplier"
        )
    return space


def _draw(space: CandidateSpace, rng: np.random.Generator, rows: int) -> np.ndarray:
    """`rows` generator draws (float32, domain order) that meet the generator's caps."""
    f32 = np.float32
    tempered = tempered_prior(space.prior, space.settings.temperature)
    draw = dirichlet_draws(tempered, strength_grid(space.settings), rng, rows, dtype=f32)
    cap = space.generator_cap.astype(f32)
    draw = draw[np.all(draw <= cap, axis=1)]
    if space.settings.min_weight > 0:
        # RegMix's step 4 without the grid: tiny weights carry no data, and left in they would
        # make every top candidate (and any aggregate of them) touch every domain.
        draw[draw < space.settings.min_weight] = 0.0
        draw /= draw.sum(axis=1, keepdims=True)
        draw = draw[np.all(draw <= cap, axis=1)]
    return draw


def draw_threads(requested: int) -> int:
    """Threads for drawing candidates: `requested`, or every core up to MAX_DEFAULT_DRAW_THREADS when 0."""
    return requested if requested > 0 else min(os.cpu_count() or 1, MAX_DEFAULT_DRAW_THREADS)


def iter_candidates(
    space: CandidateSpace, n: int, *, chunk_rows: int, seed: int, stats: dict | None = None, threads: int = 1
) -> Iterator[np.ndarray]:
    """Yield `n` candidates in total, in chunks of at most `chunk_rows` rows (float32, domain order).

    They are drawn in blocks of BLOCK_ROWS on `threads` threads (numpy's draws run without the
    GIL); block i has its own seed (`seed`, i), so the candidates depend on `seed` alone, never
    on the thread count or the chunk size. `stats` (a dict, updated in place) counts rows drawn,
    rows of those that met the caps (`passed`) and rows yielded (`accepted`, at most n).
    """
    if n < 1:
        raise AnalysisError(f"simulation.n_candidates={n}; ask for at least 1")
    stats = stats if stats is not None else {}
    stats.update(drawn=0, passed=0, accepted=0)
    free = np.float32(1.0 - space.minimums.sum())
    minimums = space.minimums.astype(np.float32)
    caps = space.caps.astype(np.float32) + np.float32(1e-7)  # float32 rounding of m + free * d
    user_capped = bool(np.any(space.caps < 1.0))

    def block(index: int) -> np.ndarray:
        weights = _draw(space, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,))), BLOCK_ROWS)
        if free < 1.0:
            weights = minimums + free * weights
        if user_capped:
            weights = weights[np.all(weights <= caps, axis=1)]
        return weights

    threads = max(1, int(threads))
    with ThreadPoolExecutor(max_workers=threads) as workers:
        # One block ahead per thread, and one more: the threads draw while the consumer works on
        # a chunk, and wait while it holds one (which bounds memory to these blocks).
        ahead = deque(workers.submit(block, i) for i in range(threads + 1))
        passed: list[np.ndarray] = []  # accepted rows not yet yielded, in block order
        held = 0
        try:
            while stats["accepted"] < n:
                weights = ahead.popleft().result()
                ahead.append(workers.submit(block, stats["drawn"] // BLOCK_ROWS + threads + 1))
                stats["drawn"] += BLOCK_ROWS
                stats["passed"] += len(weights)
                passed.append(weights)
                held += len(weights)
                while stats["accepted"] < n and held and (held >= chunk_rows or stats["accepted"] + held >= n):
                    table = np.concatenate(passed) if len(passed) > 1 else passed[0]
                    want = min(chunk_rows, n - stats["accepted"])
                    passed, held = [table[want:]], len(table) - want
                    stats["accepted"] += want
                    yield table[:want]
                if stats["drawn"] >= ACCEPTANCE_CHUNKS * chunk_rows and stats["passed"] < MIN_ACCEPTANCE * stats["drawn"]:
                    raise AnalysisError(
                        f"only {stats['passed']:,} of {stats['drawn']:,} drawn candidates meet the caps; "
                        "with many domains raise simulation.sampler.min_strength/max_strength (a Dirichlet's "
                        "strength spreads over every domain), or loosen simulation.caps / sampler.cap_multiplier"
                    )
        finally:
            for pending in ahead:
                pending.cancel()


def fit_to_bounds(weights: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray | None:
    """Scale `weights` to sum 1 within [lower, upper]: clip(c * w, lower, upper) with c by bisection.

    Domains with weight 0 stay at their minimum (usually 0): no weight is spread onto domains
    the weights left out. None when no scale reaches 1.
    """
    w = np.asarray(weights, dtype=np.float64)

    def total(c: float) -> float:
        return float(np.clip(c * w, lower, upper).sum())

    positive = w > 0
    # Largest reachable total: positive weights at their caps, the others at their minimums.
    if not positive.any() or np.where(positive, upper, lower).sum() < 1.0 - 1e-12 or total(0.0) > 1.0 + 1e-12:
        return None
    lo, hi = 0.0, 1.0 / w.sum()
    for _ in range(2100):  # doublings: 2**2100 overflows past any upper/w ratio of float64
        if total(hi) >= 1.0 - 1e-12:
            break
        lo, hi = hi, 2.0 * hi
    for _ in range(100):  # bisection within a factor 2 of the answer: exact in float64
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if total(mid) < 1.0 else (lo, mid)
    out = np.clip(hi * w, lower, upper)
    return out / out.sum()


#: Dirichlet strengths of the draws around runs, log-spaced: 10 spreads a draw about 0.7 (L1)
#: from its run over 17 domains, 3,000 about 0.05, so the draws fill the trust region near the
#: runs from its edge inwards.
AROUND_STRENGTHS = (10.0, 3000.0)
#: Pseudo-weight (share) added to every domain of a centre run before drawing: a domain the run
#: left out can still get a little weight, as a blend of neighbouring runs would.
AROUND_FLOOR = 1e-3


def around_runs(space: CandidateSpace, runs: np.ndarray, losses: np.ndarray, n: int, *, seed: int,
                centres: int | None = None) -> np.ndarray:
    """`n` candidates drawn around the best trained runs, within the space's bounds (float64).

    Centres: the `centres` runs of lowest observed target loss (default: the best 10%, 3 to
    32); draw i is Dirichlet(s_i * (w_c + floor)) around a centre c taken in turn, with s_i
    log-uniform in AROUND_STRENGTHS. The centres themselves come first, so the candidates always
    include points at distance 0 from a run: the trust region is never empty. Draws outside the
    minimums and caps are brought inside by clipping and renormalising; those still outside are
    dropped."""
    runs = np.asarray(runs, dtype=np.float64)
    if n <= 0 or not len(runs):
        return np.empty((0, len(space.domains)))
    rng = np.random.default_rng(seed)
    k = centres if centres is not None else int(np.clip(round(0.1 * len(runs)), 3, 32))
    order = np.argsort(np.asarray(losses, dtype=np.float64), kind="stable")[: max(1, min(k, len(runs)))]
    centre = runs[order]
    picks = np.arange(max(n - len(centre), 0)) % len(centre)
    strength = np.exp(rng.uniform(*np.log(AROUND_STRENGTHS), size=len(picks)))
    alpha = strength[:, None] * (centre[picks] + AROUND_FLOOR) / (1.0 + AROUND_FLOOR * runs.shape[1])
    draws = np.concatenate([centre, rng.gamma(alpha)])
    draws /= draws.sum(axis=1, keepdims=True)
    lower, upper = space.lower, space.upper
    for _ in range(20):  # clip into the box and renormalise: converges in a few rounds
        draws = np.clip(draws, lower, upper)
        draws /= draws.sum(axis=1, keepdims=True)
    ok = np.all(draws >= lower - 1e-9, axis=1) & np.all(draws <= upper + 1e-9, axis=1)
    return draws[ok][:n]
