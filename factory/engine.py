"""The engine (`workers.engine.Engine`) of the app handling the current request: the one
place a request handler gets the settings, the store and the build side from.

`create_app` makes it with the app (gunicorn builds the app in each web process). Its
connections (coordination, queue, usage, metrics) open on first use, in the process that asks:
connections must not be shared across a fork.
"""

from __future__ import annotations

from flask import Flask, current_app

from workers.backends import Backend
from workers.engine import Engine
from workers.settings import Settings
from workers.store import Store

ENGINE_KEY = "image_factory_engine"


def install_engine(app: Flask, settings: Settings, backend: Backend, store: Store) -> None:
    app.extensions[ENGINE_KEY] = Engine(settings, backend, store)


def engine() -> Engine:
    """The engine of the app handling the current request."""
    found: Engine = current_app.extensions[ENGINE_KEY]
    return found
