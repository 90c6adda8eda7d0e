"""The per-domain loss key: one format, one parse, no domain lost."""

from __future__ import annotations

import pytest

from regmix.metrics import MEAN_VAL_LOSS_KEY, parse_val_loss_key, val_loss_key


@pytest.mark.parametrize("domain", ["pile_cc", "mean", "loss", "val", "a.b-c"])
def test_format_and_parse_round_trip(domain):
    key = val_loss_key(domain)
    assert key == f"val/{domain}/loss"
    assert parse_val_loss_key(key) == domain


@pytest.mark.parametrize("key", [MEAN_VAL_LOSS_KEY, "val//loss", "val/a/b/loss", "train/loss", "val/a/acc", "tokens"])
def test_other_keys_are_not_domains(key):
    assert parse_val_loss_key(key) is None


@pytest.mark.parametrize("domain", ["", "a/b"])
def test_names_that_cannot_be_keys_are_refused(domain):
    with pytest.raises(ValueError, match="cannot be a metric key"):
        val_loss_key(domain)
