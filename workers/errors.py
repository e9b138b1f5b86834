"""Errors the engine raises for callers to map onto HTTP statuses or exit codes."""


class FactoryError(Exception):
    """Base class: `str(error)` is a message fit to show a user."""


class InvalidRequest(FactoryError):
    """The request names something malformed (HTTP 400)."""


class NotFound(FactoryError):
    """The request names something that does not exist (HTTP 404)."""


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
