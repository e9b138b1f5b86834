"""The schematic: upstream's fields in upstream order, plus our `customization.kernelModules`.

Field order here *is* the order of the canonical YAML (go-yaml writes struct fields in declaration
order, not sorted), so it must follow upstream's Go structs exactly. Each field's metadata names
its YAML key, whether it is left out when empty (`omitempty`), and for unsigned integers their
width. `GO_TYPE` is the Go type name that upstream's error messages use.

Our one addition, `kernelModules`, comes last in `customization` and is left out when empty, so a
schematic without it has exactly the canonical bytes, and therefore the ID, that upstream gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar

from schematics.scalars import Timestamp

OptionValue = None | bool | int | float | str | Timestamp | list[Any] | dict[str, Any]
"""A value inside `overlay.options`: what go-yaml decodes into `any` (lists and maps nest)."""


def _yaml(key: str, *, omitempty: bool = True, uint_bits: int = 0) -> dict[str, Any]:
    return {"yaml": key, "omitempty": omitempty, "uint_bits": uint_bits}


class Bootloader(StrEnum):
    """`customization.bootloader`; `none` (the default) is left out of the canonical form."""

    NONE = "none"
    DUAL_BOOT = "dual-boot"
    SD_BOOT = "sd-boot"
    GRUB = "grub"


@dataclass(frozen=True)
class Overlay:
    GO_TYPE: ClassVar[str] = "schematic.Overlay"

    image: str = field(default="", metadata=_yaml("image", omitempty=False))
    name: str = field(default="", metadata=_yaml("name", omitempty=False))
    # Not part of the hash (maps are unhashable); equality still compares it.
    options: Mapping[str, OptionValue] = field(
        default_factory=lambda: MappingProxyType({}), metadata=_yaml("options"), hash=False
    )


@dataclass(frozen=True)
class MetaValue:
    GO_TYPE: ClassVar[str] = "schematic.MetaValue"

    key: int = field(default=0, metadata=_yaml("key", omitempty=False, uint_bits=8))
    value: str = field(default="", metadata=_yaml("value", omitempty=False))


@dataclass(frozen=True)
class SystemExtensions:
    GO_TYPE: ClassVar[str] = "schematic.SystemExtensions"

    official_extensions: tuple[str, ...] = field(default=(), metadata=_yaml("officialExtensions"))


@dataclass(frozen=True)
class SecureBoot:
    GO_TYPE: ClassVar[str] = "schematic.SecureBootCustomization"

    enroll_keys: str = field(default="", metadata=_yaml("enrollKeys"))
    include_well_known_certificates: bool = field(
        default=False, metadata=_yaml("includeWellKnownCertificates")
    )


@dataclass(frozen=True)
class DiskImage:
    GO_TYPE: ClassVar[str] = "schematic.DiskImageCustomization"

    sector_size: int = field(default=0, metadata=_yaml("sectorSize", uint_bits=64))


@dataclass(frozen=True)
class Customization:
    GO_TYPE: ClassVar[str] = "schematic.Customization"

    embedded_machine_configuration: str = field(
        default="", metadata=_yaml("embeddedMachineConfiguration")
    )
    extra_kernel_args: tuple[str, ...] = field(default=(), metadata=_yaml("extraKernelArgs"))
    meta: tuple[MetaValue, ...] = field(default=(), metadata=_yaml("meta"))
    system_extensions: SystemExtensions = field(
        default=SystemExtensions(), metadata=_yaml("systemExtensions")
    )
    bootloader: Bootloader = field(default=Bootloader.NONE, metadata=_yaml("bootloader"))
    secureboot: SecureBoot = field(default=SecureBoot(), metadata=_yaml("secureboot"))
    disk_image: DiskImage = field(default=DiskImage(), metadata=_yaml("diskImage"))
    # Ours, not upstream's: must stay last and omitempty (see the module docstring).
    kernel_modules: tuple[str, ...] = field(default=(), metadata=_yaml("kernelModules"))


@dataclass(frozen=True)
class Schematic:
    """A parsed schematic. Build one with `parse_schematic`; its ID is `schematic_id(it)`."""

    GO_TYPE: ClassVar[str] = "schematic.Schematic"

    owner: str = field(default="", metadata=_yaml("owner"))
    overlay: Overlay = field(default=Overlay(), metadata=_yaml("overlay"))
    customization: Customization = field(
        default=Customization(), metadata=_yaml("customization", omitempty=False)
    )
