"""The web form's state: every choice lives in the query string, nothing on the server.

As upstream's wizard (image-factory-api §6), a step is shown while its field is empty, so any
URL is a bookmark of the choices so far: `?target=metal&version=v1.0.0&arch=amd64&...`.
Steps, in order: target → version → platform (cloud) | board (sbc) → arch (+ Secure Boot) →
extensions → kernel modules → kernel args / overlay options / bootloader → final.
`extensions=-` and `modules=-` mark "step done, nothing chosen"; `cmdline-set=true` marks the
kernel-args step done. `schematic-id=<id>` pins an existing schematic: its content is not
asked again, only which assets to show; `Choices.edit_copy` turns it back into step values.

`Choices` parses and renders that query; which values are valid for a release is checked by
the UI against the store (`factory.ui`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from schematics import Bootloader, DiskImage, Schematic, SecureBoot, canonical_bytes
from workers.planning.profiles import PLATFORMS

TARGETS = {"metal": "Bare-metal machine", "cloud": "Cloud server", "sbc": "Single-board computer"}
BOOTLOADERS = {
    "auto": "Automatic (the factory's default)",
    "sd-boot": "systemd-boot (UEFI only)",
    "grub": "GRUB (BIOS and UEFI)",
    "dual-boot": "Both (GRUB for BIOS, systemd-boot for UEFI)",
}
OPTIONS_FIRST_LINE = 3  # in `Choices.schematic_text`, after "overlay:" and "  options:"
_LINE = re.compile(r"\bline (\d+)")
# One kernel argument: runs of non-space characters and double-quoted parts, so
# `foo="a b"` stays one argument, quotes included, as the kernel reads it.
_KERNEL_ARG = re.compile(r'(?:[^\s"]+|"[^"]*"?)+')
NOTHING = "-"  # "this list step is done and nothing was chosen"
STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "target": ("target",),
    "version": ("version",),
    "platform": ("platform",),
    "board": ("board",),
    "arch": ("arch", "secureboot"),
    "extensions": ("extensions",),
    "modules": ("modules",),
    "cmdline": ("cmdline", "overlay-options", "bootloader", "cmdline-set"),
}
STEPS = (*STEP_FIELDS, "final")
STEP_TITLES = {
    "target": "Hardware type",
    "version": "Release version",
    "platform": "Cloud platform",
    "board": "Board",
    "arch": "Architecture",
    "extensions": "System extensions",
    "modules": "Kernel modules",
    "cmdline": "Kernel arguments and boot",
    "final": "Your image",
}


@dataclass(frozen=True)
class Choices:
    target: str = ""
    version: str = ""
    platform: str = ""
    board: str = ""
    arch: str = ""
    secureboot: bool = False
    extensions: tuple[str, ...] | None = None  # None: the step is not done yet
    modules: tuple[str, ...] | None = None
    cmdline: str = ""
    overlay_options: str = ""
    bootloader: str = "auto"
    cmdline_set: bool = False
    schematic_id: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> Choices:
        """Read the choices from a query (`name → values`); unknown names are ignored."""

        def one(name: str) -> str:
            values = query.get(name) or [""]
            return values[-1].strip()

        def many(name: str) -> tuple[str, ...] | None:
            if name not in query:
                return None
            names = {v.strip() for value in query[name] for v in value.split(",")}
            return tuple(sorted(names - {"", NOTHING}))

        return cls(
            target=one("target"),
            version=one("version"),
            platform=one("platform"),
            board=one("board"),
            arch=one("arch"),
            secureboot=one("secureboot") == "true",
            extensions=many("extensions"),
            modules=many("modules"),
            cmdline=" ".join(split_kernel_args(one("cmdline"))),
            overlay_options=(query.get("overlay-options") or [""])[-1].replace("\r\n", "\n"),
            bootloader=one("bootloader") or "auto",
            cmdline_set=one("cmdline-set") == "true",
            schematic_id=one("schematic-id"),
        )

    def pin(self, schematic: Schematic) -> Choices:
        """Take what the pinned schematic decides: a board overlay makes the target `sbc`."""
        if schematic.overlay.name:
            return replace(self, target="sbc", board=schematic.overlay.name)
        if self.target == "sbc":
            return replace(self, target="", board="")
        return self

    def edit_copy(self, schematic: Schematic) -> Choices | None:
        """These choices unpinned, with every step filled in from `schematic`: the wizard
        then makes the same schematic again, or, once a step is changed, a copy that differs
        in that step only (lists come back sorted). None when `schematic` holds something no
        step asks for (META values, embedded configuration, Secure Boot or disk options,
        kernel arguments with spaces outside quotes). Whether an overlay's image is its board's
        own is for the caller to check."""
        custom = schematic.customization
        if (
            custom.meta
            or custom.embedded_machine_configuration
            or custom.secureboot != SecureBoot()
            or custom.disk_image != DiskImage()
            or any(split_kernel_args(arg) != [arg] for arg in custom.extra_kernel_args)
        ):
            return None
        copy = replace(
            self,
            schematic_id="",
            extensions=tuple(sorted(set(custom.system_extensions.official_extensions))),
            modules=tuple(sorted(set(custom.kernel_modules))),
            cmdline=" ".join(custom.extra_kernel_args),
            bootloader="auto" if custom.bootloader is Bootloader.NONE else str(custom.bootloader),
            cmdline_set=True,
        )
        if not schematic.overlay.name:
            return copy
        return replace(
            copy,
            target="sbc",
            board=schematic.overlay.name,
            overlay_options=_options_text(schematic),
        )

    @property
    def pinned(self) -> bool:
        return bool(self.schematic_id)

    @property
    def platform_name(self) -> str:
        """The asset platform: boards and bare metal boot `metal` assets."""
        return self.platform if self.target == "cloud" else "metal"

    @property
    def secureboot_possible(self) -> bool:
        if self.target == "metal":
            return True
        return (
            self.target == "cloud"
            and self.platform in PLATFORMS
            and (PLATFORMS[self.platform].secureboot)
        )

    def query(self, *, without: Sequence[str] = ()) -> list[tuple[str, str]]:
        """The choices as (name, value) pairs in step order; fields of other targets and
        empty fields are left out, as are the names in `without`."""
        pairs: list[tuple[str, str]] = []
        if self.schematic_id:
            pairs.append(("schematic-id", self.schematic_id))
        pairs += [("target", self.target), ("version", self.version)]
        if self.target == "cloud":
            pairs.append(("platform", self.platform))
        if self.target == "sbc" and not self.pinned:
            pairs.append(("board", self.board))
        pairs.append(("arch", self.arch))
        if self.secureboot and self.secureboot_possible:
            pairs.append(("secureboot", "true"))
        if not self.pinned:
            pairs += _list_pairs("extensions", self.extensions)
            pairs += _list_pairs("modules", self.modules)
            if self.cmdline_set:
                pairs.append(("cmdline", self.cmdline))
                if self.target == "sbc":
                    pairs.append(("overlay-options", self.overlay_options))
                if self.bootloader != "auto":
                    pairs.append(("bootloader", self.bootloader))
                pairs.append(("cmdline-set", "true"))
        return [(name, value) for name, value in pairs if value and name not in without]

    def steps(self) -> list[str]:
        """The steps that apply to these choices, in order."""
        steps = ["target", "version"]
        if self.target == "cloud":
            steps.append("platform")
        if self.target == "sbc" and not self.pinned:
            steps.append("board")
        steps.append("arch")
        if not self.pinned:
            steps += ["extensions", "modules", "cmdline"]
        return [*steps, "final"]

    def first_open_step(self) -> str:
        """The first step whose field is still empty (the final page when there is none)."""
        done = {
            "target": bool(self.target),
            "version": bool(self.version),
            "platform": bool(self.platform),
            "board": bool(self.board),
            "arch": bool(self.arch),
            "extensions": self.extensions is not None,
            "modules": self.modules is not None,
            "cmdline": self.cmdline_set,
        }
        return next((step for step in self.steps() if not done.get(step, False)), "final")

    def step_after(self, step: str) -> str:
        steps = self.steps()
        following = steps[steps.index(step) + 1] if step in steps[:-1] else "final"
        # Never skip a step that is still open before the one that follows.
        first_open = self.first_open_step()
        return first_open if steps.index(first_open) < steps.index(following) else following

    def step_before(self, step: str) -> str | None:
        steps = self.steps()
        if step not in steps or steps.index(step) == 0:
            return None
        return steps[steps.index(step) - 1]

    def schematic_text(self, overlay_image: str) -> bytes:
        """The schematic these choices describe, as YAML for the strict parser.

        The overlay options go in as the YAML text the user wrote (go-yaml semantics: `yes`
        stays a string), starting at line `OPTIONS_FIRST_LINE`; everything else is JSON,
        which is YAML too.
        """
        customization: dict[str, Any] = {}
        if self.cmdline:
            customization["extraKernelArgs"] = split_kernel_args(self.cmdline)
        if self.extensions:
            customization["systemExtensions"] = {"officialExtensions": list(self.extensions)}
        if self.bootloader != "auto":
            customization["bootloader"] = self.bootloader
        if self.modules:
            customization["kernelModules"] = list(self.modules)
        lines = []
        if self.target == "sbc":
            lines.append("overlay:")
            if self.overlay_options.strip():
                lines.append("  options:")
                lines += ["    " + line for line in self.overlay_options.splitlines()]
            lines.append(f"  image: {json.dumps(overlay_image)}")
            lines.append(f"  name: {json.dumps(self.board)}")
        lines.append(f"customization: {json.dumps(customization)}")
        return ("\n".join(lines) + "\n").encode()


def split_kernel_args(text: str) -> list[str]:
    """The arguments of a command line typed by a user: split at spaces outside quotes."""
    return _KERNEL_ARG.findall(text)


def _options_text(schematic: Schematic) -> str:
    """`overlay.options` as the YAML a user would type into the options field: its block in
    the canonical YAML (4-space steps, under `overlay:` and `options:`), dedented."""
    lines = canonical_bytes(schematic).decode().splitlines()
    if "    options:" not in lines:
        return ""
    block = []
    for line in lines[lines.index("    options:") + 1 :]:
        if line and not line.startswith(" " * 8):
            break
        block.append(line[8:])
    return "\n".join(block)


def options_message(message: str) -> str:
    """A parser message about the generated schematic, with line numbers counted in the
    overlay options text the user wrote."""

    def shift(match: re.Match[str]) -> str:
        return f"line {max(1, int(match.group(1)) - OPTIONS_FIRST_LINE + 1)}"

    return _LINE.sub(shift, message)


def _list_pairs(name: str, values: tuple[str, ...] | None) -> list[tuple[str, str]]:
    if values is None:
        return []
    return [(name, value) for value in values] or [(name, NOTHING)]
