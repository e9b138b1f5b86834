"""The one hashing loop: several digests of a file (computed on threads) are each the digest
of the whole file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from workers.hashing import hash_file


def test_each_digest_of_a_file_is_its_whole_digest(tmp_path: Path) -> None:
    data = bytes(range(256)) * 20_000 + b"tail"  # several chunks and a short last one
    path = tmp_path / "f"
    path.write_bytes(data)
    hashes = hash_file(path, ("sha256", "sha512", "sha1"))
    assert hashes.hexdigests == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha512": hashlib.sha512(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
    }
    assert hashes.size == len(data)
    assert hash_file(path).sha256 == hashlib.sha256(data).hexdigest()
