"""Bytes → a small YAML node tree, with every bound a hostile input could push on.

PyYAML supplies the scanner and parser (its event stream): libyaml's, through PyYAML's C binding,
when it is there (go-yaml is a port of libyaml, and it is ten times faster), else PyYAML's pure
Python one taught libyaml's tab rules. The composing is ours, because the
tree must keep what PyYAML's constructors throw away: the *original text* of each scalar (go-yaml
stores `yes`, `1.10` or `0x0a` in a string field exactly as written), its quoting style, explicit
tags, aliases as aliases (so expansion can be counted later) and 1-based line numbers for error
messages. Only the first document is read, as go-yaml's decoder does.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import yaml
from yaml import events
from yaml.error import Mark

from schematics.errors import SchematicError

MAX_DEPTH = 64  # nested collections; a schematic needs about five
_CORE_TAG_PREFIX = "tag:yaml.org,2002:"
# What a YAML stream may contain (YAML 1.1 §5.1, as go-yaml and PyYAML enforce it).
_FORBIDDEN = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(eq=False, slots=True)
class Node:
    line: int


@dataclass(eq=False, slots=True)
class Scalar(Node):
    value: str
    tag: str  # short form (`!!int`, `!custom`), "!" for the non-specific tag, "" when untagged
    style: str  # "" plain, "'" or '"' quoted, "|" or ">" block


@dataclass(eq=False, slots=True)
class Sequence(Node):
    items: list[Node] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Mapping(Node):
    pairs: list[tuple[Node, Node]] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Alias(Node):
    name: str
    target: Node


_N = TypeVar("_N", bound=Node)
if TYPE_CHECKING:  # yaml.CSafeLoader only exists when PyYAML was built with libyaml
    _EventSource = yaml.CSafeLoader | yaml.SafeLoader


class PurePythonLoader(yaml.SafeLoader):
    """PyYAML's scanner with libyaml's tab rule, so tab-indented JSON parses as go-yaml's does.

    PyYAML refuses tabs between tokens everywhere; libyaml (and so go-yaml) accepts them in flow
    context and wherever a simple key cannot start, and inside plain scalars.
    """

    def scan_to_next_token(self) -> None:
        if self.index == 0 and self.peek() == "\ufeff":
            self.forward()
        while True:
            while self.peek() == " " or (
                self.peek() == "\t" and (self.flow_level or not self.allow_simple_key)
            ):
                self.forward()
            if self.peek() == "#":
                while self.peek() not in "\0\r\n\x85\u2028\u2029":
                    self.forward()
            if not self.scan_line_break():  # type: ignore[no-untyped-call]
                return
            if not self.flow_level:
                self.allow_simple_key = True

    def scan_plain_spaces(self, indent: int, start_mark: Mark) -> list[str] | None:
        length = 0
        while self.peek(length) in " \t":
            length += 1
        if length and self.peek(length) not in "\r\n\x85\u2028\u2029":
            blanks: str = self.prefix(length)
            self.forward(length)
            return [blanks]
        self.forward(length)  # blanks before a line break are not part of the value
        chunks: list[str] | None = super().scan_plain_spaces(indent, start_mark)
        return chunks


def decode_text(data: bytes) -> str:
    """The input as text: UTF-8 (BOM optional) or BOM-marked UTF-16, free of control characters."""
    encoding = "utf-16" if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        name = "UTF-16" if encoding == "utf-16" else "UTF-8"
        bad = data[error.start : error.start + 1].hex()
        raise SchematicError(
            f"yaml: input is not valid {name}: invalid byte 0x{bad} at offset {error.start}"
        ) from None
    forbidden = _FORBIDDEN.search(text)
    if forbidden:
        line = text.count("\n", 0, forbidden.start()) + 1
        column = forbidden.start() - (text.rfind("\n", 0, forbidden.start()) + 1) + 1
        code = ord(forbidden.group())
        what = "NUL byte" if code == 0 else f"control character U+{code:04X}"
        raise SchematicError(
            f"yaml: control characters are not allowed: {what} at line {line}, column {column}"
        )
    return text


def compose(text: str, *, pure_python: bool = not yaml.__with_libyaml__) -> Node | None:
    """The first document's root node; None when the stream holds no document at all."""
    loader: _EventSource = PurePythonLoader(text) if pure_python else yaml.CSafeLoader(text)
    try:
        return _Composer(loader).document()
    except yaml.MarkedYAMLError as error:
        raise SchematicError(_describe(error)) from None
    except yaml.YAMLError as error:
        raise SchematicError(f"yaml: {error}") from None
    finally:
        loader.dispose()


