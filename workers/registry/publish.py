"""Publishing an installer repository's tag: build, convert, index, sign, tag last.

`ensure_published(store, settings, coordination, repo, schematic, version)` returns the tag
record of `version` in `repo`, publishing it first when it is missing or stale:
1. one plan per architecture the release has and this factory builds (`asset_path(arch)`:
   `installer-amd64.tar`, `metal-installer-amd64-secureboot.tar`, …);
2. each installer asset built by the caller's builder (the web service: through the build
   workers, single flight per plan key, as downloads; otherwise `ensure_built` here);
3. each docker archive converted into OCI blobs + an image manifest, then one OCI index
   with a `linux/<arch>` descriptor per image (sorted by arch);
4. the index and every platform manifest signed (cosign simple signing, as `cosign sign
   --recursive` does) under `<host>/<image>/<schematic-id>`: cosign verifies the index a
   tag resolves to, containers/image (podman, CRI-O, skopeo) the platform manifest it pulls;
5. each platform manifest's SBOM and signed provenance attached as referrers
   (`workers.registry.attestations`);
6. the repository's records, the `sha256-<hex>.sig` tags and, last, the version tag.

Steps 3-6 sign, so they run where the signing key is, in a build worker: the web service
builds through the workers and then asks one to publish (`publisher`, a
`workers.registry.publishing.InstallerPublisher`); it holds only the public key, whose hint
says whether a stored tag is current. Without a publisher (CLI, tests) they run here.

The tag record keeps what the index was made from (plan keys per arch, signing key hint,
signed identity): when any of them changes, or a piece of the index is missing or damaged,
the next pull publishes again. Output is deterministic (reproducible installer archives,
fixed JSON encoding, RFC 6979 signatures), so publishing twice yields the same digests.

Single flight: publishing holds the lease `registry:<sha256(repo:version)>`
(`workers.dispatch.coordination`: flock in the embedded default, Redis when scaled);
concurrent pulls of the same tag wait for it and then find the tag written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from schematics import Schematic
from workers.catalog.records import registry_host
from workers.dispatch.coordination import Coordination
from workers.errors import InvalidRequest, NotFound, NotImplementedYet
from workers.keys.public_keys import load_public_keys
from workers.keys.signing import SigningKey, load_or_create_signing_key
from workers.outputs.finished_builds import BuiltAsset, load_build
from workers.outputs.schematics_store import load_schematic
from workers.pipeline.workdirs import work_root
from workers.planning.plans import Plan, make_plan
from workers.planning.profiles import BUILT_ARCHES, parse_profile
from workers.registry import content, cosign, oci
from workers.registry.archive import ImportedImage, import_docker_archive
from workers.registry.attestations import attach_evidence
from workers.registry.errors import (
    BuildRefused,
    ManifestUnknown,
    NameUnknown,
    NotBuilt,
    RegistryUnavailable,
)
from workers.registry.names import Repository, signature_tag
from workers.releases.stored import list_arches
from workers.settings import Settings
from workers.store import Store

LEASE_POLL_SECONDS = 0.5
# In the tag record: tags published before SBOM and provenance were attached publish again.
EVIDENCE_LAYOUT = 1
Builder = Callable[[Plan], BuiltAsset]
# Has a build worker run `publish_built(repo, version)` and returns once it has.
Publisher = Callable[[Repository, str], None]


def load_repository_schematic(store: Store, repo: Repository) -> Schematic:
    try:
        return load_schematic(store, repo.schematic_id)
    except NotFound as error:
        raise NameUnknown(str(error), {"name": repo.name}) from None


def docker_reference(settings: Settings, repo: Repository) -> str:
    return f"{registry_host(settings.external_url)}/{repo.name}"


def local_builder(store: Store, settings: Settings) -> Builder:
    """Build in this process (`ensure_built`), for callers without workers (CLI, tests)."""
    # Imported here: the web processes pass their own builder (through the build workers) and
    # so never load the pipeline and the assembly code behind it.
    from workers.pipeline.build_once import ensure_built

    def build(plan: Plan) -> BuiltAsset:
        return ensure_built(
            store,
            plan,
            work_root(settings),
            signer=plan.signer(settings),
            timeout=settings.tool_timeout,
        )

    return build


def ensure_published(
    store: Store,
    settings: Settings,
    coordination: Coordination,
    repo: Repository,
    schematic: Schematic,
    version: str,
    build: Builder | None = None,
    publish: Publisher | None = None,
) -> content.TagRecord:
    """The record of tag `version` in `repo` (whose schematic is `schematic`), publishing it
    first when missing or stale. `build` turns a plan into a stored build (default:
    `local_builder`; the web service passes one that goes through the build workers);
    `publish` has a worker publish the built tag (default: publish and sign here);
    `coordination` holds the tag's lease while it is published (single flight)."""
    plans = _plans(store, settings, repo, schematic, version)
    # Signing here takes this process's key; a publisher's worker signs with the deployment's.
    key = load_or_create_signing_key(settings) if publish is None else None
    hint = key.public_key_hint if key else load_public_keys(settings, store).signing_key_hint
    wanted = _wanted(settings, repo, plans, hint)
    record = content.read_tag(store, repo, version)
    if _current(store, repo, record, wanted):
        assert record is not None
        return record
    with _single_flight(coordination, settings.build_wait, publish_lease(repo, version)):
        record = content.read_tag(store, repo, version)
        if _current(store, repo, record, wanted):
            assert record is not None
            return record
        builder = build or local_builder(store, settings)
        if key is not None:
            return _publish(store, settings, repo, version, plans, wanted, key, builder)
        assert publish is not None
        for plan in plans.values():
            builder(plan)
        publish(repo, version)
        record = content.read_tag(store, repo, version)
        if not _current(store, repo, record, wanted):
            raise RegistryUnavailable("this tag is still being published; retry later")
        assert record is not None
        return record


