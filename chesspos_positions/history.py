# SPDX-License-Identifier: GPL-3.0-or-later
"""A game's positions in order: history windows, and what the tokens drop.

Everything here is computed from a replayed game's tokens (its start position
then the position after each mainline move) and its start board, so it is
the same whichever reader replayed the game.

* :func:`history_windows`: for each position, it and the 9 before it, newest
  first; rows before the game's first position are all :data:`~.encoding.MASK`.
* :func:`game_clocks`: per position, the legal en passant square, the halfmove
  clock and the fullmove number, which the 69 tokens do not hold.
* :func:`fens`: the full FEN of many positions at once, exactly as
  python-chess's ``Board.fen()`` writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import chess
import numpy as np
import pyarrow as pa

from .encoding import (
    BLACK_TO_MOVE,
    CASTLING_HELD,
    CASTLING_INDICES,
    EMPTY,
    MASK,
    SEQUENCE_LENGTH,
    SIDE_TO_MOVE_INDEX,
    TOKEN_PIECES,
    WHITE_TO_MOVE,
    token_sequence_to_board,
)

#: Positions in a window: the position and the 9 before it.
WINDOW_LENGTH: Final = 10

_WHITE_PAWN: Final = next(t for t, p in TOKEN_PIECES.items() if p == chess.Piece(chess.PAWN, chess.WHITE))
_BLACK_PAWN: Final = next(t for t, p in TOKEN_PIECES.items() if p == chess.Piece(chess.PAWN, chess.BLACK))
_NO_SQUARE: Final = -1


@dataclass(frozen=True)
class Games:
    """The positions of several games, end to end, and where each game starts.

    Attributes:
        positions: ``int8`` ``(m, 69)``: each game's first position (ply 0),
            then the position after each of its mainline moves.
        starts: for every row of ``positions``, the row of its game's ply 0.
        boards: each game's first board, in order.
    """

    positions: np.ndarray
    starts: np.ndarray
    boards: list[chess.Board]

    @classmethod
    def concat(cls, games: list[tuple[chess.Board, np.ndarray]]) -> Games:
        """Games from ``(first board, its positions (n + 1, 69))`` pairs."""
        if not games:
            return cls(np.empty((0, SEQUENCE_LENGTH), np.int8), np.empty(0, np.int64), [])
        lengths = np.array([len(positions) for _, positions in games])
        firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return cls(np.concatenate([p for _, p in games]), np.repeat(firsts, lengths), [b for b, _ in games])


def token_records(tokens: np.ndarray) -> np.ndarray:
    """A view of C-contiguous ``(n, k)`` int8 token rows as ``n`` opaque records of ``k`` bytes.

    Gathering rows (fancy indexing) of an int8 array copies value by value;
    of records, each row whole: 3 to 7 times faster for 69- and 690-token rows.
    """
    return tokens.view(np.dtype((np.void, tokens.shape[-1])))[:, 0]


def history_windows(games: Games, rows: np.ndarray) -> np.ndarray:
    """The history windows of some positions.

    Returns:
        ``int8`` ``(len(rows), 10, 69)``: ``window[:, i]`` is the position
        ``i`` plies before ``games.positions[rows]``, all mask tokens before
        its game's first position.
    """
    earlier = np.asarray(rows)[:, None] - np.arange(WINDOW_LENGTH)
    before_start = earlier < games.starts[rows][:, None]
    records = token_records(np.ascontiguousarray(games.positions, dtype=np.int8))
    windows = records[np.where(before_start, 0, earlier)].view(np.int8).reshape(*earlier.shape, SEQUENCE_LENGTH)
    windows[before_start] = MASK
    return windows


def history_rows(games: Games, values: np.ndarray, rows: np.ndarray, fill: int) -> np.ndarray:
    """Per-position ``values`` laid out like :func:`history_windows`, ``fill`` before a game's start."""
    earlier = np.asarray(rows)[:, None] - np.arange(WINDOW_LENGTH)
    return np.where(earlier < games.starts[rows][:, None], fill, values[np.maximum(earlier, 0)])


@dataclass(frozen=True)
class Clocks:
    """Per position: what the tokens do not encode.

    Attributes:
        en_passant: the en passant square when an en passant capture is legal
            (python-chess's ``has_legal_en_passant``), else -1.
        halfmove: the halfmove clock.
        fullmove: the fullmove number.
    """

    en_passant: np.ndarray
    halfmove: np.ndarray
    fullmove: np.ndarray


