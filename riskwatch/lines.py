"""Reading JSON-lines input: files, stdin, FIFOs and gzip, line by line,
with the record size limit applied while reading (DOMAIN §3 "Files",
"Sizes"). `replay`, `run --input` and `produce` all read through here."""

from __future__ import annotations

import gzip
import sys
import zlib
from typing import BinaryIO, Callable, Iterator

from riskwatch.models import MAX_EVENT_BYTES


UTF8_BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
# Past the record limit a line is only counted, 64 KiB at a time, never held.
_SKIP_CHUNK = 64 * 1024


def open_input(path: str) -> BinaryIO:
    """A readable binary stream for `path`: stdin for "-", else the file,
    FIFO or /dev/fd/N (a shell's process substitution) opened once, since a
    stream cannot be read twice. Raises OSError (FileNotFoundError,
    IsADirectoryError, PermissionError) naming why it cannot be opened."""
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")  # noqa: SIM115 - read_lines closes it


def _decompressed(stream: BinaryIO) -> BinaryIO:
    """`stream`, or its gzip decompression when it starts with the gzip magic
    bytes 1f 8b (RFC 1952 §2.3.1): a JSON line never starts with 0x1f, and
    a pipe cannot be rewound, so the bytes are peeked, not read."""
    peek = getattr(stream, "peek", None)
    head = peek(2)[:2] if peek is not None else b""
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")
    return stream


def read_lines(
    path: str | BinaryIO,
    *,
    max_bytes: int = MAX_EVENT_BYTES,
    too_large: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[int, bytes]]:
    """The records of a JSON-lines input as (line number, bytes).

    `path` is a file name, "-" for stdin, a FIFO, /dev/fd/N, or a stream
    from `open_input` (closed at the end unless it is stdin). A gzip input
    (by its magic bytes, also on a pipe) is decompressed.

    DOMAIN §3 "Files": a UTF-8 byte-order mark at the start, CRLF line ends
    and blank lines are accepted. Line numbers are the file's own (1-based,
    blank lines counted), so a report's "line N" is where an editor shows it;
    `replay`, `run --input` and `produce` all read through here. The line is
    given without its line end and surrounding whitespace.

    DOMAIN §3 "Sizes": a line longer than `max_bytes` (the record limit,
    1,000,000 bytes) is never held whole: the rest of it is counted and
    dropped while reading, so memory stays bounded whatever the input. It is
    given to `too_large(line number, size in bytes)` and reading goes on
    with the next line; without `too_large` it is yielded cut to
    `max_bytes + 1` bytes, which any record-size check refuses.

    Raises OSError when the input cannot be opened or read, including a
    damaged or cut gzip stream (the lines before it have been yielded).
    """
    stream = open_input(path) if isinstance(path, str) else path
    try:
        reader = _decompressed(stream)
        number = 0
        # +2: a record of exactly max_bytes still fits with its CR LF.
        limit = max_bytes + 2
        while True:
            # The first line may carry a byte-order mark on top.
            asked = limit + len(UTF8_BOM) if number == 0 else limit
            try:
                line = reader.readline(asked)
            except (EOFError, zlib.error) as error:
                raise OSError(f"gzip stream damaged or cut short after line {number} ({error})") from None
            if not line:
                return
            number += 1
            overflow = len(line) == asked and not line.endswith(b"\n")
            if number == 1 and line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM):]
            if overflow:
                size = len(line)
                while True:
                    try:
                        rest = reader.readline(_SKIP_CHUNK)
                    except (EOFError, zlib.error) as error:
                        raise OSError(f"gzip stream damaged or cut short in line {number} ({error})") from None
                    if rest.endswith(b"\n"):
                        size += len(rest.rstrip(b"\r\n"))
                        break
                    size += len(rest)
                    if not rest:
                        break
                if too_large is not None:
                    too_large(number, size)
                else:
                    yield number, line[: max_bytes + 1]
                continue
            line = line.strip()
            if len(line) > max_bytes and too_large is not None:
                too_large(number, len(line))
            elif line:
                yield number, line
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
