# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``history`` config: real windows, metadata and FENs against python-chess's own replay."""

from __future__ import annotations

import io
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import chess
import chess.pgn
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard

from chesspos_positions import ChessposPositions, decode_window, tokens_to_fen
from chesspos_positions.configs import CONFIGS, examples_table
from chesspos_positions.encoding import CASTLING_SQUARES, MASK, board_to_token_sequence
from chesspos_positions.games import MAX_PLIES, Summary, game_digest
from chesspos_positions.history import WINDOW_LENGTH, fens
from chesspos_positions.rows import fixed_lists_to_numpy, take, tokens_column
from chesspos_positions.pgn import split_games
from conftest import Hub
from pgn_fixtures import legal_games, random_fen, random_game, write_pgn
from test_publish import REPO_ROOT, publish

SHARED = REPO_ROOT.parent / "shared" / "data"
LICHESS = SHARED / "lichess"


def replayed_games(text: str) -> Iterator[tuple[chess.pgn.Game, str, list[chess.Board]]]:
    """Each game of ``text``, its game id, and python-chess's replay: its boards from ply 0 on."""
    raws = iter(split_games(text.splitlines()))
    handle = io.StringIO(text)
    while (game := chess.pgn.read_game(handle)) is not None:
        raw = next(raws)
        site = game.headers.get("Site", "")
        board = game.board()
        history = [board.copy(stack=False)]
        for move in game.mainline_moves():
            board.push(move)
            history.append(board.copy(stack=False))
        yield game, site if "://" in site else game_digest(raw).hex(), history


def reference(text: str) -> dict[tuple[str, int], dict[str, object]]:
    """Per (game id, ply): what python-chess's replay of ``text`` says the row must hold."""
    expected: dict[tuple[str, int], dict[str, object]] = {}
    for game, game_id, history in replayed_games(text):
        for ply, board in enumerate(history[1:], start=1):
            window = [board_to_token_sequence(history[ply - i]) if ply - i >= 0 else np.full(69, MASK, np.int8)
                      for i in range(WINDOW_LENGTH)]
            expected[(game_id, ply)] = {
                "window": np.stack(window),
                "fen": board.fen(),
                "white_elo": int(game.headers["WhiteElo"]) if game.headers.get("WhiteElo", "").isdigit() else None,
                "black_elo": int(game.headers["BlackElo"]) if game.headers.get("BlackElo", "").isdigit() else None,
                "result": game.headers.get("Result", "*"),
                "time_control": game.headers.get("TimeControl"),
                "eco": game.headers.get("ECO"),
            }
    return expected


def history_rows(path: Path, batches: int = 1, batch_size: int = 10**7, **kwargs) -> list:
    builder = ChessposPositions(config_name="history", data_path=str(path), batches=batches, batch_size=batch_size,
                                sampling="all", **kwargs)
    return list(builder.generate_batches())


def assert_rows_match(path: Path, batches: list) -> int:
    expected = reference(path.read_text(encoding="utf-8"))
    checked = 0
    for batch in batches:
        for split in ("train", "test"):
            table = examples_table(getattr(batch, split), CONFIGS["history"])
            windows = np.array(table.column("window").to_pylist(), dtype=np.int8)
            for row, window in zip(table.drop_columns(["window"]).to_pylist(), windows):
                want = expected[(row["game_id"], row["ply"])]
                assert np.array_equal(window, want["window"]), (row["game_id"], row["ply"])
                assert row["fen"] == want["fen"]
                for name in ("white_elo", "black_elo", "result", "time_control", "eco"):
                    assert row[name] == want[name], (name, row["game_id"])
                assert row["scalars"] == [0, 0, 0]
                checked += 1
    return checked