def game_clocks(games: Games) -> Clocks:
    """The :class:`Clocks` of every position of ``games``."""
    positions, starts = games.positions, games.starts
    m = len(positions)
    index = np.arange(m)
    is_start = index == starts
    first_rows = np.flatnonzero(is_start)
    first_halfmove = np.zeros(m, dtype=np.int64)
    first_halfmove[first_rows] = [board.halfmove_clock for board in games.boards]
    first_fullmove = np.array([board.fullmove_number for board in games.boards], dtype=np.int64)
    black_first = np.array([board.turn == chess.BLACK for board in games.boards], dtype=np.int64)

    squares = positions[:, :64]
    occupied = (squares != EMPTY).sum(axis=1)
    pawns = (squares == _WHITE_PAWN) | (squares == _BLACK_PAWN)
    # A move resets the halfmove clock iff it captures (a piece disappears) or
    # moves a pawn (the pawn squares change; a promotion removes one). A
    # game's first position takes its own clock.
    resets = np.zeros(m, dtype=bool)
    resets[1:] = (occupied[1:] < occupied[:-1]) | (pawns[1:] != pawns[:-1]).any(axis=1)
    anchors = is_start | resets
    last_anchor = np.maximum.accumulate(np.where(anchors, index, 0))
    halfmove = index - last_anchor + first_halfmove[last_anchor]

    game = np.cumsum(is_start) - 1
    fullmove = first_fullmove[game] + (index - starts + black_first[game]) // 2

    en_passant = np.full(m, _NO_SQUARE, dtype=np.int64)
    for row, board in zip(first_rows, games.boards):
        if board.ep_square is not None and board.has_legal_en_passant():
            en_passant[row] = board.ep_square
    # A double push moves a pawn from its second rank to its fourth on one
    # file: that square pattern arises from no other move.
    before, after = positions[:-1], positions[1:]
    moves = ~is_start[1:]
    white_moved = after[:, SIDE_TO_MOVE_INDEX] == BLACK_TO_MOVE
    files = np.arange(8)
    for moved, pawn, enemy, home, skipped, landed in (
        (white_moved, _WHITE_PAWN, _BLACK_PAWN, 8, 16, 24),
        (~white_moved, _BLACK_PAWN, _WHITE_PAWN, 48, 40, 32),
    ):
        pushed = (
            (moves & moved)[:, None]
            & (before[:, home + files] == pawn) & (after[:, home + files] == EMPTY)
            & (before[:, landed + files] != pawn) & (after[:, landed + files] == pawn)
        )
        beside = np.zeros_like(pushed)
        beside[:, 1:] |= after[:, landed + files[:-1]] == enemy
        beside[:, :-1] |= after[:, landed + files[1:]] == enemy
        # Only a push next to an enemy pawn can allow a capture; whether the
        # capture is legal (pins, checks) python-chess decides.
        for move, file in zip(*np.nonzero(pushed & beside)):
            board = token_sequence_to_board(after[move])
            board.ep_square = skipped + int(file)
            if board.has_legal_en_passant():
                en_passant[move + 1] = board.ep_square
    return Clocks(en_passant, halfmove, fullmove)


# Every FEN is built as one fixed-width row of bytes, for all positions at
# once, then packed into an Arrow string column: NUL bytes are padding and
# are dropped. Each rank is written from two lookups of its half ranks: the
# text of a half rank but for its empty run next to the other half, whose
# length is written between them (merged with the other half's).
_SQUARE_CHARS: Final = np.zeros(256, dtype=np.uint8)
for _token, _piece in TOKEN_PIECES.items():
    _SQUARE_CHARS[_token] = ord(_piece.symbol())
#: A square's half-rank digit is its token - EMPTY: 0 empty, 2..13 a piece.
_BASE: Final = 14


