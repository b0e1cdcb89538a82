"""The embedded sample must be reproducible from its script and valid PGN.

``scripts/`` is not a package, so the generator is imported by file path.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import chess
import chess.pgn
import pytest
import zstandard

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "make_embedded_sample.py"
SHIPPED = REPO_ROOT / "chesspos_positions" / "data" / "sample_games.pgn.zst"

# The shipped file is small by design; a much larger one means someone
# regenerated it with the wrong arguments.
MAX_SHIPPED_BYTES = 200_000


@pytest.fixture(scope="module")
def script() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("make_embedded_sample", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered while executing so that typing/NamedTuple machinery that
    # looks the module up by name works, and removed afterwards so the
    # test leaves no global trace.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def decompress(path: Path) -> str:
    return zstandard.ZstdDecompressor().decompress(path.read_bytes()).decode("utf-8")


@pytest.fixture(scope="module")
def shipped_text() -> str:
    return decompress(SHIPPED)


@pytest.fixture(scope="module")
def shipped_games(shipped_text: str) -> list[chess.pgn.Game]:
    games = []
    stream = io.StringIO(shipped_text)
    while (game := chess.pgn.read_game(stream)) is not None:
        games.append(game)
    return games


def test_shipped_file_is_small() -> None:
    assert SHIPPED.stat().st_size < MAX_SHIPPED_BYTES


def test_regeneration_is_byte_identical(script: ModuleType, tmp_path: Path, shipped_text: str) -> None:
    output = tmp_path / "sample_games.pgn.zst"
    exit_code = script.main(
        [
            "--seed",
            str(script.DEFAULT_SEED),
            "--games",
            str(script.DEFAULT_GAMES),
            "--output",
            str(output),
        ]
    )
    assert exit_code == 0
    # Compare decompressed text: compressed bytes may vary across zstd versions.
    regenerated = decompress(output)
    assert regenerated == shipped_text


def test_text_format(shipped_text: str) -> None:
    assert "\r" not in shipped_text
    assert shipped_text.endswith("\n") and not shipped_text.endswith("\n\n\n")


def test_every_game_parses_and_is_legal(script: ModuleType, shipped_games: list[chess.pgn.Game]) -> None:
    assert len(shipped_games) == script.DEFAULT_GAMES
    for index, game in enumerate(shipped_games):
        assert not game.errors, f"game {index}: {game.errors}"
        board = game.board()
        for move in game.mainline_moves():
            assert board.is_legal(move), f"game {index}: illegal {move.uci()} in {board.fen()}"
            board.push(move)
        assert board.ply() > game.board().ply(), f"game {index} has no moves"
        assert_result_matches(index, game, board)


def assert_result_matches(index: int, game: chess.pgn.Game, final: chess.Board) -> None:
    """The Result tag must agree with the final position."""
    result = game.headers["Result"]
    if final.is_checkmate():
        expected = "0-1" if final.turn == chess.WHITE else "1-0"
        assert result == expected, f"game {index}: mate but Result {result}"
    elif result == "*":
        assert game.headers["Termination"] == "Unterminated"
        assert final.outcome(claim_draw=False) is None
    else:
        assert result == "1/2-1/2", f"game {index}: decisive without mate"
        assert final.outcome(claim_draw=True) is not None, f"game {index}: unjustified draw"


def test_every_sampling_path_is_exercised(shipped_games: list[chess.pgn.Game]) -> None:
    """The sample is meant to cover the project's filters; make sure it does."""

    def min_elo(game: chess.pgn.Game) -> int | None:
        values = [game.headers.get(tag, "?") for tag in ("WhiteElo", "BlackElo")]
        if any(not value.isdigit() for value in values):
            return None
        return min(int(value) for value in values)

    elos = [min_elo(game) for game in shipped_games]
    assert any(elo is not None and elo >= 2400 for elo in elos)
    assert any(elo is not None and 2000 <= elo < 2400 for elo in elos)
    assert any(elo is not None and elo < 2000 for elo in elos)
    assert any(elo is None for elo in elos)
    assert any("WhiteElo" not in g.headers or "BlackElo" not in g.headers for g in shipped_games)
    assert any("?" in (g.headers.get("WhiteElo"), g.headers.get("BlackElo")) for g in shipped_games)

    controls = [game.headers["TimeControl"] for game in shipped_games]
    bases = [int(tc.split("+")[0]) for tc in controls if tc != "-"]
    assert any(base >= 300 for base in bases)
    assert any(base < 300 for base in bases)
    assert "-" in controls

    fen_games = [game for game in shipped_games if game.headers.get("SetUp") == "1"]
    assert fen_games and all("FEN" in game.headers for game in fen_games)
    # Both "N." and "N..." movetext starts must be covered.
    assert {game.board().turn for game in fen_games} == {chess.WHITE, chess.BLACK}

    results = {game.headers["Result"] for game in shipped_games}
    assert {"1-0", "0-1", "1/2-1/2", "*"} <= results
