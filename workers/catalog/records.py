"""What the store knows about each extension and overlay: one JSON record per digest.

Keys (DESIGN.md "Storage keys"):
- `extensions/<sha256>.tar`: the canonical extension tar; `extensions/<sha256>.json`: its
  `ExtensionRecord`, written after the tar (the commit point: an extension exists once its
  record does);
- `overlays/<sha256>.tar` and `overlays/<sha256>.json`: the same for overlays.

Records are immutable once written, but for a field added later (`cpu_microcode`), filled in
when the same content is added again. JSON with sorted keys and a trailing newline.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar
from urllib.parse import urlsplit

from workers.errors import InvalidRequest

EXTENSIONS_PREFIX = "extensions/"
OVERLAYS_PREFIX = "overlays/"
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
ORIGIN_BUNDLED = "bundled"
# The mtime inside every stored canonical tar. Fixed rather than SOURCE_DATE_EPOCH: a digest
# must depend on content only, so changing the setting never turns a stored extension into a
# "same name and version, different content" conflict. Images take their timestamps from
# the release/plan at assembly, not from here.
CANONICAL_EPOCH = 0
ORIGIN_UPLOAD = "upload"

R = TypeVar("R", "ExtensionRecord", "OverlayRecord")


def check_namespace(namespace: str) -> str:
    if not NAMESPACE_PATTERN.match(namespace):
        raise InvalidRequest(
            f'invalid namespace "{namespace}": lowercase letters, digits, ".", "_", "-"'
        )
    return namespace


def utc_now() -> str:
    """Now, as ISO 8601 UTC to the second (`2026-12-07T00:00:00Z`)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def registry_host(external_url: str) -> str:
    """The host[:port] of the external URL, used as the registry part of catalog refs."""
    return urlsplit(external_url).netloc or "localhost"


@dataclass(frozen=True)
class ExtensionRecord:
    """A stored extension. `arch` "" = any architecture (not from a per-arch OCI image);
    `release` "" = any release (else built for exactly that release, e.g. a module build);
    `kernel_versions`: the `<kver>` directories it has under /usr/lib/modules;
    `cpu_microcode`: whether it brings early CPU microcode (`extensions.microcode`), None in
    records written before it was recorded (unknown)."""

    namespace: str
    name: str  # manifest metadata.name
    version: str
    author: str
    description: str
    compatibility: str
    digest: str  # sha256 hex of the canonical tar
    size: int
    arch: str = ""
    release: str = ""
    kernel_versions: tuple[str, ...] = ()
    origin: str = ORIGIN_UPLOAD
    uploaded_by: str = ""  # the token that uploaded it ("" for bundled and CLI additions)
    uploaded_at: str = ""  # when (ISO 8601, UTC)
    cpu_microcode: bool | None = None

    @property
    def full_name(self) -> str:
        """The catalog name, `<namespace>/<name>` (e.g. `factory/hello`)."""
        return f"{self.namespace}/{self.name}"

    @property
    def tar_key(self) -> str:
        return f"{EXTENSIONS_PREFIX}{self.digest}.tar"

    @property
    def record_key(self) -> str:
        return f"{EXTENSIONS_PREFIX}{self.digest}.json"

    def ref(self, host: str) -> str:
        """`<host>/<namespace>/<name>:<version>`, shaped like upstream's tagged reference."""
        return f"{host}/{self.full_name}:{self.version}"


@dataclass(frozen=True)
class OverlayRecord:
    """A stored overlay, with what planning needs without fetching it: its kernel args,
    the GPT skip (`partition_offset`, LBAs) and the option names its templates accept."""

    namespace: str
    name: str
    version: str
    description: str
    compatibility: str
    digest: str
    size: int
    kernel_args: tuple[str, ...] = ()
    partition_offset: int = 0
    options: tuple[str, ...] = ()
    origin: str = ORIGIN_UPLOAD

    @property
    def image(self) -> str:
        """Upstream's `image` field (the repository), `<namespace>/<name>`."""
        return f"{self.namespace}/{self.name}"

    @property
    def tar_key(self) -> str:
        return f"{OVERLAYS_PREFIX}{self.digest}.tar"

    @property
    def record_key(self) -> str:
        return f"{OVERLAYS_PREFIX}{self.digest}.json"

    def ref(self, host: str) -> str:
        return f"{host}/{self.image}:{self.version}"


def record_to_json(record: ExtensionRecord | OverlayRecord) -> bytes:
    doc: dict[str, Any] = asdict(record)
    return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()


def record_from_json(kind: type[R], data: bytes) -> R:
    return record_from_doc(kind, json.loads(data))


_FIELD_NAMES: dict[type, frozenset[str]] = {
    kind: frozenset(f.name for f in fields(kind)) for kind in (ExtensionRecord, OverlayRecord)
}


def record_from_doc(kind: type[R], doc: object) -> R:
    """A record from its decoded JSON (a dict); ValueError if it is not one."""
    if not isinstance(doc, dict) or not set(doc) <= _FIELD_NAMES[kind]:
        raise ValueError(f"not a {kind.__name__}: {sorted(doc) if isinstance(doc, dict) else doc}")
    for key in ("kernel_versions", "kernel_args", "options"):
        if key in doc:
            doc[key] = tuple(doc[key])
    return kind(**doc)


def version_sort_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Natural order for free-form versions: digit runs compare as numbers (1.10 > 1.9)."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.findall(r"\d+|[^\d]+", version)
    )
