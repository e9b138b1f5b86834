"""A port of go-yaml v4's emitter for the trees a schematic produces, byte for byte.

Upstream's canonical bytes are whatever go-yaml's `Marshal` writes with its v3 defaults (indent 4,
sequences indented under their key, legacy quoting) and no line width. Rather than approximate
that output with rules, this module follows the emitter's own bookkeeping (column, indentation
stack, the `whitespace` and `indention` flags, scalar analysis and style selection), restricted to
what a schematic contains: block mappings and sequences, empty flow collections, and scalars with
the style go-yaml's representer asked for. There are no tags, anchors or comments, and since the
line width is unlimited no line is ever wrapped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

BEST_INDENT = 4
_SIMPLE_KEY_LIMIT = 128  # bytes; longer keys are written as `? key` / `: value`
_BREAKS = frozenset("\r\n\x85\u2028\u2029")
_FIRST_CHAR_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
_ESCAPES = {
    0x00: "0",
    0x07: "a",
    0x08: "b",
    0x09: "t",
    0x0A: "n",
    0x0B: "v",
    0x0C: "f",
    0x0D: "r",
    0x1B: "e",
    0x22: '"',
    0x5C: "\\",
    0x85: "N",
    0xA0: "_",
    0x2028: "L",
    0x2029: "P",
}


class Style(enum.Enum):
    PLAIN = "plain"
    SINGLE = "single"
    DOUBLE = "double"
    LITERAL = "literal"


@dataclass(frozen=True, slots=True)
class Text:
    """A scalar and the style the representer asked for (the emitter may still overrule it)."""

    value: str
    style: Style = Style.PLAIN


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple[Tree, ...]


@dataclass(frozen=True, slots=True)
class Map:
    pairs: tuple[tuple[Text, Tree], ...]


Tree = Text | Seq | Map


def emit_document(root: Tree) -> str:
    """The YAML document go-yaml writes for `root` (no `---`, a final newline)."""
    writer = _Writer()
    writer.node(root, in_sequence=False, simple_key=False)
    writer.indent = -1
    writer.write_indent()  # what go-yaml's document end does: finish the last line
    return "".join(writer.out)


def is_printable(ch: str) -> bool:
    """libyaml's printable set: what may appear unescaped (non-BMP characters may not)."""
    code = ord(ch)
    return (
        code == 0x0A
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
    )


@dataclass
class _Analysis:
    multiline: bool
    block_plain_allowed: bool
    single_quoted_allowed: bool
    block_allowed: bool


def _analyze(value: str) -> _Analysis:
    """go-yaml's `analyzeScalar`: which styles can represent `value` faithfully."""
    if not value:
        return _Analysis(False, True, True, False)
    block_indicators = value.startswith(("---", "..."))
    line_breaks = special = tabs = False
    leading_space = leading_break = trailing_space = trailing_break = False
    break_space = space_break = previous_space = previous_break = False
    preceded_by_whitespace = True
    last = len(value) - 1
    for i, ch in enumerate(value):
        followed_by_whitespace = i == last or value[i + 1] in " \t"
        if i == 0:
            if ch in _FIRST_CHAR_INDICATORS or (ch in "?:-" and followed_by_whitespace):
                block_indicators = True
        elif (ch == ":" and followed_by_whitespace) or (ch == "#" and preceded_by_whitespace):
            block_indicators = True
        if ch == "\t":
            tabs = True
        elif not is_printable(ch):
            special = True
        if ch == " ":
            leading_space = leading_space or i == 0
            trailing_space = trailing_space or i == last
            break_space = break_space or previous_break
            previous_space, previous_break = True, False
        elif ch in _BREAKS:
            line_breaks = True
            leading_break = leading_break or i == 0
            trailing_break = trailing_break or i == last
            space_break = space_break or previous_space
            previous_space, previous_break = False, True
        else:
            previous_space = previous_break = False
        preceded_by_whitespace = ch in " \t\0" or ch in _BREAKS
    plain = not (
        leading_space
        or leading_break
        or trailing_space
        or trailing_break
        or break_space
        or space_break
        or tabs
        or special
        or line_breaks
        or block_indicators
    )
    return _Analysis(
        multiline=line_breaks,
        block_plain_allowed=plain,
        single_quoted_allowed=not (break_space or space_break or tabs or special),
        block_allowed=not (trailing_space or space_break or special),
    )


def _select_style(requested: Style, analysis: _Analysis, value: str, simple_key: bool) -> Style:
    """go-yaml's `selectScalarStyle` in block context with legacy (single) quote preference."""
    style = requested
    if simple_key and analysis.multiline:
        style = Style.DOUBLE
    if style is Style.PLAIN and (not analysis.block_plain_allowed or (not value and simple_key)):
        style = Style.SINGLE
    if style is Style.SINGLE and not analysis.single_quoted_allowed:
        style = Style.DOUBLE
    if style is Style.LITERAL and (not analysis.block_allowed or simple_key):
        style = Style.DOUBLE
    return style


