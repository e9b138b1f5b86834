"""Installer images: an OCI image with the boot assets under `usr/install/<arch>/`, written as
a docker-archive tar (`docker load`, `skopeo copy docker-archive:...`), byte-reproducible.

Talos' installer output (talos-formats §8.2) is its installer base image plus one artifacts
layer; this factory has no installer program to ship, so the image is the artifacts layer
alone: a source of boot assets for tools that read `usr/install/<arch>/` (e.g. a Talos imager
or a PXE server), not a runnable installer.

- Layer: an uncompressed tar of the asset files only (no directory entries, as Talos writes
  it), sorted by path, mode 0644, uid/gid 0, no user/group names, mtime = the epoch; then
  gzip (pigz, no name, no time, level 1 like ggcr's BestSpeed default).
- Config (`application/vnd.oci.image.config.v1+json` content): architecture, os, `created` =
  the epoch (RFC 3339; upstream uses the build time, which makes digests unrepeatable),
  `rootfs.diff_ids` = the sha256 of the uncompressed layer, one history entry.
- Archive: `manifest.json` (`Config`, `RepoTags`, `Layers`), the config as `<sha256>.json`
  and the layer as `<sha256>.tar.gz`, in that order, ustar, owner 0:0, mtime = the epoch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workers.assembly.compress import Codec, compress_file
from workers.assembly.ustar import write_tar
from workers.hashing import sha256_file

INSTALL_ROOT = "usr/install"
LAYER_GZIP_LEVEL = 1


def rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def image_config(arch: str, diff_id: str, epoch: int) -> bytes:
    config: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "created": rfc3339(epoch),
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": rfc3339(epoch), "created_by": "image-factory: boot assets"}],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def make_installer_image(
    dest: Path,
    *,
    workdir: Path,
    arch: str,
    assets: Mapping[str, Path],
    repo_tag: str,
    epoch: int,
) -> Path:
    """Write the docker-archive `dest` with `assets` (file name → source) under
    `usr/install/<arch>/`."""
    layer_tar = write_tar(
        workdir / "layer.tar",
        {f"{INSTALL_ROOT}/{arch}/{name}": path for name, path in assets.items()},
        epoch,
        sort=True,
    )
    diff_id = sha256_file(layer_tar)
    layer_gz = compress_file(
        layer_tar, workdir / "layer.tar.gz", Codec.GZIP, level=LAYER_GZIP_LEVEL
    )
    layer_tar.unlink()
    layer_digest = sha256_file(layer_gz)
    config = workdir / "config.json"
    config.write_bytes(image_config(arch, diff_id, epoch))
    config_digest = sha256_file(config)
    manifest = workdir / "manifest.json"
    manifest.write_bytes(
        json.dumps(
            [
                {
                    "Config": f"{config_digest}.json",
                    "RepoTags": [repo_tag],
                    "Layers": [f"{layer_digest}.tar.gz"],
                }
            ],
            separators=(",", ":"),
        ).encode()
    )
    return write_tar(
        dest,
        {
            "manifest.json": manifest,
            f"{config_digest}.json": config,
            f"{layer_digest}.tar.gz": layer_gz,
        },
        epoch,
        sort=False,
    )
