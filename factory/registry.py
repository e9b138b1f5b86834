"""The OCI distribution API (read-only) for installer images: `/v2/…`.

- `GET|HEAD /v2/` → 200 `{}` (the API ping);
- `GET|HEAD /v2/<image>/<schematic-id>/manifests/<tag|digest>`: a version tag or `latest`
  publishes the tag on first pull (build through the workers, then a worker converts,
  indexes and signs: this process holds no private key; `workers.registry.publish`) and
  answers the OCI index; other tags (`sha256-<hex>.sig`)
  and digests are looked up;
- `GET|HEAD …/blobs/<digest>`: streamed from the store, or 307 to a presigned URL when the
  store is S3 and redirects are on (as downloads do);
- `GET …/referrers/<digest>`: an OCI index of the manifests whose subject is that digest
  (`?artifactType=` filters, announced by `OCI-Filters-Applied`);
- `GET …/tags/list`: release versions, `latest`, and stored signature tags (`n`, `last`).

Every answer carries `Docker-Distribution-API-Version: registry/2.0`; manifests and blobs
carry `Docker-Content-Digest`, `Content-Length` and an ETag (the digest). Errors are OCI
error JSON (`workers.registry.errors`); writes (PUT/POST/PATCH/DELETE) are 405 `UNSUPPORTED`;
any other `/v2/` path is 404 `NAME_UNKNOWN`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from flask import Blueprint, Response, request

from factory.clients import client_identity
from factory.engine import engine
from factory.errors import RETRY_AFTER_SECONDS, bearer_challenge
from factory.offered import version_policy
from schematics import Schematic
from workers.dispatch.build_queue import DONE, FAILED
from workers.dispatch.build_request import BuildRequest
from workers.engine import Engine
from workers.errors import (
    FactoryError,
    Forbidden,
    Gone,
    InvalidRequest,
    NotFound,
    NotImplementedYet,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from workers.outputs.finished_builds import BuiltAsset
from workers.planning.plans import Plan
from workers.registry import base_images, content, oci
from workers.registry.errors import (
    BlobUnknown,
    BuildRefused,
    BuildWithdrawn,
    ManifestUnknown,
    NameUnknown,
    NotBuilt,
    PaginationInvalid,
    RegistryDenied,
    RegistryError,
    RegistryUnauthorized,
    RegistryUnavailable,
    TooManyPulls,
    Unsupported,
)
from workers.registry.names import (
    Repository,
    check_tag,
    is_digest_reference,
    parse_digest,
    parse_repository,
)
from workers.registry.publish import Builder, ensure_published, load_repository_schematic
from workers.registry.tags import available_versions, resolve_version, wants_release
from workers.releases.availability import VersionPolicy
from workers.releases.stored import blob_key
from workers.releases.versions import normalize_version
from workers.store import ObjectNotFound, Store

log = logging.getLogger(__name__)
bp = Blueprint("registry", __name__)

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
DIGEST_HEADER = "Docker-Content-Digest"
WRITE_METHODS = ["PUT", "POST", "PATCH", "DELETE"]
READ_METHODS = "GET, HEAD"
BLOB_TYPE = "application/octet-stream"
_CHUNK = 1 << 20


@bp.after_request
def api_version(response: Response) -> Response:
    response.headers[API_VERSION[0]] = API_VERSION[1]
    return response


@bp.errorhandler(Exception)
def registry_error(error: Exception) -> Response:
    found = _as_registry_error(error)
    response = Response(
        json.dumps(found.body()) + "\n", status=found.status, mimetype="application/json"
    )
    if isinstance(found, Unsupported):
        response.headers["Allow"] = READ_METHODS
    if isinstance(found, RegistryUnavailable):
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = bearer_challenge(error)
    if isinstance(error, TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _as_registry_error(error: Exception) -> RegistryError:
    if isinstance(error, RegistryError):
        return error
    # Engine errors not already given registry terms (e.g. the store is down).
    translated: dict[type[FactoryError], type[RegistryError]] = {
        TooManyRequests: TooManyPulls,
        NotImplementedYet: NotBuilt,
        InvalidRequest: BuildRefused,
        NotFound: ManifestUnknown,
        Unauthorized: RegistryUnauthorized,
        Forbidden: RegistryDenied,
        Gone: BuildWithdrawn,
    }
    if isinstance(error, Unavailable):
        log.warning("registry: %s", error)  # the details are the log's, not the client's
        return RegistryUnavailable(error.public)
    for kind, registry_kind in translated.items():
        if isinstance(error, kind):
            return registry_kind(str(error))
    log.exception("unhandled registry error")
    return RegistryError("internal server error")


# `/v2` answers as `/v2/` (upstream routes both), not with a redirect to it.
@bp.route("/v2/", methods=["GET"], strict_slashes=False)
def ping() -> Response:
    return Response("{}\n", status=200, mimetype="application/json")


@bp.route("/v2/<image>/<schematic_id>/manifests/<reference>", methods=["GET"])
def manifest(image: str, schematic_id: str, reference: str) -> Response:
    eng = engine()
    repo, schematic = _repository(eng.store, image, schematic_id)
    if is_digest_reference(reference):
        digest_hex = parse_digest(reference)
        descriptor = content.manifest_descriptor(eng.store, repo, digest_hex)
    else:
        tag = check_tag(reference)
        if wants_release(tag):
            version = resolve_version(eng.store, tag, version_policy())
            build = _through_workers(eng, repo.schematic_id)
            record = ensure_published(
                eng.store,
                eng.settings,
                eng.coordination,
                repo,
                schematic,
                version,
                build,
                eng.publisher,
            )
            descriptor = record.descriptor
        else:
            stored = content.read_tag(eng.store, repo, tag)
            descriptor = stored.descriptor if stored else None
    data = content.read_verified(eng.store, descriptor) if descriptor else None
    if descriptor is None or data is None:
        raise ManifestUnknown(f"manifest unknown: {repo.name}:{reference}", {"tag": reference})
    response = Response(data, status=200, content_type=descriptor.media_type)
    _content_headers(response, descriptor).make_conditional(request)
    return response


@bp.route("/v2/<image>/<schematic_id>/blobs/<digest>", methods=["GET"])
def blob(image: str, schematic_id: str, digest: str) -> Response:
    eng = engine()
    repo, _ = _repository(eng.store, image, schematic_id)
    digest_hex = parse_digest(digest)
    descriptor = content.blob_descriptor(eng.store, repo, digest_hex)
    unknown = BlobUnknown(f"blob unknown to {repo.name}: {digest}", {"digest": digest})
    if descriptor is None:
        raise unknown
    return _serve_blob(descriptor, unknown)


def _serve_blob(descriptor: oci.Descriptor, unknown: BlobUnknown) -> Response:
    """A stored blob: streamed, or a 307 to a presigned URL when S3 redirects are on."""
    eng = engine()
    key = blob_key(descriptor.hex)
    settings = eng.settings
    if request.method == "GET" and eng.backend.objects_in_s3 and settings.s3_redirect:
        url = eng.store.url_for(key, None, settings.s3_url_ttl)
        if url is not None:
            redirect = Response("", status=307, headers={"Location": url})
            redirect.headers[DIGEST_HEADER] = descriptor.digest
            return redirect
    try:
        if eng.store.size(key) != descriptor.size:
            raise unknown
    except ObjectNotFound:
        raise unknown from None
    body = iter(()) if request.method == "HEAD" else _stream(eng.store, key)
    response = Response(body, status=200, content_type=BLOB_TYPE)
    _content_headers(response, descriptor).make_conditional(request)
    return response


@bp.route("/v2/<image>/<schematic_id>/referrers/<digest>", methods=["GET"])
def referrers(image: str, schematic_id: str, digest: str) -> Response:
    eng = engine()
    repo, _ = _repository(eng.store, image, schematic_id)
    found = content.referrers(eng.store, repo, parse_digest(digest))
    artifact_type = request.args.get("artifactType")
    if artifact_type is not None:
        found = [d for d in found if d.artifact_type == artifact_type]
    data = oci.encode(oci.image_index(sorted(found, key=lambda d: d.digest)))
    response = Response(data, status=200, content_type=oci.INDEX)
    _content_headers(response, oci.describe(oci.INDEX, data))
    if artifact_type is not None:
        response.headers["OCI-Filters-Applied"] = "artifactType"
    return response


@bp.route("/v2/<image>/<schematic_id>/tags/list", methods=["GET"])
def tags(image: str, schematic_id: str) -> Response:
    eng = engine()
    repo, _ = _repository(eng.store, image, schematic_id)
    offered = available_versions(eng.store, version_policy())
    names = set(content.stored_tags(eng.store, repo)) | set(offered)
    if _has_latest(eng.store):
        names.add("latest")
    return _tag_list(repo.name, sorted(names))


def _tag_list(name: str, listed: list[str]) -> Response:
    """The tags/list answer, paginated by `n` and `last` (sorted tags)."""
    last = request.args.get("last")
    if last is not None:
        listed = [tag for tag in listed if tag > check_tag(last)]
    if (count := request.args.get("n")) is not None:
        if not (count.isascii() and count.isdigit()):
            raise PaginationInvalid(f"invalid page size n={count[:20]!r}", {"n": count[:20]})
        listed = listed[: int(count)]
    return Response(
        json.dumps({"name": name, "tags": listed}) + "\n",
        status=200,
        mimetype="application/json",
    )


# The releases' installer base images (workers.registry.base_images): static rules, so they
# win over `/v2/<image>/<schematic_id>/…` for the same path.
@bp.route(f"/v2/{base_images.REPOSITORY}/manifests/<reference>", methods=["GET"])
def base_manifest(reference: str) -> Response:
    store, policy = engine().store, version_policy()
    found = None
    if is_digest_reference(reference):
        digest_hex = parse_digest(reference)
        documents = base_images.find_base_documents(store, digest_hex, policy)
        found = documents.manifests.get(digest_hex) if documents else None
    else:
        documents = _base_documents(store, check_tag(reference), policy)
        found = (documents.index_descriptor, documents.index) if documents else None
    if found is None:
        raise ManifestUnknown(
            f"manifest unknown: {base_images.REPOSITORY}:{reference}", {"tag": reference}
        )
    descriptor, data = found
    response = Response(data, status=200, content_type=descriptor.media_type)
    _content_headers(response, descriptor).make_conditional(request)
    return response


@bp.route(f"/v2/{base_images.REPOSITORY}/blobs/<digest>", methods=["GET"])
def base_blob(digest: str) -> Response:
    digest_hex = parse_digest(digest)
    documents = base_images.find_base_documents(engine().store, digest_hex, version_policy())
    descriptor = documents.blobs.get(digest_hex) if documents else None
    unknown = BlobUnknown(f"blob unknown to {base_images.REPOSITORY}: {digest}", {"digest": digest})
    if descriptor is None:
        raise unknown
    return _serve_blob(descriptor, unknown)


@bp.route(f"/v2/{base_images.REPOSITORY}/tags/list", methods=["GET"])
def base_tags() -> Response:
    versions = base_images.base_image_versions(engine().store, version_policy())
    return _tag_list(base_images.REPOSITORY, versions)


def _base_documents(
    store: Store, tag: str, policy: VersionPolicy
) -> base_images.BaseImageDocuments | None:
    """A version tag's installer base (`v1.0.0` or `1.0.0`); None for any other tag."""
    try:
        version = normalize_version(tag)
    except InvalidRequest:
        return None
    if version not in base_images.base_image_versions(store, policy):
        return None
    return base_images.base_image_documents(store, version)


