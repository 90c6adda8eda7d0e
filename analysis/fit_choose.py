"""The fit's choice stage: simulate candidates with the driving regressor, then (unless the
paper's plain recipe is asked for) re-score a pool of them, with candidates drawn around the best
runs added, by the members (the driver's fold models), within the trust region and the
penalties, and aggregate the top k into the simulated choice."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from analysis.candidates import around_runs, draw_threads
from analysis.choice import Penalized, auto_radius, choose, nearest_l1
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
    return judging_radius(cfg, X)


def judging_radius(cfg: FitAppConfig, X: np.ndarray) -> float:
    """The radius the verdict judges by: the trust radius, or where the user opted out of the
    region, the one the runs' spacing gives (`trust_factor` x median nearest-run L1)."""
    c = cfg.choice
    if c.trust_radius is not None and c.trust_radius >= 0:
        return float(c.trust_radius)
    return auto_radius(X, c.trust_factor)


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
        pool, scores = sim.top, sim.top_predicted
        around = None
        X = runs.X.to_numpy()
        if radius is not None and (nearest_l1(pool, X) <= radius).sum() < s.top_k:
            # Candidates where the runs are: the generator's draws may all lie beyond the region
            # (a swarm sampled by another scheme, no token prior). Only then: near the runs the
            # members' upper quantile favours the runs themselves (most fold models saw them and
            # learned their observed, luckiest, losses), so draws around them would crowd out a
            # better generator candidate that the region already holds.
            around = around_runs(runs.space, X, runs.y, c.around_runs, seed=s.seed)
            scorer = Penalized(models.model, runs.space.prior, l1=c.l1_penalty, kl=c.kl_penalty)
            pool, scores = np.concatenate([pool, around]), np.concatenate([scores, scorer.predict(around)])
        picked = choose(
            pool, models.predictive, runs.X.to_numpy(), runs.space, top_k=s.top_k, aggregate=s.aggregate,
            objective=c.objective, quantile=c.quantile, radius=radius, l1_penalty=c.l1_penalty,
            kl_penalty=c.kl_penalty, driver_scores=scores,
        )
        picked.stats["around_runs"] = 0 if around is None else len(around)
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
        draw_threads=draw_threads(s.draw_threads),
        progress=progress,
    )