def test_windows_metadata_and_fens_match_python_chess(tmp_path: Path) -> None:
    rng = random.Random(5)
    # FEN starts (some with Black to move and odd counters), games shorter
    # than a window, en passant chances from random play, varied headers.
    games = legal_games(seed=3, n=60, fen_every=3)
    games += [random_game(rng, max_plies=rng.randrange(1, 9), headers={"Event": f"short {i}", "ECO": "A00", "Result": "1-0"})
              for i in range(15)]
    path = write_pgn(tmp_path / "games.pgn", games)
    assert assert_rows_match(path, history_rows(path, train_ratio=0.7)) == sum(len(g.boards) for g in games)


@pytest.mark.skipif(not LICHESS.is_dir(), reason="../shared/data is absent")
@pytest.mark.parametrize("name", ["etiennebonnafoux_lichess_games.pgn", "mzfr_year-in-review_lichess.pgn"])
def test_real_lichess_games_match_python_chess(name: str, tmp_path: Path) -> None:
    # The first file has games starting from a FEN, the second short games.
    # The first 250 games of each, and every FEN game: python-chess is the slow side.
    games = re.split(r"(?m)^(?=\[Event )", (LICHESS / name).read_text(encoding="utf-8"))[1:]
    chosen = games[:250] + [game for game in games[250:] if "[FEN " in game]
    path = tmp_path / name
    path.write_text("".join(chosen), encoding="utf-8")
    assert assert_rows_match(path, history_rows(path)) > 10_000


