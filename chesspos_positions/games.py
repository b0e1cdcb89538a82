# SPDX-License-Identifier: GPL-3.0-or-later
"""From raw games to sampled positions.

:func:`parse_game` turns one :class:`~chesspos_positions.pgn.RawGame`
into its sampled plies, or a named reason for skipping it. A game is skipped
whole, never partly: an illegal or unparsable mainline move, a null move, an
invalid FEN or a broken tag section means none of its positions is used
(variations are not replayed: they hold no position of the game).
Its steps are public for batch work (:func:`~chesspos_positions.generation.encode_unit`):
:func:`start_games` (tags, checks, Elo draws; :func:`start_game` for one
game), :func:`replay_tokens` (many games at once, natively where possible)
and :func:`sample_plies`.

:func:`iter_position_records` walks files game by game and yields one record
per sampled position, with the game's metadata; :func:`extract_board` wraps
it and yields the boards alone.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import chess
import chess.pgn
import numpy as np

from . import native
from .encoding import BitboardRow, board_bitboards, encode_bitboard_rows
from .pgn import RawGame, parse_tags
from .sampling import Sampling, first_draws, game_rng, parse_rating
from .sources import PathLike, iter_raw_games, resolve_paths

#: Skip reasons, each with a counter. The header checks run first, then the
#: Elo and time-control filters, and only then the replay, which finds illegal
#: and null moves and empty games: a bad game dropped by the Elo draw counts as
#: ``elo_filtered``.
SKIP_REASONS: dict[str, str] = {
    "broken_tags": "a malformed line in the tag section",
    "variant": "not standard chess (Chess960 and other variants)",
    "invalid_fen": "an invalid FEN start position",
    "illegal_move": "an illegal or unparsable move",
    "null_move": "a null move (--)",
    "no_moves": "no movetext (header-only game)",
    "too_long": "more plies than any legal game has (over 32,767)",
    "elo_filtered": "dropped by the Elo tier sampling",
    "time_control_filtered": "base time below the minimum",
}

#: The most plies a kept game may have: the ``ply`` column of the history configs is int16. No legal
#: game comes near it: the 75-move rule ends every game within about 18,000 plies.
MAX_PLIES: Final = int(np.iinfo(np.int16).max)

_STANDARD_VARIANTS = frozenset({"", "standard", "from position", "normal"})


@dataclass
class Summary:
    """What a pass over game files read, kept, skipped and yielded."""

    games_read: int = 0
    games_kept: int = 0
    positions: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, other: Summary) -> None:
        """Accumulate ``other`` into this summary."""
        self.games_read += other.games_read
        self.games_kept += other.games_kept
        self.positions += other.positions
        self.skipped.update(other.skipped)

    def as_dict(self) -> dict[str, object]:
        """Plain-dict form, with every skip reason present."""
        return {
            "games_read": self.games_read,
            "games_kept": self.games_kept,
            "games_skipped": sum(self.skipped.values()),
            "skipped": {reason: self.skipped.get(reason, 0) for reason in SKIP_REASONS},
            "positions": self.positions,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Summary:
        """The summary of an :meth:`as_dict` form."""
        skipped = Counter({reason: n for reason, n in data["skipped"].items() if n})
        return cls(data["games_read"], data["games_kept"], data["positions"], skipped)


@dataclass
class ParsedGame:
    """One game after parsing and sampling.

    Attributes:
        raw: the game's text and location.
        headers: its tags, in file order.
        digest: 16-byte BLAKE2b of the game's text (headers plus movetext);
            it seeds the game's draws and decides its split.
        skip: the skip reason (a key of :data:`SKIP_REASONS`), or None if kept.
        error: a human-readable detail for the skip, naming the move or FEN.
        plies: the sampled plies (1-based, ascending).
        boards: the sampled boards, only when requested.
    """

    raw: RawGame
    headers: dict[str, str]
    digest: bytes
    skip: str | None = None
    error: str | None = None
    plies: list[int] = field(default_factory=list)
    boards: list[chess.Board] = field(default_factory=list)


def game_digest(raw: RawGame) -> bytes:
    """The stable content hash of a game: its tag lines plus its movetext."""
    text = "\n".join(raw.tags) + "\n\n" + "\n".join(line.strip() for line in raw.movetext)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def game_id(game: ParsedGame) -> str:
    """A game's id: its ``Site`` tag when that is a URL (Lichess: the game's page), else its digest in hex."""
    site = game.headers.get("Site", "").strip()
    return site if "://" in site else game.digest.hex()


def starting_board(headers: dict[str, str]) -> chess.Board:
    """The board a game starts from: its ``FEN`` tag, or the standard start.

    Raises:
        ValueError: if the FEN cannot be parsed or is not a legal position.
    """
    fen = headers.get("FEN")
    if fen is None:
        return chess.Board()
    board = chess.Board(fen)
    if not board.is_valid():
        raise ValueError(f"FEN {fen!r} is not a valid position ({board.status()!r})")
    return board


def is_standard(headers: dict[str, str]) -> bool:
    """True for standard chess: no ``Variant`` tag, or Standard / From Position."""
    return headers.get("Variant", "").strip().lower() in _STANDARD_VARIANTS


class _MainlineVisitor(chess.pgn.BaseVisitor["_MainlineVisitor"]):
    """Records a snapshot of the board after every mainline move.

    Variations are skipped without building boards. The first error (illegal,
    ambiguous or unparsable move, or a null move) ends recording.
    """

    def __init__(self, keep_boards: bool) -> None:
        self.keep_boards = keep_boards
        self.snapshots: list[BitboardRow] = []
        self.boards: list[chess.Board] = []
        self.error: tuple[str, str] | None = None
        self._started = False

    def begin_variation(self) -> chess.pgn.SkipType:
        return chess.pgn.SKIP

    def visit_move(self, board: chess.Board, move: chess.Move) -> None:
        if not move and self.error is None:
            self.error = ("null_move", f"null move at ply {board.ply() + 1}")

    def handle_error(self, error: Exception) -> None:
        if self.error is None:
            self.error = ("illegal_move", str(error))

    def visit_board(self, board: chess.Board) -> None:
        if not self._started:
            # The initial position is not a sample.
            self._started = True
            return
        if self.error is not None:
            return
        self.snapshots.append(board_bitboards(board))
        if self.keep_boards:
            self.boards.append(board.copy(stack=False))

    def result(self) -> _MainlineVisitor:
        return self


def start_game(raw: RawGame, sampling: Sampling, seed: int) -> tuple[ParsedGame, np.random.Generator | None]:
    """Parse a game's tags and run the checks that come before its replay.

    The header checks (tags, variant, FEN) and the Elo and time-control
    filters run here, before the moves are replayed, since they need only
    headers. A game that fails one comes back with ``skip`` set.

    Returns:
        The game, and the generator of its draws (None when every ply is kept),
        which has made its Elo draw: :func:`sample_plies` makes the next one.
    """
    game = _checked(raw)
    if game.skip is not None or sampling.keep_all:
        return game, None
    rng = game_rng(seed, game.digest)
    return game, rng if _passes_filters(game, rng.random(), sampling) else None


def start_games(raws: Sequence[RawGame], sampling: Sampling, seed: int) -> list[tuple[ParsedGame, np.random.Generator | None]]:
    """:func:`start_game` of each game, with the Elo draws of all of them made at once (:func:`first_draws`).

    Most games are read only for the Elo draw that drops them: only those it
    keeps get a generator, advanced past that draw.
    """
    started: list[tuple[ParsedGame, np.random.Generator | None]] = [(_checked(raw), None) for raw in raws]
    if sampling.keep_all:
        return started
    drawn = [index for index, (game, _) in enumerate(started) if game.skip is None]
    for index, draw in zip(drawn, first_draws(seed, [started[index][0].digest for index in drawn]), strict=True):
        game = started[index][0]
        if _passes_filters(game, float(draw), sampling):
            rng = game_rng(seed, game.digest)
            rng.random()  # the Elo draw, made above
            started[index] = (game, rng)
    return started


def _checked(raw: RawGame) -> ParsedGame:
    """The game with its tags parsed, ``skip`` set if its tag section, variant or FEN rule it out."""
    headers = parse_tags(raw.tags)
    game = ParsedGame(raw=raw, headers=headers, digest=game_digest(raw))
    if raw.broken_tags is not None:
        game.skip, game.error = "broken_tags", f"broken tag section at {raw.broken_tags}"
    elif not is_standard(headers):
        game.skip, game.error = "variant", f"variant {headers.get('Variant')!r}"
    elif "FEN" in headers:  # (the standard start needs no check, and building it costs)
        try:
            starting_board(headers)
        except ValueError as error:
            game.skip, game.error = "invalid_fen", str(error)
    return game


def _passes_filters(game: ParsedGame, draw: float, sampling: Sampling) -> bool:
    """Whether the game survives its Elo draw ``draw`` and the time-control filter; else set ``skip``."""
    headers = game.headers
    keep = sampling.game_keep_probability(parse_rating(headers.get("WhiteElo")), parse_rating(headers.get("BlackElo")))
    if draw >= keep:
        game.skip, game.error = "elo_filtered", "dropped by Elo tier sampling"
    elif not sampling.time_control_ok(headers.get("TimeControl")):
        game.skip, game.error = "time_control_filtered", f"time control {headers.get('TimeControl')!r}"
    return game.skip is None


def replay(game: ParsedGame, keep_boards: bool = False) -> _MainlineVisitor:
    """Replay a game's mainline with python-chess, the reference reader."""
    visitor = _MainlineVisitor(keep_boards)
    # Only the tags that decide the start position are passed on: the others
    # were checked in start_game(s), and python-chess would otherwise re-read them all.
    setup = "".join(f'[{name} "{game.headers[name]}"]\n' for name in ("FEN", "SetUp") if name in game.headers)
    chess.pgn.read_game(io.StringIO(setup + "\n" + "\n".join(game.raw.movetext) + "\n"), Visitor=lambda: visitor)
    return visitor


