# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure work units, and their assembly into train/test batches.

Generation is split in two so that the expensive part can run anywhere:

1. :func:`encode_unit` is a pure function of (work unit, sampling, seed,
   train ratio). It parses, samples, encodes and splits the games of one
   unit, and returns their rows. It runs in this process
   (:func:`generate_batches`), or in the Encode stage of :mod:`.steps`, run
   by an executor (:mod:`.executors`).
2. :class:`BatchAssembler` consumes unit results in unit order and cuts
   batches with exact per-split quotas. It is cheap and sequential; it holds
   at most one batch plus one unit result. It is the reference that the
   staged Plan stage (:func:`.steps.make_plan`) reproduces.

Whole games go to one split, by a hash of the game's own content, so no
game contributes positions to both train and test.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import islice

import numpy as np
import pyarrow as pa

from . import rows as rows_
from .games import Summary, replay_tokens, sample_plies, start_games
from .sampling import Sampling
from .pgn import RawGame
from .units import UNIT_BYTES, WorkItem, read_chunks
from .timing import StageTimes

logger = logging.getLogger(__name__)

#: The splits of every batch, in the order their shuffles are seeded (0 train, 1 test).
SPLITS = ("train", "test")

#: Games per work unit: large enough to amortise process hand-off, small
#: enough that a unit's arrays stay a few MB.
GAMES_PER_UNIT = 2_000


@dataclass(frozen=True)
class WorkUnit:
    """A run of consecutive games from one file: the unit of parallel work.

    Attributes:
        source: URL of the file.
        games: the games' raw text.
    """

    source: str
    games: tuple[RawGame, ...]


@dataclass
class UnitResult:
    """The rows of one unit's sampled positions, per split, in game order (see :mod:`.rows`)."""

    train: pa.Table
    test: pa.Table
    summary: Summary
    #: Seconds per stage inside the unit (a plain dict: results cross processes).
    seconds: dict[str, float] = field(default_factory=dict)


def iter_work_units(
    urls: Iterable[str], games_per_unit: int = GAMES_PER_UNIT, unit_bytes: int = UNIT_BYTES
) -> Iterator[WorkUnit]:
    """Cut the games of ``urls`` into units of ``games_per_unit`` games, never across files.

    Units never cross the chunks of :mod:`.units` either, so a staged build
    (:mod:`.steps`), which encodes chunk by chunk, sees the same units and
    reports the same counts.
    """
    for url in urls:
        for chunk in read_chunks(WorkItem(0, url, 0, 1), unit_bytes):
            games = chunk.games()
            while piece := tuple(islice(games, games_per_unit)):
                yield WorkUnit(url, piece)


def is_train_game(digest: bytes, train_ratio: float) -> bool:
    """The split of a game: train iff its digest's tail, read as a fraction, is below the ratio."""
    return int.from_bytes(digest[8:16], "little") / 2**64 < train_ratio


def encode_unit(
    unit: WorkUnit, sampling: Sampling, seed: int, train_ratio: float, kind: rows_.RowKind = "position"
) -> UnitResult:
    """Parse, sample, encode and split the games of one unit (pure); ``kind`` says what rows hold."""
    times = StageTimes()
    with times.time("parse tags"):
        started = start_games(unit.games, sampling, seed)
    # All the unit's surviving games are replayed in one call, so that the
    # native reader, when there is one, works on a whole batch at once.
    with times.time("parse moves and encode"):
        replays = iter(replay_tokens([game for game, _ in started if game.skip is None]))
    sampling_started = time.perf_counter()
    summary = Summary()
    splits = {True: rows_.RowCollector(kind), False: rows_.RowCollector(kind)}
    for game, rng in started:
        summary.games_read += 1
        if game.skip is None:
            tokens, error = next(replays)
            chosen = sample_plies(game, rng, sampling, len(tokens), error)
            if game.skip is None:
                summary.games_kept += 1
                summary.positions += len(chosen)
                splits[is_train_game(game.digest, train_ratio)].add(game, tokens, chosen)
                continue
        summary.skipped[game.skip] += 1
        if game.skip in ("illegal_move", "null_move", "invalid_fen", "broken_tags"):
            raw = game.raw
            logger.info("skipping game %d of %s (line %d): %s", raw.index + 1, raw.source, raw.line, game.error)
    result = UnitResult(splits[True].table(), splits[False].table(), summary)
    times.add({"sample and split": time.perf_counter() - sampling_started})
    result.seconds = dict(times.seconds)
    return result


def _timed(units: Iterable[WorkUnit], times: StageTimes) -> Iterator[WorkUnit]:
    """``units``, with the time spent reading and cutting them counted."""
    iterator = iter(units)
    while True:
        with times.time("read and cut games"):
            unit = next(iterator, None)
        if unit is None:
            return
        yield unit


