"""Just enough GraphQL to answer a client exactly what it asked for.

The W&B loopback fake builds one generous answer per operation (a superset of the fields any
client version selects) and trims it to the query's selection set here, so the response has
the shape a real GraphQL server would send: requested fields only, aliases applied, fragments
expanded. Fields the fake does not know come back as null and are reported, so a client
upgrade that asks for something new shows up in the test that ran it.

Not a GraphQL implementation: arguments are skipped (the fake reads the operation's
`variables` instead), directives are ignored and type conditions of inline fragments are not
checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional, Union

_TOKEN = re.compile(
    r'"""[\s\S]*?"""'  # block string
    r'|"(?:[^"\\]|\\.)*"'  # string
    r"|\.\.\."  # spread
    r"|[A-Za-z_][A-Za-z0-9_]*"  # name
    r"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"  # number
    r"|[{}()\[\]:=@$!|&]"  # punctuation
)
_IGNORED = re.compile(r"(?:\s|,|#[^\n]*)+")


class GraphQLSyntaxError(ValueError):
    """The query text could not be read."""


@dataclass
class Field:
    name: str
    alias: Optional[str] = None
    children: Optional[list["Selection"]] = None


@dataclass
class FragmentSpread:
    name: str


@dataclass
class InlineFragment:
    children: list["Selection"] = field(default_factory=list)


Selection = Union[Field, FragmentSpread, InlineFragment]


@dataclass
class Operation:
    kind: str
    """'query', 'mutation' or 'subscription'."""
    name: Optional[str]
    selection: list[Selection]
    fragments: dict[str, list[Selection]]


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        skip = _IGNORED.match(text, pos)
        if skip:
            pos = skip.end()
            continue
        match = _TOKEN.match(text, pos)
        if not match:
            raise GraphQLSyntaxError(f"unexpected character {text[pos]!r} at offset {pos}")
        out.append(match.group())
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> Optional[str]:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: Optional[str] = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise GraphQLSyntaxError(f"expected {expected!r}, got {tok!r}")
        self.i += 1
        return tok

    def skip_balanced(self, open_: str, close: str) -> None:
        depth = 0
        while True:
            tok = self.take()
            if tok == open_:
                depth += 1
            elif tok == close:
                depth -= 1
                if depth == 0:
                    return

    def skip_directives(self) -> None:
        while self.peek() == "@":
            self.take("@")
            self.take()
            if self.peek() == "(":
                self.skip_balanced("(", ")")

    def selection_set(self) -> list[Selection]:
        self.take("{")
        items: list[Selection] = []
        while self.peek() != "}":
            if self.peek() == "...":
                self.take("...")
                if self.peek() == "on":
                    self.take("on")
                    self.take()  # type condition: not checked
                    self.skip_directives()
                    items.append(InlineFragment(self.selection_set()))
                elif self.peek() in ("{", "@"):
                    self.skip_directives()
                    items.append(InlineFragment(self.selection_set()))
                else:
                    items.append(FragmentSpread(self.take()))
                    self.skip_directives()
                continue
            name = self.take()
            alias = None
            if self.peek() == ":":
                self.take(":")
                alias, name = name, self.take()
            if self.peek() == "(":
                self.skip_balanced("(", ")")
            self.skip_directives()
            children = self.selection_set() if self.peek() == "{" else None
            items.append(Field(name=name, alias=alias, children=children))
        self.take("}")
        return items

    def document(self) -> tuple[list[Operation], dict[str, list[Selection]]]:
        operations: list[Operation] = []
        fragments: dict[str, list[Selection]] = {}
        while self.peek() is not None:
            tok = self.peek()
            if tok == "{":
                operations.append(Operation("query", None, self.selection_set(), fragments))
            elif tok == "fragment":
                self.take()
                name = self.take()
                self.take("on")
                self.take()
                self.skip_directives()
                fragments[name] = self.selection_set()
            elif tok in ("query", "mutation", "subscription"):
                kind = self.take()
                name = None if self.peek() in ("(", "{", "@") else self.take()
                if self.peek() == "(":
                    self.skip_balanced("(", ")")
                self.skip_directives()
                operations.append(Operation(kind, name, self.selection_set(), fragments))
            else:
                raise GraphQLSyntaxError(f"unexpected {tok!r} at top level")
        return operations, fragments


def parse_operation(query: str, operation_name: Optional[str] = None) -> Operation:
    """The operation of `query` named `operation_name` (or its only/first one)."""
    operations, _ = _Parser(query).document()
    if not operations:
        raise GraphQLSyntaxError("the document holds no operation")
    if operation_name:
        for op in operations:
            if op.name == operation_name:
                return op
    return operations[0]


def _collect(selection: list[Selection], fragments: dict[str, list[Selection]]) -> dict[str, Field]:
    """Response key -> field, with fragments expanded and repeated keys merged."""
    out: dict[str, Field] = {}
    for item in selection:
        if isinstance(item, FragmentSpread):
            if item.name not in fragments:
                raise GraphQLSyntaxError(f"unknown fragment {item.name!r}")
            nested = _collect(fragments[item.name], fragments)
        elif isinstance(item, InlineFragment):
            nested = _collect(item.children, fragments)
        else:
            nested = {item.alias or item.name: item}
        for key, fld in nested.items():
            if key in out and out[key].children is not None and fld.children is not None:
                out[key] = Field(fld.name, fld.alias, out[key].children + fld.children)
            else:
                out.setdefault(key, fld)
    return out


def select(value: Any, op: Operation, missing: Optional[list[str]] = None) -> Any:
    """Trim `value` (the operation's full answer) to the operation's selection set.

    Selected fields absent from `value` come back as None; their dotted paths are appended
    to `missing`.
    """
    return _select(value, op.selection, op.fragments, [], missing if missing is not None else [])


def _select(value: Any, selection: list[Selection], fragments, path: list[str], missing: list[str]) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_select(item, selection, fragments, path, missing) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, fld in _collect(selection, fragments).items():
        if fld.name not in value:
            missing.append(".".join([*path, fld.name]))
            out[key] = None
        elif fld.children is None:
            out[key] = value[fld.name]
        else:
            out[key] = _select(value[fld.name], fld.children, fragments, [*path, fld.name], missing)
    return out
