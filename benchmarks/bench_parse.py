# SPDX-License-Identifier: GPL-3.0-or-later
"""Parse+encode throughput on one core: naive python-chess, our python-chess path, the native path.

Each path turns the same games into 69-token positions (sampling "all") in its
own subprocess, on one core, and reports positions per CPU-second and per
wall-second, the ratio to the naive baseline, and its peak RSS:

* naive: python-chess ``read_game``, ``board.push`` and a ``piece_at`` loop
  over the squares per position: what one writes without this project;
* python-chess: :func:`encode_unit` with ``CHESSPOS_NATIVE=0``;
* native: :func:`encode_unit` with the native reader (the ``native`` extra);
* native reader alone: :func:`native.replay_many` on the movetexts, without
  the per-game work around it (tags, checks, hashing, sampling, splits);
* extract_board: the public iterator of ``chess.Board`` objects (python-chess).

"parse+encode" starts from games already read and split in memory; "file to
tokens" also reads, decompresses and splits the files. The input is
``../shared/data/lichess`` next to the repository when present, else games
generated here. Usage:
``python benchmarks/bench_parse.py [--data PATH ...] [--games N] [--generate N] [--paths NAME ...] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import chess
import chess.pgn
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "lichess"
sys.path.insert(0, str(REPO))

from chesspos_positions import extract_board, native
from chesspos_positions.encoding import (
    BLACK_TO_MOVE,
    CASTLING_HELD,
    CASTLING_NOT_HELD,
    EMPTY,
    SEQUENCE_LENGTH,
    WHITE_TO_MOVE,
    piece_token,
)
from chesspos_positions.games import start_game
from chesspos_positions.generation import (
    GAMES_PER_UNIT,
    WorkUnit,
    encode_unit,
    iter_work_units,
)
from chesspos_positions.sampling import Sampling
from chesspos_positions.pgn import split_games
from chesspos_positions.sources import iter_lines, resolve_paths

ALL = Sampling.from_mode("all")
PATHS = ["naive", "python-chess", "native", "native reader alone", "extract_board"]


# --- The paths, each run in a fresh process ---------------------------------------------------


def naive_tokens(board: chess.Board) -> np.ndarray:
    tokens = np.full(SEQUENCE_LENGTH, EMPTY, dtype=np.int8)
    for square in chess.SQUARES:
        piece = board.piece_at(square)
        if piece is not None:
            tokens[square] = piece_token(piece)
    tokens[64] = WHITE_TO_MOVE if board.turn else BLACK_TO_MOVE
    rights = [board.has_kingside_castling_rights(chess.WHITE), board.has_queenside_castling_rights(chess.WHITE),
              board.has_kingside_castling_rights(chess.BLACK), board.has_queenside_castling_rights(chess.BLACK)]
    tokens[65:] = [CASTLING_HELD if held else CASTLING_NOT_HELD for held in rights]
    return tokens


def run_naive(texts: list[str]) -> int:
    positions = 0
    for text in texts:
        handle = io.StringIO(text)
        while (game := chess.pgn.read_game(handle)) is not None:
            board = game.board()
            rows = []
            for move in game.mainline_moves():
                board.push(move)
                rows.append(naive_tokens(board))
            positions += len(rows)
    return positions


def units_of(files: list[str], texts: list[str]) -> list[WorkUnit]:
    units = []
    for url, text in zip(files, texts):
        games = split_games(text.splitlines(), url)
        while chunk := tuple(islice(games, GAMES_PER_UNIT)):
            units.append(WorkUnit(url, chunk))
    return units


def run_path(path: str, files: list[str], repeat: int) -> dict[str, float]:
    """Time ``path`` on ``files`` in this process: parse+encode, and file to tokens."""
    os.environ["CHESSPOS_NATIVE"] = "0" if path == "python-chess" else "1"
    if path in ("native", "native reader alone") and not native.enabled():
        return {"missing": 1}
    texts = ["\n".join(iter_lines(url)) for url in files]
    units = units_of(files, texts)
    movetexts = []
    if path == "native reader alone":
        for unit in units:
            games = [game for game, _ in (start_game(raw, ALL, 0) for raw in unit.games) if game.skip is None]
            movetexts.append([(game.headers.get("FEN"), "\n".join(game.raw.movetext)) for game in games])

    def parse_encode() -> int:
        if path == "naive":
            return run_naive(texts)
        if path == "native reader alone":
            return sum(len(tokens) for batch in movetexts for tokens in native.replay_many(batch) if tokens is not None)
        if path == "extract_board":
            return sum(1 for _ in extract_board(files, sampling="all"))
        return sum(encode_unit(unit, ALL, 0, 0.9).summary.positions for unit in units)

    def file_to_tokens() -> int:
        return sum(encode_unit(unit, ALL, 0, 0.9).summary.positions for unit in iter_work_units(files))

    result: dict[str, float] = {}
    runs = [("", parse_encode)] + ([("file_", file_to_tokens)] if path in ("python-chess", "native") else [])
    # The fast paths take a second or two a pass, so the machine's noise shows:
    # they take the best of `repeat` passes. The slow ones run once.
    passes = repeat if path.startswith("native") else 1
    for prefix, work in runs:
        for _ in range(passes):
            wall, cpu = time.perf_counter(), time.process_time()
            positions = work()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if cpu < result.get(f"{prefix}cpu", float("inf")):
                result |= {f"{prefix}positions": positions, f"{prefix}wall": wall, f"{prefix}cpu": cpu}
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    result["peak_mb"] = int(status.get("VmHWM", "0 kB").split()[0]) / 1024  # reset by exec, unlike ru_maxrss
    return result


# --- Input ------------------------------------------------------------------------------------


def generated(n: int, folder: Path, seed: int = 0) -> list[str]:
    """``n`` random legal games in a Lichess-like file (tags, clock comments)."""
    rng = random.Random(seed)
    games = []
    for i in range(n):
        board, game = chess.Board(), chess.pgn.Game()
        game.headers.update({"Event": "Rated Blitz game", "Site": f"https://lichess.org/g{i}", "WhiteElo": "2450",
                             "BlackElo": "2420", "TimeControl": "300+0", "Termination": "Normal"})
        node = game
        for _ in range(rng.randint(40, 140)):
            moves = list(board.legal_moves)
            if not moves:
                break
            move = rng.choice(moves)
            node = node.add_variation(move, comment=f"[%clk 0:0{rng.randint(0, 4)}:{rng.randint(10, 59)}]")
            board.push(move)
        game.headers["Result"] = board.result()
        games.append(str(game))
    path = folder / "generated.pgn"
    path.write_text("\n\n".join(games) + "\n")
    return [str(path)]


def first_games(files: list[str], n: int, folder: Path) -> list[str]:
    """The first ``n`` games of ``files``, written to one plain PGN file."""
    games = islice((raw for url in files for raw in split_games(iter_lines(url), url)), n)
    path = folder / f"first-{n}.pgn"
    path.write_text("\n\n".join("\n".join(raw.tags) + "\n\n" + "\n".join(raw.movetext) for raw in games) + "\n")
    return [str(path)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="*", help="PGN files or directories (default: ../shared/data/lichess)")
    parser.add_argument("--games", type=int, help="use only the first N games of the input")
    parser.add_argument("--generate", type=int, default=3000, help="games to generate when there is no input (3000)")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=PATHS,
                        help="paths to measure (default: all; naive, the reference, always runs)")
    parser.add_argument("--repeat", type=int, default=3, help="passes of the native paths, best taken (3)")
    parser.add_argument("--run", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_path(args.run, args.data, args.repeat)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            files, source = resolve_paths(args.data), " ".join(args.data)
        elif SHARED.is_dir():
            files, source = resolve_paths(SHARED), str(SHARED)
        else:
            files, source = generated(args.generate, Path(tmp)), f"{args.generate} generated games"
        if args.games:
            files, source = first_games(files, args.games, Path(tmp)), f"first {args.games} games of {source}"
        print(f"input: {source}")
        results = {}
        for path in ["naive", *(p for p in args.paths if p != "naive")]:
            cmd = [sys.executable, __file__, "--run", path, "--repeat", str(args.repeat), "--data", *files]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                sys.exit(f"{path} failed:\n{done.stderr[-3000:]}")
            results[path] = json.loads(done.stdout.splitlines()[-1])
            print(f"  {path}: done", flush=True)
    print_table(results)


def print_table(results: dict[str, dict[str, float]]) -> None:
    base = results["naive"]["positions"] / results["naive"]["cpu"]
    header = (f"{'path':<22}{'positions':>11}{'pos/s (CPU)':>14}{'pos/s (wall)':>14}{'x naive':>9}"
              f"{'file to tokens':>16}{'peak RSS':>10}")
    print("\nparse+encode, sampling 'all', one core (binding threads: 1); native paths: best of --repeat passes")
    print(f"{header}\n{'-' * len(header)}")
    for path, r in results.items():
        if "missing" in r:
            print(f"{path:<22}  (rust-pgn-reader-python-binding not installed: pip install chesspos-positions[native])")
            continue
        rate = r["positions"] / r["cpu"]
        to_file = f"{r['file_positions'] / r['file_cpu']:>14,.0f}/s" if "file_cpu" in r else f"{'-':>16}"
        print(f"{path:<22}{r['positions']:>11,}{rate:>14,.0f}{r['positions'] / r['wall']:>14,.0f}{rate / base:>8.1f}x"
              f"{to_file}{r['peak_mb']:>7.0f} MB")
    counts = {r["positions"] for path, r in results.items() if "missing" not in r and path != "native reader alone"}
    if len(counts) > 1:
        print(f"WARNING: the paths yielded different numbers of positions: {sorted(counts)}")


if __name__ == "__main__":
    main()
