"""What a request handler needs from the engine, attached to the Flask app once."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from workers.settings import Settings
from workers.store import Store

EXTENSION_KEY = "image_factory"


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store


def services() -> Services:
    """The services of the app handling the current request."""
    found: Services = current_app.extensions[EXTENSION_KEY]
    return found
