"""Token budget with a repetition limit: caps so that no domain is repeated more than
`max_epochs` times in the target run.

A target run of B tokens on mixture w reads w_i * B tokens of domain i; with T_i tokens
available that is w_i * B / T_i epochs. Requiring at most E epochs gives the cap
w_i <= E * T_i / B, an ordinary box constraint (so every average of candidates meets it too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analysis.errors import AnalysisError
from regmix.mixture import check_domains


def epoch_caps(
    domains: Sequence[str], tokens: Mapping[str, float] | None, *, budget: float, max_epochs: float
) -> dict[str, float]:
    """{domain: largest weight} such that `budget` x weight <= `max_epochs` x available tokens."""
    if budget <= 0:
        raise AnalysisError(f"simulation.token_budget={budget} must be positive (tokens of the target run)")
    if max_epochs <= 0:
        raise AnalysisError(f"simulation.max_epochs={max_epochs} must be positive (e.g. 4)")
    if not isinstance(tokens, Mapping) or not tokens:
        raise AnalysisError(
            "simulation.token_budget needs each domain's available tokens: set "
            "simulation.domain_tokens='{domain: tokens}' (local run records carry them from the corpus meta)"
        )
    check_domains(tokens, domains, what="simulation.domain_tokens")
    missing = [d for d in domains if d not in tokens]
    if missing:
        raise AnalysisError(f"simulation.domain_tokens lacks {missing}; give every domain's available tokens")
    caps = {d: min(1.0, max_epochs * float(tokens[d]) / budget) for d in domains}
    if sum(caps.values()) < 1.0:
        total = sum(float(tokens[d]) for d in domains)
        raise AnalysisError(
            f"simulation.token_budget={budget:.4g} needs more than max_epochs={max_epochs:g} passes over the "
            f"{total:.4g} available tokens; raise simulation.max_epochs or lower the budget"
        )
    return caps


def merge_caps(user: Mapping[str, float] | None, extra: Mapping[str, float]) -> dict[str, float]:
    """The tighter of two cap mappings per domain."""
    out = {d: float(v) for d, v in (user or {}).items()}
    for d, v in extra.items():
        out[d] = min(out.get(d, 1.0), float(v))
    return out
