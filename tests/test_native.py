# SPDX-License-Identifier: GPL-3.0-or-later
"""The native replay path against python-chess, the reference: tokens, skips, units.

The native reader (``rust-pgn-reader-python-binding``) is optional; tests
that need it skip without it. Every comparison runs the same games with
``CHESSPOS_NATIVE=0`` (python-chess only) and ``=1`` and asks for identical
results, so any game the native reader reads differently shows up here.
"""

from __future__ import annotations

import functools
import io
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import chess
import chess.pgn
import numpy as np
import pytest

from chesspos_positions import board_to_token_sequence, native
from chesspos_positions.encoding import encode_bitboard_rows
from chesspos_positions.games import SKIP_REASONS, ParsedGame, replay, replay_tokens, start_game
from chesspos_positions.generation import UnitResult, WorkUnit, encode_unit, iter_work_units
from chesspos_positions.sampling import Sampling
from chesspos_positions.pgn import split_games
from chesspos_positions.sources import resolve_paths
from pgn_fixtures import BAD_CASES, FixtureGame, bad_input_text, legal_games

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ALL = Sampling.from_mode("all")
#: Default sampling with a ply curve that keeps about half the plies, so the draws matter.
SAMPLED = Sampling.from_mode("default", ply_full=1, ply_keep=0.5, elo_tiers=((2400, 0.7), (0, 0.5)))

needs_native = pytest.mark.skipif(not native.AVAILABLE, reason="rust-pgn-reader-python-binding is not installed")


# --- Fixtures -------------------------------------------------------------------------------


def special_game(rng: random.Random, fen: str | None = None, max_plies: int = 160) -> FixtureGame:
    """A random legal game that plays promotions, castling and en passant whenever it can.

    Pawn moves are preferred otherwise, so that pawns reach the last rank. Now
    and then a move gets a comment, a NAG or a sideline, which both readers skip.
    """
    board = chess.Board(fen) if fen else chess.Board()
    game = chess.pgn.Game()
    if fen:
        game.setup(board)
    node: chess.pgn.GameNode = game
    boards = []
    for _ in range(max_plies):
        moves = list(board.legal_moves)
        if not moves:
            break
        special = [m for m in moves if m.promotion or board.is_castling(m) or board.is_en_passant(m)]
        pawn = [m for m in moves if board.piece_type_at(m.from_square) == chess.PAWN]
        pool = special if special and rng.random() < 0.9 else pawn if pawn and rng.random() < 0.7 else moves
        move = rng.choice(pool)
        if len(moves) > 1 and rng.random() < 0.05:
            node.add_variation(rng.choice([m for m in moves if m != move])).comment = "a sideline"
        node = node.add_main_variation(move) if node.variations else node.add_variation(move)
        if rng.random() < 0.1:
            node.comment = "[%clk 0:01:00]"
            node.nags.add(chess.pgn.NAG_GOOD_MOVE)
        board.push(move)
        boards.append(board.copy(stack=False))
    game.headers["Result"] = board.result(claim_draw=False) if board.is_game_over() else "*"
    for name, value in {"WhiteElo": "2500", "BlackElo": "2500", "TimeControl": "600+0"}.items():
        game.headers[name] = value
    return FixtureGame(str(game), boards)


#: Valid start positions with castling rights, an en passant square, or pawns about to promote.
SPECIAL_FENS = [
    None,
    "r3k2r/pppppppp/8/8/8/8/PPPPPPPP/R3K2R w KQkq - 0 1",
    "r3k2r/1p4p1/8/8/8/8/1P4P1/R3K2R b Kq - 3 20",
    "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3",
    "1n2k1n1/PP4PP/8/8/8/8/pp4pp/1N2K1N1 w - - 0 30",
    "r3k3/1P6/8/8/8/8/6p1/4K2R b K - 0 40",
]


@functools.cache
def special_games(seed: int, n: int) -> list[FixtureGame]:
    rng = random.Random(seed)
    return [special_game(rng, SPECIAL_FENS[i % len(SPECIAL_FENS)]) for i in range(n)]


