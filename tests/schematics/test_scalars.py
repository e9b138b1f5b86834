"""go-yaml's scalar typing: resolution of plain text, timestamps, and Go's float formatting."""

from __future__ import annotations

import math

import pytest

from schematics import scalars
from schematics.scalars import Timestamp, format_float, parse_timestamp, resolve


@pytest.mark.parametrize(
    ("text", "tag", "value"),
    [
        ("", scalars.NULL, None),
        ("~", scalars.NULL, None),
        ("Null", scalars.NULL, None),
        ("nULL", scalars.STR, "nULL"),
        ("true", scalars.BOOL, True),
        ("FALSE", scalars.BOOL, False),
        ("yes", scalars.STR, "yes"),  # YAML 1.2: not a boolean
        ("on", scalars.STR, "on"),
        ("0", scalars.INT, 0),
        ("-17", scalars.INT, -17),
        ("+17", scalars.INT, 17),
        ("0x1f", scalars.INT, 31),
        ("-0x10", scalars.INT, -16),
        ("0o17", scalars.INT, 15),
        ("0b101", scalars.INT, 5),
        ("012", scalars.INT, 10),  # Go's base prefix rules: a leading 0 means octal
        ("1_000_000", scalars.INT, 1_000_000),
        ("9223372036854775807", scalars.INT, 2**63 - 1),
        ("18446744073709551615", scalars.INT, 2**64 - 1),
        ("08", scalars.FLOAT, 8.0),  # not octal, but a float
        ("1.5", scalars.FLOAT, 1.5),
        ("1.", scalars.FLOAT, 1.0),
        (".5", scalars.FLOAT, 0.5),
        ("-.5", scalars.FLOAT, -0.5),
        ("1e3", scalars.FLOAT, 1000.0),
        ("1_0.5", scalars.FLOAT, 10.5),
        ("18446744073709551616", scalars.FLOAT, 2.0**64),
        (".inf", scalars.FLOAT, math.inf),
        ("-.INF", scalars.FLOAT, -math.inf),
        ("-0", scalars.FLOAT, -0.0),
        ("1e400", scalars.STR, "1e400"),  # overflow: Go's ParseFloat errors, so a string
        ("0x", scalars.STR, "0x"),
        ("0b2", scalars.STR, "0b2"),
        ("1.2.3", scalars.STR, "1.2.3"),
        ("1:30", scalars.STR, "1:30"),  # sexagesimal is gone in YAML 1.2
        ("<<", scalars.MERGE, "<<"),
        ("hello", scalars.STR, "hello"),
    ],
)
def test_resolve_untagged(text: str, tag: str, value: object) -> None:
    resolved_tag, resolved = resolve(text)
    assert resolved_tag == tag
    if isinstance(value, float) and value == 0:
        assert isinstance(resolved, float)
        assert math.copysign(1, resolved) == math.copysign(1, value)
    assert resolved == value


def test_resolve_with_explicit_tags() -> None:
    assert resolve("12", scalars.STR) == (scalars.STR, "12")
    assert resolve("12", scalars.FLOAT) == (scalars.FLOAT, 12.0)
    assert resolve("yes", "!custom") == ("!custom", "yes")
    assert resolve("2001-01-01", scalars.TIMESTAMP)[0] == scalars.TIMESTAMP
    with pytest.raises(scalars.TagMismatch, match=r"cannot construct !!str `abc` as a !!int"):
        resolve("abc", scalars.INT)
    with pytest.raises(scalars.TagMismatch, match=r"!!str `2001-01-01` as a !!int"):
        resolve("2001-01-01", scalars.INT)


@pytest.mark.parametrize(
    ("text", "rfc3339"),
    [
        ("2001-01-01", "2001-01-01T00:00:00Z"),
        ("2001-1-2", "2001-01-02T00:00:00Z"),
        ("2000-02-29", "2000-02-29T00:00:00Z"),
        ("2001-12-14t21:59:43.10-05:00", "2001-12-14T21:59:43.1-05:00"),
        ("2001-12-14T21:59:43,5Z", "2001-12-14T21:59:43.5Z"),
        ("2001-12-14T2:3:4+01:30", "2001-12-14T02:03:04+01:30"),
        ("2001-12-14T21:59:43-00:00", "2001-12-14T21:59:43Z"),
        ("2001-12-14 21:59:43.000000001", "2001-12-14T21:59:43.000000001Z"),
        ("2001-12-14    21:59:43", "2001-12-14T21:59:43Z"),
        ("0000-01-01", "0000-01-01T00:00:00Z"),
    ],
)
def test_timestamps_go_accepts(text: str, rfc3339: str) -> None:
    assert parse_timestamp(text) == Timestamp(rfc3339)


@pytest.mark.parametrize(
    "text",
    [
        "2001-13-01",
        "2001-00-10",
        "2001-02-29",  # not a leap year
        "1900-02-29",
        "2001-04-31",
        "2001-01-01T",
        "2001-01-01T10:00:00",  # the T layouts need a zone
        "2001-01-01t24:00:00Z",
        "2001-01-01 10:60:00",
        "2001-01-01 10:00:60",
        "2001-01-01 10:00:00Z",  # the space layout has no zone
        "2001-01-01T10:00:00+0100",
        "2001-01-01T10:00:00z",
        "2001-01-01T10:00:00+25:00",
        "01-01-01",
        "20010-01-01",
        "2001/01/01",
        "2001-001-01",
        "2001-01-001",
        "\uff12\uff10\uff10\uff11-01-01",  # full-width digits
    ],
)
def test_not_timestamps(text: str) -> None:
    assert parse_timestamp(text) is None
    assert resolve(text)[0] != scalars.TIMESTAMP


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-2.0, "-2"),
        (0.0, "0"),
        (-0.0, "-0"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (100.0, "100"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e6, "1e+06"),
        (1e10, "1e+10"),
        (1e21, "1e+21"),
        (1e100, "1e+100"),
        (1.5e-7, "1.5e-07"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (123.456, "123.456"),
        (2.0**64, "1.8446744073709552e+19"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (math.inf, ".inf"),
        (-math.inf, "-.inf"),
        (math.nan, ".nan"),
    ],
)
def test_format_float_like_go(number: float, text: str) -> None:
    assert format_float(number) == text


@pytest.mark.parametrize("number", [0.1, 1e-300, 12345.678, 2.5e15, 9.999e-5, 1e16, -3.25])
def test_formatted_floats_read_back_as_the_same_float(number: float) -> None:
    tag, value = resolve(format_float(number))
    assert tag in (scalars.FLOAT, scalars.INT)
    assert value == number
