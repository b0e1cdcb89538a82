# SPDX-License-Identifier: GPL-3.0-or-later
"""A fast reader for training loops: numpy batches straight from the Parquet shards.

``load_dataset`` hands out examples as nested Python lists (about 2.6 k
samples/s here) and ``with_format("numpy")`` widens int8 to int64.
:func:`iter_batches` reads the shards of a release, local or on the Hub, with
pyarrow and hands out each column as a numpy array of its declared dtype,
split between distributed ranks and DataLoader workers by row group.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features
from datasets.data_files import sanitize_patterns
from datasets.features.features import _ArrayXD
from datasets.utils.metadata import MetadataConfigs
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem
from huggingface_hub import DatasetCard, HfApi, HfFileSystem, constants
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, RepositoryNotFoundError

from .sources import network_errors

#: One batch: column name -> numpy array whose first axis is the rows.
Batch = dict[str, np.ndarray]
Converter = Callable[[pa.Array], np.ndarray]

_HUB_PREFIX = "hf://datasets/"
_FOOTER_THREADS = 8


@dataclass(frozen=True)
class _Release:
    """Where a release's files are: a filesystem and the folder of the release in it."""

    fs: AbstractFileSystem
    root: str
    remote: bool


@dataclass(frozen=True)
class _Unit:
    """One row group of one data file: the granularity of sharding and shuffling."""

    file: int
    row_group: int


