"""A read-only OCI registry of installer images, built on demand from schematics.

Repositories `installer[-secureboot]` and `<platform>-installer[-secureboot]`, each under a
schematic ID; tags are release versions (`v1.0.0` or `1.0.0`) and `latest`. Pulling a tag
publishes it (`publish.ensure_published`): the installer asset of every built architecture
becomes an OCI image, one OCI index covers them, and a cosign signature of the index is
stored as tag `sha256-<hex>.sig` and as an OCI 1.1 referrer. Content lives in the shared
`blobs/sha256/<hex>` namespace; each repository records what it holds under
`registry/<image>/<schematic-id>/` (`content`).
"""
