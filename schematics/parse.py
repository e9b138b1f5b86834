"""The strict schematic parser: YAML or JSON bytes → `Schematic`, typed as upstream types it.

Upstream decodes with go-yaml v4 into Go structs with `KnownFields(true)` and unique keys. This
module reproduces that on top of our node tree (`compose.py`):

* unknown keys (at any depth) and duplicate keys are errors; all such errors are collected and
  reported together, each with its line, like go-yaml's `construct errors`;
* a string field keeps the scalar's *text* whatever it resolves to (`[123, true]` → "123", "true"),
  `null` leaves a field empty, and null items are dropped from string lists;
* `meta.key` is a uint8 (`0x0a` reads as 10), `sectorSize` an unsigned int, booleans also accept
  YAML 1.1 words (`yes`, `off`), the bootloader is case-insensitive and `auto` is not a value;
* `overlay.options` is free-form, typed by go-yaml's rules (`scalars.py`).

Bounds: the input size, nesting depth (`compose.MAX_DEPTH`) and alias expansion (`ALIAS_BUDGET`
nodes in total may be visited through aliases, so alias bombs fail fast).

Deliberate deviations from upstream, all rejecting rare input rather than mis-hashing it: merge keys
(`<<`), non-string keys in maps nested inside `overlay.options`, `!!binary` data that is not
UTF-8 text, and control characters (written as escapes) in `extraKernelArgs` are refused with a
message saying so.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import (
    Any,
    ClassVar,
    Concatenate,
    ParamSpec,
    Protocol,
    TypeVar,
    get_origin,
    get_type_hints,
)

from schematics import scalars
from schematics.compose import MAX_DEPTH, Alias, Node, Scalar, Sequence, compose, decode_text
from schematics.compose import Mapping as MappingNode
from schematics.errors import SchematicError
from schematics.model import Bootloader, MetaValue, OptionValue, Schematic

MAX_SCHEMATIC_BYTES = 1024 * 1024
"""The parser's own ceiling; the HTTP API has a smaller one (`Settings.max_schematic_bytes`)."""

ALIAS_BUDGET = 10_000
"""How many nodes may be visited through aliases in one document."""

_BOOTLOADER_GO_TYPE = "imageropts.BootloaderKind"
_OPTIONS_GO_TYPE = "map[string]interface {}"
_BOOTLOADERS = {kind.value: kind for kind in Bootloader}
# Aliases can stack nesting beyond what one document spells out; this bounds the recursion.
_MAX_DECODE_DEPTH = 2 * MAX_DEPTH

_P = ParamSpec("_P")
_T = TypeVar("_T")


class _GoStruct(Protocol):
    """One of the model's dataclasses: `GO_TYPE` is the Go type name errors mention."""

    GO_TYPE: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


_Struct = TypeVar("_Struct", bound=_GoStruct)


def parse_schematic(
    data: bytes, *, max_bytes: int = MAX_SCHEMATIC_BYTES, allow_owner: bool = False
) -> Schematic:
    """Parse and validate a schematic; raise `SchematicError` naming the problem and where.

    `owner` is refused with upstream's community-edition text unless `allow_owner` (the
    caller checks who may claim that owner, or only computes IDs)."""
    if len(data) > max_bytes:
        raise SchematicError(
            f"schematic is {len(data)} bytes, more than the limit of {max_bytes} bytes"
        )
    root = compose(decode_text(data))
    if root is None:
        raise SchematicError("EOF: the schematic is empty")
    schematic = _Decoder().schematic(root)
    if schematic.owner and not allow_owner:
        raise SchematicError("owner field is only supported in Enterprise edition")
    _check_kernel_args(schematic.customization.extra_kernel_args)
    return schematic


def _check_kernel_args(args: tuple[str, ...]) -> None:
    """Escapes (`"\\u0000"`, `"\\t"`) get control characters past the document check; on a
    kernel command line they would cut or split an argument. Refused (upstream keeps them)."""
    for i, arg in enumerate(args):
        bad = next((ch for ch in arg if unicodedata.category(ch) == "Cc"), None)
        if bad is not None:
            raise SchematicError(
                f"customization.extraKernelArgs[{i}]: control character U+{ord(bad):04X} "
                "is not allowed in a kernel argument"
            )


