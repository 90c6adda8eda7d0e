"""The demo's report: did the emitted mixture win at target scale, by more than seed noise?"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.report import markdown_table
from regmix.atomic_file import write_text_atomic
from regmix.mixture import Mixture


@dataclass
class DemoOutcome:
    target: str
    blend: dict[str, float]
    """The known answer: the train domains the target is made of, with their shares."""
    mixtures: dict[str, Mixture]
    at_target: dict[str, float]
    """Target loss (nats/token) of each mixture trained at target scale."""
    at_proxy: dict[str, float]
    """Target loss of the same mixtures at proxy scale (rank-invariance check)."""
    noise: float
    """|loss(seed 0) - loss(seed 1)| of the emitted mixture at target scale."""
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
    verdicts: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        emitted = self.at_target["emitted"]
        self.verdicts = {
            f"beats {rival} by more than seed noise": self.at_target[rival] - emitted > self.noise
            for rival in ("prior", "uniform")
        }
        if self.blend:
            share = sum(self.mixtures["emitted"].get(d) for d in self.blend)
            self.verdicts[f"puts most weight on the target's domains ({share:.0%})"] = share > 0.5

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
            margin = self.at_target[label] - self.at_target["emitted"]
            rows.append([label, f"{p:.0%}", "yes" if proxy else "no", "yes" if target else "no",
                         f"{margin:+.4f} (noise {self.noise:.4f})"])
        return rows

    @property
    def blend_share(self) -> float:
        return sum(self.mixtures["emitted"].get(d) for d in self.blend)

    def summary(self) -> str:
        lines = [f"\ntarget {self.target!r} loss at target scale ({self.target_model}):"]
        for label, loss in sorted(self.at_target.items(), key=lambda kv: kv[1]):
            lines.append(f"  {label:22} {loss:.4f}")
        lines.append(f"seed noise {self.noise:.4f}; proxy-vs-target rank Spearman {self.rank_spearman:.2f}")
        lines += [f"  [{'x' if ok else ' '}] emitted {what}" for what, ok in self.verdicts.items()]
        lines.append(getattr(self.fit, "status_line", "") or "")
        for rival, p, proxy, target, margin in self.forecasts():
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


def write_report(outcome: DemoOutcome) -> Path:
    """report.md plus two PNGs in the demo's folder (each written atomically)."""
    out = outcome.out_dir
    plot_losses(outcome, out / "losses.png")
    plot_weights(outcome, out / "weights.png")
    fit = outcome.fit
    domains = list(outcome.mixtures["emitted"])
    columns = {k: outcome.mixtures[k] for k in ("emitted", "prior", "uniform", "best_proxy")}
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
        *[f"- [{'x' if ok else ' '}] The emitted mixture {what}" for what, ok in outcome.verdicts.items()],
        "",
        "## The fit's forecasts, and whether they came true",
        "",
        f"{fit.status_line}",
        "",
        "P(emitted beats X) is the share of the fit's bagged regressors (fitted on the proxies) that predict "
        "the emitted mixture's loss below X's; the probabilities are about proxy-scale loss.",
        "",
        markdown_table(["rival", "P(emitted beats it)", "came true at proxy scale", "came true at target scale",
                        "target-scale margin"], outcome.forecasts()),
        "",
        "## Target loss at target scale",
        "",
        markdown_table(
            ["mixture", "target-scale loss", "proxy-scale loss"],
            [[k, f"{v:.4f}", f"{outcome.at_proxy[k]:.4f}" if k in outcome.at_proxy else ""]
             for k, v in sorted(outcome.at_target.items(), key=lambda kv: kv[1])],
        ),
        "",
        f"Seed noise (emitted mixture, two seeds): {outcome.noise:.4f}. "
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
        f"Wall time: {outcome.wall_s / 60:.1f} min. W&B offline runs: `wandb sync {out}/*/*/wandb/offline-run-* {out}/fit/wandb/offline-run-*`.",
        "",
    ]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path
