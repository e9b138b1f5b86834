"""Raw file objects a WSGI server can `sendfile` from: they wrap an open file and hand on its
`fileno`, `seek` and `tell`, so the server sends from the file's current position."""

from __future__ import annotations

import io
from typing import BinaryIO


class FileView(io.RawIOBase):
    """A readable, seekable view of the open file `_file` (subclasses say what is read)."""

    _file: BinaryIO

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._file.fileno()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()
