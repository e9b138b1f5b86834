"""Strict YAML for manifests: one document, plain data, every scalar kept as its text.

No anchors, aliases or explicit tags (a manifest needs none, and refusing them rules out
alias bombs and tag tricks), no duplicate keys, a size limit. Built on PyYAML's pure-Python
parser and BaseLoader's parts, which construct nothing but str, list and dict.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import BaseConstructor
from yaml.resolver import BaseResolver

from extensions.errors import ExtensionError


class _EventsLoader(Composer, BaseConstructor, BaseResolver):
    """BaseLoader's composer, constructor and resolver fed from events already parsed (and
    checked), so a document is parsed once, not once to check and once more to load."""

    def __init__(self, events: list[yaml.Event]) -> None:
        self._events = deque(events)
        Composer.__init__(self)
        BaseConstructor.__init__(self)
        BaseResolver.__init__(self)

    # The parser's side of the composer's interface (see yaml.parser.Parser).
    def check_event(self, *choices: type[yaml.Event]) -> bool:
        if not self._events:
            return False
        return not choices or isinstance(self._events[0], choices)

    def peek_event(self) -> yaml.Event:
        return self._events[0]

    def get_event(self) -> yaml.Event:
        return self._events.popleft()

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ExtensionError(f"non-scalar key at line {key_node.start_mark.line + 1}")
            if key_node.value in seen:
                raise ExtensionError(
                    f'duplicate key "{key_node.value}" at line {key_node.start_mark.line + 1}'
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=True)


def load_strict_yaml(data: bytes, where: str, max_bytes: int) -> object:
    """Parse `data` (named `where` in errors) into str/list/dict; ExtensionError otherwise."""
    if len(data) > max_bytes:
        raise ExtensionError(f"{where}: larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ExtensionError(f"{where}: not valid UTF-8") from None
    try:
        events = _checked_events(text)
        # BaseLoader's constructor makes only str/list/dict, whatever the input says.
        return _EventsLoader(events).get_single_data()
    except ExtensionError as exc:
        raise ExtensionError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ExtensionError(f"{where}: invalid YAML: {_one_line(exc)}") from None


def _checked_events(text: str) -> list[yaml.Event]:
    """Every event of `text`, refusing anchors, aliases and explicit tags as they come."""
    events = []
    for event in yaml.parse(text, Loader=yaml.BaseLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ExtensionError("YAML anchors and aliases are not allowed")
        if isinstance(event, yaml.NodeEvent) and getattr(event, "tag", None) not in (None, "!"):
            raise ExtensionError("explicit YAML tags are not allowed")
        events.append(event)
    return events


def _one_line(exc: yaml.YAMLError) -> str:
    return " ".join(str(exc).split())


def expect_mapping(value: object, where: str, allowed: set[str]) -> dict[str, object]:
    """`value` as a mapping whose keys are all in `allowed`; ExtensionError naming the path."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise ExtensionError(f"{where}: expected a mapping")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ExtensionError(f'{where}: unknown field "{unknown[0]}"')
    return value


def expect_string(value: object, where: str, max_len: int, required: bool = False) -> str:
    """`value` as a string (missing → ""), at most `max_len` characters."""
    if value is None:
        if required:
            raise ExtensionError(f"{where}: required")
        return ""
    if not isinstance(value, str):
        raise ExtensionError(f"{where}: expected a string")
    if required and not value:
        raise ExtensionError(f"{where}: must not be empty")
    if len(value) > max_len:
        raise ExtensionError(f"{where}: longer than {max_len} characters")
    return value
