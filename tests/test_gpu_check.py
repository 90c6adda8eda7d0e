"""benchmarks/gpu_check.sh: its CPU-safe parts run here; the CUDA parts skip without a GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_its_cpu_safe_parts():
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "one proxy (regmix-train's loop):" in out and "2 stacked proxies" in out
    assert "tokens/s" in out and "MFU" in out
    # The proxy fed from a prepared BPE corpus at +experiment=paper_1m's shape (tiny sizes here).
    line = next(line for line in out.splitlines() if line.startswith("prepared-corpus proxy (regmix-train's loop):"))
    assert "tokens/s, MFU" in line and "data wait" in line and "of the step" in line
