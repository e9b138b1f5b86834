"""Whole bodies sent zero-copy under a verified file stamp (`factory.verified_stamps`):
the guarded file, the app serving through it (test client: the file is read, not
`sendfile`d), and a real `image-factory serve` with one gunicorn web process, where the
verified downloads go out with `sendfile` and the integrity of issue 12 still holds. The
stamp cache itself: tests/workers/outputs/test_file_stamps.py."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from factory.delivery import CorruptBlob
from factory.verified_stamps import BlobChanged, GuardedFile
from schematics import parse_schematic
from tests.factory.served import Served, served
from tests.factory.stacks import Stack, start_embedded, stock
from tests.factory.test_images import tamper_keeping_size_and_mtime
from workers.keys.signing import load_or_create_signing_key
from workers.outputs import file_stamps
from workers.outputs.file_stamps import SETTLE_NS, OpenedBlob
from workers.outputs.schematics_store import save_schematic
from workers.pipeline.build_once import publish_build
from workers.pipeline.progress import StageClock
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import LocalStore

ASSET = "cmdline-metal-amd64"


def _publish(store: LocalStore, settings: Settings, marker: str, data: bytes, tmp: Path) -> str:
    """A finished build of `ASSET` whose bytes are `data`, for a new schematic: its ID."""
    schematic = parse_schematic(f"customization:\n  extraKernelArgs: [z={marker}]\n".encode())
    sid = save_schematic(store, schematic)
    plan = make_plan(store, schematic, sid, "v1.0.0", parse_profile(ASSET), settings)
    source = tmp / f"{marker}.bin"
    source.write_bytes(data)
    clock = StageClock(lambda stage, percent: None)
    publish_build(
        store, plan, source, time.monotonic(), clock, load_or_create_signing_key(settings)
    )
    source.unlink()  # the blob was linked from it: nothing else may reach its inode
    return sid


def _data(marker: str, size: int) -> bytes:
    block = hashlib.sha512(marker.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


# --- sending under a stamp ------------------------------------------------------------------


def test_a_guarded_file_reads_whole_while_unchanged_and_refuses_its_end_after_a_change(
    tmp_path: Path,
) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"0123456789" * 10)
    with GuardedFile(OpenedBlob.open(blob)) as guarded:
        assert guarded.read(60) + guarded.read(60) == b"0123456789" * 10
        assert guarded.read_last(90, 10) == b"0123456789"

    with GuardedFile(OpenedBlob.open(blob)) as guarded:
        assert guarded.read(60) == (b"0123456789" * 10)[:60]
        tamper_keeping_size_and_mtime(blob, 95)
        with pytest.raises(BlobChanged, match="changed while it was sent"):
            guarded.read(60)  # the read reaching the end
        with pytest.raises(BlobChanged):
            guarded.read_last(90, 10)


# --- the app (test client: the file is read through the GuardedFile) -------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory) as found:
        yield found


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blobs published a moment ago count as settled (the check itself is tested above)."""
    monkeypatch.setattr(file_stamps, "SETTLE_NS", 0)


def _checks(srv: Served) -> tuple[float, float]:
    text = srv.client.get("/metrics").get_data(as_text=True)
    counts = []
    for check in ("hashed", "stamp"):
        line = f'image_factory_whole_bodies_total{{check="{check}"}} '
        found = [row for row in text.splitlines() if row.startswith(line)]
        counts.append(float(found[0].split()[-1]) if found else 0.0)
    return counts[0], counts[1]


def _touch_ctime(blob: Path) -> None:
    """Move the file's ctime only: its times put back as they are (its bytes, size, mtime and
    inode stay, so the per-process check does not hash it again)."""
    times = blob.stat()
    os.utime(blob, ns=(times.st_atime_ns, times.st_mtime_ns))


def _published(srv: Served, marker: str, data: bytes, tmp: Path) -> str:
    """The URL of a new build of `ASSET` whose bytes are `data`."""
    return f"/image/{_publish(srv.store, srv.settings, marker, data, tmp)}/v1.0.0/{ASSET}"


def _blob(srv: Served, data: bytes) -> Path:
    return srv.store.path(f"blobs/sha256/{hashlib.sha256(data).hexdigest()}")


def test_verified_files_go_by_their_stamp_and_others_are_hashed_on_the_wire(
    srv: Served, tmp_path: Path, settled: None
) -> None:
    data = _data("app-repeat", 3 << 20)
    url = _published(srv, "app-repeat", data, tmp_path)
    hashed, stamped = _checks(srv)
    # The process's first check hashes the whole blob: its stamp vouches for the download.
    assert srv.client.get(url).data == data
    assert _checks(srv) == (hashed, stamped + 1)
    _touch_ctime(_blob(srv, data))
    assert srv.client.get(url).data == data  # hashed on the wire: the stamp moved
    assert _checks(srv) == (hashed + 1, stamped + 1)
    again = srv.client.get(url)  # by the stamp that hashed download verified
    assert again.status_code == 200
    assert again.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert again.headers["Content-Length"] == str(len(data))
    assert again.data == data
    assert _checks(srv) == (hashed + 1, stamped + 2)