#: A replayed mainline: the tokens of the positions after its moves, and the
#: ``(skip reason, error)`` that stopped the replay, if any.
Replay = tuple[np.ndarray, tuple[str, str] | None]


def replay_tokens(games: Sequence[ParsedGame]) -> list[Replay]:
    """Replay many games' mainlines, with the native reader where it can.

    The native reader (:mod:`.native`, when installed and enabled) replays all
    the games in one call, which is where its speed comes from. Every game it
    rejects or cannot vouch for is replayed with python-chess, which also
    names the skip reason, so the results are the same with or without it.
    """
    if native.enabled():
        fast = native.replay_many([(game.headers.get("FEN"), "\n".join(game.raw.movetext)) for game in games])
    else:
        fast = [None] * len(games)
    replays: list[Replay] = []
    for game, tokens in zip(games, fast):
        if tokens is not None:
            replays.append((tokens, None))
        else:
            visitor = replay(game)
            replays.append((encode_bitboard_rows(visitor.snapshots), visitor.error))
    return replays


def sample_plies(
    game: ParsedGame, rng: np.random.Generator | None, sampling: Sampling, n_plies: int, error: tuple[str, str] | None
) -> np.ndarray:
    """Skip a replayed game on a replay error or no moves, else choose its sampled plies.

    Sets ``game.skip`` for a skipped game. Returns the 0-based indices of the
    chosen positions among the game's ``n_plies`` (empty if skipped).
    """
    if error is not None:
        game.skip, game.error = error
    elif n_plies == 0:
        game.skip, game.error = "no_moves", "no moves"
    elif n_plies > MAX_PLIES:
        game.skip, game.error = "too_long", f"{n_plies} plies"
    elif rng is None:
        return np.arange(n_plies)
    else:
        return np.flatnonzero(rng.random(n_plies) < sampling.ply_probabilities(n_plies))
    return np.empty(0, dtype=np.intp)


