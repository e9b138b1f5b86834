"""The audit log: one object per event under `audit/`, written once and never rewritten.

Keys are `audit/<UTC time, microseconds>-<8 random hex>.json`, so listing the prefix reads
the events in the order they happened (the random part keeps two events of the same
microsecond apart; `put_new` refuses to overwrite either way).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass

from workers.store import Store

AUDIT_PREFIX = "audit/"
ACTOR_CLI = "cli"  # the operator, acting through the command line on the store itself
ACTOR_HOUSEKEEPING = "housekeeping"  # the embedded default's periodic chores


@dataclass(frozen=True)
class AuditEvent:
    time: str  # ISO 8601, UTC, microseconds
    actor: str  # token name, or "cli"
    action: str  # e.g. "extension.upload", "token.create"
    subject: str  # what was acted on: "ns/name version", a token name
    digest: str = ""  # sha256 of the content acted on, when there is one


def record_event(
    store: Store, actor: str, action: str, subject: str, digest: str = ""
) -> AuditEvent:
    now = time.time()
    seconds, micros = time.gmtime(now), int(now % 1 * 1_000_000)
    stamp = time.strftime("%Y%m%dT%H%M%S", seconds) + f"{micros:06d}Z"
    event = AuditEvent(
        time=time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{micros:06d}Z",
        actor=actor,
        action=action,
        subject=subject,
        digest=digest,
    )
    data = (json.dumps(asdict(event), sort_keys=True) + "\n").encode()
    while not store.put_new(f"{AUDIT_PREFIX}{stamp}-{secrets.token_hex(4)}.json", data):
        continue  # a random suffix collided: draw another
    return event


def read_events(store: Store) -> list[AuditEvent]:
    """Every event, oldest first."""
    return [
        AuditEvent(**json.loads(store.get_bytes(key)))
        for key in store.list(AUDIT_PREFIX)
        if key.endswith(".json")
    ]
