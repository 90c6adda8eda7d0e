"""A folder of domains (`data.domains_dir`): the layout RegMix's released data and most crawls ship in.

    <domains_dir>/<domain>/...                  each subfolder is a domain: every readable file under it
    <domains_dir>/<domain>-<N>[-...].<suffix>   loose files: the domain is the name before `-<N>`
                                                (RegMix's `train/pile_cc-29-14142175.jsonl`)
    <domains_dir>/<domain>.<suffix>             a loose file without a shard number is a domain

It becomes `data.paths` (domain -> [subfolder or files]) before anything is read, so every source
(text, pretokenized) reads it as if the paths had been listed by hand. Readable means what the
source reads: text formats for `data.source=text`, .bin/.npy for `pretokenized`; other files
(hidden ones, READMEs, checksums) are skipped.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from regmix.corpus import pretokenized, text
from regmix.corpus.config import DataConfig
from regmix.errors import RegmixError

# `pile_cc-29-14142175.jsonl` -> pile_cc; the shard number is the first `-<digits>` part.
_SHARD_NAME = re.compile(r"(?P<domain>.+?)-\d+(?:[-.].*)?")


class LayoutError(RegmixError):
    """A domains folder that cannot be read as domains; the message names the folder and the fix."""


def domain_of_file(name: str) -> str:
    """The domain a loose file of a domains folder belongs to."""
    match = _SHARD_NAME.fullmatch(name)
    return match["domain"] if match else name.split(".")[0]


def _readable(cfg: DataConfig):
    if cfg.source == "pretokenized":
        return pretokenized.is_token_file
    return lambda path: text.file_format(path, cfg.text_suffixes) is not None


def domains_in_folder(folder: Path, readable) -> dict[str, list[str]]:
    """domain -> [its subfolder] or [its loose files], domains sorted by name."""
    if not folder.is_dir():
        raise LayoutError(f"data.domains_dir={folder} is not a folder; give the folder that holds one subfolder per domain")
    paths: dict[str, list[str]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if any(p.is_file() and readable(p) for p in entry.rglob("*")):
                paths.setdefault(entry.name, []).append(str(entry))
        elif entry.is_file() and readable(entry):
            paths.setdefault(domain_of_file(entry.name), []).append(str(entry))
    if not paths:
        raise LayoutError(
            f"data.domains_dir={folder} holds no readable file; put each domain's files in a subfolder named after it "
            "(or name loose files <domain>-<N>.<suffix>)"
        )
    for domain in paths:
        text.check_domain_name(domain)
    return dict(sorted(paths.items()))


def expand_domains_dir(cfg: DataConfig) -> DataConfig:
    """`cfg` with `data.domains_dir` turned into `data.paths` (unchanged without one)."""
    if not cfg.domains_dir:
        return cfg
    if cfg.paths or cfg.file:
        raise LayoutError(
            "data.domains_dir names the domains by itself; drop data.paths / data.file, or drop data.domains_dir"
        )
    if cfg.source not in ("text", "pretokenized"):
        raise LayoutError(
            f"data.domains_dir is read by data.source=text or pretokenized, not {cfg.source!r}; set data.source"
        )
    paths = domains_in_folder(Path(cfg.domains_dir).expanduser(), _readable(cfg))
    return dataclasses.replace(cfg, paths=paths)
