# SPDX-License-Identifier: GPL-3.0-or-later
"""The 69-token position encoding: boards to tokens and back.

This module is the compatibility contract of every dataset version. A sequence
has 69 ``int8`` tokens:

* indices 0-63: the squares in python-chess order (a1=0, b1=1, ..., h8=63);
* index 64: the side to move;
* indices 65-68: castling rights, White kingside, White queenside, Black
  kingside, Black queenside.

:data:`VOCABULARY` is the one table of tokens; everything else refers to it.
The encoding is lossy: the en passant square and the move counters are
dropped, so :func:`token_sequence_to_board` restores everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import chess
import numpy as np

SEQUENCE_LENGTH: Final = 69
SIDE_TO_MOVE_INDEX: Final = 64
CASTLING_INDICES: Final = (65, 66, 67, 68)

EMPTY: Final = 15
MASK: Final = 16
WHITE_TO_MOVE: Final = 29
BLACK_TO_MOVE: Final = 30
CASTLING_NOT_HELD: Final = 31
CASTLING_HELD: Final = 32

#: The one table of piece tokens: token -> piece. The encoder, the decoders
#: and the native path all derive their lookups from it.
TOKEN_PIECES: Final[dict[int, chess.Piece]] = {
    17: chess.Piece(chess.PAWN, chess.WHITE),
    18: chess.Piece(chess.KNIGHT, chess.WHITE),
    19: chess.Piece(chess.BISHOP, chess.WHITE),
    20: chess.Piece(chess.ROOK, chess.WHITE),
    21: chess.Piece(chess.QUEEN, chess.WHITE),
    22: chess.Piece(chess.KING, chess.WHITE),
    23: chess.Piece(chess.PAWN, chess.BLACK),
    24: chess.Piece(chess.KNIGHT, chess.BLACK),
    25: chess.Piece(chess.BISHOP, chess.BLACK),
    26: chess.Piece(chess.ROOK, chess.BLACK),
    27: chess.Piece(chess.QUEEN, chess.BLACK),
    28: chess.Piece(chess.KING, chess.BLACK),
}

#: Token -> meaning: every token of the vocabulary. The dataset card prints
#: this table; never renumber it.
VOCABULARY: Final[dict[int, str]] = {
    EMPTY: "empty square",
    MASK: "mask (padding before a game's first position in history windows)",
    **{
        token: f"{chess.COLOR_NAMES[piece.color]} {chess.PIECE_NAMES[piece.piece_type]} ({piece.symbol()})"
        for token, piece in TOKEN_PIECES.items()
    },
    WHITE_TO_MOVE: "white to move",
    BLACK_TO_MOVE: "black to move",
    CASTLING_NOT_HELD: "castling right not held",
    CASTLING_HELD: "castling right held",
}

#: The rook squares whose bits in ``Board.castling_rights`` mean, in token
#: order: White kingside, White queenside, Black kingside, Black queenside.
CASTLING_SQUARES: Final = (chess.H1, chess.A1, chess.H8, chess.A8)
_CASTLING_MASKS: Final = np.array([chess.BB_SQUARES[sq] for sq in CASTLING_SQUARES], dtype=np.uint64)

#: ``_PIECE_LOOKUP[is_white, piece_type]``: the square's token (piece type 0: empty).
_PIECE_LOOKUP: Final = np.full((2, 7), EMPTY, dtype=np.int8)
for _token, _piece in TOKEN_PIECES.items():
    _PIECE_LOOKUP[int(_piece.color), _piece.piece_type] = _token


def piece_token(piece: chess.Piece) -> int:
    """Return the token of ``piece`` (17-22 white P..K, 23-28 black p..k)."""
    return int(_PIECE_LOOKUP[int(piece.color), piece.piece_type])


def board_to_token_sequence(board: chess.Board) -> np.ndarray:
    """Encode ``board`` as 69 ``int8`` tokens.

    Castling rights are the board's *clean* rights
    (:meth:`chess.Board.clean_castling_rights`), the ones python-chess's
    ``has_kingside_castling_rights`` and friends report. The en passant square
    and the move counters are not encoded.
    """
    tokens = np.full(SEQUENCE_LENGTH, EMPTY, dtype=np.int8)
    for square, piece in board.piece_map().items():
        tokens[square] = piece_token(piece)
    tokens[SIDE_TO_MOVE_INDEX] = WHITE_TO_MOVE if board.turn == chess.WHITE else BLACK_TO_MOVE
    rights = board.clean_castling_rights()
    for index, square in zip(CASTLING_INDICES, CASTLING_SQUARES):
        tokens[index] = CASTLING_HELD if rights & chess.BB_SQUARES[square] else CASTLING_NOT_HELD
    return tokens


def encode_bitboards(
    pieces: np.ndarray, white: np.ndarray, turn: np.ndarray, castling: np.ndarray
) -> np.ndarray:
    """Encode many positions at once from their bitboards.

    This is the batch encoder: one numpy pass for all positions, bit for bit
    equal to :func:`board_to_token_sequence` on each.

    Args:
        pieces: ``uint64`` array of shape ``(n, 6)``, the bitboards of pawns,
            knights, bishops, rooks, queens and kings (``Board.pawns`` ...).
        white: ``uint64`` array of shape ``(n,)``, ``Board.occupied_co[WHITE]``.
        turn: ``bool`` array of shape ``(n,)``, True where white is to move.
        castling: ``uint64`` array of shape ``(n,)``, clean castling rights.

    Returns:
        ``int8`` array of shape ``(n, 69)``.
    """
    pieces = np.ascontiguousarray(pieces, dtype="<u8")
    n = pieces.shape[0]
    # Little-endian bytes, unpacked little-bit-first, give square order a1..h8.
    bits = np.unpackbits(pieces.view(np.uint8).reshape(n, 6, 8), axis=2, bitorder="little")
    white_bits = np.unpackbits(
        np.ascontiguousarray(white, dtype="<u8").view(np.uint8).reshape(n, 8), axis=1, bitorder="little"
    )
    # Exactly one piece bit is set on an occupied square, so a weighted sum
    # picks its piece type (1..6, 0 for empty); colour and type index the table.
    weights = np.arange(1, 7, dtype=np.uint8)
    piece_type = np.einsum("nks,k->ns", bits, weights, dtype=np.uint8)
    squares = _PIECE_LOOKUP[white_bits, piece_type]

    tokens = np.empty((n, SEQUENCE_LENGTH), dtype=np.int8)
    tokens[:, :64] = squares
    tokens[:, SIDE_TO_MOVE_INDEX] = np.where(turn, WHITE_TO_MOVE, BLACK_TO_MOVE)
    held = (np.asarray(castling, dtype=np.uint64)[:, None] & _CASTLING_MASKS[None, :]) != 0
    tokens[:, CASTLING_INDICES[0] :] = np.where(held, CASTLING_HELD, CASTLING_NOT_HELD)
    return tokens


#: One board as the batch encoder's row: pawns, knights, bishops, rooks,
#: queens, kings, white pieces, turn, clean castling rights.
BitboardRow = tuple[int, int, int, int, int, int, int, bool, int]


def board_bitboards(board: chess.Board) -> BitboardRow:
    """The row of bitboards :func:`encode_bitboard_rows` takes for one board."""
    return (
        board.pawns, board.knights, board.bishops, board.rooks, board.queens, board.kings,
        board.occupied_co[chess.WHITE],
        board.turn,
        board.clean_castling_rights(),
    )


def encode_bitboard_rows(rows: Sequence[BitboardRow]) -> np.ndarray:
    """Encode rows of :func:`board_bitboards` with the batch encoder; shape ``(len(rows), 69)``."""
    array = np.array(rows, dtype=np.uint64).reshape(-1, 9)
    return encode_bitboards(array[:, :6], array[:, 6], array[:, 7].astype(bool), array[:, 8])


def encode_boards(boards: list[chess.Board]) -> np.ndarray:
    """Encode a list of boards with the batch encoder; shape ``(len(boards), 69)``."""
    return encode_bitboard_rows([board_bitboards(board) for board in boards])


def token_sequence_to_board(tokens: np.ndarray) -> chess.Board:
    """Decode 69 tokens back into a board.

    The result has the encoded pieces, side to move and castling rights, no
    en passant square, and move counters reset (halfmove 0, fullmove 1).

    Raises:
        ValueError: if ``tokens`` is not an integer array of shape ``(69,)``,
            or holds a token that is not valid at its index (including the
            reserved mask token).
    """
    array = np.asarray(tokens)
    if array.shape != (SEQUENCE_LENGTH,):
        raise ValueError(f"expected a token sequence of shape ({SEQUENCE_LENGTH},), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"expected an integer token sequence, got dtype {array.dtype}")

    board = chess.Board.empty()
    for square in range(64):
        token = int(array[square])
        if token != EMPTY:
            piece = TOKEN_PIECES.get(token)
            if piece is None:
                raise ValueError(f"token {token} at square index {square} is not a square token")
            board.set_piece_at(square, piece)

    side = int(array[SIDE_TO_MOVE_INDEX])
    if side not in (WHITE_TO_MOVE, BLACK_TO_MOVE):
        raise ValueError(f"token {side} at index {SIDE_TO_MOVE_INDEX} is not a side-to-move token")
    board.turn = side == WHITE_TO_MOVE

    rights = 0
    for index, square in zip(CASTLING_INDICES, CASTLING_SQUARES):
        token = int(array[index])
        if token not in (CASTLING_HELD, CASTLING_NOT_HELD):
            raise ValueError(f"token {token} at index {index} is not a castling token")
        if token == CASTLING_HELD:
            rights |= chess.BB_SQUARES[square]
    board.castling_rights = rights
    return board


def tokens_to_fen(tokens: np.ndarray) -> str:
    """The FEN of 69 tokens: pieces, side to move and castling rights.

    The tokens hold no en passant square and no move counters, so the FEN has
    ``-`` and ``0 1`` there; the ``history`` config's ``fen`` column has them.

    Raises:
        ValueError: as :func:`token_sequence_to_board`.
    """
    return token_sequence_to_board(tokens).fen()


def decode_window(window: np.ndarray) -> list[chess.Board | None]:
    """Decode a window of positions: one board per row, None for a mask row.

    Args:
        window: ``(rows, 69)`` tokens, such as a ``window`` of the dataset
            (``window[0]`` is the position, ``window[i]`` ``i`` plies earlier
            in the ``history`` config).

    Raises:
        ValueError: if a row is neither all mask tokens nor a valid position.
    """
    array = np.asarray(window)
    if array.ndim != 2 or array.shape[1] != SEQUENCE_LENGTH:
        raise ValueError(f"expected a window of shape (rows, {SEQUENCE_LENGTH}), got shape {array.shape}")
    return [None if (row == MASK).all() else token_sequence_to_board(row) for row in array]
