# SPDX-License-Identifier: GPL-3.0-or-later
"""The dataset's columns: the one ``Features`` object and how rows are filled."""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
from datasets import Array2D, Features, Sequence, Value
from datasets.features.features import Array2DExtensionType

from .encoding import SEQUENCE_LENGTH
from .rows import tokens_of

WINDOW_LENGTH: Final = 10
N_SCALARS: Final = 3

#: The features of every dataset version. Everything else refers to this.
FEATURES: Final = Features(
    {
        "window": Array2D(shape=(WINDOW_LENGTH, SEQUENCE_LENGTH), dtype="int8"),
        "scalars": Sequence(Value("int8"), length=N_SCALARS),
    }
)

#: How ``window`` is filled. "repeat": 10 copies of the position's tokens.
#: Temporal windows (consecutive positions) will be another mode.
WINDOW_MODES: Final = ("repeat",)


def make_columns(rows: pa.Table, window_mode: str = "repeat") -> dict[str, np.ndarray]:
    """The column arrays of the examples for ``rows`` (see :mod:`.rows`).

    Returns:
        ``window``: ``int8`` ``(n, 10, 69)``; ``scalars``: ``int8`` ``(n, 3)``, zeros.
    """
    if window_mode not in WINDOW_MODES:
        raise ValueError(f"unknown window mode {window_mode!r}; expected one of {WINDOW_MODES}")
    tokens = tokens_of(rows)
    n = len(tokens)
    window = np.broadcast_to(tokens[:, None, :], (n, WINDOW_LENGTH, SEQUENCE_LENGTH))
    return {"window": window, "scalars": np.zeros((n, N_SCALARS), dtype=np.int8)}


def columns_to_table(columns: dict[str, np.ndarray]) -> pa.Table:
    """Build the Arrow table of ``columns`` with exactly ``FEATURES.arrow_schema``.

    The arrays are assembled from flat buffers rather than per-row Python
    objects: the same layout ``datasets`` writes, at numpy speed.
    """
    window = np.ascontiguousarray(columns["window"], dtype=np.int8)
    n = len(window)
    values = pa.array(window.reshape(-1))
    rows = pa.ListArray.from_arrays(np.arange(0, n * WINDOW_LENGTH * SEQUENCE_LENGTH + 1, SEQUENCE_LENGTH, dtype=np.int32), values)
    windows = pa.ListArray.from_arrays(np.arange(0, n * WINDOW_LENGTH + 1, WINDOW_LENGTH, dtype=np.int32), rows)
    window_array = pa.ExtensionArray.from_storage(Array2DExtensionType((WINDOW_LENGTH, SEQUENCE_LENGTH), "int8"), windows)
    scalars = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(columns["scalars"], np.int8).reshape(-1)), N_SCALARS)
    return pa.Table.from_arrays([window_array, scalars], schema=FEATURES.arrow_schema)
