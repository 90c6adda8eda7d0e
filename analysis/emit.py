"""Emission: the chosen mixture as a Hydra config entry that `regmix-train mixture=<out>` takes.

The file is a `regmix.config.MixtureConfig` (name, index: null, table: null, weights,
provenance) under a comment header saying how it was made and how to train on it. An existing
file of the same name is never replaced unless asked (`overwrite=true`): a target run may
already have trained on it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from analysis.errors import AnalysisError
from regmix.mixture import Mixture
from regmix.atomic_file import write_text_atomic
from regmix.hydra_conf import user_mixture_dir

#: A Hydra option name: `mixture=<out>` must parse as one plain value.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: The start of an OmegaConf interpolation and the backslashes before it.
_INTERPOLATION = re.compile(r"(\\*)\$\{")


def default_mixture_dir() -> Path:
    """./conf/mixture of the working directory, where `regmix-train mixture=<name>` looks."""
    return user_mixture_dir()


def mixture_path(out: str, mixture_dir: str | os.PathLike | None) -> Path:
    """Where `out` is emitted; refuses names Hydra cannot take as `mixture=<out>`."""
    if not NAME.match(out or ""):
        raise AnalysisError(f"out={out!r} is not a usable mixture name; use letters, digits, '_' and '-' (e.g. out=pile_cc_1m)")
    return Path(mixture_dir) / f"{out}.yaml" if mixture_dir else default_mixture_dir() / f"{out}.yaml"


def check_free(path: Path, overwrite: bool) -> None:
    """Raise unless `path` may be written (checked before any work, so nothing is wasted)."""
    if path.exists() and not overwrite:
        raise AnalysisError(
            f"{path} already exists and a run may have trained on it; pass overwrite=true to replace it "
            f"or out=<another name>"
        )


def round_weights(weights: Mapping[str, float], decimals: int, upper: Sequence[float] | None = None) -> dict[str, float]:
    """Round to `decimals` by largest remainder: the result sums to 1 on the grid exactly, zero
    weights stay zero and no weight is rounded up past its `upper` bound."""
    if not 1 <= decimals <= 9:
        raise AnalysisError(f"weight_decimals={decimals} is invalid; use 1-9 (4 = a 1e-4 grid)")
    names = list(weights)
    w = np.array([weights[d] for d in names], dtype=np.float64)
    w = w / w.sum()
    units = 10**decimals
    scaled = w * units
    floor = np.floor(scaled + 1e-9).astype(np.int64)
    cap = np.floor(np.asarray(upper, dtype=np.float64) * units + 1e-9).astype(np.int64) if upper is not None else None
    priority = np.where(w > 0, scaled - floor, -np.inf)
    if cap is not None:
        priority = np.where(floor + 1 <= cap, priority, -np.inf)
    for i in np.argsort(-priority, kind="stable")[: max(units - int(floor.sum()), 0)]:
        floor[i] += 1
    while floor.sum() > units:  # only when float error rounded several weights up by 1e-9
        floor[np.argmax(floor)] -= 1
    return {d: round(int(u) / units, decimals) for d, u in zip(names, floor)}


def _plain(value: Any) -> Any:
    """Provenance as YAML-safe builtins (numpy scalars, tuples, NaN -> None)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if not math.isfinite(value) else round(value, 6)
    if isinstance(value, str):
        return escape_interpolation(value)
    if isinstance(value, (int, bool)) or value is None:
        return value
    return escape_interpolation(str(value))


def escape_interpolation(text: str) -> str:
    """`text` as a literal for OmegaConf: `${...}` escaped so that loading the file never resolves it.

    Provenance copies user text (labels, the command line); `${oc.env:WANDB_API_KEY}` in it
    would otherwise put the key into the target run's config. OmegaConf reads `\\${` as a
    literal `${` and `\\\\` before `${` as one backslash, so backslashes there are doubled too.
    """
    return _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", text)


def emit_mixture(
    path: Path,
    *,
    name: str,
    weights: Mapping[str, float],
    provenance: Mapping[str, Any],
    header: Sequence[str],
    overwrite: bool = False,
) -> Path:
    """Write the mixture config atomically; `weights` must be a valid mixture over every train domain."""
    check_free(path, overwrite)
    Mixture(weights, tolerance=1e-6)  # invariant: rounding kept the sum at 1
    body = {
        "name": name,
        "index": None,
        "table": None,
        "weights": {d: float(w) for d, w in weights.items()},
        "provenance": _plain(provenance),
    }
    text = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header)
    text += yaml.safe_dump(body, sort_keys=False, default_flow_style=False, width=100)
    return write_text_atomic(path, text)  # a reader (a starting target run) never sees half a file
