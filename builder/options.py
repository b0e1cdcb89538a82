# SPDX-License-Identifier: GPL-3.0-or-later
"""Publish options: defaults, overridden by a YAML config, overridden by flags.

Every value is checked before any work starts: an unknown key, a value of the
wrong type or out of range is a clear error naming the key and the file.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml
from huggingface_hub.utils import HFValidationError, validate_repo_id

from chesspos_positions.builder import GENERATION_FIELDS, ChessposPositionsConfig
from chesspos_positions.configs import CONFIGS, ConfigName
from chesspos_positions.executors import ExecutorKind, slurm_problem
from chesspos_positions.sampling import SamplingMode
from chesspos_positions.units import UNIT_BYTES

DEFAULT_OUTPUT_DIR = "out"


class OptionsError(ValueError):
    """A bad option value; the message names the option and where it came from."""


def _flag(help: str, **argparse_kwargs: Any) -> dict[str, Any]:
    """A field's metadata that makes it a command-line flag; ``{default}`` in ``help`` is the field's default."""
    return {"help": help, **argparse_kwargs}


_CONFIGS_HELP = "; ".join(f"'{name}' ({spec.folder or 'the root'}): {spec.description}" for name, spec in CONFIGS.items())


@dataclass
class PublishOptions:
    """What ``python -m builder.publish`` does: each field with ``help`` is a flag (``--help``); all are YAML keys.

    The builder's settings default to the builder config's own defaults: one source.
    """

    repo: str | None = field(default=None, metadata=_flag("dataset repo NAMESPACE/NAME on the Hub (required unless --dry-run)"))
    config_name: ConfigName = field(default="default", metadata=_flag(
        f"the dataset config to build (default '{{default}}'): {_CONFIGS_HELP}. Publishing one config never touches another's files"))
    data_path: list[str] | None = field(default=None, metadata=_flag(
        "raw games: .pgn/.pgn.zst/.pgn.bz2/.pgn.gz files, directories, globs or fsspec URLs "
        "(default: the embedded self-play sample)", metavar="PATH"))
    batches: int = field(default=ChessposPositionsConfig.batches, metadata=_flag(
        "number of batches (default {default}); more than on the repo appends a version"))
    batch_size: int = field(default=ChessposPositionsConfig.batch_size, metadata=_flag(
        "positions per batch, train and test together (default {default})"))
    train_ratio: float = field(default=ChessposPositionsConfig.train_ratio, metadata=_flag(
        "train share of each batch and target share of train games (default {default})"))
    seed: int = field(default=ChessposPositionsConfig.seed, metadata=_flag(
        "seed of sampling and in-batch shuffling (default {default})"))
    sampling: SamplingMode = field(default=ChessposPositionsConfig.sampling, metadata=_flag(  # type: ignore[assignment]
        "'default' filters by Elo, time control and ply; 'all' keeps every position (default '{default}')"))
    num_proc: int = field(default=1, metadata=_flag(
        "local processes running the stages (default {default}); output does not depend on it"))
    dry_run: bool = field(default=False, metadata=_flag("write shards and card locally only: no token, no network"))
    output_dir: str | None = field(default=None, metadata=_flag(
        f"where shards and card are written (default with --dry-run: ./{DEFAULT_OUTPUT_DIR}; otherwise a temporary "
        "folder); a folder holding other files is refused"))
    overwrite: bool = field(default=False, metadata=_flag(
        "write into --output-dir even if it holds files this tool did not write"))
    tag: str | None = field(default=None, metadata=_flag("tag of this release (default: the next vN)"))
    resume: bool = field(default=False, metadata=_flag(
        "continue an interrupted release: upload only what is missing"))
    private: bool = field(default=False, metadata=_flag("create the repo as private"))
    token: str | None = field(default=None, metadata=_flag(
        "Hugging Face token (default: HF_TOKEN or the `hf auth login` token)"))
    license: str = field(default="cc0-1.0", metadata=_flag(
        "license id for the dataset card (default {default}: Lichess games are CC0)"))
    pretty_name: str = "Chess positions"  # YAML only
    profile: bool = field(default=False, metadata=_flag("print stage timings at the end"))
    # Where the build runs (see README "Building at scale"); none of these changes the shards.
    executor: ExecutorKind = field(default="local", metadata=_flag(
        "where the stages run: 'local' (default: --num-proc processes), 'slurm' (the config's slurm: section), "
        "'ray' (an existing cluster); see README 'Building at scale'"))
    workdir: str | None = field(default=None, metadata=_flag(
        "keep work files and logs here, and resume from them (required for slurm and ray; "
        "default for local: a temporary folder, removed)", metavar="DIR"))
    no_wait: bool = field(default=False, metadata=_flag(
        "slurm: submit the jobs and exit; rerun the same command to finish the release"))
    ray_address: str = field(default="auto", metadata=_flag("--executor ray: the cluster address (default {default})"))
    slurm: dict[str, Any] | None = None  # YAML only: SlurmPipelineExecutor options
    unit_bytes: int = field(default=UNIT_BYTES, metadata=_flag(
        "text bytes per work unit (default {default}); shards do not depend on it"))
    # Sampling parameters: YAML only, as rarely changed.
    elo_tiers: list[list[float]] | None = None
    min_base_time: int | None = ChessposPositionsConfig.min_base_time
    ply_full: int = ChessposPositionsConfig.ply_full
    ply_keep: float = ChessposPositionsConfig.ply_keep
    min_ply: int | None = ChessposPositionsConfig.min_ply
    max_ply: int | None = ChessposPositionsConfig.max_ply

    def builder_kwargs(self) -> dict[str, Any]:
        """The builder config fields these options set: all of them, but the Elo tiers when left to the config."""
        return {name: getattr(self, name) for name in GENERATION_FIELDS if not (name == "elo_tiers" and self.elo_tiers is None)}

    def builder_config(self) -> ChessposPositionsConfig:
        """The builder config these options describe (validated by the config itself)."""
        return ChessposPositionsConfig(name=self.config_name, **self.builder_kwargs())

    @property
    def output_path(self) -> Path | None:
        if self.output_dir is not None:
            return Path(self.output_dir)
        return Path(DEFAULT_OUTPUT_DIR) if self.dry_run else None


_FIELDS = {f.name: f for f in fields(PublishOptions)}
#: The allowed values of the fields typed as a ``Literal`` (the modes).
_HINTS = get_type_hints(PublishOptions)
_CHOICES: dict[str, tuple[str, ...]] = {name: get_args(hint) for name, hint in _HINTS.items() if get_origin(hint) is Literal}
#: Keys a config file may not set: secrets do not belong in files.
_NOT_IN_FILES = {"token"}
_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
}


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add a flag for every field with ``help``, its kind read from the field's type.

    Flags default to None, so that a flag not given leaves the YAML value or
    the field's default (:func:`resolve_options`).
    """
    for option in _FIELDS.values():
        if "help" not in option.metadata:
            continue
        kwargs = dict(option.metadata)
        default = option.default if option.default is not MISSING else None
        kwargs["help"] = kwargs["help"].format(default=default)
        hint = _HINTS[option.name]
        kind = get_args(hint)[0] if get_origin(hint) is UnionType else hint
        if kind is bool:
            kwargs.update(action="store_true", default=None)
        elif option.name in _CHOICES:
            kwargs["choices"] = _CHOICES[option.name]
        elif get_origin(kind) is list:
            kwargs["nargs"] = "+"
        else:
            kwargs["type"] = kind
        parser.add_argument(f"--{option.name.replace('_', '-')}", **kwargs)


