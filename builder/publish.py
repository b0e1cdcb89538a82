# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m builder.publish``: materialise the builder to Parquet + card, and push.

The shards are exactly what :meth:`ChessposPositions.generate_batches`
yields; this module only writes them, describes them in the card, and
moves them to the Hub: one commit per batch, the card last, then a tag.

Examples::

    python -m builder.publish --dry-run                     # embedded sample -> ./out
    python -m builder.publish --repo user/chesspos-positions --data-path ./data/raw
    python -m builder.publish --repo user/chesspos-positions --batches 4   # append v2
    python -m builder.publish --repo user/chesspos-positions --resume      # after a crash
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData, HfApi

from chesspos_positions.builder import EMBEDDED_SAMPLE, GENERATION_FIELDS
from chesspos_positions.configs import CONFIG_OF_FOLDER
from chesspos_positions.executors import ExecutorSetupError, StagesPending
from chesspos_positions.games import Summary
from chesspos_positions.generation import SPLITS
from chesspos_positions.sources import resolve_paths
from chesspos_positions.steps import WorkFolderError
from chesspos_positions.timing import StageTimes

from . import failures, hub, output, push, report
from .card import Release, SourceFile, build_card, recorded_generation
from .hub import PublishError
from .options import PublishOptions, add_flags, config_only_help, resolve_options
from .shards import Shard
from .staged import build_shards

logger = logging.getLogger("builder.publish")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m builder.publish",
        description="Build chess-position Parquet shards and a dataset card from raw games, and push them to the Hub.",
        epilog="Precedence: flags > --config YAML > defaults. Auth: HF_TOKEN, --token or `hf auth login`. "
               + failures.EXIT_CODES_HELP + " " + config_only_help(),
    )
    add_flags(parser)
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of options (keys as the flags, with _ or -)")
    return parser.parse_args(argv)


def public_url(url: str) -> str:
    """``url`` as a public card may show it: without its user name and password (``https://user:secret@host/...``)."""
    return _URL_SECRETS.sub("://", url)


#: The user-info part of a URL (``user:password@``), in any link of an fsspec chain: up to the
#: authority's last "@", as urllib reads it, so a password holding an "@" goes whole.
_URL_SECRETS = re.compile(r"://[^/?#]*@")


#: How the card names the embedded sample: by its place in the package.
_SAMPLE_NAME = "chesspos_positions/data/sample_games.pgn.zst (embedded self-play sample)"


def source_names(urls: list[str]) -> list[str]:
    """How the card names each source file: nothing of the machine that built it.

    A URL shows as :func:`public_url`, the embedded sample by its place in
    the package, and a local file by the shortest end of its path that no
    other local source ends with: its name, or its folder and name when two
    files share a name; never the folders above (a home folder, a user name).
    """
    sample = os.path.normpath(EMBEDDED_SAMPLE)
    local = [_parts(url) for url in urls if "://" not in url and url != sample]
    names = []
    for url in urls:
        if url == sample:
            names.append(_SAMPLE_NAME)
        elif "://" in url:
            names.append(public_url(url))
        else:
            parts = _parts(url)
            size = 1
            while size < len(parts) and sum(other[-size:] == parts[-size:] for other in local) > 1:
                size += 1
            names.append("/".join(parts[-size:]))
    return names


def _parts(path: str) -> tuple[str, ...]:
    """The folders and name of a local path, from its root, without the root itself."""
    return Path(os.path.abspath(path)).parts[1:]


def display_input(path: str) -> str:
    """How the card names a --data-path entry: the embedded sample, a URL (:func:`public_url`), or the local name alone."""
    if "://" in path:
        return public_url(path)
    if os.path.normpath(path) == os.path.normpath(EMBEDDED_SAMPLE):
        return _SAMPLE_NAME
    return os.path.basename(os.path.normpath(os.path.abspath(path)))


def describe_sources(urls: list[str], digests: list[tuple[str | None, int]]) -> list[SourceFile]:
    """The card's entry of each raw input file: its name, sha256 (None if the build did not read it) and size."""
    return [SourceFile(name, *digest) for name, digest in zip(source_names(urls), digests)]


