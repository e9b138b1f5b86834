"""Plans and keys: a key changes exactly when an input that shapes that kind's bytes changes."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from schematics import parse_schematic, schematic_id
from tests.extensions.builders import file, hello_members, manifest, tar_bytes, write
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import add_extension
from workers.errors import InvalidRequest, NotFound
from workers.planning.plans import RECIPE_VERSION, SOURCE_BLOB, Plan, make_plan
from workers.planning.profiles import parse_profile
from workers.releases.stored import blob_key
from workers.settings import Settings
from workers.store import LocalStore

EPOCH = 1700000000
KINDS = (
    "kernel-amd64",
    "cmdline-metal-amd64",
    "initramfs-amd64.xz",
    "metal-amd64.iso",
    "metal-amd64.raw.xz",
)


def _extension(store: LocalStore, tmp_path: Path, name: str) -> None:
    members = hello_members()
    members[0] = file("manifest.yaml", manifest(name, "1.0.0"))
    add_extension(store, write(tmp_path / f"{name}.tar", tar_bytes(members)), "factory", EPOCH)


@pytest.fixture
def stocked(store: LocalStore, tmp_path: Path) -> LocalStore:
    save_fake_release(store, "v1.0.0", tmp_path / "releases")
    save_fake_release(store, "v1.1.0", tmp_path / "releases")
    for name in ("hello", "world"):
        _extension(store, tmp_path, name)
    return store


BASE = """
customization:
  extraKernelArgs: [console=ttyS0]
  meta:
    - key: 0xa
      value: net
  systemExtensions:
    officialExtensions: [factory/hello]
  kernelModules: [zram]
