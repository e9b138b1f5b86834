"""Debian packages as build inputs: `apt-get download` into a cache, `dpkg-deb -x` to unpack.

Nothing is installed on the host. The package index (`apt-get update`) decides which version
is fetched: the host's own index for the host architecture, and for another one (arm64 on an
amd64 host) a private index (`foreign_apt`) kept next to the cache, read from the host's
sources (the same mirror) with `APT::Architecture` set, so the host's dpkg configuration and
apt state stay untouched (no `dpkg --add-architecture`). Each `.deb` is checked against the
SHA256 the index gives before use, and kept in the cache under `<name>_<version>_<arch>.deb`,
so a later build with the same index downloads nothing.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from workers.assembly.run import ToolError, run_tool
from workers.errors import Unavailable
from workers.releases.stored import file_entry

APT_TOOLS = ("apt-get", "apt-cache", "dpkg", "dpkg-deb")
KERNEL_METAPACKAGE = {"amd64": "linux-image-amd64", "arm64": "linux-image-arm64"}
_DEPENDS = re.compile(r"^\s*Depends:\s*(linux-image-[0-9][^\s<>]*)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Apt:
    """Which package index apt reads: `options` are `-o` settings (none: the host's index)."""

    options: tuple[str, ...] = field(default=())

    def argv(self, tool: str, *args: str) -> list[str]:
        return [tool, *(f"-o{option}" for option in self.options), *args]


HOST_APT = Apt()


def host_arch() -> str:
    return run_tool(["dpkg", "--print-architecture"]).decode().strip()


def apt_for(arch: str, state_dir: Path) -> Apt:
    """The host index for the host arch, else a private `arch` index in `state_dir`
    (created and filled with `apt-get update` the first time)."""
    if arch == host_arch():
        return HOST_APT
    return foreign_apt(arch, state_dir)


def foreign_apt(arch: str, state_dir: Path, components: tuple[str, ...] = ()) -> Apt:
    """A private apt configuration for packages of `arch` (see the module docstring).

    `components` (e.g. `main`, `non-free-firmware`): read the host's Debian sources with
    these components instead of the host's own (`private_sources`).
    """
    # apt reads a relative Dir:: path against its root (/), not the working directory: with
    # the README's relative data directory every foreign-arch index would be looked for there.
    state_dir = state_dir.resolve()
    lists = state_dir / "state" / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    (state_dir / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    status = state_dir / "state" / "status"
    status.touch()
    options = [
        f"APT::Architecture={arch}",
        f"APT::Architectures::={arch}",
        f"Dir::State={state_dir / 'state'}",
        f"Dir::State::status={status}",
        f"Dir::Cache={state_dir / 'cache'}",
    ]
    if components:
        sources = state_dir / "debian.sources"
        sources.write_text(private_sources(components))
        (state_dir / "sources.list.d").mkdir(exist_ok=True)
        options += [
            f"Dir::Etc::sourcelist={sources}",
            f"Dir::Etc::sourceparts={state_dir / 'sources.list.d'}",
        ]
    apt = Apt(tuple(options))
    if not any(lists.glob("*_Packages*")):
        try:
            run_tool(apt.argv("apt-get", "update", "-q"), timeout=1800)
        except ToolError as exc:
            raise Unavailable(f"cannot fetch the Debian package index for {arch}: {exc}") from exc
    return apt


def private_sources(components: tuple[str, ...], etc: Path = Path("/etc/apt")) -> str:
    """deb822 sources for the host's Debian mirrors (entries with the `main` component, from
    `sources.list` and `sources.list.d/*.sources`) with `components` instead of theirs."""
    entries = [*_one_line_entries(etc / "sources.list"), *_deb822_entries(etc / "sources.list.d")]
    stanzas = []
    for entry in entries:
        if (
            "deb" not in entry.get("Types", "").split()
            or "main" not in entry.get("Components", "").split()
        ):
            continue
        fields = {**entry, "Types": "deb", "Components": " ".join(components)}
        stanzas.append("".join(f"{key}: {value}\n" for key, value in fields.items()))
    if not stanzas:
        raise Unavailable("the host's apt sources name no Debian mirror with a main component")
    return "\n".join(stanzas)


def _deb822_entries(parts: Path) -> list[dict[str, str]]:
    entries = []
    for path in sorted(parts.glob("*.sources")):
        for block in path.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0] in " \t" and fields:  # a continuation line (e.g. an inline key)
                    last = list(fields)[-1]
                    fields[last] += "\n" + line
                elif ":" in line:
                    key, value = line.split(":", 1)
                    fields[key.strip()] = value.strip()
            if fields and fields.get("Enabled", "yes") != "no":
                entries.append(fields)
    return entries


def _one_line_entries(sources_list: Path) -> list[dict[str, str]]:
    """`deb [signed-by=K] URI SUITE COMPONENT...` lines as deb822 fields."""
    if not sources_list.is_file():
        return []
    entries = []
    for line in sources_list.read_text().splitlines():
        text = line.split("#", 1)[0]
        options: dict[str, str] = {}
        if "[" in text and "]" in text:
            before, _, rest = text.partition("[")
            inside, _, after = rest.partition("]")
            for option in inside.split():
                key, _, value = option.partition("=")
                options[key] = value
            text = before + " " + after
        words = text.split()
        if len(words) < 4:
            continue
        entry = {"Types": words[0], "URIs": words[1], "Suites": words[2]}
        entry["Components"] = " ".join(words[3:])
        if "signed-by" in options:
            entry["Signed-By"] = options["signed-by"]
        entries.append(entry)
    return entries


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    arch: str
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


def kernel_package(arch: str, apt: Apt = HOST_APT) -> str:
    """The versioned kernel package (`linux-image-<abi>-<flavour>`) the metapackage pulls in."""
    meta = KERNEL_METAPACKAGE[arch]
    out = run_tool(apt.argv("apt-cache", "depends", f"{meta}:{arch}")).decode()
    found = _DEPENDS.findall(out)
    if not found:
        raise Unavailable(f"apt-cache depends {meta} names no kernel package (run apt-get update)")
    return str(found[0])


def describe(name: str, arch: str, apt: Apt = HOST_APT) -> DebPackage:
    """The candidate version of `name` from the local package index."""
    try:
        out = run_tool(
            apt.argv("apt-cache", "show", "--no-all-versions", f"{name}:{arch}")
        ).decode()
    except ToolError as exc:
        raise Unavailable(f"Debian package {name} is not in the apt index: {exc}") from exc
    fields = dict(
        line.split(": ", 1) for line in out.splitlines() if ": " in line and line[0] != " "
    )
    try:
        return DebPackage(
            name=fields["Package"],
            version=fields["Version"],
            arch=fields["Architecture"],
            sha256=fields["SHA256"],
        )
    except KeyError as exc:
        raise Unavailable(f"apt-cache show {name}: no {exc.args[0]} field") from None


def download(package: DebPackage, cache_dir: Path, apt: Apt = HOST_APT) -> Path:
    """The verified `.deb` of `package` in `cache_dir`, downloaded only when missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / package.file_name
    if cached.is_file() and file_entry(cached).sha256 == package.sha256:
        return cached
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
        spec = f"{package.name}:{package.arch}={package.version}"
        try:
            run_tool(apt.argv("apt-get", "download", "-q", spec), cwd=tmp, timeout=1800)
        except ToolError as exc:
            raise Unavailable(
                f"cannot download Debian package {spec} (an outdated apt index? "
                f"run apt-get update): {exc}"
            ) from exc
        debs = list(Path(tmp).glob("*.deb"))
        if len(debs) != 1:
            raise Unavailable(f"apt-get download {spec} produced {len(debs)} files")
        got = file_entry(debs[0]).sha256
        if got != package.sha256:
            raise Unavailable(f"{debs[0].name}: sha256 {got}, index says {package.sha256}")
        shutil.move(debs[0], cached)
    return cached


def extract(deb: Path, dest: Path) -> Path:
    """Unpack the data of `deb` into `dest` (no maintainer scripts run)."""
    dest.mkdir(parents=True, exist_ok=True)
    run_tool(["dpkg-deb", "-x", deb, dest])
    return dest
