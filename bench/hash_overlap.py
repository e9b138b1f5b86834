"""Would hashing in a native thread, while the previous chunk is sent, speed up hashed sends?

    python bench/hash_overlap.py [--file F] [--rounds 7]

A gevent server on loopback (as the web processes are) sends a 256 MiB file three ways,
curl downloading each in turns: `serial` (read, sha256, send: what a hashed whole body does),
`threaded` (each chunk hashed on gevent's native thread pool while the greenlet sends it;
hashlib releases the GIL for large buffers) and `sendfile` (no hashing). Prints the median
MiB/s of each. One sha256 stream cannot be split across cores, so the threaded way is bound
by one core's sha256 speed however the sending overlaps.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
SIZE = 256 * CHUNK
WAYS = ("serial", "threaded", "sendfile")


def serve(path: str, port: int) -> None:
    from gevent import monkey

    monkey.patch_all()
    import gevent
    import gevent.server
    import gevent.socket

    size = os.path.getsize(path)
    pool = gevent.get_hub().threadpool

    def serial(sock: socket.socket, file: BinaryIO) -> None:
        digest = hashlib.sha256()
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            sock.sendall(chunk)

    def threaded(sock: socket.socket, file: BinaryIO) -> None:
        digest = hashlib.sha256()
        while chunk := file.read(CHUNK):
            hashing = pool.spawn(digest.update, chunk)
            sock.sendall(chunk)
            hashing.get()

    def sendfile(sock: socket.socket, file: BinaryIO) -> None:
        sent = 0
        while sent < size:
            try:
                sent += os.sendfile(sock.fileno(), file.fileno(), sent, CHUNK)
            except BlockingIOError:
                gevent.socket.wait_write(sock.fileno())

    def handle(sock: socket.socket, address: object) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        way = head.split(b" ")[1].decode().strip("/")
        sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        with open(path, "rb") as file:
            {"serial": serial, "threaded": threaded, "sendfile": sendfile}[way](sock, file)
        sock.close()

    gevent.server.StreamServer(("127.0.0.1", port), handle).serve_forever()


def speed(url: str) -> float:
    argv = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{speed_download}", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return float(out) / (1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=Path("/var/tmp/factory-bench-hash.bin"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args()
    if args.serve:
        serve(str(args.file), args.serve)
        return
    if not args.file.exists() or args.file.stat().st_size != SIZE:
        with args.file.open("wb") as out:
            for block in range(SIZE // CHUNK):
                out.write(hashlib.sha512(str(block).encode()).digest() * (CHUNK // 64))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, __file__, "--file", str(args.file), "--serve", str(port)]
    )
    try:
        time.sleep(2)
        found: dict[str, list[float]] = {way: [] for way in WAYS}
        for _ in range(args.rounds):
            for way in WAYS:
                found[way].append(speed(f"http://127.0.0.1:{port}/{way}"))
    finally:
        server.terminate()
        server.wait()
    for way in WAYS:
        runs = sorted(round(s) for s in found[way])
        print(f"{way:9} median {statistics.median(found[way]):6.0f} MiB/s  runs {runs}")


if __name__ == "__main__":
    main()
