# SPDX-License-Identifier: GPL-3.0-or-later
"""``ChessposPositions.download_and_prepare`` throughput and peak memory, against a naive builder.

Project: the builder with ``num_proc=1`` and ``num_proc=2``, sampling "all".
Baseline: python-chess ``read_game`` + a ``piece_at`` loop per square, fed to
``datasets.Dataset.from_generator`` with the same features, in the same run.
Each variant runs in its own process so that its peak RSS is its own.
Usage: ``python benchmarks/bench_builder.py [--data PATH ...] [--batch-size N]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "lichess"


def naive_rows(files: list[str]):  # type: ignore[no-untyped-def]
    import chess
    import chess.pgn

    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            while (game := chess.pgn.read_game(handle)) is not None:
                board = game.board()
                for move in game.mainline_moves():
                    board.push(move)
                    tokens = [15] * 64
                    for square in range(64):
                        piece = board.piece_at(square)
                        if piece is not None:
                            tokens[square] = (16 if piece.color else 22) + piece.piece_type
                    tokens.append(29 if board.turn else 30)
                    tokens += [32 if has else 31 for has in (
                        board.has_kingside_castling_rights(chess.WHITE), board.has_queenside_castling_rights(chess.WHITE),
                        board.has_kingside_castling_rights(chess.BLACK), board.has_queenside_castling_rights(chess.BLACK))]
                    yield {"window": [tokens] * 10, "scalars": [0, 0, 0]}


def worker(kind: str, files: list[str], batch_size: int, cache: str) -> dict[str, float]:
    start = time.perf_counter()
    if kind == "naive":
        from datasets import Dataset

        from chesspos_positions.configs import FEATURES

        rows = Dataset.from_generator(naive_rows, gen_kwargs={"files": files}, features=FEATURES, cache_dir=cache).num_rows
    else:
        from chesspos_positions import ChessposPositions

        builder = ChessposPositions(cache_dir=cache, data_path=tuple(files), sampling="all", batches=1, batch_size=batch_size)
        builder.download_and_prepare(num_proc=int(kind))
        rows = sum(split.num_rows for split in builder.as_dataset().values())
    seconds = time.perf_counter() - start
    return {"rows": rows, "seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", nargs="+", help="PGN files (default: the shared Lichess .pgn files)")
    parser.add_argument("--batch-size", type=int, default=10**8, help="one batch of up to this many positions")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    files = args.data or sorted(map(str, SHARED.glob("*.pgn")))
    if not files:
        sys.exit("no input: pass --data, or place the shared Lichess files beside the repo")
    if args.worker:
        print(json.dumps(worker(args.worker[0], files, args.batch_size, args.worker[1])))
        return
    results = {}
    for kind in ("naive", "1", "2"):
        with tempfile.TemporaryDirectory() as cache:
            out = subprocess.run([sys.executable, __file__, "--worker", kind, cache, "--batch-size", str(args.batch_size),
                                  "--data", *files], capture_output=True, text=True, check=True)
            results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    naive = results["naive"]["rows"] / results["naive"]["seconds"]
    print(f"{'variant':40s} {'examples':>9s} {'seconds':>8s} {'examples/s':>11s} {'ratio':>6s} {'peak MB':>8s}")
    for kind, label in (("naive", "naive from_generator (python-chess)"), ("1", "download_and_prepare num_proc=1"),
                        ("2", "download_and_prepare num_proc=2")):
        r = results[kind]
        rate = r["rows"] / r["seconds"]
        print(f"{label:40s} {r['rows']:9.0f} {r['seconds']:8.1f} {rate:11.0f} {rate / naive:6.2f} {r['peak_mb']:8.0f}")


if __name__ == "__main__":
    main()
