# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``bitboard`` and ``tensor`` configs and encoders against the original layouts and python-chess's replay."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import chess
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import Hub
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard
from pgn_fixtures import legal_games, write_pgn
from test_history import replayed_games
from test_publish import REPO_ROOT, publish

from builder.publish import main as publish_main
from chesspos_positions import (
    ChessposPositions,
    bitboard_to_board,
    board_to_bitboard,
    board_to_tensor,
    board_to_token_sequence,
    decode_window,
    iter_batches,
    native,
    tensor_to_board,
    tokens_to_bitboards,
    tokens_to_tensors,
)
from chesspos_positions.configs import CONFIGS, examples_table
from chesspos_positions.history import WINDOW_LENGTH

LICHESS = REPO_ROOT.parent / "shared" / "data" / "lichess"
SHAPES = {"bitboard": (WINDOW_LENGTH, 773), "tensor": (WINDOW_LENGTH, 8, 8, 15)}
_ORDER = (chess.PAWN, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN, chess.KING)


# The original encoders, transcribed from the description with
# python-chess's public API only: the reference every encoding is held to.
def spec_bitboard(board: chess.Board) -> np.ndarray:
    bits = np.zeros(773, dtype=bool)
    for square, piece in board.piece_map().items():
        block = (0 if piece.color == chess.WHITE else 6) + _ORDER.index(piece.piece_type)
        bits[64 * block + square] = True
    bits[768] = board.turn == chess.WHITE
    bits[769] = board.has_kingside_castling_rights(chess.WHITE)
    bits[770] = board.has_queenside_castling_rights(chess.WHITE)
    bits[771] = board.has_kingside_castling_rights(chess.BLACK)
    bits[772] = board.has_queenside_castling_rights(chess.BLACK)
    return bits


def spec_tensor(board: chess.Board) -> np.ndarray:
    tensor = np.zeros((8, 8, 15), dtype=bool)
    for square, piece in board.piece_map().items():
        plane = (0 if piece.color == chess.WHITE else 6) + _ORDER.index(piece.piece_type)
        tensor[chess.square_rank(square)][chess.square_file(square)][plane] = True
    tensor[0][0][12] = board.has_queenside_castling_rights(chess.WHITE)
    tensor[0][7][12] = board.has_kingside_castling_rights(chess.WHITE)
    tensor[7][0][12] = board.has_queenside_castling_rights(chess.BLACK)
    tensor[7][7][12] = board.has_kingside_castling_rights(chess.BLACK)
    if board.has_legal_en_passant():
        tensor[chess.square_rank(board.ep_square)][chess.square_file(board.ep_square)][13] = True
    tensor[0][0][14] = board.turn == chess.WHITE
    return tensor


SPEC = {"bitboard": spec_bitboard, "tensor": spec_tensor}


def replayed_windows(text: str) -> dict[tuple[str, int], list[chess.Board | None]]:
    """Per (game id, ply): python-chess's replay of the window, newest first, None before the game's start."""
    return {
        (game_id, ply): [history[ply - i] if ply >= i else None for i in range(WINDOW_LENGTH)]
        for _, game_id, history in replayed_games(text)
        for ply in range(1, len(history))
    }


def window_values(column: pa.ChunkedArray, shape: tuple[int, ...]) -> np.ndarray:
    """An ArrayND ``window`` column as one numpy array of shape ``(n, *shape)``."""
    parts = []
    for chunk in column.chunks:
        values = chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
        while isinstance(values.type, pa.ListType):
            values = values.flatten()
        parts.append(values.to_numpy(zero_copy_only=False).reshape(-1, *shape))
    return np.concatenate(parts) if parts else np.empty((0, *shape))


def assert_windows_match_replay(path: Path, train_ratio: float = 0.95) -> dict[str, int]:
    """Every row of every window of both configs equals the spec encoding of python-chess's replay."""
    expected = replayed_windows(path.read_text(encoding="utf-8"))
    builder = ChessposPositions(config_name="history", data_path=str(path), batches=1, batch_size=10**7,
                                sampling="all", train_ratio=train_ratio)
    (batch,) = builder.generate_batches()
    seen = {"rows": 0, "padding": 0, "en_passant": 0}
    for name, spec in SPEC.items():
        blank = np.zeros(SHAPES[name][1:], dtype=bool)
        encoded: dict[int, np.ndarray] = {}  # each replayed board once, by identity: windows share boards
        for split in ("train", "test"):
            table = examples_table(getattr(batch, split), CONFIGS[name])
            assert table.schema == CONFIGS[name].features.arrow_schema
            windows = window_values(table.column("window"), SHAPES[name])
            assert windows.dtype == np.bool_
            keys = zip(table.column("game_id").to_pylist(), table.column("ply").to_pylist())
            for window, key in zip(windows, keys, strict=True):
                replay = expected[key]
                want = np.stack([blank if board is None else encoded.setdefault(id(board), spec(board)) for board in replay])
                assert np.array_equal(window, want), (name, key)
                if name == "tensor":
                    seen["rows"] += 1
                    seen["padding"] += sum(board is None for board in replay)
                    seen["en_passant"] += int(window[:, :, :, 13].any())
    return seen


