"""Presigned URLs signed here (`workers.store.presign`): byte for byte boto3's, and accepted
by a real S3 endpoint (SeaweedFS), which refuses them once changed."""

from __future__ import annotations

import datetime
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import auth as botocore_auth
from botocore.config import Config

from tests.services import S3Server
from workers.store.presign import QuerySigner
from workers.store.s3 import S3Store

ACCESS, SECRET = "AKIDEXAMPLE", "wJalr/XUtnFEMI+K7MDENG"
DISPOSITION = "attachment; filename=\"caf_ x.iso\"; filename*=UTF-8''caf%C3%A9%20x.iso"


def _boto3_url(
    endpoint: str, region: str, key: str, ttl: int, disposition: str | None, when: datetime.datetime
) -> str:
    client: Any = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        region_name=region,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    params = {"Bucket": "bench", "Key": key}
    if disposition is not None:
        params["ResponseContentDisposition"] = disposition
    with pytest.MonkeyPatch.context() as patch:
        # botocore's clock, so that both sign at the same moment.
        patch.setattr(
            botocore_auth, "get_current_datetime", lambda *a, **k: when.replace(tzinfo=None)
        )
        url: str = client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl)
    return url


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8333",
        "https://s3.example.com",
        "http://s3.example.com:80",  # a default port stays in the URL, not in the signature
        "https://s3.example.com:8443/",
    ],
)
@pytest.mark.parametrize(
    "disposition", [None, 'attachment; filename="metal-amd64.iso"', DISPOSITION]
)
def test_urls_are_boto3s_byte_for_byte(endpoint: str, disposition: str | None) -> None:
    signer = QuerySigner.for_endpoint(endpoint, "eu-west-3", ACCESS, SECRET)
    assert signer is not None
    # The signing key is kept per day: the same signer across midnight must follow the date.
    for when in (
        datetime.datetime(2026, 12, 7, 23, 59, 59, tzinfo=datetime.UTC),
        datetime.datetime(2026, 12, 8, 0, 0, 1, tzinfo=datetime.UTC),
    ):
        for key, ttl in (("blobs/sha256/ab_c-1.x", 3600), ("builds/k~y/a.b", 60)):
            expected = _boto3_url(endpoint, "eu-west-3", key, ttl, disposition, when)
            assert signer.url("bench", key, ttl, disposition, when) == expected


@pytest.mark.parametrize(
    ("endpoint", "access", "secret", "region"),
    [
        ("http://127.0.0.1:8333", "", "", "us-east-1"),  # boto3's credential chain decides
        ("http://127.0.0.1:8333", ACCESS, "", "us-east-1"),
        ("http://127.0.0.1:8333", ACCESS, SECRET, ""),
        ("https://s3.example.com/prefix", ACCESS, SECRET, "us-east-1"),  # a path of its own
        ("ftp://s3.example.com", ACCESS, SECRET, "us-east-1"),
    ],
)
def test_what_it_cannot_sign_exactly_is_left_to_boto3(
    endpoint: str, access: str, secret: str, region: str
) -> None:
    assert QuerySigner.for_endpoint(endpoint, region, access, secret) is None
    store = S3Store(endpoint, "bench", access, secret, region or "us-east-1")
    if not access or not secret:
        assert store._signer is None


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.integration
def test_seaweedfs_serves_the_url_and_refuses_it_changed(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = S3Store(
        s3_server.endpoint, f"presign-{uuid.uuid4().hex[:8]}", s3_server.access_key,
        s3_server.secret_key, s3_server.region,
    )  # fmt: skip
    assert store._signer is not None  # the URLs below are signed here, not by boto3
    store.put_bytes("blobs/sha256/one", b"first object\n")
    store.put_bytes("blobs/sha256/two", b"second object\n")
    url = store.url_for("blobs/sha256/one", None, 300, DISPOSITION)
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"first object\n"
        assert response.headers["Content-Disposition"] == DISPOSITION
    assert _status(url.replace("/one?", "/two?")) == 403  # another object
    assert _status(url.replace("X-Amz-Expires=300", "X-Amz-Expires=301")) == 403
    assert _status(url.replace("caf", "cab")) == 403  # another disposition
    signer = QuerySigner.for_endpoint(s3_server.endpoint, s3_server.region, "nobody", "wrong")
    assert signer is not None
    assert _status(signer.url(store.bucket, "blobs/sha256/one", 300)) == 403
