"""Local text as corpus domains (`data.source=text`): files, folders and globs, or one table.

Two ways to name domains:

- `data.paths={domain: [file|folder|glob, ...]}`: plain text (.txt/.text/.md and any
  `data.text_suffixes`; one document per file or per blank-line block), jsonl/ndjson (one JSON
  object per line, text in `data.text_field`; plain, .gz or .zst), parquet, csv or Arrow (text in
  column `data.text_field`; a `datasets.save_to_disk` folder is a folder of .arrow shards);
- `data.file=<one jsonl/parquet/csv/arrow>` whose `data.domain_field` column names each row's domain.

The files are read by `regmix.corpus.formats` and streamed by `regmix.corpus.stream`; documents
are sampled and split into train/val by `regmix.corpus.sampling`.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from regmix.corpus.formats import (  # noqa: F401  (the text source's names, re-exported)
    PLAIN_TEXT_SUFFIXES,
    TABLE_FORMATS,
    TXT_DOCUMENT_MODES,
    TextSourceError,
    file_format,
)

# A domain names a folder of the corpus (<domain>/train.bin), so it must be a plain file name.
DOMAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_domain_name(name: str) -> None:
    if not isinstance(name, str) or DOMAIN_NAME.fullmatch(name) is None:
        raise TextSourceError(
            f"domain name {name!r} is not usable as a folder name; use letters, digits, '_', '-', '.' "
            "(starting with a letter or digit)"
        )


def _unknown_format(path: Path) -> TextSourceError:
    return TextSourceError(
        f"unknown format of {path} (suffix {path.suffix or 'none'!r}); regmix reads "
        f"{', '.join(PLAIN_TEXT_SUFFIXES + tuple(TABLE_FORMATS))}; to read it as plain text add "
        f"its suffix to data.text_suffixes"
    )


def resolve_paths(domain: str, specs: Sequence[str], text_suffixes: Sequence[str] = ()) -> list[Path]:
    """Every readable file of one domain's specs, in a stable order (specs as given, files sorted).

    A file or glob match with an unknown suffix is an error; inside a folder such files are
    skipped (folders often hold other things), but a folder that yields nothing is an error.
    """
    if isinstance(specs, str):
        specs = [specs]
    files: list[Path] = []
    for spec in specs:
        spec = os.path.expanduser(str(spec))
        if glob.has_magic(spec):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise TextSourceError(f"domain {domain!r}: pattern {spec!r} matches no file; fix data.paths.{domain}")
        elif Path(spec).exists():
            matches = [spec]
        else:
            raise TextSourceError(f"domain {domain!r}: path {spec} does not exist; fix data.paths.{domain}")
        for match in map(Path, matches):
            if match.is_dir():
                inside = sorted(p for p in match.rglob("*") if p.is_file() and file_format(p, text_suffixes))
                if not inside:
                    raise TextSourceError(
                        f"domain {domain!r}: folder {match} holds no readable file "
                        f"({', '.join(PLAIN_TEXT_SUFFIXES + tuple(TABLE_FORMATS))}); "
                        "add its suffix to data.text_suffixes or point at other files"
                    )
                files.extend(inside)
            elif file_format(match, text_suffixes):
                files.append(match)
            else:
                raise _unknown_format(match)
    return files


def fingerprint(files: Iterable[Path]) -> str:
    """Short hash of the input files' paths, sizes and modification times (cheap change detection)."""
    digest = hashlib.sha256()
    for path in files:
        stat = Path(path).stat()
        digest.update(f"{Path(path).resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
