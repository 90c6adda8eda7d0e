"""Do the fit's intervals and probabilities mean what they say? Scored on held-out runs.

Composes regmix-fit's own config (default `source=paper`: fit on the paper's 512 training runs,
score its 256 released test runs; any regmix-fit override works, e.g. `source=csv ...
test.kind=csv test.mixtures=... test.losses=...`), runs the fit, and on the test runs reports:

- coverage@50/80/95: the share of test runs whose observed target loss lies inside the fit's
  50%, 80% and 95% predictive intervals (calibrated: about 0.50, 0.80, 0.95);
- for every pair of test runs (a, b), the fit's P(a beats b) against the truth (a's observed
  loss is lower): the Brier score and the expected calibration error over 10 equal-width bins;
- a reliability plot (predicted P vs observed frequency per bin), written beside the report;
- the 80% intervals' coverage among the lowest and the highest quarter of predicted losses (the
  chosen mixture sits at the low end; analysis.noise_level sizes the spread by level);
- the test runs' squared error against what the intervals assume: below 1 they are quieter than
  the training runs (not exchangeable with them), and every interval holds more than it says
  (`benchmarks/run_noise.py` looks for why).

    python benchmarks/calibration.py [regmix-fit overrides]

The last line is exactly
`calibration: coverage@50=<f> coverage@80=<f> coverage@95=<f> ece=<f> brier=<f> pairs=<n>`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "../shared/data/regmix-paper"


def compose_fit_config(argv: list[str]):
    """regmix-fit's config from its overrides (default `source=paper`), writing into a temporary
    folder; None (after saying why) when it names no held-out test runs."""
    if "REGMIX_PAPER_DATA" not in os.environ and (PAPER / "train_mixture_1m.csv").is_file():
        os.environ["REGMIX_PAPER_DATA"] = str(PAPER.resolve())  # a local copy: never downloads

    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from analysis.config import register_fit_configs
    from regmix.hydra_conf import CONF_PACKAGE

    register_fit_configs()
    out = Path(tempfile.mkdtemp(prefix="calibration-"))
    overrides = list(argv) or ["source=paper"]
    defaults = [f"mixture_dir={out}", f"report_dir={out / 'report'}", "overwrite=true"]
    given = {o.split("=", 1)[0].lstrip("+") for o in overrides}
    overrides += [d for d in defaults if d.split("=", 1)[0] not in given]
    with initialize_config_module(config_module=CONF_PACKAGE, version_base="1.3"):
        cfg = OmegaConf.to_object(compose(config_name="fit", overrides=overrides))
    if cfg.test.kind == "none":
        print("calibration needs held-out runs: give a test source (test.kind=csv|local ...), or use source=paper")
        return None
    return cfg


def quarter_coverage(predictive, X_held, y_held, coverage: float = 0.8) -> tuple[float, float]:
    """Share of held-out runs inside their `coverage` interval among the lowest and the highest
    quarter of predicted loss (the chosen mixture sits at the low end)."""
    import numpy as np

    center = predictive.predict(X_held)
    low, high = predictive.interval(None, coverage, center=center)
    inside = (y_held >= low) & (y_held <= high)
    return (float(inside[center <= np.quantile(center, 0.25)].mean()),
            float(inside[center >= np.quantile(center, 0.75)].mean()))


def main(argv: list[str]) -> int:
    cfg = compose_fit_config(argv)
    if cfg is None:
        return 2

    import numpy as np

    from analysis.calibration import calibration_line, score_calibration
    from analysis.fit import run_fit
    from analysis.plots import reliability_plot
    from analysis.predictive import Predictive

    result = run_fit(cfg, progress=False)
    X_test = result.test_table.weights[result.table.domains].to_numpy()
    y_test = result.target.values(result.test_table.losses)
    scores = score_calibration(result.predictive, X_test, y_test)
    plot = Path(cfg.report_dir) / "calibration_reliability.png"
    reliability_plot(scores, plot)
    print(f"fit: {len(result.table)} runs of {result.table.source}, driven by {result.drive}; "
          f"test: {len(y_test)} runs of {result.test_table.source}")
    print(f"  residual scale {result.predictive.scale:.3f} (learning curve to the fit on all runs; "
          f"choice.learning_curve={cfg.choice.learning_curve})")
    for level in scores.coverage:
        # One split of this many runs: a calibrated interval's share is a binomial draw around it.
        se = (level * (1 - level) / len(y_test)) ** 0.5
        print(f"  {level:.0%} intervals hold {scores.coverage[level]:.1%} of the test runs "
              f"(mean width {scores.width[level]:.4f}; a calibrated one: {level:.0%} +- {se:.1%}, one s.e.)")
    # The choice lives at the low end of the predicted losses: coverage there, not only on average,
    # with one spread for all runs and with the spread by level (choice.noise_by_level).
    p = result.predictive
    for by_level in (False, True):
        spread = Predictive.from_folds(p.model, p.fold_models, p.fold_of, p.levels + p.residuals, p.levels,
                                       scale=p.scale, by_level=by_level)
        lowest, highest = quarter_coverage(spread, X_test, y_test, scores.nominal)
        print(f"  {scores.nominal:.0%} intervals by quarter of predicted loss, "
              + ("spread by level" if by_level else "one spread") + f": lowest {lowest:.1%}, highest {highest:.1%}"
              + (f" (trend: {spread.noise.as_dict()})" if by_level else "")
              + (" <- as configured" if by_level == cfg.choice.noise_by_level else ""))
    # Intervals are sized for runs as noisy as the training runs (exchangeable ones); a quieter
    # held-out set is covered beyond the nominal share however well the fit is calibrated.
    predictive = result.predictive
    assumed = predictive.scale**2 * float(np.mean(predictive.residuals**2))
    observed = float(np.mean((y_test - predictive.predict(X_test)) ** 2))
    print(f"  test runs' squared error: {observed / assumed:.2f}x what the intervals assume ({observed:.5f} against "
          f"{assumed:.5f}, the scaled out-of-fold residuals; below 1 the test runs are quieter than the training runs)")
    print(f"  P(a beats b) over {scores.pairs:,} pairs: Brier {scores.brier:.4f}, ECE {scores.ece:.4f} (10 bins)")
    print(f"reliability plot: {plot}")
    print(calibration_line(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
