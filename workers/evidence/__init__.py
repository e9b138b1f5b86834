"""Supply-chain evidence for every built asset: what is inside it (an SPDX SBOM), where it came
from (an in-toto statement with a SLSA provenance predicate, served in a DSSE envelope signed
with the factory's key) and how a user checks both against the factory's public key.

Both documents are derived from the build's plan and the very inputs the build fetched (by
digest) from the store, never from a hand-written list, and are byte-reproducible: the same
plan and release give the same bytes (fixed creation time from the release's
`source_date_epoch`, identifiers derived from the plan key, deterministic ECDSA).
"""