def publish_built(store: Store, settings: Settings, repo: Repository, version: str) -> None:
    """Steps 3-5 in a build worker, for a web service holding no private key: publish
    `version` of `repo` from its stored builds, signed with this worker's key."""
    plans = _plans(store, settings, repo, load_repository_schematic(store, repo), version)
    key = load_or_create_signing_key(settings)
    wanted = _wanted(settings, repo, plans, key.public_key_hint)
    _publish(store, settings, repo, version, plans, wanted, key, _stored_build(store))


def _wanted(
    settings: Settings, repo: Repository, plans: dict[str, Plan], signer_hint: str
) -> dict[str, Any]:
    return {
        "plans": {arch: plan.key for arch, plan in plans.items()},
        "signer": signer_hint,
        "identity": docker_reference(settings, repo),
        "evidence": EVIDENCE_LAYOUT,
    }


def _stored_build(store: Store) -> Builder:
    """A builder that only finds builds (the web service has had them built)."""

    def find(plan: Plan) -> BuiltAsset:
        built = load_build(store, plan.key)
        if built is None:
            raise RegistryUnavailable("an installer build is no longer stored; retry shortly")
        return built

    return find


def _plans(
    store: Store, settings: Settings, repo: Repository, schematic: Schematic, version: str
) -> dict[str, Plan]:
    arches = [arch for arch in list_arches(store, version) if arch in BUILT_ARCHES]
    if not arches:
        raise ManifestUnknown(f"version {version} is not available", {"tag": version})
    plans = {}
    for arch in arches:
        profile = parse_profile(repo.asset_path(arch))
        try:
            plans[arch] = make_plan(store, schematic, repo.schematic_id, version, profile, settings)
        except NotFound as error:
            raise ManifestUnknown(str(error), {"tag": version}) from None
        except NotImplementedYet as error:
            raise NotBuilt(str(error)) from None
        except InvalidRequest as error:
            raise BuildRefused(str(error), {"tag": version}) from None
    return plans


