"""Simulation: score many candidate mixtures with the driving regressor, aggregate the best k.

Prediction, not sampling, is the cost (a 1000-tree LightGBM predicts 1M candidates in ~30 s
on 2 cores; drawing them takes ~1.5 s). With a screen, a cheap model (50 trees) scores every
candidate while they stream and keeps the best `screen_keep * screen_blocks`; the driving
regressor then re-scores them best-first, one block of `screen_keep` at a time, and stops once
its top k sits in the better half of what it has scored (so a weak screen costs more blocks,
not a worse mixture; the report says when the blocks ran out). Memory is bounded by one chunk
plus the kept pool.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from analysis.candidates import CandidateSpace, fit_to_bounds, iter_candidates
from analysis.errors import AnalysisError

AGGREGATES = ("median", "mean")
#: Re-scoring stops when the worst screen rank in the top k is below this share of the rows
#: re-scored so far: the next block is then unlikely to hold anything better.
CONVERGED_SHARE = 0.5


class _Best:
    """The `capacity` lowest-scoring rows seen so far (scores, rows, and a tag per row)."""

    def __init__(self, capacity: int, n_domains: int, dtype=np.float32):
        self.capacity = capacity
        self.scores = np.empty(0)
        self.rows = np.empty((0, n_domains), dtype=dtype)
        self.tags = np.empty(0, dtype=np.int64)

    def offer(self, scores: np.ndarray, rows: np.ndarray, tags: np.ndarray | None = None) -> None:
        if tags is None:
            tags = np.zeros(len(scores), dtype=np.int64)
        if len(self.scores) >= self.capacity:
            better = scores < self.scores.max()
            scores, rows, tags = scores[better], rows[better], tags[better]
            if not len(scores):
                return
        scores = np.concatenate([self.scores, scores])
        rows = np.concatenate([self.rows, rows])
        tags = np.concatenate([self.tags, tags])
        if len(scores) > self.capacity:
            keep = np.argpartition(scores, self.capacity - 1)[: self.capacity]
            scores, rows, tags = scores[keep], rows[keep], tags[keep]
        self.scores, self.rows, self.tags = scores, rows, tags

    def sorted(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(self.scores, kind="stable")
        return self.scores[order], self.rows[order], self.tags[order]


@dataclass
class SimulationResult:
    """The chosen mixture (domain order of the space), its predicted target loss, the top k."""

    weights: np.ndarray
    predicted: float
    top: np.ndarray
    top_predicted: np.ndarray
    stats: dict = field(default_factory=dict)


def aggregate_top(top: np.ndarray, how: str, space: CandidateSpace) -> tuple[np.ndarray, str]:
    """Aggregate the top-k candidates into one mixture within the space's bounds; returns (weights, note)."""
    if how == "mean":
        mean = top.mean(axis=0)
        return mean / mean.sum(), "mean of the top k"
    if how == "median":
        fitted = fit_to_bounds(np.median(top, axis=0), space.lower, space.upper)
        if fitted is not None:
            return fitted, "per-domain median of the top k, rescaled to sum 1 within the caps"
        mean = top.mean(axis=0)
        return mean / mean.sum(), "mean of the top k (their median could not be rescaled within the caps)"
    raise AnalysisError(f"simulation.aggregate={how!r} is unknown; use one of {list(AGGREGATES)}")


def simulate(
    model,
    space: CandidateSpace,
    *,
    n_candidates: int,
    top_k: int,
    aggregate: str = "median",
    seed: int = 0,
    chunk_rows: int = 131_072,
    screen=None,
    screen_keep: int = 0,
    screen_blocks: int = 4,
    draw_threads: int = 1,
    progress: bool = True,
) -> SimulationResult:
    """Draw `n_candidates` from `space`, score them with `model` (screened by `screen` when
    given), and aggregate the `top_k` best into the chosen mixture. `draw_threads` threads draw
    the candidates (the same candidates for any number)."""
    if aggregate not in AGGREGATES:
        raise AnalysisError(f"simulation.aggregate={aggregate!r} is unknown; use one of {list(AGGREGATES)}")
    if not 1 <= top_k <= n_candidates:
        raise AnalysisError(f"simulation.top_k={top_k} must be between 1 and n_candidates={n_candidates}")
    use_screen = screen is not None and screen_keep > 0 and n_candidates > 2 * screen_keep * max(screen_blocks, 1)
    pool = _Best(screen_keep * max(screen_blocks, 1) if use_screen else top_k, len(space.domains))
    stats: dict = {"n_candidates": n_candidates, "top_k": top_k, "aggregate": aggregate, "screened": use_screen}
    start = time.perf_counter()
    bar = tqdm(total=n_candidates, desc="simulate", unit="cand", unit_scale=True, disable=not progress or None, leave=False)
    scorer = screen if use_screen else model
    # Score chunk i on a worker thread while chunk i + 1 is drawn: the boosters predict in C
    # without the GIL, so drawing and scoring overlap (at most 3 chunks alive, and the blocks
    # the draw threads hold ahead).
    with bar, ThreadPoolExecutor(max_workers=1) as worker:
        pending = None
        for chunk in iter_candidates(space, n_candidates, chunk_rows=chunk_rows, seed=seed, stats=stats,
                                     threads=draw_threads):
            scored = worker.submit(scorer.predict, chunk)
            if pending is not None:
                pool.offer(pending[0].result(), pending[1])
            pending = (scored, chunk)
            bar.update(len(chunk))
        if pending is not None:
            pool.offer(pending[0].result(), pending[1])
    stats["stream_s"] = time.perf_counter() - start

    if use_screen:
        best = _rescore(model, pool, top_k=top_k, keep=screen_keep, stats=stats)
    else:
        best = pool
    top_predicted, top, _ = best.sorted()
    top = top.astype(np.float64)
    weights, note = aggregate_top(top, aggregate, space)
    stats["aggregate_note"] = note
    stats["acceptance"] = stats["passed"] / max(stats["drawn"], 1)
    stats["seconds"] = time.perf_counter() - start
    predicted = float(model.predict(weights[None, :])[0])
    return SimulationResult(weights, predicted, top, top_predicted, stats)


def _rescore(model, pool: _Best, *, top_k: int, keep: int, stats: dict) -> _Best:
    """Re-score the screened pool best-first, block by block, until the top k has settled."""
    start = time.perf_counter()
    _, rows, _ = pool.sorted()
    best = _Best(top_k, rows.shape[1])
    converged, scored = False, 0
    for begin in range(0, len(rows), keep):
        block = rows[begin : begin + keep]
        ranks = np.arange(begin, begin + len(block))
        best.offer(model.predict(block), block, ranks)
        scored += len(block)
        if best.tags.max() < CONVERGED_SHARE * scored:
            converged = True
            break
    stats.update(
        screen_keep=keep,
        screen_pool=len(rows),
        rescored=scored,
        screen_converged=converged,
        worst_screen_rank_in_top_k=int(best.tags.max()),
        rescore_s=time.perf_counter() - start,
    )
    return best
