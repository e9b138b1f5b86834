"""Who may publish into which extension namespace.

- Reserved namespaces (the bundled one, `Settings.extensions_namespace`, and those in
  `IMAGE_FACTORY_RESERVED_NAMESPACES`, `siderolabs` by default) take uploads from admins only.
- Any other namespace belongs to the token whose upload first landed in it:
  `namespaces/<ns>.json` records the owner, created with the store's conditional create, so
  of two first uploads racing for a namespace exactly one wins. Admins may publish anywhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

from workers.errors import Forbidden
from workers.settings import Settings
from workers.store import ObjectNotFound, Store
from workers.tenancy.tokens import ROLE_ADMIN, Identity

NAMESPACES_PREFIX = "namespaces/"


def reserved_namespaces(settings: Settings) -> frozenset[str]:
    extra = (part.strip() for part in settings.reserved_namespaces.split(","))
    return frozenset({settings.extensions_namespace, *(name for name in extra if name)})


def namespace_owner(store: Store, namespace: str) -> str | None:
    try:
        return str(json.loads(store.get_bytes(_key(namespace)))["owner"])
    except ObjectNotFound:
        return None


def _key(namespace: str) -> str:
    return f"{NAMESPACES_PREFIX}{namespace}.json"


@contextmanager
def publishing_into(
    store: Store, settings: Settings, who: Identity, namespace: str
) -> Iterator[None]:
    """Check that `who` may publish into `namespace`, claiming it if nobody owns it, for
    the duration of the block: a claim made here is given back if the block fails (the
    upload was refused), so a refused first upload leaves the namespace free."""
    if namespace in reserved_namespaces(settings):
        if not who.holds(ROLE_ADMIN):
            raise Forbidden(
                f'namespace "{namespace}" is reserved: publishing there needs the admin role'
            )
        yield
        return
    owner = namespace_owner(store, namespace)
    claimed = False
    if owner is None:
        doc = {"owner": who.name, "claimed": int(time.time())}
        claimed = store.put_new(_key(namespace), (json.dumps(doc) + "\n").encode())
        owner = who.name if claimed else namespace_owner(store, namespace)
    if owner != who.name and not who.holds(ROLE_ADMIN):
        raise Forbidden(
            f'namespace "{namespace}" belongs to "{owner}": publishing there needs that '
            "token or the admin role"
        )
    try:
        yield
    except BaseException:
        if claimed:
            store.delete(_key(namespace))
        raise
