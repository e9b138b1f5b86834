"""Checking a DSSE envelope the way an operator would without our code: openssl over the
pre-authentication encoding (PAE) the envelope's signature covers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from workers.assembly.run import run_tool


def openssl_verified_statement(envelope: bytes, key_pem: bytes, workdir: Path) -> dict[str, Any]:
    """The in-toto statement of `envelope` once `openssl dgst -verify` with `key_pem` accepts
    its signature (the test fails otherwise)."""
    doc = json.loads(envelope)
    payload = base64.b64decode(doc["payload"])
    kind = doc["payloadType"].encode()
    (workdir / "pae").write_bytes(b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload))
    (workdir / "sig").write_bytes(base64.b64decode(doc["signatures"][0]["sig"]))
    (workdir / "key.pub").write_bytes(key_pem)
    out = run_tool(
        [
            "openssl", "dgst", "-sha256", "-verify", workdir / "key.pub",
            "-signature", workdir / "sig", workdir / "pae",
        ]
    )  # fmt: skip
    assert b"Verified OK" in out
    statement: dict[str, Any] = json.loads(payload)
    return statement
