"""A cold download that starts at once: the bytes known before the build, then the rest.

A plain `GET` of an asset not built yet, whose first bytes are known
(`workers.outputs.known_prefix`: the kernel whole, an initramfs without microcode up to the
end of its base), is enqueued (or joined) exactly as a waiting request would be, then
answered `200` at once with those bytes, read from the release's blob in the store. When
the build is published, the rest comes from the built blob, from where the known bytes end.

Exactness: the whole body is hashed as it goes and its last byte held back; it goes out
only if the body has the size and sha256 the build manifest records. A build that fails or
does not end within `IMAGE_FACTORY_BUILD_WAIT`, a store read that fails, or a body that
does not match ends the connection without a clean end (short of its `Content-Length`, or
a chunked body without its last chunk): a client never gets a complete-looking wrong body.
Headers are only those known before the build: `Content-Length` when the known bytes are
the whole asset (else chunked), no `ETag`, `Last-Modified` or ranges.

Everything else (HEAD, ranges, conditional requests, `Prefer: respond-async`, assets with
nothing known, `IMAGE_FACTORY_STREAM_COLD` off) waits for the build as before.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from typing import BinaryIO

from flask import Request, Response

from factory.clients import client_identity
from factory.delivery import _exactly, content_disposition
from workers.dispatch.build_queue import DONE
from workers.dispatch.build_request import BuildRequest
from workers.engine import Engine
from workers.outputs.finished_builds import BuiltAsset
from workers.outputs.known_prefix import KnownPrefix, known_prefix
from workers.planning.asset_kinds import content_type_for
from workers.planning.plans import Plan
from workers.store import ObjectNotFound

log = logging.getLogger(__name__)

# Headers that ask for something only a finished build can answer.
_NEEDS_BUILT = ("Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match")


class ColdStreamCut(Exception):
    """The streamed body cannot be finished as the published build: the connection is cut."""


def may_stream_cold(eng: Engine, request: Request) -> bool:
    """Whether this request could be answered before its build ends."""
    return (
        eng.settings.stream_cold
        and request.method == "GET"
        and not any(name in request.headers for name in _NEEDS_BUILT)
    )


def stream_cold(
    eng: Engine,
    plan: Plan,
    job: BuildRequest,
    filename: str,
    downloaded: Callable[[], None],
) -> Response | None:
    """Submit the build and answer with what is known of it, or None when nothing is known
    or it is built already (the caller then waits and serves as before). `downloaded` is
    called once the whole body has been checked."""
    known = known_prefix(eng.store, plan)
    if known is None:
        return None
    try:
        reader = eng.store.open(known.blob)  # an unreachable store fails here, before headers
    except ObjectNotFound:
        return None  # the build fails on it too: the caller says so
    try:
        plan.refuse_if_withdrawn()
        status = eng.queue.submit(job, client_identity())
    except BaseException:
        reader.close()
        raise
    if status.state == DONE:
        reader.close()
        return None
    headers = {"Content-Disposition": content_disposition(filename)}
    if known.whole:
        headers["Content-Length"] = str(known.size)
    response = Response(
        _body(eng, job, known, reader, downloaded),
        status=200,
        headers=headers,
        content_type=content_type_for(plan.profile.path),
        direct_passthrough=True,
    )
    response.call_on_close(reader.close)
    return response


def _body(
    eng: Engine,
    job: BuildRequest,
    known: KnownPrefix,
    reader: BinaryIO,
    downloaded: Callable[[], None],
) -> Iterator[bytes]:
    """The known bytes, then (once published) the rest of the built blob; the very last
    byte only after the whole body matched the build's size and sha256 (one byte is enough
    to leave a body incomplete, and all the others can go while the build runs)."""
    digest = hashlib.sha256()
    held = b""

    def hashed(chunks: Iterator[bytes]) -> Iterator[bytes]:
        nonlocal held
        for chunk in chunks:
            digest.update(chunk)
            out, held = held + chunk[:-1], chunk[-1:]
            if out:
                yield out

    yield from hashed(_exactly(reader, known.size, known.blob))
    built = _published(eng, job)
    if built.size < known.size or (known.whole and built.size != known.size):
        log.error(
            "cold download of %s: %d bytes sent ahead, the published build has %d: "
            "connection cut",
            job.path, known.size, built.size,
        )  # fmt: skip
        raise ColdStreamCut(f"{job.path}: the build is not the size streamed")
    if built.size > known.size:
        rest = eng.store.open(built.blob, known.size, built.size)
        yield from hashed(_exactly(rest, built.size - known.size, built.blob))
    if digest.hexdigest() != built.sha256:
        log.error(
            "cold download of %s: the body sent (starting with %s) has sha256 %s, the "
            "published build %s: connection cut",
            job.path, known.blob, digest.hexdigest(), built.sha256,
        )  # fmt: skip
        raise ColdStreamCut(f"{job.path}: the streamed body does not match the build")
    downloaded()
    if held:
        yield held


def _published(eng: Engine, job: BuildRequest) -> BuiltAsset:
    """The build's manifest once published; ColdStreamCut when it failed or is still not
    there after `IMAGE_FACTORY_BUILD_WAIT`."""
    status = eng.queue.wait(job, eng.settings.build_wait)
    if status.state != DONE or status.built is None:
        reason = status.error or f"still {status.state}"
        log.error("cold download of %s: no build to finish it (%s): cut", job.path, reason)
        raise ColdStreamCut(f"{job.path}: the build did not finish ({reason})")
    return status.built
