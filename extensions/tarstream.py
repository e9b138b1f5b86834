"""A streaming tar reader for untrusted input (ustar, GNU and pax headers).

Written instead of using `tarfile` so that nothing in a header decides how much memory is
used: metadata records (pax, GNU long names) are capped, member data is only ever streamed
in chunks, and the header checksum is verified. Sparse files, multi-volume parts and other
exotic entry types are refused. Member names come back exactly as stored; `tree` decides
what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from extensions.budget import Budget
from extensions.compression import BoundedStream
from extensions.errors import ExtensionError

BLOCK = 512
_KINDS = {
    b"0": "file",
    b"\0": "file",
    b"7": "file",
    b"1": "hardlink",
    b"2": "symlink",
    b"3": "chardev",
    b"4": "blockdev",
    b"5": "dir",
    b"6": "fifo",
}
_POSIX_MAGIC = b"ustar\x00"
_CHUNK = 64 * 1024


class ByteSource(Protocol):
    def read(self, size: int) -> bytes: ...


@dataclass(frozen=True)
class TarMember:
    name: str
    kind: str  # file, dir, symlink, hardlink, chardev, blockdev, fifo
    mode: int  # permission bits including setuid/setgid/sticky
    size: int  # data bytes (files only)
    linkname: str


def _number(field: bytes, what: str, label: str) -> int:
    if field[:1] and field[0] & 0x80:
        if field[0] != 0x80:
            raise ExtensionError(f"{label}: corrupt tar header (negative {what})")
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise ExtensionError(f"{label}: corrupt tar header ({what} {text!r})") from None


def _text(raw: bytes, label: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ExtensionError(f"{label}: entry name {raw!r} is not valid UTF-8") from None


_HIGH_BYTES = bytes(range(128, 256))


def _checksum_ok(block: bytes, label: str) -> bool:
    try:
        stored = _number(block[148:156], "checksum", label)
    except ExtensionError:
        return False
    rest = block[:148] + block[156:]
    unsigned = sum(rest) + 8 * 0x20
    if stored == unsigned:
        return True
    # Some old tars summed signed bytes: each byte >= 128 counts 256 less (counted in C, a
    # per-byte Python loop cost more than the rest of a small extension's checks).
    high = len(rest) - len(rest.translate(None, _HIGH_BYTES))
    return stored == unsigned - 256 * high


def _pax_records(data: bytes, label: str) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise ExtensionError(f"{label}: corrupt pax header") from None
        record = data[pos : pos + length]
        if space < 0 or length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise ExtensionError(f"{label}: corrupt pax header")
        key, _, value = record[space - pos + 1 : -1].partition(b"=")
        records[_text(key, label)] = _text(value, label)
        pos += length
    return records


class TarReader:
    """Members of one tar stream, in order; data must be read before the next member."""

    def __init__(self, source: ByteSource, label: str, budget: Budget) -> None:
        self._source = source
        self.label = label
        self._budget = budget
        self._remaining = 0  # data bytes (padded) of the current member not yet read
        self._data_left = 0

    def _read(self, size: int) -> bytes:
        parts: list[bytes] = []
        wanted = size
        while wanted:
            chunk = self._source.read(min(wanted, _CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            wanted -= len(chunk)
        return b"".join(parts)

    def _read_exact(self, size: int) -> bytes:
        data = self._read(size)
        if len(data) != size:
            raise ExtensionError(f"{self.label}: truncated tar archive")
        return data

    def _skip(self) -> None:
        while self._remaining:
            chunk = self._read(min(self._remaining, _CHUNK))
            if not chunk:
                raise ExtensionError(f"{self.label}: truncated tar archive")
            self._remaining -= len(chunk)
        self._data_left = 0

    def _meta(self, size: int, what: str) -> bytes:
        cap = self._budget.limits.max_header_bytes
        if size > cap:
            raise ExtensionError(f"{self.label}: {what} header larger than {cap} bytes")
        data = self._read_exact(_padded(size))[:size]
        return data

    def copy_data(self, out: BinaryIO) -> int:
        """Copy the current member's data to `out`; return the byte count."""
        copied = 0
        while self._data_left:
            chunk = self._read(min(self._data_left, _CHUNK))
            if not chunk:
                raise ExtensionError(f"{self.label}: truncated tar archive")
            out.write(chunk)
            copied += len(chunk)
            self._data_left -= len(chunk)
            self._remaining -= len(chunk)
        return copied

    def data_span(self) -> tuple[int, int] | None:
        """(offset, size) of the current member's data in the archive file, skipped over,
        when the archive is an uncompressed file; None (and the data still unread) otherwise.
        """
        source = self._source
        if not isinstance(source, BoundedStream) or not source.seekable:
            return None
        span = (source.position, self._data_left)
        if source.skip(self._remaining) != self._remaining:
            raise ExtensionError(f"{self.label}: truncated tar archive")
        self._remaining = self._data_left = 0
        return span

    def members(self) -> Iterator[TarMember]:
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        first = True
        while True:
            self._skip()
            block = self._read(BLOCK)
            if len(block) < BLOCK:
                if first:
                    raise ExtensionError(f"{self.label}: not a tar archive")
                if block:
                    raise ExtensionError(f"{self.label}: truncated tar archive")
            if len(block) < BLOCK or block == bytes(BLOCK):
                self._end_of_archive(block)
                return
            if not _checksum_ok(block, self.label):
                what = "not a tar archive" if first else "corrupt tar header (bad checksum)"
                raise ExtensionError(f"{self.label}: {what}")
            first = False
            self._budget.take_entry()
            flag = block[156:157]
            size = _number(block[124:136], "size", self.label)
            if flag in (b"x", b"g"):
                records = _pax_records(self._meta(size, "pax"), self.label)
                if any(key.startswith("GNU.sparse.") for key in records):
                    raise ExtensionError(f"{self.label}: sparse files are not supported")
                if flag == b"x":
                    pax.update(records)
                elif {"path", "linkpath", "size"} & set(records):
                    raise ExtensionError(f"{self.label}: global pax header sets a path or size")
                continue
            if flag in (b"L", b"K"):
                value = _text(self._meta(size, "GNU long name").split(b"\0", 1)[0], self.label)
                if flag == b"L":
                    long_name = value
                else:
                    long_link = value
                continue
            name = self._name(block, pax, long_name)
            linkname = pax.get("linkpath") or long_link or _text(_cstr(block[157:257]), self.label)
            if pax.get("size"):
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise ExtensionError(f"{self.label}: {name}: corrupt pax size") from None
            pax, long_name, long_link = {}, None, None
            kind = _KINDS.get(flag)
            if kind is None:
                raise ExtensionError(f"{self.label}: {name}: unsupported tar entry type {flag!r}")
            if kind == "file" and flag == b"\0" and name.endswith("/"):
                kind = "dir"  # pre-POSIX directory entry
            if kind != "file":
                size = 0  # like tar(1): only regular files carry data
            if size > self._budget.bytes_left:
                raise ExtensionError(
                    f"{self.label}: {name}: larger than the remaining budget "
                    f"({self._budget.limits.max_unpacked_bytes} bytes in all)"
                )
            self._data_left = size
            self._remaining = _padded(size)
            mode = _number(block[100:108], "mode", self.label) & 0o7777
            yield TarMember(name=name, kind=kind, mode=mode, size=size, linkname=linkname)

    def _end_of_archive(self, block: bytes) -> None:
        """Require the two zero blocks that end every tar: a stream cut at a block boundary
        would otherwise pass for a smaller, complete archive. Then read a compressed stream
        to its own end, which checks its trailer."""
        if not block or self._read(BLOCK) != bytes(BLOCK):
            raise ExtensionError(f"{self.label}: truncated tar archive (no end-of-archive blocks)")
        if isinstance(self._source, BoundedStream):
            self._source.finish()

    def _name(self, block: bytes, pax: dict[str, str], long_name: str | None) -> str:
        if pax.get("path"):
            return pax["path"]
        if long_name is not None:
            return long_name
        name = _cstr(block[0:100])
        if block[257:263] == _POSIX_MAGIC:
            prefix = _cstr(block[345:500])
            if prefix:
                name = prefix + b"/" + name
        return _text(name, self.label)


def _cstr(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _padded(size: int) -> int:
    return (size + BLOCK - 1) // BLOCK * BLOCK
