# SPDX-License-Identifier: GPL-3.0-or-later
"""Optional native replay of movetext, through ``rust-pgn-reader-python-binding``.

Install it with ``pip install chesspos-positions[native]``. It replays a whole
list of games in one call (Rust, SAN parsing plus move generation) and hands
back every position as numpy arrays, some fifty times faster than replaying
with python-chess's ``read_game``. python-chess stays the reference: this module
only ever answers for games the native reader accepts, and returns None for
the others, which the caller then replays with python-chess. So skip counts,
skip reasons and tokens are the same with or without the binding.

Set the environment variable ``CHESSPOS_NATIVE=0`` to turn the native path
off (the test suite runs both paths this way).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import Final

import chess
import numpy as np

from .encoding import (
    BLACK_TO_MOVE,
    CASTLING_HELD,
    CASTLING_INDICES,
    CASTLING_NOT_HELD,
    EMPTY,
    SEQUENCE_LENGTH,
    SIDE_TO_MOVE_INDEX,
    WHITE_TO_MOVE,
    piece_token,
)

try:
    import rust_pgn_reader_python_binding as _reader
except ImportError:  # the optional extra is not installed
    _reader = None

logger = logging.getLogger(__name__)

#: Whether the binding imports.
AVAILABLE: Final = _reader is not None

#: The binding's piece codes (0 empty, 1-6 white P..K, 7-12 black p..k) -> our tokens.
_PIECE_TOKENS: Final = np.array(
    [EMPTY]
    + [piece_token(chess.Piece(kind, color)) for color in (chess.WHITE, chess.BLACK) for kind in chess.PIECE_TYPES],
    dtype=np.int8,
)
# Both number the pieces in the same order, so a piece's token is its code
# plus a constant: an add and an empty-square fix-up encode the boards, several
# times faster than indexing the table (which widens every index to intp).
_PIECE_OFFSET: Final = int(_PIECE_TOKENS[1]) - 1
if not np.array_equal(_PIECE_TOKENS[1:], np.arange(1, 13) + _PIECE_OFFSET):  # pragma: no cover
    raise ImportError("the piece tokens are no longer the native piece codes plus a constant")


# The native reader and python-chess read some movetext differently. Each
# case sends the game to python-chess, which makes it slower, never different:
# * the native reader ends a game at its first result token, or early at a
#   "[" or inside an unclosed variation; python-chess reads to the end (and
#   may replay or reject moves after a result). So the native answer is used
#   only if the text's one result token is its last, and the native reader
#   reports reaching a result (see replay_many);
# * python-chess reads "0000" as a null move, the native reader as a move number;
# * python-chess ignores a "(" before the first move and replays what follows
#   as mainline; the native reader skips it as a variation;
# * python-chess reads a pawn capture without its file ("xe5", "Pxe5", "4xe5")
#   as a push on the target's file, the native reader as any pawn's capture;
# * python-chess ends a game at a blank line outside comments, the native
#   reader does not (split_games never leaves one; replay_many does not rely on it).
# These were found by differential fuzzing against python-chess, and
# tests/test_native.py keeps them. Beyond them, what the native reader accepts
# python-chess reads the same way; what it rejects (null moves, "Nf3-d4",
# "e8Q", "o-o", illegal moves ...) goes to python-chess anyway, which also
# names the skip reason.
_RESULTS: Final = ("1-0", "0-1", "1/2-1/2", "*")
_COMMENT: Final = re.compile(r"\{[^}]*(?:\}|\Z)|;[^\n]*")
# Tokens python-chess always takes for a move (all within its MOVETEXT_REGEX).
_MOVE: Final = re.compile(r"[a-h][1-8]|O-O|0-0|--|Z0|@@@@")
# An "x" not after a file or piece letter (a rank digit may sit between):
# pawn captures without a file, and harmless others such as "x" in comment
# words. Both patterns start with a literal, which re can search for quickly.
_FILELESS_CAPTURE: Final = re.compile(r"x(?<![a-hNBRQK]x)(?<![a-hNBRQK][1-8]x)")
_BLANK_LINE: Final = re.compile(r"\n[^\S\n]*(?:\n|\Z)")


def enabled() -> bool:
    """True if the binding imports and ``CHESSPOS_NATIVE`` is not ``0``."""
    return AVAILABLE and os.environ.get("CHESSPOS_NATIVE", "1").strip() != "0"


def _reads_like_python_chess(movetext: str) -> bool:
    """False if the native reader might read ``movetext`` differently from python-chess.

    With the check that the native reader reached a result token (see
    :func:`replay_many`), True means both read the same tokens to the end.
    It runs on every game, so it uses substring tests wherever they suffice.
    """
    text = movetext.rstrip()
    result = next((result for result in _RESULTS if text.endswith(result)), "")
    body = text[: -len(result)]
    if not result or "1-0" in body or "0-1" in body or "1/2-1/2" in body or "*" in body or "0000" in body:
        return False
    if _FILELESS_CAPTURE.search(body) or _BLANK_LINE.search("\n" + text):
        return False
    variation = body.find("(")
    # A "(" inside a comment may pass for one outside: that only sends more games to python-chess.
    return variation < 0 or _MOVE.search(_COMMENT.sub(" ", body[:variation])) is not None


def _game_text(fen: str | None, movetext: str) -> str:
    # Always one tag line: the reader yields no game at all for blank text,
    # which would shift every later game's result onto the wrong game.
    tag = f'[FEN "{fen}"]' if fen is not None else '[Event "?"]'
    return f"{tag}\n\n{movetext}\n"


def _tokens(boards: np.ndarray, turn: np.ndarray, castling: np.ndarray) -> np.ndarray:
    """Encode the binding's positions: boards ``(n, 8, 8)`` a1..h8, turn ``(n,)``, castling ``(n, 4)`` K Q k q."""
    n = len(boards)
    tokens = np.empty((n, SEQUENCE_LENGTH), dtype=np.int8)
    codes = boards.reshape(n, 64).view(np.int8)
    squares = tokens[:, :SIDE_TO_MOVE_INDEX]
    np.add(codes, np.int8(_PIECE_OFFSET), out=squares)
    # Empty squares got the offset itself: bring them down to EMPTY (arithmetic,
    # since a masked copy is five times slower here).
    squares -= (codes == 0).view(np.int8) * np.int8(_PIECE_OFFSET - EMPTY)
    tokens[:, SIDE_TO_MOVE_INDEX] = np.where(turn, np.int8(WHITE_TO_MOVE), np.int8(BLACK_TO_MOVE))
    # The binding's castling order (K, Q, k, q) is ours (CASTLING_SQUARES), and
    # its rights are always clean, like Board.clean_castling_rights().
    tokens[:, CASTLING_INDICES[0] :] = np.where(castling, np.int8(CASTLING_HELD), np.int8(CASTLING_NOT_HELD))
    return tokens


