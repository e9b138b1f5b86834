"""The releases' installer base images as a registry repository: `siderolabs/installer-base`.

Upstream's factory names Talos' base images by their ghcr.io repositories
(`siderolabs/installer-base`, `siderolabs/imager`) and installer images are composed on
`ghcr.io/siderolabs/installer-base:<version>`. This factory serves the base of each release
under the same name, so a cluster (or a mirror) that maps `ghcr.io` to the factory pulls
the base from it too, without reaching the internet.

The documents are derived, not stored: for a version, one platform manifest per arch whose
release has an `installer_base` (config + layers as the release manifest lists them, the
layers' media type from their first bytes, as shipped) and an index over them, arches in
order. Same release manifests, same bytes, on every factory and after an air-gap import.
The config and layers are the release's blobs (`blobs/sha256/<hex>`); only those are served.
"""

from __future__ import annotations

from dataclasses import dataclass

from extensions.compression import GZIP_MAGIC, ZSTD_MAGIC
from workers.registry import oci
from workers.releases.availability import OFFER_ALL, VersionPolicy
from workers.releases.manifest import FileEntry
from workers.releases.stored import blob_key, list_arches, list_versions, load_release
from workers.store import ObjectNotFound, Store

NAMESPACE = "siderolabs"
IMAGE = "installer-base"
REPOSITORY = f"{NAMESPACE}/{IMAGE}"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


@dataclass(frozen=True)
class BaseImageDocuments:
    """One version's installer base: the index, its platform manifests, their blobs."""

    version: str
    index: bytes
    manifests: dict[str, tuple[oci.Descriptor, bytes]]  # by hex digest, the index's too
    blobs: dict[str, oci.Descriptor]  # configs and layers by hex digest

    @property
    def index_descriptor(self) -> oci.Descriptor:
        return oci.describe(oci.INDEX, self.index)


def base_image_documents(store: Store, version: str) -> BaseImageDocuments | None:
    """The installer base of `version` over every arch that has one; None when none has."""
    manifests: dict[str, tuple[oci.Descriptor, bytes]] = {}
    blobs: dict[str, oci.Descriptor] = {}
    platform_descriptors = []
    for arch in list_arches(store, version):
        base = load_release(store, version, arch).installer_base
        if base is None:
            continue
        config = _blob_descriptor(oci.CONFIG, base.config)
        layers = [_blob_descriptor(_layer_type(store, entry), entry) for entry in base.layers]
        data = oci.encode(oci.image_manifest(config, layers))
        descriptor = oci.describe(
            oci.MANIFEST, data, platform={"architecture": arch, "os": "linux"}
        )
        manifests[descriptor.hex] = (descriptor, data)
        blobs.update({d.hex: d for d in (config, *layers)})
        platform_descriptors.append(descriptor)
    if not platform_descriptors:
        return None
    index = oci.encode(oci.image_index(platform_descriptors))
    documents = BaseImageDocuments(version, index, manifests, blobs)
    manifests[documents.index_descriptor.hex] = (documents.index_descriptor, index)
    return documents


def base_image_versions(store: Store, policy: VersionPolicy = OFFER_ALL) -> list[str]:
    """Offered versions whose release has an installer base for some arch, ascending."""
    return [
        version
        for version in policy.offered(list_versions(store))
        if any(
            load_release(store, version, arch).installer_base is not None
            for arch in list_arches(store, version)
        )
    ]


def find_base_documents(
    store: Store, digest_hex: str, policy: VersionPolicy = OFFER_ALL
) -> BaseImageDocuments | None:
    """The version whose installer base holds the manifest or blob `sha256:<digest_hex>`."""
    for version in base_image_versions(store, policy):
        documents = base_image_documents(store, version)
        if documents and (digest_hex in documents.manifests or digest_hex in documents.blobs):
            return documents
    return None


def _blob_descriptor(media_type: str, entry: FileEntry) -> oci.Descriptor:
    return oci.Descriptor(media_type, "sha256:" + entry.sha256, entry.size)


def _layer_type(store: Store, entry: FileEntry) -> str:
    """gzip, zstd or plain tar, as the layer was shipped (the release keeps its bytes)."""
    try:
        with store.open(blob_key(entry.sha256)) as reader:
            head = reader.read(len(ZSTD_MAGIC))
    except ObjectNotFound:
        head = b""  # a missing layer is reported when it is fetched, not here
    if head.startswith(GZIP_MAGIC):
        return oci.LAYER_GZIP
    if head == ZSTD_MAGIC:
        return LAYER_ZSTD
    return oci.LAYER_TAR
