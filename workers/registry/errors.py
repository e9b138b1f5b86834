"""Registry errors in the OCI distribution spec's terms: a code, a message, an HTTP status.

Clients (skopeo, crane, docker, cosign) show `message`; `code` is what scripts match on.
Codes are the distribution spec's, plus docker distribution's `UNKNOWN` and `UNAVAILABLE`
for build failures and outages, which the spec has no code for.
"""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """One entry of an OCI error body `{"errors": [{"code", "message", "detail"}]}`."""

    code = "UNKNOWN"
    status = 500

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]}


class NameInvalid(RegistryError):
    code, status = "NAME_INVALID", 400


class NameUnknown(RegistryError):
    code, status = "NAME_UNKNOWN", 404


class TagInvalid(RegistryError):
    code, status = "TAG_INVALID", 400


class DigestInvalid(RegistryError):
    code, status = "DIGEST_INVALID", 400


class PaginationInvalid(RegistryError):
    """docker distribution's code for a bad `n` in `tags/list`."""

    code, status = "PAGINATION_NUMBER_INVALID", 400


class ManifestUnknown(RegistryError):
    code, status = "MANIFEST_UNKNOWN", 404


class BlobUnknown(RegistryError):
    code, status = "BLOB_UNKNOWN", 404


class Unsupported(RegistryError):
    code, status = "UNSUPPORTED", 405


class BuildRefused(RegistryError):
    """The schematic cannot be built for this release (e.g. an extension it lacks)."""

    code, status = "UNKNOWN", 400


class NotBuilt(RegistryError):
    """Recognised, but this factory does not build it (yet)."""

    code, status = "UNSUPPORTED", 501


class RegistryUnavailable(RegistryError):
    code, status = "UNAVAILABLE", 503


class RegistryUnauthorized(RegistryError):
    """The factory needs a token for this (`IMAGE_FACTORY_AUTH=all`)."""

    code, status = "UNAUTHORIZED", 401


class RegistryDenied(RegistryError):
    """The token lacks the role needed."""

    code, status = "DENIED", 403


class BuildWithdrawn(RegistryError):
    """Not built yet, and an extension it needs was withdrawn."""

    code, status = "DENIED", 410


class TooManyPulls(RegistryError):
    """The client is past its per-client build limit (the spec's TOOMANYREQUESTS)."""

    code, status = "TOOMANYREQUESTS", 429
