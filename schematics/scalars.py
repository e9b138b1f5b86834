"""Scalar typing as go-yaml v4 does it: what a plain scalar resolves to, and how Go writes numbers.

Both directions need the same rules. The parser asks "what is this plain scalar?" to type values in
`overlay.options` and to check typed fields; the emitter asks the same question to decide whether a
string may be written plain or must be quoted (a string that would read back as an int is quoted).
These are go-yaml's YAML 1.2-flavoured rules (`resolve.go`), not PyYAML's YAML 1.1 ones: `yes` is a
string, `0o17` is an int, `012` is octal, `1_000` is an int, `2001-01-01` is a timestamp.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

STR = "!!str"
INT = "!!int"
FLOAT = "!!float"
BOOL = "!!bool"
NULL = "!!null"
TIMESTAMP = "!!timestamp"
BINARY = "!!binary"
MERGE = "!!merge"
SEQ = "!!seq"
MAP = "!!map"

# Tags whose value can be worked out from the text (`resolvableTag` upstream).
RESOLVABLE = frozenset({"", STR, BOOL, INT, FLOAT, NULL, TIMESTAMP})


@dataclass(frozen=True)
class Timestamp:
    """A YAML timestamp held the way Go prints it back (`time.RFC3339Nano`)."""

    rfc3339: str


Resolved = None | bool | int | float | str | Timestamp

_EXACT: dict[str, tuple[str, Resolved]] = {
    **{s: (BOOL, True) for s in ("true", "True", "TRUE")},
    **{s: (BOOL, False) for s in ("false", "False", "FALSE")},
    **{s: (NULL, None) for s in ("", "~", "null", "Null", "NULL")},
    **{s: (FLOAT, math.nan) for s in (".nan", ".NaN", ".NAN")},
    **{s: (FLOAT, math.inf) for s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{s: (FLOAT, -math.inf) for s in ("-.inf", "-.Inf", "-.INF")},
    **{s: (FLOAT, -0.0) for s in ("-0", "-0.0")},
    "<<": (MERGE, "<<"),
}
# YAML 1.1 booleans: strings to go-yaml (so written quoted), but a bool field still accepts them.
YAML11_BOOLS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
}
# First character → which family the text may belong to (go-yaml's `resolveTable`).
_SIGN, _DIGIT, _EXACT_ONLY, _DOT = "S", "D", "M", "."
_HINTS = {
    **dict.fromkeys("+-", _SIGN),
    **dict.fromkeys("0123456789", _DIGIT),
    **dict.fromkeys("yYnNtTfFoO~<", _EXACT_ONLY),
    ".": _DOT,
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_UINT64_MAX = (1 << 64) - 1


class TagMismatch(ValueError):
    """An explicit tag that the text cannot satisfy, e.g. `!!int abc`."""

    def __init__(self, resolved_tag: str, text: str, wanted_tag: str) -> None:
        super().__init__(f"cannot construct {resolved_tag} `{text}` as a {wanted_tag}")


def resolve(text: str, tag: str = "") -> tuple[str, Resolved]:
    """The tag and value go-yaml gives `text`; `tag` is an explicit short tag such as `!!int`."""
    if tag not in RESOLVABLE:
        return tag, text
    rtag, value = _resolve_untagged(text, tag)
    if tag in ("", rtag, STR):
        return rtag, value
    if tag == FLOAT and rtag == INT and isinstance(value, int):
        return FLOAT, float(value)
    raise TagMismatch(rtag, text, tag)


def resolves_to_string(text: str) -> bool:
    """Would `text`, written plain, read back as a string?"""
    return _resolve_untagged(text, "")[0] == STR


def _resolve_untagged(text: str, tag: str) -> tuple[str, Resolved]:
    hint = _HINTS.get(text[:1], "") if text else _EXACT_ONLY
    if not hint or tag == STR:
        return STR, text
    if text in _EXACT:
        return _EXACT[text]
    if hint == _DOT:
        if _DOT_FLOAT.fullmatch(text):
            number = float(text)
            if not math.isinf(number):
                return FLOAT, number
    elif hint in (_DIGIT, _SIGN):
        if tag in ("", TIMESTAMP):
            stamp = parse_timestamp(text)
            if stamp is not None:
                return TIMESTAMP, stamp
        plain = text.replace("_", "")
        integer = _parse_go_int(plain)
        if integer is not None and _INT64[0] <= integer <= _INT64[1]:
            return INT, integer
        unsigned = _parse_go_int(plain, signed=False)
        if unsigned is not None and unsigned <= _UINT64_MAX:
            return INT, unsigned
        if _YAML_FLOAT.fullmatch(plain):
            number = float(plain)
            if not math.isinf(number):  # Go reports overflow as an error: the text stays a string
                return FLOAT, number
    return STR, text


_DIGITS_BY_BASE = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _parse_go_int(text: str, *, signed: bool = True) -> int | None:
    """`strconv.ParseInt(text, 0, 64)` without the range check (None on a syntax error)."""
    negative = False
    if signed and text[:1] in ("+", "-"):
        negative = text[0] == "-"
        text = text[1:]
    if not text:
        return None
    base = 10
    if text[0] == "0":
        prefix = text[1:2].lower()
        if len(text) >= 3 and prefix in ("b", "o", "x"):
            base = {"b": 2, "o": 8, "x": 16}[prefix]
            text = text[2:]
        else:
            base = 8
            text = text[1:]
    if any(c not in _DIGITS_BY_BASE[base] for c in text):
        return None
    value = int(text, base) if text else 0
    return -value if negative else value


# ---------------------------------------------------------------------------------------------
# Timestamps: go-yaml tries these `time.Parse` layouts in order; the first that fits wins.

_LAYOUTS = (
    ("T", True),  # 2006-1-2T15:4:5.999999999Z07:00
    ("t", True),  # 2006-1-2t15:4:5.999999999Z07:00
    (" ", False),  # 2006-1-2 15:4:5.999999999
    ("", False),  # 2006-1-2
)


def parse_timestamp(text: str) -> Timestamp | None:
    """The timestamp `text` denotes under go-yaml's rules, or None."""
    if len(text) < 5 or not text[:4].isascii() or not text[:4].isdigit() or text[4] != "-":
        return None
    for separator, zoned in _LAYOUTS:
        stamp = _parse_layout(text, separator, zoned)
        if stamp is not None:
            return stamp
    return None


