# SPDX-License-Identifier: GPL-3.0-or-later
"""Each config end to end against ``default`` (and ``history``), in one run.

For every config it runs ``python -m builder.publish --dry-run --sampling all
--config-name NAME`` on the same games, one batch holding every position,
and prints samples/s, bytes/sample and the cost per sample relative to the
baseline config, then the size of the dataset viewer's first-rows answer
(the first 100 rows as JSON, which the viewer caps at 200 kB).
With ``--repeat N`` the configs run N times in turn (all of them, then all
again), and the table gives each one's median wall and CPU seconds: on a
shared machine one run of the same command can vary by a fifth.
Usage: ``python benchmarks/bench_configs.py [--data PATH] [--configs default history ...] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from bench_publish import BIG, SHARED, measure

#: The target cost per sample of each config, relative to the config it extends.
TARGETS = {"history": ("default", 1.5), "bitboard": ("history", 2.0), "tensor": ("history", 2.0)}


def first_rows_bytes(shard: Path, rows: int = 100) -> int:
    """Bytes of the first ``rows`` rows as the viewer's JSON (``{"rows": [{"row_idx", "row"}]}``)."""
    table = pq.ParquetFile(shard).read_row_group(0).slice(0, rows)
    payload = {"rows": [{"row_idx": i, "row": row, "truncated_cells": []} for i, row in enumerate(table.to_pylist())]}
    return len(json.dumps(payload, separators=(",", ":")).encode())


def main() -> None:
    from chesspos_positions.configs import CONFIG_NAMES, CONFIGS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=SHARED, help="a .pgn file or a folder of them")
    parser.add_argument("--configs", nargs="+", choices=CONFIG_NAMES, default=list(CONFIG_NAMES))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each config, in turn; medians are reported")
    args = parser.parse_args()
    files = sorted(args.data.glob("*.pgn")) if args.data.is_dir() else [args.data]
    if not files:
        sys.exit(f"no .pgn files at {args.data}")
    runs = {}
    walls: dict[str, list[float]] = {name: [] for name in args.configs}
    cpus: dict[str, list[float]] = {name: [] for name in args.configs}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for name in args.configs:
                out = Path(tmp) / name
                shutil.rmtree(out, ignore_errors=True)
                cmd = [sys.executable, "-m", "builder.publish", "--dry-run", "--sampling", "all", "--config-name", name,
                       "--batches", "1", "--batch-size", str(BIG), "--output-dir", str(out), "--data-path", *map(str, files)]
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                run = measure(name, cmd, out)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                # CPU seconds as well as wall time: on a shared machine they are the steadier measure.
                cpus[name].append((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
                walls[name].append(run.seconds)
                shard = next((out / CONFIGS[name].folder / "train").glob("*.parquet"))
                runs[name] = (run, first_rows_bytes(shard))
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    for name, (run, _) in runs.items():
        run.seconds = statistics.median(walls[name])
    print(f"{len(files)} files; one batch holding every position; each config in its own process, "
          f"{args.repeat} run(s) each (median); load average {os.getloadavg()[0]:.2f}\n")
    if args.repeat > 1:
        for name in args.configs:
            print(f"{name}: wall s {', '.join(f'{w:.1f}' for w in walls[name])}; CPU s {', '.join(f'{c:.1f}' for c in cpus[name])}")
        print()
    print("| config | samples | wall s | CPU s | samples/s | bytes/sample | peak MB | first 100 rows JSON "
          "| wall cost/sample vs | CPU cost/sample vs | target (wall) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (run, first_rows) in runs.items():
        base, target = TARGETS.get(name, (None, None))
        if base in runs:
            base_run = runs[base][0]
            ratio = (run.seconds / run.rows) / (base_run.seconds / base_run.rows)
            cpu_ratio = (cpu[name] / run.rows) / (cpu[base] / base_run.rows)
            verdict, cpu_verdict = f"{ratio:.2f}x {base}", f"{cpu_ratio:.2f}x {base}"
            goal = f"<= {target}x: {'PASS' if ratio <= target else 'FAIL'}"
        else:
            verdict = cpu_verdict = goal = "-"
        print(f"| `{name}` | {run.rows} | {run.seconds:.1f} | {cpu[name]:.1f} | {run.rate:.0f} | {run.per_sample:.1f} | "
              f"{run.rss_mb:.0f} | {first_rows / 1000:.0f} kB | {verdict} | {cpu_verdict} | {goal} |")


if __name__ == "__main__":
    main()
