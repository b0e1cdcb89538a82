# SPDX-License-Identifier: GPL-3.0-or-later
"""Shard write settings: size, write and read time per setting, and what content-defined chunking saves.

Generates the rows of real releases once (``sampling="all"``; by default the
shared Lichess files), then:

* ``format``: writes the release (``--batches`` x ``--batch-size``) with each
  candidate setting (pyarrow's writer with several options, the previous
  settings among them, and polars' writer at several zstd levels, the shipped
  ``builder.shards`` writer among them), and prints bytes/sample, write time,
  pyarrow read time, and whether DuckDB opens the shards.
* ``chunking``: for pairs of real releases (v1 = ``--batches`` batches and an
  appended v2 = one batch more; seed 0 and seed 1), with pyarrow's Parquet CDC
  on and off, cuts every shard with a Xet-like content-defined chunker (gear hash,
  64 KiB average, 8 KiB min, 128 KiB max, as the Hub's storage does) and
  counts the bytes of v2's *new* files whose chunks already exist in v1.
  Files identical to one in v1 are not counted: they dedupe by sha256 anyway.

Usage: ``python benchmarks/bench_shards.py [--data PATH] [--batches 3] [--batch-size 100000] [--part format|chunking|all]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from builder.shards import COMPRESSION_LEVELS, ROW_GROUP_ROWS, _write, shard_path  # noqa: E402
from chesspos_positions import ChessposPositions  # noqa: E402
from chesspos_positions.configs import CONFIGS, examples_table  # noqa: E402
from chesspos_positions.generation import SPLITS  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "lichess"
WINDOW_LEAF = "window.list.element.list.element"
ROW_GROUP_SIZE = ROW_GROUP_ROWS["default"]  # this benchmark writes default shards

#: Writes one shard: ``(examples table, path)``.
Writer = Callable[[pa.Table, Path], None]

#: The settings shipped before this benchmark: byte-stream-split window, zstd's default level, CDC on.
PREVIOUS: dict[str, Any] = {
    "row_group_size": ROW_GROUP_SIZE, "compression": "zstd", "use_dictionary": ["scalars.list.element"],
    "use_byte_stream_split": [WINDOW_LEAF], "write_page_index": True, "use_content_defined_chunking": True,
}
PLAIN: dict[str, Any] = {
    "row_group_size": ROW_GROUP_SIZE, "compression": "zstd", "use_dictionary": False, "write_page_index": True,
}
#: pyarrow's writer as ``default`` shards were written before polars writes them (the chunking part's setting).
PYARROW_SHIPPED: dict[str, Any] = {**PLAIN, "compression_level": 6, "use_dictionary": ["scalars.list.element"]}


def pyarrow_writer(options: dict[str, Any]) -> Writer:
    return lambda table, path: pq.write_table(table, path, **options)


def polars_writer(level: int) -> Writer:
    return lambda table, path: _write(table, path, level, ROW_GROUP_SIZE)


CANDIDATES: dict[str, Writer] = {
    "pyarrow, previous: BSS + zstd(default 1) + CDC": pyarrow_writer(PREVIOUS),
    "pyarrow, PLAIN + zstd 1": pyarrow_writer({**PLAIN, "compression_level": 1}),
    "pyarrow, PLAIN + zstd 3": pyarrow_writer({**PLAIN, "compression_level": 3}),
    "pyarrow, PLAIN + zstd 6": pyarrow_writer({**PLAIN, "compression_level": 6}),
    "pyarrow, PLAIN + zstd 9": pyarrow_writer({**PLAIN, "compression_level": 9}),
    "pyarrow, PLAIN + zstd 12": pyarrow_writer({**PLAIN, "compression_level": 12}),
    "pyarrow, PLAIN + zstd 6 + CDC": pyarrow_writer({**PLAIN, "compression_level": 6, "use_content_defined_chunking": True}),
    "pyarrow, dictionary + zstd 6": pyarrow_writer({**PLAIN, "compression_level": 6, "use_dictionary": True}),
    "pyarrow, PLAIN + zstd 6, 4 MiB pages": pyarrow_writer({**PLAIN, "compression_level": 6, "data_page_size": 4 << 20}),
    "pyarrow, PLAIN + zstd 6, 256 KiB pages": pyarrow_writer({**PLAIN, "compression_level": 6, "data_page_size": 256 << 10}),
    "pyarrow, PLAIN + zstd 6, 20k-row groups": pyarrow_writer({**PLAIN, "compression_level": 6, "row_group_size": 20_000}),
    "pyarrow, DELTA_BINARY_PACKED + zstd 6": pyarrow_writer(
        {**PLAIN, "compression_level": 6, "column_encoding": {WINDOW_LEAF: "DELTA_BINARY_PACKED"}}),
    "pyarrow, as shipped until polars": pyarrow_writer(PYARROW_SHIPPED),
    "polars, zstd 1": polars_writer(1),
    "polars, zstd 3": polars_writer(3),
    "polars, zstd 9": polars_writer(9),
    f"polars, zstd {COMPRESSION_LEVELS['default']} (shipped: builder.shards)": polars_writer(COMPRESSION_LEVELS["default"]),
}

# Xet-like chunker: gear hash over the last 64 bytes, cut where the top 16 bits are zero.
GEAR = np.random.default_rng(0).integers(0, 2**64, size=256, dtype=np.uint64)
MIN_CHUNK, MAX_CHUNK, CUT_BITS = 8 << 10, 128 << 10, 16


@dataclass
class Release:
    """The rows of one release: ``rows[(split, batch)]`` is that shard's rows (see ``chesspos_positions.rows``)."""

    label: str
    batches: int
    rows: dict[tuple[str, int], pa.Table]

    @property
    def samples(self) -> int:
        return sum(len(r) for r in self.rows.values())