#: Movetexts where the two readers part ways unless the native path hands the
#: game to python-chess. Each is checked to give python-chess's result.
TRICKY = {
    "moves after the result": "1. e4 e5 1-0 2. Nf3 Nc6 *",
    "illegal move after the result": "1. e4 e5 2. Qh5 Nc6 3. Bc4 Nf6 4. Qxf7# 1-0 Ke7 *",
    "two results": "1. e4 e5 2. Nf3 1-0 1-0",
    "0000 null move": "1. e4 0000 2. d4 *",
    "0000 read as a move number": "1. e4 e5 10. 0000 2. Nf3 *",
    "Z0 null move": "1. e4 Z0 2. d4 *",
    "-- null move": "1. e4 -- 2. d4 d5 *",
    "variation before the first move": "( 1. d4 ) 1. e4 e5 *",
    "variation after the move number": "1. ( d4 ) e4 e5 *",
    "comment then variation first": "{ e4 is best } ( 1. d4 ) 1. e4 *",
    "pawn capture without file": "1. e4 d5 2. xd5 *",
    "pawn capture with P": "1. e4 d5 2. Pxd5 Qxd5 *",
    "pawn capture with rank only": "1. e4 d5 2. 4xd5 *",
    "bracket mid-movetext": "1. e4 [ e5 2. Nf3 *",
    "result in a line comment": "1. e4 e5 ; 1-0\n2. Nf3 *",
    "result in a comment": "1. e4 { 1-0 } e5 *",
    "result in a variation": "1. e4 ( 1. d4 1-0 ) e5 *",
    "unclosed variation": "1. e4 ( 1... d5 *",
    "blank line in a comment": "1. e4 { one\n\ntwo } e5 *",
    "no result": "1. e4 e5 2. Nf3",
    "result only": "*",
    "capture mark without capture": "1. e4 e5 2. Nxf3 *",
    "capture without capture mark": "1. e4 d5 2. ed5 *",
    "lowercase piece": "1. e4 e5 2. nf3 *",
    "long algebraic": "1. e2e4 e7e5 2. g1f3 b8c6 *",
    "castling with zeros": "1. e4 e5 2. Nf3 Nc6 3. Bc4 Bc5 4. 0-0 Nf6 *",
    "lowercase castling": "1. e4 e5 2. Nf3 Nc6 3. Bc4 Bc5 4. o-o Nf6 *",
    "en passant": "1. e4 Nf6 2. e5 d5 3. exd6 exd6 *",
    "en passant suffix": "1. e4 Nf6 2. e5 d5 3. exd6e.p. *",
    "promotion without =": "1. h4 g5 2. hxg5 h6 3. gxh6 Nf6 4. h7 Ne4 5. hxg8Q *",
    "underpromotion": "1. h4 g5 2. hxg5 h6 3. gxh6 Nf6 4. h7 Ne4 5. hxg8=N *",
    "rank-disambiguated capture": "1. a4 h5 2. Ra3 Rh6 3. Rb3 Ra6 4. Rbb3 *",
    "drop": "1. e4 e5 2. N@f3 *",
    "glued tokens": "1.e4e5 *",
    "annotations": "1. e4!? $1 e5?? 2. Nf3!! {good} Nc6 $14 *",
    # Last: the comment swallows everything after it, following games included.
    "unclosed comment": "1. e4 e5 { never closed *",
}


def parsed(text: str, sampling: Sampling = ALL, seed: int = 0) -> list[tuple[ParsedGame, np.random.Generator | None]]:
    return [start_game(raw, sampling, seed) for raw in split_games(text.splitlines())]


def both_paths(monkeypatch: pytest.MonkeyPatch, run):
    """``run()`` with the native path off, then on."""
    results = []
    for setting in ("0", "1"):
        monkeypatch.setenv("CHESSPOS_NATIVE", setting)
        results.append(run())
    return results


