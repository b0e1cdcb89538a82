# SPDX-License-Identifier: GPL-3.0-or-later
"""Raw game files: finding them and streaming their text.

Files are opened through fsspec, so a path may be local or any fsspec URL
(``https://``, ``hf://``, ``s3://`` ...). Compression is inferred from the
suffix and decompressed as a stream; no file is ever held whole, and a
stream cut short (an interrupted download) is an error, not a shorter file.
"""

from __future__ import annotations

import codecs
import glob
import gzip
import hashlib
import os
import posixpath
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem
from datasets.data_files import resolve_pattern

from .pgn import RawGame, decode_line, split_games

#: Suffixes of the raw game files we read. fsspec infers each one's
#: compression from its last suffix (``compression="infer"``).
PGN_SUFFIXES = (".pgn", ".pgn.zst", ".pgn.bz2", ".pgn.gz")


def is_pgn_path(path: str) -> bool:
    """True if ``path`` ends with one of :data:`PGN_SUFFIXES`."""
    return any(path.lower().endswith(suffix) for suffix in PGN_SUFFIXES)


PathLike = str | os.PathLike[str]

try:  # the HTTP client huggingface_hub (hf://) is built on
    from httpx2 import HTTPError as _HubHTTPError
except ImportError:  # pragma: no cover - older huggingface_hub releases
    from httpx import HTTPError as _HubHTTPError
if sys.version_info >= (3, 14):  # what fsspec reads .zst files with, so what it raises
    from compression.zstd import ZstdError
else:
    from backports.zstd import ZstdError

#: What decompressors raise on a cut or damaged stream (bz2 raises a plain OSError).
_CORRUPT: tuple[type[Exception], ...] = (EOFError, ZstdError, zlib.error, gzip.BadGzipFile)


def network_errors() -> tuple[type[Exception], ...]:
    """What reaching a remote input can raise besides OSError: httpx (hf://) and aiohttp (https://) errors.

    aiohttp's only once it is loaded: fsspec loads it to open an https:// URL,
    and no error of it exists before. Importing it here cost every process
    about 0.3 s of start-up (1.83 against 1.53 s for the CLI's imports).
    """
    aiohttp = sys.modules.get("aiohttp")
    return (_HubHTTPError, aiohttp.ClientError) if aiohttp is not None else (_HubHTTPError,)


class InputError(OSError):
    """An input file cannot be used: it is unreadable, truncated or corrupt. The message names it."""


class InputUnreachable(ConnectionError):
    """A remote input cannot be reached (network failure, server error). The message names the URL."""


class InputMissing(InputError, FileNotFoundError):
    """An input file does not exist (any more). The message names it."""


def input_failure(path: str, error: BaseException) -> OSError:
    """The error to raise for ``error`` met while using input ``path``: one line, naming the path."""
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, FileNotFoundError):
        return InputMissing(f"input {path!r} does not exist ({detail})")
    if isinstance(error, _CORRUPT):
        return InputError(f"input file {path!r} is truncated or corrupt: {detail}")
    if "://" in path and not path.startswith("file://"):
        return InputUnreachable(f"cannot reach input {path!r}: {type(error).__name__}: {detail}")
    return InputError(f"cannot read input file {path!r}: {detail}")