def card_parameters(options: PublishOptions, inputs: list[str]) -> dict[str, object]:
    """The card's generation parameters: every field of the builder config, as the card shows them."""
    config = options.builder_config()
    parameters: dict[str, object] = {name: getattr(config, name) for name in GENERATION_FIELDS}
    parameters["data_path"] = [display_input(p) for p in inputs]
    parameters["elo_tiers"] = [list(t) for t in config.sampling_rules().elo_tiers]
    return {**parameters, "config_name": config.name}


#: The options that decide which positions each batch holds, apart from the inputs: what every config of
#: a repo must share for the card's "every config holds the same sampled positions" to hold.
POSITION_FIELDS: tuple[str, ...] = tuple(name for name in GENERATION_FIELDS if name not in ("data_path", "batches"))


def position_parameters(options: PublishOptions, inputs: list[str]) -> dict[str, object]:
    """The :data:`POSITION_FIELDS` of this run, as the card shows them."""
    parameters = card_parameters(options, inputs)
    return {name: parameters[name] for name in POSITION_FIELDS}


def generation_record(options: PublishOptions, inputs: list[str], sources: list[SourceFile], summary: Summary
                      ) -> dict[str, object]:
    """What the card records of this config's build (:data:`~.card.GENERATION_KEY`).

    Every generation parameter, each source file with its size and sha256,
    and the games read and kept: so the card still describes this config's
    build after another config's release rewrites its body. Its
    :data:`POSITION_FIELDS` are what a config joining the repo is held to.
    """
    parameters = card_parameters(options, inputs)
    del parameters["config_name"]
    return {**parameters, "sources": [{"file": s.name, "bytes": s.size, "sha256": s.sha256} for s in sources],
            "games": {"read": summary.games_read, "kept": summary.games_kept}}


def check_same_positions(previous: DatasetCardData | None, held: set[str], name: str, mine: dict[str, object]) -> None:
    """Refuse to put config ``name`` beside configs ``held`` that its card records with other position options.

    Raises:
        PublishError: naming the config, the options that differ and what to do.
    """
    recorded = recorded_generation(previous)
    for other in sorted(held & set(recorded)):
        differ = [key for key in POSITION_FIELDS if key in recorded[other] and recorded[other][key] != mine[key]]
        if differ:
            shown = "; ".join(f"{key}: {recorded[other][key]!r} there, {mine[key]!r} here" for key in differ)
            raise PublishError(
                f"config {other!r} was built with other options than this {name!r} release ({shown}): every config "
                "holds the same sampled positions, so build it with the same options (--batches may differ), or "
                "publish it to another repo"
            )


def config_batches(paths: Iterable[str]) -> dict[str, int]:
    """Config name -> its batches in a listing of release files."""
    return {CONFIG_OF_FOLDER[folder]: n for folder, n in hub.count_batches(paths).items() if folder in CONFIG_OF_FOLDER}


#: The card metadata a release decides: the rest (the body, the other configs' entries) follows from it.
_RELEASE_METADATA = ("license", "pretty_name", "configs", "dataset_info")


def same_metadata(previous: DatasetCardData | None, new: DatasetCardData) -> bool:
    """Whether a card already says what ``new`` says of the release: its license, name, configs and their sizes."""
    if previous is None:
        return False
    old, now = previous.to_dict(), new.to_dict()
    return all(old.get(key) == now.get(key) for key in _RELEASE_METADATA)


def clear_stale_shards(root: Path, folder: str, keep: set[str]) -> None:
    """Remove shards an earlier run left in the config's folder of the output that this release does not hold."""
    for split in SPLITS:
        for path in sorted((root / folder / split).glob("batch_*.parquet")):
            if f"{folder}{split}/{path.name}" not in keep:
                logger.info("removing stale shard %s", path)
                path.unlink()


