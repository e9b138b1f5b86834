"""`<asset>.spdx.json`: an SPDX 2.3 document of one build, written and validated with `spdx-tools`.

Packages (each with its sha256; relationships say how they relate to the asset):
- the asset itself (`DESCRIBES`), sha256 and sha512;
- the release the asset was built from (version, kernel version, manifest digest) and each
  release file the kind reads (kernel, base root, boot loaders, module tree), which the asset
  is `GENERATED_FROM`; for the reference OS, the Debian packages and versions the release
  records in its `origin` (the release is `GENERATED_FROM` them, with `pkg:deb` purls);
- every extension layer in order: name, version, author, origin (bundled, or who uploaded it),
  tar digest and, as SPDX files, every file it installs with sha256 (and the SHA1 SPDX asks
  for); the schematic's own layer carries the schematic ID as version and the canonical
  schematic YAML as description;
- the kernel modules selected (the requested ones with their dependencies) as files;
- the overlay (name, version, digest, options).

Reproducible: `created` is the release's `source_date_epoch`, the namespace is derived from
the plan key, element IDs are positional and the JSON is written in a fixed order.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.checksum import Checksum, ChecksumAlgorithm
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.file import File
from spdx_tools.spdx.model.package import (
    ExternalPackageRef,
    ExternalPackageRefCategory,
    Package,
    PackagePurpose,
)
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion
from spdx_tools.spdx.parser.error import SPDXParsingError
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.spdx_element_utils import calculate_package_verification_code
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

from workers.evidence.extension_files import FileDigest
from workers.evidence.identity import FACTORY_NAME, factory_version
from workers.evidence.inputs import RELEASE_FILE_ROLES, BuildInputs, Layer
from workers.planning.profiles import Kind

SPDX_VERSION = "SPDX-2.3"
DOCUMENT_ID = "SPDXRef-DOCUMENT"
ASSET_ID = "SPDXRef-Asset"
RELEASE_ID = "SPDXRef-Release"
# UUIDv5 namespace of the documents' URIs (the plan key decides the rest).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://spdx.org/spdxdocs/image-factory")


class InvalidSbom(ValueError):
    """A document that is not valid SPDX 2.3 (the message lists the validator's findings)."""


def make_sbom(inputs: BuildInputs, filename: str, sha256: str, sha512: str) -> bytes:
    """The SPDX JSON of the build `inputs` describe, whose asset has these digests."""
    document = _document(inputs, filename, sha256, sha512)
    out = io.StringIO()
    write_document_to_stream(document, out, validate=True)
    return out.getvalue().encode() + b"\n"


def check_sbom(data: bytes) -> Document:
    """Parse and validate SPDX JSON; InvalidSbom says what is wrong."""
    try:
        document = JsonLikeDictParser().parse(json.loads(data))  # type: ignore[no-untyped-call]
    except (ValueError, SPDXParsingError) as error:
        messages = getattr(error, "messages", None) or [str(error)]
        raise InvalidSbom("; ".join(str(m) for m in messages)) from None
    problems = validate_full_spdx_document(document, SPDX_VERSION)
    if problems:
        raise InvalidSbom("; ".join(p.validation_message for p in problems))
    return document


def asset_sha256(document: Document) -> str:
    """The sha256 the SBOM records for the asset it describes."""
    asset = next(p for p in document.packages if p.spdx_id == ASSET_ID)
    return next(c.value for c in asset.checksums if c.algorithm == ChecksumAlgorithm.SHA256)


def document_namespace(plan_key: str) -> str:
    return f"https://spdx.org/spdxdocs/image-factory/{uuid.uuid5(_NAMESPACE, plan_key)}"


def _document(inputs: BuildInputs, filename: str, sha256: str, sha512: str) -> Document:
    release, plan = inputs.release, inputs.plan
    info = CreationInfo(
        spdx_version=SPDX_VERSION,
        spdx_id=DOCUMENT_ID,
        name=f"{filename} ({release.version}, build {inputs.plan.key})",
        document_namespace=document_namespace(inputs.plan.key),
        creators=[
            Actor(ActorType.TOOL, f"{FACTORY_NAME}-{factory_version()}"),
            Actor(ActorType.ORGANIZATION, FACTORY_NAME),
        ],
        created=datetime.fromtimestamp(release.source_date_epoch, UTC),
        document_comment=f"build key {plan.key}; plan {plan.canonical_json().decode()}",
    )
    builder = _Builder()
    kind = inputs.plan.kind
    builder.package(
        Package(
            ASSET_ID,
            filename,
            SpdxNoAssertion(),
            version=release.version,
            file_name=filename,
            files_analyzed=False,
            checksums=[
                Checksum(ChecksumAlgorithm.SHA256, sha256),
                Checksum(ChecksumAlgorithm.SHA512, sha512),
            ],
            primary_package_purpose=(
                PackagePurpose.FILE if kind is Kind.CMDLINE else PackagePurpose.OPERATING_SYSTEM
            ),
            comment=f"asset kind {kind}, arch {inputs.plan.arch}",
        )
    )
    builder.relate(DOCUMENT_ID, RelationshipType.DESCRIBES, ASSET_ID)
    _release(builder, inputs)
    for number, layer in enumerate(inputs.layers):
        _layer(builder, number, layer)
    if inputs.modules:
        _modules(builder, inputs)
    if inputs.plan.overlay is not None:
        overlay = inputs.plan.overlay
        options = ", ".join(f"{k}={v}" for k, v in overlay.options) or "none"
        builder.package(
            Package(
                "SPDXRef-Overlay",
                overlay.name,
                SpdxNoAssertion(),
                version=overlay.version,
                files_analyzed=False,
                checksums=[Checksum(ChecksumAlgorithm.SHA256, overlay.digest)],
                comment=f"board overlay; options: {options}; "
                f"kernel arguments: {' '.join(overlay.kernel_args) or 'none'}",
            )
        )
        builder.relate(ASSET_ID, RelationshipType.CONTAINS, "SPDXRef-Overlay")
    return Document(info, builder.packages, builder.files, relationships=builder.relations)


class _Builder:
    def __init__(self) -> None:
        self.packages: list[Package] = []
        self.files: list[File] = []
        self.relations: list[Relationship] = []

    def package(self, package: Package) -> None:
        self.packages.append(package)

    def relate(self, a: str, how: RelationshipType, b: str) -> None:
        self.relations.append(Relationship(a, how, b))

    def files_of(self, owner: str, files: Iterable[FileDigest], comment: str) -> list[File]:
        made = []
        for number, item in enumerate(files):
            spdx = File(
                f".{item.path}",
                f"{owner}-File-{number}",
                [
                    Checksum(ChecksumAlgorithm.SHA1, item.sha1),
                    Checksum(ChecksumAlgorithm.SHA256, item.sha256),
                ],
                comment=comment,
            )
            made.append(spdx)
            self.files.append(spdx)
            self.relate(owner, RelationshipType.CONTAINS, spdx.spdx_id)
        return made


def _release(builder: _Builder, inputs: BuildInputs) -> None:
    release = inputs.release
    builder.package(
        Package(
            RELEASE_ID,
            f"release {release.version}",
            SpdxNoAssertion(),
            version=release.version,
            files_analyzed=False,
            checksums=[Checksum(ChecksumAlgorithm.SHA256, release.digest)],
            comment=f"base OS release {release.version}/{release.arch}, kernel "
            f"{release.kernel_version}; checksum: sha256 of the release manifest",
        )
    )
    builder.relate(ASSET_ID, RelationshipType.GENERATED_FROM, RELEASE_ID)
    for number, name in enumerate(inputs.release_files):
        entry = release.files[name]
        spdx_id = f"SPDXRef-ReleaseFile-{number}"
        builder.package(
            Package(
                spdx_id,
                name,
                SpdxNoAssertion(),
                version=release.kernel_version if name == "vmlinuz" else release.version,
                file_name=name,
                files_analyzed=False,
                checksums=[Checksum(ChecksumAlgorithm.SHA256, entry.sha256)],
                comment=RELEASE_FILE_ROLES.get(name, "release file"),
            )
        )
        builder.relate(RELEASE_ID, RelationshipType.CONTAINS, spdx_id)
        builder.relate(ASSET_ID, RelationshipType.GENERATED_FROM, spdx_id)
    packages: Any = release.origin.get("debian_packages", {})
    if not isinstance(packages, dict):
        return
    for number, (name, version) in enumerate(sorted(packages.items())):
        spdx_id = f"SPDXRef-Deb-{number}"
        purl = f"pkg:deb/debian/{name}@{version}?arch={release.arch}"
        builder.package(
            Package(
                spdx_id,
                name,
                SpdxNoAssertion(),
                version=str(version),
                supplier=Actor(ActorType.ORGANIZATION, "Debian"),
                files_analyzed=False,
                external_references=[
                    ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl)
                ],
                comment="Debian package the release's files were built from",
            )
        )
        builder.relate(RELEASE_ID, RelationshipType.GENERATED_FROM, spdx_id)


