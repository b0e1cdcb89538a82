# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing shards: pyarrow's Parquet writer against polars' (``write_shard``'s), per config, in one run.

For every config it builds the examples of the same positions once, then
writes them (to a temporary file) several ways and times each: wall seconds,
and CPU seconds of this process (every thread; polars writes with several):
the whole table and the ``window`` column alone with pyarrow (PLAIN values,
zstd at the config's level, dictionaries on the other columns: how
``default`` and ``history`` shards were written before polars), pyarrow's
floor on the ``window`` column (no compression and no statistics), and the
whole table and the ``window`` column alone as ``write_shard`` writes them.
Prints µs and bytes per sample.
Usage: ``python benchmarks/bench_writers.py [--data PATH] [--samples N]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench_publish import SHARED


def per_sample(write: Callable[[Path], None], samples: int) -> tuple[float, float, float]:
    """(wall µs, CPU µs, bytes) per sample of one ``write`` to a temporary file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shard.parquet"
        wall, cpu = time.perf_counter(), time.process_time()
        write(path)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return wall * 1e6 / samples, cpu * 1e6 / samples, path.stat().st_size / samples


def main() -> None:
    from builder.shards import COMPRESSION_LEVELS, ROW_GROUP_ROWS, _write
    from chesspos_positions.builder import ChessposPositions
    from chesspos_positions.configs import CONFIG_NAMES, CONFIGS, examples_table

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=SHARED, help="a .pgn file or a folder of them")
    parser.add_argument("--samples", type=int, default=40_000, help="positions to write (default 40000)")
    args = parser.parse_args()
    files = sorted(args.data.glob("*.pgn")) if args.data.is_dir() else [args.data]
    if not files:
        sys.exit(f"no .pgn files at {args.data}")
    builder = ChessposPositions(config_name="history", data_path=tuple(map(str, files)), batches=1,
                                batch_size=args.samples, train_ratio=0.99, sampling="all")
    rows = next(builder.generate_batches()).train
    n = rows.num_rows

    def pyarrow_writer(table: pa.Table, level: int, rows: int, **options: object) -> Callable[[Path], None]:
        others = [name + ".list.element" * (name == "scalars") for name in table.column_names if name not in ("window", "fen")]
        settings = {"compression": "zstd", "compression_level": level, "use_dictionary": others, **options}
        return lambda path: pq.write_table(table, path, row_group_size=rows, **settings)

    def polars_writer(table: pa.Table, level: int, rows: int) -> Callable[[Path], None]:
        return lambda path: _write(table, path, level, rows)

    print(f"{n} positions of {len(files)} files\n")
    print("| config | writer | what | µs/sample (wall) | µs/sample (CPU) | bytes/sample |")
    print("|---|---|---|---|---|---|")
    for name in CONFIG_NAMES:
        table = examples_table(rows, CONFIGS[name])
        window = table.select(["window"])
        level, group = COMPRESSION_LEVELS[name], ROW_GROUP_ROWS[name]
        cases = {
            ("pyarrow", "whole table"): pyarrow_writer(table, level, group),
            ("pyarrow", "window"): pyarrow_writer(window, level, group),
            ("pyarrow", "window, no compression or statistics"): pyarrow_writer(
                window, level, group, compression="none", compression_level=None, write_statistics=False),
            ("polars", "whole table, as write_shard"): polars_writer(table, level, group),
            ("polars", "window, as write_shard"): polars_writer(window, level, group),
        }
        for (writer, what), write in cases.items():
            wall, cpu, size = per_sample(write, n)
            print(f"| `{name}` | {writer} | {what} | {wall:.1f} | {cpu:.1f} | {size:.1f} |", flush=True)


if __name__ == "__main__":
    main()