def parse_game(raw: RawGame, sampling: Sampling, seed: int, keep_boards: bool = False) -> ParsedGame:
    """Check, replay (with python-chess) and sample one game."""
    game, rng = start_game(raw, sampling, seed)
    if game.skip is not None:
        return game
    visitor = replay(game, keep_boards)
    chosen = sample_plies(game, rng, sampling, len(visitor.snapshots), visitor.error).tolist()
    game.plies = [i + 1 for i in chosen]
    if keep_boards:
        game.boards = [visitor.boards[i] for i in chosen]
    return game


@dataclass(frozen=True)
class PositionRecord:
    """One sampled position with the metadata of its game.

    Attributes:
        source: URL of the game's file.
        game_index: 0-based index of the game in its file.
        line: 1-based line where the game starts.
        ply: the ply the position follows (1 = after White's first move).
        headers: the game's tags (ratings, result, time control ...).
        board: the position; an independent board without move history.
    """

    source: str
    game_index: int
    line: int
    ply: int
    headers: dict[str, str]
    board: chess.Board


def iter_parsed_games(
    paths: PathLike | Sequence[PathLike], sampling: Sampling, seed: int, summary: Summary | None = None, keep_boards: bool = False
) -> Iterator[ParsedGame]:
    """Parse every game of ``paths`` in order, counting into ``summary``."""
    summary = summary if summary is not None else Summary()
    for raw in iter_raw_games(resolve_paths(paths)):
        game = parse_game(raw, sampling, seed, keep_boards)
        summary.games_read += 1
        if game.skip is not None:
            summary.skipped[game.skip] += 1
        else:
            summary.games_kept += 1
            summary.positions += len(game.plies)
        yield game