def _layer(builder: _Builder, number: int, layer: Layer) -> None:
    spdx_id = f"SPDXRef-Extension-{number}"
    files = builder.files_of(spdx_id, layer.files, f"installed by extension {layer.name}")
    schematic = layer.extra_info != ""
    builder.package(
        Package(
            spdx_id,
            layer.name,
            SpdxNoAssertion(),
            version=layer.version,
            supplier=_actor(layer.author),
            files_analyzed=bool(files),
            verification_code=calculate_package_verification_code(files) if files else None,
            checksums=[Checksum(ChecksumAlgorithm.SHA256, layer.digest)],
            description=layer.extra_info if schematic else None,
            comment=(
                f"{'schematic' if schematic else 'system extension'} layer {number}; "
                f"author: {layer.author or 'unknown'}; origin: {layer.origin}; "
                "checksum: sha256 of the extension's canonical tar"
            ),
        )
    )
    builder.relate(ASSET_ID, RelationshipType.CONTAINS, spdx_id)


def _modules(builder: _Builder, inputs: BuildInputs) -> None:
    spdx_id = "SPDXRef-KernelModules"
    files = builder.files_of(spdx_id, inputs.modules, "kernel module selected by the schematic")
    requested = ", ".join(inputs.plan.kernel_modules)
    builder.package(
        Package(
            spdx_id,
            "kernel-modules",
            SpdxNoAssertion(),
            version=inputs.release.kernel_version,
            files_analyzed=True,
            verification_code=calculate_package_verification_code(files),
            comment=f"requested: {requested}; with their dependencies, from modules.tar",
        )
    )
    builder.relate(ASSET_ID, RelationshipType.CONTAINS, spdx_id)


def _actor(author: str) -> Actor | SpdxNoAssertion:
    """SPDX actor names cannot hold parentheses (they would read back as an e-mail)."""
    name = author.replace("(", "[").replace(")", "]").strip()
    return Actor(ActorType.ORGANIZATION, name) if name else SpdxNoAssertion()
