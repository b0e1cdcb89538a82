# SPDX-License-Identifier: GPL-3.0-or-later
"""Cutting raw game files into work units at game boundaries, without one reader for all.

A file's text (decompressed, for compressed files) is cut into chunks of
about ``unit_bytes``: chunk ``j`` holds the games that start in
``[cut(j * unit_bytes), cut((j + 1) * unit_bytes))``, where ``cut(b)`` is the
first *safe game start* at or after ``b`` (chunk 0 starts at byte 0). A safe
game start is a tag line that follows a blank line that follows a movetext
line: there :func:`~chesspos_positions.pgn.split_games` always starts a
fresh game, whatever came before (even an unclosed ``{`` comment), so cutting
the text there and splitting each chunk alone gives exactly the games of
splitting the whole file. ``cut`` is a pure function of the bytes from
``b - 1`` on, so every task computes the same boundaries on its own.

* A plain file is read by range: each chunk is one :class:`WorkItem`, which
  seeks to its two boundaries and reads only its bytes.
* A compressed file cannot be seeked. It is handled by ``parts`` items; each
  streams the whole file through the decompressor (about a hundred times
  cheaper per byte than parsing) and parses only the chunks ``j`` with
  ``j % parts == part``. No chunk is written to disk.

The number of chunks of a file is ``max(1, ceil(text bytes / unit_bytes))``,
so the units, and therefore the output, do not depend on how many tasks run.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

import fsspec

from .pgn import TAG_LINE, RawGame, decode_line, split_text
from .sources import InputError, check_text, input_failure, iter_blocks

#: Text bytes per work unit: large enough that per-task overhead is small,
#: small enough that a unit's raw text fits in memory comfortably.
UNIT_BYTES: Final = 8 << 20
#: PGN compresses about 4x or more: a compressed file gets one part per
#: ``unit_bytes / COMPRESSION`` compressed bytes, so about one chunk or more per part.
COMPRESSION: Final = 4
#: Each part decompresses the whole file: more parts cost more decompression.
MAX_PARTS: Final = 8

#: A line end, an all-blank line, and a line starting with "[": candidate safe game starts.
_CANDIDATE = re.compile(rb"\n[ \t\r]*\n[ \t]*\[")


@dataclass(frozen=True)
class WorkItem:
    """The work of one Encode task: some chunks of one file.

    Attributes:
        file: index of the file among the run's inputs (inputs are sorted).
        url: the file.
        part: a plain file's chunk index; a compressed file's part.
        parts: 0 for a plain file (one chunk); else the number of parts of the compressed file.
    """

    file: int
    url: str
    part: int
    parts: int

    def owns(self, chunk: int) -> bool:
        """Whether this item encodes chunk ``chunk`` of its file."""
        return chunk == self.part if self.parts == 0 else chunk % self.parts == self.part


@dataclass(frozen=True)
class Chunk:
    """One work unit: the games of one chunk of one file, lazily cut."""

    file: int
    index: int
    url: str
    start: int  # offset of its first byte in the file's (decompressed) text
    text: bytes | None  # None: a chunk of another part of a compressed file, not read

    def games(self) -> Iterator[RawGame]:
        """The chunk's games; their ``index`` and ``line`` count from the chunk's start.

        Raises:
            InputError: the text is not PGN text (:func:`~.sources.check_text`).
        """
        if self.text is None:
            raise ValueError(f"chunk {self.index} of {self.url} belongs to another part")
        check_text(self.url, self.text, self.start)
        # iter_lines drops a byte-order mark only where it opens the file: so only chunk 0 drops one.
        text = self.text.removeprefix(codecs.BOM_UTF8) if self.start == 0 else self.text
        return split_text(text, self.url)


def plan_work(urls: list[str], unit_bytes: int = UNIT_BYTES) -> list[WorkItem]:
    """The Encode tasks for ``urls``: one per plain-file chunk, ``parts`` per compressed file."""
    items = []
    for file, url in enumerate(urls):
        fs, path = fsspec.core.url_to_fs(url)
        size = fs.size(path)
        if fsspec.utils.infer_compression(url) is None:
            items += [WorkItem(file, url, j, 0) for j in range(chunk_count(size, unit_bytes))]
        else:
            parts = max(1, min(MAX_PARTS, math.ceil(size * COMPRESSION / unit_bytes)))
            items += [WorkItem(file, url, part, parts) for part in range(parts)]
    return items


def chunk_count(text_bytes: int, unit_bytes: int) -> int:
    """Chunks of a file of ``text_bytes``: at least one, so every file has a unit."""
    return max(1, math.ceil(text_bytes / unit_bytes))


def read_chunks(item: WorkItem, unit_bytes: int = UNIT_BYTES) -> Iterator[Chunk]:
    """The chunks of ``item``, in order.

    For a compressed file, every chunk of the file is yielded, those of
    other parts without their text, so the last one tells the chunk count.

    Raises:
        InputError: if the file is unreadable, truncated or corrupt, or a
            plain file cut into several units is served without byte ranges (names it).
        InputUnreachable: if a remote file cannot be reached.
    """
    if item.parts == 0:
        try:
            yield _plain_chunk(item, unit_bytes)
        except InputError:
            raise
        except OSError as error:
            raise input_failure(item.url, error) from error
        except ValueError as error:
            if "range requests" not in str(error):  # fsspec's HTTP file, when the server ignores Range
                raise
            raise InputError(
                f"input {item.url!r} is served without byte ranges, which reading a plain PGN file in units of "
                "--unit-bytes needs: download it, serve it compressed (.pgn.zst), or pass a larger --unit-bytes "
                "than its size"
            ) from error
    else:
        yield from _compressed_chunks(item, unit_bytes)


def _plain_chunk(item: WorkItem, unit_bytes: int) -> Chunk:
    with fsspec.open(item.url, "rb") as handle:
        start = 0 if item.part == 0 else _cut_in_file(handle, item.part * unit_bytes)
        end = _cut_in_file(handle, (item.part + 1) * unit_bytes)
        if start is None:  # no game starts in this chunk's range
            return Chunk(item.file, item.part, item.url, item.part * unit_bytes, b"")
        handle.seek(start)
        text = handle.read() if end is None else handle.read(end - start)
    return Chunk(item.file, item.part, item.url, start, text)


def _cut_in_file(handle: BinaryIO, bound: int) -> int | None:
    """``cut(bound)`` in a seekable file: read from ``bound - 1``, more until decided."""
    handle.seek(bound - 1)
    data = b""
    size = 1 << 16
    while True:
        block = handle.read(size)
        data += block
        cut = _find_cut(data, bound - 1, bound, eof=len(block) < size)
        if cut is not _MORE:
            return cut
        size *= 2


class _More:
    """Marker: the buffer ends before ``cut`` is decided."""


_MORE: Final = _More()


def _find_cut(data: bytes, base: int, bound: int, eof: bool) -> int | None | _More:
    """``cut(bound)`` in ``data``, which holds the text from offset ``base <= bound - 1``.

    Returns the offset of the first safe game start whose preceding movetext
    line starts at or after ``bound``; None if the text ends first; ``_MORE``
    if ``data`` ends before that is decided (and ``eof`` is false).
    """
    newline = data.find(b"\n", bound - 1 - base)
    if newline < 0:
        return None if eof else _MORE
    first = newline + 1  # the first line start at or after bound
    for match in _CANDIDATE.finditer(data, first):
        blank = match.start() + 1
        movetext = data.rfind(b"\n", first, match.start()) + 1 or first
        tag = data.index(b"\n", blank) + 1
        tag_end = data.find(b"\n", tag)
        if tag_end < 0:
            if not eof:
                return _MORE
            tag_end = len(data)
        if _is_safe(data[movetext:match.start()], data[tag:tag_end]):
            return base + tag
    return None if eof else _MORE


def _is_safe(movetext: bytes, tag: bytes) -> bool:
    """Whether these lines (around a blank line) make the tag line a fresh game's start.

    The movetext line is added to the current game's movetext in any state
    (not blank, not a tag, not an escape or line comment); the blank line then
    ends the game, or, inside a comment, the tag line closes it and ends it.
    """
    if movetext[:1] in (b"%", b";"):
        return False
    line = decode_line(movetext).strip()
    return bool(line) and not line.startswith("[") and TAG_LINE.match(decode_line(tag).strip()) is not None


def _compressed_chunks(item: WorkItem, unit_bytes: int) -> Iterator[Chunk]:
    """Stream the file; cut every chunk boundary; yield this part's chunks."""
    blocks = iter_blocks(item.url)
    # A bytearray grows in place and drops its front cheaply: with bytes, each
    # 1 MiB block copied the whole pending chunk again (twice the time of
    # decompressing, in every part).
    buffer = bytearray()
    base = 0  # file offset of buffer[0]
    eof = False
    start, index = 0, 0
    while True:
        bound = (index + 1) * unit_bytes
        while True:
            if bound - 1 - base < len(buffer):
                end = _find_cut(buffer, base, bound, eof)
            else:
                end = None if eof else _MORE
            if end is not _MORE:
                break
            block = next(blocks, b"")
            eof = not block
            buffer += block
        stop = base + len(buffer) if end is None else end
        text = None
        if item.owns(index):
            with memoryview(buffer) as view:  # one copy; the view must end before the buffer changes size
                text = bytes(view[start - base:stop - base])
        yield Chunk(item.file, index, item.url, start, text)
        index += 1
        if end is None and index >= chunk_count(base + len(buffer), unit_bytes):
            return
        # Keep what the next chunk and the next boundary search need.
        keep = min(stop, (index + 1) * unit_bytes - 1)
        del buffer[:keep - base]
        base, start = keep, stop
