"""Tokens: only a hash is stored, constant-time checks, expiry, revocation, durations."""

from __future__ import annotations

import pytest

from workers.errors import Conflict, InvalidRequest, NotFound
from workers.store import LocalStore
from workers.tenancy.tokens import (
    Identity,
    authenticate,
    create_token,
    list_tokens,
    parse_duration,
    revoke_token,
)


def test_a_token_authenticates_as_its_name_and_role(store: LocalStore) -> None:
    record, token = create_token(store, "ci", "upload")
    assert token.startswith("ci.")
    assert len(token) > 40
    assert authenticate(store, token) == Identity("ci", "upload")
    # Only the hash is stored.
    stored = b"".join(store.get_bytes(key) for key in store.list("tokens/"))
    assert token.split(".", 1)[1].encode() not in stored
    assert record.sha256.encode() in stored


@pytest.mark.parametrize("guess", ["", "ci", "ci.", "ci.wrong", "nobody.abc", "../x.y", "CI.x"])
def test_wrong_tokens_authenticate_as_nobody(store: LocalStore, guess: str) -> None:
    create_token(store, "ci", "upload")
    assert authenticate(store, guess) is None


def test_expired_and_revoked_tokens_stop_working(store: LocalStore) -> None:
    _, short = create_token(store, "short", "read", expires_in=60, now=1000)
    assert authenticate(store, short, now=1059) == Identity("short", "read")
    assert authenticate(store, short, now=1060) is None
    _, token = create_token(store, "gone", "admin")
    revoke_token(store, "gone")
    assert authenticate(store, token) is None
    states = {r.name: r.state(1060) for r in list_tokens(store)}
    assert states == {"gone": "revoked", "short": "expired"}


def test_names_are_unique_and_checked(store: LocalStore) -> None:
    create_token(store, "ci", "upload")
    with pytest.raises(Conflict, match='a token named "ci" exists already'):
        create_token(store, "ci", "admin")
    with pytest.raises(InvalidRequest, match='invalid token name "Bad Name"'):
        create_token(store, "Bad Name", "admin")
    with pytest.raises(InvalidRequest, match='unknown role "root"'):
        create_token(store, "x", "root")
    with pytest.raises(NotFound, match='no token named "nobody"'):
        revoke_token(store, "nobody")


def test_roles_are_ordered() -> None:
    admin, upload, read = Identity("a", "admin"), Identity("u", "upload"), Identity("r", "read")
    assert admin.holds("upload")
    assert admin.holds("read")
    assert upload.holds("read")
    assert not upload.holds("admin")
    assert not read.holds("upload")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "1y", "5 days", "m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid duration"):
        parse_duration(text)
