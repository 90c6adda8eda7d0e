"""What a valid setting is, for regmix-fit and regmix-propose (see `regmix.settings_check`).

The names of regressors, objectives, aggregates and acquisitions are spelled out here rather
than imported: importing the modules that define them loads LightGBM and XGBoost, and these
rules run when the config is composed, before any work (tests/test_settings_rules.py keeps
the two spellings equal).
"""

from __future__ import annotations

from regmix.metrics import METRIC_GOALS
from regmix.settings_check import OneOf, Range, Relation, under
from regmix.settings_rules import SAMPLER

REGRESSOR_NAMES = ("ridge", "lightgbm", "xgboost")
OBJECTIVES = ("upper", "mean", "driver")
AGGREGATES = ("median", "mean")
ACQUISITIONS = ("thompson", "lcb", "random")
SOURCE_KINDS = ("local", "csv", "wandb")
DATASETS = ("regmix-paper",)
TRACKER_MODES = ("disabled", "offline", "online")
#: W&B's metric.goal words (a light import: no regressor library behind it).
TARGET_GOALS = METRIC_GOALS

WANDB_SOURCE = (
    Range("per_page", 1),
    Range("timeout_s", 1),
    Range("retries", 1, note=" (wandb-core reads 0 as 'unset' and retries 20 times)"),
    Range("retry_wait_s", 0),
    Range("retry_wait_max_s", 0),
    Range("pull_attempts", 1),
    Relation(("retry_wait_s", "retry_wait_max_s"), lambda lo, hi: hi >= lo,
             "retry_wait_max_s must be >= retry_wait_s"),
)

SOURCE = (
    OneOf("kind", SOURCE_KINDS, note=" (e.g. source=local)"),
    OneOf("dataset", DATASETS, optional=True, note=" (or null: the tables named by mixtures/losses)"),
    Range("tokens", 1, optional=True),
    *under("wandb", WANDB_SOURCE),
)

#: The test source may also be 'none' (no held-out runs).
TEST_SOURCE = (OneOf("kind", (*SOURCE_KINDS, "none")), *SOURCE[1:])

_FRACTION = dict(low=0, high=1, low_open=True)

LIGHTGBM = (
    Range("n_estimators", 1),
    Range("learning_rate", 0, low_open=True),
    Range("num_leaves", 2),
    Range("min_child_samples", 1, optional=True, note="; null = scaled with the runs"),
    Range("subsample", **_FRACTION),
    Range("colsample_bytree", **_FRACTION),
    Range("reg_lambda", 0),
    Range("n_jobs", -1),
)

XGBOOST = (
    Range("n_estimators", 1),
    Range("learning_rate", 0, low_open=True),
    Range("max_depth", 1),
    Range("min_child_weight", 0),
    Range("subsample", **_FRACTION),
    Range("colsample_bytree", **_FRACTION),
    Range("reg_lambda", 0),
    Range("n_jobs", -1),
)

RIDGE = (
    Range("alpha_min", 0, low_open=True),
    Range("alpha_max", 0, low_open=True),
    Range("n_alphas", 1),
    Relation(("alpha_min", "alpha_max"), lambda lo, hi: hi >= lo, "alpha_max must be >= alpha_min"),
)

REGRESSORS = (
    OneOf("compare", REGRESSOR_NAMES),
    Relation(("compare",), lambda names: len(names) > 0, "compare at least one regressor"),
    Relation(("drive", "compare"), lambda d, names: d in ("auto", "best_oof", "rule", *names),
             "drive is auto, best_oof, rule or one of the compared regressors"),
    Range("min_runs_for_trees", 1),
    Range("folds", 2, note=" (default 5)"),
    Range("seed", 0),
    Range("n_jobs", 0, note="; 0 = every core"),
    *under("ridge", RIDGE),
    *under("lightgbm", LIGHTGBM),
    *under("xgboost", XGBOOST),
    *under("screen", LIGHTGBM),
)

SIMULATION = (
    Range("n_candidates", 1, note=" (the paper: 1,000,000)"),
    Range("top_k", 1, note=" (the paper: 100)"),
    Relation(("top_k", "n_candidates"), lambda k, n: k <= n, "top_k must not exceed n_candidates"),
    OneOf("aggregate", AGGREGATES),
    Range("seed", 0),
    Range("chunk_size", 1),
    Range("chunk_bytes", 1),
    Range("screen_keep", 0, note="; 0 = no screen"),
    Range("screen_blocks", 1),
    Range("predict_threads", 0, note="; 0 = every core"),
    Range("draw_threads", 0, note="; 0 = every core, up to 8"),
    Range("token_budget", 0, low_open=True, optional=True, note=" (tokens of the target run)"),
    Range("max_epochs", 0, low_open=True),
    *under("sampler", SAMPLER),
)

CHOICE = (
    OneOf("objective", OBJECTIVES),
    Range("quantile", 0, 1, low_open=True, high_open=True),
    Range("pool", 1),
    Range("trust_factor", 0, low_open=True),
    Range("around_runs", 0, note="; 0 = the generator's draws only"),
    Range("l1_penalty", 0, note=" (nats per unit of L1 distance)"),
    Range("kl_penalty", 0, note=" (nats per nat of KL)"),
    Range("coverage", 0, 1, low_open=True, high_open=True),
    Range("learning_curve_repeats", 1),
    Range("min_probability", 0, 1, low_open=True, high_open=True),
    Range("min_spearman", -1, 1),
)

FIT_TRACKER = (OneOf("mode", TRACKER_MODES),)

FIT_APP = (
    *under("source", SOURCE),
    *under("test", TEST_SOURCE),
    *under("regressor", REGRESSORS),
    *under("simulation", SIMULATION),
    *under("choice", CHOICE),
    *under("tracker", FIT_TRACKER),
    Range("weight_decimals", 1, 9, note=" (4 = a 1e-4 grid)"),
    OneOf("target_goal", TARGET_GOALS, optional=True, note=" (W&B's metric.goal; null = the sweeps' recorded goal)"),
)

ACQUISITION = (
    OneOf("kind", ACQUISITIONS),
    Range("kappa", 0),
    Range("concentration", 0, low_open=True),
    Range("min_distance", 0, 2, note=" (L1 between mixtures)"),
    Range("n_bags", 2, note=": an ensemble needs at least 2 members (default 8)"),
    OneOf("regressor", REGRESSOR_NAMES),
    Range("chunk_rows", 1),
)

PROPOSE_APP = (
    *under("source", SOURCE),
    *under("regressor", REGRESSORS),
    *under("simulation", SIMULATION),
    *under("acquisition", ACQUISITION),
    Range("k", 1, note=" (e.g. k=32)"),
    Range("n_candidates", 1),
    Relation(("k", "n_candidates", "candidates"), lambda k, n, pool: pool is not None or n >= k,
             "draw at least k candidates (n_candidates >= k), or give a pool (candidates=<csv>)", skip_none=False),
    Range("seed", 0),
    Range("weight_decimals", 1, 9, note=" (4 = a 1e-4 grid)"),
    OneOf("target_goal", TARGET_GOALS, optional=True, note=" (W&B's metric.goal; null = the sweeps' recorded goal)"),
)
