"""What a valid setting of `regmix-demo` is: its own knobs, and the rules of every command it
runs, mounted where the demo keeps their settings (see `regmix.settings_check`)."""

from __future__ import annotations

from analysis.settings_rules import ACQUISITION, FIT_APP
from regmix.settings_check import Range, under
from regmix.settings_rules import DATA, MODEL, SAMPLER, TRACKER, TRAIN

DEMO_APP = (
    Range("n_mixtures", 1),
    Range("round_k", 0, note="; 0 = no active round"),
    Range("round_seed", 0),
    Range("sample_seed", 0),
    Range("eval_tokens", 1),
    Range("n_rank_check", 0),
    Range("domain_floor", 0, 1, high_open=True, note="; 0 = no floor"),
    Range("target_seeds", 1),
    Range("jobs", 0, note="; 0 = one per CPU core"),
    *under("data", DATA),
    *under("sampler", SAMPLER),
    *under("proxy_model", MODEL),
    *under("proxy_train", TRAIN),
    *under("target_model", MODEL),
    *under("target_train", TRAIN),
    *under("tracker", TRACKER),
    *under("acquisition", ACQUISITION),
    *under("fit", FIT_APP),
)
