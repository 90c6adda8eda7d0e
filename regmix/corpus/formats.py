"""Streaming readers of the text formats `regmix-prepare` takes: batches of documents, never a whole file.

Every reader yields `DocBatch`es in file order. A batch holds the raw size of every record (so a
size scan needs no parsing) and the text of the records the caller `wanted` (others stay None, so
a token budget that samples 1% of a file parses 1% of its JSON). Record positions (`first` + i)
count every record of the file, blank ones included: they name a document independently of how
the file is cut into batches, which the budget's and the split's hashes rely on.

Formats: plain text (one document per file, or per blank-line block), jsonl/ndjson (plain, .gz or
.zst), csv, parquet and Arrow IPC (file or stream; a Hugging Face `datasets.save_to_disk` folder
is a folder of such `.arrow` shards). Columnar formats are read batch by batch with pyarrow.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regmix.errors import RegmixError

PLAIN_TEXT_SUFFIXES = (".txt", ".text", ".md")
TABLE_FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl.gz", ".ndjson.gz": "jsonl.gz",
    ".jsonl.zst": "jsonl.zst", ".ndjson.zst": "jsonl.zst", ".jsonl.zstd": "jsonl.zst",
    ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow",
}
TXT_DOCUMENT_MODES = ("file", "blank_line")
FORMATS_EXTRA = "pip install 'regmix[formats]'"

BATCH_RECORDS = 1024
"""Records per batch of a line or block format: one encode_batch call's worth of documents."""
BATCH_BYTES = 16 << 20
"""...or fewer when their raw bytes pass this (16 MB): bounds a batch of long documents."""
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")

Wanted = Callable[[int, int], np.ndarray]
"""wanted(first, n) -> bool mask of the records first..first+n-1 whose text the caller needs."""


class TextSourceError(RegmixError):
    """Text input that cannot be read as asked; the message names the file/value and the fix."""


@dataclass
class DocBatch:
    first: int
    """Position of the batch's first record in its file."""
    texts: list
    """Text of each record; None where not wanted, missing, or not text."""
    sizes: np.ndarray
    """Raw bytes of each record (int64): the jsonl line, or the text's UTF-8 bytes."""
    domains: list | None = None
    """The domain column's value of each record (tables read with a domain field)."""


def file_format(path: Path, text_suffixes=()) -> str | None:
    """'txt', 'jsonl', 'jsonl.gz', 'jsonl.zst', 'parquet', 'csv', 'arrow', or None."""
    name = path.name.lower()
    for suffix, fmt in TABLE_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    suffix = path.suffix.lower()
    if suffix in PLAIN_TEXT_SUFFIXES or suffix in {s.lower() for s in text_suffixes}:
        return "txt"
    return None


def _all(first: int, n: int) -> np.ndarray:
    return np.ones(n, dtype=bool)


def read_batches(path: Path, fmt: str, *, text_field: str = "text", domain_field: str | None = None,
                 txt_documents: str = "file", wanted: Wanted | None = None) -> Iterator[DocBatch]:
    """The records of one file in batches (see the module docstring)."""
    wanted = wanted or _all
    if fmt == "txt":
        yield from _txt_batches(path, txt_documents, wanted)
    elif fmt.startswith("jsonl"):
        yield from _jsonl_batches(path, fmt, text_field, domain_field, wanted)
    else:
        yield from _arrow_batches(path, fmt, text_field, domain_field, wanted)


def _txt_batches(path: Path, txt_documents: str, wanted: Wanted) -> Iterator[DocBatch]:
    if txt_documents not in TXT_DOCUMENT_MODES:
        raise TextSourceError(f"data.txt_documents={txt_documents!r}; use 'file' or 'blank_line'")
    # One document per file (or per block of one file): a text file is read whole, as before.
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    docs = [text] if txt_documents == "file" else _BLANK_LINE.split(text)
    for start in range(0, len(docs), BATCH_RECORDS):
        part = docs[start : start + BATCH_RECORDS]
        mask = wanted(start, len(part))
        sizes = np.fromiter((len(d.encode("utf-8")) for d in part), dtype=np.int64, count=len(part))
        yield DocBatch(start, [d if keep else None for d, keep in zip(part, mask)], sizes)


def _open_binary(path: Path, fmt: str):
    if fmt == "jsonl.gz":
        return gzip.open(path, "rb")
    if fmt == "jsonl.zst":
        try:
            import zstandard
        except ImportError:
            raise TextSourceError(f"reading {path} needs the zstandard package: {FORMATS_EXTRA}") from None
        raw = open(path, "rb")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True), 1 << 20)
    return open(path, "rb", buffering=1 << 20)


def _jsonl_batches(path: Path, fmt: str, text_field: str, domain_field: str | None,
                   wanted: Wanted) -> Iterator[DocBatch]:
    columns = [text_field] + ([domain_field] if domain_field else [])
    with _open_binary(path, fmt) as fh:
        line_no = 0
        while True:
            lines, nbytes = [], 0
            for raw in fh:
                lines.append(raw)
                nbytes += len(raw)
                if len(lines) >= BATCH_RECORDS or nbytes >= BATCH_BYTES:
                    break
            if not lines:
                return
            first = line_no
            line_no += len(lines)
            sizes = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
            mask = wanted(first, len(lines)) if domain_field is None else _all(first, len(lines))
            texts: list = [None] * len(lines)
            domains: list | None = [None] * len(lines) if domain_field else None
            for i in np.flatnonzero(mask):
                row = _json_row(path, first + i + 1, lines[i], columns)
                if row is None:
                    continue
                texts[i] = _text_value(path, text_field, row[text_field])
                if domains is not None:
                    domains[i] = row[domain_field]
            yield DocBatch(first, texts, sizes, domains)


