# SPDX-License-Identifier: GPL-3.0-or-later
"""Parquet shards: the layout of a release and how each shard is written."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features

from chesspos_positions.configs import Config, examples_table

from . import interrupts

#: Rows per row group of each config's shards, so that the dataset viewer and
#: streaming readers reach the first rows without reading a whole shard, and
#: ``iter_batches`` can hand 3 shards to 8 workers. A reader decodes a whole
#: row group at once, and its memory follows the row group's values: 10,000
#: token windows are 6.9 M values (about 200 MB to decode with pyarrow), and
#: 1,000 bool windows 7.7 M (``bitboard``) or 9.6 M (``tensor``), 170 MB where
#: 10,000 took 1 GB, for 3.5 % more bytes.
ROW_GROUP_ROWS: Final[dict[str, int]] = {"default": 10_000, "history": 10_000, "bitboard": 1_000, "tensor": 1_000}

#: The zstd level of each config's shards. Every shard is written by polars
#: (:func:`_write`), with one level per file. Chosen by
#: ``benchmarks/bench_shards.py`` and ``benchmarks/bench_configs.py``, whose
#: tables are in ``benchmarks/README.md``:
#:
#: * ``default``: level 6 is the cheapest under 34 bytes/sample. Its window
#:   repeats one position 10 times, and lower levels miss those repeats
#:   (about 50 bytes/sample at levels 1-3).
#: * ``history``: 10 different positions per window, which level 6 searches far
#:   longer (3.6 times the write time for 12 % fewer bytes); levels 2-4 compress
#:   no better than 1.
#: * ``bitboard`` and ``tensor``: they extend ``history`` and are held to at
#:   most twice its cost per example, so level 1 as well. Level 6 would give
#:   204 instead of 227 (bitboard) and 101 instead of 133 (tensor)
#:   bytes/sample, for 40 % more CPU time writing a tensor shard.
COMPRESSION_LEVELS: Final[dict[str, int]] = {"default": 6, "history": 1, "bitboard": 1, "tensor": 1}


def shard_path(config: Config, split: str, index: int, batches: int) -> str:
    """``{folder}{split}/batch_{index}.parquet``, 3 digits, more only past 999 batches.

    The folder is the config's (:attr:`Config.folder`): none for ``default``.
    """
    width = max(3, len(str(batches)))
    return f"{config.folder}{split}/batch_{index:0{width}d}.parquet"


#: A shard's path in a release, as :func:`shard_path` names it.
_SHARD_PATH: Final = re.compile(r"^(?:(\w+)/)?(train|test)/batch_(\d+)\.parquet$")


def parse_shard_path(path: str) -> tuple[str, str, str] | None:
    """``(folder, split, batch digits)`` of a path :func:`shard_path` names (folder ``""`` or ``"NAME/"``), else None."""
    if match := _SHARD_PATH.match(path):
        folder, split, digits = match.groups()
        return (f"{folder}/" if folder else "", split, digits)
    return None


@dataclass(frozen=True)
class Shard:
    """A written shard: where it is in the release, its rows and its bytes."""

    path_in_repo: str
    local_path: Path
    num_examples: int
    num_bytes: int  # Arrow (in-memory) size, as datasets records it
    size: int  # file size
    sha256: str

    @property
    def split(self) -> str:
        """``train`` or ``test``: the folder the shard sits in."""
        return Path(self.path_in_repo).parent.name


def write_shard(rows: pa.Table, config: Config, root: Path, path_in_repo: str) -> Shard:
    """Write the examples of ``rows`` (see :mod:`chesspos_positions.rows`) as one Parquet shard.

    The schema is the config's features' Arrow schema, with its ``huggingface``
    metadata, so ``load_dataset`` restores the exact features. The file
    is deterministic: the same rows give the same bytes.
    """
    table = examples_table(rows, config)
    local_path = root / path_in_repo
    local_path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then renamed: a file already at the path may be hard-linked into an output
    # folder (a work folder's shard, rewritten by a rerun), which must keep its bytes.
    partial = local_path.with_name(f".{local_path.name}.{os.getpid()}.partial")
    try:
        with interrupts.held():  # polars may start its threads and its signal handler here
            _write(table, partial, COMPRESSION_LEVELS[config.name], ROW_GROUP_ROWS[config.name])
        os.replace(partial, local_path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise OSError(f"cannot write shard {local_path}: {error}") from error
    except BaseException:  # an interrupt held during the write is raised as it ends
        partial.unlink(missing_ok=True)
        raise
    return Shard(path_in_repo, local_path, table.num_rows, table.nbytes, local_path.stat().st_size, file_sha256(local_path))


def _write(table: pa.Table, path: Path, level: int, row_group_rows: int) -> None:
    """Write ``table``, whose ``window`` is a ``datasets`` ArrayND column, with polars' Parquet writer.

    pyarrow's writer spends most of a shard's time on the repetition and
    definition levels of the window's nested lists: 16 µs per ``default``
    example, 150 (bitboard) and 220 (tensor) µs. polars writes the same Parquet
    schema and values 2 to 5 times faster on one thread, and splits the work
    over its threads. The file is like pyarrow's: rows in
    row groups of ``row_group_rows`` (none for no rows, which ``datasets``
    could not stream), zstd at ``level``, statistics, and the key-value
    metadata pyarrow writes (``huggingface`` and ``ARROW:schema``, the base64
    IPC schema that Arrow readers restore the extension types from), and a
    page index.

    Raises:
        OSError: if the file cannot be written (polars reports a full disk as a ``ComputeError``).
    """
    import polars  # here: importing it takes 0.3 s, which a process that writes no shard does not need

    window = table.column("window")
    shape = window.type.shape
    fixed = window.type.storage_type
    while pa.types.is_list(fixed):
        fixed = fixed.value_type
    for size in reversed(shape):
        fixed = pa.list_(fixed, size)
    chunks = []
    for chunk in window.chunks:
        # The same values as nested fixed-size lists: polars takes them without a
        # copy, where it would copy a list's offsets as 64-bit (5 kB per tensor example).
        leaves = chunk.storage
        for _ in shape:
            leaves = leaves.flatten()
        for size in reversed(shape):
            leaves = pa.FixedSizeListArray.from_arrays(leaves, size)
        chunks.append(leaves)
    fixed_window = pa.chunked_array(chunks, fixed)
    frame = polars.from_arrow(table.set_column(table.schema.get_field_index("window"), "window", fixed_window), rechunk=False)
    metadata = {**table.schema.metadata, b"ARROW:schema": base64.b64encode(table.schema.serialize().to_pybytes())}
    try:
        frame.write_parquet(
            path,
            compression="zstd",
            compression_level=level,
            row_group_size=row_group_rows,
            metadata={key.decode(): value.decode() for key, value in metadata.items()},
        )
    except polars.exceptions.ComputeError as error:
        raise OSError(str(error)) from error


def same_rows(path: Path, other: Path) -> bool:
    """Whether two shards hold the same features and the same rows in the same order, whatever wrote them.

    A release's shards are compared byte for byte first; this is the check
    for a shard whose bytes differ, such as one an earlier version of the
    writer made (other zstd levels, pyarrow's writer) from the same rows.
    Rows are compared one record batch at a time, so memory stays that of a
    batch, not of a shard (a tensor shard decodes to gigabytes).
    """
    files = pq.ParquetFile(path), pq.ParquetFile(other)
    if files[0].metadata.num_rows != files[1].metadata.num_rows:
        return False
    if Features.from_arrow_schema(files[0].schema_arrow) != Features.from_arrow_schema(files[1].schema_arrow):
        return False
    batches = [iter(file.iter_batches(batch_size=1024)) for file in files]
    # The files' row groups may differ, so batches are aligned by slicing the longer one.
    left = right = None
    while True:
        if not left:
            left = next(batches[0], None)
        if not right:
            right = next(batches[1], None)
        if left is None or right is None:
            return left is None and right is None
        n = min(len(left), len(right))
        if not left.slice(0, n).equals(right.slice(0, n)):
            return False
        left, right = left.slice(n), right.slice(n)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file (the Hub's LFS oid)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
