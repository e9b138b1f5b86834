"""A store in an S3 bucket (any S3-compatible endpoint), through boto3.

Objects are whole S3 objects: a PUT (or a completed multipart upload) is atomic, so a reader
never sees half a write. Reads stream with ranged GETs. Connection failures and timeouts
become `StoreUnavailable` after a few quick retries, so an outage answers 503 fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
)

from workers.backends import S3Bucket
from workers.settings import Settings
from workers.store.base import (
    ObjectNotFound,
    ObjectStat,
    StoreUnavailable,
    attachment_disposition,
    under_prefix,
    validate_key,
    validate_prefix,
    validate_range,
)
from workers.store.presign import QuerySigner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Error codes S3 endpoints use for "no such object" (HEAD has no body, only the status).
_MISSING_CODES = {"NoSuchKey", "NotFound", "404"}
# A conditional create (If-None-Match: *) that found the key taken.
_EXISTS_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_TRANSIENT = {"InternalError", "SlowDown", "ServiceUnavailable", "500", "503"}
_WRITE_ATTEMPTS = 5
_WRITE_BACKOFF = 0.2  # seconds, doubled per attempt: at most 3 s of waiting in all
_NO_BUCKET_CODES = {"NoSuchBucket", "NotFound", "404"}
# Failures of the connection rather than of the request.
_UNREACHABLE = (ConnectionError, HTTPClientError, IncompleteReadError, NoCredentialsError)

MULTIPART_THRESHOLD = 64 * 1024 * 1024
READ_BUFFER = 1024 * 1024


def _client_config() -> Config:
    return Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"mode": "standard", "total_max_attempts": 2},
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        # Newer botocore adds CRC checksums to every request by default; several
        # S3-compatible servers reject them, so only send them where S3 requires them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class _BodyReader(io.RawIOBase):
    """A raw reader over an S3 response body that reports dropped connections as
    `StoreUnavailable` instead of botocore's own exceptions."""

    def __init__(self, body: Any, where: str) -> None:
        self._body = body
        self._where = where

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data: bytes = self._body.read(len(buffer))
        except _UNREACHABLE as error:
            raise StoreUnavailable(f"S3 read of {self._where} failed: {error}") from error
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Store:
    """Objects in one bucket, created on first use when missing."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str = "",
        secret_key: str = "",
        region: str = "us-east-1",
        multipart_threshold: int = MULTIPART_THRESHOLD,
        list_page_size: int = 1000,
        public_url: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        # A private session: boto3's default one is not safe to share across threads.
        session = boto3.session.Session(
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region,
        )
        self._client: S3Client = session.client(
            "s3", endpoint_url=endpoint, config=_client_config()
        )
        # Presigned URLs are signed for the host clients reach S3 at (the host is part of
        # the signature, so the URL cannot be rewritten afterwards); presigning makes no
        # request, so this client never talks to that address itself.
        self._presigner: S3Client = (
            session.client("s3", endpoint_url=public_url, config=_client_config())
            if public_url
            else self._client
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_threshold,
            max_concurrency=4,
        )
        self._list_page_size = list_page_size
        # The same URLs as `self._presigner` makes, at a fraction of the CPU (when it can).
        self._signer = QuerySigner.for_endpoint(
            public_url or endpoint, region, access_key, secret_key
        )
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    @classmethod
    def in_bucket(cls, where: S3Bucket) -> S3Store:
        # S3Bucket's fields are this constructor's keyword arguments, by design.
        return cls(**dataclasses.asdict(where))

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        """The bucket the settings name (tools and tests that reach S3 directly)."""
        return cls.in_bucket(S3Bucket.from_settings(settings))

    @contextlib.contextmanager
    def _translated(self, action: str, key: str | None = None) -> Iterator[None]:
        """Map boto3's exceptions onto the store's: missing key, or backend unavailable."""
        where = f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"
        try:
            yield
        except ClientError as error:
            code = _error_code(error)
            if key is not None and code in _MISSING_CODES:
                raise ObjectNotFound(key) from None
            message = error.response.get("Error", {}).get("Message", "")
            raise StoreUnavailable(
                f"S3 {action} {where} failed: {code} {message}".rstrip()
            ) from error
        except S3UploadFailedError as error:
            raise StoreUnavailable(f"S3 {action} {where} failed: {error}") from error
        except _UNREACHABLE as error:
            raise StoreUnavailable(
                f"S3 endpoint {self.endpoint} unreachable ({action} {where}): {error}"
            ) from error

    def _ensure_bucket(self) -> None:
        """Create the bucket unless it exists; every other error is the backend's."""
        with self._translated("head bucket"):
            try:
                self._client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as error:
                if _error_code(error) not in _NO_BUCKET_CODES:
                    raise
            try:
                if self.region == "us-east-1":
                    self._client.create_bucket(Bucket=self.bucket)
                else:
                    self._client.create_bucket(
                        Bucket=self.bucket,
                        CreateBucketConfiguration={"LocationConstraint": self.region},  # type: ignore[typeddict-item]
                    )
            except ClientError as error:
                # Another process created it between our HEAD and our CREATE.
                if _error_code(error) != "BucketAlreadyOwnedByYou":
                    raise

    def _ready(self) -> None:
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if not self._bucket_ready:
                self._ensure_bucket()
                self._bucket_ready = True

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def size(self, key: str) -> int:
        validate_key(key)
        self._ready()
        with self._translated("head", key):
            return self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]

    def stat(self, key: str) -> ObjectStat:
        validate_key(key)
        self._ready()
        with self._translated("head", key):
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        return ObjectStat(
            head["ContentLength"], head.get("ETag", ""), head["LastModified"].timestamp()
        )

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as reader:
            return reader.read()

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        validate_key(key)
        validate_range(start, end)
        self._ready()
        if end == start:
            # HTTP ranges cannot be empty; only the object's existence matters.
            self.size(key)
            return io.BytesIO()
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            last = "" if end is None else str(end - 1)
            request["Range"] = f"bytes={start}-{last}"
        with self._translated("get", key):
            try:
                response = self._client.get_object(**request)
            except ClientError as error:
                if _error_code(error) != "InvalidRange":
                    raise
                # The range starts at or past the end: empty, like a file read there.
                self._client.head_object(Bucket=self.bucket, Key=key)
                return io.BytesIO()
        raw = _BodyReader(response["Body"], f"s3://{self.bucket}/{key}")
        return io.BufferedReader(raw, buffer_size=READ_BUFFER)

    def download(self, key: str, dest: Path) -> None:
        validate_key(key)
        self._ready()
        with self._translated("download", key):
            self._client.download_file(self.bucket, key, str(dest), Config=self._transfer)

    def _write(self, action: str, key: str, write: Callable[[], object]) -> None:
        """Run one idempotent write, retrying a server's transient 5xx answers with backoff.

        S3 asks clients to retry InternalError/SlowDown; SeaweedFS answers InternalError
        while it grows volumes for a bucket's first writes. Unreachable endpoints are not
        retried here, so an outage still answers in about a second.
        """
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with self._translated(action, key):
                    write()
                return
            except StoreUnavailable as error:
                transient = _is_transient(error.__cause__)
                if not transient or attempt == _WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(_WRITE_BACKOFF * 2**attempt)

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        validate_key(key)
        self._ready()
        self._write(
            "put",
            key,
            lambda: self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            ),
        )

    def put_new(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> bool:
        validate_key(key)
        self._ready()
        created = True

        def write() -> None:
            nonlocal created
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType=content_type,
                    IfNoneMatch="*",
                )
            except ClientError as error:
                if _error_code(error) not in _EXISTS_CODES:
                    raise
                created = False

        self._write("create", key, write)
        return created

    def adopt_file(
        self, key: str, src: Path, content_type: str = "application/octet-stream"
    ) -> None:
        """An upload: nothing to share with a bucket."""
        self.put_file(key, src, content_type)

    def put_file(self, key: str, src: Path, content_type: str = "application/octet-stream") -> None:
        """Upload `src`; files above the multipart threshold go up in parts, and the
        object appears only when the upload completes."""
        validate_key(key)
        self._ready()
        self._write(
            "upload",
            key,
            lambda: self._client.upload_file(
                str(src),
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=self._transfer,
            ),
        )

    def delete(self, key: str) -> None:
        validate_key(key)
        self._ready()
        with self._translated("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def list(self, prefix: str) -> Iterator[str]:
        validate_prefix(prefix)
        self._ready()
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=prefix.removesuffix("/"),
            PaginationConfig={"PageSize": self._list_page_size},
        )
        with self._translated("list", None):
            keys = [
                item["Key"]
                for page in pages
                for item in page.get("Contents", [])
                if under_prefix(item["Key"], prefix)
            ]
        # Not every S3-compatible server lists in byte order (SeaweedFS walks directories).
        return iter(sorted(keys))

    def local_path(self, key: str) -> Path | None:
        validate_key(key)
        return None

    def url_for(
        self, key: str, filename: str | None, ttl: int, disposition: str | None = None
    ) -> str | None:
        """A presigned GET URL, valid `ttl` seconds; with `filename` (or a ready-made
        `disposition`), S3 answers with that `Content-Disposition: attachment`."""
        validate_key(key)
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if disposition is not None:
            params["ResponseContentDisposition"] = disposition
        elif filename is not None:
            params["ResponseContentDisposition"] = attachment_disposition(filename)
        if self._signer is not None:
            return self._signer.url(self.bucket, key, ttl, params.get("ResponseContentDisposition"))
        url: str = self._presigner.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=ttl
        )
        return url

    def ping(self) -> None:
        self._ensure_bucket()
        self._bucket_ready = True


def _is_transient(error: BaseException | None) -> bool:
    """A 5xx the server asks to retry; upload_file reports it inside S3UploadFailedError."""
    if isinstance(error, ClientError):
        return _error_code(error) in _TRANSIENT
    if isinstance(error, S3UploadFailedError):
        return any(code in str(error) for code in _TRANSIENT if not code.isdigit())
    return False
