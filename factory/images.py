"""`GET|HEAD /image/<schematic>/<version>/<path>` (+ `.sha256`, `.sha512`, `.sigstore.json`,
`.spdx.json`, `.intoto.jsonl`)
and `GET /oci/cosign/signing-key.pub`.

As upstream (image-factory-api §2.3), better:
- a finished build is checked once per process against its digest (`BlobVerifier`; a
  mismatch is discarded and rebuilt, never served), then
  - with the S3 store: `302` to a presigned URL carrying the `Content-Disposition`
    (`IMAGE_FACTORY_S3_REDIRECT`; never for HEAD; never when the request's Host is the PXE
    URL's host, as upstream, because iPXE clients are better served directly);
  - otherwise streamed with ranges and conditional requests (`factory.delivery`); a whole
    body is hashed on the way and cut short on a mismatch (`_streamed` discards the build),
    a range only comes from a blob hashed whole in the last `RANGE_REHASH_SECONDS`;
- no finished build: it is enqueued (or joined: one build however many ask); a plain GET
  of a kernel or initramfs whose first bytes are known receives them at once
  (`factory.cold_stream`), others wait up to `IMAGE_FACTORY_BUILD_WAIT`;
  `Prefer: respond-async` gets `202` with `Location: /builds/<key>` at once; a full queue
  gets `503` + `Retry-After`;
- the suffixes answer from the build manifest: checksum lines for `sha256sum -c` and the
  Sigstore bundle signed when the build was published.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from flask import Blueprint, Request, Response, request

from factory.build_links import build_links
from factory.clients import client_identity
from factory.cold_stream import may_stream_cold, stream_cold
from factory.delivery import (
    bundle_response,
    checksum_response,
    content_disposition,
    download_name,
    redirect_response,
    stream_asset,
)
from factory.engine import engine
from factory.errors import text_error
from factory.evidence import PROVENANCE, SBOM, evidence_response
from factory.request_metrics import count_with_request
from factory.sidecars import signed_now, split_suffix
from workers.dispatch.build_queue import DONE, FAILED, BuildStatus
from workers.dispatch.build_request import BuildRequest
from workers.engine import Engine
from workers.errors import FactoryError
from workers.keys.signing import bundle_json
from workers.outputs.finished_builds import BuiltAsset, discard_build
from workers.planning.plans import Plan
from workers.planning.profiles import parse_profile
from workers.releases.versions import normalize_version

log = logging.getLogger(__name__)

bp = Blueprint("images", __name__)

PEM_TYPE = "application/x-pem-file"
RETRY_AFTER_BUILDING = "10"
# Redirects and checksum files may rely on a digest check this recent (no store round trip).
TRUST_SECONDS = 10.0
# A range is served from a blob hashed in full (by a check or a whole download) this recently.
RANGE_REHASH_SECONDS = 60.0


def prefers_async(req: Request) -> bool:
    """RFC 7240 `Prefer: respond-async`."""
    preferences = ",".join(req.headers.getlist("Prefer"))
    return any(p.split(";")[0].strip().lower() == "respond-async" for p in preferences.split(","))


def accepted(status: BuildStatus, download_url: str) -> Response:
    response = Response(
        json.dumps(build_links(status, download_url)) + "\n",
        status=202,
        mimetype="application/json",
    )
    response.headers["Location"] = f"/builds/{status.key}"
    response.headers["Retry-After"] = RETRY_AFTER_BUILDING
    return response


def build_then_find(eng: Engine, plan: Plan, job: BuildRequest) -> BuiltAsset | Response:
    """Enqueue or join the build of `plan` and wait for it (bounded); the finished build,
    or the response to send instead (202 when asked to, 503 when still building, 500 when
    the build failed)."""
    plan.refuse_if_withdrawn()
    status = eng.queue.submit(job, client_identity())
    if prefers_async(request):
        return accepted(status, job.download_url)
    if status.state != DONE:
        status = eng.queue.wait(job, eng.settings.build_wait)
    if status.state == FAILED:
        return text_error(f"building {job.path} failed: {status.error}", 500)
    built = eng.find_built(plan) if status.state == DONE else None
    if built is None:
        return text_error(
            f"{job.path} is still being built; follow /builds/{job.key} or try again shortly",
            503,
            {"Retry-After": RETRY_AFTER_BUILDING, "Location": f"/builds/{job.key}"},
        )
    return built


def _redirect_allowed(eng: Engine) -> bool:
    """GETs are redirected to S3, except from the PXE host when one is configured (booting
    firmware follows no redirect to another host); without IMAGE_FACTORY_PXE_URL there is
    no PXE host to tell apart, and every GET is redirected."""
    if not eng.settings.s3_redirect or request.method != "GET":
        return False
    if not eng.settings.pxe_url:
        return True
    return request.host.lower() != urlsplit(eng.settings.pxe_url).netloc.lower()


@bp.route("/image/<schematic_id>/<version>/<path>", methods=["GET", "HEAD"])
def image(schematic_id: str, version: str, path: str) -> Response:
    eng = engine()
    asset_path, wanted = split_suffix(path)
    eng.schematic(schematic_id)  # upstream's order: an unknown schematic before anything else
    version = normalize_version(version)
    profile = parse_profile(asset_path)
    # Looking up a missing key raises (and catches) werkzeug's BadRequestKeyError, which showed
    # in profiles of downloads: nearly every one comes without any query at all.
    filename = download_name(request.args.get("filename") if request.args else None, asset_path)
    plan = eng.plan(schematic_id, version, profile)
    kind = str(plan.kind)
    redirecting = not wanted and eng.backend.objects_in_s3 and _redirect_allowed(eng)
    # A range cannot be checked by hashing it: its blob must have been hashed whole lately.
    ranged = not wanted and not redirecting and "Range" in request.headers
    built = eng.find_built(
        plan,
        TRUST_SECONDS if redirecting or wanted else 0.0,
        RANGE_REHASH_SECONDS if ranged else None,
    )
    if built is None:
        count_with_request("image_factory_cache_misses_total", kind=kind)
        job = BuildRequest.for_plan(schematic_id, plan)
        if not wanted and not prefers_async(request) and may_stream_cold(eng, request):
            cold = stream_cold(eng, plan, job, filename, lambda: _record_download(eng, plan.key))
            if cold is not None:
                return cold
        found = build_then_find(eng, plan, job)
        if isinstance(found, Response):
            return found
        built = found
    else:
        count_with_request("image_factory_cache_hits_total", kind=kind)
    if wanted == "sigstore":
        return _bundle(eng, plan, built, BuildRequest.for_plan(schematic_id, plan), filename)
    if wanted in (SBOM, PROVENANCE):
        return evidence_response(eng, built, wanted, filename)
    if wanted:
        return checksum_response(built, wanted, filename)
    _record_download(eng, plan.key)
    if redirecting:
        url = eng.store.url_for(
            built.blob, None, eng.settings.s3_url_ttl, content_disposition(filename)
        )
        if url is not None:
            return redirect_response(url)
    return stream_asset(
        request,
        eng.store,
        built,
        filename,
        built.built_at or _stored_at(eng, built),
        lambda sha256: _streamed(eng, built, sha256),
    )


def _streamed(eng: Engine, built: BuiltAsset, sha256: str) -> bool:
    """Whether a whole body just streamed matched its build; a mismatch discards the build
    (the next request rebuilds it)."""
    if eng.verifier.streamed(built, sha256):
        return True
    discard_build(eng.store, built, f"streamed bytes have sha256 {sha256}")
    eng.forget_build(built.key)
    eng.metrics.count("image_factory_corrupt_blobs_total")
    return False


def _record_download(eng: Engine, key: str) -> None:
    """With an asset budget, note the download (least recently downloaded goes first)."""
    if eng.settings.asset_budget_bytes <= 0:
        return
    try:
        eng.downloads.record(eng.store, key)
    except FactoryError:
        # The download itself does not depend on it; the build just looks older.
        log.exception("recording the download of build %s failed", key)


def _stored_at(eng: Engine, built: BuiltAsset) -> int:
    """Last-Modified for builds recorded before manifests carried their time."""
    return int(eng.store.stat(built.blob).modified)


def _bundle(
    eng: Engine, plan: Plan, built: BuiltAsset, job: BuildRequest, filename: str
) -> Response:
    """The bundle the worker signed at publish time. One from before signing moved there, or
    made with a key the deployment no longer uses, is not served: the web side holds no
    private key to sign again, so the build is made again (by a worker, which signs it)."""
    if not signed_now(eng, built):
        discard_build(eng.store, built, "its signature is not from the deployment's key")
        eng.forget_build(built.key)
        found = build_then_find(eng, plan, job)
        if isinstance(found, Response):
            return found
        built = found
    if built.sigstore_bundle is None or not signed_now(eng, built):
        return text_error("this build is not signed with the deployment's signing key", 500)
    return bundle_response(bundle_json(dict(built.sigstore_bundle)), filename)


@bp.route("/oci/cosign/signing-key.pub", methods=["GET"])
def signing_key() -> Response:
    """The public key that verifies every asset's `.sigstore.json` (PKIX PEM)."""
    return Response(engine().public_keys.signing_key_pem, status=200, mimetype=PEM_TYPE)
