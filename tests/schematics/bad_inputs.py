"""Malformed, hostile and mistyped schematics, each with the words its error message must contain.

Shared by the parser tests and the HTTP tests (which must answer 4xx with the same message and
store nothing). Inputs here stay under the API's default 64 KiB limit so that the parser, not the
size check, is what rejects them over HTTP.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class BadInput:
    name: str
    data: bytes
    fragments: tuple[str, ...]


def _garbage() -> bytes:
    rng = random.Random(20240601)
    return b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(4096))


def _billion_laughs() -> bytes:
    lines = ['    l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"    l{level}: &l{level} [{refs}]")
    return ("overlay:\n  options:\n" + "\n".join(lines) + "\n").encode()


def _wrong_type(path: str, snippet: str, *fragments: str) -> BadInput:
    return BadInput(f"wrong type {path}", snippet.encode(), (*fragments, path))


WRONG_TYPES = [
    _wrong_type("owner", "owner: [me]\n", "cannot construct !!seq into string"),
    _wrong_type("overlay", "overlay: 5\n", "cannot construct !!int `5` into schematic.Overlay"),
    _wrong_type(
        "overlay.image", "overlay:\n  image: {a: b}\n", "cannot construct !!map into string"
    ),
    _wrong_type("overlay.name", "overlay:\n  name: [x]\n", "cannot construct !!seq into string"),
    _wrong_type(
        "overlay.options",
        "overlay:\n  options: [1]\n",
        "cannot construct !!seq into map[string]interface {}",
    ),
    _wrong_type(
        "customization",
        "customization: x\n",
        "cannot construct !!str `x` into schematic.Customization",
    ),
    _wrong_type(
        "customization.embeddedMachineConfiguration",
        "customization:\n  embeddedMachineConfiguration: [a]\n",
        "cannot construct !!seq into string",
    ),
    _wrong_type(
        "customization.extraKernelArgs",
        "customization:\n  extraKernelArgs: noapic\n",
        "cannot construct !!str `noapic` into []string",
    ),
    _wrong_type(
        "customization.extraKernelArgs[1]",
        "customization:\n  extraKernelArgs: [a, [b]]\n",
        "cannot construct !!seq into string",
    ),
    _wrong_type(
        "customization.meta",
        "customization:\n  meta: {key: 1}\n",
        "cannot construct !!map into []schematic.MetaValue",
    ),
    _wrong_type(
        "customization.meta[0]",
        "customization:\n  meta: [5]\n",
        "cannot construct !!int `5` into schematic.MetaValue",
    ),
    _wrong_type(
        "customization.meta[0].key",
        "customization:\n  meta: [{key: x, value: y}]\n",
        "cannot construct !!str `x` into uint8",
    ),
    _wrong_type(
        "customization.meta[0].value",
        "customization:\n  meta: [{key: 1, value: [y]}]\n",
        "cannot construct !!seq into string",
    ),
    _wrong_type(
        "customization.systemExtensions",
        "customization:\n  systemExtensions: [a]\n",
        "cannot construct !!seq into schematic.SystemExtensions",
    ),
    _wrong_type(
        "customization.systemExtensions.officialExtensions",
        "customization:\n  systemExtensions:\n    officialExtensions: siderolabs/gvisor\n",
        "cannot construct !!str `siderol...` into []string",
    ),
    _wrong_type(
        "customization.bootloader",
        "customization:\n  bootloader: [grub]\n",
        "cannot construct !!seq into imageropts.BootloaderKind",
    ),
    _wrong_type(
        "customization.secureboot",
        "customization:\n  secureboot: true\n",
        "cannot construct !!bool `true` into schematic.SecureBootCustomization",
    ),
    _wrong_type(
        "customization.secureboot.enrollKeys",
        "customization:\n  secureboot:\n    enrollKeys: {a: 1}\n",
        "cannot construct !!map into string",
    ),
    _wrong_type(
        "customization.secureboot.includeWellKnownCertificates",
        "customization:\n  secureboot:\n    includeWellKnownCertificates: 1\n",
        "cannot construct !!int `1` into bool",
    ),
    _wrong_type(
        "customization.secureboot.includeWellKnownCertificates",
        'customization:\n  secureboot:\n    includeWellKnownCertificates: "true"\n',
        "cannot construct !!str `true` into bool",
    ),
    _wrong_type(
        "customization.diskImage",
        "customization:\n  diskImage: 4096\n",
        "cannot construct !!int `4096` into schematic.DiskImageCustomization",
    ),
    _wrong_type(
        "customization.diskImage.sectorSize",
        "customization:\n  diskImage:\n    sectorSize: big\n",
        "cannot construct !!str `big` into uint",
    ),
    _wrong_type(
        "customization.diskImage.sectorSize",
        "customization:\n  diskImage:\n    sectorSize: -1\n",
        "line 3: cannot construct !!int `-1` into uint",
    ),
    _wrong_type(
        "customization.diskImage.sectorSize",
        "customization:\n  diskImage:\n    sectorSize: true\n",
        "cannot construct !!bool `true` into uint",
    ),
    _wrong_type(
        "customization.kernelModules",
        "customization:\n  kernelModules: zfs\n",
        "cannot construct !!str `zfs` into []string",
    ),
]

DUPLICATE_KEYS = [
    BadInput(
        "duplicate top-level key",
        b"customization: {}\ncustomization: {}\n",
        ('line 2: mapping key "customization" already defined at line 1',),
    ),
    BadInput(
        "duplicate key in overlay",
        b"overlay:\n  name: a\n  name: b\n",
        ('line 3: mapping key "name" already defined at line 2', "overlay"),
    ),
    BadInput(
        "duplicate key in overlay.options",
        b"overlay:\n  options:\n    a: 1\n    'a': 2\n",
        ('mapping key "a" already defined at line 3', "overlay.options"),
    ),
    BadInput(
        "duplicate key nested in overlay.options",
        b"overlay:\n  options:\n    n: {x: 1, x: 2}\n",
        ('mapping key "x" already defined at line 3', "overlay.options.n"),
    ),
    BadInput(
        "duplicate key in customization",
        b"customization:\n  extraKernelArgs: [a]\n  extraKernelArgs: [b]\n",
        ('mapping key "extraKernelArgs" already defined at line 2', "customization"),
    ),
    BadInput(
        "duplicate key in a meta item",
        b"customization:\n  meta:\n    - key: 1\n      key: 2\n",
        ('line 4: mapping key "key" already defined at line 3', "customization.meta[0]"),
    ),
    BadInput(
        "duplicate key in systemExtensions",
        b"customization:\n  systemExtensions: {officialExtensions: [], officialExtensions: []}\n",
        ('mapping key "officialExtensions" already defined', "customization.systemExtensions"),
    ),
    BadInput(
        "duplicate key in secureboot",
        b'{"customization": {"secureboot": {"enrollKeys": "off", "enrollKeys": "force"}}}',
        ('mapping key "enrollKeys" already defined', "customization.secureboot"),
    ),
    BadInput(
        "duplicate key in diskImage",
        b"customization:\n  diskImage:\n    sectorSize: 512\n    sectorSize: 4096\n",
        ('mapping key "sectorSize" already defined at line 3', "customization.diskImage"),
    ),
]

UNKNOWN_KEYS = [
    BadInput(
        "unknown key in overlay",
        b"overlay:\n  version: 1\n",
        ("line 2: field version not found in type schematic.Overlay", "overlay.version"),
    ),
    BadInput(
        "unknown key in customization",
        b"customization:\n  extensions: [a]\n",
        ("field extensions not found in type schematic.Customization", "customization.extensions"),
    ),
    BadInput(
        "unknown key in meta item",
        b"customization:\n  meta: [{key: 1, val: x}]\n",
        ("field val not found in type schematic.MetaValue", "customization.meta[0].val"),
    ),
    BadInput(
        "unknown key in systemExtensions",
        b"customization:\n  systemExtensions:\n    extraExtensions: [a]\n",
        ("field extraExtensions not found in type schematic.SystemExtensions",),
    ),
    BadInput(
        "unknown key in secureboot",
        b"customization:\n  secureboot:\n    enroll: true\n",
        ("line 3: field enroll not found in type schematic.SecureBootCustomization",),
    ),
    BadInput(
        "unknown key in diskImage",
        b"customization:\n  diskImage:\n    blockSize: 512\n",
        ("field blockSize not found in type schematic.DiskImageCustomization",),
    ),
    BadInput(
        "key in the wrong case",
        b"Customization: {}\n",
        ("line 1: field Customization not found in type schematic.Schematic",),
    ),
]

RANGES_AND_ENUMS = [
    BadInput(
        "meta key 256",
        b"customization:\n  meta:\n    - key: 256\n      value: x\n",
        ("line 3: cannot construct !!int `256` into uint8", "customization.meta[0].key"),
    ),
    BadInput(
        "meta key -1",
        b"customization:\n  meta:\n    - key: -1\n      value: x\n",
        ("cannot construct !!int `-1` into uint8",),
    ),
    BadInput(
        "meta key quoted",
        b'customization:\n  meta:\n    - key: "10"\n      value: x\n',
        ("cannot construct !!str `10` into uint8",),
    ),
    BadInput(
        "bootloader lilo",
        b"customization:\n  bootloader: lilo\n",
        ("line 2: lilo does not belong to BootloaderKind values", "customization.bootloader"),
    ),
    BadInput(
        "bootloader auto",
        b"customization:\n  bootloader: auto\n",
        ("auto does not belong to BootloaderKind values",),
    ),
    BadInput(
        "explicit tag the text cannot satisfy",
        b"customization:\n  diskImage:\n    sectorSize: !!int many\n",
        ("cannot construct !!str `many` as a !!int",),
    ),
    BadInput(
        "invalid base64",
        b"customization:\n  extraKernelArgs: [!!binary 'not base64!']\n",
        ("!!binary value contains invalid base64 data",),
    ),
    BadInput(
        "merge key",
        b"base: &b {extraKernelArgs: [a]}\ncustomization:\n  <<: *b\n",
        ("merge keys (<<) are not supported",),
    ),
    BadInput(
        "owner in the community edition",
        b"owner: someone\n",
        ("owner field is only supported in Enterprise edition",),
    ),
]

HOSTILE = [
    BadInput("binary garbage", _garbage(), ("not valid UTF-8", "0x89")),
    BadInput("NUL byte", b"customization:\x00 {}\n", ("control characters", "NUL byte", "line 1")),
    BadInput("control character", b"customization: {}\n\x07\n", ("control characters", "U+0007")),
    BadInput(
        "invalid UTF-8",
        b"customization:\n  extraKernelArgs: [caf\xe9]\n",
        ("not valid UTF-8", "0xe9"),
    ),
    BadInput(
        "nested brackets", b"[" * 30_000 + b"]" * 30_000, ("nesting is deeper than the limit",)
    ),
    BadInput("nested mappings", b"{a: " * 12_000 + b"}" * 12_000, ("nesting is deeper",)),
    BadInput("billion laughs", _billion_laughs(), ("excessive aliasing",)),
    BadInput(
        "recursive alias",
        b"overlay:\n  options:\n    a: &a [1, *a]\n",
        ("anchor 'a' value contains itself",),
    ),
    BadInput(
        "self-containing mapping", b"&s {overlay: *s}\n", ("anchor 's' value contains itself",)
    ),
    BadInput("unknown alias", b"customization: *nothing\n", ("unknown anchor 'nothing'",)),
    BadInput("broken YAML", b"customization: [a, b\n", ("yaml: line",)),
    BadInput("empty body", b"", ("EOF",)),
    BadInput("only a comment", b"# nothing here\n", ("EOF",)),
    BadInput("a list", b"[1, 2]\n", ("cannot construct !!seq into schematic.Schematic",)),
    BadInput(
        "lone surrogate escape",
        b'{"customization": {"extraKernelArgs": ["\\ud800"]}}',
        ("invalid Unicode character escape",),
    ),
]

# Escapes get control characters past the document check; a kernel argument must not hold one.
KERNEL_ARGS = [
    BadInput(
        "NUL in a kernel argument",
        b'{"customization": {"extraKernelArgs": ["noapic", "a\\u0000b"]}}',
        ("customization.extraKernelArgs[1]", "control character U+0000"),
    ),
    BadInput(
        "tab in a kernel argument",
        b'customization:\n  extraKernelArgs: ["console=tty0\\tquiet"]\n',
        ("customization.extraKernelArgs[0]", "control character U+0009"),
    ),
    BadInput(
        "escape in a kernel argument",
        b'customization:\n  extraKernelArgs: ["\\e[31m"]\n',
        ("customization.extraKernelArgs[0]", "control character U+001B"),
    ),
    BadInput(
        "C1 control in a kernel argument",
        b'customization:\n  extraKernelArgs: ["a\\x85"]\n',
        ("customization.extraKernelArgs[0]", "control character U+0085"),
    ),
]

ALL = WRONG_TYPES + DUPLICATE_KEYS + UNKNOWN_KEYS + RANGES_AND_ENUMS + HOSTILE + KERNEL_ARGS
