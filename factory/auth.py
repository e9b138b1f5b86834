"""Who the request is: `Authorization: Bearer <token>`, checked against the store's tokens.

`IMAGE_FACTORY_AUTH` says what needs a token:
- `writes` (default): uploads and every other write (withdraw, delete) and the audit log;
  reading, schematics (`POST /schematics`) and builds stay open, as upstream's are;
- `all`: every route but `/healthz` and `/readyz` needs a token of at least the `read`
  role (a private factory; browsers cannot send a bearer token, so the web form is for
  token-sending clients only there).

Missing or wrong token → 401 with `WWW-Authenticate: Bearer realm="image-factory",
error=…, scope="<role needed>"`; a token whose role is too low → 403 naming the role.
"""

from __future__ import annotations

from flask import Flask, g, request

from factory.engine import engine
from workers.errors import Forbidden, Unauthorized
from workers.store import Store
from workers.tenancy.tokens import ROLE_READ, Identity, authenticate

AUTH_WRITES = "writes"
AUTH_ALL = "all"
AUTH_MODES = (AUTH_WRITES, AUTH_ALL)
# Probes answer without a token in every mode (load balancers and orchestrators send none).
OPEN_ENDPOINTS = frozenset({"ops.healthz", "ops.readyz"})
_IDENTITY = "image_factory_identity"


def identify(store: Store, authorization: str | None, role: str) -> Identity | None:
    """The identity an `Authorization` header value carries (None when there is none);
    Unauthorized when it carries a token that is malformed, unknown, expired or revoked.
    `role` is only named in the error. The web form's upload page can call this."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            f"the Authorization header must be 'Bearer <token>' (a {role} token)",
            role,
            "invalid_request",
        )
    identity = authenticate(store, token.strip())
    if identity is None:
        raise Unauthorized(
            f"the token is unknown, expired or revoked; this needs a valid {role} token",
            role,
            "invalid_token",
        )
    return identity


def authorize(store: Store, authorization: str | None, role: str, action: str) -> Identity:
    """The identity behind `authorization`, which must hold `role` to do `action`;
    Unauthorized (401) without a valid token, Forbidden (403) with too low a role."""
    identity = identify(store, authorization, role)
    if identity is None:
        raise Unauthorized(f"{action} needs a token with the {role} role", role, "invalid_request")
    if not identity.holds(role):
        raise Forbidden(
            f'{action} needs the {role} role; token "{identity.name}" has the {identity.role} role'
        )
    return identity


def require(role: str, action: str) -> Identity:
    """`authorize` for the current request (checked once per request and role)."""
    cache: dict[str, Identity] = g.setdefault(_IDENTITY, {})
    if role not in cache:
        header = request.headers.get("Authorization")
        cache[role] = authorize(engine().store, header, role, action)
    return cache[role]


def current_identity() -> Identity | None:
    """The request's identity if it sent a valid token, None if it sent none."""
    return identify(engine().store, request.headers.get("Authorization"), ROLE_READ)


def install_auth(app: Flask, mode: str) -> None:
    """Check `mode` (IMAGE_FACTORY_AUTH) and, for `all`, ask every request for a token."""
    if mode not in AUTH_MODES:
        raise ValueError(f"IMAGE_FACTORY_AUTH must be one of {', '.join(AUTH_MODES)}, got {mode!r}")
    if mode != AUTH_ALL:
        return

    @app.before_request
    def private_factory() -> None:
        if request.endpoint not in OPEN_ENDPOINTS:
            require(ROLE_READ, f"{request.method} {request.path} (private factory)")
