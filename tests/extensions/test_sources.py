"""Every container format gives the same canonical tar; hostile containers are refused."""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import socket
import sys
import tarfile
import tracemalloc
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import zstandard

from extensions.errors import ExtensionError
from extensions.limits import Limits
from extensions.package import pack_extension
from extensions.sources import stage_source
from tests.extensions.builders import (
    LAYER_GZIP,
    LAYER_TAR,
    LAYER_ZSTD,
    Member,
    OciLayout,
    deeply_nested_json,
    directory,
    file,
    gz,
    gz_unfinished,
    gz_without_trailer,
    hello_members,
    layered_bomb,
    symlink,
    tar_bytes,
    without_end_marker,
    write,
    write_tree,
    zst,
    zst_unfinished,
)
from workers.assembly.run import run_tool

EPOCH = 1700000000
MEMBERS = hello_members(
    [
        symlink("rootfs/usr/local/bin/hi", "hello"),
        directory("rootfs/usr/lib"),
        directory("rootfs/usr/lib/firmware"),
        file("rootfs/usr/lib/firmware/" + "long-name-" * 12 + ".bin", b"\x00\x01firmware"),
        symlink("rootfs/usr/local/bin/fw", "/usr/lib/firmware/" + "long-name-" * 12 + ".bin"),
    ]
)


def digest_of(tmp_path: Path, source: Path, arch: str = "amd64", **kw: object) -> str:
    dest = tmp_path / f"out-{len(list(tmp_path.iterdir()))}.tar"
    return pack_extension(source, dest, epoch=EPOCH, arch=arch, **kw).tar.digest  # type: ignore[arg-type]


def oci_single_layer(data: bytes, media_type: str = LAYER_TAR) -> OciLayout:
    layout = OciLayout()
    layout.image([(data, media_type)])
    return layout


def test_same_content_same_digest_in_every_container(tmp_path: Path) -> None:
    plain = tar_bytes(MEMBERS)
    sources = {
        "dir": write_tree(tmp_path / "tree", MEMBERS),
        "tar": write(tmp_path / "x.tar", plain),
        "gnu-tar": write(tmp_path / "gnu", tar_bytes(MEMBERS, fmt=tarfile.GNU_FORMAT)),
        "other-mtime": write(tmp_path / "m", tar_bytes(MEMBERS, mtime=1)),
        "dot-prefixed": write(
            tmp_path / "dot", tar_bytes([directory("."), *(_dot(m) for m in MEMBERS)])
        ),
        "no-dir-entries": write(
            tmp_path / "nodirs", tar_bytes([m for m in MEMBERS if m.kind != tarfile.DIRTYPE])
        ),
        "tgz": write(tmp_path / "x.tgz", gz(plain)),
        "zst": write(tmp_path / "x.zst", zst(plain)),
        "oci-dir": oci_single_layer(plain).write_dir(tmp_path / "oci"),
        "oci-tar": write(tmp_path / "oci.tar", oci_single_layer(gz(plain), LAYER_GZIP).tar()),
        "oci-tar-zst": write(tmp_path / "oz", zst(oci_single_layer(zst(plain), LAYER_ZSTD).tar())),
        "oci-nested-index": write(tmp_path / "on", oci_single_layer(plain).tar(nested_index=True)),
    }
    out = tmp_path / "out"
    out.mkdir()
    digests = {name: digest_of(out, path) for name, path in sources.items()}
    assert len(set(digests.values())) == 1, digests


def _dot(member: Member) -> Member:
    return replace(member, name="./" + member.name)


def test_canonical_tar_is_reproducible_and_normalised(tmp_path: Path) -> None:
    source = write(tmp_path / "src", tar_bytes(MEMBERS))
    a = pack_extension(source, tmp_path / "a.tar", epoch=EPOCH)
    b = pack_extension(source, tmp_path / "b.tar", epoch=EPOCH)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert a.tar.digest == b.tar.digest
    c = pack_extension(source, tmp_path / "c.tar", epoch=EPOCH + 1)
    assert c.tar.digest != a.tar.digest  # the epoch is part of the bytes
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names[0] == "manifest.yaml"
        assert names.index("rootfs/usr/lib") < names.index("rootfs/usr/lib/firmware")
        for m in members:
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", EPOCH)
            assert m.pax_headers.keys() <= {"path", "linkpath"}
            expected = {tarfile.DIRTYPE: 0o755, tarfile.SYMTYPE: 0o777}.get(m.type)
            if expected is None:
                expected = 0o755 if m.name.endswith("/hello") else 0o644
            assert m.mode == expected, m.name
        assert any(len(n) > 100 for n in names)  # the long firmware name survived
        assert len(tar.getmember("rootfs/usr/local/bin/fw").linkname) > 100
    listing = run_tool(["tar", "-tvf", tmp_path / "a.tar"]).decode()  # GNU tar agrees
    assert "rootfs/usr/local/bin/fw -> /usr/lib/firmware/long-name-" in listing
    assert "-rwxr-xr-x 0/0" in listing


