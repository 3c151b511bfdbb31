"""A byte stream that checks UTF-8 as it passes, for input files read line by line."""

from __future__ import annotations

import codecs
import io
from typing import BinaryIO

from bulkchime.errors import InputError

__all__ = ["Utf8Checked"]

#: Bytes read from the input at a time.
_CHUNK = 64 * 1024


class Utf8Checked(io.BufferedIOBase):
    """A byte stream that checks UTF-8 as it passes, so a bad byte is known by its line.

    ``TextIOWrapper`` decodes in chunks, so its own ``UnicodeDecodeError`` cannot tell
    which line held the bad byte; this wrapper counts newlines in the bytes it has
    passed on and raises :class:`InputError` with the line.
    """

    def __init__(self, raw: BinaryIO, *, owned: bool, name: str) -> None:
        super().__init__()
        self._raw = raw
        self._owned = owned
        self._name = name
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._newlines = 0

    @property
    def name(self) -> str:
        return self._name

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            return self._check(self._raw.read(size))
        chunks = []
        while chunk := self._check(self._raw.read(_CHUNK)):
            chunks.append(chunk)
        return b"".join(chunks)

    def read1(self, size: int = -1) -> bytes:
        read1 = getattr(self._raw, "read1", None)
        n = _CHUNK if size < 0 else size
        data: bytes = read1(n) if read1 is not None else self._raw.read(n)
        return self._check(data)

    def _check(self, data: bytes) -> bytes:
        # ASCII needs no decoding (most inputs are all ASCII): unless a character begun
        # in the bytes before is still pending, it cannot be invalid.
        if data.isascii() and not self._decoder.getstate()[0]:
            self._newlines += data.count(b"\n")
            return data
        try:
            self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            # The decoder's object is its few pending bytes (never a newline) plus data.
            before = exc.object[: exc.start]
            line = self._newlines + before.count(b"\n") + 1
            bad = exc.object[exc.start : exc.start + 1].hex()
            raise InputError(
                self._name,
                f"is not UTF-8 text (byte 0x{bad or '??'} cannot be decoded). "
                "HINT: save the file as UTF-8 (in Excel: 'CSV UTF-8'), "
                "or convert it with: iconv -f LATIN1 -t UTF-8",
                line=line,
            ) from None
        self._newlines += data.count(b"\n")
        return data

    def close(self) -> None:
        if not self.closed and self._owned:
            self._raw.close()
        super().close()
