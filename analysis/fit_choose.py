"""The fit's choice stage: simulate candidates with the driving regressor, then (unless the
paper's plain recipe is asked for) re-score a pool of them by the members, within the trust
region and the penalties, and aggregate the top k into the simulated choice."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from analysis.choice import Penalized, auto_radius, choose
from analysis.config import FitAppConfig
from analysis.fit_load import LoadedRuns
from analysis.fit_model import Models
from analysis.regressors import build_screen, is_linear
from analysis.simulate import SimulationResult, simulate


@dataclass
class Choice:
    """What the choice stage hands on."""

    sim: SimulationResult
    """The top candidates (re-scored when the members chose) and their aggregate."""
    stats: dict
    """How the choice was made: objective, trust radius, pool, notes."""

    @property
    def simulated(self) -> np.ndarray:
        """The simulated choice, renormalised to sum 1 (aggregates already meet the bounds)."""
        w = np.asarray(self.sim.weights, dtype=np.float64)
        return w / w.sum()


def candidate_chunk_rows(cfg: FitAppConfig, n_domains: int) -> int:
    """Rows per candidate chunk: `chunk_size`, fewer when `chunk_bytes` would be exceeded."""
    return int(max(1024, min(cfg.simulation.chunk_size, cfg.simulation.chunk_bytes // (8 * n_domains))))


def trust_radius(cfg: FitAppConfig, X: np.ndarray) -> float | None:
    """The L1 radius around the runs the choice stays in; None when the user opted out (< 0)."""
    c = cfg.choice
    if c.trust_radius is not None and c.trust_radius < 0:
        return None
    return c.trust_radius if c.trust_radius is not None else auto_radius(X, c.trust_factor)


def choose_stage(cfg: FitAppConfig, runs: LoadedRuns, models: Models, timings: dict[str, float],
                 warnings: list[str], *, progress: bool) -> Choice:
    """Simulate and choose; times `simulate_s`."""
    clock = time.perf_counter()
    c, s = cfg.choice, cfg.simulation
    radius = trust_radius(cfg, runs.X.to_numpy())
    # The paper's recipe (the driver's own top k, no region, no penalty) needs no re-scoring.
    rescore = not (c.objective == "driver" and radius is None and not c.l1_penalty and not c.kl_penalty)
    sim = _simulate(cfg, runs, models, progress=progress,
                    pool_k=min(max(c.pool, s.top_k), s.n_candidates) if rescore else s.top_k)
    stats: dict = {"objective": "the driving regressor's prediction (the paper's recipe)", "trust_radius_l1": None}
    if rescore:
        picked = choose(
            sim.top, models.ensemble, runs.X.to_numpy(), runs.space, top_k=s.top_k, aggregate=s.aggregate,
            objective=c.objective, quantile=c.quantile, radius=radius, l1_penalty=c.l1_penalty,
            kl_penalty=c.kl_penalty, driver_scores=sim.top_predicted,
        )
        sim.weights, sim.top, sim.top_predicted = picked.weights, picked.top, models.model.predict(picked.top)
        sim.stats["aggregate_note"] = picked.stats.pop("aggregate_note")
        sim.stats["top_k"] = s.top_k
        stats = picked.stats
        if "trust_note" in picked.stats:
            warnings.append(picked.stats["trust_note"])
    timings["simulate_s"] = time.perf_counter() - clock
    return Choice(sim, stats)


def _simulate(cfg: FitAppConfig, runs: LoadedRuns, models: Models, *, progress: bool, pool_k: int) -> SimulationResult:
    """The driver's (penalised) top `pool_k` candidates, screened by a cheap model for trees."""
    c, s = cfg.choice, cfg.simulation
    screen = None
    if not is_linear(models.drive) and s.screen_keep > 0:
        screen = build_screen(cfg.regressor, seed=cfg.regressor.seed, predict_threads=s.predict_threads).fit(runs.X, runs.y)
    penalised = bool(c.l1_penalty or c.kl_penalty)
    scorer = Penalized(models.model, runs.space.prior, l1=c.l1_penalty, kl=c.kl_penalty) if penalised else models.model
    if screen is not None and penalised:
        screen = Penalized(screen, runs.space.prior, l1=c.l1_penalty, kl=c.kl_penalty)
    return simulate(
        scorer,
        runs.space,
        n_candidates=s.n_candidates,
        top_k=pool_k,
        aggregate=s.aggregate,
        seed=s.seed,
        chunk_rows=candidate_chunk_rows(cfg, len(runs.domains)),
        screen=screen,
        screen_keep=s.screen_keep,
        screen_blocks=s.screen_blocks,
        progress=progress,
    )
