"""The streaming pass of `regmix-prepare` over local text: read, sample, split, tokenize, append.

Files are taken one at a time and read in batches (`formats.read_batches`, in a reader thread so
that JSON parsing overlaps tokenization); each batch is tokenized in one call that uses every core
and appended to the shards with plain writes. Memory holds a few batches, never a domain: a 1 GB
domain and a 100 GB one need the same.

Resumable: after each file a stamp in `<corpus>/.parts/` records every domain's running tallies
(tokens written, documents seen). A rerun of the same plan truncates the shards to the last stamp
and goes on with the next file, so an interrupted prepare gives the same bytes as one that ran
through. The plan (settings, tokenizer, sampling rates) is stamped first: a rerun never mixes two.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from regmix.atomic_file import write_text_atomic
from regmix.corpus import sampling
from regmix.corpus.formats import DocBatch, TextSourceError, read_batches
from regmix.corpus.store import shard_path
from regmix.corpus.text import check_domain_name

log = logging.getLogger(__name__)

PARTS_DIR = ".parts"
"""Stamps of a prepare in progress, inside the corpus folder; removed when the corpus is finished."""
PLAN_NAME = "plan.json"
PROBE_BYTES = 4 << 20
"""Raw bytes per domain tokenized to measure tokens per byte before a budgeted pass (4 MB: the
ratio is stable to ~1% on text of one kind)."""
_READ_AHEAD = 3
"""Batches the reader thread may run ahead of tokenization."""


@dataclass
class Unit:
    """One input file of the pass."""

    path: Path
    fmt: str
    domain: str | None
    """None: every record names its domain (data.file with a domain column)."""
    key: str
    """The file's path relative to its domain's files: what the sampling hashes name it by."""
    size: int
    """Bytes on disk."""


@dataclass
class ReadOptions:
    text_field: str = "text"
    domain_field: str = "domain"
    txt_documents: str = "file"


@dataclass
class DomainTally:
    """A domain's running counts over the files read so far (stamped after every file)."""

    documents: int = 0
    """Non-blank documents kept by the budget (the validation split's counter)."""
    train_tokens: int = 0
    val_tokens: int = 0
    raw_bytes: int = 0
    """Raw bytes of every record read, kept or not (jsonl lines, or text): the size scan."""
    encoded_raw_bytes: int = 0
    encoded_tokens: int = 0
    """Raw bytes and tokens of the documents tokenized: the measured tokens per raw byte."""

    @property
    def tokens_per_byte(self) -> float:
        return self.encoded_tokens / self.encoded_raw_bytes if self.encoded_raw_bytes else 0.0


@dataclass
class PassSettings:
    seed: int
    val_fraction: float
    targets: list[str]
    rates: dict[str, float] = field(default_factory=dict)
    """domain -> share of documents the budget keeps (missing: 1, all)."""
    max_tokens: int | None = None
    """Cap on a domain's training tokens (a target's validation tokens)."""


# ----------------------------------------------------------------------------------------------
# Reading helpers: a reader thread, record streams, the size scan, probes and the BPE sample
# ----------------------------------------------------------------------------------------------

class _ReadAhead:
    """Runs an iterator in a thread, `_READ_AHEAD` items ahead; errors surface in the consumer."""

    _DONE = object()

    def __init__(self, items: Iterable) -> None:
        self._queue: queue.Queue = queue.Queue(_READ_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, items: Iterable) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(self._DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)

    def __iter__(self):
        try:
            while True:
                item = self._queue.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()


def _batches(unit: Unit, opts: ReadOptions, wanted=None) -> Iterator[DocBatch]:
    return read_batches(unit.path, unit.fmt, text_field=opts.text_field,
                        domain_field=opts.domain_field if unit.domain is None else None,
                        txt_documents=opts.txt_documents, wanted=wanted)


def _domain_of(unit: Unit, batch: DocBatch, i: int) -> str | None:
    if unit.domain is not None:
        return unit.domain
    value = batch.domains[i]
    return None if value is None else str(value)


def _is_document(text: str | None) -> bool:
    return bool(text) and not text.isspace()