def iter_batches(
    source: str | os.PathLike[str],
    split: str = "train",
    *,
    name: str | None = None,
    batch_size: int = 10_000,
    revision: str | None = None,
    rank: int = 0,
    world_size: int = 1,
    seed: int | None = None,
    epoch: int = 0,
    columns: Sequence[str] | None = None,
    token: str | bool | None = None,
) -> Iterator[Batch]:
    """Yield the rows of one split of a release as batches of numpy arrays.

    Args:
        source: a Hub dataset repo id (``"user/chesspos-positions"``, or
            ``"hf://datasets/user/chesspos-positions"``), read through
            ``huggingface_hub``'s ``HfFileSystem`` with the usual ``HF_TOKEN`` /
            ``HF_ENDPOINT`` settings; or a local folder in the published layout.
        split: ``"train"`` or ``"test"`` (any split the config declares).
        name: the config. The data files come from the ``configs`` of the
            dataset card (``README.md``) when it has any; otherwise config
            ``"default"`` is ``{split}/*.parquet`` and config ``NAME`` is
            ``NAME/{split}/*.parquet``. ``None`` means the card's default
            config, else ``"default"``.
        batch_size: rows per batch. Every batch has exactly this many rows
            except the last one of this rank and worker.
        revision: a tag, branch or commit of a Hub repo (default: ``main``).
            It is resolved to a commit once, so one iteration reads one commit.
        rank, world_size: this process's share in distributed training.
            Inside a PyTorch ``DataLoader`` worker, the share is further split
            between its workers (``torch.utils.data.get_worker_info()``; torch
            is only consulted when it is already imported). The row groups of
            the split are dealt out in contiguous runs, to the ranks and then
            to each rank's workers: every row comes exactly once across all
            ranks and workers, and ranks' shares differ by at most one row
            group, as do the shares of a rank's workers.
        seed, epoch: with a ``seed``, data files and the row groups inside each
            file are visited in an order drawn from ``(seed, epoch)``, the same
            on every rank, before the split between ranks. Rows inside a row
            group stay in file order (shards are shuffled when written).
            Without a seed, files are read in name order.
        columns: read only these columns (default: all); a name the files
            do not have is an error.
        token: Hub token; default: the one ``huggingface_hub`` finds.

    Yields:
        ``dict[str, np.ndarray]``, one array per column, first axis the rows:

        - ``Array2D``..``Array5D`` columns: shape ``(n, *shape)`` with the
          declared dtype (``window``: ``int8`` ``(n, 10, 69)``), a view of
          Arrow's buffers when the dtype allows it (bool is unpacked);
        - fixed-length ``Sequence``/``List`` columns: shape ``(n, length)``
          (``scalars``: ``int8`` ``(n, 3)``);
        - numbers and bools: shape ``(n,)``, their dtype; a batch in which
          such a column has nulls gives a ``numpy.ma.MaskedArray`` of that
          dtype, masked where null;
        - strings: an ``object`` array of ``str``, ``None`` where null;
        - anything else (variable-length lists, ...): ``pyarrow``'s
          ``to_numpy(zero_copy_only=False)``.

        Arrays that view Arrow's buffers are read-only: copy one
        (``np.array(a)``) before writing to it (PyTorch's collate warns).

    Memory stays flat: row groups are streamed one after another, and from the
    Hub only their byte ranges are fetched (HTTP Range requests), not whole
    files. The files are closed when the iterator ends, is closed or is
    garbage-collected, so breaking out early is safe.

    Example:

    ```py
    >>> from chesspos_positions import iter_batches
    >>> for batch in iter_batches("user/chesspos-positions", batch_size=4096, seed=0, epoch=0):
    ...     window, scalars = batch["window"], batch["scalars"]  # int8 (4096, 10, 69), int8 (4096, 3)
    ```
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, but got batch_size={batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, but got rank={rank}, world_size={world_size}")
    if (seed is not None and seed < 0) or epoch < 0:
        raise ValueError(f"seed and epoch must be >= 0, but got seed={seed}, epoch={epoch}")
    if isinstance(columns, str):
        raise TypeError(f"columns must be a list of column names, but got the string {columns!r}")
    release = _open_release(source, revision, token)
    files = _data_files(release, source, name, split)
    metadata = _footers(release, files)
    if columns is not None:
        _check_columns(columns, metadata[0].schema.to_arrow_schema().names, files[0])
    units = _order(metadata, seed, epoch)
    mine = _share(len(units), rank, world_size, *_dataloader_worker())
    batches = _record_batches(release, files, metadata, [units[i] for i in mine], batch_size, columns)
    yield from _to_numpy(_rebatch(batches, batch_size))


def _check_columns(columns: Sequence[str], names: list[str], file: str) -> None:
    """Refuse a column the files do not have (pyarrow would drop it without a word), or no column at all."""
    unknown = [column for column in columns if column not in names]
    if unknown or not columns:
        raise ValueError(f"columns={list(columns)!r}: {'no such column ' + repr(unknown) if unknown else 'no column'} "
                         f"in {file}; its columns are {names}")


def _open_release(source: str | os.PathLike[str], revision: str | None, token: str | bool | None) -> _Release:
    """A local folder, or a Hub repo pinned to the commit ``revision`` resolves to now."""
    text = os.fspath(source)
    if Path(text).is_dir():
        if revision is not None:
            raise ValueError(f"revision={revision!r} applies to Hub repos, but {text!r} is a local folder")
        return _Release(LocalFileSystem(), Path(text).resolve().as_posix(), remote=False)
    repo_id = text.removeprefix(_HUB_PREFIX).strip("/")
    if repo_id.count("/") != 1:
        raise FileNotFoundError(f"{text!r} is neither a local folder nor a Hub dataset repo id ('user/name')")
    try:
        commit = HfApi(token=token).dataset_info(repo_id, revision=revision).sha
    except HFValidationError as error:  # './nope', a mistyped local folder
        raise FileNotFoundError(f"{text!r} is neither a local folder nor a Hub dataset repo id: {error}") from error
    except RepositoryNotFoundError as error:
        raise FileNotFoundError(
            f"{text!r} is neither a local folder nor a dataset repo on {constants.ENDPOINT} (a private repo needs a token)"
        ) from error
    except HfHubHTTPError:  # the Hub answered (401, 403, ...): its error says more; it is also an httpx HTTPError
        raise
    except network_errors() as error:  # a mistyped local folder reads as a repo id, and may meet no Hub at all
        raise ConnectionError(
            f"{text!r} is not a local folder, and {constants.ENDPOINT} could not be reached to read it as a dataset repo: {error}"
        ) from error
    return _Release(HfFileSystem(token=token), f"datasets/{repo_id}@{quote(commit, safe='')}", remote=True)


def _data_files(release: _Release, source: object, name: str | None, split: str) -> list[str]:
    """The data files of ``split`` of config ``name``: from the card's ``configs``, else by the layout."""
    fs, root = release.fs, release.root
    configs = MetadataConfigs()
    if fs.isfile(f"{root}/README.md"):
        configs = MetadataConfigs.from_dataset_card_data(DatasetCard(fs.read_text(f"{root}/README.md")).data)
    if configs:
        config = name or configs.get_default_config_name()
        if config not in configs:
            raise ValueError(f"{source} has configs {sorted(configs)}, but got name={name!r}")
        patterns = sanitize_patterns(configs[config].get("data_files", {}))
        if split not in patterns:
            raise ValueError(f"config {config!r} of {source} has splits {sorted(patterns)}, but got split={split!r}")
        chosen = list(patterns[split])
    else:
        config = name or "default"
        chosen = [f"{split}/*.parquet" if config == "default" else f"{config}/{split}/*.parquet"]
    files = sorted({path for pattern in chosen for path in fs.glob(f"{root}/{pattern}")})
    if not files:
        raise FileNotFoundError(f"no data files for config {config!r}, split {split!r} in {source} ({', '.join(chosen)})")
    return files