def iter_position_records(
    paths: PathLike | Sequence[PathLike],
    *,
    sampling: str | Sampling = "default",
    seed: int = 0,
    summary: Summary | None = None,
    **params: object,
) -> Iterator[PositionRecord]:
    """Yield every sampled position of ``paths`` with its game's metadata.

    Args:
        paths: files, directories (recursive), globs or fsspec URLs of
            ``.pgn``, ``.pgn.zst``, ``.pgn.bz2`` or ``.pgn.gz`` files.
        sampling: ``"default"``, ``"all"`` or a :class:`Sampling`.
        seed: the sampling seed.
        summary: if given, filled with the counts of the pass as it goes.
        **params: overrides of individual :class:`Sampling` fields.
    """
    rules = sampling if isinstance(sampling, Sampling) else Sampling.from_mode(sampling, **params)
    for game in iter_parsed_games(paths, rules, seed, summary, keep_boards=True):
        for ply, board in zip(game.plies, game.boards):
            yield PositionRecord(game.raw.source, game.raw.index, game.raw.line, ply, game.headers, board)


def extract_board(
    paths: PathLike | Sequence[PathLike],
    *,
    sampling: str | Sampling = "default",
    seed: int = 0,
    summary: Summary | None = None,
    **params: object,
) -> Iterator[chess.Board]:
    """Yield the sampled positions of ``paths`` as independent boards.

    A game's positions are those after each mainline move (plies 1..n); a game
    with a ``FEN`` tag starts from it. Non-standard variants and bad games are
    skipped whole and counted by reason in ``summary``. The same inputs and
    seed give the same boards on any machine.

    Example:
        >>> summary = Summary()
        >>> boards = list(extract_board("games/", sampling="all", summary=summary))
        >>> summary.as_dict()["games_kept"]
    """
    for record in iter_position_records(paths, sampling=sampling, seed=seed, summary=summary, **params):
        yield record.board