def generate(data: list[str], batches: int, batch_size: int, seed: int) -> Release:
    builder = ChessposPositions(data_path=tuple(data), batches=batches, batch_size=batch_size, sampling="all", seed=seed)
    rows = {(split, b.index): getattr(b, split) for b in builder.generate_batches() for split in SPLITS}
    return Release(f"{batches} batches, seed {seed}", batches, rows)


def write(release: Release, writer: Writer, root: Path) -> tuple[float, list[Path]]:
    """Write ``release`` with ``writer``; (seconds in table building + writing, paths)."""
    paths, seconds = [], 0.0
    for (split, index), rows in release.rows.items():
        path = root / shard_path(CONFIGS["default"], split, index, release.batches)
        path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        writer(examples_table(rows, CONFIGS["default"]), path)
        seconds += time.perf_counter() - start
        paths.append(path)
    return seconds, paths


def read_seconds(paths: Iterable[Path]) -> float:
    """Seconds for pyarrow to decode every shard's ``window`` to an int8 numpy array, batch by batch."""
    start = time.perf_counter()
    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=ROW_GROUP_SIZE, columns=["window"]):
            batch.column(0).storage.flatten().flatten().to_numpy()
    return time.perf_counter() - start


def duckdb_opens(paths: list[Path]) -> str:
    try:
        import duckdb
    except ImportError:
        return "n/a"
    try:
        duckdb.sql(f"SELECT sum(\"window\"[1][1]) FROM read_parquet({[str(p) for p in paths]!r})").fetchall()
    except duckdb.Error as error:
        return f"no ({str(error)[:40]})"
    return f"yes ({duckdb.__version__})"


def bench_format(release: Release, scratch: Path) -> None:
    print(f"\n## Format: {release.label}, {release.samples} samples, {len(release.rows)} shards")
    print(f"{'setting':56s} {'bytes/sample':>12s} {'write s*':>8s} {'µs/sample':>9s} {'read s':>7s}  DuckDB")
    for label, writer in CANDIDATES.items():
        root = scratch / "format"
        seconds = min(write(release, writer, root)[0] for _ in range(2))  # the best of 2: the machine is shared
        paths = sorted(root.glob("*/*.parquet"))
        size = sum(p.stat().st_size for p in paths)
        train = [p for p in paths if p.parts[-2] == "train"]
        print(f"{label:56s} {size / release.samples:12.1f} {seconds:8.2f} {seconds / release.samples * 1e6:9.1f} "
              f"{read_seconds(train):7.2f}  {duckdb_opens(paths)}", flush=True)
        shutil.rmtree(root)
    print("* building the Arrow table + writing, all shards, the best of 2 runs; read s: train shards, "
          "ParquetFile.iter_batches + flatten to numpy")