def scan_raw_bytes(units: list[Unit], opts: ReadOptions) -> dict[str, int]:
    """domain -> raw bytes of all its records (the budget's size scan: nothing is tokenized, and
    jsonl lines of known domain are not even parsed)."""
    out: dict[str, int] = {}
    nothing = lambda first, n: np.zeros(n, dtype=bool)  # noqa: E731
    with tqdm(total=sum(u.size for u in units), desc="scan sizes", unit="B", unit_scale=True, disable=None) as bar:
        for unit in units:
            for batch in _ReadAhead(_batches(unit, opts, nothing)):
                if unit.domain is not None:
                    out[unit.domain] = out.get(unit.domain, 0) + int(batch.sizes.sum())
                else:
                    for i, size in enumerate(batch.sizes):
                        domain = _domain_of(unit, batch, i)
                        if domain is not None:
                            out[domain] = out.get(domain, 0) + int(size)
            bar.update(unit.size)
    return out


def _head_records(units: list[Unit], opts: ReadOptions) -> Iterator[tuple[str, str, int]]:
    """(domain, text, raw bytes) of the documents of `units`, from the start of each file."""
    for unit in units:
        for batch in _batches(unit, opts):
            for i, text in enumerate(batch.texts):
                domain = _domain_of(unit, batch, i)
                if domain is not None and _is_document(text):
                    yield domain, text, int(batch.sizes[i])


def probe_tokens_per_byte(units: list[Unit], opts: ReadOptions, tokenizer, domains: list[str]) -> dict[str, float]:
    """domain -> tokens per raw byte of the first `PROBE_BYTES` of its documents (a domain a
    shared file holds too rarely to find in its first 64 probes' worth is left out)."""
    texts: dict[str, list[str]] = {d: [] for d in domains}
    raw = dict.fromkeys(domains, 0)
    # Each domain's own files, in turn; the shared file of data.file once, for every domain.
    groups = [([u for u in units if u.domain == d], [d]) for d in domains]
    groups.append(([u for u in units if u.domain is None], domains))
    for group, wanted in groups:
        read = 0
        for found, text, size in _head_records(group, opts):
            read += size
            if found in raw and raw[found] < PROBE_BYTES:
                texts[found].append(text)
                raw[found] += size
            if read >= 64 * PROBE_BYTES or all(raw[d] >= PROBE_BYTES for d in wanted):
                break
    out = {}
    for domain in domains:
        if raw[domain]:
            _, lengths = tokenizer.encode_documents(texts[domain])
            out[domain] = float(lengths.sum()) / raw[domain]
    return out


def training_sample(units: list[Unit], opts: ReadOptions, quotas: dict[str | None, int], *, targets: list[str],
                    max_chars_per_document: int, piece_chars: int) -> Iterator[str]:
    """Text for the BPE trainer: up to `quotas[domain]` characters of each domain (None: of any
    training domain), from the start of each of its files in proportion to the file's size, at most
    `max_chars_per_document` of one document, in pieces of at most `piece_chars` characters (a
    run without whitespace is one pre-token, whose cost in the trainer grows with its length)."""
    for domain, quota in quotas.items():
        mine = [u for u in units if domain is None or u.domain == domain]
        total = sum(u.size for u in mine) or 1
        left_domain = quota
        for unit in mine:
            left = min(left_domain, max(1, round(quota * unit.size / total)))
            for found, text, _ in _head_records([unit], opts):
                if left <= 0:
                    break
                if found in targets or (domain is not None and found != domain):
                    continue
                text = text[: min(max_chars_per_document, left)]
                left -= len(text)
                left_domain -= len(text)
                for start in range(0, len(text), piece_chars):
                    yield text[start : start + piece_chars]
            if left_domain <= 0:
                break


# ----------------------------------------------------------------------------------------------
# The pass
# ----------------------------------------------------------------------------------------------

class _Shards:
    """The open train/val shard files of every domain met so far."""

    def __init__(self, corpus_dir: Path, dtype: np.dtype) -> None:
        self.corpus_dir = corpus_dir
        self.dtype = dtype
        self.files: dict[str, dict[str, Any]] = {}

    def open(self, domain: str, tally: DomainTally | None) -> None:
        """Open a domain's shards for appending, cut back to `tally` (None: empty)."""
        (self.corpus_dir / domain).mkdir(parents=True, exist_ok=True)
        handles = {}
        for split in ("train", "val"):
            path = shard_path(self.corpus_dir, domain, split)
            tokens = getattr(tally, f"{split}_tokens") if tally else 0
            fh = open(path, "ab")
            fh.truncate(tokens * self.dtype.itemsize)  # what a killed run wrote after its last stamp
            handles[split] = fh
        self.files[domain] = handles

    def write(self, domain: str, split: str, pieces: list[np.ndarray]) -> None:
        if not pieces:
            return
        ids = np.concatenate(pieces).astype(self.dtype, copy=False)
        path = shard_path(self.corpus_dir, domain, split)
        try:  # not ndarray.tofile: its errors carry no errno; a full disk names the shard
            self.files[domain][split].write(memoryview(np.ascontiguousarray(ids)).cast("B"))
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None

    def flush(self) -> None:
        for handles in self.files.values():
            for fh in handles.values():
                fh.flush()

    def close(self) -> None:
        for handles in self.files.values():
            for fh in handles.values():
                fh.close()
        self.files = {}


