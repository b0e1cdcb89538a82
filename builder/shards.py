# SPDX-License-Identifier: GPL-3.0-or-later
"""Parquet shards: the layout of a release and how each shard is written."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow.parquet as pq

from chesspos_positions.examples import columns_to_table, make_columns

SPLITS = ("train", "test")

#: Rows per row group: about 7 MB uncompressed, so the dataset viewer and
#: streaming readers reach the first rows without reading a whole shard, and
#: ``iter_batches`` can hand 3 shards to 8 workers.
ROW_GROUP_SIZE = 10_000

#: How every shard is written; chosen by ``benchmarks/bench_shards.py`` (the
#: trade-off table is in ``benchmarks/README.md``). PLAIN values under zstd,
#: so that every current reader opens the shards: byte-stream-split on the
#: int8 (physical INT32) ``window`` leaf is refused by DuckDB 1.0-1.5 and
#: pyarrow 14-15. Dictionaries only add size for 18 distinct tokens.
#: Content-defined chunking is off: shards are immutable and shuffled, so it
#: shared no chunk between releases and cost write time.
PARQUET_OPTIONS: Final[dict[str, Any]] = {
    "row_group_size": ROW_GROUP_SIZE,
    "compression": "zstd",
    "compression_level": 6,
    "use_dictionary": False,
    "write_page_index": True,
    "use_content_defined_chunking": False,
}


def shard_path(split: str, index: int, batches: int) -> str:
    """``{split}/batch_{index}.parquet``, 3 digits, more only past 999 batches."""
    width = max(3, len(str(batches)))
    return f"{split}/batch_{index:0{width}d}.parquet"


@dataclass(frozen=True)
class Shard:
    """A written shard: where it is in the release, its rows and its bytes."""

    path_in_repo: str
    local_path: Path
    num_examples: int
    num_bytes: int  # Arrow (in-memory) size, as datasets records it
    size: int  # file size
    sha256: str


def write_shard(tokens: np.ndarray, window_mode: str, root: Path, path_in_repo: str) -> Shard:
    """Write the rows for ``tokens`` (``(n, 69)`` int8) as one Parquet shard.

    The schema is ``FEATURES.arrow_schema``, with its ``huggingface``
    metadata, so ``load_dataset`` restores the exact features. The file
    is deterministic: the same rows give the same bytes.
    """
    table = columns_to_table(make_columns(tokens, window_mode))
    local_path = root / path_in_repo
    local_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        pq.write_table(table, local_path, **PARQUET_OPTIONS)
    except OSError as error:
        local_path.unlink(missing_ok=True)
        raise OSError(f"cannot write shard {local_path}: {error}") from error
    return Shard(path_in_repo, local_path, table.num_rows, table.nbytes, local_path.stat().st_size, file_sha256(local_path))


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file (the Hub's LFS oid)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