def test_a_game_longer_than_the_ply_column_holds_is_skipped_whole(tmp_path: Path) -> None:
    # 32,768 plies of knights going back and forth: python-chess plays them, but no legal game is that long
    # (the 75-move rule) and the ply column is int16. The game is skipped with its reason, not the build.
    endless = '[Event "endless"]\n[Result "*"]\n\n' + "Nf3 Nf6 Ng1 Ng8 " * (MAX_PLIES // 4 + 1) + "*\n\n"
    short = '[Event "short"]\n[Result "*"]\n\n1. e4 e5 2. Nf3 *\n'
    path = tmp_path / "games.pgn"
    path.write_text(endless + short)
    builder = ChessposPositions(config_name="history", data_path=str(path), batches=1, batch_size=100, sampling="all")
    batches = list(builder.generate_batches(summary=(summary := Summary())))
    assert summary.skipped == {"too_long": 1} and summary.games_kept == 1
    rows = pa.concat_tables([batch.train for batch in batches] + [batch.test for batch in batches])
    assert sorted(rows.column("ply").to_pylist()) == [1, 2, 3]


def test_en_passant_and_clocks_reach_the_fen(tmp_path: Path) -> None:
    # 3. exd6 is legal only after 2... d5; after 1... a5 the push leaves no capture.
    text = '[Event "ep"]\n[Result "*"]\n\n1. e4 a5 2. e5 d5 3. exd6 Nf6 4. Nf3 Ng8 5. Ng1 *\n'
    path = tmp_path / "ep.pgn"
    path.write_text(text)
    (batch,) = history_rows(path, train_ratio=0.5)
    fens = {row["ply"]: row["fen"] for split in ("train", "test") for row in getattr(batch, split).select(["ply", "fen"]).to_pylist()}
    assert fens[4] == "rnbqkbnr/1pp1pppp/8/p2pP3/8/8/PPPP1PPP/RNBQKBNR w KQkq d6 0 3"
    assert fens[2].split()[3] == "-"  # a5: no white pawn beside it
    assert fens[9] == "rnbqkbnr/1pp1pppp/3P4/p7/8/8/PPPP1PPP/RNBQKBNR b KQkq - 4 5"


def test_fens_in_bulk_match_python_chess() -> None:
    # Every castling subset, long empty runs across the middle of a rank, full
    # ranks, promoted pieces and clocks of several widths, next to random play.
    rng = random.Random(11)
    boards = [chess.Board(fen) for fen in (
        "8/8/8/8/8/8/8/K6k w - - 0 1", "4k3/8/8/3pP3/8/8/8/4K3 w - d6 0 100000",
        "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR b KQkq - 123 4567", "QQQQQQQQ/8/8/8/3k4/8/8/qqq1K3 b - - 7 0",
    )]
    for rights in range(16):
        board = chess.Board("r3k2r/8/8/p2P4/P6p/8/8/R3K2R w - - 0 1")
        board.castling_rights = sum(chess.BB_SQUARES[square] for bit, square in enumerate(CASTLING_SQUARES) if rights >> bit & 1)
        boards.append(board)
    boards += [chess.Board(random_fen(rng, plies=rng.randrange(0, 120))) for _ in range(300)]
    tokens = np.stack([board_to_token_sequence(board) for board in boards])
    en_passant = np.array([b.ep_square if b.ep_square is not None and b.has_legal_en_passant() else -1 for b in boards])
    clocks = [np.array([getattr(b, name) for b in boards]) for name in ("halfmove_clock", "fullmove_number")]
    assert fens(tokens, en_passant, *clocks).to_pylist() == [board.fen() for board in boards]
    assert fens(tokens[:0], en_passant[:0], clocks[0][:0], clocks[1][:0]).to_pylist() == []


def test_take_gathers_across_chunks() -> None:
    rng = np.random.default_rng(2)
    tokens = rng.integers(15, 29, size=(50, 690), dtype=np.int8)
    parts = [pa.table({"history": tokens_column(tokens[a:b]), "ply": pa.array(np.arange(a, b), pa.int16())})
             for a, b in ((0, 7), (7, 7), (7, 31), (31, 50))]
    rows = pa.concat_tables(parts).slice(3, 40)  # as a batch is cut from its buffered unit results
    order = rng.permutation(40)
    taken = take(rows, order)
    assert np.array_equal(fixed_lists_to_numpy(taken.column("history"), (690,)), tokens[3:43][order])
    assert taken.column("ply").to_pylist() == (np.arange(3, 43)[order]).tolist()
    with pytest.raises(IndexError, match=r"\[0, 40\)"):
        take(rows, np.array([0, 40]))


def test_same_rows_and_order_as_default(tmp_path: Path) -> None:
    path = write_pgn(tmp_path / "games.pgn", legal_games(seed=8, n=50, fen_every=4))
    options = dict(data_path=str(path), batches=3, batch_size=400, sampling="all", seed=3)
    default = list(ChessposPositions(**options).generate_batches())
    history = list(ChessposPositions(config_name="history", **options).generate_batches())
    assert len(default) == len(history) == 3
    for a, b in zip(default, history):
        for split in ("train", "test"):
            window = examples_table(getattr(b, split), CONFIGS["history"]).column("window").to_pylist()
            assert np.array_equal(a.tokens(split), np.array([w[0] for w in window], dtype=np.int8))
            assert np.array_equal(a.tokens(split), b.tokens(split))


def test_decode_helpers_round_trip() -> None:
    board = chess.Board("r3k2r/pp3ppp/8/3pP3/8/8/PP3PPP/R3K2R w Kq d6 4 20")
    tokens = board_to_token_sequence(board)
    assert tokens_to_fen(tokens) == "r3k2r/pp3ppp/8/3pP3/8/8/PP3PPP/R3K2R w Kq - 0 1"
    window = np.full((10, 69), MASK, np.int8)
    window[0] = tokens
    decoded = decode_window(window)
    assert decoded[1:] == [None] * 9 and decoded[0] is not None
    assert decoded[0].board_fen() == board.board_fen() and decoded[0].castling_rights == board.castling_rights
    with pytest.raises(ValueError, match="square token"):
        decode_window(np.full((10, 69), 3, np.int8))
    with pytest.raises(ValueError, match="shape"):
        decode_window(tokens)


LOAD_CONFIGS = """
import json, sys
from datasets import load_dataset
path, streaming = sys.argv[1], sys.argv[2] == "1"
out = {}
for name in ("default", "history"):
    ds = load_dataset(path, name, streaming=streaming)
    out[name] = {split: [{k: v for k, v in row.items()} for row in ds[split]] for split in ("train", "test")}
    out[name + "_features"] = repr(ds["train"].features)
print(json.dumps(out))
"""


def load_configs(hub: Hub, path: str, tmp_path: Path, streaming: bool) -> dict:
    env = hub.env(None)
    env["HF_HOME"] = env["HF_DATASETS_CACHE"] = str(tmp_path / f"cache-{streaming}")
    result = subprocess.run([sys.executable, "-c", LOAD_CONFIGS, path, "1" if streaming else "0"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_both_configs_publish_and_load_through_the_hub(hub: Hub, tmp_path: Path) -> None:
    path = write_pgn(tmp_path / "games.pgn", legal_games(seed=4, n=40, fen_every=3))
    common = ["--repo", "user/configs", "--data-path", str(path), "--batches", "2", "--batch-size", "200", "--sampling", "all", "--train-ratio", "0.7"]
    publish(hub, *common)
    api_files_before = _shard_hashes(hub, "user/configs")
    out = publish(hub, *common, "--config-name", "history")
    assert "history/train" in out.stdout
    after = _shard_hashes(hub, "user/configs")
    # Publishing history never touched default's files.
    assert {p: h for p, h in after.items() if not p.startswith("history/")} == api_files_before
    assert sorted(p for p in after if p.startswith("history/")) == [
        f"history/{split}/batch_00{i}.parquet" for split in ("test", "train") for i in (1, 2)
    ]
    for streaming in (True, False):
        loaded = load_configs(hub, "user/configs", tmp_path, streaming)
        assert "Array2D(shape=(10, 69), dtype='int8')" in loaded["history_features"]
        for split in ("train", "test"):
            default_rows, history_rows_ = loaded["default"][split], loaded["history"][split]
            assert len(default_rows) == len(history_rows_) > 0
            assert all(d["window"][0] == h["window"][0] for d, h in zip(default_rows, history_rows_))
            assert all(set(h) == set(CONFIGS["history"].features) for h in history_rows_)
    card = DatasetCard(hub.server.commits("user/configs")[0].files["README.md"].data.decode())
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    assert sorted(infos) == ["default", "history"]
    for name, info in infos.items():  # exact counts, per config
        assert {split: s.num_examples for split, s in info.splits.items()} == {
            split: len(rows) for split, rows in loaded[name].items()
        }


def _shard_hashes(hub: Hub, repo: str) -> dict[str, str]:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=hub.url)
    return {e.path: e.lfs.sha256 for e in api.list_repo_tree(repo, repo_type="dataset", recursive=True)
            if isinstance(e, RepoFile) and e.path.endswith(".parquet")}


def test_dry_run_layout_loads_and_keeps_default(tmp_path: Path) -> None:
    path = write_pgn(tmp_path / "games.pgn", legal_games(seed=6, n=20, fen_every=2))
    out = tmp_path / "out"
    args = ["--dry-run", "--output-dir", str(out), "--data-path", str(path), "--batches", "1", "--batch-size", "300", "--sampling", "all"]
    run = lambda *extra: subprocess.run([sys.executable, "-m", "builder.publish", *args, *extra], cwd=REPO_ROOT,
                                        capture_output=True, text=True, timeout=300)
    assert run().returncode == 0
    before = {p: p.read_bytes() for p in out.glob("t*/*.parquet")}
    assert run("--config-name", "history").returncode == 0
    assert {p: p.read_bytes() for p in out.glob("t*/*.parquet")} == before
    history = pq.read_table(out / "history" / "train" / "batch_001.parquet")
    assert history.schema.names == list(CONFIGS["history"].features)
    from datasets import load_dataset

    ds = load_dataset(str(out), "history", split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.features == CONFIGS["history"].features and len(ds) == history.num_rows
