"""Every command answers --help with what it does, examples and its config groups."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
    check_listed_groups(command, done.stdout)


#: A listed group line: "  <group>: <option>, <option>  <what it is>".
GROUP_LINE = re.compile(r"^  (?P<group>\S+): (?P<options>.+?)  +\S")


def check_listed_groups(command: str, text: str) -> None:
    """The groups a command's --help lists are exactly those its primary config composes, each
    with every option shipped under conf/<group>/ and its default first."""
    from regmix.hydra_conf import shipped_conf_dir

    conf = shipped_conf_dir()
    primary = yaml.safe_load((conf / f"{command.removeprefix('regmix-')}.yaml").read_text())
    composed = {}
    for entry in primary["defaults"]:
        if isinstance(entry, dict):
            (key, value), = entry.items()
            if not key.startswith(("override ", "optional ")):
                composed[key] = value
    section = text.split("== Configuration groups ==")[1].split("== Config ==")[0]
    listed = {}
    for line in section.splitlines():
        match = GROUP_LINE.match(line)
        if match:
            listed[match["group"].lstrip("+")] = [o.strip() for o in match["options"].split(",")]
    assert set(composed) <= set(listed), f"{command} --help omits groups it composes: {set(composed) - set(listed)}"
    for group, options in listed.items():
        folder = conf / group.split("@")[0]
        shipped = {p.stem for p in folder.glob("*.yaml")}
        assert {o for o in options if not o.startswith("<")} == shipped, f"{command} --help, {group}: {options} vs {shipped}"
        if group in composed:
            assert options[0] == composed[group], f"{command} --help lists {group}={options[0]} first, not its default"
