"""Typed config of `regmix-fit`: every default lives here; YAML under conf/ only overrides.

Library code receives these plain dataclasses (`OmegaConf.to_object`), never a `DictConfig`.
Torch-free, like the whole analysis side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from analysis.sources.wandb_api import WandbSourceConfig
from regmix.config import SamplerConfig

#: Mappings users set on the command line ('simulation.caps={pile_cc: 0.9}') are typed Any
#: with a None default: Hydra merges an override into a typed Dict node, and neither an empty
#: struct dict nor a None Dict accepts new keys that way; an Any node takes the whole mapping.
#: The code validates their contents (names against the domains, values as numbers).
CLI_DICTS = ("source.rename", "simulation.prior", "simulation.caps", "simulation.minimums", "simulation.domain_tokens")


@dataclass
class SourceConfig:
    """Where the runs come from: `local` run records, `csv` tables, or the `wandb` API."""

    kind: str = "local"
    """'local' (result.json records under `root`), 'csv' (`mixtures` + `losses`), 'wandb';
    'none' for no test source."""
    label: Optional[str] = None
    """Name of the source in reports and provenance; None = `kind`."""
    root: Optional[str] = None
    """local: folder searched recursively for run records; None = `<runs_dir>/<sweep>` of each
    sweep the command names (the training app's out_dir)."""
    dataset: Optional[str] = None
    """csv: a released dataset whose files `mixtures` and `losses` name ('regmix-paper': the
    paper's runs, fetched into the cache on first use; see analysis.paper_data). None = paths."""
    mixtures: Optional[str] = None
    """csv: mixtures table (an index column, then one weight column per domain)."""
    losses: Optional[str] = None
    """csv: losses table (the same index column, then one loss column per domain)."""
    index: str = "index"
    """csv: the column both tables are joined on."""
    weight_prefix: str = ""
    """csv: stripped from weight column names to give domain names (e.g. 'train_the_pile_')."""
    weight_suffix: str = ""
    loss_prefix: str = ""
    """csv: stripped from loss column names (e.g. 'metric/the_pile_'); columns without it are ignored."""
    loss_suffix: str = ""
    """csv: e.g. '_val_loss'."""
    rename: Any = None
    """csv: domain renames applied after stripping, {old: new} (typed Any: see CLI_DICTS)."""
    model: Optional[str] = None
    """csv: model size of every run (tables carry none); used to refuse mixing sizes."""
    tokens: Optional[int] = None
    """csv: training tokens of every run."""
    corpus: Optional[str] = None
    """csv: corpus identity of every run."""
    wandb: WandbSourceConfig = field(default_factory=WandbSourceConfig)
    """wandb: which runs to pull."""


@dataclass
class RidgeConfig:
    """Linear regression on the weights; the L2 strength is chosen by efficient leave-one-out CV."""

    alpha_min: float = 1e-6
    alpha_max: float = 1e3
    n_alphas: int = 28
    """Alphas tried: n_alphas log-spaced values in [alpha_min, alpha_max]."""


@dataclass
class LightGBMConfig:
    """Gradient-boosted trees (LightGBM). Defaults: the paper's recipe (lr 0.01, 1000 rounds)."""

    n_estimators: int = 1000
    learning_rate: float = 0.01
    num_leaves: int = 31
    min_child_samples: Optional[int] = None
    """Fewest runs in a leaf; None = scaled with the runs (n // 20, within [2, 20]): LightGBM's
    default 20 leaves a handful of runs unsplittable and the model predicts a constant."""
    subsample: float = 1.0
    """Row fraction per tree (< 1 turns bagging on; needs `random_state`)."""
    colsample_bytree: float = 1.0
    reg_lambda: float = 0.0
    n_jobs: int = 1
    """Threads for fitting: one is fastest on a few hundred runs (thread start-up dominates)."""


@dataclass
class XGBoostConfig:
    """Gradient-boosted trees (XGBoost, histogram method)."""

    n_estimators: int = 500
    learning_rate: float = 0.03
    max_depth: int = 4
    min_child_weight: float = 1.0
    """Fewest runs (hessian weight) in a leaf; XGBoost's default already suits small sweeps."""
    subsample: float = 0.8
    colsample_bytree: float = 1.0
    reg_lambda: float = 1.0
    n_jobs: int = 1


@dataclass
class RegressorsConfig:
    """Which regressors are compared, how, and which one drives the simulation."""

    compare: List[str] = field(default_factory=lambda: ["ridge", "lightgbm", "xgboost"])
    """Regressors scored out of fold (and on the test source when one is given)."""
    drive: str = "auto"
    """The regressor whose predictions pick the mixture: a name from `compare`, or 'auto' =
    'best_oof': the highest out-of-fold Spearman on the runs at hand (docs/decisions.md: no
    fixed run-count rule held on a second corpus). 'rule' keeps the old rule (LightGBM from
    `min_runs_for_trees` runs, ridge below)."""
    min_runs_for_trees: int = 128
    """drive=rule only: fewest (merged) runs for a tree model to drive."""
    folds: int = 5
    """K of the K-fold out-of-fold comparison (fewer when there are fewer runs). The driver's K
    fold models and its out-of-fold residuals are also the fit's predictive distribution
    (analysis.predictive) and its members."""
    seed: int = 0
    """Fold split and the random_state of every regressor."""
    n_jobs: int = 0
    """Threads fitting folds side by side; 0 = every core."""
    ridge: RidgeConfig = field(default_factory=RidgeConfig)
    lightgbm: LightGBMConfig = field(default_factory=LightGBMConfig)
    xgboost: XGBoostConfig = field(default_factory=XGBoostConfig)
    screen: LightGBMConfig = field(
        default_factory=lambda: LightGBMConfig(n_estimators=50, learning_rate=0.1)
    )
    """The cheap model that screens simulation candidates before the driving regressor
    re-scores the best of them (see SimulationConfig.screen_keep). On the paper's data its
    top 1% held all of the 1000-tree model's top 100 of 1M candidates."""


@dataclass
class SimulationConfig:
    """Candidates drawn from the prior, scored by the driving regressor, the top k aggregated."""

    n_candidates: int = 1_000_000
    """Candidates scored (drawn until this many meet the caps). Paper: 1,000,000."""
    top_k: int = 100
    """Best candidates aggregated into the chosen mixture. Paper: 100."""
    aggregate: str = "median"
    """'median' (per domain, renormalised within the caps) or 'mean' (the paper). The mean
    gives every small weight of every top candidate to the average; tree models split at
    tiny weights, so it can land in worse leaves than any of the candidates it averages."""
    seed: int = 0
    chunk_size: int = 131_072
    """Candidates per chunk (fewer with many domains: see chunk_bytes)."""
    chunk_bytes: int = 32 * 2**20
    """Bound on one chunk's weights (bytes): memory stays flat whatever n_candidates is."""
    screen_keep: int = 10_000
    """Candidates the screen model passes per block to the driving regressor; 0 = no screen
    (the driving regressor predicts every candidate, as the paper's recipe does)."""
    screen_blocks: int = 4
    """Blocks of `screen_keep` held back: re-scoring goes on block by block while the last
    block still contributes to the top k (the screen's safety margin)."""
    predict_threads: int = 0
    """Threads for predicting candidates; 0 = every core."""
    draw_threads: int = 0
    """Threads for drawing candidates; 0 = every core, up to 8. The candidates are the same for any number."""
    prior: Any = None
    """Token prior of the runs' corpus, {domain: share or token count}: candidates are drawn
    around it and capped at cap_multiplier x it. None = `sampler.prior` if set, else the prior
    the runs recorded (local records carry their corpus token counts), else uniform (warned)."""
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """RegMix's generator (tempered prior, log-spaced strengths, caps = cap_multiplier * prior)."""
    caps: Any = None
    """Largest weight per domain, {domain: weight} (on top of the sampler's caps)."""
    minimums: Any = None
    """Smallest weight per domain, {domain: weight}."""
    token_budget: Optional[float] = None
    """Tokens of the target run. With it, no domain gets more than max_epochs x its available
    tokens: weight_i <= max_epochs * tokens_i / token_budget (a cap, shown in provenance)."""
    max_epochs: float = 4.0
    """Most passes over one domain's tokens in the target run (used with token_budget)."""
    domain_tokens: Any = None
    """Available tokens per domain, {domain: tokens}; None = the token counts the runs recorded
    (local run records carry their corpus meta's train tokens)."""


@dataclass
class ChoiceConfig:
    """How the simulated candidates become the emitted mixture, and when it is not trusted."""

    objective: str = "upper"
    """'upper': the `quantile` of the members' predicted loss (the driver's K fold models;
    risk-aware: a candidate that only some members like ranks low); 'mean': the members' mean;
    'driver': the driving regressor fitted on all runs (the paper's recipe)."""
    quantile: float = 0.8
    pool: int = 2000
    """Best candidates by the driving regressor that the members re-score (>= top_k)."""
    trust_radius: Optional[float] = None
    """Largest L1 distance from a candidate to its nearest trained run; None = `trust_factor`
    x the runs' median nearest-neighbour L1 distance; a negative value turns the region off."""
    trust_factor: float = 2.0
    around_runs: int = 2000
    """Candidates drawn around the best trained runs (Dirichlet draws centred on them, the
    centres included), added to the pool when the trust region holds fewer than top_k of the
    generator's, so that the region is never empty; 0 = the generator's draws only."""
    l1_penalty: float = 0.0
    """Nats added per unit of L1 distance from the prior (a pull toward the prior)."""
    kl_penalty: float = 0.0
    """Nats added per nat of KL(w || prior)."""
    coverage: float = 0.8
    """Central coverage of the reported intervals."""
    min_probability: float = 0.5
    """Below this P(chosen beats the prior / the best run) the choice is shrunk: by default when a
    new run there is more likely worse than better ("unlikely to beat"); an even bet is not shrunk.
    0.7 shrank the demo's choice to its best proxy (a near-tie for the trees), which then lost to
    uniform at target scale (docs/decisions.md)."""
    min_spearman: float = 0.5
    """Below this out-of-fold Spearman of the driving regressor the choice falls back."""
    shrink: bool = True
    """With weak evidence, emit a point toward the best run or the prior (and say so)."""
    learning_curve: bool = True
    """Scale the out-of-fold residuals (fold models saw (K-1)/K of the runs) to what the fit on all
    runs misses, from more fits of the driver on halves of the runs (analysis.predictive.
    learning_curve_scale). Off: the residuals as measured, which over-cover (82% of unseen runs
    inside 80% intervals on the paper's runs, docs/decisions.md)."""
    learning_curve_repeats: int = 3
    """Random halvings behind the learning curve (two fits on half the runs each; on the paper's
    runs and 2 cores, three cost 0.36 s more than one): their mean squared residual is averaged.
    One halving is a noisy draw (the scale's s.d. over random re-splits of the paper's runs: 0.024
    from one, 0.014 from three; the mean coverage barely moves, docs/decisions.md)."""
    noise_by_level: bool = False
    """Size the run noise at each mixture's predicted loss (analysis.noise_level) where the runs
    show a trend (likelihood ratio test, p < 0.05; 20 runs at least). The trend is measured and
    reported either way. On: better calibrated on held-out runs (on the paper's runs 80% intervals
    hold 77% / 81% of the lowest / highest-loss quarter, against 94% / 62% with one spread), but the
    chosen mixture, predicted below every run, gets the quietest runs' spread where the regressor's
    own error is least measured: in the demo P(chosen beats the best proxy) rose from 67% to 88%
    and the claim failed. Off by default for that (docs/decisions.md)."""
    calibrate: bool = True
    """Measure the calibration of the intervals and of P(a beats b) on runs the fit never saw
    (the test source when given, else the training runs fold by fold); no extra fit."""


@dataclass
class FitTrackerConfig:
    """The fit logged to W&B as one run of job type `analysis` beside the proxy runs it used.

    Off unless asked (`tracker=offline|online`, as in regmix-train): a plain fit touches no W&B.
    None in project / entity / group means "where the proxies are" (see analysis.tracking)."""

    mode: str = "disabled"
    """'disabled' (no W&B run), 'offline' (no account; `wandb sync` the printed folder later)
    or 'online' (needs WANDB_API_KEY or `wandb login`)."""
    project: Optional[str] = None
    """W&B project; None = source.wandb.project for source=wandb, else 'regmix' (regmix-train's)."""
    entity: Optional[str] = None
    """W&B entity; None = source.wandb.entity for source=wandb, else the API key's default."""
    group: Optional[str] = None
    """W&B group; None = the proxies' group: source.wandb.group, else the sweep name the runs
    recorded (regmix-train logs every proxy of a sweep in group `${sweep}`), else `sweep`."""
    tags: List[str] = field(default_factory=list)
    """Extra tags; the run is always tagged 'regmix-fit' (and 'sweep-<id>' for a W&B sweep)."""
    job_type: str = "analysis"
    name: Optional[str] = None
    """Run name; None = 'fit-<emitted mixture name>'."""
    dir: Optional[str] = None
    """Folder for the run's local files (<dir>/wandb/...); None = report_dir."""


@dataclass
class FitAppConfig:
    """`regmix-fit`: proxy runs -> compared regressors -> simulated candidates -> emitted mixture."""

    source: SourceConfig = field(default_factory=SourceConfig)
    test: SourceConfig = field(default_factory=lambda: SourceConfig(kind="none"))
    """Held-out runs the fitted regressors are also scored on (never used for fitting);
    kind 'none' = no test source (e.g. test.kind=local test.root=runs/other)."""
    sweep: Any = "default"
    """Sweep name, or a list of them: the rounds of an active search ('sweep=[r0,r1]'), read
    as one table (repeated mixtures merged) with the runs of each round counted. The local
    source reads <runs_dir>/<sweep>/ of each (typed Any: a name or a list)."""
    runs_dir: str = "runs"
    """Where regmix-train put the runs of each sweep (its out_dir is runs/<sweep>)."""
    name: str = "${regmix_sweeps:${sweep}}"
    """Name of this analysis: report folder and default emitted name; default the sweep's
    name ('r0-r1' for several)."""
    target: Any = None
    """Metric to optimise: a domain's loss (target=pile_cc) or any key the runs logged (a W&B
    summary key, a CSV column), a list of them (equal weights) or a mapping key -> weight
    ('target={pile_cc: 3, wikipedia_en: 1}'); weights are normalised, so the target is a
    weighted mean. None = the target the
    sweeps recorded in <sweeps_dir>/<sweep>.sampler.json (refused if they differ)."""
    target_goal: Optional[str] = None
    """'minimize' (losses; the default) or 'maximize' (e.g. an accuracy): W&B's metric.goal words,
    one goal for every key of a weighted target. None = the goal the sweeps recorded, else minimize."""
    sweeps_dir: str = "sweeps"
    """Where the sweeps' files are (regmix-sample's and regmix-propose's out_dir): their
    recorded target is used when `target` is not given."""
    allow_mixed: bool = False
    """Accept runs of different model sizes, corpora or token budgets in one table."""
    regressor: RegressorsConfig = field(default_factory=RegressorsConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    choice: ChoiceConfig = field(default_factory=ChoiceConfig)
    out: Optional[str] = None
    """Name of the emitted mixture (mixture=<out> in regmix-train); None = <name>_<target>."""
    mixture_dir: Optional[str] = None
    """Where the mixture is emitted; None = the project's conf/mixture (where regmix-train looks)."""
    overwrite: bool = False
    """Replace an emitted mixture of the same name (refused by default)."""
    weight_decimals: int = 4
    """Emitted weights are rounded to this many decimals (largest remainder: they sum to 1)."""
    report_dir: Optional[str] = None
    """Report folder: report.md, CSV tables, PNG plots (and nothing in outputs/); None =
    reports/<emitted mixture name>/, one folder per target, so a second fit of the same sweep
    for another target keeps the first's report."""
    plots: bool = True
    tracker: FitTrackerConfig = field(default_factory=FitTrackerConfig)
    """W&B logging of the results (tables, charts, summary, the emitted mixture as an artifact)."""


def register_sweeps_resolver() -> None:
    """`${regmix_sweeps:${sweep}}`: a sweep name, or several joined as 'r0-r1' (idempotent)."""
    from omegaconf import OmegaConf

    from analysis.rounds import joined_name

    if not OmegaConf.has_resolver("regmix_sweeps"):
        OmegaConf.register_new_resolver("regmix_sweeps", lambda sweep: joined_name(_plain(sweep)))


def _plain(value):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def register_fit_configs() -> None:
    """Register the schema with Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    register_sweeps_resolver()
    cs = ConfigStore.instance()
    cs.store(name="fit_schema", node=FitAppConfig)
