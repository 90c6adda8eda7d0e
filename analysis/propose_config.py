"""Typed config of `regmix-propose`: every default lives here; YAML under conf/ only overrides.

Shares the run source, the regressors' hyperparameters and the simulation's candidate space
(prior, sampler, caps, minimums) with `regmix-fit` (analysis.config), so a round is proposed
under the same constraints as the fit that will follow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from analysis.config import RegressorsConfig, SimulationConfig, SourceConfig


@dataclass
class AcquisitionConfig:
    """How the next batch is chosen from the ensemble's members (analysis.acquisition)."""

    kind: str = "thompson"
    """'thompson' (each slot takes the best candidate of a random blend of the ensemble's
    members: exploits where the members agree the loss is low, explores where they disagree),
    'lcb' (lowest mean - kappa * sd, greedy) or 'random' (a baseline)."""
    kappa: float = 2.0
    """lcb: member standard deviations subtracted from the mean (the paper-data replay's floor used 2)."""
    concentration: float = 0.3
    """thompson: Dirichlet concentration of the member blend per slot; small = close to one
    member's argmin (more spread), large = close to the mean's argmin (more exploitation)."""
    min_distance: float = 0.0
    """Smallest L1 distance between two proposals, and between a proposal and a trained mixture
    (weights sum to 1, so L1 is in [0, 2]); 0 = only exact repeats are refused."""
    n_bags: int = 8
    """Ensemble members (bootstrap resamples of the runs)."""
    regressor: str = "lightgbm"
    """The estimator every member is (a name from regressor.compare's choices: ridge,
    lightgbm, xgboost); LightGBM is the paper's regressor."""
    chunk_rows: int = 65_536
    """Candidates predicted at a time (memory: n_bags x chunk_rows floats)."""


@dataclass
class ProposeAppConfig:
    """`regmix-propose`: finished runs of one or more sweeps -> the next sweep of `k` mixtures."""

    source: SourceConfig = field(default_factory=SourceConfig)
    sweep: Any = "default"
    """The sweep(s) learned from: a name or a list of names ('sweep=[r0,r1]'); the local source
    reads <runs_dir>/<sweep>/ of each, and the first one's spec lends the new sweep its fixed items."""
    runs_dir: str = "runs"
    """Where regmix-train put each sweep's runs."""
    out: Optional[str] = None
    """Name of the new sweep (required): writes <out_dir>/<out>.mixtures.csv, .sampler.json, .yaml."""
    k: int = 32
    """Mixtures in the new sweep (the batch size of the round)."""
    target: Any = None
    """Loss to minimise (as in regmix-fit); None = the target the parent sweeps recorded in
    <out_dir>/<sweep>.sampler.json (refused if they differ). Recorded in the new sweep's record."""
    target_goal: Optional[str] = None
    """'minimize' (losses; the default) or 'maximize' (e.g. an accuracy): W&B's metric.goal words,
    one goal for every key of a weighted target. None = the goal the sweeps recorded, else minimize."""
    candidates: Optional[str] = None
    """Pool mode: a mixtures table (CSV: `index`, then one weight column per domain, the runs'
    domains exactly) to choose the batch from; None = draw candidates with RegMix's generator
    around the prior (simulation.*)."""
    candidates_prefix: str = ""
    """Stripped from the pool's weight column names (e.g. 'train_the_pile_')."""
    n_candidates: int = 20_000
    """Generator mode: candidates drawn and scored by every member."""
    seed: int = 0
    """Ensemble resamples, candidate draws and the acquisition's randomness: same seed and
    same runs give the same proposal."""
    allow_mixed: bool = False
    """Accept runs of different model sizes, corpora or token budgets (as in regmix-fit)."""
    acquisition: AcquisitionConfig = field(default_factory=AcquisitionConfig)
    regressor: RegressorsConfig = field(default_factory=RegressorsConfig)
    """Hyperparameters of the member estimator (regressor.<acquisition.regressor>)."""
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    """Generator mode: prior, sampler settings, caps and minimums of the candidates (as in regmix-fit)."""
    weight_decimals: int = 4
    """Proposed weights are rounded to this many decimals (they sum to 1)."""
    fixed: Optional[List[str]] = None
    """Fixed items of the new sweep's command; None = those of the first parent sweep's spec."""
    out_dir: str = "sweeps"
    """Where the sweep files go (regmix-train reads sweeps/<sweep>.mixtures.csv by default)."""
    overwrite: bool = False
    """Replace a sweep of the same name (refused by default: runs may depend on it)."""


def register_propose_configs() -> None:
    """Register the schema with Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    from analysis.config import register_sweeps_resolver

    register_sweeps_resolver()
    ConfigStore.instance().store(name="propose_schema", node=ProposeAppConfig)
