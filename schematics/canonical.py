"""The canonical form of a schematic (the exact bytes upstream's `Marshal` writes) and its ID.

Two steps, as in go-yaml: *represent* the schematic as a tree of scalars, sequences and mappings,
choosing for each string the style go-yaml's representer and "desolver" ask for (plain unless it
would read back as something else: then double quotes, or single quotes for YAML 1.1 booleans,
sexagesimal numbers and `<<`; literal blocks for multi-line text); then *emit* it (`emitter.py`),
which may still overrule a style (e.g. `a: b` cannot be plain and becomes single-quoted).

Struct fields come in declaration order and `omitempty` fields are left out when zero; keys of
`overlay.options` are sorted with go-yaml's natural order (`a2` before `a10`, `B` before `a`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from schematics import scalars
from schematics.emitter import Map, Seq, Style, Text, Tree, emit_document
from schematics.model import Bootloader, Schematic

_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
# Go's unicode.IsSpace (Python's str.isspace also counts U+001C..U+001F, Go does not).
_GO_SPACES = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)


def canonical_bytes(schematic: Schematic) -> bytes:
    """The canonical YAML of `schematic`, identical to upstream's for upstream's fields."""
    return emit_document(represent(schematic)).encode()


def schematic_id(schematic: Schematic) -> str:
    """The schematic ID: lowercase hex SHA-256 of the canonical bytes."""
    return hashlib.sha256(canonical_bytes(schematic)).hexdigest()


def represent(value: Any) -> Tree:
    """The tree go-yaml builds for a schematic value (a struct, list, map or scalar)."""
    if isinstance(value, scalars.Timestamp):  # before structs: it is a dataclass too
        return Text(value.rfc3339)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _struct(value)
    if isinstance(value, str):  # also the Bootloader enum, which Go writes as its text
        return string_text(str(value))
    if value is None:
        return Text("null")
    if isinstance(value, bool):
        return Text("true" if value else "false")
    if isinstance(value, int):
        return Text(str(value))
    if isinstance(value, float):
        return Text(scalars.format_float(value))
    if isinstance(value, list | tuple):
        return Seq(tuple(represent(item) for item in value))
    if isinstance(value, Mapping):
        keys = sorted(value, key=functools.cmp_to_key(_natural_compare))
        return Map(tuple((string_text(key), represent(value[key])) for key in keys))
    raise TypeError(f"cannot represent {type(value).__name__} in a schematic")


def string_text(value: str) -> Text:
    """The style go-yaml asks for when writing the string `value`."""
    if "\n" in value:
        return Text(value, Style.LITERAL if _suits_literal(value) else Style.DOUBLE)
    if value in scalars.YAML11_BOOLS or value == "<<" or _is_base60_float(value):
        return Text(value, Style.SINGLE)
    if not scalars.resolves_to_string(value):
        return Text(value, Style.DOUBLE)
    return Text(value)


def _struct(value: Any) -> Map:
    pairs = []
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if field.metadata["omitempty"] and _is_zero(item):
            continue
        pairs.append((string_text(field.metadata["yaml"]), represent(item)))
    return Map(tuple(pairs))


def _is_zero(value: Any) -> bool:
    """Go's zero value test behind `omitempty` (a struct is zero when all its fields are)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(_is_zero(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, Bootloader):
        return value is Bootloader.NONE
    return not value


def _suits_literal(value: str) -> bool:
    """go-yaml's `shouldUseLiteralStyle`: a newline, two bytes or more, something not blank."""
    return len(value.encode()) >= 2 and any(ch not in _GO_SPACES for ch in value)


def _is_base60_float(value: str) -> bool:
    return ":" in value and _BASE60_FLOAT.fullmatch(value) is not None


def _natural_compare(a: str, b: str) -> int:
    if a == b:
        return 0
    return -1 if natural_less(a, b) else 1


def natural_less(a: str, b: str) -> bool:
    """go-yaml's map key order for strings (`keyList.Less`): digit runs compare as numbers."""
    digits = False
    for i in range(min(len(a), len(b))):
        ca, cb = a[i], b[i]
        if ca == cb:
            digits = ca.isdecimal()
            continue
        a_letter, b_letter = ca.isalpha(), cb.isalpha()
        if a_letter and b_letter:
            return ca < cb
        if a_letter or b_letter:
            return a_letter if digits else b_letter
        a_number = b_number = 0
        if ca == "0" or cb == "0":
            j = i - 1
            while j >= 0 and a[j].isdecimal():
                if a[j] != "0":
                    a_number = b_number = 1
                    break
                j -= 1
        a_end, a_number = _digit_run(a, i, a_number)
        b_end, b_number = _digit_run(b, i, b_number)
        if a_number != b_number:
            return a_number < b_number
        if a_end != b_end:
            return a_end < b_end
        return ca < cb
    return len(a) < len(b)


def _digit_run(text: str, start: int, number: int) -> tuple[int, int]:
    """Accumulate the digits from `start` as Go does: int64 arithmetic that wraps around."""
    end = start
    while end < len(text) and text[end].isdecimal():
        number = (number * 10 + ord(text[end]) - ord("0") + (1 << 63)) % (1 << 64) - (1 << 63)
        end += 1
    return end, number