class _Writer:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.column = 0
        self.indent = -1
        self.indents: list[int] = []
        self.whitespace = True  # was the last character written whitespace?
        self.indention = True  # is the line so far only indentation (and `-`/`?`/`:`)?

    # -- low-level output -----------------------------------------------------------------------

    def put(self, ch: str) -> None:
        self.out.append(ch)
        self.column += 1

    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0
        self.indention = True

    def write_break(self, ch: str) -> None:
        if ch == "\n":
            self.put_break()
        else:  # other line breaks are copied as they are, but still end the line
            self.out.append(ch)
            self.column = 0
            self.indention = True

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.put_break()
        while self.column < indent:
            self.put(" ")
        self.whitespace = True

    def write_indicator(
        self, indicator: str, need_whitespace: bool, is_whitespace: bool, is_indention: bool
    ) -> None:
        if need_whitespace and not self.whitespace:
            self.put(" ")
        for ch in indicator:
            self.put(ch)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention

    def increase_indent(self, *, flow: bool, in_sequence: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = BEST_INDENT if flow else 0
        elif in_sequence:
            self.indent += 2  # the first indent inside a sequence just skips the `- `
        else:
            self.indent = BEST_INDENT * ((self.indent + BEST_INDENT) // BEST_INDENT)

    def restore_indent(self) -> None:
        self.indent = self.indents.pop()

    # -- structure ------------------------------------------------------------------------------

    def node(self, node: Tree, *, in_sequence: bool, simple_key: bool) -> None:
        """Emit one node; `in_sequence` is true when it is an item of a block sequence."""
        if isinstance(node, Text):
            self.scalar(node, in_sequence=in_sequence, simple_key=simple_key)
        elif isinstance(node, Seq):
            if node.items:
                self.block_sequence(node, in_sequence)
            else:
                self.empty_flow("[", "]")
        elif node.pairs:
            self.block_mapping(node, in_sequence)
        else:
            self.empty_flow("{", "}")

    def empty_flow(self, opening: str, closing: str) -> None:
        self.write_indicator(opening, True, True, False)
        self.write_indicator(closing, False, False, False)

    def block_sequence(self, node: Seq, in_sequence: bool) -> None:
        self.increase_indent(flow=False, in_sequence=in_sequence)
        for item in node.items:
            self.write_indent()
            self.write_indicator("-", True, False, True)
            self.node(item, in_sequence=True, simple_key=False)
        self.restore_indent()

    def block_mapping(self, node: Map, in_sequence: bool) -> None:
        self.increase_indent(flow=False, in_sequence=in_sequence)
        for key, value in node.pairs:
            self.write_indent()
            if _is_simple_key(key):
                self.node(key, in_sequence=False, simple_key=True)
                self.write_indicator(":", False, False, False)
            else:
                self.write_indicator("?", True, False, True)
                self.node(key, in_sequence=False, simple_key=False)
                self.write_indent()
                self.write_indicator(":", True, False, True)
            self.node(value, in_sequence=False, simple_key=False)
        self.restore_indent()

    # -- scalars --------------------------------------------------------------------------------

    def scalar(self, node: Text, *, in_sequence: bool, simple_key: bool) -> None:
        style = _select_style(node.style, _analyze(node.value), node.value, simple_key)
        self.increase_indent(flow=True, in_sequence=in_sequence)
        if style is Style.PLAIN:
            self.plain(node.value)
        elif style is Style.SINGLE:
            self.single_quoted(node.value)
        elif style is Style.DOUBLE:
            self.double_quoted(node.value)
        else:
            self.literal(node.value)
        self.restore_indent()

    def plain(self, value: str) -> None:
        if value and not self.whitespace:
            self.put(" ")
        self._text_with_breaks(value, quote_doubling=False)
        if value:
            self.whitespace = False
        self.indention = False

    def single_quoted(self, value: str) -> None:
        self.write_indicator("'", True, False, False)
        self._text_with_breaks(value, quote_doubling=True)
        self.write_indicator("'", False, False, False)
        self.whitespace = False
        self.indention = False

    def _text_with_breaks(self, value: str, *, quote_doubling: bool) -> None:
        breaks = False
        for ch in value:
            if ch == " ":
                self.put(ch)
            elif ch in _BREAKS:
                if not breaks and ch == "\n":
                    self.put_break()
                self.write_break(ch)
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                if quote_doubling and ch == "'":
                    self.put("'")
                self.put(ch)
                self.indention = False
                breaks = False

    def double_quoted(self, value: str) -> None:
        self.write_indicator('"', True, False, False)
        # libyaml tests for a byte order mark at the start of the *value*, for every character:
        # a value that starts with one has all of its characters escaped.
        escape_all = value.startswith("\ufeff")
        for ch in value:
            if escape_all or not is_printable(ch) or ch in _BREAKS or ch in '"\\':
                self.put("\\")
                for out in _escape(ord(ch)):
                    self.put(out)
            else:
                self.put(ch)
        self.write_indicator('"', False, False, False)
        self.whitespace = False
        self.indention = False

    def literal(self, value: str) -> None:
        self.write_indicator("|", True, False, False)
        if value.startswith(" "):
            self.write_indicator(str(BEST_INDENT), False, False, False)
        chomp = _chomping_indicator(value)
        if chomp:
            self.write_indicator(chomp, False, False, False)
        self.put_break()
        self.whitespace = True
        breaks = True
        for ch in value:
            if ch in _BREAKS:
                self.write_break(ch)
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(ch)
                self.indention = False
                breaks = False


def _is_simple_key(key: Text) -> bool:
    return not any(ch in _BREAKS for ch in key.value) and (
        len(key.value.encode()) <= _SIMPLE_KEY_LIMIT
    )


def _chomping_indicator(value: str) -> str:
    """`-` strips a missing final newline, nothing clips one, `+` keeps several."""
    if not value or value[-1] not in _BREAKS:
        return "-"
    if len(value) == 1 or value[-2] in _BREAKS:
        return "+"
    return ""


def _escape(code: int) -> str:
    if code in _ESCAPES:
        return _ESCAPES[code]
    if code <= 0xFF:
        return f"x{code:02X}"
    if code <= 0xFFFF:
        return f"u{code:04X}"
    return f"U{code:08X}"
