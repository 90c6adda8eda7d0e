"""Test-wide isolation: W&B never touches the network or the home directory."""

from __future__ import annotations

import os
import tempfile

import pytest

# Set before any test imports wandb: offline, silent, every W&B folder in a temp dir.
_WANDB_HOME = tempfile.mkdtemp(prefix="regmix-wandb-")
for _key, _value in {
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DIR": _WANDB_HOME,
    "WANDB_DATA_DIR": os.path.join(_WANDB_HOME, "data"),
    "WANDB_CACHE_DIR": os.path.join(_WANDB_HOME, "cache"),
    "WANDB_CONFIG_DIR": os.path.join(_WANDB_HOME, "config"),
    "WANDB_DISABLE_GIT": "true",
    "WANDB_CONSOLE": "off",
}.items():
    os.environ.setdefault(_key, _value)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:  # analysis-only environments
        has_gpu = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _restore_environment():
    """Every test sees the same environment: wandb.sweep/wandb.init export WANDB_* variables
    (entity, project, mode, run id) into os.environ, which would leak into later tests'
    subprocesses (e.g. send offline training runs online)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
