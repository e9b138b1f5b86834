"""Who a request counts against for the per-client limits (`workers.usage`).

A request with an `Authorization: Bearer` token is its token's (hashed: tokens are never
stored); any other is its address's. This is the one place that decides it, so named
tokens can take over here.
"""

from __future__ import annotations

import hashlib

from flask import request

# Long enough never to collide by chance, short enough for a Redis key or a file name.
CLIENT_NAME_CHARS = 32


def client_identity() -> str:
    """The current request's client, as a short hex name."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        who = f"token:{token.strip()}"
    else:
        who = f"address:{request.remote_addr or ''}"
    return hashlib.sha256(who.encode()).hexdigest()[:CLIENT_NAME_CHARS]
