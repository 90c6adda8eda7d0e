"""The demo's report: did the emitted mixture win at target scale, by more than seed noise?"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.choice import NO_MEMBER_TELLS
from analysis.report import calibration_summary, markdown_table
from regmix.atomic_file import write_text_atomic
from regmix.mixture import Mixture


@dataclass
class RoundOutcome:
    """The choice before the active round (fit on round 0) and after it (fit on both rounds)."""

    before: Any
    after: Any
    n_before: int
    n_after: int
    acquisition: str = ""

    def rows(self, outcome: "DemoOutcome") -> list[list[str]]:
        rows = []
        for label, fit, n, key in (("before the round", self.before, self.n_before, "emitted before round"),
                                   ("after the round", self.after, self.n_after, "emitted")):
            rows.append([label, str(n), f"{fit.predicted['chosen']:.4f}", f"{fit.status}",
                         _beats_text(fit.evidence.get("emitted") or {}),
                         _fmt(outcome.at_proxy.get(key)), _fmt(outcome.at_target.get(key)),
                         f"{outcome.blend_share_of(key):.0%}" if outcome.blend else ""])
        return rows

    def verdict(self, outcome: "DemoOutcome") -> str:
        gain = outcome.at_target["emitted before round"] - outcome.at_target["emitted"]
        if gain > outcome.noise:
            return f"improved the choice at target scale by {gain:.4f} nats (more than the seed noise {outcome.noise:.4f})"
        if gain < -outcome.noise:
            return f"made the choice worse at target scale by {-gain:.4f} nats (more than the seed noise {outcome.noise:.4f})"
        return f"changed the choice's target-scale loss by {-gain:+.4f} nats, within the seed noise {outcome.noise:.4f}"


#: A forecast P(emitted beats X) at or above this is a claim of a win (a central 80% interval of
#: the loss difference then lies wholly on the winning side); from 50% up to it, a close race.
CONFIDENT_FORECAST = 0.9
#: What the forecast table says for a rival whose mixture is the emitted one.
SAME_MIXTURE = "the same mixture"
#: L1 below which two mixtures are one (the emitted file rounds to 4 decimals).
SAME_MIXTURE_L1 = 1e-3


def _beats_text(evidence: dict) -> str:
    """'prior 100%, best_run: no member tells them apart' from a fit's evidence record."""
    zero = {"low": 0.0, "mean": 0.0, "high": 0.0}
    diff = evidence.get("loss_difference", {})
    return ", ".join(f"{k}: {NO_MEMBER_TELLS}" if diff.get(k) == zero else f"{k} {v:.0%}"
                     for k, v in evidence.get("probability_beats", {}).items())


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@dataclass
class DemoOutcome:
    target: str
    blend: dict[str, float]
    """The known answer: the train domains the target is made of, with their shares."""
    mixtures: dict[str, Mixture]
    at_target: dict[str, float]
    """Target loss (nats/token) of each mixture trained at target scale, the mean over its seeds."""
    at_proxy: dict[str, float]
    """Target loss of the same mixtures at proxy scale (rank-invariance check)."""
    noise: float
    """Seed noise at target scale, pooled over the mixtures trained with several seeds (the RMS
    seed-to-seed difference: for two seeds of one mixture, |loss(seed 0) - loss(seed 1)|)."""
    rank_spearman: float
    fit: Any
    n_proxies: int
    wall_s: float
    out_dir: Path
    proxy_model: str = ""
    target_model: str = ""
    proxy_tokens: int = 0
    target_tokens: int = 0
    domain_floor: float = 0.0
    """Smallest weight every domain was allowed in the simulated candidates."""
    seed_losses: dict[str, list[float]] = field(default_factory=dict)
    """Target-scale loss of every seed of every mixture (the means are `at_target`)."""
    round: RoundOutcome | None = None
    """The active round: the choice before and after it (None: the demo ran without a round)."""
    verdicts: dict[str, bool] = field(default_factory=dict)
    why_not: dict[str, str] = field(default_factory=dict)
    """Per verdict that failed against a rival: the margin, and what the fit had forecast."""

    def __post_init__(self) -> None:
        emitted = self.at_target["emitted"]
        n = len(self.seed_losses.get("emitted", [])) or 1
        self.verdicts, self.why_not = {}, {}
        for rival in ("prior", "uniform"):
            what = f"beats {rival} by more than seed noise (means over {n} seed{'s' if n > 1 else ''})"
            self.verdicts[what] = self.at_target[rival] - emitted > self.noise
            if not self.verdicts[what]:
                self.why_not[what] = self._why_not(rival)
        if self.blend:
            share = self.blend_share
            self.verdicts[f"puts most weight on the target's domains ({share:.0%})"] = share > 0.5

    def _why_not(self, rival: str) -> str:
        """Why the emitted mixture did not beat `rival` beyond seed noise: what happened at target
        scale, and what the fit had forecast (a loss, a close race, or a win that missed)."""
        if self.is_emitted(rival):
            return f"it is {rival}'s own mixture, so there is no difference to find"
        margin = self.at_target[rival] - self.at_target["emitted"]
        noise = f"the seed noise {self.noise:.4f}"
        if abs(margin) < 5e-5:  # equal at the report's 4 decimals
            said = f"it tied at target scale ({noise})"
        elif margin > 0:
            said = f"it won by {margin:+.4f} nats at target scale, within {noise}"
        else:
            said = f"it lost by {-margin:.4f} nats at target scale, {'within' if -margin <= self.noise else 'beyond'} {noise}"
        p = ((getattr(self.fit, "evidence", None) or {}).get("emitted") or {}).get("probability_beats", {}).get(rival)
        if p is None:
            return said
        forecast = f"P(emitted beats {rival}) {p:.0%} for new proxy runs"
        if p < 0.5:
            return f"{said}; the fit had forecast a loss: {forecast}"
        if p < CONFIDENT_FORECAST:
            return f"{said}; the fit had not claimed a clear win: {forecast}, a close race"
        return f"{said}; the fit had forecast a win, {forecast}: a miss"

    def blend_share_of(self, label: str) -> float:
        return sum(self.mixtures[label].get(d) for d in self.blend)

    def forecasts(self) -> list[list[str]]:
        """The fit's P(emitted beats X) against what happened at proxy and at target scale."""
        emitted = self.fit.evidence.get("emitted") or {}
        rows = []
        for rival, label in (("prior", "prior"), ("uniform", "uniform"), ("best_run", "best_proxy")):
            p = emitted.get("probability_beats", {}).get(rival)
            if p is None or label not in self.at_target:
                continue
            proxy = self.at_proxy.get("emitted", float("nan")) < self.at_proxy.get(label, float("nan"))
            target = self.at_target["emitted"] < self.at_target[label]
            margin = f"{self.at_target[label] - self.at_target['emitted']:+.4f} (noise {self.noise:.4f})"
            if self.is_emitted(label):  # the fit fell back to it: P = 50% by "ties half", nothing to forecast
                rows.append([label, SAME_MIXTURE, "-", "-", margin])
                continue
            rows.append([label, f"{p:.0%}", "yes" if proxy else "no", "yes" if target else "no", margin])
        return rows

    def is_emitted(self, label: str) -> bool:
        """Whether `label`'s mixture is the emitted one (to the emitted file's 4 decimals)."""
        a, b = self.mixtures.get("emitted"), self.mixtures.get(label)
        if a is None or b is None:
            return False
        return sum(abs(a.get(d) - b.get(d)) for d in set(a) | set(b)) <= SAME_MIXTURE_L1

    @property
    def blend_share(self) -> float:
        return self.blend_share_of("emitted")

    def summary(self) -> str:
        lines = [f"\ntarget {self.target!r} loss at target scale ({self.target_model}):"]
        for label, loss in sorted(self.at_target.items(), key=lambda kv: kv[1]):
            seeds = self.seed_losses.get(label, [])
            lines.append(f"  {label:22} {loss:.4f}" + (f"  (seeds {', '.join(f'{v:.4f}' for v in seeds)})" if len(seeds) > 1 else ""))
        lines.append(f"seed noise {self.noise:.4f} (pooled); proxy-vs-target rank Spearman {self.rank_spearman:.2f}")
        if self.round is not None:
            lines.append(f"active round ({self.round.n_before} -> {self.round.n_after} proxies): {self.round.verdict(self)}")
        lines += [f"  [{'x' if ok else ' '}] emitted {what}" + (f": {self.why_not[what]}" if what in self.why_not else "")
                  for what, ok in self.verdicts.items()]
        lines.append(getattr(self.fit, "status_line", "") or "")
        calibration = calibration_summary(getattr(self.fit, "evidence", None) or {})
        if calibration:
            lines.append(f"  {calibration}")
        for rival, p, proxy, target, margin in self.forecasts():
            if p == SAME_MIXTURE:
                lines.append(f"  emitted is {rival}'s mixture: no forecast; the target-scale difference {margin} is seed to seed")
                continue
            lines.append(f"  P(emitted beats {rival}) {p}: came true at proxy scale {proxy}, at target scale {target} ({margin})")
        lines.append(f"wall time {self.wall_s / 60:.1f} min")
        return "\n".join(lines)


