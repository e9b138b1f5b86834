"""Who builds: the factory's name, version and builder ID, as the evidence documents state them."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

FACTORY_NAME = "image-factory"
# SLSA `builder.id`: names this build platform (the version goes beside it, in `builder.version`).
BUILDER_ID = "urn:image-factory:builder"


@cache
def factory_version() -> str:
    try:
        return version(FACTORY_NAME)
    except PackageNotFoundError:
        return "unknown"