def _open(release: _Release, path: str) -> str | IO[bytes]:
    """A local path for pyarrow's own reader; a Hub file whose every read is one HTTP Range request."""
    return release.fs.open(path, "rb", cache_type="none") if release.remote else path


def _footers(release: _Release, files: list[str]) -> list[pq.FileMetaData]:
    """Every file's footer (its row groups); from the Hub, several at once: each costs a round trip."""
    if not release.remote:
        return [_open_metadata(release, path) for path in files]
    with ThreadPoolExecutor(_FOOTER_THREADS) as pool:
        return list(pool.map(partial(_open_metadata, release), files))


def _open_metadata(release: _Release, path: str) -> pq.FileMetaData:
    source = _open(release, path)
    try:
        return pq.read_metadata(source)
    finally:
        if not isinstance(source, str):
            source.close()


def _order(metadata: list[pq.FileMetaData], seed: int | None, epoch: int) -> list[_Unit]:
    """Every row group once: in file order, or files then row groups in an order drawn from ``(seed, epoch)``."""
    if seed is None:
        return [_Unit(f, g) for f, meta in enumerate(metadata) for g in range(meta.num_row_groups)]
    rng = np.random.default_rng([seed, epoch])
    return [
        _Unit(int(f), int(g))
        for f in rng.permutation(len(metadata))
        for g in rng.permutation(metadata[f].num_row_groups)
    ]


def _share(units: int, rank: int, world_size: int, worker: int, workers: int) -> np.ndarray:
    """The indices of the units that worker ``worker`` of rank ``rank`` reads: a contiguous run.

    The units are dealt to the ranks first, then each rank's run to its
    workers, so ranks' shares differ by at most one unit, whatever the
    workers: dealing rank-and-worker slots at once gave 3 workers of 5 ranks
    the 9 units of the first 3 ranks, and the last 2 ranks nothing.
    """
    return np.array_split(np.array_split(np.arange(units), world_size)[rank], workers)[worker]


