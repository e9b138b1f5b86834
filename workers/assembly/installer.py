"""Installer images: an OCI image with the boot assets under `usr/install/<arch>/`, written as
a docker-archive tar (`docker load`, `skopeo copy docker-archive:...`), byte-reproducible.

As Talos' installer output (talos-formats §8.2): the release's installer base layers, reused
byte for byte (gzip or plain tar as shipped), then the artifacts layer; the config keeps the
base's `config` section (entrypoint `/usr/bin/installer`, env, labels) and lists every
layer's diff_id. A release without an installer base gives the artifacts layer alone (a
source of boot assets, not a runnable installer), with the bytes it always had.

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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from extensions.compression import GZIP_MAGIC
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


def composed_config(arch: str, base_config: Mapping[str, Any], diff_id: str, epoch: int) -> bytes:
    """The config of base + artifacts layer: the base's container config, both layer lists."""
    base_ids = list(base_config.get("rootfs", {}).get("diff_ids", []))
    history = [
        {"created": rfc3339(epoch), "created_by": "image-factory: installer base"} for _ in base_ids
    ]
    history.append({"created": rfc3339(epoch), "created_by": "image-factory: boot assets"})
    config: dict[str, Any] = {
        "architecture": arch,
        "os": "linux",
        "created": rfc3339(epoch),
        "config": dict(base_config.get("config") or {}),
        "rootfs": {"type": "layers", "diff_ids": [*base_ids, f"sha256:{diff_id}"]},
        "history": history,
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
    base_config: Mapping[str, Any] | None = None,
    base_layers: Sequence[Path] = (),
) -> Path:
    """Write the docker-archive `dest` with `assets` (file name → source) under
    `usr/install/<arch>/`, on top of the installer base (`base_config` + `base_layers`,
    bottom first) when given."""
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
    if base_config is None:
        config.write_bytes(image_config(arch, diff_id, epoch))
    else:
        config.write_bytes(composed_config(arch, base_config, diff_id, epoch))
    config_digest = sha256_file(config)
    base_members = {}
    for layer in base_layers:
        with layer.open("rb") as f:
            suffix = ".tar.gz" if f.read(2) == GZIP_MAGIC else ".tar"
        base_members[f"{sha256_file(layer)}{suffix}"] = layer
    manifest = workdir / "manifest.json"
    manifest.write_bytes(
        json.dumps(
            [
                {
                    "Config": f"{config_digest}.json",
                    "RepoTags": [repo_tag],
                    "Layers": [*base_members, f"{layer_digest}.tar.gz"],
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
            **base_members,
            f"{layer_digest}.tar.gz": layer_gz,
        },
        epoch,
        sort=False,
    )
