"""This process's engine (`workers.engine.Engine`) for the app handling the current request.

Made on first use in each process (gunicorn forks its web processes after the app is
built, and connections must not be shared across a fork), then kept on the app.
"""

from __future__ import annotations

import threading

from flask import current_app

from factory.services import services
from workers.engine import Engine

ENGINE_KEY = "image_factory_engine"
_lock = threading.Lock()


def engine() -> Engine:
    """This process's engine for the app handling the current request."""
    found: Engine | None = current_app.extensions.get(ENGINE_KEY)
    if found is None:
        with _lock:
            found = current_app.extensions.get(ENGINE_KEY)
            if found is None:
                svc = services()
                found = current_app.extensions[ENGINE_KEY] = Engine(svc.settings, svc.store)
    return found
