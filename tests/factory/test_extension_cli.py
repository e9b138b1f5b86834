from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from factory.cli import main
from tests.extensions.builders import file, hello_members, manifest, tar_bytes, write, write_tree
from tests.workers.releases.fakes import save_fake_release
from workers.store import LocalStore


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    monkeypatch.setenv("IMAGE_FACTORY_DATA_DIR", str(tmp_path / "data"))
    store = LocalStore(tmp_path / "data" / "store")
    for version in ("v1.0.0", "v1.5.0"):
        save_fake_release(store, version, tmp_path / "releases")
    return store


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_prints_a_summary_and_stores_nothing(store: LocalStore, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "hello", hello_members())
    code, out, _ = invoke("extension", "validate", str(source))
    assert code == 0
    assert "name: hello\nversion: 1.0.0\n" in out
    assert "digest: sha256:" in out
    assert list(store.list("extensions/")) == []


def test_validate_refuses_with_exit_2_and_the_reason(store: LocalStore, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.tar", tar_bytes(hello_members([file("rootfs/boot/x")])))
    code, out, err = invoke("extension", "validate", str(bad))
    assert code == 2
    assert out == ""
    assert "rootfs/boot/x: /boot/x is outside the allowed paths" in err


def test_add_then_list(store: LocalStore, tmp_path: Path) -> None:
    members = hello_members()
    members[0] = file("manifest.yaml", manifest("legacy", "1.0.0", "< v1.5.0"))
    legacy = write(tmp_path / "legacy.tar", tar_bytes(members))
    code, out, _ = invoke("extension", "add", str(legacy))
    assert code == 0
    assert out.startswith("factory/legacy 1.0.0 sha256:")
    code, out, _ = invoke("extension", "add", "--namespace", "acme", str(tmp_path / "legacy.tar"))
    assert code == 2  # same content, other name
    hello = write_tree(tmp_path / "hello", hello_members())
    assert invoke("extension", "add", "--namespace", "acme", str(hello))[0] == 0

    code, out, _ = invoke("extension", "list")
    assert [line.split()[0] for line in out.splitlines()] == ["acme/hello", "factory/legacy"]
    code, out, _ = invoke("extension", "list", "--version", "v1.5.0")
    assert [line.split()[0] for line in out.splitlines()] == ["acme/hello"]
    code, _, err = invoke("extension", "list", "--version", "v7.0.0")
    assert code == 2
    assert "v7.0.0 is not available" in err


def test_add_refuses_hostile_input(store: LocalStore, tmp_path: Path) -> None:
    bomb = write(tmp_path / "garbage", b"\x1f\x8b" + b"\x00" * 100)
    code, _, err = invoke("extension", "add", str(bomb))
    assert code == 2
    assert "garbage: corrupt gzip data" in err
    assert list(store.list("extensions/")) == []


def test_validate_shows_the_digest_add_stores(store: LocalStore, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "hello", hello_members())
    _, validated, _ = invoke("extension", "validate", str(source))
    _, added, _ = invoke("extension", "add", str(source))
    digest = added.split()[2]
    assert f"digest: {digest}\n" in validated


def test_withdraw_then_delete_as_the_operator(store: LocalStore, tmp_path: Path) -> None:
    hello = write_tree(tmp_path / "hello", hello_members())
    assert invoke("extension", "add", "--namespace", "acme", str(hello))[0] == 0

    code, out, _ = invoke("extension", "withdraw", "acme/hello", "1.0.0")
    assert code == 0
    assert out.startswith("withdrawn acme/hello 1.0.0 sha256:")
    assert invoke("extension", "list", "--version", "v1.5.0")[1] == ""  # no longer offered

    code, out, _ = invoke("extension", "delete", "acme/hello", "1.0.0")
    assert code == 0
    assert out.startswith("deleted acme/hello 1.0.0 sha256:")
    code, _, err = invoke("extension", "delete", "acme/hello", "1.0.0")
    assert code != 0
    assert "no extension acme/hello 1.0.0 is stored" in err
