"""Errors the engine raises for callers to map onto HTTP statuses or exit codes."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence


class FactoryError(Exception):
    """Base class: `str(error)` is a message fit to show a user."""


class InvalidRequest(FactoryError):
    """The request names something malformed (HTTP 400)."""


class NotFound(FactoryError):
    """The request names something that does not exist (HTTP 404)."""


class Refused(FactoryError):
    """This factory will not do what is asked, by its configuration (HTTP 403)."""


class Unavailable(FactoryError):
    """A backing service (store, broker) cannot be reached right now (HTTP 503).

    `str(error)` has what an operator needs (endpoint, bucket, object key, Redis address)
    and goes to the log; `public` is all a client is told.
    """

    def __init__(
        self,
        detail: str,
        public: str = "a service the factory needs is unavailable; try again shortly",
    ) -> None:
        super().__init__(detail)
        self.public = public


class NotImplementedYet(FactoryError):
    """A recognised request for an asset kind this factory does not build yet (HTTP 501)."""


class Unauthorized(FactoryError):
    """The request needs a token it did not bring, or brought a wrong one (HTTP 401).
    `right` is the role needed; `reason` is the Bearer `error` code (RFC 6750)."""

    def __init__(self, message: str, right: str, reason: str = "invalid_request") -> None:
        super().__init__(message)
        self.right = right
        self.reason = reason


class Forbidden(FactoryError):
    """The request's token lacks the right it needs (HTTP 403)."""


class Conflict(FactoryError):
    """The request clashes with what the store holds, e.g. a delete of something still
    referenced (HTTP 409)."""


class Gone(FactoryError):
    """The request names something withdrawn on purpose (HTTP 410)."""


class TooManyRequests(FactoryError):
    """A client is past one of its per-client limits (HTTP 429 with `Retry-After`)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InsufficientStorage(FactoryError):
    """The store has too little free space to take more (HTTP 507 with `Retry-After`)."""

    retry_after = 300


class ToolError(FactoryError):
    """An external tool failed, timed out or is missing (`workers.assembly.run`).

    Unlike the other errors, `str(error)` holds the command line and the tool's stderr, for
    the log and the operator's terminal; `summary` is what a user may see.
    """

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr_tail: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        status = "timed out" if returncode is None else f"exited with status {returncode}"
        message = f"command {status}: {shlex.join(self.argv)}"
        if stderr_tail:
            message += "\n" + stderr_tail
        super().__init__(message)

    @property
    def summary(self) -> str:
        """What failed, fit for a user: the tool's name and its status, no arguments."""
        name = os.path.basename(self.argv[0]) if self.argv else "a tool"
        if self.returncode is None:
            return f"{name} timed out"
        return f"{name} exited with status {self.returncode}"