def _current(
    store: Store, repo: Repository, record: content.TagRecord | None, wanted: dict[str, Any]
) -> bool:
    """Whether `record` was made from `wanted` and everything it points at is intact."""
    if record is None or any(record.extra.get(k) != v for k, v in wanted.items()):
        return False
    index = content.read_verified(store, record.descriptor)
    signature = content.read_tag(store, repo, signature_tag(record.descriptor.hex))
    if index is None or signature is None:
        return False
    for entry in json.loads(index)["manifests"]:
        platform = oci.Descriptor.from_json(entry)
        manifest = content.read_verified(store, platform)
        if manifest is None or content.read_tag(store, repo, signature_tag(platform.hex)) is None:
            return False
        document = json.loads(manifest)
        for blob in (document["config"], *document["layers"]):
            if not content.stored_with_size(store, oci.Descriptor.from_json(blob)):
                return False
    return True


def publish_lease(repo: Repository, version: str) -> str:
    """The coordination lease held while `version` of `repo` is being published."""
    return "registry:" + hashlib.sha256(f"{repo.name}:{version}".encode()).hexdigest()


@contextlib.contextmanager
def _single_flight(coordination: Coordination, wait: float, lease_name: str) -> Iterator[None]:
    """Hold `lease_name`, waiting up to `wait` seconds (`IMAGE_FACTORY_BUILD_WAIT`) for
    another holder."""
    deadline = time.monotonic() + wait
    while (lease := coordination.lease(lease_name)) is None:
        if time.monotonic() >= deadline:
            raise RegistryUnavailable("this tag is still being published; retry later")
        time.sleep(LEASE_POLL_SECONDS)
    try:
        yield
    finally:
        lease.release()


def _publish(
    store: Store,
    settings: Settings,
    repo: Repository,
    version: str,
    plans: dict[str, Plan],
    wanted: dict[str, Any],
    key: SigningKey,
    build: Builder,
) -> content.TagRecord:
    root = work_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    images: list[ImportedImage] = []
    builds: list[BuiltAsset] = []
    with tempfile.TemporaryDirectory(prefix="registry-", dir=root) as tmp:
        for arch, plan in sorted(plans.items()):
            built = build(plan)
            builds.append(built)
            archive = Path(tmp) / f"installer-{arch}.tar"
            store.download(built.blob, archive)
            images.append(import_docker_archive(store, archive, arch, Path(tmp)))
            archive.unlink()
    index_bytes = oci.encode(oci.image_index([image.manifest for image in images]))
    index = oci.describe(oci.INDEX, index_bytes)
    content.put_document(store, index, index_bytes)
    for image in images:
        for blob in image.blobs:
            content.record_blob(store, repo, blob)
        content.record_manifest(store, repo, _plain(image.manifest))
    content.record_manifest(store, repo, index)
    # containers/image looks up the signature of the platform manifest it pulls; cosign
    # verify, of the index the tag names.
    for image in images:
        _sign(store, repo, _plain(image.manifest), key, wanted["identity"])
    _sign(store, repo, index, key, wanted["identity"])
    for image, built in zip(images, builds, strict=True):
        attach_evidence(store, repo, key, wanted["identity"], image.manifest, built)
    record = content.TagRecord(index, wanted)
    content.write_tag(store, repo, version, record)
    return record


def _sign(
    store: Store, repo: Repository, index: oci.Descriptor, key: SigningKey, identity: str
) -> None:
    signature = cosign.signature_for(key, identity, index)
    content.put_document(store, signature.layer, signature.payload)
    content.put_document(store, signature.config_descriptor, signature.config)
    content.put_document(store, signature.descriptor, signature.manifest)
    content.record_blob(store, repo, signature.layer)
    content.record_blob(store, repo, signature.config_descriptor)
    content.record_manifest(store, repo, signature.descriptor)
    # A new key or identity replaces the old signature rather than adding to it.
    content.replace_referrers(store, repo, index.hex, signature.descriptor)
    content.write_tag(
        store, repo, signature_tag(index.hex), content.TagRecord(_plain(signature.descriptor))
    )


def _plain(descriptor: oci.Descriptor) -> oci.Descriptor:
    """The descriptor without index-only fields (platform), as a manifest record."""
    return oci.Descriptor(
        descriptor.media_type, descriptor.digest, descriptor.size, None, descriptor.artifact_type
    )