def _stamp_path(parts: Path, index: int) -> Path:
    return parts / f"{index:06d}.json"


def _resume_point(parts: Path, plan: dict[str, Any], n_units: int) -> tuple[int, dict[str, DomainTally]]:
    """(first unit to do, tallies after the units before it) from the stamps of this very plan."""
    try:
        same_plan = json.loads((parts / PLAN_NAME).read_text()) == plan
    except (OSError, ValueError):
        same_plan = False
    if not same_plan:
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
        write_text_atomic(parts / PLAN_NAME, json.dumps(plan))
        return 0, {}
    done, tallies = 0, {}
    while done < n_units:
        try:
            stamp = json.loads(_stamp_path(parts, done).read_text())
        except (OSError, ValueError):
            break
        tallies = {d: DomainTally(**t) for d, t in stamp["tallies"].items()}
        done += 1
    return done, tallies


def run_pass(corpus_dir: Path, units: list[Unit], tokenizer, dtype: np.dtype, opts: ReadOptions,
             settings: PassSettings, plan: dict[str, Any], known_domains: Iterable[str] = ()) -> dict[str, DomainTally]:
    """Tokenize `units` into `corpus_dir/<domain>/{train,val}.bin`; domain -> tallies.

    Resumes from the stamps of an interrupted pass with the same `plan`."""
    parts = corpus_dir / PARTS_DIR
    start, tallies = _resume_point(parts, plan, len(units))
    if start:
        print(f"resuming an interrupted prepare: {start} of {len(units)} files already done", flush=True)
    shards = _Shards(corpus_dir, dtype)
    splits: dict[str, sampling.ValidationSplit] = {}
    for domain in list(known_domains) + [d for d in tallies if d not in known_domains]:
        tallies.setdefault(domain, DomainTally())
    for domain, tally in tallies.items():
        shards.open(domain, tally)
        splits[domain] = sampling.ValidationSplit(settings.val_fraction, seen=tally.documents)
    total_bytes = sum(u.size for u in units)
    bar = tqdm(total=total_bytes, initial=sum(u.size for u in units[:start]), desc="tokenize", unit="B",
               unit_scale=True, disable=None)
    began, cpu_began, tokens_now = time.monotonic(), time.process_time(), 0
    try:
        for index in range(start, len(units)):
            unit = units[index]
            shown = 0
            for batch in _ReadAhead(_batches(unit, opts, _wanted(unit, settings))):
                tokens_now += _take_batch(unit, batch, tokenizer, settings, tallies, splits, shards)
                step = min(int(batch.sizes.sum()), unit.size - shown)
                shown += step
                bar.update(step)
                bar.set_postfix_str(f"{tokens_now / max(time.monotonic() - began, 1e-9):,.0f} tok/s", refresh=False)
            bar.update(unit.size - shown)
            shards.flush()  # the bytes are in the files before the stamp says so
            stamp = {"unit": index, "path": str(unit.path), "tallies": {d: asdict(t) for d, t in tallies.items()}}
            write_text_atomic(_stamp_path(parts, index), json.dumps(stamp))
    finally:
        bar.close()
        shards.close()
    seconds, cpu = time.monotonic() - began, time.process_time() - cpu_began  # cpu: all threads
    log.info("tokenized %d tokens from %d files in %.1f s at %.0f tokens/s; %.1f cpu-s, %.0f tokens per cpu-s",
             tokens_now, len(units) - start, seconds, tokens_now / max(seconds, 1e-9), cpu, tokens_now / max(cpu, 1e-9))
    return tallies