def test_a_stamp_is_not_remembered_before_its_ctime_settled(
    srv: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settling takes an hour here: every file's ctime is too recent to tell a write apart.
    monkeypatch.setattr(file_stamps, "SETTLE_NS", 3600 * 10**9)
    data = _data("app-unsettled", 3 << 20)
    url = _published(srv, "app-unsettled", data, tmp_path)
    hashed, stamped = _checks(srv)
    for _ in range(3):
        assert srv.client.get(url).data == data
    assert _checks(srv) == (hashed + 3, stamped)


def test_bytes_changed_after_a_verified_download_are_hashed_and_cut(
    srv: Served, tmp_path: Path, settled: None
) -> None:
    data = _data("app-tamper", 3 << 20)
    url = _published(srv, "app-tamper", data, tmp_path)
    assert srv.client.get(url).data == data  # by its stamp (the first check hashed it)
    tamper_keeping_size_and_mtime(_blob(srv, data), 10)
    hashed, stamped = _checks(srv)

    response = srv.client.get(url)  # headers and the first chunks go out
    with pytest.raises(CorruptBlob, match="does not match its sha256"):
        response.get_data()
    assert _checks(srv) == (hashed + 1, stamped)  # the stamp no longer vouched for it


def test_a_file_changed_while_sent_by_its_stamp_is_cut(
    srv: Served, tmp_path: Path, settled: None
) -> None:
    data = _data("app-during", 3 << 20)
    url = _published(srv, "app-during", data, tmp_path)
    assert srv.client.get(url).data == data
    hashed, stamped = _checks(srv)
    response = srv.client.get(url, buffered=False)
    assert _checks(srv) == (hashed, stamped + 1)
    chunks = iter(response.response)
    first = next(chunks)
    assert first == data[: len(first)]
    tamper_keeping_size_and_mtime(_blob(srv, data), 5)

    with pytest.raises(BlobChanged, match="changed while it was sent"):
        for _ in chunks:
            pass
    response.close()


# --- a real `image-factory serve`: one gunicorn web process, zero-copy sends ------------------

BIG = 16 << 20  # well beyond what loopback socket buffers hold before the client reads


@pytest.fixture(scope="module")
def single(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, bytes]]]:
    """One web process (so every download meets the same stamps), with assets published
    before it starts (so their files' ctimes have settled)."""
    root = tmp_path_factory.mktemp("stamps")
    settings = Settings(data_dir=root / "data")
    store = LocalStore(settings.data_dir / "store")
    stock(store, settings, reference_release, root / "seed")
    assets = {marker: _data(marker, BIG) for marker in ("wire-after", "wire-during")}
    sids = {
        marker: _publish(store, settings, marker, data, root) for marker, data in assets.items()
    }
    time.sleep(SETTLE_NS / 1e9)  # the blobs' ctimes settle (the web process starts slower)
    stack = start_embedded(root, settings.data_dir, web_workers=1)
    try:
        yield stack, {f"/image/{sids[m]}/v1.0.0/{ASSET}": data for m, data in assets.items()}
    finally:
        stack.stop()


def _url(single: tuple[Stack, dict[str, bytes]], marker: str) -> tuple[Stack, str, bytes]:
    stack, urls = single
    url, data = next((u, d) for u, d in urls.items() if d == _data(marker, BIG))
    return stack, url, data


def _wire_checks(stack: Stack) -> tuple[float, float]:
    name = "image_factory_whole_bodies_total"
    return stack.metric(name, check="hashed"), stack.metric(name, check="stamp")


def _download(stack: Stack, url: str, into: Path) -> bytes:
    stack.curl("--fail", "-o", str(into), url)
    return into.read_bytes()


@pytest.mark.integration
def test_bytes_changed_after_a_verified_download_never_leave_complete(
    single: tuple[Stack, dict[str, bytes]], tmp_path: Path
) -> None:
    stack, url, data = _url(single, "wire-after")
    sha = hashlib.sha256(data).hexdigest()
    hashed, stamped = _wire_checks(stack)
    assert _download(stack, url, tmp_path / "first") == data  # checked whole, then by stamp
    assert _download(stack, url, tmp_path / "second") == data
    assert _wire_checks(stack) == (hashed, stamped + 2)
    tamper_keeping_size_and_mtime(stack.root / "data" / "store" / "blobs" / "sha256" / sha, 99)

    answer = stack.curl("-o", str(tmp_path / "third"), url, check=False)

    assert answer.returncode == 18, answer.stderr  # "transfer closed with bytes remaining"
    received = (tmp_path / "third").read_bytes()
    assert len(received) < BIG
    assert received[:99] == data[:99]
    assert received[99] != data[99]  # the changed byte went out, the body never completed
    assert _wire_checks(stack) == (hashed + 1, stamped + 2)  # hashed, not sent by the stamp


@pytest.mark.integration
def test_a_file_changed_during_a_zero_copy_send_is_cut(
    single: tuple[Stack, dict[str, bytes]], tmp_path: Path
) -> None:
    stack, url, data = _url(single, "wire-during")
    sha = hashlib.sha256(data).hexdigest()
    hashed, stamped = _wire_checks(stack)
    with socket.socket() as client:
        # A small receive window: the server's sendfile waits on this client.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        client.settimeout(60)
        client.connect(("127.0.0.1", stack.port))
        request = f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        client.sendall(request.encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += client.recv(65536)
        head, body = received.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert f"content-length: {BIG}".encode() in head.lower()
        assert _wire_checks(stack) == (hashed, stamped + 1)  # going out by its stamp
        tamper_keeping_size_and_mtime(
            stack.root / "data" / "store" / "blobs" / "sha256" / sha, BIG - 10
        )
        while chunk := client.recv(1 << 20):
            body += chunk
    assert len(body) < BIG  # cut before the last chunk
    assert body == data[: len(body)]
    assert "changed while it was sent" in stack.log("serve")