class Publisher:
    """One run of ``builder.publish``."""

    def __init__(self, options: PublishOptions) -> None:
        self.options = options
        self.config = options.builder_config()
        self.stages = StageTimes()
        self.api: HfApi | None = None
        self.state = hub.RepoState(self.config.spec.folder)
        self.tag: str | None = options.tag
        self.sources: list[SourceFile] = []

    def check_remote(self) -> None:
        """Authenticate and check the repo before any work, so a bad token or a conflict costs nothing."""
        options = self.options
        assert options.repo is not None
        with self.stages.time("hub"):
            self.api, user = hub.authenticate(options.token, options.repo)
            logger.info("authenticated as %s", user)
            self.state = hub.read_state(self.api, options.repo, self.config.spec.folder)
        if options.private and self.state.head is not None and not self.state.private:
            raise PublishError(
                f"{options.repo} exists and is public, and --private only makes new repos private: make it private "
                "first (its settings on the Hub, or HfApi().update_repo_settings(repo_id, private=True, "
                "repo_type='dataset')), or drop --private"
            )
        self.tag = push.check_release(self.state, options.repo, self.config, options.tag, options.resume)
        metadata = DatasetCardData(license=options.license, pretty_name=options.pretty_name)
        with self.stages.time("hub"):
            reason = hub.card_refusal(DatasetCard(f"---\n{metadata.to_yaml()}\n---\n"))
        if reason:
            raise PublishError(f"--license {options.license!r}: the Hub refuses the dataset card's metadata: {reason}")

    def check_other_configs(self, root: Path | None, inputs: list[str]) -> None:
        """Before any work: a config new to the release must hold the same positions as the configs beside it."""
        present = self._release_batches(root)
        held = present.keys() - {self.config.name}
        # Only a config that joins the repo: one already there is held to its own shards (same bytes or rows),
        # and may sit beside configs of releases from before the options were recorded.
        if held and not present.get(self.config.name):
            previous = self._previous_card(root, self.state.head)
            check_same_positions(previous, held, self.config.name, position_parameters(self.options, inputs))

    def run(self) -> int:
        options = self.options
        if options.output_path is not None:
            output.check_folder(options.output_path, options.overwrite)
        if not options.dry_run:
            self.check_remote()
        inputs = self.config.input_paths()
        self.check_other_configs(options.output_path, inputs)
        urls = resolve_paths(inputs)  # an empty or missing data path fails here, before any work
        root = options.output_path
        scratch = None
        if root is None:
            scratch = tempfile.mkdtemp(prefix="chesspos-publish-")
            root = Path(scratch)
        try:
            return self._publish(root, urls, inputs)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    def _publish(self, root: Path, urls: list[str], inputs: list[str]) -> int:
        options, config = self.options, self.config
        uploaded = 0
        head = self.state.head
        pushing = self.api is not None
        # The build reads every input the batches need (and refuses a truncated
        # or corrupt one) before the repo is created or anything is pushed.
        built = build_shards(options, urls, root, self.stages)
        shards, summary, partial = built.shards, built.summary, built.partial
        self.sources = describe_sources(urls, built.sources)
        if not shards:
            raise PublishError(failures.no_positions_message(inputs, summary, config.sampling))
        if pushing:
            with self.stages.time("hub"):
                hub.ensure_repo(self.api, options.repo, options.private)
                head = head or hub.head_commit(self.api, options.repo)
            for index in range(0, len(shards), len(SPLITS)):
                pair = shards[index:index + len(SPLITS)]
                with self.stages.time("upload"):
                    new_head, shards[index:index + len(SPLITS)] = push.push_batch(
                        self.api, options.repo, self.state, index // len(SPLITS) + 1, pair, head)
                uploaded += new_head != head
                head = new_head

        batches_done = len(shards) // 2
        clear_stale_shards(root, config.spec.folder, {s.path_in_repo for s in shards})
        # Up to date: main's card is a tagged release's card, with these batches. A card committed by a release
        # stopped before its tag is on main only: the rerun tags it.
        card_blob = self.state.files.get("README.md")
        already = [tag for tag, n in self.state.tags.items() if n == batches_done and self.state.tag_cards.get(tag) == card_blob]
        with self.stages.time("card"):
            # The other configs the release holds keep their files and their card entries.
            files = self._release_files(root)
            present = config_batches(files)
            held = present.keys() - {config.name}
            previous = self._previous_card(root, head)
            infos = DatasetInfosDict.from_dataset_card_data(previous) if previous is not None else {}
            recorded = recorded_generation(previous)
            counts = {**present, config.name: batches_done}
            versions = sorted(
                ((tag, config_batches(paths)) for tag, paths in self.state.tag_files.items()),
                key=lambda item: (sum(item[1].values()), item[0]),
            )
            versions.append((self.tag or "v1", {name: n for name, n in counts.items() if n}))
            release = Release(
                repo_id=options.repo or "user/chesspos-positions",
                pretty_name=options.pretty_name,
                license=options.license,
                parameters=card_parameters(options, inputs),
                sources=self.sources,
                summary=summary,
                shards=shards,
                versions=versions,
                config=config.spec,
                other_configs={name: info for name, info in infos.items() if name in held},
                held_files=tuple(files),
                partial=partial,
                generation={**{name: values for name, values in recorded.items() if name in held},
                            config.name: generation_record(options, inputs, self.sources, summary)},
            )
            card = build_card(release)
            if pushing and uploaded == 0 and already and options.tag is None and same_metadata(previous, card.data):
                print(f"\n{options.repo} is up to date: it holds these {batches_done} batches at tag {already[0]}.")
                return 0
            # Else a release, though maybe of the card alone: a new --license or pretty_name, or counts that an
            # interrupted release of another config left wrong.
            card_path = root / "README.md"
            card.save(output.pending_path(card_path))
        if pushing:
            with self.stages.time("upload"):
                head = push.push_card(self.api, options.repo, self.state, output.pending_path(card_path), self.tag, head)
                hub.create_tag(self.api, options.repo, self.tag, head)
        output.complete(root, shards, card_path)
        self._report(root, shards, summary, partial)
        return 0

    def _release_files(self, root: Path | None) -> list[str]:
        """The shards of the release this run adds to: the repo's main branch, or the output folder's."""
        if self.api is not None:
            return [path for path in self.state.files if path.endswith(".parquet")]
        if root is None or not root.is_dir():
            return []
        return [p.relative_to(root).as_posix() for p in root.rglob("*.parquet")]

    def _release_batches(self, root: Path | None) -> dict[str, int]:
        """Config -> its batches in the release this run adds to (:meth:`_release_files`)."""
        return config_batches(self._release_files(root))

    def _previous_card(self, root: Path | None, head: str | None) -> DatasetCardData | None:
        """The metadata of the card this release replaces: the repo's, or the output folder's on a dry run."""
        if self.api is None:
            path = root / "README.md" if root is not None else None
            if path is None or not path.exists():
                return None
        elif "README.md" in self.state.files:
            with self.stages.time("hub"):
                path = Path(hub.download(self.api, self.options.repo, "README.md", head))
        else:
            return None
        return DatasetCard.load(path).data

    def _report(self, root: Path, shards: list[Shard], summary: Summary, partial: str | None) -> None:
        options = self.options
        pushed = (self.api.endpoint, options.repo, self.tag) if self.api is not None else None
        local = root if options.output_path is not None else None
        timings = self.stages.seconds if options.profile else None
        print(report.summary_text(self.config.spec, shards, summary, partial, local, pushed, timings))


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("builder", "chesspos_positions"):
        logging.getLogger(name).setLevel(logging.INFO)
    args = parse_args(argv)

    def work() -> int:
        try:
            return Publisher(resolve_options(args)).run()
        except StagesPending as pending:  # Slurm jobs submitted with --no-wait: not a failure
            print(str(pending))
            return 0
        except (WorkFolderError, ExecutorSetupError) as error:  # a usage error; failed tasks are runtime failures
            raise PublishError(str(error)) from error

    return failures.run_reported(work)


if __name__ == "__main__":
    sys.exit(main())
