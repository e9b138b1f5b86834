"""Installer images under a `sigstoreSigned` policy, as a node checking signatures pulls
them (`tests.factory.podman_pull`): podman finds the signature of the platform manifest it
pulls (before every platform manifest was signed it answered "A signature was required,
but no signature exists"), and containers/image's check of that signature accepts the
factory's key and refuses another one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factory.live import LiveFactory
from tests.factory.podman_pull import check_podman_policy

pytestmark = pytest.mark.integration

SCHEMATIC = b"customization:\n  extraKernelArgs: [factory.podman=1]\n"


@pytest.fixture(scope="module")
def sid(live_factory: LiveFactory) -> str:
    return live_factory.create_schematic(SCHEMATIC)


def test_podman_pulls_the_installer_under_a_sigstore_policy(
    live_factory: LiveFactory, sid: str, tmp_path: Path
) -> None:
    check_podman_policy(live_factory.url, f"installer/{sid}", "v1.0.0", tmp_path)
