"""Errors that never hide a bug: only a user's error is one line; a bug keeps its traceback.

A fault is injected into a real command (regmix-sweep's work function replaced by one that
raises) and the command is run as a user would, in a fresh process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from regmix.cli.hydra_app import REPORT_LINE

#: regmix-sweep with its work function raising `error`; argv as typed after the command.
_INJECT = """
import sys
import regmix.cli.sweep as command
from regmix.sweep.spec import SweepSpecError

def broken(**kwargs):
    raise {error}

command.launch_sweep = broken
sys.argv = ["regmix-sweep", *sys.argv[1:]]
command.main()
"""


def _run(error: str, tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("REGMIX_DEBUG", "HYDRA_FULL_ERROR")}
    return subprocess.run([sys.executable, "-c", _INJECT.format(error=error), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**environ, **env})


@pytest.mark.parametrize(
    "error",
    ['ValueError("could not convert string to float: x")', 'KeyError("weights")', 'RuntimeError("boom")'],
)
def test_an_internal_error_shows_its_traceback_and_asks_for_a_report(tmp_path, error):
    done = _run(error, tmp_path, "dry_run=true")
    assert done.returncode == 1, done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert "in broken" in done.stderr  # the frame that raised, not only Hydra's
    assert REPORT_LINE in done.stderr
    assert not any(line.startswith("error:") for line in done.stderr.splitlines())


def test_a_user_error_is_one_line_and_exit_2(tmp_path):
    done = _run('SweepSpecError("sweeps/x.yaml is not a sweep spec; run regmix-sample first")', tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: sweeps/x.yaml is not a sweep spec; run regmix-sample first"


@pytest.mark.parametrize("variable", ["REGMIX_DEBUG", "HYDRA_FULL_ERROR"])
def test_a_debug_variable_shows_the_traceback_of_a_user_error_too(tmp_path, variable):
    done = _run('SweepSpecError("sweeps/x.yaml is not a sweep spec")', tmp_path, **{variable: "1"})
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr and "in broken" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "error: sweeps/x.yaml is not a sweep spec"
    assert REPORT_LINE not in done.stderr


def test_a_bug_in_the_settings_check_is_not_swallowed(tmp_path):
    """Hydra turns an exception in a callback into a warning and goes on; the settings check
    must not be skipped that way."""
    done = subprocess.run(
        [sys.executable, "-m", "regmix.cli.sweep", "dry_run=true",
         "hydra.callbacks.settings.rules=regmix.settings_rules.NO_SUCH_TABLE"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "NO_SUCH_TABLE" in done.stderr and REPORT_LINE in done.stderr


@pytest.mark.parametrize("shown", [["--cfg", "hydra"], ["--cfg=hydra"], ["-c", "hydra"], ["-chydra"]])
def test_showing_hydras_settings_resolved_names_the_view_that_resolves_them(tmp_path, shown):
    """regmix-train's run folder interpolates its own settings (${out_dir}/${run_name}); Hydra's
    `--cfg hydra` view leaves those out, so `--resolve` there cannot work. A user error with the
    view that does, not an internal error; and that view shows the folder resolved."""
    environ = {k: v for k, v in os.environ.items() if k not in ("REGMIX_DEBUG", "HYDRA_FULL_ERROR")}
    done = subprocess.run([sys.executable, "-m", "regmix.cli.train", *shown, "--resolve"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=environ)
    assert done.returncode == 2, done.stderr
    assert REPORT_LINE not in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: Interpolation key 'out_dir' not found")
    assert "--cfg all --resolve" in done.stderr
    shown = subprocess.run([sys.executable, "-m", "regmix.cli.train", "--cfg", "all", "--resolve", "out_dir=elsewhere"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120, env=environ)
    assert shown.returncode == 0, shown.stderr
    assert "dir: elsewhere/unnamed" in shown.stdout
