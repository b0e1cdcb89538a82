# SPDX-License-Identifier: GPL-3.0-or-later
"""The dataset card (``README.md``) of a release.

The YAML front matter is made by the libraries' own classes: ``configs`` by
``datasets``' :class:`MetadataConfigs`, ``dataset_info`` by
:class:`DatasetInfosDict`, the rest by ``huggingface_hub``'s
:class:`DatasetCardData`. The body states what the data is and how it was
made; every number in it comes from the release itself. Nothing in the card
depends on the time or the machine, so the same inputs give the same card.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import chess
from datasets import DatasetInfo, SplitDict, SplitInfo
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from chesspos_positions.encoding import (
    BITBOARD_CASTLING_INDICES,
    BITBOARD_LENGTH,
    BITBOARD_TURN_INDEX,
    CASTLING_SQUARES,
    PLANE_PIECES,
    TENSOR_CASTLING_PLANE,
    TENSOR_EN_PASSANT_PLANE,
    TENSOR_SHAPE,
    TENSOR_TURN_PLANE,
    VOCABULARY,
)
from chesspos_positions.configs import CONFIG_NAMES, CONFIGS, Config
from chesspos_positions.games import SKIP_REASONS, Summary
from chesspos_positions.generation import SPLITS

from .shards import ROW_GROUP_ROWS, Shard, parse_shard_path


@dataclass(frozen=True)
class SourceFile:
    """A raw input file as the card lists it."""

    name: str
    sha256: str | None  # None: the batches were full before any game of it was needed
    size: int


@dataclass(frozen=True)
class Release:
    """Everything the card reports about one release."""

    repo_id: str
    pretty_name: str
    license: str
    parameters: dict[str, object]
    sources: list[SourceFile]
    summary: Summary
    shards: list[Shard]
    versions: list[tuple[str, dict[str, int]]]  # (tag, config -> batches), oldest first, this release last
    config: Config = CONFIGS["default"]  # the config this release built
    other_configs: dict[str, DatasetInfo] = field(default_factory=dict)  # the repo's other configs, as their cards said
    held_files: tuple[str, ...] = ()  # the shard paths the release held before this run: the other configs' files
    partial: str | None = None  # a sentence naming the partial batches, if the input ran out before they were full
    #: Per config the card lists, how it was built (:data:`GENERATION_KEY`).
    generation: dict[str, dict[str, object]] = field(default_factory=dict)


#: The card's YAML key recording, per config, how it was built: every option, the source files and the
#: games read and kept (``publish.generation_record``). The options that decide its positions are what
#: a release of another config into the repo is checked against.
GENERATION_KEY = "chesspos_generation"


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` examples."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for bound, label in bounds if n < bound), "1B<n<10B")


def split_infos(shards: list[Shard]) -> SplitDict:
    """Exact per-split example and byte counts of the shards, for the splits that hold examples."""
    by_split = {split: [s for s in shards if s.split == split] for split in SPLITS}
    return _declared(
        SplitInfo(name=split, num_examples=sum(s.num_examples for s in own), num_bytes=sum(s.num_bytes for s in own))
        for split, own in by_split.items()
    )


def _declared(splits: Iterable[SplitInfo]) -> SplitDict:
    """The splits a card declares: those holding examples.

    A split whose shards are all empty (a one-game input, or a batch size
    whose test quota rounds to 0) is not declared: ``load_dataset`` without
    streaming refuses a declared split with no examples. Applied to the
    other configs' entries too, which an older card may have declared.
    """
    declared = SplitDict()
    for split in splits:
        if split.num_examples:
            declared.add(split)
    return declared


def recorded_generation(data: DatasetCardData | None) -> dict[str, dict[str, object]]:
    """What a card records per config of how it was built (:data:`GENERATION_KEY`); none in a card from before."""
    return (data.to_dict().get(GENERATION_KEY) or {}) if data is not None else {}


def _split_files(release: Release, name: str, split: str) -> list[str]:
    """The shards of ``split`` of config ``name`` in the release, by name.

    Listed, not globbed: while a release is pushed one batch per commit, or
    after it was interrupted, the main branch holds batches its card does not
    count yet, which a glob would take and non-streaming ``load_dataset``
    would refuse (``NonMatchingSplitsSizesError``).
    """
    if name == release.config.name:
        return sorted(s.path_in_repo for s in release.shards if s.split == split)
    return sorted(path for path in release.held_files if (shard := parse_shard_path(path)) and shard[:2] == (CONFIGS[name].folder, split))


def card_data(release: Release) -> DatasetCardData:
    """The card's YAML front matter."""
    splits = split_infos(release.shards)
    info = DatasetInfo(
        features=release.config.features,
        splits=splits,
        download_size=sum(s.size for s in release.shards),
        dataset_size=sum(info.num_bytes for info in splits.values()),
    )
    infos = {**{name: replace(other, splits=_declared(other.splits.values())) for name, other in release.other_configs.items()},
             release.config.name: info}
    infos = {name: infos[name] for name in CONFIG_NAMES if name in infos}
    total = max(sum(split.num_examples for split in i.splits.values()) for i in infos.values())
    data = DatasetCardData(
        license=release.license,
        pretty_name=release.pretty_name,
        tags=["chess", "chess-positions", "board-games", "pgn", "lichess"],
        task_categories=["other"],
        size_categories=[size_category(total)],
    )
    if release.generation:
        data[GENERATION_KEY] = {name: release.generation[name] for name in infos if name in release.generation}
    MetadataConfigs(
        {name: {"data_files": [{"split": split, "path": _split_files(release, name, split)} for split in SPLITS if split in info.splits]}
         for name, info in infos.items()}
    ).to_dataset_card_data(data)
    DatasetInfosDict(infos).to_dataset_card_data(data)
    return data


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _parameters_table(parameters: dict[str, object]) -> str:
    return _table(["parameter", "value"], [[f"`{k}`", f"`{v}`"] for k, v in parameters.items()])


