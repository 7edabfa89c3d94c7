"""Input files as users keep them: plain, or compressed with gzip, bzip2 or Zstandard.

Published datasets and archived exports often ship as ``tweets.csv.gz`` or ``prices.csv.zst``;
every reader of an input file (posts, prices, labelled sets) opens it through here, so all of them
take the same three compressions and name the format the same way.
"""

from __future__ import annotations

import bz2
import gzip
import io
from pathlib import Path
from typing import Any, BinaryIO

COMPRESSIONS = (".gz", ".bz2", ".zst")


def compression(path: Path) -> str | None:
    """The compression suffix of ``path`` (``.gz``, ``.bz2``, ``.zst``), or None when it is plain."""
    suffix = path.suffix.lower()
    return suffix if suffix in COMPRESSIONS else None


def file_format(path: Path) -> str:
    """The format suffix of a file, looking through a compression suffix
    (``tweets.csv.gz`` → ``.csv``, ``prices.csv.zst`` → ``.csv``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        return suffixes[-2] if len(suffixes) > 1 else ""
    return suffixes[-1] if suffixes else ""


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed as they are read when the file is compressed."""
    kind = compression(path)
    if kind == ".gz":
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]
    if kind == ".bz2":
        return bz2.BZ2File(path, "rb")  # type: ignore[return-value]
    if kind == ".zst":
        return io.BufferedReader(_ZstdReader(path))
    return path.open("rb")


class _ZstdReader(io.RawIOBase):
    """A Zstandard file decompressed as it is read, one or more frames, with or without a content
    size in the header (as the ``zstd`` command's piped output has none). Unlike the library's
    stream reader, a stream that ends inside a frame is an EOFError, as gzip and bz2 raise, not a
    silent short read."""

    CHUNK = 1 << 17

    def __init__(self, path: Path) -> None:
        import zstandard

        self._zstd = zstandard
        self._file = path.open("rb")
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            data = self._file.read(self.CHUNK)
            if not data:
                if not self._frame.eof:
                    raise EOFError("compressed file ended before the end of its last frame")
                return 0
            if self._frame.eof:  # a further frame follows the finished one
                self._frame = self._zstd.ZstdDecompressor().decompressobj()
            self._pending = self._frame.decompress(data)
            unused = self._frame.unused_data if self._frame.eof else b""
            while unused:  # several small frames inside one chunk
                self._frame = self._zstd.ZstdDecompressor().decompressobj()
                self._pending += self._frame.decompress(unused)
                unused = self._frame.unused_data if self._frame.eof else b""
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        self._file.close()
        super().close()


def is_damaged_stream(exc: BaseException, path: Path) -> bool:
    """Whether ``exc``, raised while reading ``path``, means its compressed stream is truncated or
    corrupt (rather than, say, the file being unreadable for permissions)."""
    if compression(path) is None or isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError)):
        return False
    # gzip raises BadGzipFile (an OSError) or EOFError, bz2 OSError or EOFError, zstandard ZstdError.
    return isinstance(exc, (EOFError, OSError)) or type(exc).__name__ == "ZstdError"


def read_bytes(path: Path) -> bytes:
    """The whole file's bytes, decompressed; a damaged compressed file is a ValueError naming it."""
    try:
        with open_binary(path) as fh:
            return fh.read()
    except Exception as exc:
        if not is_damaged_stream(exc, path):
            raise
        raise ValueError(f"{path} is not a readable {compression(path)} file ({type(exc).__name__}: {exc})") from exc
