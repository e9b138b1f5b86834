"""Errors the engine raises for callers to map onto HTTP statuses or exit codes."""


class FactoryError(Exception):
    """Base class: `str(error)` is a message fit to show a user."""


class InvalidRequest(FactoryError):
    """The request names something malformed (HTTP 400)."""


class NotFound(FactoryError):
    """The request names something that does not exist (HTTP 404)."""


class Refused(FactoryError):
    """This factory will not do what is asked, by its configuration (HTTP 403)."""


class Unavailable(FactoryError):
    """A backing service (store, broker) cannot be reached right now (HTTP 503)."""


class NotImplementedYet(FactoryError):
    """A recognised request for an asset kind this factory does not build yet (HTTP 501)."""