def resolve_paths(paths: PathLike | Sequence[PathLike]) -> list[str]:
    """Expand files, directories (recursively) and globs into sorted PGN URLs.

    Patterns are resolved by ``datasets``' data-files resolution, as for
    ``load_dataset(data_files=...)``: hidden files and folders are left out
    unless named. Local files keep plain paths.

    Raises:
        FileNotFoundError: if a path matches nothing, or no PGN file, or a local
            folder holds a PGN link to nothing; the message names the path.
        InputUnreachable: if a remote path cannot be reached; the message names it.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(path) for path in paths]
    if not paths:
        raise FileNotFoundError("no data path given: pass at least one PGN file, directory or glob")
    found: set[str] = set()
    for path in paths:
        try:
            fs, root = fsspec.core.url_to_fs(path)
            is_dir = fs.isdir(root)
            # A folder or file that exists is itself, even where its name looks like a pattern (data[1]/, game[1].pgn).
            literal = glob.escape(path) if is_dir or (glob_like(path) and fs.isfile(root)) else path
            pattern = posixpath.join(literal, "**") if is_dir else literal
            try:
                # Suffixes are checked below, in any case (GAMES.PGN): datasets' own check is case-sensitive.
                matches = resolve_pattern(pattern, base_path=os.getcwd())
            except FileNotFoundError:
                matches = []
        except (OSError, *network_errors()) as error:
            raise input_failure(path, error) from error
        matches = [m for m in matches if is_pgn_path(m)]
        if is_dir and isinstance(fs, LocalFileSystem):
            _refuse_dangling_links(root, path)
        if not matches and is_dir:
            raise FileNotFoundError(f"no PGN files ({', '.join(PGN_SUFFIXES)}) under input directory {path!r}")
        if not matches:
            raise FileNotFoundError(f"input {path!r} does not exist or matches no PGN file ({', '.join(PGN_SUFFIXES)})")
        found.update(posixpath.normpath(m) if "://" not in m else m for m in matches)
    return sorted(found)


def _refuse_dangling_links(root: str, path: str) -> None:
    """Refuse a PGN link to nothing under local input folder ``root``: it names a file the folder should
    hold, which the folder's listing leaves out without a word. Names the listing leaves out (hidden,
    starting with ``.`` or ``__``, as ``datasets`` resolves folders) are left out here too.

    Raises:
        InputMissing: naming the link and its target.
    """
    def shown(name: str) -> bool:
        return not name.startswith((".", "__"))

    for folder, folders, files in os.walk(root):  # not into linked folders: a link cycle would never end
        folders[:] = sorted(filter(shown, folders))
        for name in sorted(filter(shown, files)):
            link = Path(folder, name)
            if is_pgn_path(name) and link.is_symlink() and not link.exists():
                raise InputMissing(f"input {str(link)!r}, under input directory {path!r}, is a link to "
                                   f"{os.readlink(link)!r}, which does not exist")


def glob_like(path: str) -> bool:
    """True if ``path`` holds glob magic characters."""
    return any(char in path for char in "*?[")


_READ_BLOCK = 1 << 20


def iter_blocks(url: str) -> Iterator[bytes]:
    """Stream the decompressed bytes of an input file, in blocks of up to 1 MiB.

    The compression is inferred from the suffix (``.zst``, ``.bz2``, ``.gz``).
    A stream that ends before its end-of-stream marker is an error: so a
    cut download is never read as a shorter file.

    Raises:
        InputError: if the file is unreadable, truncated or corrupt.
        InputUnreachable: if a remote file cannot be reached.
    """
    try:
        with fsspec.open(url, "rb", compression="infer") as handle:
            while block := handle.read(_READ_BLOCK):
                yield block
    except (OSError, *_CORRUPT, *network_errors()) as error:
        raise input_failure(url, error) from error


def file_digest(url: str) -> tuple[str, int]:
    """The sha256 (hex) and size in bytes of an input file as stored (compressed files are not decompressed).

    Raises:
        InputError: if the file is unreadable.
        InputUnreachable: if a remote file cannot be reached.
    """
    try:
        fs, path = fsspec.core.url_to_fs(url)
        with fs.open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        return digest, fs.size(path)
    except (OSError, *network_errors()) as error:
        raise input_failure(url, error) from error


def check_text(url: str, data: bytes, offset: int) -> None:
    """Refuse ``data``, the text of ``url`` from byte ``offset`` on, if it holds a NUL byte.

    No PGN text does: it is binary data, or UTF-16 text. Read as Latin-1,
    random bytes hold the odd "game" of legal moves, which would otherwise be published.

    Raises:
        InputError: naming the file and the byte.
    """
    if (nul := data.find(b"\0")) >= 0:
        raise InputError(
            f"input {url!r} is not PGN text: byte {offset + nul} of its text is NUL (binary data, "
            "or text in UTF-16?); PGN files are UTF-8 or Latin-1 text"
        )


def iter_lines(url: str) -> Iterator[str]:
    """Stream the decoded text lines of a (compressed) PGN file, without line ends.

    Each line is decoded as UTF-8 and falls back to Latin-1, so files in
    either encoding (and mixed files) read correctly; a UTF-8 byte-order mark
    is dropped. CRLF line ends are normalised.

    Raises:
        InputError: if the file is unreadable, truncated or corrupt, or not
            PGN text (:func:`check_text`); the message names it.
        InputUnreachable: if a remote file cannot be reached.
    """
    # Decompressing readers have no readline(), so read large blocks and cut
    # lines here; this is also faster than line iteration.
    pending = b""
    offset = 0
    for block in iter_blocks(url):
        check_text(url, block, offset)
        first, offset = not offset, offset + len(block)
        if first:
            block = block.removeprefix(codecs.BOM_UTF8)
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        yield from map(decode_line, lines)
    if pending:
        yield decode_line(pending)


def iter_raw_games(urls: Iterable[str]) -> Iterator[RawGame]:
    """All games of the given files, in file order then game order."""
    for url in urls:
        yield from split_games(iter_lines(url), url)
