# SPDX-License-Identifier: GPL-3.0-or-later
"""Talking to the Hugging Face Hub: authentication, repo state, commits, tags.

Everything goes through the real :class:`huggingface_hub.HfApi`. Transient
failures (429, 5xx, dropped connections) are retried with exponential
backoff; every other error stops the run with the server's message.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from huggingface_hub import CommitOperationAdd, HfApi, get_token
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

try:  # the HTTP client huggingface_hub is built on
    from httpx2 import TransportError
except ImportError:  # pragma: no cover - older huggingface_hub releases
    from httpx import TransportError

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
LOGIN_HELP = "set HF_TOKEN, pass --token, or run `hf auth login`"
_BATCH_SHARD = re.compile(r"^(?:(\w+)/)?train/batch_(\d+)\.parquet$")
_VERSION_TAG = re.compile(r"^v(\d+)$")


class PublishError(Exception):
    """A publish run cannot go on; the message says why and what to do."""


def status_of(error: HfHubHTTPError) -> int | None:
    return error.response.status_code if error.response is not None else None


def with_retries(call: Callable[[], T], what: str, attempts: int = 5, base_delay: float = 1.0) -> T:
    """Run ``call``, retrying transient HTTP failures with exponential backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except HfHubHTTPError as error:
            if status_of(error) not in TRANSIENT_STATUS or attempt == attempts:
                raise
            reason = f"HTTP {status_of(error)}"
        except TransportError as error:
            if attempt == attempts:
                raise
            reason = f"{type(error).__name__}: {error}"
        delay = base_delay * 2 ** (attempt - 1)
        logger.warning("%s failed (%s); retry %d/%d in %.0f s", what, reason, attempt, attempts - 1, delay)
        time.sleep(delay)
    raise AssertionError("unreachable")


def authenticate(token: str | None) -> tuple[HfApi, str]:
    """An API client for ``token`` (or ``HF_TOKEN`` / the stored login), and its user name.

    Raises:
        PublishError: if there is no token or the Hub rejects it.
    """
    token = token or get_token()
    if not token:
        raise PublishError(f"not logged in to the Hugging Face Hub: {LOGIN_HELP}")
    api = HfApi(token=token)
    try:
        user = with_retries(api.whoami, "checking the token")
    except HfHubHTTPError as error:
        if status_of(error) == 401:
            raise PublishError(f"the Hugging Face token was rejected (HTTP 401 from {api.endpoint}): {LOGIN_HELP}") from error
        raise
    return api, str(user["name"])


@dataclass
class RepoState:
    """What a dataset repo's main branch holds, seen from one config (its shard folder)."""

    folder: str = ""  # the config's folder: "" for default, else "NAME/"
    head: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # path -> LFS sha256, or git blob id
    tag_files: dict[str, list[str]] = field(default_factory=dict)  # tag -> the paths it holds

    @property
    def batches(self) -> int:
        """The config's batches on the main branch."""
        return count_batches(self.files)[self.folder]

    @property
    def tags(self) -> dict[str, int]:
        """Tag -> the config's batches at that tag."""
        return {tag: count_batches(files)[self.folder] for tag, files in self.tag_files.items()}

    @property
    def name_widths(self) -> set[int]:
        """The digit counts of the batch numbers in the config's shard names."""
        return {len(m.group(2)) for p in self.files if (m := _BATCH_SHARD.match(p)) and _folder(m) == self.folder}


def _folder(match: re.Match[str]) -> str:
    return f"{match.group(1)}/" if match.group(1) else ""


def count_batches(paths: object) -> Counter[str]:
    """Config folder ("" for default) -> its batches in a file listing: its highest ``train/batch_NNN``."""
    counts: Counter[str] = Counter()
    for path in paths:
        if match := _BATCH_SHARD.match(str(path)):
            folder = _folder(match)
            counts[folder] = max(counts[folder], int(match.group(2)))
    return counts


def read_state(api: HfApi, repo_id: str, folder: str = "") -> RepoState:
    """The main branch's head, files (with their hashes) and tags of ``repo_id``, for the config in ``folder``."""
    try:
        info = with_retries(lambda: api.repo_info(repo_id, repo_type="dataset"), "reading the repo")
    except RepositoryNotFoundError:
        return RepoState(folder)
    state = RepoState(folder, head=info.sha)
    tree = with_retries(lambda: list(api.list_repo_tree(repo_id, repo_type="dataset", recursive=True, revision=info.sha)), "listing files")
    for entry in tree:
        if isinstance(entry, RepoFile):
            state.files[entry.path] = entry.lfs.sha256 if entry.lfs else entry.blob_id
    refs = with_retries(lambda: api.list_repo_refs(repo_id, repo_type="dataset"), "listing tags")
    for tag in refs.tags:
        files = with_retries(lambda: api.list_repo_files(repo_id, repo_type="dataset", revision=tag.target_commit), "listing a tag")
        state.tag_files[tag.name] = files
    return state


def head_commit(api: HfApi, repo_id: str) -> str:
    """The commit at the head of ``repo_id``'s main branch."""
    return with_retries(lambda: api.repo_info(repo_id, repo_type="dataset").sha, "reading the repo head")


def next_version_tag(tags: dict[str, int]) -> str:
    """``v{N+1}`` for the highest existing ``vN`` tag (``v1`` on a new repo)."""
    numbers = [int(m.group(1)) for tag in tags if (m := _VERSION_TAG.match(tag))]
    return f"v{max(numbers, default=0) + 1}"


def ensure_repo(api: HfApi, repo_id: str, private: bool) -> None:
    """Create the dataset repo if it does not exist; reuse it if it does."""
    with_retries(lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True), "creating the repo")


def commit(api: HfApi, repo_id: str, files: list[tuple[str, Path]], message: str, parent: str | None) -> str:
    """Commit ``files`` (path in repo, local path) on top of ``parent``; return the new head.

    Raises:
        PublishError: if main moved past ``parent``: another writer changed
            the repo, and nothing of this commit was applied.
    """
    operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(local)) for path, local in files]
    try:
        info = with_retries(
            lambda: api.create_commit(
                repo_id, operations, commit_message=message, repo_type="dataset", parent_commit=parent
            ),
            f"commit {message!r}",
        )
    except HfHubHTTPError as error:
        if status_of(error) in (409, 412):
            raise PublishError(
                f"{repo_id} changed while publishing (its main branch is no longer {parent}): another writer? "
                "Nothing was overwritten; check the repo, then rerun with --resume."
            ) from error
        raise
    return info.oid


def download_card(api: HfApi, repo_id: str, revision: str | None) -> str:
    """Download the dataset card (``README.md``) at ``revision``; return its local path."""
    return with_retries(
        lambda: api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision), "reading the card"
    )


def create_tag(api: HfApi, repo_id: str, tag: str, revision: str) -> None:
    with_retries(
        lambda: api.create_tag(repo_id, tag=tag, revision=revision, repo_type="dataset", tag_message=f"Release {tag}"),
        f"tagging {tag}",
    )
