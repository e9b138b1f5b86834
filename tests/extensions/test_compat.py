from __future__ import annotations

import pytest

from extensions.compat import is_compatible, parse_range, semver_key
from extensions.errors import ExtensionError

CASES = [
    # constraint, version, expected
    ("", "v1.0.0", True),
    ("   ", "v0.0.1", True),
    (">= v1.5.0", "v1.5.0", True),
    (">= v1.5.0", "v1.4.9", False),
    (">= 1.5.0", "v1.14.0", True),  # numeric, not lexical
    (">=v1.5.0", "v1.6.0", True),
    (">  1.5.0", "v1.5.0", False),
    ("> 1.5.0", "v1.5.1", True),
    ("< v2.0.0", "v1.99.99", True),
    ("< v2.0.0", "v2.0.0", False),
    ("<= v2.0.0", "v2.0.0", True),
    ("= v1.0.0", "v1.0.0", True),
    ("= v1.0.0", "v1.0.1", False),
    ("== 1.0.0", "v1.0.0", True),
    ("1.0.0", "v1.0.0", True),
    ("!= v1.0.0", "v1.0.0", False),
    ("!= v1.0.0", "v1.0.1", True),
    (">= v1.5.0 < v2.0.0", "v1.7.0", True),  # space = AND
    (">= v1.5.0 < v2.0.0", "v2.1.0", False),
    (">= v1.5.0 < v2.0.0 || = v1.4.7", "v1.4.7", True),  # || = OR
    (">= v1.5.0 < v2.0.0 || = v1.4.7", "v1.4.6", False),
    # the release's pre-release is dropped: v1.14.0-beta.1 counts as 1.14.0
    (">= v1.14.0", "v1.14.0-beta.1", True),
    ("< v1.14.0", "v1.14.0-beta.1", False),
    # a pre-release in the constraint sorts below its release
    (">= v1.5.0-alpha.0", "v1.5.0", True),
    ("< 1.5.0-alpha.0", "v1.4.99", True),
    ("> 1.0.0-alpha.10", "v1.0.0", True),
    # build metadata is ignored
    (">= 1.0.0+build.7", "v1.0.0", True),
]


@pytest.mark.parametrize(("constraint", "version", "expected"), CASES)
def test_constraint(constraint: str, version: str, expected: bool) -> None:
    assert is_compatible(constraint, version) is expected


def test_prerelease_precedence_matches_semver() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    keys = [semver_key(v) for v in ordered]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("constraint", "fragment"),
    [
        (">= x", 'no version in ">=x"'),
        (">= 1.0", "not a semantic version"),
        (">= 01.0.0", "not a semantic version"),
        ("~> 1.0.0", 'unknown operator "~>"'),
        ("|| >= 1.0.0", 'empty "||" group'),
        (">= 1.0.0 ||", 'ends with "||"'),
        ("! 1.0.0", 'no version in "!"'),
    ],
)
def test_malformed_constraint(constraint: str, fragment: str) -> None:
    with pytest.raises(ExtensionError, match="invalid compatibility range") as info:
        parse_range(constraint)
    assert fragment in str(info.value)


def test_malformed_release_version() -> None:
    with pytest.raises(ExtensionError, match='invalid version "banana"'):
        is_compatible(">= 1.0.0", "banana")
