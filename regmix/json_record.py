"""Dataclass records stored as JSON objects that stay readable across versions.

`schema` is written first; keys a record's version does not know are kept in `extra` when
read and written back as they were, so an older regmix never drops what a newer one wrote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def record_to_dict(record) -> dict[str, Any]:
    """`record` (a dataclass with `schema` and `extra` fields) as a JSON-ready mapping."""
    fields = {k: v for k, v in dataclasses.asdict(record).items() if k not in ("schema", "extra")}
    return {"schema": record.schema, **fields, **record.extra}


def split_known(cls, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`data`'s keys that are fields of dataclass `cls`, and the rest (its `extra`)."""
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    known = {k: v for k, v in data.items() if k in names}
    return known, {k: v for k, v in data.items() if k not in names}
