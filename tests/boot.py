"""Boot something in QEMU (TCG) and return what it printed on the serial console.

Shared by every boot test: `boot_and_capture(...)` runs `qemu-system-x86_64` (or `qemu`) with the
serial port written to a file and returns the text once the guest powers off (the reference
OS does that with `factory.poweroff=1`) or QEMU is stopped at the timeout.
`assert_in_log(log, *lines)` fails with the log tail when a line is missing.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

BOOT_TIMEOUT = 300
LOG_TAIL_CHARS = 6000
QEMU = "qemu-system-x86_64"


def boot_and_capture(
    *,
    kernel: Path | None = None,
    initrd: Path | None = None,
    append: str | None = None,
    drives: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    memory_mb: int = 1024,
    timeout: float = BOOT_TIMEOUT,
    qemu: str = QEMU,
    cpus: int = 1,
) -> str:
    """Boot once; return the serial log.

    `kernel`/`initrd`/`append` boot a kernel directly; `drives` are `-drive` values (e.g.
    "file=disk.raw,format=raw,if=virtio,snapshot=on"); `extra_args` go to QEMU as they are
    (firmware, machine type, ...); `cpus` for machines with a fixed core count (raspi3b: 4).
    A guest still running at `timeout` is killed and the log
    so far returned; the caller's assertions then show what happened.
    """
    with tempfile.TemporaryDirectory(prefix="boot-") as tmp:
        log = Path(tmp) / "serial.log"
        argv = [
            qemu,
            "-accel",
            "tcg",
            "-m",
            str(memory_mb),
            "-smp",
            str(cpus),
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            f"file:{log}",
            "-no-reboot",
            "-nic",
            "none",
        ]
        if kernel is not None:
            argv += ["-kernel", str(kernel)]
        if initrd is not None:
            argv += ["-initrd", str(initrd)]
        if append is not None:
            argv += ["-append", append]
        for drive in drives:
            argv += ["-drive", drive]
        argv += list(extra_args)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        text = log.read_text(errors="replace") if log.exists() else ""
        if proc.returncode not in (0, -9) and stderr:
            text += "\n[qemu stderr] " + stderr.decode(errors="replace")
        return text


def assert_in_log(log: str, *lines: str) -> None:
    """Every `line` appears in `log`; otherwise fail showing the end of the log."""
    missing = [line for line in lines if line not in log]
    if missing:
        tail = log[-LOG_TAIL_CHARS:]
        raise AssertionError(f"missing from the serial log: {missing}\n--- log tail ---\n{tail}")