def test_directory_with_fifo_or_socket_is_refused(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "fifo", hello_members())
    os.mkfifo(tree / "rootfs/usr/local/bin/pipe")
    with pytest.raises(ExtensionError, match="rootfs/usr/local/bin/pipe: FIFOs are not allowed"):
        digest_of(tmp_path, tree)
    tree = write_tree(tmp_path / "sock", hello_members())
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tree / "rootfs/usr/local/bin/sock"))
        with pytest.raises(ExtensionError, match="bin/sock: sockets are not allowed"):
            digest_of(tmp_path, tree)


def test_directory_symlink_escaping_is_refused(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", hello_members())
    os.symlink("../../../../../etc/passwd", tree / "rootfs/usr/local/bin/passwd")
    with pytest.raises(ExtensionError, match=r"bin/passwd: symlink to .* resolves outside"):
        digest_of(tmp_path, tree)


# --- OCI ------------------------------------------------------------------------------------


def test_oci_layers_apply_in_order_with_whiteouts(tmp_path: Path) -> None:
    lower = tar_bytes(
        hello_members(
            [
                file("rootfs/usr/local/bin/old", b"old"),
                directory("rootfs/usr/local/share"),
                file("rootfs/usr/local/share/a", b"a"),
                file("rootfs/usr/local/share/b", b"b"),
            ]
        )
    )
    upper = tar_bytes(
        [
            file("rootfs/usr/local/bin/.wh.old"),
            directory("rootfs/usr/local/share"),
            file("rootfs/usr/local/share/.wh..wh..opq"),
            file("rootfs/usr/local/share/c", b"c"),
            file("rootfs/usr/local/bin/hello", b"#!/bin/sh\necho v2\n", 0o755),
        ]
    )
    layout = OciLayout()
    layout.image([(gz(lower), LAYER_GZIP), (upper, LAYER_TAR)])
    source = write(tmp_path / "oci.tar", layout.tar())
    # hello replaced, "old" whited out, share/ made opaque: only c remains there.
    expected = tar_bytes(
        [
            *hello_members()[:5],
            file("rootfs/usr/local/bin/hello", b"#!/bin/sh\necho v2\n", 0o755),
            directory("rootfs/usr/local/share"),
            file("rootfs/usr/local/share/c", b"c"),
        ]
    )
    assert digest_of(tmp_path, source) == digest_of(tmp_path, write(tmp_path / "e", expected))


def test_oci_picks_the_requested_arch(tmp_path: Path) -> None:
    amd = tar_bytes(hello_members([file("rootfs/usr/local/arch", b"amd64")]))
    arm = tar_bytes(hello_members([file("rootfs/usr/local/arch", b"arm64")]))
    layout = OciLayout()
    layout.image([(arm, LAYER_TAR)], arch="arm64")
    layout.image([(amd, LAYER_TAR)], arch="amd64", platform_in_index=False)  # via config
    source = write(tmp_path / "multi.tar", layout.tar())
    assert digest_of(tmp_path, source, "amd64") == digest_of(tmp_path, write(tmp_path / "a", amd))
    assert digest_of(tmp_path, source, "arm64") == digest_of(tmp_path, write(tmp_path / "b", arm))
    only_arm = OciLayout()
    only_arm.image([(arm, LAYER_TAR)], arch="arm64")
    with pytest.raises(ExtensionError, match="OCI layout has no linux/amd64 image"):
        digest_of(tmp_path, write(tmp_path / "arm.tar", only_arm.tar()), "amd64")


def test_oci_wrong_blob_digest_is_refused(tmp_path: Path) -> None:
    layout = oci_single_layer(tar_bytes(hello_members()))
    files = layout.files()
    victim = next(name for name, data in files.items() if data.startswith(b"manifest.yaml"))
    source = write(tmp_path / "bad.tar", layout.tar(override={victim: b"tampered"}))
    digest = victim.rsplit("/", 1)[1]
    with pytest.raises(ExtensionError, match=f"blob sha256:{digest} does not match its content"):
        digest_of(tmp_path, source)


def test_oci_unreferenced_blob_is_verified_too(tmp_path: Path) -> None:
    layout = oci_single_layer(tar_bytes(hello_members()))
    stray = "0" * 64
    source = write(tmp_path / "bad.tar", layout.tar(override={f"blobs/sha256/{stray}": b"x"}))
    with pytest.raises(ExtensionError, match=f"blob sha256:{stray} does not match"):
        digest_of(tmp_path, source)


def test_oci_missing_blob_and_size_mismatch(tmp_path: Path) -> None:
    layout = oci_single_layer(tar_bytes(hello_members()))
    layer_digest = next(d for d, b in layout.blobs.items() if b.startswith(b"manifest.yaml"))
    files = layout.files()
    del files[f"blobs/sha256/{layer_digest}"]
    missing = write(tmp_path / "m.tar", tar_bytes([file(n, d) for n, d in sorted(files.items())]))
    with pytest.raises(ExtensionError, match=f"blob sha256:{layer_digest} is missing"):
        digest_of(tmp_path, missing)
    layout.manifests[0]["size"] = 1
    with pytest.raises(ExtensionError, match="descriptor says 1"):
        digest_of(tmp_path, write(tmp_path / "s.tar", layout.tar()))


def test_oci_layer_with_hostile_content_is_refused(tmp_path: Path) -> None:
    layout = oci_single_layer(tar_bytes(hello_members([file("rootfs/etc/shadow", b"x")])))
    with pytest.raises(ExtensionError, match="rootfs/etc/shadow: /etc/shadow is outside"):
        digest_of(tmp_path, write(tmp_path / "h.tar", layout.tar()))


def test_oci_manifest_repeating_a_layer_is_refused(tmp_path: Path) -> None:
    layer = tar_bytes(hello_members())
    layout = OciLayout()
    layout.image([(layer, LAYER_TAR), (layer, LAYER_TAR)])
    digest = hashlib.sha256(layer).hexdigest()
    with pytest.raises(ExtensionError, match=rf"layer 1: repeats layer 0 \(sha256:{digest}"):
        digest_of(tmp_path, write(tmp_path / "dup.tar", layout.tar()))


def test_oci_layers_adding_up_to_a_bomb_are_refused_early(tmp_path: Path) -> None:
    layout = layered_bomb()
    upload = layout.tar()
    assert len(upload) < 256 * 1024  # 134 MB of zeros
    spool = tmp_path / "spool"
    spool.mkdir()
    # Sixteen layers of 8 MiB: the second one already crosses the ratio over all layers.
    with pytest.raises(
        ExtensionError, match=r"layer 1 \(sha256:.*\): gzip data expands more than 100:1"
    ):
        stage_source(write(tmp_path / "bomb.tar", upload), spool, "amd64")


def test_oci_layer_count_is_bounded(tmp_path: Path) -> None:
    layout = OciLayout()
    layout.image(
        [(tar_bytes(hello_members()), LAYER_TAR)]
        + [(tar_bytes([file(f"rootfs/usr/local/f{i}")]), LAYER_TAR) for i in range(3)]
    )
    source = write(tmp_path / "many.tar", layout.tar())
    with pytest.raises(ExtensionError, match="image has 4 layers, more than 3"):
        digest_of(tmp_path, source, limits=Limits(max_layers=3))
    assert digest_of(tmp_path, source, limits=Limits(max_layers=4))


@pytest.mark.parametrize("document", ["index.json", "oci-layout"])
def test_oci_deeply_nested_json_is_refused(tmp_path: Path, document: str) -> None:
    layout = oci_single_layer(tar_bytes(hello_members()))
    source = write(tmp_path / "deep.tar", layout.tar(override={document: deeply_nested_json()}))
    with pytest.raises(ExtensionError, match=f"{document}: JSON nested too deeply"):
        digest_of(tmp_path, source)


# --- bombs, limits, garbage -------------------------------------------------------------------

BOMB_BYTES = 512 * 1024 * 1024


def _bomb_tar_stream(compress: Any, size: int = BOMB_BYTES) -> bytes:
    """manifest + a `size`-byte file of zeros, compressed chunk by chunk (never in memory)."""
    valid = tar_bytes(hello_members())
    with tarfile.open(fileobj=io.BytesIO(valid)) as tar:
        end = max(m.offset_data + m.size for m in tar.getmembers())
    header = tarfile.TarInfo("rootfs/usr/local/big")
    header.size = size
    out = [compress.compress(valid[: -(-end // 512) * 512] + header.tobuf(tarfile.PAX_FORMAT))]
    zeros = bytes(1024 * 1024)
    for _ in range(size // len(zeros)):
        out.append(compress.compress(zeros))
    out.append(compress.flush())
    return b"".join(out)


@pytest.mark.parametrize(
    "compressor",
    [
        lambda: zlib.compressobj(1, zlib.DEFLATED, 31),
        lambda: zstandard.ZstdCompressor(level=1).compressobj(),
    ],
    ids=["gzip", "zstd"],
)
def test_decompression_bomb_is_refused_with_bounded_memory(tmp_path: Path, compressor: Any) -> None:
    bomb = write(tmp_path / "bomb", _bomb_tar_stream(compressor()))
    assert bomb.stat().st_size < BOMB_BYTES // 100
    tracemalloc.start()
    try:
        with pytest.raises(ExtensionError, match="expands more than 100:1"):
            digest_of(tmp_path, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024
    assert not (tmp_path / "out-1.tar").exists()


def test_unpacked_size_and_entry_limits(tmp_path: Path) -> None:
    random_file = file("rootfs/usr/local/r", os.urandom(64 * 1024))
    big = write(tmp_path / "big", tar_bytes(hello_members([random_file])))
    # The header's size is only used to refuse early; the bytes are counted as they come.
    with pytest.raises(ExtensionError, match="r: larger than the remaining budget"):
        digest_of(tmp_path, big, limits=Limits(max_unpacked_bytes=32 * 1024))
    small_files = hello_members([file(f"rootfs/usr/local/f{i}") for i in range(100)])
    many = write(tmp_path / "many.tgz", gz(tar_bytes(small_files)))
    with pytest.raises(ExtensionError, match="expands to more than 32768 bytes"):
        digest_of(tmp_path, many, limits=Limits(max_unpacked_bytes=32 * 1024))
    with pytest.raises(ExtensionError, match="more than 50 entries"):
        digest_of(tmp_path, many, limits=Limits(max_entries=50))
    tree = write_tree(tmp_path / "tree", small_files)
    with pytest.raises(ExtensionError, match="more than 50 entries"):
        digest_of(tmp_path, tree, limits=Limits(max_entries=50))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a tar archive"),
        (b"this is not an archive at all" * 40, "not a tar archive"),
        (os.urandom(4096), "not a tar archive"),
        (lzma.compress(b"x"), "xz-compressed archives are not supported"),
        (gz(tar_bytes(hello_members()))[:300], "corrupt gzip data"),
        (b"\x28\xb5\x2f\xfd" + os.urandom(100), "corrupt zstd data"),
    ],
    ids=["empty", "text", "random", "xz", "truncated-gzip", "bad-zstd"],
)
def test_garbage_is_refused(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(ExtensionError, match=message):
        digest_of(tmp_path, write(tmp_path / "garbage", data))


def test_truncated_and_corrupt_tars(tmp_path: Path) -> None:
    data = tar_bytes(hello_members())
    with pytest.raises(ExtensionError, match="truncated tar archive"):
        digest_of(tmp_path, write(tmp_path / "t", data[: 512 * 3 + 100]))
    corrupt = bytearray(data)
    second_header = data.index(b"rootfs/\x00")  # name field of the second member
    corrupt[second_header + 120] ^= 0xFF  # inside its uid field
    with pytest.raises(ExtensionError, match="bad checksum"):
        digest_of(tmp_path, write(tmp_path / "c", bytes(corrupt)))


def _with_signed_checksums(data: bytes) -> bytes:
    """`data` with every header's checksum the signed sum some old tars wrote."""
    out = bytearray(data)
    for start in range(0, len(out), 512):
        block = out[start : start + 512]
        if not any(block) or block[257:262] != b"ustar":
            continue
        rest = block[:148] + block[156:]
        signed = sum(b - 256 if b > 127 else b for b in rest) + 8 * 0x20
        out[start + 148 : start + 156] = b"%06o\x00 " % signed
    return bytes(out)


def test_signed_header_checksums_are_accepted(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo("rootfs/caf\u00e9")  # bytes >= 128 in the header
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    plain = buffer.getvalue()
    signed = _with_signed_checksums(plain)
    assert signed != plain
    staged = {
        name: stage_source(write(tmp_path / name, data), tmp_path / f"spool-{name}", "amd64")
        for name, data in (("plain.tar", plain), ("signed.tar", signed))
    }
    assert set(staged["signed.tar"].tree.entries) == {"rootfs/caf\u00e9"}
    assert staged["signed.tar"].tree.entries["rootfs/caf\u00e9"].read_bytes() == b"hi"
    off_by_one = bytearray(signed)
    off_by_one[148:156] = b"%06o\x00 " % (int(signed[148:154], 8) + 1)
    # A first header with a bad checksum does not make a tar at all.
    with pytest.raises(ExtensionError, match="not a tar archive"):
        stage_source(write(tmp_path / "bad.tar", bytes(off_by_one)), tmp_path / "s", "amd64")


TRUNCATED_TAR = without_end_marker(tar_bytes(hello_members()))


@pytest.mark.parametrize(
    "container",
    [
        lambda tar: tar,
        gz,
        zst,
        lambda tar: oci_single_layer(tar).tar(),
        lambda tar: oci_single_layer(gz(tar), LAYER_GZIP).tar(),
        lambda tar: oci_single_layer(zst(tar), LAYER_ZSTD).tar(),
    ],
    ids=["tar", "tgz", "tar.zst", "oci-tar-layer", "oci-gzip-layer", "oci-zstd-layer"],
)
def test_tar_cut_at_a_block_boundary_is_refused(tmp_path: Path, container: Any) -> None:
    with tarfile.open(fileobj=io.BytesIO(TRUNCATED_TAR)) as accepted:
        assert accepted.getnames()  # Python's tarfile reads it without a word
    source = write(tmp_path / "cut", container(TRUNCATED_TAR))
    with pytest.raises(ExtensionError, match=r"truncated tar archive \(no end-of-archive"):
        digest_of(tmp_path, source)
    assert not (tmp_path / "out-1.tar").exists()


def test_a_lone_zero_block_is_not_an_end_of_archive(tmp_path: Path) -> None:
    source = write(tmp_path / "lone", TRUNCATED_TAR + bytes(512))
    with pytest.raises(ExtensionError, match=r"truncated tar archive \(no end-of-archive"):
        digest_of(tmp_path, source)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (gz_without_trailer, "corrupt gzip data"),
        (gz_unfinished, "corrupt gzip data"),
        (zst_unfinished, r"corrupt zstd data \(the stream ends inside a frame"),
    ],
    ids=["gzip-no-trailer", "gzip-unfinished", "zstd-unfinished"],
)
def test_compressed_stream_missing_its_end_is_refused(
    tmp_path: Path, damage: Any, message: str
) -> None:
    tar = tar_bytes(hello_members())
    for name, data in (("plain", damage(tar)), ("oci", _oci_of(damage(tar)))):
        with pytest.raises(ExtensionError, match=message):
            digest_of(tmp_path, write(tmp_path / name, data))


def _oci_of(compressed: bytes) -> bytes:
    media_type = LAYER_ZSTD if compressed.startswith(b"\x28\xb5\x2f\xfd") else LAYER_GZIP
    return oci_single_layer(compressed, media_type).tar()


def test_multi_frame_zstd_is_still_read(tmp_path: Path) -> None:
    tar = tar_bytes(MEMBERS)
    frames = zst(tar[:3000]) + zst(tar[3000:])
    assert digest_of(tmp_path, write(tmp_path / "f", frames)) == digest_of(
        tmp_path, write(tmp_path / "t", tar)
    )


def test_sparse_files_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("rootfs/usr/local/sparse")
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ExtensionError, match="sparse files are not supported"):
        digest_of(tmp_path, write(tmp_path / "s", buf.getvalue()))


def test_deeply_nested_directory_source(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "deep", hello_members())
    deep = tree / "rootfs/usr/local"
    for _ in range(400):
        deep = deep / "d"
        deep.mkdir()
    (deep / "leaf").write_bytes(b"leaf")
    dest = tmp_path / "deep.tar"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(300)  # nesting deeper than the stack may go: no recursion per level
    try:
        pack_extension(tree, dest, epoch=EPOCH)
    finally:
        sys.setrecursionlimit(limit)
    with tarfile.open(dest) as tar:
        assert any(name.endswith("/d/leaf") for name in tar.getnames())
