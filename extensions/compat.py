"""Talos version-range checks, as `pkg/machinery/extensions/validate.go` does them.

A constraint such as `">= v1.5.0 < v2.0.0 || = v1.4.7"`: every `v` directly followed by a
digit is dropped, then it is read like blang/semver's `ParseRange`: a space separates AND
terms (except right after an operator character), a `||` token separates OR groups, each
term is an operator (`>=`, `<=`, `>`, `<`, `=`/`==`/none, `!=`/`!`) and a strict semver
version. It is tested against the *core* of the release version (major.minor.patch, the
pre-release dropped). An empty constraint accepts every version.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from extensions.errors import ExtensionError

_V_BEFORE_DIGIT = re.compile(r"v(?=\d)")
_NUM = r"(?:0|[1-9]\d*)"
_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    rf"^(?P<core>{_NUM}\.{_NUM}\.{_NUM})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_OPERATOR_CHARS = frozenset("<>=")

# Pre-release identifiers as sort keys: numeric ones compare as numbers and before
# alphanumeric ones; a version without pre-release sorts after any pre-release of it.
_PreKey = tuple[tuple[int, int, str], ...]
SemverKey = tuple[int, int, int, int, _PreKey]

_COMPARATORS: dict[str, Callable[[SemverKey, SemverKey], bool]] = {
    "": operator.eq,
    "=": operator.eq,
    "==": operator.eq,
    "!": operator.ne,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def semver_key(text: str) -> SemverKey:
    """The precedence key of a strict semver string (no `v`); ValueError if malformed."""
    match = _SEMVER.match(text)
    if not match:
        raise ValueError(f'"{text}" is not a semantic version (major.minor.patch)')
    major, minor, patch = (int(part) for part in match.group("core").split("."))
    pre = match.group("pre")
    if not pre:
        return (major, minor, patch, 1, ())
    idents = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (major, minor, patch, 0, idents)


def core_version(version: str) -> SemverKey:
    """A release version (`v1.14.0-beta.1`) reduced to its core (`1.14.0`) as a key."""
    stripped = version[1:] if version.startswith("v") else version
    try:
        major, minor, patch, _, _ = semver_key(stripped)
    except ValueError:
        raise ExtensionError(f'invalid version "{version}"') from None
    return (major, minor, patch, 1, ())


@dataclass(frozen=True)
class _Term:
    op: str
    version: SemverKey

    def accepts(self, key: SemverKey) -> bool:
        return _COMPARATORS[self.op](key, self.version)


@dataclass(frozen=True)
class VersionRange:
    """OR of AND groups of comparisons; no groups means "any version"."""

    text: str
    groups: tuple[tuple[_Term, ...], ...]

    def accepts(self, version: str) -> bool:
        """Does the core of release `version` (e.g. `v1.0.0`) satisfy the range?"""
        if not self.groups:
            return True
        key = core_version(version)
        return any(all(term.accepts(key) for term in group) for group in self.groups)


def _split_terms(text: str) -> list[str]:
    """Split on spaces, but not on a space that follows `<`, `>` or `=` (blang's rule)."""
    tokens: list[str] = []
    current: list[str] = []
    last = ""
    for char in text:
        if char == " " and last not in _OPERATOR_CHARS:
            if current:
                tokens.append("".join(current))
            current = []
        elif char != " ":
            current.append(char)
            last = char
    if current:
        tokens.append("".join(current))
    return tokens


def _parse_term(token: str, text: str) -> _Term:
    digit = next((i for i, c in enumerate(token) if c.isdigit()), None)
    if digit is None:
        raise ExtensionError(f'invalid compatibility range "{text}": no version in "{token}"')
    op, version = token[:digit], token[digit:]
    if op not in _COMPARATORS:
        raise ExtensionError(f'invalid compatibility range "{text}": unknown operator "{op}"')
    try:
        return _Term(op, semver_key(version))
    except ValueError as exc:
        raise ExtensionError(f'invalid compatibility range "{text}": {exc}') from None


def parse_range(text: str) -> VersionRange:
    """Parse a `compatibility.talos.version` constraint; ExtensionError if malformed."""
    cleaned = _V_BEFORE_DIGIT.sub("", text)
    tokens = _split_terms(cleaned)
    if not tokens:
        return VersionRange(text, ())
    groups: list[list[str]] = [[]]
    for token in tokens:
        if token == "||":
            if not groups[-1]:
                raise ExtensionError(f'invalid compatibility range "{text}": empty "||" group')
            groups.append([])
        else:
            groups[-1].append(token)
    if not groups[-1]:
        raise ExtensionError(f'invalid compatibility range "{text}": ends with "||"')
    return VersionRange(
        text, tuple(tuple(_parse_term(token, text) for token in group) for group in groups)
    )


def is_compatible(constraint: str, version: str) -> bool:
    """Does release `version` satisfy `constraint`? ExtensionError if either is malformed."""
    return parse_range(constraint).accepts(version)
