"""Who may do what, against real deployments: the embedded default and the scaled mode
(Redis + SeaweedFS S3 + gunicorn + a worker) pass the same tests.

Tokens come from `image-factory token create` run against each deployment's store; the
audit log is read over HTTP and with `image-factory audit`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.extensions.builders import file, hello_members, manifest, tar_bytes
from tests.factory.stacks import (
    Stack,
    image_factory,
    prepare_scaled,
    scaled_env,
    start_embedded,
    start_scaled,
    stock,
)
from tests.services import RedisServer, S3Server, free_ports
from workers.backends import choose_backend
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import LocalStore, Store, make_store

pytestmark = pytest.mark.integration

SYSEXT = "extensions-amd64.sqsh"


@dataclass
class Deployment:
    stack: Stack
    store: Store  # the deployment's own store, to take a built asset away
    admin: str  # an admin token


@pytest.fixture(scope="module", params=["embedded", "scaled"])
def deployment(
    request: pytest.FixtureRequest,
    reference_release: tuple[LocalStore, Release],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp(f"tenancy-{request.param}")
    if request.param == "embedded":
        settings = Settings(data_dir=root / "data")
        stock(LocalStore(settings.data_dir / "store"), settings, reference_release, root / "seed")
        stack = start_embedded(root, settings.data_dir)
    else:
        redis: RedisServer = request.getfixturevalue("redis_server")
        s3: S3Server = request.getfixturevalue("s3_server")
        port = free_ports(1)[0]
        shared = root / "shared"
        env = scaled_env(redis, s3, "tenancy", shared / "keys", port)
        # A Redis database of its own: the session's Redis is shared with other modules.
        env["IMAGE_FACTORY_BROKER_URL"] = redis.url.rsplit("/", 1)[0] + "/7"
        prepare_scaled(root, env, reference_release, shared)
        stack = start_scaled(root, env, port, workers=1)
    try:
        store = make_store(choose_backend(Settings.from_env(stack.env)))
        yield Deployment(stack, store, stack.token("root", "admin"))
    finally:
        stack.stop()


def extension(name: str, version: str) -> bytes:
    """A valid extension tar: `/usr/local/share/<name>` holds the version, and a random
    marker makes its content unique (the store refuses identical content under two names)."""
    extra = [
        file(f"rootfs/usr/local/share/{name}", version.encode()),
        file(f"rootfs/usr/local/share/{name}.id", uuid.uuid4().hex.encode()),
    ]
    return tar_bytes(hello_members(extra, body=manifest(name, version)))


def upload(stack: Stack, namespace: str, body: bytes, token: str | None) -> tuple[int, str]:
    status, _, answer = stack.call("POST", f"/extensions?namespace={namespace}", body, token)
    return status, answer.decode()


def catalog(stack: Stack) -> dict[str, dict[str, str]]:
    status, _, body = stack.call("GET", "/version/v1.0.0/extensions/official")
    assert status == 200
    return {entry["name"]: entry for entry in json.loads(body)}


def schematic(stack: Stack, *names: str) -> str:
    listed = ", ".join(json.dumps(name) for name in names)
    body = f"customization:\n  systemExtensions:\n    officialExtensions: [{listed}]\n"
    return stack.create_schematic(body.encode())


def download(stack: Stack, schematic_id: str, path: str, dest: Path) -> str:
    stack.curl("--fail", "-o", str(dest), f"/image/{schematic_id}/v1.0.0/{path}")
    return hashlib.sha256(dest.read_bytes()).hexdigest()


def test_anonymous_or_wrong_tokens_cannot_upload(deployment: Deployment) -> None:
    stack = deployment.stack
    body = extension("anon", "1.0.0")
    status, _, text = stack.call("POST", "/extensions?namespace=anyone", body)
    assert status == 401
    assert b"uploading an extension needs a token with the upload role" in text
    status, headers, _ = stack.call("POST", "/extensions?namespace=anyone", body, "root.wrong")
    assert status == 401
    assert headers["WWW-Authenticate"] == (
        'Bearer realm="image-factory", error="invalid_token", scope="upload"'
    )
    reader = stack.token("reader", "read")
    status, text_ = upload(stack, "anyone", body, reader)
    assert status == 403
    assert 'needs the upload role; token "reader" has the read role' in text_
    assert "anyone/anon" not in catalog(stack)


def test_namespaces_reserved_owned_and_claimed(deployment: Deployment) -> None:
    stack = deployment.stack
    alice, bob = stack.token("alice", "upload"), stack.token("bob", "upload")
    for reserved in ("factory", "siderolabs"):
        status, text = upload(stack, reserved, extension("sneaky", "1.0.0"), alice)
        assert status == 403
        assert f'namespace "{reserved}" is reserved' in text

    status, text = upload(stack, "alice", extension("tool", "1.0.0"), alice)
    assert status == 201, text
    entry = catalog(stack)["alice/tool"]
    assert (entry["origin"], entry["uploaded_by"], entry["version"]) == ("upload", "alice", "1.0.0")
    assert entry["uploaded_at"].endswith("Z")
    assert catalog(stack)["factory/hello"]["origin"] == "bundled"

    status, text = upload(stack, "alice", extension("other", "1.0.0"), bob)
    assert status == 403
    assert 'namespace "alice" belongs to "alice"' in text
    # A refused first upload leaves the namespace free.
    status, _ = upload(stack, "fresh", b"not a tar", bob)
    assert status == 400
    status, text = upload(stack, "fresh", extension("mine", "1.0.0"), alice)
    assert status == 201, text
    # Admins publish anywhere, reserved namespaces included.
    assert upload(stack, "siderolabs", extension("blessed", "1.0.0"), deployment.admin)[0] == 201


def test_a_higher_version_never_changes_what_a_schematic_builds(
    deployment: Deployment, tmp_path: Path
) -> None:
    stack = deployment.stack
    carol = stack.token("carol", "upload")
    assert upload(stack, "carol", extension("tool", "1.0.0"), carol)[0] == 201
    unpinned = schematic(stack, "carol/tool")
    first = download(stack, unpinned, SYSEXT, tmp_path / "first")
    key = stack.build_key(unpinned, SYSEXT)

    assert upload(stack, "carol", extension("tool", "2.0.0"), carol)[0] == 201
    assert catalog(stack)["carol/tool"]["version"] == "2.0.0"
    # Take the built asset away: the next request must build it again, from scratch.
    deployment.store.delete(f"blobs/sha256/{first}")
    deployment.store.delete(f"builds/{key}/manifest.json")
    status, _, body = stack.call(
        "POST",
        "/builds",
        json.dumps({"schematic": unpinned, "version": "v1.0.0", "path": SYSEXT}).encode(),
        content_type="application/json",
    )
    assert (status, json.loads(body)["key"]) == (202, key)
    assert download(stack, unpinned, SYSEXT, tmp_path / "again") == first

    pinned_v2 = schematic(stack, "carol/tool@2.0.0")
    pinned_v1 = schematic(stack, "carol/tool@1.0.0")
    assert len({unpinned, pinned_v1, pinned_v2}) == 3
    # Which version each one carries: the file each version writes, read from the sysext.
    assert shipped(stack, unpinned, "tool", tmp_path) == b"1.0.0"
    assert shipped(stack, pinned_v1, "tool", tmp_path) == b"1.0.0"
    assert shipped(stack, pinned_v2, "tool", tmp_path) == b"2.0.0"
    # A schematic first planned now gets the newest version.
    assert shipped(stack, schematic(stack, "carol/tool", "factory/hello"), "tool", tmp_path) == (
        b"2.0.0"
    )


def shipped(stack: Stack, schematic_id: str, name: str, tmp_path: Path) -> bytes:
    """`/usr/local/share/<name>` in the schematic's sysext image (what `extension()` put
    there: the version, unless told otherwise)."""
    sysext = tmp_path / f"{schematic_id}.sqsh"
    download(stack, schematic_id, SYSEXT, sysext)
    return subprocess.run(
        ["unsquashfs", "-cat", str(sysext), f"usr/local/share/{name}"],
        capture_output=True,
        check=True,
    ).stdout


def test_withdrawn_versions_stop_new_builds_and_deletes_wait_for_no_references(
    deployment: Deployment, tmp_path: Path
) -> None:
    stack, admin = deployment.stack, deployment.admin
    dave = stack.token("dave", "upload")
    for name in ("gone", "unused", "pinned"):
        assert upload(stack, "dave", extension(name, "1.0.0"), dave)[0] == 201
    built = schematic(stack, "dave/gone")
    before = download(stack, built, SYSEXT, tmp_path / "built")
    pinning = schematic(stack, "dave/pinned@1.0.0")  # stored, never planned

    assert stack.call("POST", "/extensions/dave/gone/1.0.0/withdraw", b"", dave)[0] == 403
    status, _, body = stack.call("POST", "/extensions/dave/gone/1.0.0/withdraw", b"", admin)
    assert status == 200, body
    assert "dave/gone" not in catalog(stack)
    # Built already: still served, byte for byte.
    assert download(stack, built, SYSEXT, tmp_path / "after") == before
    # Not built yet: refused, naming the extension.
    status, _, body = stack.call("GET", f"/image/{built}/v1.0.0/initramfs-amd64.xz")
    assert status == 410
    assert b"extension dave/gone 1.0.0 was withdrawn" in body
    newcomer = schematic(stack, "dave/gone", "factory/hello")
    status, _, body = stack.call("GET", f"/image/{newcomer}/v1.0.0/{SYSEXT}")
    assert (status, body) == (410, b'official extension "dave/gone" 1.0.0 was withdrawn\n')

    status, _, body = stack.call("DELETE", "/extensions/dave/gone/1.0.0", None, admin)
    assert status == 409
    assert f"{built}-v1.0.0-amd64".encode() in body
    status, _, body = stack.call("DELETE", "/extensions/dave/pinned/1.0.0", None, admin)
    assert status == 409
    assert f"schematic {pinning} pins dave/pinned@1.0.0".encode() in body
    status, _, body = stack.call("DELETE", "/extensions/dave/unused/1.0.0", None, admin)
    assert status == 200, body
    digest = json.loads(body)["digests"][0].removeprefix("sha256:")
    assert not deployment.store.exists(f"extensions/{digest}.tar")
    assert not deployment.store.exists(f"extensions/{digest}.json")
    assert "dave/unused" not in catalog(stack)
    assert stack.call("DELETE", "/extensions/dave/unused/1.0.0", None, admin)[0] == 404


def test_owner_schematics(deployment: Deployment, tmp_path: Path) -> None:
    stack = deployment.stack
    erin, frank = stack.token("erin", "upload"), stack.token("frank", "read")
    body = b"owner: erin\ncustomization:\n  extraKernelArgs: [owned]\n"
    offline = subprocess.run(
        [image_factory(), "schematic", "id"], input=body, capture_output=True, check=True
    )
    expected = offline.stdout.decode().strip()

    assert stack.call("POST", "/schematics", body)[0] == 401
    status, _, text = stack.call("POST", "/schematics", body, frank)
    assert status == 403
    assert b'owner "erin" needs the token of that owner or the admin role' in text
    status, _, text = stack.call("POST", "/schematics", body, erin)
    assert status == 201
    assert json.loads(text)["id"] == expected
    assert stack.call("POST", "/schematics", body, deployment.admin)[0] == 201
    # Stored, it is read and built by ID like any other schematic.
    status, _, text = stack.call("GET", f"/schematics/{expected}")
    assert (status, text.startswith(b"owner: erin\n") or b"owner: erin\n" in text) == (200, True)
    assert download(stack, expected, "cmdline-metal-amd64", tmp_path / "cmdline")
    assert b"owned" in (tmp_path / "cmdline").read_bytes()


def test_audit_log_and_token_lifecycle(deployment: Deployment) -> None:
    stack, admin = deployment.stack, deployment.admin
    grace = stack.token("grace", "upload")
    status, _, body = upload_raw(stack, "grace", extension("audited", "1.0.0"), grace)
    assert status == 201
    digest = json.loads(body)["digest"].removeprefix("sha256:")

    assert stack.call("GET", "/audit")[0] == 401
    assert stack.call("GET", "/audit", None, grace)[0] == 403
    status, _, body = stack.call("GET", "/audit", None, admin)
    assert status == 200
    events = json.loads(body)
    assert {
        "time": events[-1]["time"],
        "actor": "grace",
        "action": "extension.upload",
        "subject": "grace/audited 1.0.0",
        "digest": digest,
    } in events
    assert any(e["action"] == "token.create" and e["subject"] == "grace (upload)" for e in events)
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)

    revoked = stack.cli("token", "revoke", "grace")
    assert revoked.returncode == 0, revoked.stderr
    status, headers, _ = upload_raw(stack, "grace", extension("late", "1.0.0"), grace)
    assert status == 401
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    listing = stack.cli("token", "list").stdout
    assert "grace upload revoked" in listing
    assert grace.split(".", 1)[1] not in listing  # only hashes are kept
    log = stack.cli("audit").stdout
    assert f"grace extension.upload grace/audited 1.0.0 sha256:{digest}" in log
    assert "cli token.revoke grace" in log


def upload_raw(
    stack: Stack, namespace: str, body: bytes, token: str
) -> tuple[int, dict[str, str], bytes]:
    return stack.call("POST", f"/extensions?namespace={namespace}", body, token)
