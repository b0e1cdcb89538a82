# SPDX-License-Identifier: GPL-3.0-or-later
"""The position encodings: boards to 69 tokens, 773-bool bitboards or 8x8x15-bool tensors, and back.

This module is the compatibility contract of every dataset version. A token
sequence has 69 ``int8`` tokens:

* indices 0-63: the squares in python-chess order (a1=0, b1=1, ..., h8=63);
* index 64: the side to move;
* indices 65-68: castling rights, White kingside, White queenside, Black
  kingside, Black queenside.

:data:`VOCABULARY` is the one table of tokens; everything else refers to it.
The encoding is lossy: the en passant square and the move counters are
dropped, so :func:`token_sequence_to_board` restores everything else.

The ``bitboard`` and ``tensor`` configs use the bool encodings of the project
this dataset replaces (its ``BitboardEncoder`` and ``TensorEncoder``), bit for
bit: :func:`board_to_bitboard` and :func:`board_to_tensor` per board,
:func:`tokens_to_bitboards` and :func:`tokens_to_tensors` for many token rows
at once. Their piece planes come from :data:`PLANE_PIECES` and
:data:`TOKEN_PIECES`, so the three encodings cannot disagree on a piece.
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
    (:meth:`chess.Board.clean_castling_rights`) on the rook corners a1, h1,
    a8 and h8: on a standard board, the ones python-chess's
    ``has_kingside_castling_rights`` and friends report (a Chess960 board's
    other rook squares are not encoded; the builder skips Chess960 games).
    The en passant square and the move counters are not encoded.
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
            holds a token that is not valid at its index (including the
            reserved mask token), or holds a castling right whose rook is not
            on its corner (no board encodes so).
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
    _check_castling(board)
    return board


def _check_castling(board: chess.Board) -> None:
    """Refuse castling rights the encoders never write: a right on a corner its own rook has left.

    Only the rook is checked: a Chess960 board's rights sit on the corners
    with the king elsewhere, and the encoders write them too.
    """
    moved = [square for square in chess.scan_forward(board.castling_rights)
             if board.piece_at(square) != chess.Piece(chess.ROOK, square < 32)]
    if moved:
        corners = ", ".join(chess.SQUARE_NAMES[square] for square in moved)
        raise ValueError(f"a castling right is marked on {corners}, but its rook is not there")


def tokens_to_fen(tokens: np.ndarray) -> str:
    """The FEN of 69 tokens: pieces, side to move and castling rights.

    The tokens hold no en passant square and no move counters, so the FEN has
    ``-`` and ``0 1`` there; the ``history`` config's ``fen`` column has them.

    Raises:
        ValueError: as :func:`token_sequence_to_board`.
    """
    return token_sequence_to_board(tokens).fen()


#: The piece of each piece plane, in plane order: White pawn, knight, bishop,
#: rook, queen, king, then Black in the same order. The bitboard's twelve
#: 64-square blocks and the tensor's planes 0-11 follow it.
PLANE_PIECES: Final[tuple[chess.Piece, ...]] = tuple(
    chess.Piece(piece_type, color) for color in (chess.WHITE, chess.BLACK) for piece_type in chess.PIECE_TYPES
)

#: A bitboard: ``64 * plane + square`` for each piece plane, then the side to
#: move (True: White), then the castling rights in token order (W-K, W-Q, B-K, B-Q).
BITBOARD_LENGTH: Final = 773
BITBOARD_TURN_INDEX: Final = 64 * len(PLANE_PIECES)
BITBOARD_CASTLING_INDICES: Final = tuple(range(BITBOARD_TURN_INDEX + 1, BITBOARD_LENGTH))  # 769-772

#: A tensor is indexed ``[rank][file][plane]`` (a1 is ``[0][0]``): planes 0-11
#: the pieces; 12 the castling rights, each on its rook's corner (the square
#: of :data:`CASTLING_SQUARES`); 13 the en passant square when a capture is
#: legal; 14 the side to move at ``[0][0]`` (True: White).
TENSOR_SHAPE: Final = (8, 8, 15)
TENSOR_CASTLING_PLANE: Final = 12
TENSOR_EN_PASSANT_PLANE: Final = 13
TENSOR_TURN_PLANE: Final = 14
TENSOR_TURN_SQUARE: Final = chess.A1

#: ``_TOKEN_PLANE[token]``: the piece plane of a square token, -1 for the
#: empty and mask tokens; derived from the two piece tables.
_TOKEN_PLANE: Final = np.full(256, -1, dtype=np.int8)
for _token, _piece in TOKEN_PIECES.items():
    _TOKEN_PLANE[_token] = PLANE_PIECES.index(_piece)
#: ``_TOKEN_CELL[token]``: the 15 planes of a tensor cell holding a square
#: token, as one 15-byte item, so that one ``np.take`` fills a whole cell.
_TOKEN_CELL: Final = (_TOKEN_PLANE[:, None] == np.arange(TENSOR_SHAPE[2])).view(f"V{TENSOR_SHAPE[2]}").reshape(-1)


def _square_bits(mask: int) -> np.ndarray:
    """The 64 squares of a python-chess square set as bools, a1..h8."""
    return np.unpackbits(np.array([mask], dtype="<u8").view(np.uint8), bitorder="little").astype(bool)


def _piece_planes(board: chess.Board) -> np.ndarray:
    """``bool`` ``(12, 64)``: the squares of each piece of :data:`PLANE_PIECES`."""
    return np.stack([_square_bits(board.pieces_mask(piece.piece_type, piece.color)) for piece in PLANE_PIECES])


def _castling_held(board: chess.Board) -> np.ndarray:
    """``bool`` ``(4,)``: the clean castling rights W-K, W-Q, B-K, B-Q on the rook corners, as the tokens hold them."""
    rights = board.clean_castling_rights()
    return np.array([bool(rights & chess.BB_SQUARES[square]) for square in CASTLING_SQUARES])


def board_to_bitboard(board: chess.Board) -> np.ndarray:
    """Encode ``board`` as the original ``BitboardEncoder`` did: ``bool`` ``(773,)``.

    Index ``64 * plane + square`` is True where the piece of
    :data:`PLANE_PIECES` ``[plane]`` stands on ``square`` (python-chess order,
    a1=0 ... h8=63); index 768 is True when White is to move; 769-772 are the
    castling rights White kingside, White queenside, Black kingside, Black
    queenside: the clean rights on the rook corners, as
    :func:`board_to_token_sequence` encodes them (on a standard board, the
    ones ``has_kingside_castling_rights`` and friends report). The en
    passant square and the move counters are not encoded.
    """
    bitboard = np.empty(BITBOARD_LENGTH, dtype=bool)
    bitboard[:BITBOARD_TURN_INDEX] = _piece_planes(board).reshape(-1)
    bitboard[BITBOARD_TURN_INDEX] = board.turn == chess.WHITE
    bitboard[BITBOARD_CASTLING_INDICES[0] :] = _castling_held(board)
    return bitboard


def board_to_tensor(board: chess.Board) -> np.ndarray:
    """Encode ``board`` as the original ``TensorEncoder`` did: ``bool`` ``(8, 8, 15)``.

    ``tensor[rank][file][plane]``, a1 at ``[0][0]``: planes 0-11 the pieces of
    :data:`PLANE_PIECES`; plane 12 the clean castling rights on the rook
    corners (``[0][0]`` White queenside, ``[0][7]`` White kingside,
    ``[7][0]`` Black queenside, ``[7][7]`` Black kingside); plane 13 the en
    passant square, only when an en passant capture is legal
    (``has_legal_en_passant``); plane 14 True at ``[0][0]`` when White is to
    move. Every other cell of planes 12-14 is False.
    """
    cells = np.zeros((64, TENSOR_SHAPE[2]), dtype=bool)  # row = square = 8 * rank + file
    cells[:, : len(PLANE_PIECES)] = _piece_planes(board).T
    cells[list(CASTLING_SQUARES), TENSOR_CASTLING_PLANE] = _castling_held(board)
    if board.has_legal_en_passant():
        cells[board.ep_square, TENSOR_EN_PASSANT_PLANE] = True
    cells[TENSOR_TURN_SQUARE, TENSOR_TURN_PLANE] = board.turn == chess.WHITE
    return cells.reshape(TENSOR_SHAPE)


def _bool_array(array: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.shape != shape:
        raise ValueError(f"expected a {name} of shape {shape}, got shape {array.shape}")
    if array.dtype != np.bool_:
        raise ValueError(f"expected a bool {name}, got dtype {array.dtype}")
    return array


def _planes_to_board(pieces: np.ndarray, white_to_move: bool, castling: np.ndarray) -> chess.Board:
    """A board from ``(12, 64)`` piece planes, the side to move and the 4 castling rights in token order."""
    counts = pieces.sum(axis=0)
    if (counts > 1).any():
        square = int(np.argmax(counts))
        raise ValueError(f"square {chess.SQUARE_NAMES[square]} holds {counts[square]} pieces")
    board = chess.Board.empty()
    for plane, square in zip(*np.nonzero(pieces)):
        board.set_piece_at(int(square), PLANE_PIECES[plane])
    board.turn = bool(white_to_move)
    board.castling_rights = sum(chess.BB_SQUARES[square] for square, held in zip(CASTLING_SQUARES, castling) if held)
    _check_castling(board)
    return board


def bitboard_to_board(bitboard: np.ndarray) -> chess.Board:
    """Decode a :func:`board_to_bitboard` array: pieces, side to move and castling rights.

    Kingside and queenside rights decode to themselves (the original decoder
    swapped them). The board has no en passant square and move counters
    reset (halfmove 0, fullmove 1).

    Raises:
        ValueError: if ``bitboard`` is not ``bool`` ``(773,)``, puts two
            pieces on a square, or holds a castling right whose rook is not
            on its corner.
    """
    array = _bool_array(bitboard, (BITBOARD_LENGTH,), "bitboard")
    pieces = array[:BITBOARD_TURN_INDEX].reshape(len(PLANE_PIECES), 64)
    return _planes_to_board(pieces, array[BITBOARD_TURN_INDEX], array[BITBOARD_CASTLING_INDICES[0] :])


def tensor_to_board(tensor: np.ndarray) -> chess.Board:
    """Decode a :func:`board_to_tensor` array: pieces, side to move, castling rights, en passant square.

    Kingside and queenside rights decode to themselves (the original decoder
    swapped them). Move counters are reset (halfmove 0, fullmove 1).

    Raises:
        ValueError: if ``tensor`` is not ``bool`` ``(8, 8, 15)``, puts two
            pieces on a square, marks more than one en passant square or one
            where no en passant capture is legal, marks castling off the rook
            corners or on a corner without its rook, or marks the side to move
            off ``[0][0]``.
    """
    cells = _bool_array(tensor, TENSOR_SHAPE, "tensor").reshape(64, TENSOR_SHAPE[2])
    castling = cells[:, TENSOR_CASTLING_PLANE]
    if castling.sum() != castling[list(CASTLING_SQUARES)].sum():
        raise ValueError("the castling plane marks a square that is not a rook corner (a1, h1, a8, h8)")
    turn = cells[:, TENSOR_TURN_PLANE]
    if turn.sum() != turn[TENSOR_TURN_SQUARE]:
        raise ValueError("the side-to-move plane marks a square other than a1")
    en_passant = np.flatnonzero(cells[:, TENSOR_EN_PASSANT_PLANE])
    if len(en_passant) > 1:
        raise ValueError(f"the en passant plane marks {len(en_passant)} squares")
    board = _planes_to_board(cells[:, : len(PLANE_PIECES)].T, turn[TENSOR_TURN_SQUARE], castling[list(CASTLING_SQUARES)])
    board.ep_square = int(en_passant[0]) if len(en_passant) else None
    if board.ep_square is not None and not board.has_legal_en_passant():
        # The encoders mark only a square a capture can take: else the board would not encode back to this tensor.
        raise ValueError(f"the en passant plane marks {chess.SQUARE_NAMES[board.ep_square]}, where no en passant capture is legal")
    return board


def _token_codes(tokens: np.ndarray) -> np.ndarray:
    array = np.asarray(tokens)
    if array.ndim < 1 or array.shape[-1] != SEQUENCE_LENGTH or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"expected integer tokens of shape (..., {SEQUENCE_LENGTH}), got {array.dtype} {array.shape}")
    return array


def tokens_to_bitboards(tokens: np.ndarray) -> np.ndarray:
    """The batch bitboard encoder: ``(..., 69)`` tokens to ``bool`` ``(..., 773)``.

    Each row equals :func:`board_to_bitboard` of the row's board; rows of
    mask tokens (the padding of history windows) are all False.
    """
    tokens = _token_codes(tokens)
    lead = tokens.shape[:-1]
    planes = np.take(_TOKEN_PLANE, tokens[..., :64].astype(np.uint8))
    bitboards = np.empty((*lead, BITBOARD_LENGTH), dtype=bool)
    # One comparison per (plane, square) writes the plane-major blocks in order.
    pieces = planes[..., None, :] == np.arange(len(PLANE_PIECES), dtype=np.int8)[:, None]
    bitboards[..., :BITBOARD_TURN_INDEX] = pieces.reshape(*lead, BITBOARD_TURN_INDEX)
    bitboards[..., BITBOARD_TURN_INDEX] = tokens[..., SIDE_TO_MOVE_INDEX] == WHITE_TO_MOVE
    bitboards[..., BITBOARD_CASTLING_INDICES[0] :] = tokens[..., CASTLING_INDICES[0] :] == CASTLING_HELD
    return bitboards


def tokens_to_tensors(tokens: np.ndarray, en_passant: np.ndarray) -> np.ndarray:
    """The batch tensor encoder: ``(..., 69)`` tokens to ``bool`` ``(..., 8, 8, 15)``.

    Args:
        tokens: the positions' tokens.
        en_passant: shape ``tokens.shape[:-1]``, each position's en passant
            square when an en passant capture is legal, else -1 (as the
            ``history_en_passant`` rows of :mod:`.rows` hold it).

    Each row equals :func:`board_to_tensor` of the row's board; rows of mask
    tokens with en passant -1 (the padding of history windows) are all False.
    """
    tokens = _token_codes(tokens)
    lead = tokens.shape[:-1]
    en_passant = np.asarray(en_passant)
    if en_passant.shape != lead:
        raise ValueError(f"expected en passant squares of shape {lead}, got shape {en_passant.shape}")
    squares = np.take(_TOKEN_CELL, tokens[..., :64].astype(np.uint8))
    cells = squares.view(np.bool_).reshape(*lead, 64, TENSOR_SHAPE[2])  # (..., square = 8 * rank + file, plane)
    cells[..., list(CASTLING_SQUARES), TENSOR_CASTLING_PLANE] = tokens[..., CASTLING_INDICES[0] :] == CASTLING_HELD
    flat_cells, flat_en_passant = cells.reshape(-1, *cells.shape[-2:]), en_passant.reshape(-1)
    held = np.flatnonzero(flat_en_passant >= 0)
    flat_cells[held, flat_en_passant[held], TENSOR_EN_PASSANT_PLANE] = True
    cells[..., TENSOR_TURN_SQUARE, TENSOR_TURN_PLANE] = tokens[..., SIDE_TO_MOVE_INDEX] == WHITE_TO_MOVE
    return cells.reshape(*lead, *TENSOR_SHAPE)


def decode_window(window: np.ndarray) -> list[chess.Board | None]:
    """Decode a window of positions in any of the three encodings: one board per row, None for padding.

    Args:
        window: a ``window`` of the dataset, with ``window[0]`` the position
            and, in the history configs, ``window[i]`` the position ``i``
            plies earlier. By its shape and dtype: integer ``(rows, 69)``
            tokens (padding rows all mask tokens), ``bool`` ``(rows, 773)``
            bitboards or ``bool`` ``(rows, 8, 8, 15)`` tensors (padding rows
            all False).

    Raises:
        ValueError: if the window has none of those shapes, or a row is
            neither padding nor a valid position.
    """
    array = np.asarray(window)
    if array.dtype == np.bool_ and array.shape[1:] in ((BITBOARD_LENGTH,), TENSOR_SHAPE):
        decode = bitboard_to_board if array.shape[1:] == (BITBOARD_LENGTH,) else tensor_to_board
        return [decode(row) if row.any() else None for row in array]
    if array.ndim == 2 and array.shape[1] == SEQUENCE_LENGTH and np.issubdtype(array.dtype, np.integer):
        return [None if (row == MASK).all() else token_sequence_to_board(row) for row in array]
    raise ValueError(
        f"expected a window of shape (rows, {SEQUENCE_LENGTH}) (integer tokens), (rows, {BITBOARD_LENGTH}) (bool "
        f"bitboards) or (rows, {', '.join(map(str, TENSOR_SHAPE))}) (bool tensors), got shape {array.shape} dtype {array.dtype}"
    )
