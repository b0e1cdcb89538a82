# SPDX-License-Identifier: GPL-3.0-or-later
"""chesspos-positions: reproducible chess-position datasets for ML."""

from .encoding import (
    SEQUENCE_LENGTH,
    VOCABULARY,
    bitboard_to_board,
    board_to_bitboard,
    board_to_tensor,
    board_to_token_sequence,
    decode_window,
    encode_boards,
    tensor_to_board,
    token_sequence_to_board,
    tokens_to_bitboards,
    tokens_to_fen,
    tokens_to_tensors,
)
from .games import PositionRecord, Summary, extract_board, iter_position_records
from .sampling import Sampling
from .builder import ChessposPositions, ChessposPositionsConfig
from .reader import iter_batches

__all__ = [
    "SEQUENCE_LENGTH",
    "VOCABULARY",
    "ChessposPositions",
    "ChessposPositionsConfig",
    "PositionRecord",
    "Sampling",
    "Summary",
    "bitboard_to_board",
    "board_to_bitboard",
    "board_to_tensor",
    "board_to_token_sequence",
    "decode_window",
    "encode_boards",
    "extract_board",
    "iter_batches",
    "iter_position_records",
    "tensor_to_board",
    "token_sequence_to_board",
    "tokens_to_bitboards",
    "tokens_to_fen",
    "tokens_to_tensors",
]
