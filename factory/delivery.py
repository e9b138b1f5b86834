"""How a stored asset leaves the factory: names, checksums, redirects and byte streams.

- `download_name(?filename=, default)`: the user's file name, cleaned: no control or format
  characters, no `/ \\ " ;`, no dots or spaces at either end, at most 255 bytes; a name
  that cleans to nothing is a 400. `content_disposition` quotes it for `Content-Disposition`,
  with an ASCII fallback and an RFC 5987 `filename*` for anything else, so no value can
  inject a header.
- `stream_asset`: ETag (`"<sha256>"`), Last-Modified, `Accept-Ranges: bytes`, `Range` and
  `If-Range` (206, 416), `If-None-Match` and `If-Modified-Since` (304). A whole body is
  hashed while it streams and its last chunk held back until the digest is known: bytes
  that no longer match the build's sha256 end the connection before the last chunk (and
  `accept` has the build discarded), so a client never gets a complete wrong file. A local
  blob whose file still shows the stamp it had when a whole hash of it matched (the first
  check or a hashed download) goes out as a file instead (gunicorn `sendfile`s it,
  zero-copy; the stamp is checked again before the last chunk: `factory.verified_stamps`).
  Ranges of a local blob go out as a file (the caller has checked the whole blob recently);
  S3 blobs as a stream opened before the headers are sent (an unreachable store is a 503,
  not a broken 200), which ends the connection early if S3 fails midway, so the client
  sees fewer bytes than `Content-Length` promised.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast
from urllib.parse import quote

from flask import Request, Response
from werkzeug.datastructures import Range
from werkzeug.http import parse_date, parse_if_range_header, parse_range_header
from werkzeug.wsgi import wrap_file

from factory.engine import engine
from factory.file_views import FileView
from factory.request_metrics import count_with_request
from factory.verified_stamps import GuardedFile
from workers.errors import InvalidRequest
from workers.keys.signing import BUNDLE_MEDIA_TYPE
from workers.outputs.file_stamps import OpenedBlob
from workers.outputs.finished_builds import BuiltAsset
from workers.store import ObjectNotFound, Store, StoreUnavailable

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_NAME_BYTES = 255
TEXT = "text/plain; charset=utf-8"
_UNSAFE = set('/\\";')
_EMPTY_SUFFIX = re.compile(r"^\s*bytes\s*=\s*-0+\s*$", re.I)
# In the plain `filename="…"` parameter: printable ASCII that needs no escaping anywhere.
_PLAIN = set(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 !#$&'()*+,-.:=@[]^_`{}~"
)


def download_name(requested: str | None, default: str) -> str:
    """The name a download is saved as: `requested` cleaned, or `default`."""
    if requested is None:
        return default
    kept = []
    for char in unicodedata.normalize("NFC", requested):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            continue
        kept.append("_" if char in _UNSAFE else char)
    # No hidden files, no `.`/`..`, no names Windows would mangle: dots and spaces go from
    # both ends.
    name = "".join(kept).strip(" .")
    name = name.encode()[:MAX_NAME_BYTES].decode("utf-8", "ignore").strip(" .")
    if not name:
        raise InvalidRequest(f"invalid filename {requested!r}: nothing usable is left")
    return name


def content_disposition(filename: str) -> str:
    """`attachment` naming `filename` (already cleaned by `download_name`)."""
    if all(char in _PLAIN for char in filename):
        return f'attachment; filename="{filename}"'
    fallback = "".join(char if char in _PLAIN else "_" for char in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def checksum_response(built: BuiltAsset, algorithm: str, filename: str) -> Response:
    """`<hex>  <filename>` for `sha256sum -c` / `sha512sum -c`."""
    digest = built.sha256 if algorithm == "sha256" else built.sha512
    response = Response(f"{digest}  {filename}\n".encode(), status=200, content_type=TEXT)
    response.headers["Content-Disposition"] = content_disposition(f"{filename}.{algorithm}")
    return response


def bundle_response(bundle: bytes, filename: str) -> Response:
    response = Response(bundle, status=200, content_type=BUNDLE_MEDIA_TYPE)
    response.headers["Content-Disposition"] = content_disposition(f"{filename}.sigstore.json")
    return response


def redirect_response(url: str) -> Response:
    response = Response("", status=302)
    response.headers["Location"] = url
    # A presigned URL expires: caches must not keep the redirect.
    response.headers["Cache-Control"] = "no-store"
    return response


@functools.lru_cache(maxsize=1024)
def _http_date(modified: int) -> str:
    """`Last-Modified` of a build made at `modified`: the same few values every request."""
    return formatdate(modified, usegmt=True)


def _etag(built: BuiltAsset) -> str:
    return f'"{built.sha256}"'


def _not_modified(request: Request, built: BuiltAsset, modified: int) -> bool:
    if "If-None-Match" in request.headers:
        tags = request.if_none_match
        return tags.star_tag or tags.contains_weak(built.sha256)
    since = parse_date(request.headers.get("If-Modified-Since"))
    return since is not None and int(since.timestamp()) >= modified


def _wanted_range(request: Request, built: BuiltAsset, modified: int) -> Range | None:
    """The Range to honour, or None for the whole body (no header, several ranges, an
    If-Range that no longer matches, or a malformed header)."""
    header = request.headers.get("Range")
    if not header:
        return None
    if_range = request.headers.get("If-Range")
    if if_range:
        condition = parse_if_range_header(if_range)
        if condition.etag is not None:
            if condition.etag != built.sha256 or if_range.startswith("W/"):
                return None
        elif condition.date is None or int(condition.date.timestamp()) != modified:
            return None
    if _EMPTY_SUFFIX.match(header):
        # `bytes=-0`: valid syntax asking for no bytes (werkzeug calls it malformed), so
        # unsatisfiable (RFC 9110 §14.1.2): a range from the end, which makes it a 416.
        return Range("bytes", [(built.size, None)])
    wanted = parse_range_header(header)
    if wanted is None or wanted.units != "bytes" or len(wanted.ranges) != 1:
        return None
    return wanted


def _byte_span(wanted: Range, size: int) -> tuple[int, int] | None:
    """[start, stop) of a single-range request, None when it cannot be satisfied."""
    start, stop = wanted.ranges[0]
    if start < 0:  # a suffix: the last -start bytes (all of them when there are fewer)
        start = max(0, size + start)
        stop = size
    else:
        stop = size if stop is None else min(stop, size)
    if size == 0 or start >= size or start >= stop:
        return None
    return start, stop


def stream_asset(
    request: Request,
    store: Store,
    built: BuiltAsset,
    filename: str,
    modified: int,
    accept: Callable[[str], bool],
) -> Response:
    """The asset itself (or a range of it), honouring conditional requests. `accept` gets
    the sha256 of a whole body streamed, before its last chunk goes out; False cuts it."""
    headers = {
        "ETag": _etag(built),
        "Last-Modified": _http_date(modified),
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(filename),
    }
    if _not_modified(request, built, modified):
        return Response(status=304, headers=headers)
    status, start, stop = 200, 0, built.size
    wanted = _wanted_range(request, built, modified)
    if wanted is not None:
        span = _byte_span(wanted, built.size)
        if span is None:
            headers["Content-Range"] = f"bytes */{built.size}"
            return Response(b"", status=416, headers=headers, content_type=TEXT)
        start, stop = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{built.size}"
    headers["Content-Length"] = str(stop - start)
    if request.method == "HEAD":
        body: Iterable[bytes] = []
    elif status == 200:
        body = _whole_body(request.environ, store, built, accept)
    elif (local := store.local_path(built.blob)) is not None:
        # A real file: the WSGI server's file wrapper (gunicorn: sendfile from this offset,
        # Content-Length bytes); the slice also stops at `stop` when iterated instead.
        piece = io.BufferedReader(_FileSlice(local, start, stop), CHUNK)
        body = wrap_file(request.environ, piece, CHUNK)
    else:
        reader = store.open(built.blob, start, stop)  # fails here, before any header is sent
        body = _exactly(reader, stop - start, built.blob)
    response = Response(
        body, status=status, headers=headers, content_type=built.content_type,
        direct_passthrough=True,
    )  # fmt: skip
    return response


def _whole_body(
    environ: WSGIEnvironment, store: Store, built: BuiltAsset, accept: Callable[[str], bool]
) -> Iterable[bytes]:
    """The whole blob (opened here: a missing one fails before any header is sent). A local
    file whose stamp was verified with this sha256 (the web process's `BlobVerifier.stamps`)
    goes out as a file (`sendfile`; checked again before its last chunk); anything else is
    hashed as it streams, and a local file that matched has its stamp remembered
    (`factory.verified_stamps`)."""
    local = store.local_path(built.blob)
    if local is None:
        reader = store.open(built.blob)
        count_with_request("image_factory_whole_bodies_total", check="hashed")
        return _verified(_exactly(reader, built.size, built.blob), built.blob, accept)
    try:
        opened = OpenedBlob.open(local)
    except FileNotFoundError:
        raise ObjectNotFound(built.blob) from None
    stamps = engine().verifier.stamps
    if opened.stamp.size == built.size and stamps.vouches(opened.stamp, built.sha256):
        count_with_request("image_factory_whole_bodies_total", check="stamp")
        # Unbuffered, so the WSGI server's sendfile sees the GuardedFile itself.
        return wrap_file(environ, cast("BinaryIO", GuardedFile(opened)), CHUNK)
    count_with_request("image_factory_whole_bodies_total", check="hashed")

    def accept_and_remember(sha256: str) -> bool:
        if not accept(sha256):
            return False
        opened.remember_if_matched(stamps, sha256)
        return True

    chunks = _exactly(opened.file, built.size, built.blob)
    return _verified(chunks, built.blob, accept_and_remember)


class _FileSlice(FileView):
    """Bytes [start, stop) of a file. `fileno`, `seek` and `tell` are the file's own, so a
    WSGI server can `sendfile` from the current position; reads stop at `stop`."""

    def __init__(self, path: Path, start: int, stop: int) -> None:
        try:
            self._file = path.open("rb")
        except FileNotFoundError:
            raise ObjectNotFound(str(path)) from None
        self._file.seek(start)
        self._stop = stop

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._stop - self._file.tell())
        if want <= 0:
            return 0
        data = self._file.read(want)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()


class ShortRead(StoreUnavailable):
    """The store ended an object early."""


class CorruptBlob(Exception):
    """Streamed bytes did not match the build's digest."""


def _verified(
    chunks: Iterable[bytes], where: str, accept: Callable[[str], bool]
) -> Iterator[bytes]:
    """`chunks` (a whole blob), hashed as they pass; the last one is held back until the
    sha256 is known and never sent unless `accept` takes it: a mismatch cuts the body short."""
    digest = hashlib.sha256()
    held = b""
    for chunk in chunks:
        digest.update(chunk)
        if held:
            yield held
        held = chunk
    if not accept(digest.hexdigest()):
        log.error("%s: streamed bytes do not match the build's sha256: connection cut", where)
        raise CorruptBlob(f"{where} does not match its sha256")
    if held:
        yield held


def _exactly(reader: BinaryIO, length: int, where: str) -> Iterator[bytes]:
    """Yield exactly `length` bytes from `reader`, or raise: an interrupted store read must
    cut the response short (the client sees the broken length), never end it quietly."""
    sent = 0
    try:
        while sent < length:
            try:
                chunk = reader.read(min(CHUNK, length - sent))
            except StoreUnavailable:
                log.error("store failed after %d of %d bytes of %s", sent, length, where)
                raise
            if not chunk:
                log.error("store ended %s after %d of %d bytes", where, sent, length)
                raise ShortRead(f"{where} ended after {sent} of {length} bytes")
            sent += len(chunk)
            yield chunk
    finally:
        reader.close()