def gear_chunks(data: bytes) -> list[bytes]:
    """Cut ``data`` into content-defined chunks (gear hash, as Xet; see the module docstring)."""
    values = GEAR[np.frombuffer(data, dtype=np.uint8)]
    hashes = np.zeros(len(values), dtype=np.uint64)
    for shift in range(64):  # hash_i = sum_k gear[byte_{i-k}] << k: only the last 64 bytes count
        hashes[shift:] += values[: len(values) - shift] << np.uint64(shift)
    candidates = np.flatnonzero((hashes >> np.uint64(64 - CUT_BITS)) == 0) + 1  # a cut after byte i
    cuts, start = [], 0
    for cut in candidates.tolist():
        if cut - start < MIN_CHUNK:
            continue
        while cut - start > MAX_CHUNK:
            start += MAX_CHUNK
            cuts.append(start)
        cuts.append(cut)
        start = cut
    while len(data) - start > MAX_CHUNK:
        start += MAX_CHUNK
        cuts.append(start)
    bounds = [0, *cuts, len(data)] if not cuts or cuts[-1] != len(data) else [0, *cuts]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def chunk_digests(paths: Iterable[Path]) -> dict[bytes, int]:
    return {hashlib.sha256(c).digest(): len(c) for p in paths for c in gear_chunks(p.read_bytes())}


def shared_bytes(old: list[Path], new: list[Path]) -> tuple[int, int, int]:
    """(bytes in new files identical to an old file, bytes in other new files, of those: bytes in chunks already stored)."""
    old_files = {hashlib.sha256(p.read_bytes()).digest() for p in old}
    fresh = [p for p in new if hashlib.sha256(p.read_bytes()).digest() not in old_files]
    identical = sum(p.stat().st_size for p in new if p not in fresh)
    stored = set(chunk_digests(old))
    total = dedup = 0
    for path in fresh:
        for chunk in gear_chunks(path.read_bytes()):
            digest = hashlib.sha256(chunk).digest()
            total += len(chunk)
            if digest in stored:
                dedup += len(chunk)
            stored.add(digest)
    return identical, total, dedup


def bench_chunking(pairs: list[tuple[Release, Release]], scratch: Path) -> None:
    print(f"\n## Chunking: Xet-like chunks ({MIN_CHUNK >> 10}-{MAX_CHUNK >> 10} KiB, 64 KiB average) shared between releases")
    print(f"{'v1 -> v2':40s} {'Parquet CDC':11s} {'write s v2':>10s} {'identical files':>15s} {'new files':>10s} "
          f"{'chunks already stored':>22s}")
    for old, new in pairs:
        for cdc in (False, True):
            writer = pyarrow_writer({**PYARROW_SHIPPED, "use_content_defined_chunking": cdc})
            _, old_paths = write(old, writer, scratch / "old")
            seconds, new_paths = write(new, writer, scratch / "new")
            identical, total, dedup = shared_bytes(old_paths, new_paths)
            print(f"{old.label + ' -> ' + new.label:40s} {'on' if cdc else 'off':11s} {seconds:10.2f} {identical:15d} "
                  f"{total:10d} {dedup:13d} ({dedup / max(total, 1):5.1%})", flush=True)
            if old is pairs[0][0] and new is pairs[0][1]:
                control(old_paths[0], cdc)
            shutil.rmtree(scratch / "old")
            shutil.rmtree(scratch / "new")


def control(path: Path, cdc: bool) -> None:
    """The chunker finds what is shared: a shard with 1 KiB inserted in front shares almost all its chunks."""
    edited = path.with_name("edited.bin")
    edited.write_bytes(os.urandom(1024) + path.read_bytes())
    identical, total, dedup = shared_bytes([path], [edited])
    print(f"{'control: ' + path.name + ' with 1 KiB prepended':40s} {'on' if cdc else 'off':11s} {'':>10s} {identical:15d} "
          f"{total:10d} {dedup:13d} ({dedup / max(total, 1):5.1%})", flush=True)
    edited.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", help="a .pgn file or a folder of them (default: the shared Lichess files)")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--part", choices=("format", "chunking", "all"), default="all")
    args = parser.parse_args()
    folder = Path(args.data) if args.data else SHARED
    data = sorted(map(str, folder.glob("*.pgn"))) if folder.is_dir() else [str(folder)]
    if not data:
        sys.exit(f"no .pgn files in {folder}")
    print(f"load average {os.getloadavg()[0]:.2f}; data: {', '.join(Path(p).name for p in data)}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    try:
        v1 = generate(data, args.batches, args.batch_size, seed=0)
        if args.part in ("format", "all"):
            bench_format(v1, scratch)
        if args.part in ("chunking", "all"):
            v2 = generate(data, args.batches + 1, args.batch_size, seed=0)
            other_seed = generate(data, args.batches, args.batch_size, seed=1)
            bench_chunking([(v1, v2), (v1, other_seed)], scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
