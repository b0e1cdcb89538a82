# SPDX-License-Identifier: GPL-3.0-or-later
"""The 69-token encoding: the contract literal, round trips, the batch encoder, errors."""

from __future__ import annotations

import random

import chess
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chesspos_positions import VOCABULARY, board_to_token_sequence, encode_boards, token_sequence_to_board

START = [20, 18, 19, 21, 22, 19, 18, 20] + [17] * 8 + [15] * 32 + [23] * 8 + [26, 24, 25, 27, 28, 25, 24, 26] + [29, 32, 32, 32, 32]


def test_start_position_literal() -> None:
    tokens = board_to_token_sequence(chess.Board())
    assert tokens.dtype == np.int8 and tokens.shape == (69,)
    assert tokens.tolist() == START


def test_vocabulary_covers_every_token_and_the_mask() -> None:
    assert sorted(VOCABULARY) == list(range(15, 33))
    assert "mask" in VOCABULARY[16]


@st.composite
def boards(draw: st.DrawFn) -> chess.Board:
    """Legal positions from random playouts, with random castling rights and side to move."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    board = chess.Board()
    for _ in range(draw(st.integers(0, 120))):
        moves = list(board.legal_moves)
        if not moves:
            break
        board.push(rng.choice(moves))
    return board


def assert_round_trip(board: chess.Board) -> None:
    tokens = board_to_token_sequence(board)
    decoded = token_sequence_to_board(tokens)
    assert decoded.piece_map() == board.piece_map()
    assert decoded.turn == board.turn
    assert decoded.castling_rights == board.clean_castling_rights()
    assert decoded.ep_square is None
    assert np.array_equal(board_to_token_sequence(decoded), tokens)


@settings(max_examples=300, deadline=None)
@given(boards())
def test_round_trip_random_positions(board: chess.Board) -> None:
    assert_round_trip(board)


@pytest.mark.parametrize("rights", range(16))
@pytest.mark.parametrize("turn", [chess.WHITE, chess.BLACK])
def test_round_trip_all_castling_combinations(rights: int, turn: chess.Color) -> None:
    fen_rights = "".join(c for bit, c in zip((1, 2, 4, 8), "KQkq") if rights & bit) or "-"
    board = chess.Board(f"r3k2r/pppppppp/8/8/8/8/PPPPPPPP/R3K2R {'w' if turn else 'b'} {fen_rights} - 0 1")
    tokens = board_to_token_sequence(board)
    assert tokens[65:].tolist() == [32 if rights & bit else 31 for bit in (1, 2, 4, 8)]
    assert tokens[64] == (29 if turn else 30)
    assert_round_trip(board)


def test_round_trip_promotions_and_en_passant() -> None:
    promoted = chess.Board("1n2k3/P7/8/8/8/8/8/4K3 w - - 0 1")
    for piece in "qrbn":
        board = promoted.copy()
        board.push_uci(f"a7b8{piece}")
        assert_round_trip(board)
        assert board_to_token_sequence(board)[chess.B8] == {"q": 21, "r": 20, "b": 19, "n": 18}[piece]
    ep = chess.Board("4k3/8/8/8/3p4/8/4P3/4K3 w - - 0 1")
    ep.push_uci("e2e4")
    assert ep.ep_square == chess.E3
    assert_round_trip(ep)  # the en passant square is dropped: the encoding is lossy


def test_stale_castling_rights_are_not_encoded() -> None:
    # A FEN may claim a right whose rook is gone; python-chess reports it as not held.
    board = chess.Board("4k3/8/8/8/8/8/8/4K2R w KQ - 0 1")
    assert board_to_token_sequence(board)[65:].tolist() == [32, 31, 31, 31]


@settings(max_examples=50, deadline=None)
@given(st.lists(boards(), min_size=0, max_size=20))
def test_batch_encoder_equals_per_board(batch: list[chess.Board]) -> None:
    expected = np.array([board_to_token_sequence(b) for b in batch], dtype=np.int8).reshape(-1, 69)
    got = encode_boards(batch)
    assert got.dtype == np.int8 and got.shape == (len(batch), 69)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize(
    "tokens, message",
    [
        (np.full(68, 15, np.int8), "shape"),
        (np.full((10, 69), 15, np.int8), "shape"),
        (np.array(START, dtype=np.float32), "dtype"),
        (np.array(START[:5] + [14] + START[6:], dtype=np.int8), "square index 5"),
        (np.array(START[:5] + [16] + START[6:], dtype=np.int8), "square index 5"),
        (np.array(START[:64] + [31] + START[65:], dtype=np.int8), "index 64"),
        (np.array(START[:66] + [29] + START[67:], dtype=np.int8), "index 66"),
        (np.array(START[:7] + [15] + START[8:], dtype=np.int8), "castling right is marked on h1"),
    ],
)
def test_decode_rejects_bad_input(tokens: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        token_sequence_to_board(tokens)