@pytest.mark.parametrize("path", ["python-chess", "native"])
def test_generated_games_match_python_chess(path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "native" and not native.AVAILABLE:
        pytest.skip("the native binding is not installed")
    monkeypatch.setenv("CHESSPOS_NATIVE", "1" if path == "native" else "0")
    games = legal_games(seed=12, n=60, fen_every=3)
    seen = assert_windows_match_replay(write_pgn(tmp_path / "games.pgn", games), train_ratio=0.7)
    assert seen["rows"] == sum(len(game.boards) for game in games)
    assert seen["padding"] > 0 and seen["en_passant"] > 0


@pytest.mark.skipif(not LICHESS.is_dir(), reason="../shared/data is absent")
@pytest.mark.parametrize("path", ["python-chess", "native"])
def test_real_lichess_games_match_python_chess(path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "native" and not native.AVAILABLE:
        pytest.skip("the native binding is not installed")
    monkeypatch.setenv("CHESSPOS_NATIVE", "1" if path == "native" else "0")
    # 100 games of a monthly dump, plus the API export's games that start from a FEN.
    dump = re.split(r"(?m)^(?=\[Event )", (LICHESS / "kdave_pgn-toys_lichess_2021-10.pgn").read_text(encoding="utf-8"))[1:]
    export = re.split(r"(?m)^(?=\[Event )", (LICHESS / "etiennebonnafoux_lichess_games.pgn").read_text(encoding="utf-8"))[1:]
    chosen = dump[:100] + [game for game in export if "[FEN " in game]
    pgn = tmp_path / "lichess.pgn"
    pgn.write_text("".join(game.rstrip("\n") + "\n\n" for game in chosen), encoding="utf-8")
    seen = assert_windows_match_replay(pgn)
    assert seen["rows"] > 5_000 and seen["padding"] > 0 and seen["en_passant"] > 0


def sample_boards() -> list[chess.Board]:
    """Positions from random games: every piece, castling states, en passant chances (legal or not)."""
    boards = [board for game in legal_games(seed=21, n=40, fen_every=4) for board in game.boards]
    # A double push with no capturing pawn beside it: python-chess keeps ep_square, the capture is not legal.
    boards.append(chess.Board("rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq e3 0 1"))
    # A legal capture, and one that a pin makes illegal.
    boards.append(chess.Board("rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3"))
    boards.append(chess.Board("8/8/8/K2pP2r/8/8/8/7k w - d6 0 1"))
    return boards


def test_per_board_encoders_match_the_original_layouts() -> None:
    boards = sample_boards()
    assert any(b.ep_square is not None and not b.has_legal_en_passant() for b in boards)
    assert any(b.has_legal_en_passant() for b in boards)
    for board in boards:
        assert np.array_equal(board_to_bitboard(board), spec_bitboard(board)), board.fen()
        assert np.array_equal(board_to_tensor(board), spec_tensor(board)), board.fen()


def test_batch_encoders_equal_the_per_board_encoders() -> None:
    boards = sample_boards()
    tokens = np.stack([board_to_token_sequence(board) for board in boards])
    en_passant = np.array([board.ep_square if board.has_legal_en_passant() else -1 for board in boards])
    assert np.array_equal(tokens_to_bitboards(tokens), np.stack([board_to_bitboard(b) for b in boards]))
    assert np.array_equal(tokens_to_tensors(tokens, en_passant), np.stack([board_to_tensor(b) for b in boards]))
    # Any leading shape, and mask rows give all-False rows.
    windows = np.full((3, WINDOW_LENGTH, 69), 16, dtype=np.int8)
    windows[:, 0] = tokens[:3]
    passant = np.full((3, WINDOW_LENGTH), -1)
    passant[:, 0] = en_passant[:3]
    assert not tokens_to_bitboards(windows)[:, 1:].any() and not tokens_to_tensors(windows, passant)[:, 1:].any()
    assert np.array_equal(tokens_to_tensors(windows, passant)[:, 0], tokens_to_tensors(tokens[:3], en_passant[:3]))
    with pytest.raises(ValueError, match="en passant squares of shape"):
        tokens_to_tensors(windows, en_passant)


def test_round_trips() -> None:
    for board in sample_boards():
        for encode, decode in ((board_to_bitboard, bitboard_to_board), (board_to_tensor, tensor_to_board)):
            array = encode(board)
            decoded = decode(array)
            assert np.array_equal(encode(decoded), array)
            assert decoded.board_fen() == board.board_fen() and decoded.turn == board.turn
            assert decoded.castling_rights == board.clean_castling_rights()
        assert bitboard_to_board(board_to_bitboard(board)).ep_square is None
        legal = board.ep_square if board.has_legal_en_passant() else None
        assert tensor_to_board(board_to_tensor(board)).ep_square == legal


@pytest.mark.parametrize("rights", range(16))
def test_all_16_castling_combinations_round_trip(rights: int) -> None:
    # Bit k of ``rights``: White kingside, White queenside, Black kingside, Black queenside.
    board = chess.Board("r3k2r/pppppppp/8/8/8/8/PPPPPPPP/R3K2R w - - 0 1")
    corners = (chess.H1, chess.A1, chess.H8, chess.A8)
    board.castling_rights = sum(chess.BB_SQUARES[sq] for k, sq in enumerate(corners) if rights >> k & 1)
    held = [bool(rights >> k & 1) for k in range(4)]
    assert held == [board.has_kingside_castling_rights(chess.WHITE), board.has_queenside_castling_rights(chess.WHITE),
                    board.has_kingside_castling_rights(chess.BLACK), board.has_queenside_castling_rights(chess.BLACK)]
    bitboard, tensor = board_to_bitboard(board), board_to_tensor(board)
    assert bitboard[769:].tolist() == held
    assert [tensor[0][7][12], tensor[0][0][12], tensor[7][7][12], tensor[7][0][12]] == held
    for decoded in (bitboard_to_board(bitboard), tensor_to_board(tensor)):
        assert decoded.castling_rights == board.castling_rights
        assert decoded.fen() == board.fen()


def test_decode_window_takes_every_encoding() -> None:
    boards = sample_boards()[:3]
    tokens = np.full((WINDOW_LENGTH, 69), 16, dtype=np.int8)
    tokens[:3] = [board_to_token_sequence(b) for b in boards]
    bitboards = np.zeros(SHAPES["bitboard"], dtype=bool)
    bitboards[:3] = [board_to_bitboard(b) for b in boards]
    tensors = np.zeros(SHAPES["tensor"], dtype=bool)
    tensors[:3] = [board_to_tensor(b) for b in boards]
    for window in (tokens, bitboards, tensors):
        decoded = decode_window(window)
        assert decoded[3:] == [None] * 7
        assert [d.board_fen() for d in decoded[:3]] == [b.board_fen() for b in boards]
    with pytest.raises(ValueError, match="shape"):
        decode_window(np.zeros((WINDOW_LENGTH, 773), dtype=np.int8))
    with pytest.raises(ValueError, match="shape"):
        decode_window(bitboards[0])


def test_decoders_reject_what_no_encoder_writes() -> None:
    bitboard = board_to_bitboard(chess.Board())
    with pytest.raises(ValueError, match="bool"):
        bitboard_to_board(bitboard.astype(np.int8))
    with pytest.raises(ValueError, match="shape"):
        tensor_to_board(bitboard)
    two = bitboard.copy()
    two[64 + chess.E4] = two[chess.E4] = True
    with pytest.raises(ValueError, match="e4 holds 2 pieces"):
        bitboard_to_board(two)
    tensor = board_to_tensor(chess.Board())
    for rank, file, plane, message in ((3, 3, 12, "rook corner"), (0, 1, 14, "other than a1")):
        bad = tensor.copy()
        bad[rank][file][plane] = True
        with pytest.raises(ValueError, match=message):
            tensor_to_board(bad)
    bad = tensor.copy()
    bad[5][0][13] = bad[5][1][13] = True
    with pytest.raises(ValueError, match="marks 2 squares"):
        tensor_to_board(bad)
    # An en passant square no capture can take, and a castling right whose rook has gone.
    bad = tensor.copy()
    bad[3][3][13] = True
    with pytest.raises(ValueError, match="marks d4, where no en passant capture is legal"):
        tensor_to_board(bad)
    rookless = chess.Board()
    rookless.remove_piece_at(chess.H1)
    for encode, decode in ((board_to_tensor, tensor_to_board), (board_to_bitboard, bitboard_to_board)):
        bad = encode(rookless)
        bad[(0, 7, 12) if decode is tensor_to_board else 769] = True
        with pytest.raises(ValueError, match="castling right is marked on h1"):
            decode(bad)
    # What the encoders write decodes, Chess960 starts too (their kings stand off e1 and e8).
    for number in range(0, 960, 7):
        board = chess.Board.from_chess960_pos(number)
        for encode, decode in ((board_to_tensor, tensor_to_board), (board_to_bitboard, bitboard_to_board)):
            assert decode(encode(board)).board_fen() == board.board_fen()


LOAD_WINDOWS = """
import json, sys
import numpy as np
from datasets import load_dataset
repo, streaming, out = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
arrays, info = {}, {}
for name in ("history", "bitboard", "tensor"):
    ds = load_dataset(repo, name, streaming=streaming)
    info[name] = repr(ds["train"].features["window"])
    for split in ("train", "test"):
        if streaming:
            rows = [np.asarray(row["window"]) for row in ds[split]]
            arrays[f"{name}-{split}"] = np.stack(rows)
        else:
            arrays[f"{name}-{split}"] = ds[split].with_format("numpy")["window"]
np.savez(out, **arrays)
print(json.dumps(info))
"""


def test_configs_publish_and_load_through_the_hub(hub: Hub, tmp_path: Path) -> None:
    games = write_pgn(tmp_path / "games.pgn", legal_games(seed=9, n=30, fen_every=3))
    common = ["--repo", "user/planes", "--data-path", str(games), "--batches", "2", "--batch-size", "150",
              "--sampling", "all", "--train-ratio", "0.7"]
    for name in ("history", "bitboard", "tensor"):
        out = publish(hub, *common, "--config-name", name)
        assert f"{name}/train" in out.stdout
    card = DatasetCard(hub.server.commits("user/planes")[0].files["README.md"].data.decode())
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    assert sorted(infos) == ["bitboard", "history", "tensor"]
    assert "### `bitboard`" in card.text and "### `tensor`" in card.text
    for streaming in (True, False):
        out = tmp_path / f"windows-{streaming}.npz"
        env = hub.env(None)
        env["HF_HOME"] = env["HF_DATASETS_CACHE"] = str(tmp_path / f"cache-{streaming}")
        result = subprocess.run([sys.executable, "-c", LOAD_WINDOWS, "user/planes", "1" if streaming else "0", str(out)],
                                env=env, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        features = json.loads(result.stdout.strip().splitlines()[-1])
        assert features["bitboard"] == "Array2D(shape=(10, 773), dtype='bool')"
        assert features["tensor"] == "Array4D(shape=(10, 8, 8, 15), dtype='bool')"
        with np.load(out) as arrays:
            for split in ("train", "test"):
                tokens = arrays[f"history-{split}"]
                counts = infos["history"].splits[split].num_examples
                for name in ("bitboard", "tensor"):
                    windows = arrays[f"{name}-{split}"]
                    assert windows.dtype == np.bool_ and windows.shape == (len(tokens), *SHAPES[name]) and len(tokens) == counts
                    assert infos[name].splits[split].num_examples == counts
                # Same rows in the same order: each bool window encodes the history window's tokens.
                assert np.array_equal(arrays[f"bitboard-{split}"], tokens_to_bitboards(tokens))
                assert_tensors_encode(arrays[f"tensor-{split}"], tokens)


def assert_tensors_encode(tensors: np.ndarray, tokens: np.ndarray) -> None:
    """``tensors`` are the tensor windows of the token windows ``tokens``.

    The tokens drop the en passant square, so plane 13 is checked against the
    boards the tokens decode to: at most one square, on rank 3 or 6, behind a pawn that just moved two squares.
    """
    without = np.full(tokens.shape[:2], -1)
    assert np.array_equal(np.delete(tensors, 13, axis=-1), np.delete(tokens_to_tensors(tokens, without), 13, axis=-1))
    for window, planes in zip(tokens, tensors):
        for board, tensor in zip(decode_window(window), planes):
            marked = np.argwhere(tensor[:, :, 13])
            assert len(marked) <= 1
            if len(marked):
                (rank, file), = marked
                board.ep_square = chess.square(file, rank)
                assert board.has_legal_en_passant(), board.fen()


def test_dry_run_shards_read_with_pyarrow_and_duckdb(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    games = write_pgn(tmp_path / "games.pgn", legal_games(seed=2, n=15, fen_every=3))
    out = tmp_path / "out"
    args = ["--dry-run", "--output-dir", str(out), "--data-path", str(games), "--batches", "1", "--batch-size", "200", "--sampling", "all"]
    for name in ("history", "bitboard", "tensor"):
        run = subprocess.run([sys.executable, "-m", "builder.publish", *args, "--config-name", name], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stderr[-3000:]
    history = pq.read_table(out / "history" / "train" / "batch_001.parquet")
    tokens = window_values(history.column("window"), (WINDOW_LENGTH, 69))
    for name in ("bitboard", "tensor"):
        path = out / name / "train" / "batch_001.parquet"
        column = pq.ParquetFile(path).metadata.row_group(0).column(0)
        assert column.physical_type == "BOOLEAN" and set(column.encodings) <= {"PLAIN", "RLE"}
        table = pq.read_table(path)
        # polars writes these shards: pyarrow still restores the exact schema (extension types, features metadata).
        schema = CONFIGS[name].features.arrow_schema
        assert table.schema.equals(schema) and table.schema.metadata == schema.metadata
        assert table.drop_columns(["window"]).equals(history.drop_columns(["window"]))
        windows = window_values(table.column("window"), SHAPES[name])
        if name == "bitboard":
            assert np.array_equal(windows, tokens_to_bitboards(tokens))
        else:
            assert_tensors_encode(windows, tokens)
        rows = duckdb.sql(f"SELECT \"window\", fen FROM '{path}'").fetchall()
        assert [fen for _, fen in rows] == history.column("fen").to_pylist()
        assert np.array_equal(np.array([window for window, _ in rows], dtype=bool), windows)
        # The training-loop reader gives the declared bool shapes, in file order.
        batches = list(iter_batches(out, name=name, batch_size=64))
        assert all(b["window"].dtype == np.bool_ and b["window"].shape[1:] == SHAPES[name] for b in batches)
        assert np.array_equal(np.concatenate([b["window"] for b in batches]), windows)


def test_bool_configs_share_history_rows_in_their_own_folders() -> None:
    for name in ("bitboard", "tensor"):
        config = CONFIGS[name]
        assert config.rows == "history" and config.data_files("train") == f"{name}/train/*.parquet"
        assert {k: v for k, v in config.features.items() if k != "window"} == {
            k: v for k, v in CONFIGS["history"].features.items() if k != "window"}


def test_a_card_without_default_shows_its_own_config(tmp_path: Path) -> None:
    games = write_pgn(tmp_path / "games.pgn", legal_games(seed=4, n=8))
    out = tmp_path / "tensor-only"
    assert publish_main(["--dry-run", "--output-dir", str(out), "--data-path", str(games), "--batches", "1",
                         "--batch-size", "100", "--sampling", "all", "--config-name", "tensor"]) == 0
    text = (out / "README.md").read_text()
    load = text[text.index("## Load"):text.index("## Configs")]
    assert 'iter_batches("user/chesspos-positions", split="train", name="tensor"' in load
    assert "numpy bool, shape (4096, 10, 8, 8, 15)" in load and "10 x 8 x 8 x 15 bool" in load
    assert "69" not in load
    # The datasets and decode snippets run as written, on the folder for the repo.
    snippets = re.findall(r"```python\n(.*?)```", load, re.S)
    namespace: dict[str, object] = {}
    for code in (next(c for c in snippets if "load_dataset" in c), next(c for c in snippets if "decode_window" in c)):
        exec(code.replace("user/chesspos-positions", str(out)), namespace)
    last = pq.read_table(out / "tensor" / "train" / "batch_001.parquet", columns=["fen"]).column("fen")[-1].as_py()
    board = namespace["board"]
    assert isinstance(board, chess.Board) and board.board_fen() == last.split()[0]
    # So does the config's own decoding snippet.
    section = text[text.index("### `tensor`"):]
    schema_code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    exec(schema_code.replace("user/chesspos-positions", str(out)), namespace)
    first = pq.read_table(out / "tensor" / "train" / "batch_001.parquet", columns=["fen"]).column("fen")[0].as_py()
    assert namespace["boards"][0].board_fen() == first.split()[0]
