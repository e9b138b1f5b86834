"""The extensions catalog as web pages, for people choosing what to put in an image.

- `GET /catalog?version=&arch=&q=`: every extension a release offers, with its description,
  author, version, digest, origin and size; `q` keeps those whose name or description holds
  every word (the page's script filters as you type; the form works without it).
- `GET /catalog/<digest>`: one extension and the files it installs, read from its stored tar
  (at most `MAX_LISTED_FILES` of them: the page is for reading, the tar is for machines).
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from flask import Blueprint, Response, request

from factory.engine import engine
from factory.i18n import _
from factory.page_headers import catalog_page, security_headers
from factory.releases_view import Releases
from workers.catalog import ExtensionRecord
from workers.catalog.records import EXTENSIONS_PREFIX, record_from_json
from workers.releases.versions import ARCHES, version_key
from workers.store import ObjectNotFound

bp = Blueprint("extension_pages", __name__)
bp.after_request(security_headers)
MAX_LISTED_FILES = 500
ROOTFS = "rootfs/"


def matches(record: ExtensionRecord, query: str) -> bool:
    text = f"{record.full_name} {record.description}".lower()
    return all(word in text for word in query.lower().split())


@bp.get("/catalog")
def catalog() -> Response:
    releases = Releases()
    versions = sorted(releases.versions, key=version_key, reverse=True)
    stable = [v for v in versions if "-" not in v]
    version = request.args.get("version") or (stable or versions or [""])[0]
    arch = request.args.get("arch", "amd64")
    query = request.args.get("q", "").strip()
    if version not in versions or arch not in ARCHES:
        message = _(
            "Release %(version)s (%(arch)s) is not available here.", version=version, arch=arch
        )
        return catalog_page(
            "catalog.html",
            404,
            versions=versions,
            version=version,
            arch=arch,
            query=query,
            extensions=[],
            error=message,
        )
    offered = releases.extensions(version, arch) if releases.has_arch(version, arch) else []
    shown = [record for record in offered if matches(record, query)]
    return catalog_page(
        "catalog.html",
        200,
        versions=versions,
        version=version,
        arch=arch,
        query=query,
        extensions=shown,
        total=len(offered),
        error="",
    )


@dataclass(frozen=True)
class InstalledFile:
    path: str
    size: int
    link: str  # the target of a symbolic link, "" for a file


@bp.get("/catalog/<digest>")
def extension(digest: str) -> Response:
    store = engine().store
    record = _load_record(digest)
    if record is None:
        return catalog_page(
            "message.html",
            404,
            title=_("Extension not found"),
            message=_("There is no extension with digest %(digest)s here.", digest=digest[:64]),
        )
    files, more = _installed_files(store.open(record.tar_key))
    return catalog_page(
        "catalog_extension.html",
        200,
        title=record.full_name,
        record=record,
        files=files,
        more=more,
    )


def _load_record(digest: str) -> ExtensionRecord | None:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return None
    try:
        data = engine().store.get_bytes(f"{EXTENSIONS_PREFIX}{digest}.json")
    except ObjectNotFound:
        return None
    return record_from_json(ExtensionRecord, data)


def _installed_files(stream: BinaryIO) -> tuple[list[InstalledFile], bool]:
    """The rootfs entries of a canonical extension tar, read as a stream; whether there are
    more than listed."""
    files: list[InstalledFile] = []
    with stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if not member.name.startswith(ROOTFS) or member.isdir():
                continue
            if len(files) == MAX_LISTED_FILES:
                return files, True
            link = member.linkname if member.issym() else ""
            files.append(InstalledFile("/" + member.name[len(ROOTFS) :], member.size, link))
    return files, False
