from __future__ import annotations

import pytest

from workers.errors import InvalidRequest
from workers.releases.versions import normalize_version, sort_versions, validate_arch


@pytest.mark.parametrize(("given", "expected"), [("1.0.0", "v1.0.0"), ("v1.2.3", "v1.2.3")])
def test_versions_are_normalized_with_a_v_prefix(given: str, expected: str) -> None:
    assert normalize_version(given) == expected


@pytest.mark.parametrize("bad", ["", "v1", "1.0", "latest", "v01.0.0", "v1.0.0/../x", "vv1.0.0"])
def test_malformed_versions_are_rejected_with_the_upstream_wording(bad: str) -> None:
    with pytest.raises(InvalidRequest, match=f'^invalid version "{bad}"$'):
        normalize_version(bad)


def test_versions_sort_by_semver_precedence_not_text() -> None:
    given = [
        "v1.10.0",
        "v1.2.0",
        "v1.10.0-alpha.1",
        "v1.10.0-alpha.10",
        "v1.10.0-alpha.2",
        "v0.9.9",
    ]
    assert sort_versions(given) == [
        "v0.9.9",
        "v1.2.0",
        "v1.10.0-alpha.1",
        "v1.10.0-alpha.2",
        "v1.10.0-alpha.10",
        "v1.10.0",
    ]


def test_unknown_arch_is_rejected() -> None:
    assert validate_arch("arm64") == "arm64"
    with pytest.raises(InvalidRequest, match='invalid arch "riscv64"'):
        validate_arch("riscv64")