def _sources_table(sources: Iterable[SourceFile]) -> str:
    return _table(["file", "bytes", "sha256"], [[f"`{s.name}`", s.size, f"`{s.sha256}`" if s.sha256 else "not read"]
                                                for s in sources])


def card_body(release: Release) -> str:
    """The card's Markdown body."""
    splits = split_infos(release.shards)
    summary = release.summary
    vocabulary = _table(["token", "meaning"], [[token, meaning] for token, meaning in VOCABULARY.items()])
    counts = _table(
        ["split", "examples", "shards", "Arrow bytes", "Parquet bytes"],
        [
            [
                split,
                info.num_examples,
                sum(1 for s in release.shards if s.split == split),
                info.num_bytes,
                sum(s.size for s in release.shards if s.split == split),
            ]
            for split, info in splits.items()
        ],
    )
    parameters = _parameters_table(release.parameters)
    sources = _sources_table(release.sources)
    games = _table(
        ["games", "count"],
        [["read", summary.games_read], ["kept", summary.games_kept]]
        + [[f"skipped: {reason} ({text})", summary.skipped.get(reason, 0)] for reason, text in SKIP_REASONS.items()],
    )
    others = _other_builds(release)
    names = [name for name in CONFIG_NAMES if any(name in counts for _, counts in release.versions)]
    versions = _table(
        ["tag", *(f"`{name}` batches" for name in names)],
        [[f"`{tag}`", *(counts.get(name, 0) for name in names)] for tag, counts in release.versions],
    )
    infos = card_data_infos(release)
    configs = _table(
        ["config", "shards", "train examples", "test examples", "content"],
        [
            [f"`{name}`", f"`{CONFIGS[name].data_files('{train,test}')}`",
             *(info.splits[split].num_examples if split in info.splits else 0 for split in SPLITS), CONFIGS[name].description]
            for name, info in infos.items()
        ],
    )
    schemas = "\n\n".join(SCHEMAS[name].replace("REPO", release.repo_id) for name in infos)
    latest = release.versions[-1][0]
    partial_note = f"\nNote: {release.partial}.\n" if release.partial else ""
    # The snippets read the repo's first config: `default` when it holds one, else the first it has.
    lead = next(iter(infos))
    window = CONFIGS[lead].features["window"]
    name_arg, config_arg = ("", "") if lead == "default" else (f', name="{lead}"', f', "{lead}"')
    return f"""# {release.pretty_name}

Chess positions for machine learning: each row a window of 10 positions, in the
encoding of its config (see Configs). Built from raw game files with the
`chesspos-positions` builder (GPL-3.0-or-later).

## Load

The fast path for training loops (`pip install chesspos-positions`):
numpy batches straight from the Parquet shards, streamed from the Hub row
group by row group (HTTP range requests, nothing downloaded first).

```python
from chesspos_positions import iter_batches

for batch in iter_batches("{release.repo_id}", split="train"{name_arg}, batch_size=4096, revision="{latest}", seed=0, epoch=0):
    window = batch["window"]      # numpy {window.dtype}, shape (4096, {", ".join(map(str, window.shape))})
    scalars = batch["scalars"]    # numpy int8, shape (4096, 3)
```

`name` picks the config (see Configs): every column comes as a numpy array of
its declared dtype, strings as `object` arrays.

In a PyTorch `DataLoader`, each worker reads its own row groups; under DDP,
pass each process's rank too. Across all ranks and workers every row comes
exactly once per epoch, in an order drawn from `(seed, epoch)`:

```python
import torch
import torch.distributed as dist
from chesspos_positions import iter_batches

class Positions(torch.utils.data.IterableDataset):
    def __init__(self, epoch, rank=0, world_size=1):
        self.epoch, self.rank, self.world_size = epoch, rank, world_size

    def __iter__(self):
        return iter_batches("{release.repo_id}"{name_arg}, batch_size=4096, revision="{latest}", seed=0, epoch=self.epoch,
                            rank=self.rank, world_size=self.world_size)

loader = torch.utils.data.DataLoader(Positions(epoch=0), batch_size=None, num_workers=4)   # one process
ddp = Positions(epoch=0, rank=dist.get_rank(), world_size=dist.get_world_size())              # under DDP
loader = torch.utils.data.DataLoader(ddp, batch_size=None, num_workers=4)
```

Ranks' shares differ by at most one row group ({ROW_GROUP_ROWS[lead]:,} rows): under
DDP, stop every rank at the shortest share (or use `Join`).

With `datasets` alone:

```python
from datasets import load_dataset

ds = load_dataset("{release.repo_id}"{config_arg}, streaming=True)                      # latest
ds = load_dataset("{release.repo_id}"{config_arg}, streaming=True, revision="{latest}")  # pinned to this release
for example in ds["train"]:
    window = example["window"]    # {" x ".join(map(str, window.shape))} {window.dtype}
    ...                           # a training step
```

(A streaming iterator left open, by a `break` or `next(iter(...))`, can hang
or abort the interpreter at exit with datasets 5.2 and pyarrow 26; an
`iter_batches` iterator may be left open.)

Decode a window back into boards (needs `pip install chesspos-positions`, or
the tables below and python-chess):

```python
import numpy as np
from chesspos_positions import decode_window

board = decode_window(np.asarray(window))[0]   # window[0], the position
print(board.fen())
```

{_READING_FAST if lead == "default" else _READING_ARRAYS}
Every current reader opens the shards: DuckDB 1.x, pyarrow >= 14, polars, arrow-rs.

## Configs

Every config holds the same sampled positions, in the same order and split,
when built from the same inputs, options and seed; they differ in what a row
carries. Load one with `load_dataset("{release.repo_id}", "NAME", streaming=True)`.

{configs}

{schemas}
## The encoding

- indices 0-63: the squares in python-chess order (a1=0, b1=1, ... h8=63);
- index 64: side to move;
- indices 65-68: castling rights: White kingside, White queenside, Black
  kingside, Black queenside.

{vocabulary}

The encoding is lossy: **the en passant square and the move counters
(halfmove clock, fullmove number) are not encoded.** Castling rights are the
rights python-chess reports as valid for the position.

## Splits

Each game goes wholly to train or to test, by a stable hash (BLAKE2b) of its
own text (headers plus moves): no game contributes positions to both splits.
The same game exported twice with other headers (another tag, another order)
is two texts, so its copies may land in different splits: build from inputs
that do not overlap.
The target share of train games is `train_ratio`. Each batch `k` holds exactly
`round(batch_size * train_ratio)` train rows and the rest as test rows;
positions past a split's quota carry over into the next batch, and rows are
shuffled inside each batch with the seed. Shards are `train/batch_NNN.parquet`
and `test/batch_NNN.parquet`, one pair per batch, in the config's folder.

This release built config `{release.config.name}`:

{counts}
{partial_note}
## Generation parameters of `{release.config.name}`

{parameters}

A game's positions are those after each mainline move (plies 1..n); games with
a `FEN` tag start from it. Only standard chess is used. In sampling mode
`default`, a game is kept with the probability of the Elo tier of its lower
rating (unknown ratings count as 0), games with a base time below
`min_base_time` seconds are skipped, and ply `p` is kept with probability
`min((p / max(ply_full, 1))^2, 1) * ply_keep`, and never below `min_ply` or
above `max_ply` when they are set. Mode `all` keeps every position and ignores
the other sampling parameters.

## Source files

Every input file given. Reading stops once the last batch is full, so the
batches may not need all of them: those they did not need show no sha256.
The games table counts the games read from the others.

{sources}

## Games

Counts over the games read to produce this release.

{games}

Positions sampled from these games: {summary.positions}. Positions beyond the
last batch's quota are not published.
{others}
## Versions

Each release is a git tag; earlier tags keep loading exactly what they held.

{versions}
"""


