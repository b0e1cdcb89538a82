# SPDX-License-Identifier: GPL-3.0-or-later
"""A split's rows between the pipeline's stages: one Arrow table.

A work unit's result and a batch each hold, per split, a table with one row
per sampled position. Its ``tokens`` column is the position's 69 tokens.
Rows of kind ``"history"`` add the position's history window, the en passant
squares of that window, and its game's metadata (:data:`HISTORY_SCHEMA`).
Stages that only move rows around (assembling batches, spilling, shuffling)
treat the table as opaque: they concatenate, slice and take, and so carry
any config's columns unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import chess
import numpy as np
import pyarrow as pa

from .encoding import SEQUENCE_LENGTH, board_to_token_sequence
from .games import ParsedGame, game_id, starting_board
from .history import WINDOW_LENGTH, Games, fens, game_clocks, history_rows, history_windows, token_records
from .sampling import parse_rating

#: What rows hold: the position alone, or also its history and metadata.
RowKind = Literal["position", "history"]

TOKENS: Final = "tokens"
HISTORY: Final = "history"
HISTORY_EN_PASSANT: Final = "history_en_passant"

#: The metadata columns of history rows, as they appear in the examples.
METADATA_SCHEMA: Final = pa.schema(
    [
        ("game_id", pa.string()),
        ("ply", pa.int16()),
        ("white_elo", pa.int16()),
        ("black_elo", pa.int16()),
        ("result", pa.string()),
        ("time_control", pa.string()),
        ("eco", pa.string()),
        ("fen", pa.string()),
    ]
)

POSITION_SCHEMA: Final = pa.schema([(TOKENS, pa.list_(pa.int8(), SEQUENCE_LENGTH))])
HISTORY_SCHEMA: Final = pa.schema(
    [
        *POSITION_SCHEMA,
        # Newest first: history[:, 0] is the position (10 x 69 tokens, flat).
        (HISTORY, pa.list_(pa.int8(), WINDOW_LENGTH * SEQUENCE_LENGTH)),
        # The legal en passant square of each window row, -1 for none or mask.
        (HISTORY_EN_PASSANT, pa.list_(pa.int8(), WINDOW_LENGTH)),
        *METADATA_SCHEMA,
    ]
)

#: The metadata columns that are the same for all positions of a game.
_GAME_FIELDS: Final = ("game_id", "white_elo", "black_elo", "result", "time_control", "eco")
_RESULTS: Final = frozenset({"1-0", "0-1", "1/2-1/2", "*"})
_STANDARD_BOARD: Final = chess.Board()
_STANDARD_START: Final = board_to_token_sequence(_STANDARD_BOARD)
_INT16_MAX: Final = int(np.iinfo(np.int16).max)


def tokens_column(tokens: np.ndarray) -> pa.FixedSizeListArray:
    """``(n, *shape)`` ``int8`` values as a fixed-size list column of their flattened rows (no copy of contiguous input)."""
    array = np.ascontiguousarray(tokens, dtype=np.int8)
    return pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1)), int(np.prod(array.shape[1:])))


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


def take(rows: pa.Table, indices: np.ndarray) -> pa.Table:
    """The rows at ``indices``, in that order."""
    columns = []
    for column in rows.columns:
        if pa.types.is_fixed_size_list(column.type) and column.type.value_type == pa.int8():
            # numpy gathers whole rows; Arrow gathers a fixed-size list value by value.
            columns.append(tokens_column(_take_fixed_lists(column, indices)))
        else:
            columns.append(column.take(indices))
    return pa.Table.from_arrays(columns, schema=rows.schema)


def _take_fixed_lists(column: pa.ChunkedArray, indices: np.ndarray) -> np.ndarray:
    """The ``(len(indices), list_size)`` rows of an int8 fixed-size list column at ``indices``.

    Each chunk gives its rows in place: joining the chunks first would copy
    the whole column once more (a history window column is 690 bytes a row).
    """
    indices = np.asarray(indices, dtype=np.intp)
    if len(indices) and not 0 <= indices.min() <= indices.max() < len(column):
        raise IndexError(f"row indices must lie in [0, {len(column)}), got {indices.min()}..{indices.max()}")
    size = column.type.list_size
    values = np.empty((len(indices), size), dtype=np.int8)
    records = token_records(values)
    starts = np.cumsum([0, *(len(chunk) for chunk in column.chunks)])
    # The indices grouped by the chunk holding them, in one sort: testing every
    # index against every chunk would cost len(indices) per chunk, and a
    # batch gathers from hundreds of chunks (one per piece of games).
    owner = np.searchsorted(starts, indices, side="right") - 1
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(len(starts)))
    for number, chunk in enumerate(column.chunks):
        here = order[bounds[number] : bounds[number + 1]]
        if len(here):
            records[here] = token_records(fixed_lists_to_numpy(chunk, (size,)))[indices[here] - starts[number]]
    return values


def concat(parts: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    """The rows of ``parts`` in order (an empty table of ``schema`` for none)."""
    return pa.concat_tables(parts) if parts else schema.empty_table()


class RowCollector:
    """Builds one split's rows of a work unit, game by game.

    Args:
        kind: ``"position"`` keeps only each sampled position's tokens;
            ``"history"`` also its window, en passant squares and metadata.
    """

    def __init__(self, kind: RowKind) -> None:
        self.kind = kind
        self._tokens: list[np.ndarray] = []
        # History rows are computed for all the unit's games at once, in table().
        self._games: list[tuple[chess.Board, np.ndarray]] = []
        self._rows: list[np.ndarray] = []
        self._positions = 0
        # Per game (not per position): repeated over its rows in table().
        self._metadata: dict[str, list[object]] = {name: [] for name in _GAME_FIELDS}
        self._counts: list[int] = []

    def add(self, game: ParsedGame, tokens: np.ndarray, chosen: np.ndarray) -> None:
        """Add a kept game's sampled positions.

        Args:
            game: the game (its headers give the start position and metadata).
            tokens: ``(n, 69)``, the positions after each of its mainline moves.
            chosen: 0-based indices into ``tokens`` of the sampled positions, ascending.
        """
        # (With every ply kept, the tokens need no copy here: table() copies them.)
        self._tokens.append(tokens if len(chosen) == len(tokens) else tokens[chosen])
        if self.kind == "position":
            return
        # Only history rows need the start board and metadata: the default path skips this work.
        headers = game.headers
        start = starting_board(headers) if "FEN" in headers else None
        first = _STANDARD_START if start is None else board_to_token_sequence(start)
        self._games.append((start if start is not None else _STANDARD_BOARD, np.concatenate([first[None], tokens])))
        self._rows.append(self._positions + chosen + 1)  # ply 0 is the game's first position
        self._positions += len(tokens) + 1
        self._counts.append(len(chosen))
        result = headers.get("Result", "*").strip()
        for name, value in (
            ("game_id", game_id(game)),
            ("white_elo", _elo(headers.get("WhiteElo"))),
            ("black_elo", _elo(headers.get("BlackElo"))),
            ("result", result if result in _RESULTS else "*"),
            ("time_control", headers.get("TimeControl")),
            ("eco", headers.get("ECO") or None),
        ):
            self._metadata[name].append(value)

    def table(self) -> pa.Table:
        """The rows added so far, in order."""
        tokens = _stack(self._tokens, (SEQUENCE_LENGTH,))
        if self.kind == "position":
            return pa.table({TOKENS: tokens_column(tokens)}, schema=POSITION_SCHEMA)
        games = Games.concat(self._games)
        rows = np.concatenate(self._rows) if self._rows else np.empty(0, np.int64)
        clocks = game_clocks(games)
        of_game = np.repeat(np.arange(len(self._counts)), self._counts)
        columns = {
            TOKENS: tokens_column(tokens),
            HISTORY: tokens_column(history_windows(games, rows)),
            HISTORY_EN_PASSANT: tokens_column(history_rows(games, clocks.en_passant, rows, -1)),
            **{name: pa.array(values, METADATA_SCHEMA.field(name).type).take(of_game) for name, values in self._metadata.items()},
            "ply": pa.array(rows - games.starts[rows], pa.int16()),
            "fen": fens(tokens, clocks.en_passant[rows], clocks.halfmove[rows], clocks.fullmove[rows]),
        }
        return pa.table(columns, schema=HISTORY_SCHEMA)


def _elo(value: str | None) -> int | None:
    """A rating tag as int16: None when unknown or out of range."""
    rating = parse_rating(value)
    return rating if rating is not None and rating <= _INT16_MAX else None


def _stack(parts: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty((0, *shape), dtype=np.int8)