class _Failed(Exception):
    """A value could not be decoded; the reason is already recorded."""


def _visits(
    method: Callable[Concatenate[_Decoder, Node, _P], _T],
) -> Callable[Concatenate[_Decoder, Node, _P], _T]:
    """Follow aliases (counting what they expand to) and bound the depth before decoding a node."""

    def visit(self: _Decoder, node: Node, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if self.depth >= _MAX_DECODE_DEPTH:
            raise SchematicError(
                f"yaml: line {node.line}: nesting is deeper than the limit of "
                f"{_MAX_DECODE_DEPTH} levels once aliases are expanded"
            )
        depth, alias_depth = self.depth, self.alias_depth
        self.depth += 1
        try:
            while isinstance(node, Alias):
                self.alias_depth += 1
                node = node.target
            if self.alias_depth:
                self.alias_visits += 1
                if self.alias_visits > ALIAS_BUDGET:
                    raise SchematicError(
                        "yaml: document contains excessive aliasing "
                        f"(more than {ALIAS_BUDGET} nodes reached through aliases)"
                    )
            return method(self, node, *args, **kwargs)
        finally:
            self.depth, self.alias_depth = depth, alias_depth

    return visit


class _Decoder:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.depth = 0
        self.alias_depth = 0
        self.alias_visits = 0

    def schematic(self, root: Node) -> Schematic:
        schematic = self.struct(root, Schematic, "") or Schematic()
        if self.errors:
            raise SchematicError("yaml: construct errors: " + "; ".join(self.errors))
        return schematic

    # -- error reporting ------------------------------------------------------------------------

    def _error(self, node: Node, message: str, path: str) -> None:
        where = f" (at {path})" if path else ""
        self.errors.append(f"line {node.line}: {message}{where}")

    def _type_error(self, node: Node, go_type: str, path: str) -> None:
        """go-yaml's `cannot construct !!tag `value` into T`."""
        if isinstance(node, Scalar):
            tag = _short_tag(node)
            raw = node.value.encode()
            shown = node.value if len(raw) <= 10 else raw[:7].decode(errors="ignore") + "..."
            what = f"{tag} `{shown}`"
        else:
            what = scalars.SEQ if isinstance(node, Sequence) else scalars.MAP
        self._error(node, f"cannot construct {what} into {go_type}", path)

    # -- scalars --------------------------------------------------------------------------------

    def _resolved(self, node: Scalar, path: str) -> tuple[str, scalars.Resolved]:
        """The scalar's tag and value, as go-yaml's decoder sees it; raises `_Failed`."""
        if node.tag in ("", "!") and node.style:
            return scalars.STR, node.value  # quoted and block scalars are always strings
        try:
            tag, value = scalars.resolve(node.value, node.tag)
        except scalars.TagMismatch as error:
            self._error(node, str(error), path)
            raise _Failed from None
        if tag == scalars.BINARY:
            return tag, self._binary_text(node, path)
        return tag, value

    def _binary_text(self, node: Scalar, path: str) -> str:
        try:
            # Like Go's base64 decoder, ignore line breaks (block scalars wrap long data).
            data = base64.b64decode(re.sub("[\r\n]", "", node.value), validate=True)
        except (binascii.Error, ValueError):
            self._error(node, "!!binary value contains invalid base64 data", path)
            raise _Failed from None
        try:
            return data.decode()
        except UnicodeDecodeError:
            self._error(node, "!!binary value is not UTF-8 text (unsupported here)", path)
            raise _Failed from None

    @_visits
    def text(self, node: Node, path: str) -> str | None:
        """A Go `string`: the scalar's own text; None for null or on error."""
        if not isinstance(node, Scalar):
            self._type_error(node, "string", path)
            return None
        try:
            tag, value = self._resolved(node, path)
        except _Failed:
            return None
        if value is None:
            return None
        return value if tag == scalars.BINARY and isinstance(value, str) else node.value

    def string(self, node: Node, path: str) -> str:
        return self.text(node, path) or ""

    @_visits
    def boolean(self, node: Node, path: str) -> bool:
        if not isinstance(node, Scalar):
            self._type_error(node, "bool", path)
            return False
        try:
            _, value = self._resolved(node, path)
        except _Failed:
            return False
        if value is None or isinstance(value, bool):
            return bool(value)
        if isinstance(value, str) and value in scalars.YAML11_BOOLS:
            return scalars.YAML11_BOOLS[value]
        self._type_error(node, "bool", path)
        return False

    @_visits
    def unsigned(self, node: Node, path: str, bits: int) -> int:
        go_type = "uint8" if bits == 8 else "uint"
        if not isinstance(node, Scalar):
            self._type_error(node, go_type, path)
            return 0
        try:
            _, value = self._resolved(node, path)
        except _Failed:
            return 0
        if value is None:
            return 0
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and -1 < value < 2.0**bits:
            number = int(value)  # Go converts by truncating toward zero
        if number is None or not 0 <= number < 1 << bits:
            self._type_error(node, go_type, path)
            return 0
        return number

    @_visits
    def bootloader(self, node: Node, path: str) -> Bootloader:
        if not isinstance(node, Scalar):
            tag = scalars.SEQ if isinstance(node, Sequence) else scalars.MAP
            self._error(node, f"cannot construct {tag} into {_BOOTLOADER_GO_TYPE}", path)
            return Bootloader.NONE
        try:
            tag, value = self._resolved(node, path)
        except _Failed:
            return Bootloader.NONE
        if value is None:
            return Bootloader.NONE
        name = value if tag == scalars.BINARY and isinstance(value, str) else node.value
        kind = _BOOTLOADERS.get(name) or _BOOTLOADERS.get(name.lower())
        if kind is not None:
            return kind
        self._error(node, f"{name} does not belong to BootloaderKind values", path)
        return Bootloader.NONE

    # -- collections ----------------------------------------------------------------------------

    @_visits
    def strings(self, node: Node, path: str) -> tuple[str, ...]:
        items = self._sequence(node, "[]string", path)
        texts = (self.text(item, f"{path}[{i}]") for i, item in enumerate(items))
        return tuple(text for text in texts if text is not None)

    @_visits
    def metas(self, node: Node, path: str) -> tuple[MetaValue, ...]:
        items = self._sequence(node, f"[]{MetaValue.GO_TYPE}", path)
        metas = (self.struct(item, MetaValue, f"{path}[{i}]") for i, item in enumerate(items))
        return tuple(meta for meta in metas if meta is not None)

    def _sequence(self, node: Node, go_type: str, path: str) -> list[Node]:
        if isinstance(node, Sequence):
            return node.items
        if not self._is_null(node):
            self._type_error(node, go_type, path)
        return []

    def _is_null(self, node: Node) -> bool:
        return isinstance(node, Scalar) and _short_tag(node) == scalars.NULL

    def _pairs(self, node: MappingNode, path: str) -> list[tuple[Node, Node]] | None:
        """The mapping's pairs; None (errors recorded) if a key repeats or a merge key appears."""
        seen: dict[tuple[str, str], Node] = {}
        clean = True
        for key, _ in node.pairs:
            identity = _key_identity(key)
            first = seen.setdefault(identity, key)
            if first is not key:
                quoted = json.dumps(identity[1], ensure_ascii=False)
                self._error(key, f"mapping key {quoted} already defined at line {first.line}", path)
                clean = False
        for key, _ in node.pairs:
            if isinstance(key, Scalar) and _short_tag(key) == scalars.MERGE:
                self._error(key, "merge keys (<<) are not supported in schematics", path)
                clean = False
        return node.pairs if clean else None

    @_visits
    def struct(self, node: Node, cls: type[_Struct], path: str) -> _Struct | None:
        """A Go struct: a mapping whose keys are all fields of `cls`; None if null or invalid."""
        go_type = cls.GO_TYPE
        if not isinstance(node, MappingNode):
            if not self._is_null(node):
                self._type_error(node, go_type, path)
            return None
        pairs = self._pairs(node, path)
        if pairs is None:
            return None
        fields = _fields_by_key(cls)
        values: dict[str, Any] = {}
        for key, value in pairs:
            name = self.text(key, path)
            if name is None:
                continue  # go-yaml skips a null key without complaint
            field_path = f"{path}.{name}" if path else name
            if name not in fields:
                self._error(key, f"field {name} not found in type {go_type}", path and field_path)
                continue
            field, hint = fields[name]
            values[field.name] = self._field(value, field, hint, field_path)
        return cls(**values)

    def _field(self, node: Node, field: dataclasses.Field[Any], hint: Any, path: str) -> Any:
        if hint is str:
            return self.string(node, path)
        if hint is bool:
            return self.boolean(node, path)
        if hint is int:
            return self.unsigned(node, path, field.metadata["uint_bits"])
        if hint is Bootloader:
            return self.bootloader(node, path)
        if hint == tuple[str, ...]:
            return self.strings(node, path)
        if hint == tuple[MetaValue, ...]:
            return self.metas(node, path)
        if get_origin(hint) is Mapping:
            return MappingProxyType(self.options(node, path))
        return self.struct(node, hint, path) or hint()

    # -- overlay.options: free-form, typed by go-yaml's rules -----------------------------------

    @_visits
    def options(self, node: Node, path: str) -> dict[str, OptionValue]:
        if not isinstance(node, MappingNode):
            if not self._is_null(node):
                self._type_error(node, _OPTIONS_GO_TYPE, path)
            return {}
        return self._string_map(node, path)

    def _string_map(self, node: MappingNode, path: str) -> dict[str, OptionValue]:
        pairs = self._pairs(node, path)
        result: dict[str, OptionValue] = {}
        for key, value in pairs or ():
            name = self.text(key, path)
            if name is not None:
                result[name] = self.any(value, f"{path}.{name}")
        return result

    @_visits
    def any(self, node: Node, path: str) -> OptionValue:
        """What go-yaml decodes into `any`."""
        if isinstance(node, Sequence):
            return [self.any(item, f"{path}[{i}]") for i, item in enumerate(node.items)]
        if isinstance(node, MappingNode):
            for key, _ in node.pairs:
                if _short_tag(key) not in (scalars.STR, scalars.MERGE):
                    self._error(
                        key,
                        f"{_short_tag(key)} key in a nested map; only string keys are supported"
                        " in overlay.options",
                        path,
                    )
                    return None
            return self._string_map(node, path)
        assert isinstance(node, Scalar)
        try:
            _, value = self._resolved(node, path)
        except _Failed:
            return None
        if isinstance(value, scalars.Timestamp) and not scalars.parse_timestamp(value.rfc3339):
            # Go would write it back with an explicit !!timestamp tag; we do not write tags.
            self._error(node, f"timestamp {node.value} has an out-of-range zone offset", path)
            return None
        return value


def _short_tag(node: Node) -> str:
    """go-yaml's `Node.ShortTag()`: the explicit tag, or the one the text resolves to."""
    while isinstance(node, Alias):
        node = node.target
    if isinstance(node, Sequence):
        return scalars.SEQ
    if isinstance(node, MappingNode):
        return scalars.MAP
    assert isinstance(node, Scalar)
    if node.tag == "!" or (not node.tag and node.style):
        return scalars.STR
    if node.tag:
        return node.tag
    return scalars.resolve(node.value)[0]


def _key_identity(key: Node) -> tuple[str, str]:
    """What go-yaml compares to find repeated keys: the node kind and its raw text."""
    if isinstance(key, Scalar):
        return "scalar", key.value
    if isinstance(key, Alias):
        return "alias", key.name
    return type(key).__name__, ""


_FIELDS: dict[type, dict[str, tuple[dataclasses.Field[Any], Any]]] = {}


def _fields_by_key(cls: type[_GoStruct]) -> dict[str, tuple[dataclasses.Field[Any], Any]]:
    """The struct's fields by YAML key, each with its (evaluated) type annotation."""
    if cls not in _FIELDS:
        hints = get_type_hints(cls)
        _FIELDS[cls] = {f.metadata["yaml"]: (f, hints[f.name]) for f in dataclasses.fields(cls)}
    return _FIELDS[cls]
