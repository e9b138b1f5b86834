"""The kernel command line of an asset, assembled and merged like upstream.

Order (Talos `imager.buildCmdline`): `talos.platform=<p>`; the platform's args (set: a key
replaces the same key in place); the overlay's args (set); the release defaults (append);
META as `talos.environment=INSTALLER_META_BASE64=…` for outputs without a META partition;
then the schematic's `extraKernelArgs` (append, except that `console` and `talos.platform`
overwrite, `-key` deletes every value of `key` and `-key=value` deletes that value).

`KernelArgs` has go-procfs semantics: an ordered list of keys, each with its values, which are
rendered next to each other where the key first appeared; `k` and `k=` are one empty value.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from workers.planning.profiles import Kind

if TYPE_CHECKING:
    from workers.planning.plans import Plan
    from workers.releases.stored import Release

PLATFORM_KEY = "talos.platform"
ENVIRONMENT_KEY = "talos.environment"
META_ENV_VAR = "INSTALLER_META_BASE64"
# Upstream gzips the META text beyond this many bytes (Talos >= 1.6.3; always on here).
META_GZIP_THRESHOLD = 256
OVERWRITTEN_BY_EXTRA_ARGS = frozenset({"console", PLATFORM_KEY})


class KernelArgs:
    """An ordered multimap of kernel parameters (go-procfs `Cmdline`)."""

    def __init__(self, text: str = "") -> None:
        self._params: list[tuple[str, list[str]]] = _parse(text.split())

    def __str__(self) -> str:
        return " ".join(
            key if value == "" else f"{key}={value}"
            for key, values in self._params
            for value in values
        )

    def get(self, key: str) -> list[str] | None:
        for name, values in self._params:
            if name == key:
                return list(values)
        return None

    def append(self, key: str, value: str) -> None:
        for name, values in self._params:
            if name == key:
                values.append(value)
                return
        self._params.append((key, [value]))

    def set(self, key: str, values: Sequence[str]) -> None:
        """Replace every value of `key` in place, or add the key at the end."""
        for i, (name, _) in enumerate(self._params):
            if name == key:
                self._params[i] = (key, list(values))
                return
        self._params.append((key, list(values)))

    def delete(self, key: str, value: str | None = None) -> None:
        """Drop `key` (value None) or only its occurrences of `value`; a key left with no
        values disappears."""
        kept: list[tuple[str, list[str]]] = []
        for name, values in self._params:
            if name == key:
                values = [] if value is None else [v for v in values if v != value]
                if not values:
                    continue
            kept.append((name, values))
        self._params = kept

    def set_all(self, args: Iterable[str]) -> None:
        for key, values in _parse(args):
            self.set(key, values)

    def append_all(
        self,
        args: Iterable[str],
        *,
        overwrite: frozenset[str] = frozenset(),
        delete_negated: bool = False,
    ) -> None:
        for key, values in _parse(args):
            if delete_negated and len(key) > 1 and key.startswith("-"):
                for value in values:
                    self.delete(key[1:], None if value == "" else value)
            elif key in overwrite:
                self.set(key, values)
            else:
                for value in values:
                    self.append(key, value)


def _parse(args: Iterable[str]) -> list[tuple[str, list[str]]]:
    """Split on whitespace, then `key[=value]`; values of a repeated key are grouped."""
    parsed: list[tuple[str, list[str]]] = []
    index: dict[str, list[str]] = {}
    for word in " ".join(args).split():
        key, _, value = word.partition("=")
        if key in index:
            index[key].append(value)
        else:
            index[key] = [value]
            parsed.append((key, index[key]))
    return parsed


def encode_meta(values: Sequence[tuple[int, str]]) -> str:
    """META values as upstream's `Values.Encode`: `0x<hex>=<value>` joined by `;`, gzipped
    when longer than 256 bytes, then standard base64."""
    text = ";".join(f"0x{key:x}={value}" for key, value in values).encode()
    if len(text) > META_GZIP_THRESHOLD:
        text = gzip.compress(text, compresslevel=9, mtime=0)
    return base64.b64encode(text).decode()


def make_cmdline(
    *,
    platform: str,
    platform_args: Sequence[str],
    default_args: Sequence[str],
    overlay_args: Sequence[str] = (),
    meta: Sequence[tuple[int, str]] = (),
    meta_as_arg: bool = False,
    extra_args: Sequence[str] = (),
) -> str:
    """The full command line; `meta_as_arg` for outputs with no META partition to hold META."""
    args = KernelArgs()
    args.append(PLATFORM_KEY, platform)
    args.set_all(platform_args)
    args.set_all(overlay_args)
    args.append_all(default_args)
    if meta and meta_as_arg:
        args.append(ENVIRONMENT_KEY, f"{META_ENV_VAR}={encode_meta(meta)}")
    args.append_all(extra_args, overwrite=OVERWRITTEN_BY_EXTRA_ARGS, delete_negated=True)
    return str(args)


def asset_cmdline(plan: Plan, release: Release) -> str:
    """The asset's kernel command line: META rides along as an argument unless the asset has
    a META partition (disk images)."""
    platform = plan.profile.platform
    return make_cmdline(
        platform=platform,
        platform_args=release.platform_args.get(platform, ()),
        default_args=release.kernel_args,
        meta=plan.meta,
        meta_as_arg=plan.kind is not Kind.IMAGE,
        overlay_args=plan.overlay.kernel_args if plan.overlay is not None else (),
        extra_args=plan.extra_kernel_args,
    )
