# SPDX-License-Identifier: GPL-3.0-or-later
"""The dataset's configs: each one's ``Features``, folder, and how its examples are made.

Every config holds the same sampled positions in the same order and split;
configs differ only in what a row carries:

* ``default``: ``window`` holds 10 copies of the position, ``scalars`` zeros.
  Its schema is the design card's, unchanged forever.
* ``history``: ``window[i]`` is the position ``i`` plies earlier (mask
  tokens before the game's first position), plus flat metadata columns.

:func:`examples_table` turns a split's rows (:mod:`.rows`) into the examples
of a config, as an Arrow table with exactly the config's features: the one
code path of the builder and of the published shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

import numpy as np
import pyarrow as pa
from datasets import Array2D, Features, Sequence, Value

from . import rows as rows_
from .encoding import SEQUENCE_LENGTH
from .history import WINDOW_LENGTH

N_SCALARS: Final = 3

ConfigName = Literal["default", "history"]
CONFIG_NAMES: Final[tuple[str, ...]] = get_args(ConfigName)

_WINDOW: Final = Array2D(shape=(WINDOW_LENGTH, SEQUENCE_LENGTH), dtype="int8")
_SCALARS: Final = Sequence(Value("int8"), length=N_SCALARS)

#: The features of the ``default`` config: the design card's schema.
FEATURES: Final = Features({"window": _WINDOW, "scalars": _SCALARS})

#: The features of the ``history`` config.
HISTORY_FEATURES: Final = Features(
    {
        "window": _WINDOW,
        "scalars": _SCALARS,
        **Features.from_arrow_schema(rows_.METADATA_SCHEMA),
    }
)


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
}


def array_column(values: np.ndarray, feature: Array2D) -> pa.ExtensionArray:
    """``(n, *feature.shape)`` values as the ``datasets`` ArrayND extension column of ``feature``.

    The nested lists are built from one flat buffer and offsets rather than
    per-row Python objects: the layout ``datasets`` writes, at numpy speed.
    """
    storage: pa.Array = pa.array(np.ascontiguousarray(values).reshape(-1))
    lists = len(storage)
    # Innermost level first: lists of shape[-1] values, then lists of those ...
    for size in reversed(feature.shape):
        lists //= size
        storage = pa.ListArray.from_arrays(np.arange(0, lists * size + 1, size, dtype=np.int32), storage)
    return pa.ExtensionArray.from_storage(feature(), storage)


def examples_table(rows: pa.Table, config: Config) -> pa.Table:
    """The examples of ``rows`` in ``config``, with exactly its features' schema."""
    n = rows.num_rows
    if config.name == "default":
        tokens = rows_.tokens_of(rows)
        window = np.broadcast_to(tokens[:, None, :], (n, WINDOW_LENGTH, SEQUENCE_LENGTH))
    else:
        window = rows_.fixed_lists_to_numpy(rows.column(rows_.HISTORY), (WINDOW_LENGTH, SEQUENCE_LENGTH))
    columns = {
        "window": array_column(window, config.features["window"]),
        "scalars": pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(n * N_SCALARS, np.int8)), N_SCALARS),
    }
    columns.update({name: rows.column(name) for name in config.features if name not in columns})
    return pa.table(columns, schema=config.features.arrow_schema)
