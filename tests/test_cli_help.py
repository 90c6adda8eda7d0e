"""Every command answers --help with what it does, examples and its config groups."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
COMMANDS = ["regmix-prepare", "regmix-sample", "regmix-train", "regmix-sweep", "regmix-fit", "regmix-propose", "regmix-demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_says_what_the_command_does(command):
    done = subprocess.run([str(BIN / command), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith(f"{command}: ") and len(first) > len(command) + 20
    assert "Examples:" in done.stdout and f"  {command}" in done.stdout
    assert "== Configuration groups ==" in done.stdout
    assert "_schema" not in done.stdout.split("== Config ==")[0]  # schemas are not choices
