"""The private apt sources: the host's Debian mirrors with other components."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.errors import Unavailable
from workers.releases.debian import foreign_apt, private_sources


def test_deb822_and_one_line_sources_keep_their_mirror(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# a comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n"
        "deb-src http://mirror.example/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://other.example/repo\nSuites: stable\nComponents: extras\n"
    )
    text = private_sources(("main", "non-free-firmware"), tmp_path)
    assert text == (
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
        "Components: main non-free-firmware\nSigned-By: /k.gpg\n\n"
        "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main non-free-firmware\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def test_no_debian_mirror_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(Unavailable, match="no Debian mirror"):
        private_sources(("main",), tmp_path)


def test_a_relative_state_directory_reaches_apt_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apt resolves relative `Dir::` paths against `/`: `data/` (the README's default data
    directory) must reach it absolute (found by the two-command check from a fresh clone)."""
    monkeypatch.chdir(tmp_path)
    lists = tmp_path / "data/apt-arm64/state/lists"
    lists.mkdir(parents=True)
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-arm64_Packages").touch()
    apt = foreign_apt("arm64", Path("data/apt-arm64"))
    paths = [option.split("=", 1)[1] for option in apt.options if option.startswith("Dir::")]
    assert paths
    assert all(path.startswith(str(tmp_path / "data/apt-arm64")) for path in paths), paths
