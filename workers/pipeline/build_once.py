"""Build once per plan key: the stored build of a plan, built and published first if needed.

What the CLI, the Celery workers and the registry call; `workers.outputs.finished_builds`
holds the stored side (manifests), which the web processes read without importing this
module or the assembly code (or the evidence making) behind it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workers.assembly.run import DEFAULT_TIMEOUT, sandboxed, tool_timeout
from workers.evidence.documents import describe_build, store_evidence
from workers.hashing import hash_file
from workers.keys.secureboot_key import Signer
from workers.keys.signing import SigningKey
from workers.outputs.finished_builds import BuiltAsset, build_manifest_key, load_built
from workers.pipeline.background_removal import removals_in_background
from workers.pipeline.build_asset import build_asset
from workers.pipeline.progress import Progress, StageClock, quiet
from workers.pipeline.workdirs import build_workdir
from workers.planning.asset_kinds import content_type_for
from workers.planning.plans import Plan
from workers.store import Store
from workers.store.objects import Content, Objects


def ensure_built(
    store: Store,
    plan: Plan,
    work_root: Path,
    progress: Progress = quiet,
    signer: Signer | None = None,
    signing_key: SigningKey | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> BuiltAsset:
    """The stored build of `plan`, building and storing it first when needed.

    The build runs in its own locked `build-*` directory under `work_root`, and every tool it
    runs is sandboxed to that directory and stopped after `timeout` seconds
    (`Settings.tool_timeout`).
    `signer`: the SecureBoot key material (`plan.signer(settings)`) for SecureBoot plans.
    `signing_key`: the asset signing key; the manifest then carries the asset's Sigstore
    bundle, so it is signed once per build rather than once per download."""
    existing = load_built(store, plan)
    if existing is not None:
        return existing
    started = time.monotonic()
    clock = StageClock(progress)
    # Scratch trees removed "soon" during the build are gone before its directory is.
    with (
        build_workdir(work_root) as workdir,
        removals_in_background(),
        tool_timeout(timeout),
        sandboxed(workdir),
    ):
        path = build_asset(plan, store, workdir, clock, signer)
        return publish_build(store, plan, path, started, clock, signing_key, workdir / "evidence")


def publish_build(
    store: Store,
    plan: Plan,
    path: Path,
    started: float,
    clock: StageClock,
    signing_key: SigningKey | None,
    evidence_dir: Path | None = None,
) -> BuiltAsset:
    """Store the built file `path` as the build of `plan`: the blob under its digest (unless
    it is there already), its SBOM and provenance statement (made in the new directory
    `evidence_dir`; none without it; the statement signed with `signing_key`), then the
    manifest, the commit point. `started` is when the build began (`time.monotonic()`);
    `clock` reports the upload stage and gives the seconds each stage took."""
    clock("upload", 0)
    hashes = hash_file(path, ("sha256", "sha512"))
    sha256, sha512, size = hashes.sha256, hashes.hexdigests["sha512"], hashes.size
    content_type = content_type_for(plan.profile.path)
    evidence, envelope_sha256 = None, ""
    if evidence_dir is not None:
        evidence = describe_build(store, plan, evidence_dir, plan.profile.path, sha256, sha512)
        envelope_sha256 = store_evidence(store, evidence, signing_key)
    objects = Objects(store)
    staged = objects.new()
    staged.add_file(plan.profile.path, path, Content(sha256, size), content_type, adopt=True)
    clock("upload", 100)
    built = BuiltAsset(
        key=plan.key,
        filename=plan.profile.path,
        size=size,
        sha256=sha256,
        sha512=sha512,
        content_type=content_type,
        seconds=round(time.monotonic() - started, 3),
        built_at=int(time.time()),
        stages=clock.finish(),
        sigstore_bundle=None if signing_key is None else signing_key.sigstore_bundle(sha256),
        sbom_sha256=evidence.sbom_sha256 if evidence is not None else "",
        provenance_sha256=evidence.statement_sha256 if evidence is not None else "",
        provenance_envelope_sha256=envelope_sha256,
    )
    doc: dict[str, Any] = {**asdict(built), "plan": plan.to_json()}
    staged.commit(
        build_manifest_key(plan.key), json.dumps(doc, sort_keys=True, indent=2).encode() + b"\n"
    )
    # Evicted (`workers.outputs.storage_budget`) between the upload and the manifest: put it back.
    objects.add_blob(path, Content(sha256, size), content_type, adopt=True)
    return built
