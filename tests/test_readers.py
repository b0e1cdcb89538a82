# SPDX-License-Identifier: GPL-3.0-or-later
"""Every reader opens the shards with pyarrow's values, and ``iter_batches`` reads them fast and exactly once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import polars
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from arro3.io import read_parquet as arrow_rs_read_parquet
from datasets import Array2D, Array4D, Features, Sequence, Value
from huggingface_hub import HfApi

from chesspos_positions import iter_batches
from chesspos_positions import reader as reader_module
from chesspos_positions.configs import CONFIG_NAMES
from conftest import TOKEN, Hub
from pgn_fixtures import legal_games, write_pgn

REPO_ROOT = Path(__file__).resolve().parents[1]
ROWS_PER_FILE = (700, 800, 500)  # the "train" split of the grouped release: 3 files, 20 row groups
ROW_GROUP = 100


# ----------------------------------------------------------------------------- releases
@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``publish --dry-run`` release of 2 batches of 300 samples, in every config."""
    root = tmp_path_factory.mktemp("published")
    games = write_pgn(root / "games.pgn", legal_games(seed=8, n=60, fen_every=4))
    out = root / "release"
    for config in CONFIG_NAMES:
        result = subprocess.run(
            [sys.executable, "-m", "builder.publish", "--dry-run", "--output-dir", str(out), "--data-path", str(games),
             "--batches", "2", "--batch-size", "300", "--sampling", "all", "--config-name", config],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    return out


def window_table(rows: range, rng: np.random.Generator) -> pa.Table:
    """Rows of the default config's features plus a ``row_id``, with random tokens."""
    features = Features({
        "window": Array2D(shape=(10, 69), dtype="int8"),
        "scalars": Sequence(Value("int8"), length=3),
        "row_id": Value("int32"),
    })
    tokens = rng.integers(15, 33, size=(len(rows), 69), dtype=np.int8)
    return pa.Table.from_pydict({
        "window": np.repeat(tokens[:, None, :], 10, axis=1).tolist(),
        "scalars": rng.integers(-5, 5, size=(len(rows), 3), dtype=np.int8).tolist(),
        "row_id": np.asarray(rows, dtype=np.int32),
    }, schema=features.arrow_schema)


def tensor_table(n: int, rng: np.random.Generator) -> pa.Table:
    """Rows like the ``tensor``/``history`` configs: a 4-D bool window and nullable flat metadata."""
    features = Features({
        "window": Array4D(shape=(10, 8, 8, 15), dtype="bool"),
        "game_id": Value("string"),
        "ply": Value("int16"),
        "white_elo": Value("int16"),
    })
    return pa.Table.from_pydict({
        "window": rng.random((n, 10, 8, 8, 15)).__lt__(0.1).tolist(),
        "game_id": [None if i == 1 else f"g{i}" for i in range(n)],
        "ply": np.arange(n, dtype=np.int16),
        "white_elo": [None if i % 3 == 0 else 1500 + i for i in range(n)],
    }, schema=features.arrow_schema)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local release in the published layout with many row groups, a ``row_id`` column and a ``tensor`` config."""
    root = tmp_path_factory.mktemp("grouped")
    rng = np.random.default_rng(8)
    first = 0
    for index, n in enumerate(ROWS_PER_FILE, start=1):
        (root / "train").mkdir(exist_ok=True)
        pq.write_table(window_table(range(first, first + n), rng), root / "train" / f"batch_{index:03d}.parquet",
                       row_group_size=ROW_GROUP)
        first += n
    (root / "test").mkdir()
    pq.write_table(window_table(range(50), rng), root / "test" / "batch_001.parquet", row_group_size=ROW_GROUP)
    (root / "tensor" / "train").mkdir(parents=True)
    pq.write_table(tensor_table(12, rng), root / "tensor" / "train" / "part-0.parquet", row_group_size=5)
    return root


def flat(column: pa.Array | pa.ChunkedArray, *shape: int) -> np.ndarray:
    """Nested lists (extension type or not) -> numpy of shape ``(n, *shape)``."""
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = values.storage if isinstance(values, pa.ExtensionArray) else values
    for _ in shape:
        values = values.flatten()
    return values.to_numpy(zero_copy_only=False).reshape(-1, *shape)


def pyarrow_columns(path: Path) -> dict[str, np.ndarray]:
    """The reference: pyarrow's values of a shard, flattened to numpy."""
    table = pq.read_table(path)
    columns = {"window": flat(table.column("window"), 10, 69), "scalars": flat(table.column("scalars"), 3)}
    if "row_id" in table.column_names:
        columns["row_id"] = table.column("row_id").to_numpy()
    return columns


def concatenated(batches: Iterator[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    collected = list(batches)
    return {name: np.concatenate([b[name] for b in collected]) for name in collected[0]}


def upload(hub: Hub, repo: str, folder: Path, **kwargs: object) -> HfApi:
    """Create ``repo`` on the local Hub (if new) and upload ``folder`` to it with the real HfApi."""
    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo(repo, repo_type="dataset", exist_ok=True)
    api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=folder, **kwargs)
    return api


def row_ids(folder: Path, **kwargs: object) -> np.ndarray:
    return np.concatenate([b["row_id"] for b in iter_batches(folder, batch_size=64, **kwargs)] or [np.empty(0, np.int32)])


# ----------------------------------------------------------------------------- other readers
def plain(value: object) -> object:
    """Nested tuples (DuckDB's fixed-size arrays) as lists, so that every reader's rows compare alike."""
    return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def pyarrow_rows(path: Path) -> dict[str, list]:
    """The reference: every column of a shard as pyarrow reads it, as Python values."""
    table = pq.read_table(path)
    return {name: plain(_pylist(table.column(name))) for name in table.column_names}


def _pylist(column: pa.ChunkedArray) -> list:
    values = column.combine_chunks()
    return (values.storage if isinstance(values, pa.ExtensionArray) else values).to_pylist()


def duckdb_rows(path: Path) -> dict[str, list]:
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    rows = relation.fetchall()
    return {name: [plain(row[i]) for row in rows] for i, name in enumerate(relation.columns)}


def polars_rows(path: Path) -> dict[str, list]:
    # Series.to_list, not to_arrow: polars exports the window's storage as large lists under the extension
    # name, which pyarrow, once datasets has registered that extension type, reads with 32-bit list offsets.
    frame = polars.read_parquet(path)
    return {name: plain(frame[name].to_list()) for name in frame.columns}


def arrow_rs_rows(path: Path) -> dict[str, list]:
    table = pa.table(arrow_rs_read_parquet(str(path)).read_all())  # decoded by arrow-rs, handed over by the C data interface
    return {name: plain(_pylist(table.column(name))) for name in table.column_names}


READERS: dict[str, Callable[[Path], dict[str, list]]] = {
    f"duckdb {duckdb.__version__}": duckdb_rows,
    f"polars {polars.__version__}": polars_rows,
    "arrow-rs (arro3-io)": arrow_rs_rows,
}


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_reads_pyarrows_values(published: Path, reader: str) -> None:
    shards = sorted(published.rglob("*.parquet"))
    assert len(shards) == 16  # 4 configs, train and test, 2 batches
    for shard in shards:
        expected, got = pyarrow_rows(shard), READERS[reader](shard)
        assert list(got) == list(expected) and len(expected["window"]) > 0, shard
        for name in expected:
            assert got[name] == expected[name], f"{reader}: {shard}, column {name}"


def test_duckdb_is_a_viewer_version() -> None:
    """The dataset viewer indexes with DuckDB 1.5.x, which refuses byte-stream-split integers."""
    assert duckdb.__version__.startswith("1.5.")


# ----------------------------------------------------------------------------- iter_batches
def test_iter_batches_reads_a_published_release_like_pyarrow(published: Path) -> None:
    for split in ("train", "test"):
        expected = [pyarrow_columns(p) for p in sorted((published / split).glob("*.parquet"))]
        batches = list(iter_batches(published, split, batch_size=128))
        assert [len(b["window"]) for b in batches[:-1]] == [128] * (len(batches) - 1)  # exact, across files
        assert not batches[0]["window"].flags.writeable  # a view of Arrow's buffer, not a copy
        got = concatenated(iter(batches))
        assert got["window"].dtype == np.int8 and got["window"].shape[1:] == (10, 69)
        assert got["scalars"].dtype == np.int8 and got["scalars"].shape[1:] == (3,)
        for name in ("window", "scalars"):
            np.testing.assert_array_equal(got[name], np.concatenate([e[name] for e in expected]))


def test_iter_batches_reads_every_column_of_the_history_config(published: Path) -> None:
    expected: dict[str, list] = {}
    for shard in sorted((published / "history" / "train").glob("*.parquet")):
        for name, values in pyarrow_rows(shard).items():
            expected.setdefault(name, []).extend(values)
    got = concatenated(iter_batches(published, name="history", batch_size=100))
    assert got["window"].dtype == np.int8 and got["ply"].dtype == np.int16 and got["fen"].dtype == object
    assert {name: got[name].tolist() for name in got} == expected


def test_rows_come_in_file_order_without_a_seed(grouped: Path) -> None:
    assert row_ids(grouped).tolist() == list(range(sum(ROWS_PER_FILE)))
    assert row_ids(grouped, split="test").tolist() == list(range(50))


@pytest.mark.parametrize("world_size, workers, seed", [(1, 1, None), (2, 1, 0), (3, 4, None), (2, 4, 7), (8, 1, 3), (5, 3, 1), (6, 8, None)])
def test_every_row_exactly_once_across_ranks_and_workers(
    grouped: Path, monkeypatch: pytest.MonkeyPatch, world_size: int, workers: int, seed: int | None
) -> None:
    shares: list[list[np.ndarray]] = []
    for rank in range(world_size):
        shares.append([])
        for worker in range(workers):
            monkeypatch.setattr(reader_module, "_dataloader_worker", lambda w=worker: (w, workers))
            shares[rank].append(row_ids(grouped, rank=rank, world_size=world_size, seed=seed))
    every = np.concatenate([rows for rank in shares for rows in rank])
    assert len(every) == len(set(every.tolist())) == sum(ROWS_PER_FILE)  # no duplicates, no gaps
    assert sorted(every.tolist()) == list(range(sum(ROWS_PER_FILE)))
    # Ranks' shares differ by at most one row group, whatever their workers; so do a rank's workers' shares.
    units = sum(ROWS_PER_FILE) // ROW_GROUP
    assert {sum(map(len, rank)) for rank in shares} <= {ROW_GROUP * (units // world_size), ROW_GROUP * (units // world_size + 1)}
    assert all(max(map(len, rank)) - min(map(len, rank)) <= ROW_GROUP for rank in shares)


def test_three_files_feed_eight_workers(grouped: Path) -> None:
    shares = [row_ids(grouped, rank=r, world_size=8) for r in range(8)]
    assert all(len(s) > 0 for s in shares)


def test_seeded_order_per_epoch_is_shared_by_every_rank(grouped: Path) -> None:
    epoch0 = row_ids(grouped, seed=5, epoch=0)
    assert row_ids(grouped, seed=5, epoch=0).tolist() == epoch0.tolist()  # reproducible
    epoch1 = row_ids(grouped, seed=5, epoch=1)
    assert epoch1.tolist() != epoch0.tolist() and sorted(epoch1.tolist()) == sorted(epoch0.tolist())
    assert row_ids(grouped, seed=6, epoch=0).tolist() != epoch0.tolist()
    # Row groups move whole: rows inside one stay consecutive, in file order.
    groups = epoch0.reshape(-1, ROW_GROUP)
    assert (np.diff(groups, axis=1) == 1).all() and (groups[:, 0] % ROW_GROUP == 0).all()
    assert groups[:, 0].tolist() != sorted(groups[:, 0].tolist())
    # The same order on every rank, then split: the ranks' shares, in rank order, are that order.
    ranks = [row_ids(grouped, seed=5, epoch=0, rank=r, world_size=3) for r in range(3)]
    assert np.concatenate(ranks).tolist() == epoch0.tolist()


def test_name_selects_a_config_folder_and_converts_its_features(grouped: Path) -> None:
    batches = list(iter_batches(grouped, name="tensor", batch_size=5))
    assert [len(b["ply"]) for b in batches] == [5, 5, 2]
    got = concatenated(iter(batches))
    written = pq.read_table(grouped / "tensor" / "train" / "part-0.parquet")
    assert got["window"].dtype == np.bool_ and got["window"].shape == (12, 10, 8, 8, 15)
    np.testing.assert_array_equal(got["window"], flat(written.column("window"), 10, 8, 8, 15))
    assert got["game_id"].dtype == object and got["game_id"][1] is None and got["game_id"][2] == "g2"
    assert got["ply"].dtype == np.int16 and got["ply"].tolist() == list(range(12))
    first = batches[0]["white_elo"]
    assert isinstance(first, np.ma.MaskedArray) and first.dtype == np.int16
    assert first.mask.tolist() == [True, False, False, True, False] and first[1] == 1501
    assert set(got) == {"window", "game_id", "ply", "white_elo"}
    with pytest.raises(FileNotFoundError, match="'nope'"):
        next(iter_batches(grouped, name="nope"))


def test_configs_come_from_the_card_when_it_has_them(published: Path, tmp_path: Path) -> None:
    """A card whose configs point elsewhere wins over the layout convention."""
    folder = tmp_path / "carded"
    (folder / "data").mkdir(parents=True)
    for shard in (published / "test").glob("*.parquet"):
        (folder / "data" / shard.name).write_bytes(shard.read_bytes())
    (folder / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n"
                                      "  - split: train\n    path: data/*.parquet\n---\n# card\n")
    got = concatenated(iter_batches(folder, "train"))
    expected = np.concatenate([pyarrow_columns(p)["window"] for p in sorted((published / "test").glob("*.parquet"))])
    np.testing.assert_array_equal(got["window"], expected)
    with pytest.raises(ValueError, match="splits \\['train'\\]"):
        next(iter_batches(folder, "test"))
    with pytest.raises(ValueError, match="configs \\['default'\\]"):
        next(iter_batches(folder, "train", name="tensor"))


def test_bad_arguments_name_the_value(grouped: Path) -> None:
    with pytest.raises(ValueError, match="rank=2, world_size=2"):
        next(iter_batches(grouped, rank=2, world_size=2))
    with pytest.raises(ValueError, match="batch_size=0"):
        next(iter_batches(grouped, batch_size=0))
    with pytest.raises(ValueError, match="revision='v1'"):
        next(iter_batches(grouped, revision="v1"))
    with pytest.raises(ValueError, match="seed=0, epoch=-1"):
        next(iter_batches(grouped, seed=0, epoch=-1))
    with pytest.raises(ValueError, match=r"no such column \['nope'\] in .*; its columns are \['window', "):
        next(iter_batches(grouped, columns=["window", "nope"]))
    with pytest.raises(ValueError, match="no column in"):
        next(iter_batches(grouped, columns=[]))
    with pytest.raises(TypeError, match="the string 'window'"):
        next(iter_batches(grouped, columns="window"))
    with pytest.raises(FileNotFoundError, match="'./nope' is neither a local folder nor a Hub dataset repo id"):
        next(iter_batches("./nope"))


EARLY_EXIT = """
import sys
from chesspos_positions import iter_batches
held = iter_batches(sys.argv[1], batch_size=10, seed=0)
first = next(held)  # left open on purpose, like a training loop that breaks out
for batch in iter_batches(sys.argv[1], batch_size=10):
    break
print(first["window"].shape)
"""


@pytest.mark.parametrize("where", ["local", "hub"])
def test_breaking_out_early_exits_promptly(published: Path, hub: Hub, where: str) -> None:
    source = str(published)
    if where == "hub":
        source = "user/reader-exit"
        upload(hub, source, published)
    result = subprocess.run([sys.executable, "-c", EARLY_EXIT, source], env={**hub.env(), "PYTHONPATH": str(REPO_ROOT)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "(10, 10, 69)"


# ----------------------------------------------------------------------------- from the Hub
def test_streams_row_groups_from_the_hub_with_range_requests(grouped: Path, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = "user/reader-ranges"
    upload(hub, repo, grouped)
    served: list[tuple[str, int, int]] = []
    handle = hub.server.handle

    def logged(req):  # type: ignore[no-untyped-def]
        response = handle(req)
        if req.method == "GET" and "/resolve/" in req.path:
            served.append((req.path, response.status, len(response.body)))
        return response

    monkeypatch.setattr(hub.server, "handle", logged)
    batches = iter_batches(repo, batch_size=ROW_GROUP)
    first = next(batches)
    batches.close()
    np.testing.assert_array_equal(first["window"], pyarrow_columns(grouped / "train" / "batch_001.parquet")["window"][:ROW_GROUP])
    shard = [(status, size) for path, status, size in served if path.endswith("train/batch_001.parquet")]
    file_size = (grouped / "train" / "batch_001.parquet").stat().st_size
    assert shard and all(status == 206 for status, _ in shard)  # only byte ranges, never the whole file
    assert sum(size for _, size in shard) < file_size / 2
    # Other shards: only their footers were read (for the row-group count): one request of pyarrow's 64 KiB.
    for name in ("batch_002", "batch_003"):
        assert [(s, n) for path, s, n in served if path.endswith(f"train/{name}.parquet")] == [(206, 64 << 10)]


def test_whole_split_from_the_hub_and_revision_pinning(grouped: Path, hub: Hub) -> None:
    repo = "user/reader-versions"
    api = upload(hub, repo, grouped, allow_patterns=["train/batch_00[12].parquet"])
    api.create_tag(repo, tag="v1", repo_type="dataset")
    api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=grouped)
    first_two = ROWS_PER_FILE[0] + ROWS_PER_FILE[1]
    v1 = np.concatenate([b["row_id"] for b in iter_batches(f"hf://datasets/{repo}", revision="v1", batch_size=256)])
    assert v1.tolist() == list(range(first_two))
    latest = concatenated(iter_batches(repo, batch_size=256, seed=1, rank=1, world_size=2))
    local = concatenated(iter_batches(grouped, batch_size=256, seed=1, rank=1, world_size=2))
    for name in ("window", "scalars", "row_id"):
        np.testing.assert_array_equal(latest[name], local[name])
    assert len(local["row_id"]) == sum(ROWS_PER_FILE) // 2


# ----------------------------------------------------------------------------- PyTorch, when installed
@pytest.mark.parametrize("where", ["local", "hub"])
def test_dataloader_workers_share_the_rows(grouped: Path, hub: Hub, where: str) -> None:
    torch = pytest.importorskip("torch")
    source = str(grouped)
    if where == "hub":
        source = "user/reader-dataloader"
        upload(hub, source, grouped)

    class Rows(torch.utils.data.IterableDataset):
        def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
            return iter_batches(source, batch_size=64, seed=0)

    loader = torch.utils.data.DataLoader(Rows(), batch_size=None, num_workers=2)
    batches = list(loader)
    assert batches[0]["window"].dtype == torch.int8 and tuple(batches[0]["window"].shape[1:]) == (10, 69)
    ids = torch.cat([b["row_id"] for b in batches]).tolist()
    assert sorted(ids) == list(range(sum(ROWS_PER_FILE)))


def test_a_source_that_is_neither_a_folder_nor_a_reachable_repo_says_so(hub: Hub, tmp_path: Path) -> None:
    # A mistyped local folder reads as a repo id: the error says it is neither, not just what the network said.
    with pytest.raises(FileNotFoundError, match="'user/typo' is neither a local folder nor a dataset repo on"):
        next(iter_batches("user/typo"))
    script = "from chesspos_positions import iter_batches\nnext(iter_batches('out/typo'))"
    env = {**hub.env(), "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens there
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert "ConnectionError: 'out/typo' is not a local folder, and http://127.0.0.1:9 could not be reached" in result.stderr