def _describe(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = error.problem or error.context or "invalid YAML"
    if "maximum nesting depth" in problem:
        # Newer libyaml (PyYAML 6.0.4 wheels) stops deep nesting itself, before our composer
        # does: say it the same way, whichever libyaml is installed.
        return f"yaml: {where}nesting is deeper than the limit of {MAX_DEPTH} levels"
    if error.context and error.problem:
        problem = f"{problem} ({error.context})"
    return f"yaml: {where}{problem}"


def short_tag(tag: str | None) -> str:
    if not tag:
        return ""
    if tag.startswith(_CORE_TAG_PREFIX):
        return "!!" + tag[len(_CORE_TAG_PREFIX) :]
    return tag


class _Composer:
    def __init__(self, loader: _EventSource) -> None:
        self._loader = loader
        self._anchors: dict[str, Node] = {}
        self._open: set[Node] = set()  # collections still being read: an alias to one is a cycle

    def _next(self) -> events.Event:
        event = self._loader.get_event()
        if not isinstance(event, events.Event):  # the parser ends with StreamEndEvent first
            raise SchematicError("yaml: unexpected end of the stream")
        return event

    def document(self) -> Node | None:
        self._next()  # StreamStartEvent
        if isinstance(self._next(), events.StreamEndEvent):
            return None
        root = self._node(self._next(), depth=0)
        self._next()  # DocumentEndEvent; later documents are never read
        return root

    def _node(self, event: events.Event, depth: int) -> Node:
        line = _line(event)
        if isinstance(event, events.AliasEvent):
            return self._alias(event, line)
        if isinstance(event, events.ScalarEvent):
            return self._anchored(event, self._scalar(event, line))
        if depth >= MAX_DEPTH:
            raise SchematicError(
                f"yaml: line {line}: nesting is deeper than the limit of {MAX_DEPTH} levels"
            )
        if isinstance(event, events.SequenceStartEvent):
            sequence = self._anchored(event, Sequence(line))
            self._open.add(sequence)
            while not isinstance(child := self._next(), events.SequenceEndEvent):
                sequence.items.append(self._node(child, depth + 1))
            self._open.discard(sequence)
            return sequence
        assert isinstance(event, events.MappingStartEvent)
        mapping = self._anchored(event, Mapping(line))
        self._open.add(mapping)
        while not isinstance(key_event := self._next(), events.MappingEndEvent):
            key = self._node(key_event, depth + 1)
            mapping.pairs.append((key, self._node(self._next(), depth + 1)))
        self._open.discard(mapping)
        return mapping

    def _anchored(self, event: events.NodeEvent, node: _N) -> _N:
        if event.anchor is not None:
            self._anchors[event.anchor] = node
        return node

    def _alias(self, event: events.AliasEvent, line: int) -> Alias:
        name = event.anchor or ""
        target = self._anchors.get(name)
        if target is None:
            raise SchematicError(f"yaml: line {line}: unknown anchor '{name}' referenced")
        if target in self._open:
            raise SchematicError(f"yaml: anchor '{name}' value contains itself")
        return Alias(line, name, target)

    @staticmethod
    def _scalar(event: events.ScalarEvent, line: int) -> Scalar:
        if _SURROGATE.search(event.value):
            raise SchematicError(f"yaml: line {line}: found invalid Unicode character escape code")
        return Scalar(line, event.value, short_tag(event.tag), event.style or "")


def _line(event: events.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 0
