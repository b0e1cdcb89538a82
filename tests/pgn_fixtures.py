# SPDX-License-Identifier: GPL-3.0-or-later
"""PGN fixtures the test suite writes itself: legal games and every kind of bad input."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import chess
import chess.pgn


@dataclass
class FixtureGame:
    """A generated game: its PGN text and the boards after each mainline move."""

    pgn: str
    boards: list[chess.Board]


def random_game(rng: random.Random, *, fen: str | None = None, max_plies: int = 60, headers: dict[str, str] | None = None) -> FixtureGame:
    """A random legal game, from ``fen`` or the start, exported by python-chess."""
    board = chess.Board(fen) if fen else chess.Board()
    game = chess.pgn.Game()
    if fen:
        game.setup(board)
    for name, value in (headers or {}).items():
        game.headers[name] = value
    node = game
    boards = []
    for _ in range(rng.randint(1, max_plies)):
        moves = list(board.legal_moves)
        if not moves:
            break
        move = rng.choice(moves)
        node = node.add_variation(move)
        board.push(move)
        boards.append(board.copy(stack=False))
    game.headers["Result"] = board.result(claim_draw=False) if board.is_game_over() else "*"
    return FixtureGame(str(game), boards)


def random_fen(rng: random.Random, plies: int = 12) -> str:
    """A position reached by random moves, as a FEN (a valid start position)."""
    board = chess.Board()
    for _ in range(plies):
        moves = list(board.legal_moves)
        if not moves:
            break
        board.push(rng.choice(moves))
    return board.fen()


def legal_games(seed: int, n: int, fen_every: int = 5) -> list[FixtureGame]:
    """``n`` random legal games with strong ratings; every ``fen_every``-th starts from a FEN."""
    rng = random.Random(seed)
    games = []
    for i in range(n):
        fen = random_fen(rng) if i % fen_every == fen_every - 1 else None
        headers = {"Event": f"Fixture {i}", "White": f"w{i}", "Black": f"b{i}", "WhiteElo": "2500", "BlackElo": "2450", "TimeControl": "600+0"}
        games.append(random_game(rng, fen=fen, headers=headers))
    return games


def write_pgn(path: Path, games: list[FixtureGame]) -> Path:
    path.write_text("\n\n".join(game.pgn for game in games) + "\n", encoding="utf-8")
    return path


#: One file with every bad-input case, each a complete game, between good
#: games. Keys are the expected skip reason; None marks a good game.
BAD_CASES: list[tuple[str | None, str]] = [
    (None, '[Event "good 1"]\n[White "a"]\n[Black "b"]\n[Result "*"]\n\n1. e4 e5 2. Nf3 *'),
    ("illegal_move", '[Event "illegal"]\n[Result "*"]\n\n1. e4 e5 2. Ke3 Nc6 *'),
    ("illegal_move", '[Event "unparsable"]\n[Result "*"]\n\n1. e4 xyzzy 2. d4 *'),
    ("null_move", '[Event "null"]\n[Result "*"]\n\n1. e4 -- 2. d4 d5 *'),
    ("invalid_fen", '[Event "bad fen"]\n[SetUp "1"]\n[FEN "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP w KQkq - 0 1"]\n[Result "*"]\n\n1. e4 *'),
    ("invalid_fen", '[Event "no kings"]\n[SetUp "1"]\n[FEN "8/8/8/8/8/8/8/8 w - - 0 1"]\n[Result "*"]\n\n1. e4 *'),
    ("broken_tags", '[Event "broken"]\n[White "unterminated\n[Result "*"]\n\n1. e4 e5 *'),
    ("variant", '[Event "960"]\n[Variant "Chess960"]\n[SetUp "1"]\n[FEN "bqnb1rkr/pp3ppp/3ppn2/2p5/5P2/P2P4/NPP1P1PP/BQ1BNRKR w HFhf - 2 9"]\n[Result "*"]\n\n9. g3 *'),
    ("variant", '[Event "atomic"]\n[Variant "Atomic"]\n[Result "*"]\n\n1. e4 e5 *'),
    ("no_moves", '[Event "header only"]\n[Result "*"]\n\n*'),
    (None, '[Event "good 2"]\n[WhiteElo "?"]\n[BlackElo ""]\n[Result "*"]\n\n1. d4 d5 2. c4 *'),
]

#: The mainline moves (SAN) of the good games of :data:`BAD_CASES`.
BAD_FILE_GOOD_MOVES: list[list[str]] = [["e4", "e5", "Nf3"], ["d4", "d5", "c4"]]


def bad_input_text() -> str:
    return "\n\n".join(text for _, text in BAD_CASES) + "\n"


def replay(moves: list[str], fen: str | None = None) -> list[chess.Board]:
    """Boards after each SAN move, replayed with python-chess."""
    board = chess.Board(fen) if fen else chess.Board()
    boards = []
    for san in moves:
        board.push_san(san)
        boards.append(board.copy(stack=False))
    return boards