"""


def _plan(
    store: LocalStore, settings: Settings, path: str, text: str = BASE, version: str = "v1.0.0"
) -> Plan:
    schematic = parse_schematic(text.encode())
    return make_plan(
        store, schematic, schematic_id(schematic), version, parse_profile(path), settings
    )


def _keys(
    store: LocalStore, settings: Settings, text: str, version: str = "v1.0.0"
) -> dict[str, str]:
    return {path: _plan(store, settings, path, text, version).key for path in KINDS}


# Every change makes another schematic ID, hence another schematic extension: that alone
# changes initramfs/ISO/disk keys. The command line changes only with arguments or META.
WITH_SCHEMATIC_EXTENSION = {"initramfs-amd64.xz", "metal-amd64.iso", "metal-amd64.raw.xz"}
CHANGES = {
    "extraKernelArgs": (
        BASE.replace("[console=ttyS0]", "[console=ttyS0, quiet]"),
        WITH_SCHEMATIC_EXTENSION | {"cmdline-metal-amd64"},
    ),
    "meta": (
        BASE.replace("value: net", "value: other"),
        WITH_SCHEMATIC_EXTENSION | {"cmdline-metal-amd64"},
    ),
    "extensions": (
        BASE.replace("[factory/hello]", "[factory/hello, factory/world]"),
        WITH_SCHEMATIC_EXTENSION,
    ),
    "kernelModules": (BASE.replace("[zram]", "[zram, dummy]"), WITH_SCHEMATIC_EXTENSION),
    "bootloader": (BASE + "  bootloader: grub\n", WITH_SCHEMATIC_EXTENSION),
}


@pytest.mark.integration
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_key_changes_exactly_for_the_kinds_an_input_shapes(
    stocked: LocalStore, settings: Settings, change: str
) -> None:
    text, affected = CHANGES[change]
    before = _keys(stocked, settings, BASE)
    after = _keys(stocked, settings, text)
    assert {path for path in KINDS if before[path] != after[path]} == affected


@pytest.mark.integration
def test_kernel_args_reach_the_initramfs_only_through_the_schematic_extension(
    stocked: LocalStore, settings: Settings
) -> None:
    text = CHANGES["extraKernelArgs"][0]
    before = _plan(stocked, settings, "initramfs-amd64.xz").to_json()
    after = _plan(stocked, settings, "initramfs-amd64.xz", text).to_json()
    assert before["extensions"][:-1] == after["extensions"][:-1]
    assert before["extensions"][-1]["digest"] != after["extensions"][-1]["digest"]
    before["extensions"], after["extensions"] = [], []
    assert before == after


@pytest.mark.integration
def test_kernel_has_one_key_for_every_schematic(stocked: LocalStore, settings: Settings) -> None:
    keys = {
        _plan(stocked, settings, "kernel-amd64", text).key
        for text, _ in [*CHANGES.values(), (BASE, set())]
    }
    assert len(keys) == 1
    assert _plan(stocked, settings, "kernel-x86_64").key in keys


@pytest.mark.integration
def test_another_release_changes_every_key(stocked: LocalStore, settings: Settings) -> None:
    one = _keys(stocked, settings, BASE)
    other = _keys(stocked, settings, BASE, version="1.1.0")
    assert all(one[path] != other[path] for path in KINDS)


@pytest.mark.integration
def test_plan_contents(stocked: LocalStore, settings: Settings) -> None:
    plan = _plan(stocked, settings, "metal-amd64.raw.xz")
    doc = json.loads(plan.canonical_json())
    assert doc["recipe"] == RECIPE_VERSION
    assert doc["profile"]["compression"] == "xz"
    assert [e["name"] for e in doc["extensions"]] == ["factory/hello", "schematic"]
    schematic_ext = plan.extensions[-1]
    assert schematic_ext.source == SOURCE_BLOB
    assert stocked.exists(blob_key(schematic_ext.digest))
    assert doc["kernel_modules"] == ["zram"]
    assert doc["meta"] == [[10, "net"]]
    assert plan.canonical_json() == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    kernel = json.loads(_plan(stocked, settings, "kernel-amd64").canonical_json())
    assert set(kernel) == {"profile", "version", "release", "recipe"}


@pytest.mark.integration
def test_the_recipe_version_is_part_of_the_key(stocked: LocalStore, settings: Settings) -> None:
    plan = _plan(stocked, settings, "kernel-amd64")
    assert replace(plan, recipe=RECIPE_VERSION + 1).key != plan.key
    assert plan.with_path("kernel-x86_64").key == plan.key


@pytest.mark.integration
@pytest.mark.parametrize(
    ("text", "path", "error", "message"),
    [
        (
            BASE.replace("factory/hello", "factory/nope"),
            "initramfs-amd64.xz",
            InvalidRequest,
            'official extension "factory/nope" is not available for version v1.0.0',
        ),
        (
            BASE.replace("[zram]", "[no_such_module]"),
            "metal-amd64.iso",
            InvalidRequest,
            'kernel module "no_such_module" is not available for version v1.0.0',
        ),
        (
            BASE + "  diskImage:\n    sectorSize: 1024\n",
            "metal-amd64.raw",
            InvalidRequest,
            r"sectorSize: 1024 is not supported \(512 or 4096\)",
        ),
        (
            BASE + "  secureboot:\n    enrollKeys: always\n",
            "metal-amd64-secureboot.iso",
            InvalidRequest,
            'enrollKeys: unknown value "always"',
        ),
        (
            BASE + "  secureboot:\n    includeWellKnownCertificates: true\n",
            "metal-amd64-secureboot.raw",
            InvalidRequest,
            "IMAGE_FACTORY_SECUREBOOT_WELL_KNOWN_CERTS",
        ),
        (
            "overlay:\n  name: noboard\n  image: x\n",
            "metal-amd64.raw",
            InvalidRequest,
            'overlay "noboard" is not available for version v1.0.0',
        ),
        (BASE, "metal-arm64-uki.efi", NotFound, "version v1.0.0 is not available for arm64"),
        (BASE, "foo-amd64.iso", InvalidRequest, 'unknown platform "foo"'),
    ],
)
def test_refusals(
    stocked: LocalStore,
    settings: Settings,
    text: str,
    path: str,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        _plan(stocked, settings, path, text)


@pytest.mark.integration
def test_unknown_version_is_not_found(stocked: LocalStore, settings: Settings) -> None:
    with pytest.raises(NotFound, match=r"v9\.9\.9"):
        _plan(stocked, settings, "kernel-amd64", version="v9.9.9")


@pytest.mark.integration
def test_unknown_extension_does_not_matter_to_a_kernel(
    stocked: LocalStore, settings: Settings
) -> None:
    text = BASE.replace("factory/hello", "factory/nope").replace("[zram]", "[nope]")
    assert _plan(stocked, settings, "kernel-amd64", text).key
    assert _plan(stocked, settings, "cmdline-metal-amd64", text).key


@pytest.mark.parametrize(("chosen", "expected"), [("", "sd-boot"), ("sd-boot", "sd-boot")])
def test_arm64_boots_with_sd_boot(
    stocked: LocalStore, settings: Settings, tmp_path: Path, chosen: str, expected: str
) -> None:
    save_fake_release(stocked, "v1.0.0", tmp_path / "arm64", arch="arm64")
    text = f"customization:\n  bootloader: {chosen}\n" if chosen else "customization: {}\n"
    for path in ("metal-arm64.iso", "metal-arm64.raw.xz"):
        assert _plan(stocked, settings, path, text).bootloader == expected


@pytest.mark.parametrize("chosen", ["grub", "dual-boot"])
def test_arm64_refuses_grub(
    stocked: LocalStore, settings: Settings, tmp_path: Path, chosen: str
) -> None:
    save_fake_release(stocked, "v1.0.0", tmp_path / "arm64", arch="arm64")
    text = f"customization:\n  bootloader: {chosen}\n"
    message = f'customization.bootloader: "{chosen}" is not available for arm64'
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        _plan(stocked, settings, "metal-arm64.iso", text)
