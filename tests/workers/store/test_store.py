"""The store contract, run against every backend: a local directory and a real S3 server."""

from __future__ import annotations

import hashlib
import os
import stat
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.stub import Stubber

from tests.services import S3Server, free_ports
from workers.backends import choose_backend
from workers.errors import InsufficientStorage
from workers.settings import Settings
from workers.store import LocalStore, ObjectNotFound, Store, StoreUnavailable, make_store
from workers.store import s3 as s3_module
from workers.store.s3 import S3Store, _BodyReader

DATA = b"0123456789"


def _bucket() -> str:
    return f"test-{uuid.uuid4().hex[:16]}"


def _s3_store(server: S3Server, tmp_path: Path, bucket: str, **options: Any) -> S3Store:
    settings = server.settings(tmp_path, bucket)
    if not options:
        return S3Store.from_settings(settings)
    return S3Store(
        settings.s3_endpoint,
        settings.s3_bucket,
        settings.s3_access_key,
        settings.s3_secret_key,
        settings.s3_region,
        **options,
    )


def _s3_client(server: S3Server) -> Any:
    """A plain boto3 client, to look at the bucket behind the store's back."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    server: S3Server = request.getfixturevalue("s3_server")
    return _s3_store(server, tmp_path, _bucket())


@pytest.fixture
def s3_store(s3_server: S3Server, tmp_path: Path) -> S3Store:
    return _s3_store(s3_server, tmp_path, _bucket())


# --- the contract, for every backend --------------------------------------------------------


def test_put_bytes_then_read_back(any_store: Store) -> None:
    any_store.put_bytes("schematics/abc", DATA, "application/yaml")
    assert any_store.exists("schematics/abc")
    assert any_store.size("schematics/abc") == len(DATA)
    assert any_store.get_bytes("schematics/abc") == DATA
    with any_store.open("schematics/abc") as reader:
        assert reader.read() == DATA


def test_put_replaces_the_whole_object(any_store: Store) -> None:
    any_store.put_bytes("k", b"a much longer first version")
    any_store.put_bytes("k", b"short")
    assert any_store.get_bytes("k") == b"short"
    assert any_store.size("k") == 5


def test_empty_object(any_store: Store) -> None:
    any_store.put_bytes("empty", b"")
    assert any_store.exists("empty")
    assert any_store.size("empty") == 0
    assert any_store.get_bytes("empty") == b""
    with any_store.open("empty", 0, 10) as reader:
        assert reader.read() == b""


def test_put_file_then_download(any_store: Store, tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    any_store.put_file("blobs/sha256/x", src, "application/x-iso9660-image")
    dest = tmp_path / "dest.bin"
    any_store.download("blobs/sha256/x", dest)
    assert dest.read_bytes() == payload
    assert any_store.size("blobs/sha256/x") == len(payload)


def test_an_adopted_file_is_stored_like_a_put_one(any_store: Store, tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    src = tmp_path / "built.iso"
    src.write_bytes(payload)
    any_store.adopt_file("blobs/sha256/y", src, "application/x-iso9660-image")
    dest = tmp_path / "dest.bin"
    any_store.download("blobs/sha256/y", dest)
    assert dest.read_bytes() == payload
    local = any_store.local_path("blobs/sha256/y")
    if local is not None:  # the local store links it in: no byte written again
        assert local.stat().st_ino == src.stat().st_ino
        assert not [p for p in local.parent.parent.parent.rglob("*.link")]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, DATA),
        (3, None, b"3456789"),
        (3, 7, b"3456"),
        (0, 1, b"0"),
        (9, 10, b"9"),
        (5, 5, b""),
        (8, 100, b"89"),
        (10, None, b""),
        (12, 15, b""),
        (12, None, b""),
    ],
)
def test_open_reads_the_requested_range(
    any_store: Store, start: int, end: int | None, expected: bytes
) -> None:
    any_store.put_bytes("digits", DATA)
    with any_store.open("digits", start, end) as reader:
        assert reader.read() == expected


def test_open_streams_a_large_object_in_pieces(any_store: Store) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    any_store.put_bytes("large", payload)
    digest = hashlib.sha256()
    pieces = 0
    with any_store.open("large", 1000) as reader:
        while chunk := reader.read(256 * 1024):
            assert len(chunk) <= 256 * 1024
            digest.update(chunk)
            pieces += 1
    assert digest.hexdigest() == hashlib.sha256(payload[1000:]).hexdigest()
    assert pieces >= 12


def test_a_reader_can_be_closed_before_the_end(any_store: Store) -> None:
    any_store.put_bytes("large", os.urandom(2 * 1024 * 1024))
    reader = any_store.open("large")
    assert len(reader.read(10)) == 10
    reader.close()
    assert reader.closed


@pytest.mark.parametrize(("start", "end"), [(-1, None), (5, 3)])
def test_open_refuses_invalid_ranges(any_store: Store, start: int, end: int | None) -> None:
    any_store.put_bytes("digits", DATA)
    with pytest.raises(ValueError, match="invalid byte range"):
        any_store.open("digits", start, end)


Operation = Callable[[Store, str, Path], object]
READERS: dict[str, Operation] = {
    "size": lambda s, k, tmp: s.size(k),
    "get_bytes": lambda s, k, tmp: s.get_bytes(k),
    "open": lambda s, k, tmp: s.open(k),
    "open_range": lambda s, k, tmp: s.open(k, 2, 5),
    "open_from": lambda s, k, tmp: s.open(k, 2),
    "open_empty_range": lambda s, k, tmp: s.open(k, 3, 3),
    "download": lambda s, k, tmp: s.download(k, tmp / "out"),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_missing_key_is_object_not_found(any_store: Store, tmp_path: Path, reader: str) -> None:
    any_store.put_bytes("present/x", DATA)  # the bucket or directory itself exists
    with pytest.raises(ObjectNotFound) as caught:
        READERS[reader](any_store, "present/missing", tmp_path)
    assert caught.value.args[0] == "present/missing"
    assert str(caught.value) == "object not found: present/missing"
    assert not (tmp_path / "out").exists()


def test_a_directory_of_keys_is_not_an_object(any_store: Store, tmp_path: Path) -> None:
    any_store.put_bytes("dir/child", DATA)
    assert not any_store.exists("dir")
    for reader in READERS.values():
        with pytest.raises(ObjectNotFound):
            reader(any_store, "dir", tmp_path)


def test_stat_gives_size_and_a_version_that_changes_with_a_rewrite(any_store: Store) -> None:
    any_store.put_bytes("blobs/sha256/abc", DATA)
    first = any_store.stat("blobs/sha256/abc")
    assert first.size == len(DATA)
    assert first.modified > 0
    assert any_store.stat("blobs/sha256/abc") == first
    any_store.put_bytes("blobs/sha256/abc", DATA[::-1])
    second = any_store.stat("blobs/sha256/abc")
    assert second.size == len(DATA)
    assert second.version != first.version
    with pytest.raises(ObjectNotFound):
        any_store.stat("blobs/sha256/missing")


def test_put_new_creates_once_and_never_overwrites(any_store: Store) -> None:
    assert any_store.put_new("claims/a", b"first") is True
    assert any_store.put_new("claims/a", b"second") is False
    assert any_store.get_bytes("claims/a") == b"first"


def test_put_new_lets_exactly_one_of_racing_writers_win(any_store: Store) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(lambda n: any_store.put_new("claims/race", b"%d" % n), range(8)))
    assert won.count(True) == 1
    assert any_store.get_bytes("claims/race") == b"%d" % won.index(True)


def test_exists_is_false_for_a_missing_key(any_store: Store) -> None:
    assert not any_store.exists("never/written")


def test_delete_removes_and_tolerates_missing(any_store: Store) -> None:
    any_store.put_bytes("a/b", DATA)
    any_store.delete("a/b")
    assert not any_store.exists("a/b")
    assert list(any_store.list("a")) == []
    any_store.delete("a/b")  # deleting again is not an error
    any_store.delete("never/written")


def test_list_gives_keys_under_a_prefix_sorted(any_store: Store) -> None:
    for key in ["b", "a/2", "ab/4", "a/b/3", "a/1", "a-c"]:
        any_store.put_bytes(key, key.encode())
    assert list(any_store.list("")) == ["a-c", "a/1", "a/2", "a/b/3", "ab/4", "b"]
    assert list(any_store.list("a")) == ["a/1", "a/2", "a/b/3"]
    assert list(any_store.list("a/")) == ["a/1", "a/2", "a/b/3"]
    assert list(any_store.list("a/b")) == ["a/b/3"]
    assert list(any_store.list("a/1")) == ["a/1"]
    assert list(any_store.list("nothing")) == []


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "", "a/../b", "a/./b", "a b", "x/", "é"])
def test_invalid_keys_are_refused_by_every_operation(
    any_store: Store, tmp_path: Path, key: str
) -> None:
    src = tmp_path / "src"
    src.write_bytes(DATA)
    writers: list[Operation] = [
        lambda s, k, tmp: s.exists(k),
        lambda s, k, tmp: s.put_bytes(k, DATA),
        lambda s, k, tmp: s.put_file(k, src),
        lambda s, k, tmp: s.delete(k),
        lambda s, k, tmp: s.url_for(k, None, 60),
    ]
    for operation in [*READERS.values(), *writers]:
        with pytest.raises(ValueError, match="invalid store key"):
            operation(any_store, key, tmp_path)


@pytest.mark.parametrize("prefix", ["../", "/abs", "a//", "a/../b"])
def test_invalid_list_prefixes_are_refused(any_store: Store, prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid store key"):
        list(any_store.list(prefix))


def test_a_failed_put_file_leaves_nothing(any_store: Store, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        any_store.put_file("k", tmp_path / "does-not-exist")
    assert not any_store.exists("k")
    assert list(any_store.list("")) == []


def test_ping_answers(any_store: Store) -> None:
    any_store.ping()


@pytest.mark.parametrize("filename", ['a"b', "../x", "a b", "", "..", "a/b", "x\r\ny"])
def test_url_for_refuses_unsafe_download_names(any_store: Store, filename: str) -> None:
    with pytest.raises(ValueError, match="invalid download file name"):
        any_store.url_for("k", filename, 60)


# --- the local directory --------------------------------------------------------------------


def test_local_store_has_no_urls(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes("k", DATA)
    assert store.url_for("k", "k.bin", 60) is None
    assert store.url_for("k", None, 60) is None


def test_local_failed_write_keeps_the_old_object_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes("k", b"old")
    src = tmp_path / "src"
    src.write_bytes(b"new and longer")

    def copy_half_then_fail(source: Path, dest: Path) -> None:
        Path(dest).write_bytes(Path(source).read_bytes()[:3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("workers.store.local.copy_sparse", copy_half_then_fail)
    with pytest.raises(InsufficientStorage, match="the store is full"):
        store.put_file("k", src)
    with pytest.raises(InsufficientStorage, match="the store is full"):
        store.put_file("new/key", src)
    assert store.get_bytes("k") == b"old"
    assert not store.exists("new/key")
    assert list(store.list("")) == ["k"]
    assert list((tmp_path / "store" / ".tmp").iterdir()) == []


def test_make_store_picks_the_local_directory_by_default(tmp_path: Path) -> None:
    store = make_store(choose_backend(Settings(data_dir=tmp_path)))
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "store"


# --- S3 -------------------------------------------------------------------------------------


@pytest.mark.integration
def test_make_store_picks_s3_when_an_endpoint_is_set(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = _bucket()
    store = make_store(choose_backend(s3_server.settings(tmp_path, bucket)))
    assert isinstance(store, S3Store)
    store.put_bytes("k", DATA)
    assert _s3_client(s3_server).get_object(Bucket=bucket, Key="k")["Body"].read() == DATA


@pytest.mark.integration
def test_s3_bucket_is_created_when_missing(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = _bucket()
    client = _s3_client(s3_server)
    with pytest.raises(ClientError):
        client.head_bucket(Bucket=bucket)
    store = _s3_store(s3_server, tmp_path, bucket)
    store.ping()
    client.head_bucket(Bucket=bucket)
    # A second store on the same, now existing, bucket sees the first one's objects.
    store.put_bytes("k", DATA)
    assert _s3_store(s3_server, tmp_path, bucket).get_bytes("k") == DATA


@pytest.mark.integration
def test_s3_stores_the_content_type(s3_server: S3Server, s3_store: S3Store, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(DATA)
    s3_store.put_bytes("a.yaml", DATA, "application/yaml")
    s3_store.put_file("b.iso", src, "application/x-iso9660-image")
    client = _s3_client(s3_server)
    assert client.head_object(Bucket=s3_store.bucket, Key="a.yaml")["ContentType"] == (
        "application/yaml"
    )
    assert client.head_object(Bucket=s3_store.bucket, Key="b.iso")["ContentType"] == (
        "application/x-iso9660-image"
    )


@pytest.mark.integration
def test_s3_put_file_uploads_big_files_in_parts(s3_server: S3Server, tmp_path: Path) -> None:
    part = 5 * 1024 * 1024  # the smallest part S3 accepts
    store = _s3_store(s3_server, tmp_path, _bucket(), multipart_threshold=part)
    payload = os.urandom(2 * part + 1234)
    src = tmp_path / "big"
    src.write_bytes(payload)
    store.put_file("big", src)
    etag = _s3_client(s3_server).head_object(Bucket=store.bucket, Key="big")["ETag"]
    assert etag.strip('"').endswith("-3"), f"not a 3-part upload: ETag {etag}"
    dest = tmp_path / "back"
    store.download("big", dest)
    assert dest.read_bytes() == payload


@pytest.mark.integration
def test_s3_list_follows_every_page(s3_server: S3Server, tmp_path: Path) -> None:
    store = _s3_store(s3_server, tmp_path, _bucket(), list_page_size=2)
    keys = [f"builds/{i:02d}/manifest.json" for i in range(7)]
    for key in keys:
        store.put_bytes(key, b"{}")
    store.put_bytes("other", b"")
    assert list(store.list("builds")) == keys


@pytest.mark.integration
def test_s3_url_for_gives_a_presigned_download(s3_store: S3Store) -> None:
    s3_store.put_bytes("blobs/sha256/abc", DATA)
    url = s3_store.url_for("blobs/sha256/abc", "metal-amd64.iso", 300)
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == DATA
        assert response.headers["Content-Disposition"] == ('attachment; filename="metal-amd64.iso"')
    plain = s3_store.url_for("blobs/sha256/abc", None, 300)
    assert plain is not None
    with urllib.request.urlopen(plain, timeout=10) as response:
        assert response.read() == DATA
        assert response.headers["Content-Disposition"] is None


@pytest.mark.integration
def test_s3_url_for_carries_a_given_disposition(s3_store: S3Store) -> None:
    s3_store.put_bytes("blobs/sha256/abc", DATA)
    disposition = "attachment; filename=\"caf_.iso\"; filename*=UTF-8''caf%C3%A9.iso"
    url = s3_store.url_for("blobs/sha256/abc", None, 300, disposition=disposition)
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == DATA
        assert response.headers["Content-Disposition"] == disposition


@pytest.mark.integration
def test_s3_wrong_credentials_are_unavailable_not_missing(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = S3Store(s3_server.endpoint, _bucket(), "nobody", "wrong", s3_server.region)
    with pytest.raises(StoreUnavailable, match="403"):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.get_bytes("k")


@pytest.fixture
def unreachable_s3(tmp_path: Path) -> S3Store:
    """An S3 store pointing at a port nothing listens on."""
    closed = free_ports(1)[0]
    return S3Store(f"http://127.0.0.1:{closed}", "bucket", "key", "secret")


UNREACHABLE_OPERATIONS: dict[str, Callable[[S3Store, Path], object]] = {
    "ping": lambda s, tmp: s.ping(),
    "exists": lambda s, tmp: s.exists("k"),
    "size": lambda s, tmp: s.size("k"),
    "get_bytes": lambda s, tmp: s.get_bytes("k"),
    "open": lambda s, tmp: s.open("k", 1, 5),
    "download": lambda s, tmp: s.download("k", tmp / "out"),
    "put_bytes": lambda s, tmp: s.put_bytes("k", DATA),
    "put_file": lambda s, tmp: s.put_file("k", Path(__file__)),
    "delete": lambda s, tmp: s.delete("k"),
    "list": lambda s, tmp: list(s.list("")),
}


@pytest.mark.parametrize("operation", sorted(UNREACHABLE_OPERATIONS))
def test_s3_endpoint_down_is_store_unavailable(
    unreachable_s3: S3Store, tmp_path: Path, operation: str
) -> None:
    with pytest.raises(StoreUnavailable, match="unreachable"):
        UNREACHABLE_OPERATIONS[operation](unreachable_s3, tmp_path)


def test_s3_url_for_needs_no_connection(unreachable_s3: S3Store) -> None:
    url = unreachable_s3.url_for("a/b", "x.raw.xz", 60)
    assert url is not None
    assert url.startswith(f"{unreachable_s3.endpoint}/bucket/a/b?")
    assert "response-content-disposition=attachment" in url
    assert "X-Amz-Signature=" in url


class _DroppingBody:
    """A response body whose connection drops after the first read."""

    def __init__(self) -> None:
        self.reads = 0
        self.closed = False

    def read(self, amount: int) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise ReadTimeoutError(endpoint_url="http://s3.invalid")
        return b"x" * min(amount, 4)

    def close(self) -> None:
        self.closed = True


def test_s3_connection_lost_mid_read_is_store_unavailable() -> None:
    body = _DroppingBody()
    reader = _BodyReader(body, "s3://bucket/k")
    assert reader.read(4) == b"xxxx"
    with pytest.raises(StoreUnavailable, match=r"s3://bucket/k"):
        reader.read(4)
    reader.close()
    assert body.closed


def _stubbed_store() -> tuple[S3Store, Stubber]:
    store = S3Store(endpoint="http://127.0.0.1:9", bucket="stubbed", access_key="a", secret_key="b")
    store._bucket_ready = True  # no bucket round trip: only the write is under test
    return store, Stubber(store._client)


def test_s3_write_retries_a_transient_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "_WRITE_BACKOFF", 0)
    store, stub = _stubbed_store()
    for _ in range(2):
        stub.add_client_error("put_object", "InternalError", http_status_code=500)
    stub.add_response("put_object", {})
    with stub:
        store.put_bytes("k", b"data")
    stub.assert_no_pending_responses()


def test_s3_write_does_not_retry_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "_WRITE_BACKOFF", 0)
    store, stub = _stubbed_store()
    stub.add_client_error("put_object", "AccessDenied", http_status_code=403)
    with stub, pytest.raises(StoreUnavailable, match="AccessDenied"):
        store.put_bytes("k", b"data")


def test_local_files_and_directories_are_not_world_readable(tmp_path: Path) -> None:
    usual = os.umask(0o022)  # the usual default, which would leave them readable by everyone
    try:
        store = LocalStore(tmp_path / "store")
        store.put_bytes("blobs/sha256/abc", b"secret-ish")
        source = tmp_path / "src"
        source.write_bytes(b"x")
        store.put_file("builds/k/manifest.json", source)
    finally:
        os.umask(usual)
    for key in ("blobs/sha256/abc", "builds/k/manifest.json"):
        assert stat.S_IMODE(store.path(key).stat().st_mode) == 0o640
    for directory in ("", ".tmp", "blobs", "blobs/sha256", "builds", "builds/k"):
        assert stat.S_IMODE((store.root / directory).stat().st_mode) == 0o750, directory
