"""Release test fixtures; `reference_release` itself lives in tests/reference_release.py."""

from tests.reference_release import reference_release

__all__ = ["reference_release"]