_READING_FAST = """Reading fast: example by example, `load_dataset` gives about 2 k samples/s
(each example is 690 Python ints). `iter_batches` reads about 220 k samples/s
from local shards, 0.9-1.0x raw `pyarrow` `iter_batches` on the same files. With
`datasets`, read batches of arrays: streaming,
`ds["train"].with_format("arrow").iter(batch_size=10_000)` and flatten the
window column (about 190 k samples/s); downloaded,
`load_dataset(...)["train"].with_format("numpy", dtype=np.int8)` and slice
(about 350 k samples/s once cached); plain `with_format("numpy")` widens
tokens to `int64`. `window[:, 0]` is the position: the 10 rows are copies."""

_READING_ARRAYS = """Reading fast: read batches of arrays, with `iter_batches` or, with `datasets`,
`ds["train"].with_format("arrow").iter(batch_size=...)`, rather than example
by example, where every value of a window is a Python object."""

_DEFAULT_SCHEMA = """### `default`

| column | feature | content |
|---|---|---|
| `window` | `Array2D(shape=(10, 69), dtype="int8")` | 10 identical copies of the position's 69 tokens |
| `scalars` | `Sequence(Value("int8"), length=3)` | reserved; all zeros |

`window[:, 0]` is the position: the 10 rows are copies."""