@dataclass
class Batch:
    """One batch: its 1-based index and its shuffled train and test rows (see :mod:`.rows`)."""

    index: int
    train: pa.Table
    test: pa.Table
    partial: bool = False

    def tokens(self, split: str) -> np.ndarray:
        """The ``(n, 69)`` ``int8`` tokens of ``split``'s rows."""
        return rows_.tokens_of(getattr(self, split))


def quotas(batch_size: int, train_ratio: float) -> dict[str, int]:
    """Rows per full batch for each split: ``round(batch_size * train_ratio)`` train, the rest test."""
    train = round(batch_size * train_ratio)
    return {"train": train, "test": batch_size - train}


def shuffle_rows(rows: pa.Table, seed: int, index: int, split_id: int) -> pa.Table:
    """The rows of batch ``index``'s split ``split_id`` (0 train, 1 test) in their shuffled order."""
    rng = np.random.default_rng([seed, index, split_id])
    return rows_.take(rows, rng.permutation(rows.num_rows))


@dataclass
class BatchAssembler:
    """Cuts a stream of unit results into batches with exact split quotas.

    Positions beyond a split's quota carry over into the next batch, so
    nothing is dropped or repeated and batches never overlap. When the input
    ends before ``batches`` batches are full, what is left forms the last
    batches, marked partial and logged. Rows inside each batch are shuffled with ``(seed, batch, split)``.
    """

    batches: int
    batch_size: int
    train_ratio: float
    seed: int
    summary: Summary = field(default_factory=Summary)
    times: StageTimes = field(default_factory=StageTimes)
    _buffers: dict[str, list[pa.Table]] = field(default_factory=lambda: {"train": [], "test": []})
    _schema: pa.Schema | None = None  # the rows' schema, from the unit results

    @property
    def quotas(self) -> dict[str, int]:
        """Rows per full batch for each split."""
        return quotas(self.batch_size, self.train_ratio)

    def _buffered(self, split: str) -> int:
        return sum(part.num_rows for part in self._buffers[split])

    def _take(self, split: str, count: int) -> pa.Table:
        joined = rows_.concat(self._buffers[split], self._schema)
        self._buffers[split] = [joined.slice(count)] if joined.num_rows > count else []
        return joined.slice(0, count)

    def _cut(self, index: int, partial: bool) -> Batch:
        with self.times.time("assemble and shuffle batches"):
            rows = {split: self._take(split, quota) for split, quota in self.quotas.items()}
            for split_id, split in enumerate(SPLITS):
                rows[split] = shuffle_rows(rows[split], self.seed, index, split_id)
            return Batch(index, rows["train"], rows["test"], partial)

    def assemble(self, results: Iterable[UnitResult]) -> Iterator[Batch]:
        """Yield batches ``1..batches`` (the last ones possibly partial) from ``results``."""
        index = 1
        quotas = self.quotas
        for result in results:
            self.summary.add(result.summary)
            self.times.add(result.seconds)
            self._schema = result.train.schema
            for split in SPLITS:
                if getattr(result, split).num_rows:
                    self._buffers[split].append(getattr(result, split))
            while index <= self.batches and all(self._buffered(s) >= quotas[s] for s in quotas):
                yield self._cut(index, partial=False)
                index += 1
            if index > self.batches:
                return
        # The input ran out: what is left forms the last, partial batches.
        if index <= self.batches and not (self._buffered("train") or self._buffered("test")):
            logger.warning("input ran out after %d full batches of the %d asked for", index - 1, self.batches)
        while index <= self.batches and (self._buffered("train") or self._buffered("test")):
            batch = self._cut(index, partial=True)
            logger.warning(
                "input ran out: batch %d is partial (%d of %d train rows, %d of %d test rows)",
                index, batch.train.num_rows, quotas["train"], batch.test.num_rows, quotas["test"],
            )
            yield batch
            index += 1


def generate_batches(
    urls: list[str],
    sampling: Sampling,
    *,
    seed: int,
    batches: int,
    batch_size: int,
    train_ratio: float,
    unit_bytes: int = UNIT_BYTES,
    kind: rows_.RowKind = "position",
    summary: Summary | None = None,
    times: StageTimes | None = None,
) -> Iterator[Batch]:
    """The sequential pipeline, in this process: files -> work units -> encoded unit results -> batches.

    ``kind`` says what the rows hold (see :mod:`.rows`); the positions and their order do not
    depend on it. It reads only as far as the batches need. ``summary``, if given, receives
    the counts of the games actually consumed; ``times``, the seconds spent per stage.
    :mod:`.steps` computes the same batches in stages, for executors.
    """
    times = times if times is not None else StageTimes()
    assembler = BatchAssembler(batches, batch_size, train_ratio, seed, summary if summary is not None else Summary(), times)
    work = partial(encode_unit, sampling=sampling, seed=seed, train_ratio=train_ratio, kind=kind)
    yield from assembler.assemble(map(work, _timed(iter_work_units(urls, unit_bytes=unit_bytes), times)))
