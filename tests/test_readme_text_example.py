"""The README's own-data example runs as written: a code folder, a prose glob, and a held-out
target domain (`data.targets`)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from regmix.corpus.store import read_meta

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def readme_line(start: str) -> str:
    (line,) = [line for line in (REPO / "README.md").read_text().splitlines() if line.startswith(start)]
    return line.split("#", 1)[0].strip()


def test_the_readme_code_folder_example_with_a_target_domain(tmp_path):
    command = shlex.split(readme_line("regmix-prepare data=text data.name=code_prose '+data.paths.code=[src/]'"))
    # The target-domain fragment the README gives in its prose, e.g. `'+data.paths.web=[crawl/]' 'data.targets=[web]'`.
    (fragment,) = re.findall(r"`('\+data\.paths\.web=\[crawl/\]' 'data\.targets=\[web\]')`", (REPO / "README.md").read_text())
    for folder, suffix, n in (("src", ".py", 6), ("books", ".txt", 2), ("crawl", ".txt", 2)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            text = f"def f{i}(x):\n    return x * {i}\n" if suffix == ".py" else f"Chapter {i}. It was a dark night.\n"
            (tmp_path / folder / f"{folder}{i}{suffix}").write_text(text * 40)
    done = subprocess.run([str(BIN / command[0]), *command[1:], *shlex.split(fragment), "data.tokenizer.vocab_size=300"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    meta = read_meta(tmp_path / "data" / "code_prose")
    assert meta.domains["code"].train_tokens > 0  # the .py files were read (data.text_suffixes)
    assert meta.domains["web"].role == "target" and meta.domains["web"].train_tokens == 0
