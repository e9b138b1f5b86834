"""Who a request counts against for the per-client limits (`workers.tenancy.usage`).

A request with a valid `Authorization: Bearer` token counts against that token's name; any
other (no token, or one that does not verify: a made-up token must not buy a fresh
allowance) against its address. This is the one place that decides it.
"""

from __future__ import annotations

import hashlib

from flask import request

from factory.auth import current_identity
from workers.errors import Unauthorized

# Long enough never to collide by chance, short enough for a Redis key or a file name.
CLIENT_NAME_CHARS = 32


def client_identity() -> str:
    """The current request's client, as a short hex name."""
    try:
        identity = current_identity()
    except Unauthorized:
        identity = None
    who = f"token:{identity.name}" if identity else f"address:{request.remote_addr or ''}"
    return hashlib.sha256(who.encode()).hexdigest()[:CLIENT_NAME_CHARS]
