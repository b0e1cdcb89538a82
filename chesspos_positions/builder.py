# SPDX-License-Identifier: GPL-3.0-or-later
"""The dataset builder: the single source of truth of the dataset's content.

``builder.publish`` materialises exactly what :class:`ChessposPositions`
generates, through :meth:`ChessposPositions.generate_batches`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

import datasets
import pyarrow as pa
import pyarrow.feather as feather
from datasets.builder import Key
from datasets.download.streaming_download_manager import StreamingDownloadManager

from .configs import CONFIG_NAMES, CONFIGS, Config, examples_table
from .games import Summary
from .generation import SPLITS, Batch, generate_batches
from .sampling import SAMPLING_MODES, Sampling, check_seed
from .sources import resolve_paths
from .steps import Job, staged_batches
from .timing import StageTimes
from .units import UNIT_BYTES

logger = datasets.utils.logging.get_logger(__name__)

#: The games shipped in the package, used when no input is given. They are
#: synthetic self-play games made by ``scripts/make_embedded_sample.py``.
EMBEDDED_SAMPLE = str(files("chesspos_positions") / "data" / "sample_games.pgn.zst")

_SAMPLING_FIELDS = tuple(f.name for f in fields(Sampling) if f.name != "keep_all")


#: The most batches a release may have: each is a Write task (a Slurm array task, a
#: datatrove rank with its own log), a shard pair and two lines of the card's YAML
#: (about 630 kB per config at this bound), and asking for 10^11 used up every byte
#: of memory listing their ranks. 10,000 batches of the default size hold 10^9 positions.
MAX_BATCHES: Final = 10_000


@dataclass
class ChessposPositionsConfig(datasets.BuilderConfig):
    """BuilderConfig for chesspos-positions.

    Args:
        data_path (`str` or `list[str]`, *optional*):
            Raw game inputs: files, directories (recursive), globs or fsspec
            URLs of ``.pgn``/``.pgn.zst``/``.pgn.bz2``/``.pgn.gz`` files.
            ``data_files`` and ``data_dir`` are accepted too. With none of
            them, the embedded self-play sample is used.
        batches (`int`, defaults to 3): number of batches.
        batch_size (`int`, defaults to 100_000): positions per batch, both splits together.
        train_ratio (`float`, defaults to 0.95): the train share of each batch,
            and the target share of games assigned to train.
        seed (`int`, defaults to 0): seed of sampling and in-batch shuffling, in ``[0, 2**64)``.
        sampling (`str`, defaults to "default"): "default" applies the
            parameters below; "all" keeps every position of every standard game.
        elo_tiers, min_base_time, ply_full, ply_keep, min_ply, max_ply:
            the sampling parameters, see :class:`chesspos_positions.Sampling`.

    The config's ``name`` selects what rows hold (:data:`~.configs.CONFIGS`):
    ``"default"`` (10 copies of the position) or ``"history"`` (the 10 last
    positions, with metadata). Every config holds the same positions.

    Example:

    ```python
    >>> from chesspos_positions import ChessposPositions
    >>> builder = ChessposPositions(config_name="history", data_path="games/", batches=1, batch_size=1000)
    >>> builder.download_and_prepare()
    >>> ds = builder.as_dataset()
    ```
    """

    data_path: str | tuple[str, ...] | None = None
    batches: int = 3
    batch_size: int = 100_000
    train_ratio: float = 0.95
    seed: int = 0
    sampling: str = "default"
    elo_tiers: tuple[tuple[int, float], ...] = Sampling.elo_tiers
    min_base_time: int | None = Sampling.min_base_time
    ply_full: int = Sampling.ply_full
    ply_keep: float = Sampling.ply_keep
    min_ply: int | None = None
    max_ply: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check()

    def check(self) -> None:
        """Turn list values (from YAML or JSON) into tuples, and check every value.

        Raises:
            ValueError: a value out of range or unknown (names the field).
        """
        if isinstance(self.data_path, list):
            self.data_path = tuple(self.data_path)
        if isinstance(self.elo_tiers, list):
            self.elo_tiers = tuple(tuple(tier) for tier in self.elo_tiers)
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling mode {self.sampling!r}; expected one of {', '.join(SAMPLING_MODES)}")
        if not 0.0 < self.train_ratio < 1.0:
            raise ValueError(f"train_ratio must be in (0, 1), got {self.train_ratio}")
        if not 1 <= self.batches <= MAX_BATCHES:
            raise ValueError(f"batches must be in [1, {MAX_BATCHES:,}], got {self.batches}: for more positions, "
                             "make the batches larger (batch_size)")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        check_seed(self.seed)  # now, not in the first task that draws
        if self.name not in CONFIGS:
            raise ValueError(f"unknown config name {self.name!r}; expected one of {', '.join(CONFIG_NAMES)}")
        self.sampling_rules()  # validates the sampling parameters now, before any work

    @property
    def spec(self) -> Config:
        """What this config's rows and examples are."""
        return CONFIGS[self.name]

    def sampling_rules(self) -> Sampling:
        """The :class:`Sampling` these settings describe."""
        params = {name: getattr(self, name) for name in _SAMPLING_FIELDS}
        return Sampling.from_mode(self.sampling, **params)

    def job(self, urls: Sequence[str] | None = None, unit_bytes: int = UNIT_BYTES) -> Job:
        """What building this config computes (:class:`~.steps.Job`), for inputs ``urls`` (default: resolved here)."""
        urls = resolve_paths(self.input_paths()) if urls is None else urls
        return Job(tuple(urls), self.sampling_rules(), self.seed, self.train_ratio, self.batches, self.batch_size,
                   unit_bytes, self.spec.rows)

    def input_paths(self) -> list[str]:
        """The raw game inputs, before expansion: data_path, data_files, data_dir or the sample."""
        if self.data_path:
            return [self.data_path] if isinstance(self.data_path, str) else list(self.data_path)
        if self.data_files:
            return [str(path) for split_files in self.data_files.values() for path in split_files]
        if self.data_dir:
            return [self.data_dir]
        return [EMBEDDED_SAMPLE]


