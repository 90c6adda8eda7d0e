"""How strongly the evidence backs the emitted mixture: the fit's status, one of five words.

A `str` enum: each status compares equal to its word ("supported", ...), so reports, the
provenance and the W&B summary keep the strings they always wrote.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    SUPPORTED = "supported"
    """Emitted as chosen: the regressor ranks runs well and the members back the choice."""
    SHRUNK = "shrunk"
    """Weak evidence: emitted part of the way from the best supported point to the choice."""
    FALLBACK = "fallback"
    """Weak evidence: emitted the best supported point itself (the best run or the prior)."""
    WEAK = "weak"
    """Weak evidence, `choice.shrink=false`: emitted the choice unshrunk, and said so."""
    EXTRAPOLATES = "extrapolates"
    """Emitted beyond the trust radius from every run (`choice.trust_radius=-1`): no regression
    is evidence there, whatever its probabilities say."""

    @property
    def moved(self) -> bool:
        """Whether the emitted mixture differs from the simulated choice."""
        return self in (Status.SHRUNK, Status.FALLBACK)


#: The status line of a mixture the evidence backs (the other statuses say why and what next).
SUPPORTED_LINE = f"status: {Status.SUPPORTED}: the evidence backs the chosen mixture"