def _take_number(text: str, pos: int) -> tuple[int, int] | None:
    """Go's `getnum(s, false)`: one or two ASCII digits."""
    if pos >= len(text) or not ("0" <= text[pos] <= "9"):
        return None
    end = pos + 2 if pos + 1 < len(text) and "0" <= text[pos + 1] <= "9" else pos + 1
    return int(text[pos:end]), end


def _parse_layout(text: str, separator: str, zoned: bool) -> Timestamp | None:
    year = int(text[:4])
    month = _take_number(text, 5)
    if month is None or not 1 <= month[0] <= 12:
        return None
    pos = month[1]
    if text[pos : pos + 1] != "-":
        return None
    day = _take_number(text, pos + 1)
    if day is None:
        return None
    pos = day[1]
    hour = minute = second = nanos = 0
    offset_minutes: int | None = None
    if separator:
        if separator == " ":
            if text[pos : pos + 1] != " ":
                return None
            while text[pos : pos + 1] == " ":
                pos += 1
        elif text[pos : pos + 1] != separator:
            return None
        else:
            pos += 1
        clock = _parse_clock(text, pos)
        if clock is None:
            return None
        hour, minute, second, nanos, pos = clock
        if zoned:
            zone = _parse_zone(text, pos)
            if zone is None:
                return None
            offset_minutes, pos = zone
    if pos != len(text) or not 1 <= day[0] <= _days_in(month[0], year):
        return None
    return Timestamp(
        _format_rfc3339nano(year, month[0], day[0], hour, minute, second, nanos, offset_minutes)
    )


def _parse_clock(text: str, pos: int) -> tuple[int, int, int, int, int] | None:
    parts = []
    for index in range(3):
        if index:
            if text[pos : pos + 1] != ":":
                return None
            pos += 1
        number = _take_number(text, pos)
        if number is None:
            return None
        parts.append(number[0])
        pos = number[1]
    hour, minute, second = parts
    if hour >= 24 or minute >= 60 or second >= 60:
        return None
    nanos = 0
    if text[pos : pos + 1] in (".", ",") and "0" <= text[pos + 1 : pos + 2] <= "9":
        end = pos + 1
        while end < len(text) and "0" <= text[end] <= "9":
            end += 1
        digits = text[pos + 1 : end][:9]
        nanos = int(digits.ljust(9, "0"))
        pos = end
    return hour, minute, second, nanos, pos


def _parse_zone(text: str, pos: int) -> tuple[int, int] | None:
    """`Z07:00`: `Z`, or a sign, two-digit hours, a colon and two-digit minutes."""
    if text[pos : pos + 1] == "Z":
        return 0, pos + 1
    zone = text[pos : pos + 6]
    if len(zone) < 6 or zone[3] != ":" or zone[0] not in "+-":
        return None
    hours, minutes = zone[1:3], zone[4:6]
    if not (hours.isascii() and hours.isdigit() and minutes.isascii() and minutes.isdigit()):
        return None
    if int(hours) > 24 or int(minutes) > 60:
        return None
    total = int(hours) * 60 + int(minutes)
    return (-total if zone[0] == "-" else total), pos + 6


def _days_in(month: int, year: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _format_rfc3339nano(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    nanos: int,
    offset_minutes: int | None,
) -> str:
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    if not offset_minutes:
        return text + "Z"
    sign = "-" if offset_minutes < 0 else "+"
    total = abs(offset_minutes)
    return f"{text}{sign}{total // 60:02d}:{total % 60:02d}"


# ---------------------------------------------------------------------------------------------
# Numbers as Go writes them.


def format_float(number: float) -> str:
    """`strconv.FormatFloat(number, 'g', -1, 64)` with go-yaml's spelling of inf and NaN."""
    if math.isnan(number):
        return ".nan"
    if math.isinf(number):
        return ".inf" if number > 0 else "-.inf"
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    # repr() is the shortest text that reads back as the same double, as Go's shortest mode.
    sign, digit_tuple, exponent = Decimal(repr(number)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped.lstrip("0")
    point = len(digits) + exponent  # position of the decimal point relative to the digits
    prefix = "-" if sign else ""
    decimal_exponent = point - 1
    if decimal_exponent < -4 or decimal_exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp_sign = "-" if decimal_exponent < 0 else "+"
        return f"{prefix}{mantissa}e{exp_sign}{abs(decimal_exponent):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"