def _half_rank_table(left: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per half rank (4 squares as base-14 digits, file order): its FEN text and the run it leaves out.

    Returns:
        ``uint8`` ``(14**4, 4)`` text, an empty run written as its length on
        its first square, NUL elsewhere, except the run touching the other
        half (the right end of a ``left`` half, else the left end), which is
        left out; and ``uint8`` ``(14**4,)``: that run's length.
    """
    codes = np.stack(np.unravel_index(np.arange(_BASE**4), (_BASE,) * 4), axis=1)
    empty = codes == 0
    runs = np.zeros((len(codes), 5), dtype=np.uint8)  # the empty run starting at each square
    for file in range(3, -1, -1):
        runs[:, file] = (runs[:, file + 1] + 1) * empty[:, file]
    files = np.arange(4)
    first = empty.copy()
    first[:, 1:] &= ~empty[:, :-1]
    if left:
        inner = first & (files + runs[:, :4] < 4)
        edge = np.cumprod(empty[:, ::-1], axis=1).sum(axis=1)
    else:
        inner = first & (files > 0)
        edge = runs[:, 0]
    text = np.where(empty, np.where(inner, runs[:, :4] + ord("0"), 0), _SQUARE_CHARS[codes + EMPTY])
    return text.astype(np.uint8), edge.astype(np.uint8)


_LEFT_HALVES: Final = _half_rank_table(left=True)
_RIGHT_HALVES: Final = _half_rank_table(left=False)
# Castling field by the 4 held bits (W-K, W-Q, B-K, B-Q), first bit lowest.
_CASTLING_FIELDS: Final = np.array(
    [list(("".join(c for bit, c in enumerate("KQkq") if code >> bit & 1) or "-").ljust(4, "\0")) for code in range(16)],
    dtype="S1",
).view(np.uint8)
# En passant field by square, and "-" for -1 (the last row).
_EN_PASSANT_FIELDS: Final = np.array([list(name) for name in chess.SQUARE_NAMES] + [["-", "\0"]], dtype="S1").view(np.uint8)


def fens(tokens: np.ndarray, en_passant: np.ndarray, halfmove: np.ndarray, fullmove: np.ndarray) -> pa.StringArray:
    """The FEN of each position, as ``chess.Board.fen()`` writes it.

    Args:
        tokens: ``(n, 69)`` tokens (no mask rows).
        en_passant: the legal en passant square of each position, or -1.
        halfmove: halfmove clocks (not negative, as python-chess requires).
        fullmove: fullmove numbers (not negative).
    """
    n = len(tokens)
    # (position, rank from 1 up, half, file in half) as base-14 digits.
    digits = tokens[:, :64].astype(np.uint16).reshape(n, 8, 2, 4)
    digits -= EMPTY
    halves = ((digits[..., 0] * _BASE + digits[..., 1]) * _BASE + digits[..., 2]) * _BASE + digits[..., 3]
    halves = halves[:, ::-1]  # rank 8 first
    halfmoves, fullmoves = _decimal(halfmove), _decimal(fullmove)
    # Bytes 0-79 the placement (a space ends it), 80 the side, 82-85 the
    # castling rights, 87-88 the en passant square, then the clocks; spaces between.
    text = np.zeros((n, 91 + halfmoves.shape[1] + fullmoves.shape[1]), dtype=np.uint8)
    placement = text[:, :80].reshape(n, 8, 10)
    # Each half rank's 4 bytes at once, as one uint32.
    placement[:, :, :4].view(np.uint32)[..., 0] = _LEFT_HALVES[0].view(np.uint32)[halves[..., 0], 0]
    placement[:, :, 5:9].view(np.uint32)[..., 0] = _RIGHT_HALVES[0].view(np.uint32)[halves[..., 1], 0]
    middle = _LEFT_HALVES[1][halves[..., 0]] + _RIGHT_HALVES[1][halves[..., 1]]
    placement[:, :, 4] = np.where(middle > 0, middle + ord("0"), 0)
    placement[:, :, 9] = ord("/")
    fullmove_at = 91 + halfmoves.shape[1]
    text[:, [79, 81, 86, 89, fullmove_at - 1]] = ord(" ")
    text[:, 80] = np.where(tokens[:, SIDE_TO_MOVE_INDEX] == WHITE_TO_MOVE, ord("w"), ord("b"))
    text[:, 82:86] = _CASTLING_FIELDS[(tokens[:, CASTLING_INDICES[0] :] == CASTLING_HELD) @ (1 << np.arange(4))]
    text[:, 87:89] = _EN_PASSANT_FIELDS[en_passant]
    text[:, 90 : fullmove_at - 1] = halfmoves
    text[:, fullmove_at:] = fullmoves
    kept = text != 0
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(kept.sum(axis=1), out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text[kept])])


def _decimal(values: np.ndarray) -> np.ndarray:
    """``(n, width)`` ASCII digits of non-negative integers, right-aligned: NUL before the first digit."""
    values = np.asarray(values, dtype=np.int64)
    width = len(str(int(values.max()))) if len(values) else 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers % 10 + ord("0")).astype(np.uint8)
    # Drop leading zeros (not the ones digit); NULs anywhere in a row are padding.
    digits[(values[:, None] < powers) & (powers > 1)] = 0
    return digits
