# SPDX-License-Identifier: GPL-3.0-or-later
"""Parquet shards: the layout of a release and how each shard is written."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from chesspos_positions.configs import Config, examples_table

SPLITS = ("train", "test")

#: Rows per row group: about 7 MB uncompressed, so the dataset viewer and
#: streaming readers reach the first rows without reading a whole shard, and
#: ``iter_batches`` can hand 3 shards to 8 workers.
ROW_GROUP_SIZE = 10_000

#: How every shard is written (the Parquet writer's properties; dictionaries
#: are chosen per column by ``_dictionary_columns``); chosen by
#: ``benchmarks/bench_shards.py``, whose trade-off table is in
#: ``benchmarks/README.md``. PLAIN values under zstd level 6, so that every
#: current reader opens the shards: byte-stream-split on the int8 (physical
#: INT32) ``window`` leaf is refused by DuckDB 1.0-1.5 and pyarrow 14-15.
#: Content-defined chunking is off: shards are immutable and shuffled, so it
#: shared no chunk between releases and cost about 40 % of the write time.
PARQUET_OPTIONS: Final[dict[str, Any]] = {
    "compression": "zstd",
    "compression_level": 6,
    "write_page_index": True,
    "use_content_defined_chunking": False,
}

#: The zstd level of a config's ``window`` leaf where it differs from
#: ``PARQUET_OPTIONS``'. A ``history`` window holds 10 different positions,
#: not 10 copies of one, and zstd 6 searches it far longer: for the 466k
#: shared Lichess positions, 12.0 CPU seconds (81 bytes/sample) against 5.1 s
#: at level 1 (94 bytes/sample), while ``default``'s window takes 6.6 s at
#: level 6. Level 1 keeps ``history`` well within 1.5x ``default``'s cost per
#: sample (``benchmarks/bench_configs.py``); levels 2-4 compress no better
#: than 1, and level 5 (89 bytes/sample) takes about 8 s.
WINDOW_COMPRESSION_LEVELS: Final[dict[str, int]] = {"history": 1}


def shard_path(config: Config, split: str, index: int, batches: int) -> str:
    """``{folder}{split}/batch_{index}.parquet``, 3 digits, more only past 999 batches.

    The folder is the config's (:attr:`Config.folder`): none for ``default``.
    """
    width = max(3, len(str(batches)))
    return f"{config.folder}{split}/batch_{index:0{width}d}.parquet"


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
    is deterministic: the same rows give the same bytes. Configs with a bool
    ``window`` are written by polars (:func:`_write_bool_windows`), the
    others by pyarrow.
    """
    table = examples_table(rows, config)
    local_path = root / path_in_repo
    local_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if config.features["window"].dtype == "bool":
            _write_bool_windows(table, local_path)
        else:
            options = {**PARQUET_OPTIONS, "compression_level": _compression_levels(table, config)}
            with pq.ParquetWriter(local_path, table.schema, use_dictionary=_dictionary_columns(table), **options) as writer:
                # An empty split of a partial batch gets no row group at all:
                # datasets cannot stream a row group of zero rows.
                if table.num_rows:
                    writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
    except OSError as error:
        local_path.unlink(missing_ok=True)
        raise OSError(f"cannot write shard {local_path}: {error}") from error
    return Shard(path_in_repo, local_path, table.num_rows, table.nbytes, local_path.stat().st_size, file_sha256(local_path))


def _write_bool_windows(table: pa.Table, path: Path) -> None:
    """Write ``table``, whose ``window`` is a bool ArrayND column, with polars' Parquet writer.

    pyarrow's writer spends about 20 ns per bool leaf on its repetition and
    definition levels (level histograms, RLE of the levels, bool packing):
    150 (bitboard) and 220 (tensor) µs per example, against 35 for the whole
    ``history`` example. polars writes the same Parquet schema and values 4
    to 5 times faster. The file is like pyarrow's: rows in
    :data:`ROW_GROUP_SIZE` row groups (none for no rows), zstd at
    :data:`PARQUET_OPTIONS`' level, and the key-value metadata pyarrow
    writes (``huggingface`` and ``ARROW:schema``, the base64 IPC schema that
    Arrow readers restore the extension types from). It has no page index.

    Raises:
        OSError: if the file cannot be written (polars reports a full disk as a ``ComputeError``).
    """
    import polars  # here: importing it takes 0.3 s, which the other configs do not need

    window = table.column("window")
    shape = window.type.shape
    fixed: pa.DataType = pa.bool_()
    for size in reversed(shape):
        fixed = pa.list_(fixed, size)
    chunks = []
    for chunk in window.chunks:
        # The same bits as nested fixed-size lists: polars takes them without a
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
            compression=PARQUET_OPTIONS["compression"],
            compression_level=PARQUET_OPTIONS["compression_level"],
            row_group_size=ROW_GROUP_SIZE,
            metadata={key.decode(): value.decode() for key, value in metadata.items()},
        )
    except polars.exceptions.ComputeError as error:
        raise OSError(str(error)) from error


def _leaf(table: pa.Table, name: str) -> str:
    """The Parquet path of column ``name``'s values: ``.list.element`` once per level of (ArrayND) lists."""
    kind = table.schema.field(name).type
    if isinstance(kind, pa.ExtensionType):
        kind = kind.storage_type
    depth = 0
    while pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind):
        kind, depth = kind.value_type, depth + 1
    return name + ".list.element" * depth


def _dictionary_columns(table: pa.Table) -> list[str]:
    """The Parquet leaves worth a dictionary: all but the window and the FEN, which rarely repeat.

    The window's 18 distinct tokens gain nothing from one: 98 instead of 33.5 bytes/sample.
    """
    return [_leaf(table, name) for name in table.column_names if name not in ("window", "fen")]


def _compression_levels(table: pa.Table, config: Config) -> int | dict[str, int]:
    """The writer's ``compression_level``: ``PARQUET_OPTIONS``' level, per leaf where ``config``'s window differs."""
    level: int = PARQUET_OPTIONS["compression_level"]
    window = WINDOW_COMPRESSION_LEVELS.get(config.name)
    if window is None:
        return level
    levels = {_leaf(table, name): level for name in table.column_names}
    return {**levels, _leaf(table, "window"): window}


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file (the Hub's LFS oid)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
