"""Withdrawn extensions: `withdrawn/<digest>.json` marks a stored extension that new plans
may no longer use (who withdrew it and when). The record and its tar stay, so assets already
built with it remain downloadable; the catalog stops offering it."""

from __future__ import annotations

from workers.store import Store

WITHDRAWN_PREFIX = "withdrawn/"


def withdrawn_key(digest: str) -> str:
    return f"{WITHDRAWN_PREFIX}{digest}.json"


def withdrawn_digests(store: Store) -> frozenset[str]:
    return frozenset(
        key.removeprefix(WITHDRAWN_PREFIX).removesuffix(".json")
        for key in store.list(WITHDRAWN_PREFIX)
        if key.endswith(".json")
    )
