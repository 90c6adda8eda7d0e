"""The README followed in order, as a new user types it: its "Stage by stage", "Your own data" and
"Active rounds" command blocks run as written, one shell after another, in a fresh folder.

The only change is the README's own knob: `N` (proxies of the first sweep; `N=${N:-32}` in the
README) is set to 4, the fewest runs a fit takes, so every trained proxy is one of a few `tiny`
runs. The files the "Your own data" commands read (the user's sources, tables, RegMix's released
layout, token files) are made here first; everything else comes from the commands themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from regmix.corpus.store import read_meta
from regmix.run_record import FINISHED, read_record
from regmix.sweep.table import read_mixtures_table

REPO = Path(__file__).resolve().parents[1]
#: Proxies of the first sweep; the rounds take N / 2 each (the README's K).
N = 4
WORDS = ("river stone market light paper garden window engine number signal winter orange travel "
         "silver animal forest letter theory music school doctor island").split()


def section_blocks(text: str, heading: str) -> list[str]:
    """The ```bash blocks under `heading`, up to the next heading (of any level: a subsection is
    its own section); lines inside code blocks are never headings."""
    blocks: list[str] = []
    inside, fence, current = False, False, None
    for line in text.splitlines():
        if line.startswith("```"):
            if fence and current is not None:
                blocks.append("\n".join(current) + "\n")
            fence, current = not fence, [] if (not fence and inside and line == "```bash") else None
            continue
        if fence:
            if current is not None:
                current.append(line)
        elif line.startswith("#"):
            inside = line == heading
    return blocks


def _documents(topic: str, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{topic} {i}: " + " ".join(rng.choice(WORDS, size=int(rng.integers(20, 60)))) + "." for i in range(n)]


def users_files(work: Path) -> None:
    """The inputs the README's own-data commands name: what a user brings."""
    import pandas as pd

    from regmix.corpus.tokenize import load_tokenizer_file, train_bpe

    (work / "src").mkdir()
    for i in range(20):
        (work / "src" / f"m{i}.py").write_text("".join(f"def f{i}_{j}(x):\n    return x * {j}\n\n" for j in range(30)))
    (work / "books").mkdir()
    for i, doc in enumerate(_documents("chapter", 20, 0)):
        (work / "books" / f"b{i}.txt").write_text(doc * 5)
    rows = [{"text": d, "source": topic} for seed, topic in enumerate(("news", "forum")) for d in _documents(topic, 40, seed)]
    (work / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pd.DataFrame({"text": [r["text"] for r in rows], "domain": [r["source"] for r in rows]}).to_parquet(work / "corpus.parquet")
    (work / "pile" / "cc").mkdir(parents=True)  # a folder of crawl pages and a compressed jsonl
    for i, doc in enumerate(_documents("page", 30, 3)):
        (work / "pile" / "cc" / f"p{i}.txt").write_text(doc)
    import zstandard

    lines = "".join(json.dumps({"text": d}) + "\n" for d in _documents("book", 30, 4)).encode()
    (work / "books.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    released = work / "regmix-data" / "train"  # RegMix's release: <domain>-<N>-<...>.jsonl shards
    released.mkdir(parents=True)
    for seed, domain in enumerate(("pile_cc", "github")):
        for shard in range(2):
            docs = _documents(domain, 30, 10 * seed + shard)
            (released / f"{domain}-{shard}-{len(docs)}.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    tokens = work / "tokens"  # a trainer's token files (nanoGPT uint16 .bin) and their tokenizer.json
    docs = {domain: _documents(domain, 40, 20 + seed) for seed, domain in enumerate(("prose", "notes"))}
    tokens.mkdir()
    train_bpe([d for group in docs.values() for d in group], vocab_size=400).tokenizer.save(str(tokens / "tokenizer.json"))
    tok = load_tokenizer_file(tokens / "tokenizer.json")
    for domain, group in docs.items():
        (tokens / domain).mkdir()
        ids = [np.append(e.ids, tok.eos_id) for e in tok.tokenizer.encode_batch(group, add_special_tokens=False)]
        np.concatenate(ids).astype(np.uint16).tofile(tokens / domain / "part-0.bin")


@pytest.mark.slow  # ~15 commands, 6 tiny proxies, 2 fits, 2 proposals
def test_the_readme_runs_in_order(tmp_path):
    text = (REPO / "README.md").read_text()
    blocks = [
        *section_blocks(text, "## Stage by stage"),
        *section_blocks(text, "### Your own data"),
        *section_blocks(text, "## Active rounds"),
    ]
    assert len(blocks) == 4, "Stage by stage (1), Your own data (2), Active rounds (1)"
    assert "N=${N:-" in blocks[0], "the README's proxy count is the one knob this test turns"
    users_files(tmp_path)
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))  # the README activates .venv of its folder
    script = "set -e -o pipefail\n" + "\n".join(blocks)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"N": str(N)}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])

    k = N // 2
    for sweep, n in (("first", N), ("first_r1", k)):
        records = [read_record(p.parent) for p in (tmp_path / "runs" / sweep).glob("*/result.json")]
        assert len(records) == n and all(r.status == FINISHED for r in records), sweep
    assert read_record(tmp_path / "runs" / "target" / "first_web_blend").status == FINISHED
    assert (tmp_path / "conf" / "mixture" / "first-first_r1_web_blend.yaml").is_file()
    assert len(read_mixtures_table(tmp_path / "sweeps" / "first_r2.mixtures.csv")) == k
    assert "by round: first 4, first_r1 2" in done.stdout
    for name in ("code_prose", "table", "table_bpe", "cc_books", "released", "tokens"):
        assert read_meta(tmp_path / "data" / name).train_domains, name
    assert not (tmp_path / "data" / "text").exists(), "every own-data example names its own corpus"
