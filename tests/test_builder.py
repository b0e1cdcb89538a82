# SPDX-License-Identifier: GPL-3.0-or-later
"""The GeneratorBasedBuilder: features, exact batches, game-level splits, determinism."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datasets import Array2D, Features, Sequence, Value

from chesspos_positions import VOCABULARY, ChessposPositions, board_to_token_sequence
from chesspos_positions.builder import ChessposPositionsConfig
from pgn_fixtures import legal_games, write_pgn

BATCHES, BATCH_SIZE, RATIO = 3, 200, 0.9


@pytest.fixture(scope="module")
def fen_games(tmp_path_factory: pytest.TempPathFactory):
    """Games that each start from their own FEN, so every position names its game."""
    games = legal_games(seed=11, n=120, fen_every=1)
    return write_pgn(tmp_path_factory.mktemp("fen") / "games.pgn", games), games


def build(tmp_path: Path, data: Path, num_proc: int | None = None, **config):
    builder = ChessposPositions(cache_dir=str(tmp_path / f"cache{num_proc}"), data_path=str(data), **config)
    builder.download_and_prepare(num_proc=num_proc)
    return builder, builder.as_dataset().with_format("numpy", dtype=np.int8)


@pytest.fixture(scope="module")
def built(fen_games, tmp_path_factory: pytest.TempPathFactory, replay_path: str | None):
    path, _ = fen_games
    return build(tmp_path_factory.mktemp("b"), path, batches=BATCHES, batch_size=BATCH_SIZE, train_ratio=RATIO, sampling="all")


def test_features_are_exactly_the_declared_ones(built) -> None:
    builder, ds = built
    expected = Features({"window": Array2D(shape=(10, 69), dtype="int8"), "scalars": Sequence(Value("int8"), length=3)})
    assert builder.info.features == expected
    assert ds["train"].features == expected


def test_exact_batch_sizes_windows_and_vocabulary(built) -> None:
    _, ds = built
    assert ds["train"].num_rows == BATCHES * round(BATCH_SIZE * RATIO)
    assert ds["test"].num_rows == BATCHES * (BATCH_SIZE - round(BATCH_SIZE * RATIO))
    for split in ("train", "test"):
        # Stored as int8 (numpy formatting widens integers to int64 on read).
        assert ds[split].data.schema.field("window").type.storage_type == pa.list_(pa.list_(pa.int8()))
        windows = ds[split][:]["window"]
        assert windows.shape[1:] == (10, 69)
        assert (windows == windows[:, :1, :]).all()
        assert np.isin(windows, list(VOCABULARY)).all() and not (windows == 16).any()
        assert (ds[split][:]["scalars"] == 0).all()


def test_no_game_in_both_splits_and_no_position_twice(built, fen_games) -> None:
    _, games = fen_games
    _, ds = built
    owner = {}
    for index, game in enumerate(games):
        for board in game.boards:
            owner.setdefault(board_to_token_sequence(board).tobytes(), set()).add(index)
    games_in = {}
    for split in ("train", "test"):
        rows = [w[0].tobytes() for w in ds[split][:]["window"]]
        assert all(len(owner[r]) == 1 for r in rows)
        games_in[split] = {next(iter(owner[r])) for r in rows}
    assert games_in["train"] and games_in["test"]
    assert not games_in["train"] & games_in["test"]
    # Batches never overlap: no row is used more often than the games hold it.
    available = Counter(board_to_token_sequence(b).tobytes() for g in games for b in g.boards)
    used = Counter(w[0].tobytes() for split in ("train", "test") for w in ds[split][:]["window"])
    assert not used - available


def test_streaming_equals_prepared(built) -> None:
    builder, ds = built
    streamed = builder.as_streaming_dataset()
    for split in ("train", "test"):
        rows = [np.asarray(example["window"], dtype=np.int8) for example in streamed[split]]
        assert np.array_equal(np.stack(rows), ds[split][:]["window"])


def test_num_proc_does_not_change_the_data(built, fen_games, tmp_path: Path) -> None:
    _, ds = built
    path, _ = fen_games
    _, ds2 = build(tmp_path, path, num_proc=2, batches=BATCHES, batch_size=BATCH_SIZE, train_ratio=RATIO, sampling="all")
    for split in ("train", "test"):
        assert np.array_equal(ds[split][:]["window"], ds2[split][:]["window"])


def test_all_mode_one_large_batch_holds_exactly_every_position(fen_games, tmp_path: Path) -> None:
    path, games = fen_games
    total = sum(len(g.boards) for g in games)
    builder, ds = build(tmp_path, path, batches=1, batch_size=10 * total, sampling="all")
    got = sorted(w[0].tobytes() for split in ("train", "test") for w in ds[split][:]["window"])
    expected = sorted(board_to_token_sequence(b).tobytes() for g in games for b in g.boards)
    assert got == expected
    assert builder.summary is not None and builder.summary.positions == total


def test_batches_shuffle_rows_and_depend_on_seed(fen_games, tmp_path: Path) -> None:
    path, _ = fen_games
    builder = ChessposPositions(data_path=str(path), batches=2, batch_size=100, sampling="all", seed=1)
    first = list(builder.generate_batches())
    again = list(ChessposPositions(data_path=str(path), batches=2, batch_size=100, sampling="all", seed=1).generate_batches())
    other = list(ChessposPositions(data_path=str(path), batches=2, batch_size=100, sampling="all", seed=2).generate_batches())
    assert all(np.array_equal(a.tokens("train"), b.tokens("train")) for a, b in zip(first, again))
    assert not np.array_equal(first[0].tokens("train"), other[0].tokens("train"))
    # Same rows, other order: the shuffle is per batch, the content is not seeded in mode "all".
    assert sorted(map(bytes, first[0].tokens("train"))) == sorted(map(bytes, other[0].tokens("train")))


def test_partial_last_batch_is_reported(fen_games, caplog: pytest.LogCaptureFixture) -> None:
    path, games = fen_games
    total = sum(len(g.boards) for g in games)
    builder = ChessposPositions(data_path=str(path), batches=5, batch_size=total // 3, sampling="all")
    with caplog.at_level("WARNING"):
        batches = list(builder.generate_batches())
    full = [b for b in batches if not b.partial]
    assert len(full) >= 2 and not any(b.partial for b in batches[: len(full)]) and batches[-1].partial
    assert all(len(b.train) + len(b.test) == builder.config.batch_size for b in full)
    assert sum(len(b.train) + len(b.test) for b in batches) == total
    assert "partial" in caplog.text


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sampling": "most"}, "unknown sampling mode"),
        ({"train_ratio": 1.0}, "train_ratio"),
        ({"train_ratio": 0}, "train_ratio"),
        ({"batches": 0}, r"batches must be in \[1, "),
        ({"seed": -1}, r"seed must be in \[0, 2\*\*64\)"),
        ({"seed": 2**64}, r"seed must be in \[0, 2\*\*64\)"),
        ({"elo_tiers": ((2000, 1.0),)}, "min rating 0"),
        ({"name": "tensors"}, "unknown config name 'tensors'"),
    ],
)
def test_config_validates_itself(kwargs: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        ChessposPositionsConfig(**{"name": "default", **kwargs})
    if "name" not in kwargs:
        # A predefined config's copy, as datasets makes it for ChessposPositions(config_name=..., **values)
        # and load_dataset: the values are set on it, not passed to its constructor.
        with pytest.raises(ValueError, match=message):
            ChessposPositions(config_name="history", cache_dir=str(tmp_path), **kwargs)


def test_missing_data_path_fails_before_work(tmp_path: Path) -> None:
    builder = ChessposPositions(cache_dir=str(tmp_path / "c"), data_path=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="none"):
        builder.download_and_prepare()


def test_embedded_sample_is_the_default_input() -> None:
    builder = ChessposPositions(batches=1, batch_size=500)
    (batch,) = builder.generate_batches()
    assert len(batch.train) + len(batch.test) == 500
