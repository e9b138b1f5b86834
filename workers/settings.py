"""The one settings object, read once from `IMAGE_FACTORY_*` environment variables.

No other module reads `os.environ` for configuration.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

PREFIX = "IMAGE_FACTORY_"
# Settings that carry credentials (the broker URL holds Redis's password). Each may come from a
# file instead, `IMAGE_FACTORY_<NAME>_FILE` (Docker/compose secrets under /run/secrets), so the
# secret sits in no environment that `docker inspect` or a crash report shows; they are left
# out of the settings' repr for the same reason.
SECRET_FIELDS = frozenset({"broker_url", "s3_access_key", "s3_secret_key"})
FILE_SUFFIX = "_FILE"


@dataclass(frozen=True)
class Settings:
    """Every tunable of the service; field `foo_bar` is read from `IMAGE_FACTORY_FOO_BAR`."""

    data_dir: Path = Path("data")
    external_url: str = ""
    trusted_proxies: int = 0
    pxe_url: str = ""
    broker_url: str = field(default="", repr=False)
    s3_endpoint: str = ""
    s3_bucket: str = "image-factory"
    s3_access_key: str = field(default="", repr=False)
    s3_secret_key: str = field(default="", repr=False)
    s3_region: str = "us-east-1"
    max_schematic_bytes: int = 64 * 1024
    max_extension_bytes: int = 512 * 1024 * 1024
    # `POST /builds` bodies, and what `POST /upload` may add to the schematic file.
    max_form_bytes: int = 16 * 1024
    build_wait: int = 15 * 60
    # A cold kernel or initramfs download sends the bytes known before its build ends
    # (factory/cold_stream.py).
    stream_cold: bool = True
    # Comma-separated versions whose installer images are built as soon as a schematic is
    # created (factory/eager.py).
    eager_installer_versions: str = ""
    max_queue: int = 100
    max_client_builds: int = 10
    max_client_uploads: int = 100
    max_client_upload_bytes: int = 2 * 1024 * 1024 * 1024
    asset_budget_bytes: int = 0
    min_free_bytes: int = 1024 * 1024 * 1024
    upload_grace_seconds: int = 7 * 24 * 3600
    build_time_limit: int = 60 * 60
    worker_concurrency: int = 2
    s3_redirect: bool = True
    s3_public_url: str = ""
    s3_url_ttl: int = 60 * 60
    source_date_epoch: int = 1700000000
    tool_timeout: int = 1800
    allow_unsandboxed: bool = False
    reference_version: str = "v1.0.0"
    reference_arches: str = "amd64,arm64"
    extensions_namespace: str = "factory"
    auth: str = "writes"
    reserved_namespaces: str = "siderolabs"
    signing_key: str = ""
    secureboot_key: str = ""
    secureboot_cert: str = ""
    secureboot_well_known_certs: str = ""
    # Upstream's `http.allowedOrigins`: comma-separated origins CORS answers for (`*`: any).
    allowed_origins: str = "*"
    # Upstream's `build.minTalosVersion` and `build.brokenTalosVersions` (comma-separated):
    # releases below the one or named by the other are not offered (`/versions`, builds).
    min_version: str = ""
    broken_versions: str = ""

    @property
    def uses_s3(self) -> bool:
        """An S3 endpoint is set (what it implies: `workers.backends.choose_backend`)."""
        return bool(self.s3_endpoint)

    @property
    def effective_pxe_url(self) -> str:
        return self.pxe_url or self.external_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        _refuse_unknown(env)
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if f.name in SECRET_FIELDS:
                raw = _secret_from_file(env, PREFIX + f.name.upper(), raw)
            if raw is None:
                continue
            default = getattr(cls, f.name, None)
            if isinstance(default, bool):
                values[f.name] = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif isinstance(default, int):
                try:
                    values[f.name] = int(raw)
                except ValueError as exc:
                    raise ValueError(
                        f"{PREFIX}{f.name.upper()} must be an integer, got {raw!r}"
                    ) from exc
            elif isinstance(default, Path):
                values[f.name] = Path(raw)
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]


def _known_names() -> list[str]:
    names = [PREFIX + f.name.upper() for f in fields(Settings)]
    return names + sorted(PREFIX + name.upper() + FILE_SUFFIX for name in SECRET_FIELDS)


def _refuse_unknown(env: Mapping[str, str]) -> None:
    """Stop at an `IMAGE_FACTORY_*` variable no setting reads: a typo (say in the S3 endpoint's
    name) would otherwise fall back to a default silently, e.g. to local storage."""
    known = _known_names()
    unknown = sorted(name for name in env if name.startswith(PREFIX) and name not in known)
    if not unknown:
        return
    name = unknown[0]
    # Compared without the prefix every name shares, which would make any two names "close".
    close = difflib.get_close_matches(
        name.removeprefix(PREFIX), [k.removeprefix(PREFIX) for k in known], n=1
    )
    hint = (
        f"; did you mean {PREFIX}{close[0]}?" if close else "; see the README's configuration table"
    )
    raise ValueError(f"unknown setting {name}{hint}")


def _secret_from_file(env: Mapping[str, str], name: str, raw: str | None) -> str | None:
    """The value of secret `name`: from the file `<name>_FILE` names when set (surrounding
    whitespace dropped, as `echo` leaves a newline), else `raw`. Errors name the variables and
    the file, never the content."""
    path = env.get(name + FILE_SUFFIX)
    if path is None:
        return raw
    if raw is not None:
        raise ValueError(f"set {name} or {name}{FILE_SUFFIX}, not both")
    try:
        return Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"{name}{FILE_SUFFIX}: cannot read {path}: {reason}") from None
