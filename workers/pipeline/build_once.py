"""Build once per plan key: the stored build of a plan, built and published first if needed.

What the CLI, the Celery workers and the registry call; `workers.outputs.finished_builds`
holds the stored side (manifests, `publish_build`), which the web processes read without
importing this module or the assembly code behind it.
"""

from __future__ import annotations

import time
from pathlib import Path

from workers.assembly.run import DEFAULT_TIMEOUT, sandboxed, tool_timeout
from workers.keys.secureboot_key import Signer
from workers.keys.signing import SigningKey
from workers.outputs.finished_builds import BuiltAsset, load_built, publish_build
from workers.pipeline.build_asset import build_asset
from workers.pipeline.progress import Progress, StageClock, quiet
from workers.pipeline.workdirs import build_workdir
from workers.planning.plans import Plan
from workers.store import Store


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
    with build_workdir(work_root) as workdir, tool_timeout(timeout), sandboxed(workdir):
        path = build_asset(plan, store, workdir, clock, signer)
        return publish_build(store, plan, path, started, clock, signing_key)
