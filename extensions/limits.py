"""Resource limits applied while reading untrusted extension and overlay sources."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    """Bounds on what one source may expand to; every check counts real bytes, not headers."""

    # Bytes produced by decompression and tar parsing, per stage (outer archive, image layers).
    max_unpacked_bytes: int = 2 * GiB
    # Tar members or directory entries, per stage.
    max_entries: int = 100_000
    # Decompressed/compressed ratio; only enforced past `ratio_floor_bytes` of output, so
    # tiny, highly compressible inputs (an empty file, a manifest) are fine.
    max_ratio: int = 100
    ratio_floor_bytes: int = 8 * MiB
    # Sizes of metadata that is read into memory.
    max_manifest_bytes: int = 1 * MiB
    max_header_bytes: int = 1 * MiB
    max_json_bytes: int = 4 * MiB
    # Layers of one OCI image (Docker's own limit is 127).
    max_layers: int = 128
    max_path_bytes: int = 4096
    max_component_bytes: int = 255


DEFAULT_LIMITS = Limits()