def assert_same_units(a: list[UnitResult], b: list[UnitResult]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.summary == y.summary
        assert x.train.schema == y.train.schema
        assert x.train.equals(y.train) and x.test.equals(y.test)


def unit_of(text: str) -> WorkUnit:
    return WorkUnit("<memory>", tuple(split_games(text.splitlines())))


# --- The native reader alone ----------------------------------------------------------------


@needs_native
def test_native_tokens_equal_python_chess_on_generated_games() -> None:
    fixtures = legal_games(seed=21, n=60) + special_games(seed=22, n=48)
    games = [game for game, _ in parsed("\n\n".join(f.pgn for f in fixtures))]
    assert all(game.skip is None for game in games)
    got = native.replay_many([(game.headers.get("FEN"), "\n".join(game.raw.movetext)) for game in games])
    # Clean exports: the native reader must answer for every one of them.
    assert all(tokens is not None for tokens in got)
    for fixture, game, tokens in zip(fixtures, games, got):
        reference = replay(game)
        assert reference.error is None
        assert tokens.dtype == np.int8 and tokens.shape == (len(fixture.boards), 69)
        assert np.array_equal(tokens, encode_bitboard_rows(reference.snapshots))
        assert np.array_equal(tokens, np.array([board_to_token_sequence(b) for b in fixture.boards]))


def test_special_games_cover_promotions_castling_and_en_passant() -> None:
    seen = set()
    for fixture in special_games(seed=22, n=48):
        game = chess.pgn.read_game(io.StringIO(fixture.pgn))
        board = game.board()
        for move in game.mainline_moves():
            if move.promotion:
                seen.add(f"={chess.piece_symbol(move.promotion)}")
            if board.is_en_passant(move):
                seen.add("ep")
            if board.is_castling(move):
                seen.add(("O-O" if board.is_kingside_castling(move) else "O-O-O") + ("w" if board.turn else "b"))
            board.push(move)
    assert seen >= {"=q", "=r", "=b", "=n", "ep", "O-Ow", "O-O-Ow", "O-Ob", "O-O-Ob"}


@needs_native
@pytest.mark.parametrize("name", list(TRICKY))
def test_tricky_movetext_gives_python_chess_result(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = f'[Event "{name}"]\n\n{TRICKY[name]}\n'

    def run():
        games = [game for game, _ in parsed(text)]
        return [(tokens.tolist(), error) for tokens, error in replay_tokens(games)]

    reference, got = both_paths(monkeypatch, run)
    assert got == reference


@needs_native
def test_native_reader_accepts_what_it_should() -> None:
    # The guards against disagreement must not send ordinary games to python-chess.
    ordinary = [
        "1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. O-O Nf6 1-0",
        "1. d4 { [%eval 0.2] [%clk 0:03:00] } 1... d5 2. c4 ( 2. Nf3 ) dxc4 1/2-1/2",
        "1. e4 d5 2. exd5 Qxd5 3. Nc3 Qa5 0-1",
        "1. a4 h5 2. Ra3 Rh6 3. Rb3 Ra6 4. Rb6 R6xb6 *",
    ]
    assert all(tokens is not None for tokens in native.replay_many([(None, text) for text in ordinary]))
    assert native.replay_many([(None, TRICKY["moves after the result"])])[0] is None


@needs_native
def test_threads_keep_game_order() -> None:
    games = [(None, f.pgn.partition("\n\n")[2]) for f in legal_games(seed=5, n=40, fen_every=10**6)]
    one, two = native.replay_many(games), native.replay_many(games, num_threads=2)
    assert all(a is not None and np.array_equal(a, b) for a, b in zip(one, two))


def test_native_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHESSPOS_NATIVE", "0")
    assert not native.enabled()
    monkeypatch.setenv("CHESSPOS_NATIVE", "1")
    assert native.enabled() == native.AVAILABLE


def test_pipeline_without_the_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "\n\n".join(f.pgn for f in legal_games(seed=8, n=10))
    with_default = encode_unit(unit_of(text), ALL, 1, 0.8)
    monkeypatch.setattr(native, "_reader", None)
    monkeypatch.setattr(native, "AVAILABLE", False)
    assert not native.enabled()
    assert native.replay_many([(None, "1. e4 *")]) == [None]
    assert_same_units([encode_unit(unit_of(text), ALL, 1, 0.8)], [with_default])


# --- Whole units, both paths ----------------------------------------------------------------


@needs_native
@pytest.mark.parametrize("sampling", [ALL, SAMPLED], ids=["all", "default"])
def test_encode_unit_is_identical_on_both_paths(sampling: Sampling, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "\n\n".join(
        [f.pgn for f in legal_games(seed=31, n=40) + special_games(seed=32, n=24)]
        + [text for _, text in BAD_CASES]
        + [f'[Event "{name}"]\n[WhiteElo "2500"]\n[BlackElo "2500"]\n\n{movetext}' for name, movetext in TRICKY.items()]
    ) + "\n"
    python_chess, native_path = both_paths(monkeypatch, lambda: [encode_unit(unit_of(text), sampling, 9, 0.7)])
    assert_same_units(native_path, python_chess)
    summary = native_path[0].summary
    assert summary.games_read == 40 + 24 + len(BAD_CASES) + len(TRICKY)
    assert summary.positions == len(native_path[0].train) + len(native_path[0].test) > 0


@needs_native
def test_bad_input_file_same_skips_and_positions_on_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad.pgn"
    path.write_text(bad_input_text())

    def run():
        return [encode_unit(unit, ALL, 0, 0.5) for unit in iter_work_units(resolve_paths(path), games_per_unit=4)]

    python_chess, native_path = both_paths(monkeypatch, run)
    assert_same_units(native_path, python_chess)
    skipped = sum((unit.summary.skipped for unit in native_path), start=Counter())
    assert {reason: skipped[reason] for reason in SKIP_REASONS} == {
        reason: sum(1 for r, _ in BAD_CASES if r == reason) for reason in SKIP_REASONS
    }
    assert sum(len(unit.train) + len(unit.test) for unit in native_path) == 6


@needs_native
def test_mutated_games_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Damaged movetext (dropped, swapped and inserted characters and tokens) must still agree."""
    rng = random.Random(44)
    junk = ["1-0", "*", "0000", "--", "Z0", "(", ")", "{", "}", ";", "$1", "!", "x", "P", "[", "\n", "O-O", "0-0"]
    junk += ["e.p.", "=Q", "1."]
    texts = []
    for fixture in legal_games(seed=45, n=60, fen_every=3) + special_games(seed=46, n=12):
        head, _, movetext = fixture.pgn.partition("\n\n")
        chars = list(movetext)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(chars))
            roll = rng.random()
            if roll < 0.4:
                chars[at:at] = list(f" {rng.choice(junk)} ")
            elif roll < 0.7:
                del chars[at : at + rng.randint(1, 4)]
            else:
                chars[at] = rng.choice("abcdefgh12345678NBRQKx=+#-. ")
        texts.append(f"{head}\n\n{''.join(chars)}")
    unit = unit_of("\n\n".join(texts) + "\n")
    python_chess, native_path = both_paths(monkeypatch, lambda: [encode_unit(unit, ALL, 2, 0.5)])
    assert_same_units(native_path, python_chess)
    assert python_chess[0].summary.skipped["illegal_move"] > 0 and python_chess[0].summary.games_kept > 0


@needs_native
@pytest.mark.skipif(not (SHARED / "lichess").is_dir(), reason="../shared/data is absent")
def test_real_games_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first 400 games of each Lichess file, and the tricky files whole:
    # seconds, not a minute, since python-chess is the slow side.
    lichess = [next(iter_work_units([url], games_per_unit=400)) for url in resolve_paths(SHARED / "lichess")]
    tricky = list(iter_work_units(resolve_paths(SHARED / "tricky")))
    for sampling in (ALL, replace(SAMPLED, elo_tiers=((0, 0.3),))):
        def run(sampling: Sampling = sampling) -> list[UnitResult]:
            return [encode_unit(unit, sampling, 4, 0.9) for unit in lichess + tricky]

        python_chess, native_path = both_paths(monkeypatch, run)
        assert_same_units(native_path, python_chess)
        assert sum(unit.summary.positions for unit in native_path) > 0
    # Real games must stay on the fast path, or it is fast in name only.
    started = (start_game(raw, ALL, 0) for unit in lichess for raw in unit.games)
    games = [game for game, _ in started if game.skip is None]
    answered = native.replay_many([(game.headers.get("FEN"), "\n".join(game.raw.movetext)) for game in games])
    assert sum(tokens is not None for tokens in answered) >= 0.98 * len(games)
