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
        # Over every compressed stream of this stage together (all layers of an image).
        self.compressed_in = 0
        self.expanded_out = 0

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

    def take_expansion(self, consumed: int, produced: int) -> bool:
        """Charge `produced` bytes decompressed from `consumed` compressed ones; False once
        the total output passes the floor and `max_ratio` times the total input."""
        self.compressed_in += consumed
        self.expanded_out += produced
        limits = self.limits
        return not (
            self.expanded_out > limits.ratio_floor_bytes
            and self.expanded_out > limits.max_ratio * max(self.compressed_in, 1)
        )
