"""Bearer tokens: `tokens/<name>.json` holds a token's name, role, the sha256 of its secret,
when it was made, when it expires and whether it was revoked; never the token itself.

A token reads `<name>.<secret>`: the name says which record to check (one store read, no
scan), the secret is 32 random bytes (URL-safe base64), compared by hash in constant time.
Roles are ordered: `read` < `upload` < `admin`; a role holds every right of those below.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass

from workers.errors import Conflict, InvalidRequest, NotFound
from workers.store import ObjectNotFound, Store

TOKENS_PREFIX = "tokens/"
ROLE_READ = "read"
ROLE_UPLOAD = "upload"
ROLE_ADMIN = "admin"
ROLES = (ROLE_READ, ROLE_UPLOAD, ROLE_ADMIN)
TOKEN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_DURATION = re.compile(r"^(\d+)([smhdw]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class TokenRecord:
    name: str
    role: str
    sha256: str  # of the whole token text
    created: int  # seconds since the epoch
    expires: int = 0  # 0: never
    revoked: int = 0  # 0: not revoked

    def state(self, now: int) -> str:
        if self.revoked:
            return "revoked"
        if self.expires and now >= self.expires:
            return "expired"
        return "active"


@dataclass(frozen=True)
class Identity:
    """Who a request acts as: a token's name and role."""

    name: str
    role: str

    def holds(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def check_token_name(name: str) -> str:
    if not TOKEN_NAME.match(name):
        raise InvalidRequest(
            f'invalid token name "{name}": lowercase letters, digits, ".", "_", "-" '
            "(at most 63, starting with a letter or digit)"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidRequest(f'unknown role "{role}": one of {", ".join(ROLES)}')
    return role


def parse_duration(text: str) -> int:
    """Seconds in `90`, `90s`, `15m`, `12h`, `30d` or `2w`; InvalidRequest otherwise."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidRequest(
            f'invalid duration "{text}": a positive number with s, m, h, d or w (e.g. 30d)'
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _key(name: str) -> str:
    return f"{TOKENS_PREFIX}{name}.json"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _to_json(record: TokenRecord) -> bytes:
    return (json.dumps(asdict(record), sort_keys=True, indent=2) + "\n").encode()


def load_token(store: Store, name: str) -> TokenRecord:
    check_token_name(name)
    try:
        doc = json.loads(store.get_bytes(_key(name)))
    except ObjectNotFound:
        raise NotFound(f'no token named "{name}"') from None
    return TokenRecord(**doc)


def create_token(
    store: Store, name: str, role: str, expires_in: int = 0, now: int | None = None
) -> tuple[TokenRecord, str]:
    """Make token `name` with `role`; the record and the token text (shown once, never
    stored). A name already used (revoked ones included) → Conflict: names stay unique
    because audit events and namespace owners refer to them."""
    check_token_name(name)
    check_role(role)
    created = int(time.time()) if now is None else now
    token = f"{name}.{secrets.token_urlsafe(32)}"
    record = TokenRecord(
        name=name,
        role=role,
        sha256=_hash(token),
        created=created,
        expires=created + expires_in if expires_in else 0,
    )
    if not store.put_new(_key(name), _to_json(record), "application/json"):
        raise Conflict(f'a token named "{name}" exists already; choose another name')
    return record, token


def list_tokens(store: Store) -> list[TokenRecord]:
    return [
        TokenRecord(**json.loads(store.get_bytes(key)))
        for key in store.list(TOKENS_PREFIX)
        if key.endswith(".json")
    ]


def revoke_token(store: Store, name: str, now: int | None = None) -> TokenRecord:
    """Mark token `name` revoked (it stops working at once); revoking twice is harmless."""
    record = load_token(store, name)
    if record.revoked:
        return record
    revoked = TokenRecord(**{**asdict(record), "revoked": int(time.time()) if now is None else now})
    store.put_bytes(_key(name), _to_json(revoked), "application/json")
    return revoked


def authenticate(store: Store, token: str, now: int | None = None) -> Identity | None:
    """The identity `token` stands for, or None when it is unknown, wrong, expired or
    revoked (callers answer all of these alike, so a guess learns nothing)."""
    name, dot, _ = token.partition(".")
    if not dot or not TOKEN_NAME.match(name):
        return None
    try:
        record = load_token(store, name)
    except NotFound:
        return None
    if not hmac.compare_digest(record.sha256, _hash(token)):
        return None
    if record.state(int(time.time()) if now is None else now) != "active":
        return None
    return Identity(record.name, record.role)
