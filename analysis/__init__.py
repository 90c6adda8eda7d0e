"""The analysis side of regmix: from finished proxy runs to the mixture for the target run.

Stages, each a module with one job (all torch-free; `regmix-fit` runs them in order):

- `sources`      runs from local run records, CSV tables or the W&B API, as one raw table;
- `paper_data`   the paper's released runs, fetched once, verified (sha256) and cached;
- `runs_table`   validation: finished runs only, named domains, finite losses, valid weights,
                 duplicate mixtures merged (their spread kept), model sizes/corpora not mixed;
- `target`       the loss to minimise: one domain or a weighted combination;
- `regressors`   scikit-learn estimators (ridge, LightGBM, XGBoost) keyed by domain name;
- `compare`      out-of-fold (and held-out test) Spearman, Pearson, MSE, R2; which one drives;
- `candidates`   RegMix's generator around the token prior, in float32 chunks, within caps/minimums;
- `simulate`     candidates screened and scored in chunks, top-k aggregated;
- `emit`         the chosen mixture as a Hydra config entry (conf/mixture/<out>.yaml);
- `result`       what a fit produced (`FitResult`) and the tables report, plots and W&B share;
- `status`     how strongly the evidence backs the emitted mixture (an enum);
- `report`, `plots`  markdown, CSV and PNG figures; `fit.run_fit` ties it together as a list of
                 stages (`fit_load`, `fit_model`, `fit_choose`, `fit_decide`, `fit_provenance`,
                 `fit_emit`), `cli` is regmix-fit.
"""
