"""Byte and entry budgets: every byte a source expands to is counted as it is produced."""

from __future__ import annotations

from extensions.errors import ExtensionError
from extensions.limits import Limits


class Budget:
    """What one stage (an archive, or the layers of an image) may still produce."""

    def __init__(self, limits: Limits, label: str) -> None:
        self.limits = limits
        self.label = label
        self.bytes_left = limits.max_unpacked_bytes
        self.entries_left = limits.max_entries

    def take_bytes(self, count: int) -> None:
        self.bytes_left -= count
        if self.bytes_left < 0:
            raise ExtensionError(
                f"{self.label}: expands to more than {self.limits.max_unpacked_bytes} bytes"
            )

    def take_entry(self) -> None:
        self.entries_left -= 1
        if self.entries_left < 0:
            raise ExtensionError(f"{self.label}: more than {self.limits.max_entries} entries")
