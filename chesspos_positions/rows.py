# SPDX-License-Identifier: GPL-3.0-or-later
"""A split's rows between the pipeline's stages: one Arrow table.

A work unit's result and a batch each hold, per split, a table with one row
per sampled position. Its ``tokens`` column is the position's 69 tokens;
configs that need more per position (history, metadata) add columns. Stages
that only move rows around (assembling batches, spilling, shuffling) treat
the table as opaque: they concatenate, slice and take, and so carry any
config's columns unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pyarrow as pa

from .encoding import SEQUENCE_LENGTH

TOKENS: Final = "tokens"
TOKENS_TYPE: Final = pa.list_(pa.int8(), SEQUENCE_LENGTH)


def tokens_column(tokens: np.ndarray) -> pa.FixedSizeListArray:
    """``(n, 69)`` ``int8`` tokens as a fixed-size list column (no copy of contiguous input)."""
    flat = np.ascontiguousarray(tokens, dtype=np.int8).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), SEQUENCE_LENGTH)


def from_tokens(tokens: np.ndarray) -> pa.Table:
    """Rows holding only positions' tokens."""
    return pa.table({TOKENS: tokens_column(tokens)})


def fixed_lists_to_numpy(column: pa.ChunkedArray | pa.Array, shape: tuple[int, ...]) -> np.ndarray:
    """A (nested) fixed-size list column as a numpy array of shape ``(n, *shape)``."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(array)
    # A sliced fixed-size list keeps its parent's child array: cut the values to the slice.
    values = array.flatten()
    while isinstance(values.type, pa.FixedSizeListType):
        values = values.flatten()
    return values.to_numpy(zero_copy_only=False).reshape(n, *shape)


def tokens_of(rows: pa.Table) -> np.ndarray:
    """The ``(n, 69)`` ``int8`` tokens of ``rows``."""
    return fixed_lists_to_numpy(rows.column(TOKENS), (SEQUENCE_LENGTH,))


def concat(parts: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    """The rows of ``parts`` in order (an empty table of ``schema`` for none)."""
    return pa.concat_tables(parts) if parts else schema.empty_table()
