"""The Mongo-style run filters of W&B's `runs(filters=...)`, evaluated in memory.

What the public API sends as the `filters` JSON string: `{"state": "finished"}`,
`{"sweep": id}`, `{"group": g}`, `{"tags": {"$in": [...]}}`, `{"$and": [...]}`, comparison
operators on `config.<key>` / `summary_metrics.<key>`. Array fields (tags) match when any
element matches, as in MongoDB. An operator this module does not know raises
`UnsupportedFilter`, so the fake fails the test instead of returning a wrong page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

#: Sentinel: the document has no such field.
MISSING = object()

Lookup = Callable[[str], Any]
"""key -> value of the run for that filter key, or MISSING."""


class UnsupportedFilter(ValueError):
    """A filter operator the fake backend does not implement."""


def matches(lookup: Lookup, query: Mapping[str, Any]) -> bool:
    """Whether the run behind `lookup` satisfies the Mongo-style `query`."""
    for key, condition in query.items():
        if key == "$and":
            if not all(matches(lookup, sub) for sub in condition):
                return False
        elif key == "$or":
            if not any(matches(lookup, sub) for sub in condition):
                return False
        elif key == "$nor":
            if any(matches(lookup, sub) for sub in condition):
                return False
        elif key.startswith("$"):
            raise UnsupportedFilter(f"top-level filter operator {key}")
        elif not _field_matches(lookup(key), condition):
            return False
    return True


def _field_matches(value: Any, condition: Any) -> bool:
    if isinstance(condition, Mapping) and condition and all(k.startswith("$") for k in condition):
        return all(_operator(value, op, arg) for op, arg in condition.items())
    return _equals(value, condition)


def _candidates(value: Any) -> list[Any]:
    """The values a scalar condition is tested against: an array's elements, or the value."""
    return list(value) if isinstance(value, list) else [value]


def _equals(value: Any, expected: Any) -> bool:
    if value is MISSING:
        return expected is None
    if isinstance(value, list) and not isinstance(expected, list):
        return expected in value
    return value == expected


def _compare(value: Any, arg: Any, test: Callable[[Any, Any], bool]) -> bool:
    for item in _candidates(value):
        if item is MISSING or item is None:
            continue
        try:
            if test(item, arg):
                return True
        except TypeError:  # Mongo: values of different types never compare
            continue
    return False


def _operator(value: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return _equals(value, arg)
    if op == "$ne":
        return not _equals(value, arg)
    if op == "$in":
        return any(_equals(value, item) for item in arg)
    if op == "$nin":
        return not any(_equals(value, item) for item in arg)
    if op == "$exists":
        return (value is not MISSING) == bool(arg)
    if op == "$gt":
        return _compare(value, arg, lambda a, b: a > b)
    if op == "$gte":
        return _compare(value, arg, lambda a, b: a >= b)
    if op == "$lt":
        return _compare(value, arg, lambda a, b: a < b)
    if op == "$lte":
        return _compare(value, arg, lambda a, b: a <= b)
    if op == "$regex":
        pattern = re.compile(arg)
        return any(isinstance(item, str) and pattern.search(item) for item in _candidates(value))
    if op == "$not":
        return not _field_matches(value, arg)
    raise UnsupportedFilter(f"filter operator {op}")
