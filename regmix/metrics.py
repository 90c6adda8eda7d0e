"""The names runs log their results under: one helper pair for the per-domain loss key.

Every run's summary holds `val/<domain>/loss` (mean next-token cross-entropy in nats/token on
the domain's fixed validation slice) for every evaluated domain; the mean over domains is
`val/loss`, a key of two parts, so no domain name (`mean` included) can collide with it.
"""

from __future__ import annotations
from regmix.errors import RegmixError

from typing import Optional

VAL_PREFIX = "val/"
LOSS_SUFFIX = "/loss"
#: Mean of the per-domain validation losses (nats/token): not a domain key by construction.
MEAN_VAL_LOSS_KEY = "val/loss"
#: Training tokens a run saw, in its summary beside the losses.
TOKENS_KEY = "tokens"
#: Which way a metric is better, in W&B's `metric.goal` words (sweep specs use them as they are).
METRIC_GOALS = ("minimize", "maximize")


def val_loss_key(domain: str) -> str:
    """The summary key of `domain`'s validation loss: `val/<domain>/loss`."""
    domain = str(domain)
    if not domain or "/" in domain:
        raise RegmixError(f"domain name {domain!r} cannot be a metric key; domain names are non-empty and have no '/'")
    return f"{VAL_PREFIX}{domain}{LOSS_SUFFIX}"


def parse_val_loss_key(key: str) -> Optional[str]:
    """The domain of a `val/<domain>/loss` key, or None for any other key (`val/loss` included)."""
    if not (key.startswith(VAL_PREFIX) and key.endswith(LOSS_SUFFIX)):
        return None
    domain = key[len(VAL_PREFIX) : len(key) - len(LOSS_SUFFIX)]
    return domain if domain and "/" not in domain else None