def plot_losses(outcome: DemoOutcome, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    items = sorted(outcome.at_target.items(), key=lambda kv: kv[1])
    colors = ["tab:green" if k.startswith("emitted") else "tab:gray" for k, _ in items]
    ax1.barh([k for k, _ in items], [v for _, v in items], color=colors,
             xerr=[outcome.noise] * len(items), capsize=3)
    ax1.invert_yaxis()
    ax1.set_xlabel(f"{outcome.target} loss at target scale (nats/token); bars: ± seed noise")
    ax1.set_xlim(min(v for _, v in items) * 0.95, max(v for _, v in items) * 1.02)
    common = [k for k in outcome.at_proxy if k in outcome.at_target]
    ax2.scatter([outcome.at_proxy[k] for k in common], [outcome.at_target[k] for k in common])
    for k in common:
        ax2.annotate(k, (outcome.at_proxy[k], outcome.at_target[k]), fontsize=8)
    ax2.set_xlabel(f"proxy scale ({outcome.proxy_model})")
    ax2.set_ylabel(f"target scale ({outcome.target_model})")
    ax2.set_title(f"rank invariance: Spearman {outcome.rank_spearman:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_weights(outcome: DemoOutcome, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    domains = list(outcome.mixtures["emitted"])
    series = {"emitted": outcome.mixtures["emitted"], "prior": outcome.mixtures["prior"]}
    if outcome.blend:
        series["target blend (known answer)"] = Mixture(outcome.blend, domains=domains)
    x = np.arange(len(domains))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    for i, (label, mix) in enumerate(series.items()):
        ax.bar(x + i * width, [mix.get(d) for d in domains], width, label=label)
    ax.set_xticks(x + width * (len(series) - 1) / 2, domains, rotation=30, ha="right")
    ax.set_ylabel("weight")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _round_section(outcome: DemoOutcome) -> list[str]:
    r = outcome.round
    if r is None:
        return []
    return [
        "## The active round",
        "",
        f"Round 0: {r.n_before} sampled proxies; the fit on them chose the mixture below (`emitted before round`). "
        f"Round 1: {r.n_after - r.n_before} proxies proposed by `regmix-propose`'s library function ({r.acquisition}) "
        f"from an ensemble fitted on round 0; the emitted mixture is fitted on both rounds ({r.n_after} proxies).",
        "",
        markdown_table(["choice", "proxies", "predicted loss", "fit status", "P(beats)", "proxy-scale loss",
                        "target-scale loss (mean)", "share on the target's domains"], r.rows(outcome)),
        "",
        f"**The round {r.verdict(outcome)}.**",
        "",
    ]


def write_report(outcome: DemoOutcome) -> Path:
    """report.md plus two PNGs in the demo's folder (each written atomically)."""
    out = outcome.out_dir
    plot_losses(outcome, out / "losses.png")
    plot_weights(outcome, out / "weights.png")
    fit = outcome.fit
    domains = list(outcome.mixtures["emitted"])
    columns = {k: outcome.mixtures[k] for k in ("emitted", "emitted before round", "prior", "uniform", "best_proxy")
               if k in outcome.mixtures}
    if outcome.blend:
        columns["known blend"] = Mixture(outcome.blend, domains=domains)
    lines = [
        "# regmix demo report",
        "",
        f"RegMix on the embedded synthetic corpus: {outcome.n_proxies} `{outcome.proxy_model}` proxies "
        f"({outcome.proxy_tokens:,} tokens each) -> regression -> simulation -> emitted mixture, then "
        f"`{outcome.target_model}` models ({outcome.target_tokens:,} tokens) trained on the emitted mixture and "
        f"its rivals. Target: validation loss on `{outcome.target}`"
        + (f", a held-out blend of {', '.join(f'{d} {w:.0%}' for d, w in outcome.blend.items())}." if outcome.blend else "."),
        "",
        "## Verdict",
        "",
        *[f"- [{'x' if ok else ' '}] The emitted mixture {what}"
          + (f": {outcome.why_not[what]}." if what in outcome.why_not else "") for what, ok in outcome.verdicts.items()],
        "",
        *_round_section(outcome),
        "## The fit's forecasts, and whether they came true",
        "",
        f"{fit.status_line}",
        "",
        "P(emitted beats X) is the probability that a new proxy run of the emitted mixture has a lower loss "
        "than one of X's, from the fit's predictive distribution (the driver plus its out-of-fold residuals, "
        "so the proxies' own noise is in it; against the best proxy, by the fold model that never saw it); "
        "the probabilities are about proxy-scale loss"
        + (f"; {calibration_summary(fit.evidence or {})}." if calibration_summary(fit.evidence or {}) else "."),
        "",
        markdown_table(["rival", "P(emitted beats it)", "came true at proxy scale", "came true at target scale",
                        "target-scale margin"], outcome.forecasts()),
        "",
        "## Target loss at target scale",
        "",
        markdown_table(
            ["mixture", "target-scale loss (mean over seeds)", "per seed", "proxy-scale loss"],
            [[k, f"{v:.4f}", ", ".join(f"{x:.4f}" for x in outcome.seed_losses.get(k, [v])),
              f"{outcome.at_proxy[k]:.4f}" if k in outcome.at_proxy else ""]
             for k, v in sorted(outcome.at_target.items(), key=lambda kv: kv[1])],
        ),
        "",
        f"Seed noise, pooled over the {sum(len(v) > 1 for v in outcome.seed_losses.values())} mixtures trained "
        f"with several seeds (RMS seed-to-seed difference): {outcome.noise:.4f}. "
        f"Rank invariance (Spearman, proxy vs target scale, {len([k for k in outcome.at_proxy if k in outcome.at_target])} mixtures): "
        f"{outcome.rank_spearman:.2f}.",
        "",
        "![losses](losses.png)",
        "",
        "## Mixtures",
        "",
        markdown_table(
            ["domain", *columns],
            [[d, *(f"{columns[c].get(d):.3f}" for c in columns)] for d in domains],
        ),
        "",
        "![weights](weights.png)",
        "",
        (f"Constraint: every domain kept at least {outcome.domain_floor:g} of the mixture in the simulated "
         "candidates (`domain_floor`; see docs/decisions.md)." if outcome.domain_floor > 0
         else "No per-domain floor: the regression alone chose the weights."),
        "",
        "## Regression",
        "",
        f"Driving regressor: **{fit.drive}** ({fit.drive_reason}). Out-of-fold comparison:",
        "",
        markdown_table(["regressor", *fit.comparison.columns],
                       [[name, *(f"{v:.4f}" for v in row)] for name, row in fit.comparison.iterrows()]),
        "",
        f"Full analysis report: `{fit.report_dir}`; emitted config: `{fit.emitted}`.",
        "",
        f"Wall time: {outcome.wall_s / 60:.1f} min. W&B offline runs: `wandb sync {out}/*/*/wandb/offline-run-* {out}/fit*/wandb/offline-run-*`.",
        "",
    ]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path