#: The columns after ``window`` that every config with history rows shares.
_HISTORY_COLUMNS = """| `scalars` | `Sequence(Value("int8"), length=3)` | reserved; all zeros |
| `game_id` | `Value("string")` | the game's `Site` URL when it has one, else the BLAKE2b hash of its text |
| `ply` | `Value("int16")` | half-moves from the game's first position to this one (1 after the first move) |
| `white_elo`, `black_elo` | `Value("int16")` | the ratings; null when unknown |
| `result` | `Value("string")` | `1-0`, `0-1`, `1/2-1/2` or `*` |
| `time_control` | `Value("string")` | the `TimeControl` tag; null when absent |
| `eco` | `Value("string")` | the `ECO` tag; null when absent |
| `fen` | `Value("string")` | the position's full FEN, as python-chess writes it: it keeps what the tokens drop, the en passant square (when a capture is legal) and the move counters |
"""

_HISTORY_SCHEMA = """### `history`

| column | feature | content |
|---|---|---|
| `window` | `Array2D(shape=(10, 69), dtype="int8")` | `window[i]` is the position `i` plies before this one, newest first (`window[0]` is the position, as in `default`); rows before the game's first position (ply 0: the standard start or the game's `FEN` tag) are all `16` (mask) |
""" + _HISTORY_COLUMNS + """

Decode a window and its tokens:

```python
from chesspos_positions import decode_window, iter_batches, tokens_to_fen

row = next(iter_batches("REPO", name="history", batch_size=1))
window = row["window"][0]          # int8 (10, 69)
boards = decode_window(window)     # list of 10 chess.Board, None for mask rows
print(tokens_to_fen(window[0]))    # the FEN the tokens hold: no en passant square, counters "0 1"
print(row["fen"][0])               # the full FEN
```"""

_PLANE_NAMES = [f"a {chess.COLOR_NAMES[p.color]} {chess.PIECE_NAMES[p.piece_type]} (`{p.symbol()}`)" for p in PLANE_PIECES]
_CASTLING_NAMES = ("White kingside", "White queenside", "Black kingside", "Black queenside")  # token order


