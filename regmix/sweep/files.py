"""Where a sweep's files live: `<out_dir>/<sweep><suffix>`, out_dir `sweeps/` by default."""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Where regmix-sample writes and regmix-train / regmix-sweep read by default (MixtureConfig.table).
DEFAULT_DIR = "sweeps"
TABLE_SUFFIX = ".mixtures.csv"
"""The mixtures table (`regmix.sweep.table`)."""
SETTINGS_SUFFIX = ".sampler.json"
"""What regmix-sample recorded (`regmix.sweep.record`)."""
SPEC_SUFFIX = ".yaml"
"""The W&B sweep spec (`regmix.sweep.spec`)."""
WANDB_RECORD_SUFFIX = ".wandb.json"
"""Which W&B sweep was created from the spec (`regmix.sweep.wandb_sweep`)."""
#: A sweep name becomes file names and a Hydra value: keep it to safe characters.
SWEEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def table_path(out_dir: str | os.PathLike, sweep: str) -> Path:
    return Path(out_dir) / f"{sweep}{TABLE_SUFFIX}"


def settings_path(out_dir: str | os.PathLike, sweep: str) -> Path:
    return Path(out_dir) / f"{sweep}{SETTINGS_SUFFIX}"


def spec_path(out_dir: str | os.PathLike, sweep: str) -> Path:
    return Path(out_dir) / f"{sweep}{SPEC_SUFFIX}"


def record_path(out_dir: str | os.PathLike, sweep: str) -> Path:
    return Path(out_dir) / f"{sweep}{WANDB_RECORD_SUFFIX}"