def replay_many(games: Sequence[tuple[str | None, str]], num_threads: int = 1) -> list[np.ndarray | None]:
    """Replay the mainlines of many games in one native call.

    Args:
        games: ``(start FEN or None, movetext)`` per game. The FEN must already
            be checked (games.starting_board); movetext is the game's text
            after its tags.
        num_threads: the binding's parsing threads. One by default: the
            pipeline already runs one process per core.

    Returns:
        Per game, the ``int8`` tokens ``(n_plies, 69)`` of the positions after
        each mainline move, or None where the native reader rejects the game
        or cannot vouch for reading it like python-chess (the caller then
        replays it with python-chess, which also names the skip reason).
    """
    results: list[np.ndarray | None] = [None] * len(games)
    if _reader is None:
        return results
    asked = [i for i, (_, movetext) in enumerate(games) if _reads_like_python_chess(movetext)]
    if not asked:
        return results
    texts = [_game_text(*games[i]) for i in asked]
    try:
        parsed = _reader.parse_games_from_strings(texts, num_threads=num_threads)
    except Exception:  # any native failure only means that python-chess replays the batch
        logger.warning("native PGN reader failed on %d games; python-chess replays them", len(texts), exc_info=True)
        return results
    if parsed.num_games != len(texts):
        # One game per text is what makes results line up; never trust a mismatch.
        logger.warning("native PGN reader returned %d games for %d texts; ignoring it", parsed.num_games, len(texts))
        return results

    done = 0
    for chunk in parsed.chunks:  # consecutive games, in order
        tokens = _tokens(chunk.boards, chunk.turn, chunk.castling)
        offsets = chunk.position_offsets.tolist()
        # A game that did not end at a result token was cut short (by a "[" or
        # inside a variation), so python-chess must read it.
        for k, (valid, outcome) in enumerate(zip(chunk.valid.tolist(), chunk.outcome)):
            if valid and outcome is not None:
                # A game's first position is its start, which is not a sample.
                results[asked[done + k]] = tokens[offsets[k] + 1 : offsets[k + 1]]
        done += chunk.num_games
    return results