def _wanted(unit: Unit, settings: PassSettings):
    """The reader's filter: records of a known domain outside the budget's sample are not parsed."""
    if unit.domain is None or settings.rates.get(unit.domain, 1.0) >= 1.0:
        return None
    key, rate = sampling.file_key(settings.seed, "", unit.key), settings.rates[unit.domain]
    return lambda first, n: sampling.kept(sampling.record_hashes(key, first, n), rate)


def _take_batch(unit: Unit, batch: DocBatch, tokenizer, settings: PassSettings, tallies: dict[str, DomainTally],
                splits: dict[str, sampling.ValidationSplit], shards: _Shards) -> int:
    """Sample, split, tokenize and write one batch; tokens tokenized."""
    n = len(batch.texts)
    hashes = sampling.record_hashes(sampling.file_key(settings.seed, "", unit.key), batch.first, n)
    unit_u = sampling.unit_interval(hashes)
    keep = {}
    members: dict[str, list[int]] = {}
    for i in range(n):
        domain = _domain_of(unit, batch, i)
        if domain is None:
            continue
        if domain not in tallies:
            check_domain_name(domain)
            tallies[domain] = DomainTally()
            shards.open(domain, None)
            splits[domain] = sampling.ValidationSplit(settings.val_fraction)
        tallies[domain].raw_bytes += int(batch.sizes[i])
        if domain not in keep:
            keep[domain] = settings.rates.get(domain, 1.0)
        if _is_document(batch.texts[i]) and (keep[domain] >= 1.0 or unit_u[i] < keep[domain]):
            members.setdefault(domain, []).append(i)
    # Which documents go where, before tokenizing: a domain whose training share is full skips its train documents.
    plan: list[tuple[str, int, bool]] = []  # (domain, record, to validation)
    for domain, rows in members.items():
        tally = tallies[domain]
        tally.documents += len(rows)
        if domain in settings.targets:
            to_val = np.ones(len(rows), dtype=bool)
        else:
            to_val = splits[domain].take(hashes[rows])
        full_train = settings.max_tokens is not None and tally.train_tokens >= settings.max_tokens
        full_val = domain in settings.targets and settings.max_tokens is not None and tally.val_tokens >= settings.max_tokens
        for row, val in zip(rows, to_val):
            if (val and not full_val) or (not val and not full_train):
                plan.append((domain, row, bool(val)))
    if not plan:
        return 0
    flat, lengths = tokenizer.encode_documents([batch.texts[row] for _, row, _ in plan])
    ends = np.cumsum(lengths)
    pieces: dict[tuple[str, str], list[np.ndarray]] = {}
    for (domain, row, val), end, length in zip(plan, ends, lengths):
        tally = tallies[domain]
        tally.encoded_raw_bytes += int(batch.sizes[row])
        tally.encoded_tokens += int(length)
        ids = flat[end - length : end]
        split = "val" if val else "train"
        if settings.max_tokens is not None and (split == "train" or domain in settings.targets):
            room = settings.max_tokens - getattr(tally, f"{split}_tokens")
            ids = ids[: max(room, 0)]  # the budget ends inside this document
        setattr(tally, f"{split}_tokens", getattr(tally, f"{split}_tokens") + len(ids))
        pieces.setdefault((domain, split), []).append(ids)
    for (domain, split), parts in pieces.items():
        shards.write(domain, split, parts)
    return len(flat)


def finish_pass(corpus_dir: Path) -> None:
    """Remove the stamps of a pass whose corpus meta is written."""
    shutil.rmtree(corpus_dir / PARTS_DIR, ignore_errors=True)


def raise_for_empty(domain: str, tally: DomainTally, *, target: bool, budgeted: bool) -> None:
    """The errors a domain's tallies can show only after the pass."""
    if tally.documents == 0:
        what = "no documents were sampled for the budget" if budgeted and tally.raw_bytes else "its files are empty"
        raise TextSourceError(f"domain {domain!r} has no documents ({what}); give it text or drop it")
    if not target and tally.documents < 2:
        raise TextSourceError(
            f"domain {domain!r} has {tally.documents} document; at least 2 are needed to hold one out for validation "
            "(add files, or set data.txt_documents=blank_line to split text files into blocks)"
        )
    if not target and tally.train_tokens == 0:
        raise TextSourceError(
            f"domain {domain!r} has no training documents left after holding out validation; "
            "lower data.val_fraction or give it more documents"
        )