def _dataloader_worker() -> tuple[int, int]:
    """(worker id, number of workers) inside a PyTorch DataLoader worker, else (0, 1).

    A DataLoader worker has imported torch already, so torch is never imported here.
    """
    if "torch" not in sys.modules:
        return 0, 1
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def _record_batches(
    release: _Release,
    files: list[str],
    metadata: list[pq.FileMetaData],
    units: list[_Unit],
    batch_size: int,
    columns: Sequence[str] | None,
) -> Iterator[pa.RecordBatch]:
    """Stream ``units`` in order, opening each file once per run of its row groups."""
    start = 0
    while start < len(units):
        end = start
        while end < len(units) and units[end].file == units[start].file:
            end += 1
        file = units[start].file
        source = _open(release, files[file])
        # pyarrow's default pre_buffer=True reads every listed row group up front: the whole file from the
        # Hub. Without it, each column chunk is read (one Range request) when its row group is decoded.
        parquet = pq.ParquetFile(source, metadata=metadata[file], pre_buffer=False)
        batches = parquet.iter_batches(
            batch_size=batch_size, row_groups=[u.row_group for u in units[start:end]], columns=columns
        )
        try:
            yield from batches
        finally:
            batches.close()
            parquet.close()
            if not isinstance(source, str):
                source.close()
        start = end


def _rebatch(batches: Iterator[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Exactly ``batch_size`` rows per batch, across file boundaries; the last one may be shorter."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if not pending and batch.num_rows == batch_size:
            yield batch  # the common case: no copy
            continue
        pending.append(batch)
        rows += batch.num_rows
        while rows >= batch_size:
            joined = pa.concat_batches(pending) if len(pending) > 1 else pending[0]
            yield joined.slice(0, batch_size)
            rest = joined.slice(batch_size)
            pending, rows = ([rest] if rest.num_rows else []), rest.num_rows
    if rows:
        yield pa.concat_batches(pending) if len(pending) > 1 else pending[0]


def _to_numpy(batches: Iterator[pa.RecordBatch]) -> Iterator[Batch]:
    """Each batch as numpy; the converters are made once per schema, from its ``huggingface`` features."""
    schema, converters = None, []
    for batch in batches:
        if schema is None or not batch.schema.equals(schema):
            schema, features = batch.schema, Features.from_arrow_schema(batch.schema)
            converters = [_converter(features[field.name], field.type) for field in schema]
        yield {name: convert(column) for name, convert, column in zip(schema.names, converters, batch.columns)}


def _converter(feature: object, arrow_type: pa.DataType) -> Converter:
    """How one column becomes numpy, from its ``datasets`` feature and Arrow type (see :func:`iter_batches`)."""
    if isinstance(feature, _ArrayXD) and feature.shape[0] is not None and feature.dtype != "string":
        return _nested(tuple(feature.shape), np.dtype(feature.dtype))
    shape: list[int] = []
    while pa.types.is_fixed_size_list(arrow_type):
        shape.append(arrow_type.list_size)
        arrow_type = arrow_type.value_type
    numeric = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type)
    if shape and numeric:
        return _nested(tuple(shape), np.dtype(arrow_type.to_pandas_dtype()))
    if numeric:
        return _scalar
    return lambda column: column.to_numpy(zero_copy_only=False)


def _nested(shape: tuple[int, ...], dtype: np.dtype) -> Converter:
    """Rectangular nested lists -> ``(n, *shape)``: flatten the list levels, view the values."""

    def convert(column: pa.Array) -> np.ndarray:
        values = column.storage if isinstance(column, pa.ExtensionArray) else column
        if values.null_count:
            raise ValueError(f"a column of shape {shape} has {values.null_count} null rows; cannot make an array")
        for _ in shape:
            values = values.flatten()  # flatten, unlike .values, honours slices
        return values.to_numpy(zero_copy_only=False).astype(dtype, copy=False).reshape(len(column), *shape)

    return convert


def _scalar(column: pa.Array) -> np.ndarray:
    if not column.null_count:
        return column.to_numpy(zero_copy_only=False)
    filled = column.fill_null(pa.scalar(0 if not pa.types.is_boolean(column.type) else False, column.type))
    return np.ma.MaskedArray(filled.to_numpy(zero_copy_only=False), mask=column.is_null().to_numpy(zero_copy_only=False))