def config_only_help() -> str:
    """For ``--help``: the keys only a config file sets (the fields without ``help``), each with its default."""
    keys = [f"{name} ({_shown_default(name)})" for name, option in _FIELDS.items() if "help" not in option.metadata]
    return f"Keys only the --config file sets, with their defaults: {', '.join(keys)}."


def _shown_default(name: str) -> str:
    """A field's default as YAML (JSON is YAML): a builder setting left as None shows the builder config's default."""
    value = _FIELDS[name].default
    if value is None and name in GENERATION_FIELDS:
        value = getattr(ChessposPositionsConfig, name)
    return json.dumps(value)


def _check_type(name: str, value: Any, origin: str) -> Any:
    """Check a value from ``origin`` against the field's annotation; return it normalised."""
    annotation = str(_FIELDS[name].type)
    if value is None:
        if "None" in annotation:
            return None
        raise OptionsError(f"{origin}: {name} must not be empty")
    if name == "data_path":
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise OptionsError(f"{origin}: data_path must be a path or a list of paths, got {value!r}")
        if not value:  # not the embedded sample: a publish would push the self-play games
            raise OptionsError(f"{origin}: data_path is an empty list; leave it out to build the embedded sample")
        return value
    if name == "slurm":
        if problem := slurm_problem(value, complete=False):  # a local run may keep a cluster's config file
            raise OptionsError(f"{origin}: {problem}")
        return value
    if name == "elo_tiers":
        if not isinstance(value, list) or not all(isinstance(t, list) and len(t) == 2 and all(_is_number(x) for x in t)
                                                  for t in value):
            raise OptionsError(f"{origin}: elo_tiers must be a list of [min_rating, keep_probability] pairs, got {value!r}")
        return value
    if choices := _CHOICES.get(name):
        if value not in choices:
            raise OptionsError(f"{origin}: {name} must be one of {', '.join(choices)}, got {value!r}")
        return value
    kind = annotation.split(" |")[0]
    accepted = _TYPES[kind]
    # bool is an int in Python; a YAML "true" for a count is still a mistake.
    if not isinstance(value, accepted) or (kind != "bool" and isinstance(value, bool)):
        raise OptionsError(f"{origin}: {name} must be {kind}, got {value!r}")
    return float(value) if kind == "float" else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_yaml(path: str) -> dict[str, Any]:
    """Read a YAML config file into option values, checking keys and types."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise OptionsError(f"cannot read config file {path}: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise OptionsError(f"config file {path} is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OptionsError(f"config file {path} must hold a mapping of options, got {type(data).__name__}")
    values = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in _FIELDS or name in _NOT_IN_FILES:
            hint = " (use HF_TOKEN or --token)" if name in _NOT_IN_FILES else ""
            valid = ", ".join(sorted(set(_FIELDS) - _NOT_IN_FILES))
            raise OptionsError(f"config file {path}: unknown key {key!r}{hint}; valid keys: {valid}")
        values[name] = _check_type(name, value, f"config file {path}")
    return values


def resolve_options(args: argparse.Namespace) -> PublishOptions:
    """Merge defaults < YAML config < flags, and validate the result."""
    values: dict[str, Any] = load_yaml(args.config) if args.config else {}
    files = dict.fromkeys(values, args.config)
    for name in _FIELDS:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
            files.pop(name, None)
    options = PublishOptions(**values)
    validate(options, files)
    return options


#: What git refuses anywhere in a ref name (``git check-ref-format``), and so the Hub in a tag.
_BAD_IN_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


def valid_tag(tag: str) -> bool:
    """Whether git, and so the Hub, accepts ``tag`` as a tag name: checked before any work, not at the end."""
    parts = tag.split("/")
    return (
        bool(tag) and tag != "@" and not _BAD_IN_REF.search(tag) and not tag.startswith(("-", "/"))
        and not tag.endswith("/") and all(part and not part.startswith(".") and not part.endswith((".", ".lock")) for part in parts)
    )


def validate(options: PublishOptions, files: Mapping[str, str] | None = None) -> None:
    """Check values across options and through the builder config.

    ``files`` maps an option whose value came from a config file to that file, which its errors name.
    """
    files = files or {}
    if options.num_proc < 1:
        raise OptionsError(f"{_label('num_proc', files)} must be >= 1, got {options.num_proc}")
    if options.executor != "local" and options.workdir is None:
        raise OptionsError(f"--executor {options.executor} needs --workdir DIR, on storage every node reaches")
    if options.no_wait and options.executor != "slurm":
        raise OptionsError(f"--no-wait applies to --executor slurm only, not {options.executor}: the run would wait anyway")
    # A default value cannot tell whether it was given: "auto" is harmless anywhere.
    if options.ray_address != _FIELDS["ray_address"].default and options.executor != "ray":
        raise OptionsError(f"{_label('ray_address', files)} applies to --executor ray only, not {options.executor}")
    for name in ("resume", "private", "token"):
        if options.dry_run and getattr(options, name):
            raise OptionsError(f"{_label(name, files)} does not go with {_label('dry_run', files)}, which publishes "
                               "nothing (no token, no network): drop one of them")
    if options.executor == "slurm" and (problem := slurm_problem(options.slurm or {})):
        raise OptionsError(f"--executor slurm needs a slurm: section in the --config file: {problem}")
    if not options.license.strip():
        raise OptionsError(f"{_label('license', files)} must not be empty: it is the dataset card's license id "
                           "(e.g. cc0-1.0, cc-by-4.0, other)")
    if options.unit_bytes < 1:
        raise OptionsError(f"{_label('unit_bytes', files)} must be >= 1, got {options.unit_bytes}")
    if options.repo is not None:
        try:
            validate_repo_id(options.repo)
        except HFValidationError as error:
            raise OptionsError(f"--repo {options.repo!r} is not a valid repo id: {error}") from error
        if "/" not in options.repo:
            raise OptionsError(f"--repo must be NAMESPACE/NAME, got {options.repo!r}")
    elif not options.dry_run:
        raise OptionsError("--repo NAMESPACE/NAME is required unless --dry-run")
    if options.tag is not None and not valid_tag(options.tag):
        raise OptionsError(
            f"--tag {options.tag!r} is not a valid git tag name: it must be non-empty, without spaces, control "
            "characters, ~ ^ : ? * [ \\ '..' '@{' or '//', must not start with '-' or '/', and no part may start "
            "with '.' or end with '.' or '.lock'"
        )
    if options.workdir is not None and "://" not in options.workdir and Path(options.workdir).exists() \
            and not Path(options.workdir).is_dir():
        raise OptionsError(f"--workdir {options.workdir!r} is a file, not a folder")
    try:
        options.builder_config()
    except ValueError as error:
        culprit = _builder_culprit(options, files)
        raise OptionsError(f"{_label(culprit, files)}: {error}" if culprit else str(error)) from error


def _label(name: str, files: Mapping[str, str]) -> str:
    """How an error names option ``name``: the config file and key it came from, its flag, or its key."""
    if name in files:
        return f"config file {files[name]}: {name}"
    return f"--{name.replace('_', '-')}" if "help" in _FIELDS[name].metadata else name


def _builder_culprit(options: PublishOptions, files: Mapping[str, str]) -> str | None:
    """The builder setting the builder config refuses: the first whose own default makes the config valid.

    None when no single setting does (two settings at odds are both named by the config's message).
    """
    kwargs = options.builder_kwargs()
    for name in sorted(kwargs, key=lambda name: name not in files):  # a value from the file before a default
        try:
            ChessposPositionsConfig(name=options.config_name, **{k: v for k, v in kwargs.items() if k != name})
        except ValueError:
            continue
        return name
    return None
