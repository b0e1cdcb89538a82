# SPDX-License-Identifier: GPL-3.0-or-later
"""Raw game files: finding them, streaming them, and cutting them into games.

Files are opened through fsspec, so a path may be local or any fsspec URL
(``https://``, ``hf://``, ``s3://`` ...). Compression is inferred from the
suffix and decompressed as a stream; no file is ever held whole.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import fsspec
import zstandard

#: Suffixes of the raw game files we read, with their fsspec compression.
PGN_SUFFIXES: dict[str, str | None] = {
    ".pgn": None,
    ".pgn.zst": "zstd",
    ".pgn.bz2": "bz2",
    ".pgn.gz": "gzip",
}

_TAG_LINE = re.compile(r'^\s*\[\s*([A-Za-z0-9][A-Za-z0-9_+#=:-]*)\s+"((?:[^"\\]|\\.)*)"\s*\]\s*$')


def is_pgn_path(path: str) -> bool:
    """True if ``path`` ends with one of :data:`PGN_SUFFIXES`."""
    return any(path.lower().endswith(suffix) for suffix in PGN_SUFFIXES)


def compression_of(path: str) -> str | None:
    """The fsspec compression name for ``path`` (None for plain PGN)."""
    lowered = path.lower()
    for suffix, compression in PGN_SUFFIXES.items():
        if compression and lowered.endswith(suffix):
            return compression
    return None


PathLike = str | os.PathLike[str]


def resolve_paths(paths: PathLike | Sequence[PathLike]) -> list[str]:
    """Expand files, directories (recursively) and globs into sorted PGN URLs.

    Raises:
        FileNotFoundError: if a path matches nothing, or if all paths together
            hold no PGN file; the message names the path.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(path) for path in paths]
    if not paths:
        raise FileNotFoundError("no data path given: pass at least one PGN file, directory or glob")
    found: set[str] = set()
    for path in paths:
        fs, root = fsspec.core.url_to_fs(path)
        if fs.isdir(root):
            matches = [p for p in fs.find(root) if is_pgn_path(p)]
            if not matches:
                raise FileNotFoundError(
                    f"no PGN files ({', '.join(PGN_SUFFIXES)}) under directory {path!r}"
                )
        elif fs.isfile(root):
            matches = [root]
        else:
            matches = [p for p in fs.glob(root) if is_pgn_path(p) and fs.isfile(p)] if glob_like(root) else []
            if not matches:
                raise FileNotFoundError(f"data path {path!r} does not exist or matches no PGN file")
        # Local files keep plain paths: they read better in messages and cards.
        local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        found.update(posixpath.normpath(p) if local else fs.unstrip_protocol(p) for p in matches)
    return sorted(found)


def glob_like(path: str) -> bool:
    """True if ``path`` holds glob magic characters."""
    return any(char in path for char in "*?[")


_READ_BLOCK = 1 << 20


def _decode_line(raw: bytes) -> str:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        line = raw.decode("latin-1")
    return line.rstrip("\r")


def iter_lines(url: str) -> Iterator[str]:
    """Stream the decoded text lines of a (compressed) PGN file, without line ends.

    Each line is decoded as UTF-8 and falls back to Latin-1, so files in
    either encoding (and mixed files) read correctly; a UTF-8 byte-order mark
    is dropped. CRLF line ends are normalised.

    Raises:
        OSError: if the file cannot be opened or read; the message names it.
    """
    try:
        with fsspec.open(url, "rb", compression=compression_of(url)) as handle:
            # Decompressing readers have no readline(), so read large blocks
            # and cut lines here; this is also faster than line iteration.
            pending = b""
            first = True
            while block := handle.read(_READ_BLOCK):
                if first:
                    block = block.removeprefix(b"\xef\xbb\xbf")
                    first = False
                lines = (pending + block).split(b"\n")
                pending = lines.pop()
                yield from map(_decode_line, lines)
            if pending:
                yield _decode_line(pending)
    except (OSError, EOFError, zstandard.ZstdError) as error:
        # Decompressors raise EOFError/ZstdError on truncated or corrupt data.
        raise OSError(f"cannot read game file {url!r}: {error}") from error


