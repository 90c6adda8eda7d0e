"""Local text as corpus domains (`data.source=text`): files, folders and globs, or one table.

Two ways to name domains:

- `data.paths={domain: [file|folder|glob, ...]}`: plain text (.txt/.text/.md and any
  `data.text_suffixes`; one document per file or per blank-line block), jsonl/ndjson (one JSON
  object per line, text in `data.text_field`), parquet or csv (text in column `data.text_field`);
- `data.file=<one jsonl/parquet/csv>` whose `data.domain_field` column names each row's domain.

Documents are split into train/val per domain by a seeded permutation (`split_documents`).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from regmix.errors import RegmixError

PLAIN_TEXT_SUFFIXES = (".txt", ".text", ".md")
TABLE_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".csv": "csv"}
TXT_DOCUMENT_MODES = ("file", "blank_line")

# A domain names a folder of the corpus (<domain>/train.bin), so it must be a plain file name.
DOMAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")


class TextSourceError(RegmixError):
    """Text input that cannot be read as asked; the message names the file/value and the fix."""


def check_domain_name(name: str) -> None:
    if not isinstance(name, str) or DOMAIN_NAME.fullmatch(name) is None:
        raise TextSourceError(
            f"domain name {name!r} is not usable as a folder name; use letters, digits, '_', '-', '.' "
            "(starting with a letter or digit)"
        )


def file_format(path: Path, text_suffixes: Sequence[str] = ()) -> str | None:
    """'txt', 'jsonl', 'parquet', 'csv', or None for a suffix regmix does not read."""
    suffix = path.suffix.lower()
    if suffix in TABLE_FORMATS:
        return TABLE_FORMATS[suffix]
    if suffix in PLAIN_TEXT_SUFFIXES or suffix in {s.lower() for s in text_suffixes}:
        return "txt"
    return None


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


def _read_table(path: Path, fmt: str, columns: Sequence[str]) -> dict[str, list]:
    """Columns of a jsonl/parquet/csv file, each a list of values; missing columns are an error."""
    if fmt == "jsonl":
        rows = []
        with open(path, "rb") as fh:
            for line_no, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise TextSourceError(
                        f"{path} line {line_no} is not UTF-8 (byte {exc.start + 1} of the line); "
                        "re-encode the file as UTF-8 or drop that line"
                    ) from None
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise TextSourceError(
                        f"{path} line {line_no} is not JSON ({exc.msg}); fix or drop that line"
                    ) from None
                if not isinstance(row, dict):
                    raise TextSourceError(f"{path} line {line_no} is not a JSON object; each line must be {{...}}")
                for column in columns:
                    if column not in row:
                        raise TextSourceError(
                            f"{path} line {line_no} has no field {column!r} (fields: {sorted(row)}); "
                            f"set data.text_field / data.domain_field"
                        )
                rows.append(row)
        return {column: [row[column] for row in rows] for column in columns}
    import pandas as pd

    if fmt == "parquet":
        try:
            frame = pd.read_parquet(path)
        except ImportError as exc:
            raise TextSourceError(
                f"reading {path} needs a pyarrow that works with this numpy ({exc}); "
                "install a matching pyarrow or convert the file to jsonl"
            ) from None
    else:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except UnicodeDecodeError:
            raise TextSourceError(f"{path} is not UTF-8 text; re-encode the file as UTF-8") from None
    for column in columns:
        if column not in frame.columns:
            raise TextSourceError(
                f"{path} has no column {column!r} (columns: {list(frame.columns)}); "
                "set data.text_field / data.domain_field"
            )
    return {column: frame[column].tolist() for column in columns}


def _not_text(path: Path, field: str, value: object) -> TextSourceError:
    return TextSourceError(
        f"{path}: field {field!r} holds {type(value).__name__} values, not text; set data.text_field"
    )


def _texts(values: Iterable, path: Path, field: str) -> list[str]:
    out = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, str):
            raise _not_text(path, field, value)
        out.append(value)
    return out


def read_documents(path: Path, *, fmt: str, text_field: str = "text", txt_documents: str = "file") -> list[str]:
    """The non-blank documents of one file."""
    if fmt == "txt":
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        if txt_documents not in TXT_DOCUMENT_MODES:
            raise TextSourceError(f"data.txt_documents={txt_documents!r}; use 'file' or 'blank_line'")
        docs = [text] if txt_documents == "file" else _BLANK_LINE.split(text)
    else:
        docs = _texts(_read_table(path, fmt, [text_field])[text_field], path, text_field)
    return [doc for doc in docs if doc.strip()]


def read_domain_paths(
    files: dict[str, list[Path]], *, text_field: str, txt_documents: str, text_suffixes: Sequence[str] = ()
) -> dict[str, list[str]]:
    """domain -> documents, from the files `resolve_paths` found for each domain."""
    documents = {}
    for domain, paths in files.items():
        docs: list[str] = []
        for path in paths:
            fmt = file_format(path, text_suffixes)
            docs.extend(read_documents(path, fmt=fmt, text_field=text_field, txt_documents=txt_documents))
        if not docs:
            raise TextSourceError(f"domain {domain!r} has no documents (its files are empty); give it text or drop it")
        documents[domain] = docs
    return documents


def read_domain_file(path: str | os.PathLike, *, text_field: str, domain_field: str) -> dict[str, list[str]]:
    """domain -> documents, from one jsonl/parquet/csv file with a domain column (domains sorted)."""
    path = Path(path)
    if not path.is_file():
        raise TextSourceError(f"data.file {path} does not exist; fix data.file")
    fmt = TABLE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise TextSourceError(
            f"unknown format of data.file {path} (suffix {path.suffix or 'none'!r}); "
            "use a .jsonl, .parquet or .csv file"
        )
    table = _read_table(path, fmt, [text_field, domain_field])
    documents: dict[str, list[str]] = {}
    for text, domain in zip(table[text_field], table[domain_field]):
        if text is None or domain is None:
            continue
        if not isinstance(text, str):
            raise _not_text(path, text_field, text)
        if text.strip():
            documents.setdefault(str(domain), []).append(text)
    if not documents:
        raise TextSourceError(f"data.file {path} has no non-empty documents; give it text")
    for domain in documents:
        check_domain_name(domain)
    return dict(sorted(documents.items()))


def split_documents(
    documents: Sequence[str], *, val_fraction: float, seed: int, domain: str
) -> tuple[list[str], list[str]]:
    """(train, val) documents: a seeded permutation, the first ceil(val_fraction * n) go to val.

    Both splits keep the permuted order, so the first tokens of val (an eval slice) are a random
    sample of the domain rather than its alphabetically first files.
    """
    n = len(documents)
    if n < 2:
        raise TextSourceError(
            f"domain {domain!r} has {n} document; at least 2 are needed to hold one out for validation "
            "(add files, or set data.txt_documents=blank_line to split text files into blocks)"
        )
    n_val = min(n - 1, max(1, int(np.ceil(val_fraction * n))))
    # One stream per domain (keyed by a hash of its name), so domains do not share a permutation.
    domain_key = int.from_bytes(hashlib.sha256(domain.encode()).digest()[:4], "little")
    order = np.random.default_rng([seed, domain_key]).permutation(n)
    return [documents[i] for i in order[n_val:]], [documents[i] for i in order[:n_val]]