def _bool_window_schema(name: str, feature: str, layout: str, unit: str, table: list[list[object]], shape: str) -> str:
    """The schema section of a config whose window rows are the original project's bool encodings."""
    return f"""### `{name}`

The rows and columns of `history`; each `window` row is the same position in
the original project's {layout}.

| column | feature | content |
|---|---|---|
| `window` | `{feature}` | `window[i]` is the position `i` plies before this one, newest first (`window[0]` is the position); rows before the game's first position are all `False` (no kings: never a position) |
{_HISTORY_COLUMNS}
{_table([unit, "True when"], table)}

Decode a window (every encoding decodes the same way):

```python
from chesspos_positions import decode_window, iter_batches

row = next(iter_batches("REPO", name="{name}", batch_size=1))
window = row["window"][0]          # bool {shape}
boards = decode_window(window)     # list of 10 chess.Board, None for padding rows
```"""


_BITBOARD_SCHEMA = _bool_window_schema(
    "bitboard",
    f'Array2D(shape=(10, {BITBOARD_LENGTH}), dtype="bool")',
    "`BitboardEncoder` layout: 12 blocks of 64 squares in python-chess order (a1=0, b1=1 ... h8=63), then the side to move and the castling rights",
    "index",
    [[f"{64 * plane}-{64 * plane + 63}", f"square `index - {64 * plane}` holds {name}"] for plane, name in enumerate(_PLANE_NAMES)]
    + [[BITBOARD_TURN_INDEX, "White is to move"]]
    + [[index, f"{right} castling right held (python-chess's `has_*_castling_rights`)"]
       for index, right in zip(BITBOARD_CASTLING_INDICES, _CASTLING_NAMES)],
    f"(10, {BITBOARD_LENGTH})",
)

_TENSOR_SCHEMA = _bool_window_schema(
    "tensor",
    f'Array4D(shape=(10, {", ".join(map(str, TENSOR_SHAPE))}), dtype="bool")',
    "`TensorEncoder` layout: `window[i][rank][file][plane]`, so a1 is `[0][0]` and h8 `[7][7]`; a plane's unlisted cells are `False`",
    "plane",
    [[plane, f"`[rank][file]` holds {name}"] for plane, name in enumerate(_PLANE_NAMES)]
    + [[TENSOR_CASTLING_PLANE, "a castling right is held, marked on its rook's corner: "
        + ", ".join(f"`[{chess.square_rank(square)}][{chess.square_file(square)}]` {right}"
                    for right, square in zip(_CASTLING_NAMES, CASTLING_SQUARES))],
       [TENSOR_EN_PASSANT_PLANE, "`[rank][file]` is the en passant square, marked only when an en passant capture is legal"],
       [TENSOR_TURN_PLANE, "`[0][0]`: White is to move"]],
    f"(10, {', '.join(map(str, TENSOR_SHAPE))})",
)

SCHEMAS = {"default": _DEFAULT_SCHEMA, "history": _HISTORY_SCHEMA, "bitboard": _BITBOARD_SCHEMA, "tensor": _TENSOR_SCHEMA}


def _other_builds(release: Release) -> str:
    """The section on how the repo's other configs were built, as their releases recorded it (:data:`GENERATION_KEY`)."""
    parts = []
    for name, record in release.generation.items():
        if name == release.config.name:
            continue
        record = dict(record)
        sources, games = record.pop("sources", None), record.pop("games", None)
        text = f"### `{name}`\n\n" + _parameters_table(record)
        if sources is None:  # recorded by a release from before the sources were
            text += "\n\nIts source files are listed in the card of the release that built it."
        else:
            text += "\n\n" + _sources_table(SourceFile(s["file"], s["sha256"], s["bytes"]) for s in sources)
        if games is not None:
            text += f"\n\nGames read: {games['read']}, kept: {games['kept']}."
        parts.append(text)
    if not parts:
        return ""
    return ("\n## How the other configs were built\n\nThe sections above describe this release's build of "
            f"`{release.config.name}`. The other configs were built by earlier releases:\n\n" + "\n\n".join(parts) + "\n")


def card_data_infos(release: Release) -> dict[str, DatasetInfo]:
    """Each config the card lists (its own and the repo's others), in config order, with its info."""
    return DatasetInfosDict.from_dataset_card_data(card_data(release))


def build_card(release: Release) -> DatasetCard:
    """The complete dataset card of ``release``."""
    return DatasetCard(f"---\n{card_data(release).to_yaml()}\n---\n\n{card_body(release)}")