@dataclass(frozen=True)
class RawGame:
    """The text of one game, as cut from its file.

    Attributes:
        source: URL of the file the game comes from.
        index: 0-based position of the game in its file.
        line: 1-based line number where the game starts, for error messages.
        tags: the tag lines, as they appear.
        movetext: the movetext lines (comment and escape lines excluded).
        broken_tags: the first tag-section line that is not a valid tag, if any.
    """

    source: str
    index: int
    line: int
    tags: tuple[str, ...]
    movetext: tuple[str, ...]
    broken_tags: str | None = None


def split_games(lines: Iterable[str], source: str = "<memory>") -> Iterator[RawGame]:
    """Cut a stream of PGN lines into games.

    The rules are those of real-world files, which a blank-line splitter and
    python-chess's ``read_game`` each get wrong somewhere:

    * a tag line right after movetext starts a new game, so games need no
      blank line between them;
    * one blank line inside a tag section (ChessBase exports) continues the
      same game, unless the next tag repeats one already seen: then it is a
      new, header-only game, so each game keeps its own headers;
    * a blank line ends the movetext, except inside a ``{ comment }``; but a
      blank line then a tag line closes even an unclosed comment, so one
      missing ``}`` cannot swallow the rest of the file;
    * lines starting with ``%`` (escape) or ``;`` (line comment) are ignored.
    """
    index = 0
    tags: list[str] = []
    names: set[str] = set()
    movetext: list[str] = []
    broken: str | None = None
    start = 0
    blank_in_tags = False
    in_comment = False
    blank_in_comment = False

    def flush() -> RawGame:
        return RawGame(source, index, start, tuple(tags), tuple(movetext), broken)

    for number, line in enumerate(lines, start=1):
        if not in_comment and line[:1] in ("%", ";"):
            continue
        stripped = line.strip()
        if blank_in_comment and stripped.startswith("[") and _TAG_LINE.match(stripped):
            in_comment = False
        blank_in_comment = False
        if not stripped:
            if in_comment:
                blank_in_comment = True
                movetext.append(line)
            elif movetext:
                yield flush()
                index += 1
                tags, names, movetext, broken, blank_in_tags = [], set(), [], None, False
            elif tags:
                blank_in_tags = True
            continue
        if stripped.startswith("[") and not in_comment:
            match = _TAG_LINE.match(stripped)
            name = match.group(1) if match else None
            if movetext or (blank_in_tags and name in names):
                yield flush()
                index += 1
                tags, names, movetext, broken = [], set(), [], None
            if not tags and not movetext:
                start = number
            blank_in_tags = False
            tags.append(stripped)
            if name is None:
                broken = broken or f"line {number}: {stripped[:80]!r}"
            else:
                names.add(name)
            continue
        if not tags and not movetext:
            start = number
        movetext.append(line)
        in_comment = _ends_in_comment(line, in_comment)
    if tags or movetext:
        yield flush()


def _ends_in_comment(line: str, in_comment: bool) -> bool:
    """Track whether a ``{`` comment is still open at the end of ``line``."""
    if "{" not in line and "}" not in line:
        return in_comment
    for char in line:
        if in_comment:
            in_comment = char != "}"
        elif char == "{":
            in_comment = True
        elif char == ";":
            break
    return in_comment


def parse_tag(line: str) -> tuple[str, str] | None:
    """Return ``(name, value)`` of a tag line, unescaping the value; None if malformed."""
    match = _TAG_LINE.match(line)
    if match is None:
        return None
    return match.group(1), match.group(2).replace('\\"', '"').replace("\\\\", "\\")


_SIMPLE_TAG_LINES = re.compile(r'^\[([A-Za-z0-9][A-Za-z0-9_+#=:-]*) "([^"\\\n]*)"\]$', re.MULTILINE)


def parse_tags(lines: Sequence[str]) -> dict[str, str]:
    """The tags of a tag section as a dict: :func:`parse_tag` of each line, malformed ones left out."""
    # Fast path, three times faster on real files: when every line is a plain
    # [Name "value"] (single space, no escapes), one regex pass reads them all,
    # with the result parse_tag would give.
    text = "\n".join(lines)
    found = _SIMPLE_TAG_LINES.findall(text)
    if len(found) == len(lines) == text.count("\n") + 1:
        return dict(found)
    return dict(tag for tag in map(parse_tag, lines) if tag is not None)


def iter_raw_games(urls: Iterable[str]) -> Iterator[RawGame]:
    """All games of the given files, in file order then game order."""
    for url in urls:
        yield from split_games(iter_lines(url), url)
