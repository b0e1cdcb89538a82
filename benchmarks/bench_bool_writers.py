# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing the bool ``window`` configs: pyarrow's Parquet writer against polars', in one run.

For ``history``, ``bitboard`` and ``tensor`` it builds the examples of the
same positions once, then times (CPU seconds of this process, every thread)
writing them to memory three ways: the whole table and the ``window`` column
alone with pyarrow and the shipped ``PARQUET_OPTIONS`` (how ``history`` is
written, and how the bool configs were), the whole table as ``write_shard``
writes the bool configs (polars) and the ``window`` column alone that way,
and pyarrow's floor on the ``window`` column: no compression and no
statistics. Prints µs and bytes per sample.
Usage: ``python benchmarks/bench_bool_writers.py [--data PATH] [--samples N]``.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench_publish import SHARED


def cpu_per_sample(write: Callable[[io.BytesIO], None], samples: int) -> tuple[float, float]:
    """(CPU µs, bytes) per sample of one ``write`` into memory."""
    sink = io.BytesIO()
    start = time.process_time()
    write(sink)
    return (time.process_time() - start) * 1e6 / samples, len(sink.getvalue()) / samples


def main() -> None:
    from builder.shards import PARQUET_OPTIONS, ROW_GROUP_SIZE, _dictionary_columns, _write_bool_windows
    from chesspos_positions.builder import ChessposPositions
    from chesspos_positions.configs import CONFIGS, examples_table

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

    def pyarrow_writer(table: pa.Table, **options: object) -> Callable[[io.BytesIO], None]:
        settings = {**PARQUET_OPTIONS, "use_dictionary": _dictionary_columns(table), **options}
        return lambda sink: pq.write_table(table, sink, row_group_size=ROW_GROUP_SIZE, **settings)

    def polars_writer(table: pa.Table) -> Callable[[io.BytesIO], None]:
        # write_shard's path; polars writes to a path, so the bytes go through a temporary file.
        def write(sink: io.BytesIO) -> None:
            with tempfile.NamedTemporaryFile(suffix=".parquet") as handle:
                _write_bool_windows(table, Path(handle.name))
                sink.write(Path(handle.name).read_bytes())
        return write

    print(f"{n} positions of {len(files)} files\n")
    print("| config | writer | what | µs/sample (CPU) | bytes/sample |")
    print("|---|---|---|---|---|")
    for name in ("history", "bitboard", "tensor"):
        table = examples_table(rows, CONFIGS[name])
        window = table.select(["window"])
        cases = {
            ("pyarrow", "whole table, shipped options"): pyarrow_writer(table),
            ("pyarrow", "window, shipped options"): pyarrow_writer(window),
            ("pyarrow", "window, no compression or statistics"): pyarrow_writer(
                window, compression="none", compression_level=None, write_statistics=False),
        }
        if name != "history":
            cases[("polars", "whole table, as write_shard")] = polars_writer(table)
            cases[("polars", "window, as write_shard")] = polars_writer(window)
        for (writer, what), write in cases.items():
            micros, size = cpu_per_sample(write, n)
            print(f"| `{name}` | {writer} | {what} | {micros:.1f} | {size:.1f} |", flush=True)


if __name__ == "__main__":
    main()