def _json_row(path: Path, line_no: int, raw: bytes, columns: list[str]) -> dict | None:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextSourceError(
            f"{path} line {line_no} is not UTF-8 (byte {exc.start + 1} of the line); "
            "re-encode the file as UTF-8 or drop that line"
        ) from None
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TextSourceError(f"{path} line {line_no} is not JSON ({exc.msg}); fix or drop that line") from None
    if not isinstance(row, dict):
        raise TextSourceError(f"{path} line {line_no} is not a JSON object; each line must be {{...}}")
    for column in columns:
        if column not in row:
            raise TextSourceError(
                f"{path} line {line_no} has no field {column!r} (fields: {sorted(row)}); "
                "set data.text_field / data.domain_field"
            )
    return row


def _text_value(path: Path, field: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TextSourceError(f"{path}: field {field!r} holds {type(value).__name__} values, not text; set data.text_field")


def _pyarrow(path: Path):
    try:
        import pyarrow  # noqa: F401
        import pyarrow.compute  # noqa: F401
    except ImportError as exc:
        raise TextSourceError(
            f"reading {path} needs a pyarrow that works with this numpy ({exc}); "
            "install a matching pyarrow or convert the file to jsonl"
        ) from None
    import pyarrow as pa

    return pa


def _record_batches(path: Path, fmt: str, columns: list[str]):
    """pyarrow RecordBatches of `columns`, read incrementally (no memory map: mapped pages count
    as resident memory, and a corpus is larger than memory)."""
    pa = _pyarrow(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            pfile = pq.ParquetFile(path)
        except pa.ArrowException as exc:
            raise TextSourceError(f"{path} is not a readable parquet file ({exc}); fix or drop it") from None
        _check_columns(path, pfile.schema_arrow.names, columns)
        yield from pfile.iter_batches(batch_size=BATCH_RECORDS, columns=columns)
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in columns}, strings_can_be_null=False,
                                       include_columns=columns)
        try:
            reader = pacsv.open_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                                    convert_options=convert, read_options=pacsv.ReadOptions(block_size=4 << 20))
        except pa.ArrowInvalid as exc:
            if "UTF8" in str(exc) or "utf8" in str(exc).lower():
                raise TextSourceError(f"{path} is not UTF-8 text; re-encode the file as UTF-8") from None
            names = _csv_header(path)
            _check_columns(path, names, columns)
            raise TextSourceError(f"{path} is not a readable csv file ({exc}); fix or drop it") from None
        yield from reader
    else:  # arrow: IPC stream (what `datasets` writes) or IPC file
        source = pa.OSFile(str(path), "rb")
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            source.close()
            source = pa.OSFile(str(path), "rb")
            try:
                file_reader = pa.ipc.open_file(source)
            except pa.ArrowInvalid as exc:
                raise TextSourceError(f"{path} is not an Arrow IPC file or stream ({exc}); fix or drop it") from None
            _check_columns(path, file_reader.schema.names, columns)
            for i in range(file_reader.num_record_batches):
                yield file_reader.get_batch(i).select(columns)
            return
        _check_columns(path, reader.schema.names, columns)
        for batch in reader:
            yield batch.select(columns)


def _csv_header(path: Path) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        return next(csv.reader(fh), [])


def _check_columns(path: Path, names: list[str], columns: list[str]) -> None:
    for column in columns:
        if column not in names:
            raise TextSourceError(
                f"{path} has no column {column!r} (columns: {list(names)}); set data.text_field / data.domain_field"
            )


def _arrow_batches(path: Path, fmt: str, text_field: str, domain_field: str | None,
                   wanted: Wanted) -> Iterator[DocBatch]:
    pa = _pyarrow(path)
    import pyarrow.compute as pc

    columns = [text_field] + ([domain_field] if domain_field else [])
    first = 0
    for batch in _record_batches(path, fmt, columns):
        if batch.num_rows == 0:
            continue
        # Big shards are cut into encode-sized pieces: a `datasets` shard may hold 10k+ rows per batch.
        for start in range(0, batch.num_rows, BATCH_RECORDS):
            part = batch.slice(start, BATCH_RECORDS)
            column = part.column(0)
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                raise TextSourceError(
                    f"{path}: field {text_field!r} holds {column.type} values, not text; set data.text_field"
                )
            n = part.num_rows
            sizes = np.asarray(pc.fill_null(pc.binary_length(column), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
            mask = wanted(first, n) if domain_field is None else _all(first, n)
            texts: list = [None] * n
            picked = np.flatnonzero(mask)
            if len(picked) == n:
                texts = column.to_pylist()
            elif len(picked):
                for i, value in zip(picked, column.take(pa.array(picked)).to_pylist()):
                    texts[i] = value
            domains = part.column(1).to_pylist() if domain_field else None
            yield DocBatch(first, texts, sizes, domains)
            first += n
