"""The bundle format both sides agree on.

A bundle is an uncompressed tar (assets are compressed already), written in this order:

- `bundle.json`: `format` (1), `schematics` (IDs), `assets` (`schematic`, `version`, `path`,
  `key` = plan key, `sha256`), `objects` (store key → `sha256`, `size`, `content_type`),
  `keys` (file names below);
- `keys/signing-key.pub` (the PKIX public key every asset's `.sigstore.json` verifies with)
  and `keys/secureboot-cert.pem` (the certificate SecureBoot assets are signed with): public
  halves only, never a private key;
- `objects/<store key>`: every object, byte for byte as the source store holds it.

Every member is a regular file, mode 0644, mtime = the factory's SOURCE_DATE_EPOCH, owner
0/0, so one selection exported twice gives the same bytes.
"""

from __future__ import annotations

BUNDLE_FORMAT = 1
INDEX_NAME = "bundle.json"
OBJECTS_DIR = "objects/"
SIGNING_KEY_NAME = "keys/signing-key.pub"
SECUREBOOT_CERT_NAME = "keys/secureboot-cert.pem"

# Catalog-wide state copied whole: releases and what describes them (client binaries
# included), extension and overlay records and their tars, withdrawals. (`extensions/stamp`
# is per store: the importer refreshes its own.) Tokens, audit, usage, deployment keys and
# build caches stay behind.
CATALOG_PREFIXES = (
    "releases/",
    "module-indexes/",
    "extensions/",
    "overlays/",
    "withdrawn/",
    "talosctl/",
)
