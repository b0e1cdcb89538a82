# SPDX-License-Identifier: GPL-3.0-or-later
"""The dataset's configs: each one's ``Features``, folder, and how its examples are made.

Every config holds the same sampled positions in the same order and split;
configs differ only in what a row carries:

* ``default``: ``window`` holds 10 copies of the position, ``scalars`` zeros.
  Its schema is the design card's, unchanged forever.
* ``history``: ``window[i]`` is the position ``i`` plies earlier (mask
  tokens before the game's first position), plus flat metadata columns.
* ``bitboard`` and ``tensor``: the ``history`` rows and columns, with each
  ``window`` row in the original project's bool encodings
  (:func:`~.encoding.board_to_bitboard`, :func:`~.encoding.board_to_tensor`);
  padding rows are all False.

:func:`examples_table` turns a split's rows (:mod:`.rows`) into the examples
of a config, as an Arrow table with exactly the config's features: the one
code path of the builder and of the published shards.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import pyarrow as pa
from datasets import Array2D, Array4D, Features, Sequence, Value

from . import rows as rows_
from .encoding import BITBOARD_LENGTH, SEQUENCE_LENGTH, TENSOR_SHAPE, tokens_to_bitboards, tokens_to_tensors
from .history import WINDOW_LENGTH

N_SCALARS: Final = 3

ConfigName = Literal["default", "history", "bitboard", "tensor"]
CONFIG_NAMES: Final[tuple[str, ...]] = get_args(ConfigName)

_WINDOW: Final = Array2D(shape=(WINDOW_LENGTH, SEQUENCE_LENGTH), dtype="int8")
_SCALARS: Final = Sequence(Value("int8"), length=N_SCALARS)

#: The features of the ``default`` config: the design card's schema.
FEATURES: Final = Features({"window": _WINDOW, "scalars": _SCALARS})


def _history_features(window: Array2D | Array4D) -> Features:
    """The features of a config with ``history`` rows: ``window``, ``scalars``, then the metadata columns."""
    return Features({"window": window, "scalars": _SCALARS, **Features.from_arrow_schema(rows_.METADATA_SCHEMA)})


#: The features of the ``history`` config.
HISTORY_FEATURES: Final = _history_features(_WINDOW)
BITBOARD_FEATURES: Final = _history_features(Array2D(shape=(WINDOW_LENGTH, BITBOARD_LENGTH), dtype="bool"))
TENSOR_FEATURES: Final = _history_features(Array4D(shape=(WINDOW_LENGTH, *TENSOR_SHAPE), dtype="bool"))


@dataclass(frozen=True)
class Config:
    """One config of the dataset.

    Attributes:
        name: the config name (``load_dataset(repo, name)``).
        rows: what the generated rows must hold for it.
        features: its examples' features.
        description: one line for the card.
    """

    name: ConfigName
    rows: rows_.RowKind
    features: Features
    description: str

    @property
    def folder(self) -> str:
        """Where its shards live in a release: the root for ``default``, else a folder named after it."""
        return "" if self.name == "default" else f"{self.name}/"

    def data_files(self, split: str) -> str:
        """The glob of its ``split`` shards, relative to the release root."""
        return f"{self.folder}{split}/*.parquet"


CONFIGS: Final[dict[str, Config]] = {
    "default": Config("default", "position", FEATURES, "the position repeated 10 times in `window`"),
    "history": Config(
        "history", "history", HISTORY_FEATURES,
        "`window[i]` is the position `i` plies earlier (mask before the game's start), plus game and position metadata",
    ),
    "bitboard": Config(
        "bitboard", "history", BITBOARD_FEATURES,
        "`history` with each window row as the original 773-bool bitboard (all False before the game's start)",
    ),
    "tensor": Config(
        "tensor", "history", TENSOR_FEATURES,
        "`history` with each window row as the original 8x8x15-bool tensor (all False before the game's start)",
    ),
}


#: The config whose shards live in each folder of a release (:attr:`Config.folder`).
CONFIG_OF_FOLDER: Final[dict[str, str]] = {spec.folder: name for name, spec in CONFIGS.items()}

def array_column(values: np.ndarray, feature: Array2D | Array4D) -> pa.ExtensionArray:
    """``(n, *feature.shape)`` values as the ``datasets`` ArrayND extension column of ``feature``.

    The nested lists are built from one flat buffer and offsets rather than
    per-row Python objects: the layout ``datasets`` writes, at numpy speed.
    """
    flat = np.ascontiguousarray(values).reshape(-1)
    storage: pa.Array
    if flat.dtype == np.bool_:
        # Arrow's bitmap is numpy's little-bit-first packing: ten times faster than pa.array's own.
        bitmap = pa.py_buffer(np.packbits(flat, bitorder="little"))
        storage = pa.Array.from_buffers(pa.bool_(), len(flat), [None, bitmap])
    else:
        storage = pa.array(flat)
    lists = len(storage)
    # Innermost level first: lists of shape[-1] values, then lists of those ...
    for size in reversed(feature.shape):
        lists //= size
        storage = pa.ListArray.from_arrays(_list_offsets(lists, size), storage)
    return pa.ExtensionArray.from_storage(feature(), storage)


@functools.lru_cache(maxsize=16)
def _list_offsets(lists: int, size: int) -> np.ndarray:
    """The offsets of ``lists`` lists of ``size`` values each, read-only.

    Arrow wraps them without a copy, so the equal chunks of a bool window
    column share one buffer: a tensor's innermost offsets outweigh its bits.
    """
    offsets = np.arange(0, lists * size + 1, size, dtype=np.int32)
    offsets.flags.writeable = False
    return offsets


#: The batch encoder of each bool window config: ``(n, 10, 69)`` tokens and
#: ``(n, 10)`` en passant squares to its window values.
_BOOL_WINDOWS: Final[dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "bitboard": lambda tokens, en_passant: tokens_to_bitboards(tokens),
    "tensor": tokens_to_tensors,
}

#: Rows encoded at a time into bool windows: numpy holds a bool in a byte
#: (9.6 kB per tensor example), Arrow in a bit, so a whole batch at once would
#: take 8 times its column's memory. 1024 rows keep each chunk's bytes (10 MB)
#: under glibc's largest mmap threshold (32 MB), so each thread's chunks reuse
#: a block of its heap instead of each mapping, and faulting in, fresh pages:
#: 4096 rows took 7-13 µs per example here, 1024 rows 5 (on one thread).
_BOOL_CHUNK_ROWS: Final = 1024


def _window_column(rows: pa.Table, config: Config) -> pa.ExtensionArray | pa.ChunkedArray:
    """The ``window`` column of ``rows`` in ``config``."""
    feature = config.features["window"]
    if config.name == "default":
        tokens = rows_.tokens_of(rows)
        return array_column(np.broadcast_to(tokens[:, None, :], (len(tokens), WINDOW_LENGTH, SEQUENCE_LENGTH)), feature)
    history = rows_.fixed_lists_to_numpy(rows.column(rows_.HISTORY), (WINDOW_LENGTH, SEQUENCE_LENGTH))
    if config.name == "history":
        return array_column(history, feature)
    en_passant = rows_.fixed_lists_to_numpy(rows.column(rows_.HISTORY_EN_PASSANT), (WINDOW_LENGTH,))
    encode = _BOOL_WINDOWS[config.name]

    def chunk(start: int) -> pa.ExtensionArray:
        stop = start + _BOOL_CHUNK_ROWS
        return array_column(encode(history[start:stop], en_passant[start:stop]), feature)

    # numpy releases the GIL in the encoders' gathers and in packbits, so the
    # chunks encode on several threads (5.6 -> about 3 µs per tensor example on
    # 2 cores). The pool lives for one call: threads do not survive a fork, and
    # local workers may be forked from this process.
    starts = range(0, len(history), _BOOL_CHUNK_ROWS)
    with ThreadPoolExecutor(max(1, min(_usable_cores(), _BOOL_THREADS, len(starts)))) as pool:
        return pa.chunked_array(list(pool.map(chunk, starts)), type=feature())


#: At most this many threads encode bool windows in one process: each holds
#: about 12 MB of temporaries, and a machine with many cores runs as many
#: worker processes, each with its own threads.
_BOOL_THREADS: Final = 4


def _usable_cores() -> int:
    """The cores this process may run on (a Slurm task's share, not the node's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def examples_table(rows: pa.Table, config: Config) -> pa.Table:
    """The examples of ``rows`` in ``config``, with exactly its features' schema."""
    n = rows.num_rows
    columns = {
        "window": _window_column(rows, config),
        "scalars": pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(n * N_SCALARS, np.int8)), N_SCALARS),
    }
    columns.update({name: rows.column(name) for name in config.features if name not in columns})
    return pa.table(columns, schema=config.features.arrow_schema)