#: The fields a config adds to datasets' BuilderConfig, in order: every setting the data depends on.
GENERATION_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(ChessposPositionsConfig) if f.name not in {g.name for g in fields(datasets.BuilderConfig)}
)


class ChessposPositions(datasets.ArrowBasedBuilder):
    """Chess positions as 69-token windows, in game-level train/test batches."""

    BUILDER_CONFIG_CLASS = ChessposPositionsConfig
    BUILDER_CONFIGS = [ChessposPositionsConfig(name=name, description=CONFIGS[name].description) for name in CONFIG_NAMES]
    DEFAULT_CONFIG_NAME = "default"
    VERSION = datasets.Version("1.0.0")
    config: ChessposPositionsConfig

    #: Batches materialised once by a non-streaming build, so that parallel
    #: jobs and both splits read them instead of regenerating the prefix.
    _spill_dir: str | None = None
    #: Counts of the last generation pass in this process.
    summary: Summary | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # load_dataset(..., batches=0) and ChessposPositions(config_name=..., **values) set the values
        # on a copy of a predefined config, which skips its __post_init__: checked here, before any work.
        self.config.check()

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Chess positions encoded as 69 tokens, in windows of 10, with game-level splits.",
            features=self.config.spec.features,
        )

    def generate_batches(
        self,
        num_proc: int = 1,
        summary: Summary | None = None,
        times: StageTimes | None = None,
        unit_bytes: int = UNIT_BYTES,
    ) -> Iterator[Batch]:
        """Generate this config's batches, in order: the dataset's content.

        Args:
            num_proc: 1 generates in this process, reading only as far as the
                batches need; more runs the Encode and Plan stages of
                :mod:`.steps` on that many local processes (datatrove). The
                output does not depend on it.
            summary: filled with the counts of the games consumed.
            times: filled with the seconds spent per stage.
            unit_bytes: text bytes per work unit; the batches do not depend on it.
        """
        job = self.config.job(unit_bytes=unit_bytes)
        if num_proc > 1:
            yield from staged_batches(job, num_proc, summary, times)
            return
        yield from generate_batches(
            list(job.urls),
            job.sampling,
            seed=job.seed,
            batches=job.batches,
            batch_size=job.batch_size,
            train_ratio=job.train_ratio,
            unit_bytes=unit_bytes,
            kind=job.kind,
            summary=summary,
            times=times,
        )

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        # Resolve now so that a missing or empty input fails before any work.
        resolve_paths(self.config.input_paths())
        if not isinstance(dl_manager, StreamingDownloadManager):
            self._spill(dl_manager.download_config.num_proc or 1)
        batch_ids = list(range(1, self.config.batches + 1))
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"split": str(split), "batch_ids": batch_ids})
            for split in (datasets.Split.TRAIN, datasets.Split.TEST)
        ]

    def _spill(self, num_proc: int) -> None:
        """Generate all batches once, to Arrow files in a temporary folder."""
        self._cleanup_spill()
        self._spill_dir = tempfile.mkdtemp(prefix="chesspos-batches-")
        self.summary = Summary()
        for batch in self.generate_batches(num_proc, self.summary):
            for split in SPLITS:
                feather.write_feather(getattr(batch, split), Path(self._spill_dir) / f"{batch.index}-{split}.arrow")

    def _cleanup_spill(self) -> None:
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
            self._spill_dir = None

    def _download_and_prepare(self, dl_manager, verification_mode, **prepare_split_kwargs):  # type: ignore[no-untyped-def]
        try:
            super()._download_and_prepare(dl_manager, verification_mode, **prepare_split_kwargs)
        finally:
            self._cleanup_spill()

    def _batches(self, split: str, batch_ids: list[int]) -> Iterator[tuple[int, pa.Table]]:
        """``(index, rows of split)`` of the wanted batches, from the spill or generated."""
        if self._spill_dir is not None:
            for index in batch_ids:
                path = Path(self._spill_dir) / f"{index}-{split}.arrow"
                if path.exists():
                    yield index, feather.read_table(path)
            return
        wanted = set(batch_ids)
        for batch in self.generate_batches():
            if batch.index in wanted:
                yield batch.index, getattr(batch, split)
            if batch.index >= max(wanted):
                return

    def _generate_tables(self, split: str, batch_ids: list[int]) -> Iterator[tuple[Key, pa.Table]]:
        # The same tables the published shards hold: one code path.
        for index, rows in self._batches(split, batch_ids):
            yield Key(index, 0), examples_table(rows, self.config.spec)