@bp.route("/v2/<path:rest>", methods=["GET"])
def unknown_path(rest: str) -> Response:
    raise NameUnknown("unknown registry path", {"path": rest[:200]})


@bp.route("/v2/", methods=WRITE_METHODS)
@bp.route("/v2/<path:rest>", methods=WRITE_METHODS)
def read_only(rest: str = "") -> Response:
    raise Unsupported(f"this registry is read-only: {request.method} is not supported")


def _through_workers(eng: Engine, schematic_id: str) -> Builder:
    """Installer builds go through the build workers, as downloads do: one build per plan
    key however many ask, waited for up to `IMAGE_FACTORY_BUILD_WAIT`, counted against the
    client that pulls."""
    client = client_identity()

    def build(plan: Plan) -> BuiltAsset:
        built = eng.find_built(plan)
        if built is not None:
            return built
        job = BuildRequest.for_plan(schematic_id, plan)
        plan.refuse_if_withdrawn()
        status = eng.queue.submit(job, client)
        if status.state != DONE:
            status = eng.queue.wait(job, eng.settings.build_wait)
        if status.state == FAILED:
            raise RegistryError(f"building {job.path} failed: {status.error}")
        built = eng.find_built(plan) if status.state == DONE else None
        if built is None:
            raise RegistryUnavailable(f"{job.path} is still being built; retry shortly")
        return built

    return build


def _repository(store: Store, image: str, schematic_id: str) -> tuple[Repository, Schematic]:
    """The repository, which exists when its schematic does (NAME_INVALID, NAME_UNKNOWN)."""
    repo = parse_repository(image, schematic_id)
    return repo, load_repository_schematic(store, repo)


def _has_latest(store: Store) -> bool:
    try:
        resolve_version(store, "latest", version_policy())
    except ManifestUnknown:
        return False
    return True


def _content_headers(response: Response, descriptor: oci.Descriptor) -> Response:
    response.headers[DIGEST_HEADER] = descriptor.digest
    response.headers["Content-Length"] = str(descriptor.size)
    response.set_etag(descriptor.digest)
    return response


def _stream(store: Store, key: str) -> Iterator[bytes]:
    with store.open(key) as reader:
        while chunk := reader.read(_CHUNK):
            yield chunk
