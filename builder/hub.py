# SPDX-License-Identifier: GPL-3.0-or-later
"""Talking to the Hugging Face Hub: authentication, repo state, commits, tags.

Everything goes through the real :class:`huggingface_hub.HfApi`. Transient
failures (408, 429, 5xx, dropped connections) are retried with exponential
backoff, or after the wait a 429's rate-limit headers ask for: by
huggingface_hub's ``http_backoff`` for the listings and file transfers,
which it retries itself; here for the few calls it does not retry; and for
commits by re-reading the head first, so that a commit that landed but whose
answer was lost is not sent twice nor taken for a conflict. Every other error
stops the run with the server's message.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from huggingface_hub import CommitOperationAdd, HfApi, RepoCard, constants, get_token
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils import parse_ratelimit_headers
from huggingface_hub.utils.sha import git_hash  # the blob id the Hub lists for regular files

from .shards import file_sha256, parse_shard_path

try:  # the HTTP client huggingface_hub is built on
    from httpx2 import TransportError
except ImportError:  # pragma: no cover - older huggingface_hub releases
    from httpx import TransportError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: The statuses and the attempts of huggingface_hub's ``http_backoff``.
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
ATTEMPTS, BASE_DELAY, MAX_DELAY = 6, 1.0, 8.0
#: The longest wait for a rate limit to reset, in seconds.
MAX_RATE_WAIT = 15 * 60
LOGIN_HELP = "set HF_TOKEN, pass --token, or run `hf auth login`"
_VERSION_TAG = re.compile(r"^v(\d+)$")


class PublishError(Exception):
    """A publish run cannot go on; the message says why and what to do."""


class RepoChangedError(PublishError):
    """Another writer moved the repo's main branch while this run was publishing."""


class HubUnreachable(ConnectionError):
    """The Hub could not be reached, even after retries."""


def status_of(error: HfHubHTTPError) -> int | None:
    return error.response.status_code if error.response is not None else None


def _transient(error: Exception) -> bool:
    """Whether ``error`` is worth retrying: the failures ``http_backoff`` retries."""
    if isinstance(error, HfHubHTTPError):
        return status_of(error) in TRANSIENT_STATUS
    return isinstance(error, TransportError)


def _backoff(attempt: int, error: Exception) -> float:
    """Seconds before retry ``attempt`` (1-based), as ``http_backoff`` waits.

    A 429 that says when its limit resets (the Hub's ``RateLimit`` header,
    or ``Retry-After`` in seconds) is retried a second after that; any other
    failure after a doubling delay.
    """
    if isinstance(error, HfHubHTTPError) and error.response is not None and status_of(error) == 429:
        headers = error.response.headers
        if (limit := parse_ratelimit_headers(headers)) is not None and limit.remaining == 0:
            return limit.reset_in_seconds + 1.0
        if (after := headers.get("Retry-After", "").strip()).isdigit():
            return int(after) + 1.0
    return min(BASE_DELAY * 2 ** (attempt - 1), MAX_DELAY)


def with_retries(call: Callable[[], T], what: str, recheck: Callable[[], T | None] | None = None) -> T:
    """Run an HfApi call, retrying transient failures with exponential backoff.

    Only for the calls huggingface_hub sends without retrying (whoami, repo
    info, refs, create_repo, tags, commits): its paginated listings and LFS
    transfers already go through ``http_backoff``. A call that is not
    idempotent needs ``recheck``: run before each retry, it returns the
    result if the failed attempt did take effect (its answer was lost),
    None to send the call again, or raises.

    Raises:
        HubUnreachable: if the Hub cannot be reached after the last retry.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except (HfHubHTTPError, TransportError) as error:
            if not _transient(error):
                raise
            if attempt == ATTEMPTS:
                if isinstance(error, TransportError):
                    raise HubUnreachable(f"cannot reach the Hub ({constants.ENDPOINT}) while {what}: {error}") from error
                raise
            delay = _backoff(attempt, error)
            if delay > MAX_RATE_WAIT:  # a limit that resets in hours: stop, and let --resume go on later
                raise
            logger.warning("%s failed (%s); retry %d/%d in %.0f s", what, _reason(error), attempt, ATTEMPTS - 1, delay)
        time.sleep(delay)
        if recheck is not None and (done := recheck()) is not None:
            return done
    raise AssertionError("unreachable")


def _reason(error: Exception) -> str:
    if isinstance(error, HfHubHTTPError):
        return f"HTTP {status_of(error)}"
    return f"{type(error).__name__}: {error}"


def card_refusal(card: RepoCard) -> str | None:
    """Why the Hub would refuse ``card`` at its commit (its ``/api/validate-yaml`` answer), or None if it would not.

    Raises:
        PublishError: the server does not serve the endpoint (404, 405).
            ``HfApi.create_commit`` posts every README to it before committing,
            so no card, and no release, could be committed there.
        HfHubHTTPError: any other failure, after retries for the transient ones.
    """
    try:
        with_retries(lambda: card.validate(repo_type="dataset"), "validating the dataset card")
    except HfHubHTTPError as error:
        if status_of(error) in (404, 405):
            raise PublishError(
                f"{constants.ENDPOINT} does not serve /api/validate-yaml (HTTP {status_of(error)}), where huggingface_hub "
                "checks every dataset card before committing it: no release can be committed there. Is HF_ENDPOINT "
                "the Hub's address?"
            ) from error
        raise
    except ValueError as error:  # RepoCard.validate's form of a 400: the answer's text
        return _errors_text(str(error))
    return None


def _errors_text(text: str) -> str:
    """The messages of a validation answer (``{"errors": [{"message": ...}]}``), or its text as it is."""
    try:
        errors = json.loads(text).get("errors")
        return "; ".join(str(error.get("message")) for error in errors) or text
    except (ValueError, AttributeError, TypeError):
        return text


def authenticate(token: str | None, repo_id: str) -> tuple[HfApi, str]:
    """An API client for ``token`` (or ``HF_TOKEN`` / the stored login) that may write to ``repo_id``, and its user name.

    Raises:
        PublishError: if there is no token, the Hub rejects it, or it cannot
            write to ``repo_id`` (see :func:`check_write_access`).
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
    check_write_access(user, repo_id)
    return api, str(user["name"])


def check_write_access(user: dict, repo_id: str) -> None:
    """Refuse, before any work, a token that the Hub would refuse only at the first commit.

    ``user`` is the token's ``whoami`` answer. A token whose role is ``read``
    cannot write anywhere; a fine-grained one only where one of its scoped
    entries grants ``repo.write``: the repo's user or organization, or the
    dataset repo itself. And a token can write only under its user's name and
    its organizations. A server whose answer does not list the organizations,
    or a fine-grained token's scopes, is not second-guessed.

    Raises:
        PublishError: naming the repo, the user and what to do.
    """
    name = str(user["name"])
    access = (user.get("auth") or {}).get("accessToken") or {}
    if access.get("role") == "read":
        raise PublishError(f"the Hugging Face token of {name!r} is read-only; publishing to {repo_id} needs a write token: {LOGIN_HELP}")
    if access.get("role") == "fineGrained":
        _check_fine_grained(access.get("fineGrained"), name, repo_id)
    orgs = user.get("orgs")
    namespace = repo_id.split("/", 1)[0]
    if namespace.casefold() == name.casefold() or not isinstance(orgs, list):  # the Hub ignores case in repo ids
        return
    # An organization's members may write to some of its repos whatever their role (resource groups):
    # membership is checked here, the rest the Hub answers.
    members_of = [str(org.get("name")) for org in orgs if isinstance(org, dict)]
    if namespace.casefold() not in {org.casefold() for org in members_of}:
        raise PublishError(
            f"the Hugging Face token of {name!r} cannot write to {repo_id}: {namespace!r} is neither that user nor one "
            f"of its organizations ({', '.join(sorted(members_of)) or 'none'}). Publish under {name}/..., or use "
            "a token of an account that may write there."
        )


def _check_fine_grained(grants: object, name: str, repo_id: str) -> None:
    """Refuse a fine-grained token (whoami's ``fineGrained`` entry) none of whose scopes may write to ``repo_id``."""
    scoped = grants.get("scoped") if isinstance(grants, dict) else None
    if not isinstance(scoped, list):
        return
    writes = [entry["entity"] for entry in scoped if isinstance(entry, dict) and isinstance(entry.get("entity"), dict)
              and "repo.write" in (entry.get("permissions") or [])]
    namespace = repo_id.split("/", 1)[0].casefold()
    targets = {("user", namespace), ("org", namespace), ("dataset", repo_id.casefold())}
    if "repo.write" in (grants.get("global") or []) or any(
            (str(entity.get("type")), str(entity.get("name")).casefold()) in targets for entity in writes):
        return
    where = ", ".join(f"{entity.get('type')} {entity.get('name')}" for entity in writes) or "nowhere"
    raise PublishError(
        f"the fine-grained Hugging Face token of {name!r} cannot write to {repo_id}: none of its scopes grants "
        f"repo.write on {repo_id.split('/', 1)[0]!r} or on the dataset {repo_id} (it may write to: {where}). Give it "
        f"write access there in its settings on the Hub, or use another token: {LOGIN_HELP}"
    )


@dataclass
class RepoState:
    """What a dataset repo's main branch holds, seen from one config (its shard folder)."""

    folder: str = ""  # the config's folder: "" for default, else "NAME/"
    head: str | None = None  # None: the repo does not exist
    private: bool = False
    files: dict[str, str] = field(default_factory=dict)  # path -> LFS sha256, or git blob id
    tag_files: dict[str, list[str]] = field(default_factory=dict)  # tag -> the paths it holds
    tag_cards: dict[str, str] = field(default_factory=dict)  # tag -> the git blob id of its README.md

    @property
    def batches(self) -> int:
        """The config's batches on the main branch."""
        return count_batches(self.files)[self.folder]

    @property
    def tags(self) -> dict[str, int]:
        """Tag -> the config's batches at that tag."""
        return {tag: count_batches(files)[self.folder] for tag, files in self.tag_files.items()}

    def interrupted(self) -> dict[str, tuple[int, int]]:
        """Config folder -> (its batches on main, at its newest tag), for every config whose last release did not end.

        A release commits its batches, then the card, then tags: batches past
        every tag are a release that stopped before its tag.
        """
        tagged: Counter[str] = Counter()
        for files in self.tag_files.values():
            for folder, n in count_batches(files).items():
                tagged[folder] = max(tagged[folder], n)
        return {folder: (n, tagged[folder]) for folder, n in count_batches(self.files).items() if n > tagged[folder]}

    @property
    def name_widths(self) -> set[int]:
        """The digit counts of the batch numbers in the config's shard names."""
        return {len(shard[2]) for p in self.files if (shard := parse_shard_path(p)) and shard[:2] == (self.folder, "train")}


def count_batches(paths: object) -> Counter[str]:
    """Config folder ("" for default) -> its batches in a file listing: its highest ``train/batch_NNN``."""
    counts: Counter[str] = Counter()
    for path in paths:
        if (shard := parse_shard_path(str(path))) and shard[1] == "train":
            folder = shard[0]
            counts[folder] = max(counts[folder], int(shard[2]))
    return counts


def read_state(api: HfApi, repo_id: str, folder: str = "") -> RepoState:
    """The main branch's head, files (with their hashes) and tags of ``repo_id``, for the config in ``folder``."""
    try:
        info = with_retries(lambda: api.repo_info(repo_id, repo_type="dataset"), "reading the repo")
    except RepositoryNotFoundError:
        return RepoState(folder)
    state = RepoState(folder, head=info.sha, private=bool(info.private))
    # Paginated listings are retried by huggingface_hub itself (http_backoff).
    tree = api.list_repo_tree(repo_id, repo_type="dataset", recursive=True, revision=info.sha)
    for entry in tree:
        if isinstance(entry, RepoFile):
            state.files[entry.path] = entry.lfs.sha256 if entry.lfs else entry.blob_id
    refs = with_retries(lambda: api.list_repo_refs(repo_id, repo_type="dataset"), "listing tags")
    for tag in refs.tags:
        entries = [e for e in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True, revision=tag.target_commit)
                   if isinstance(e, RepoFile)]
        state.tag_files[tag.name] = [e.path for e in entries]
        state.tag_cards.update((tag.name, e.blob_id) for e in entries if e.path == "README.md")
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

    A commit is retried after a transient failure only once the head has been
    read again: if main still is ``parent`` the commit did not land and is
    sent again; if main holds exactly these files, it landed and only its
    answer was lost; anything else is another writer.

    Raises:
        RepoChangedError: if main moved past ``parent``: another writer changed
            the repo, and nothing of this commit was applied.
    """
    operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(local)) for path, local in files]

    def landed() -> str | None:
        head = head_commit(api, repo_id)
        if head == parent:
            return None
        if _holds(api, repo_id, head, files):
            logger.info("commit %r had landed; its answer was lost", message)
            return head
        raise _changed(repo_id, parent)

    try:
        return with_retries(
            lambda: api.create_commit(repo_id, operations, commit_message=message, repo_type="dataset", parent_commit=parent).oid,
            f"commit {message!r}",
            recheck=landed,
        )
    except HfHubHTTPError as error:
        if status_of(error) in (409, 412):
            raise _changed(repo_id, parent) from error
        raise


def _changed(repo_id: str, parent: str | None) -> RepoChangedError:
    return RepoChangedError(
        f"{repo_id} changed while publishing (its main branch is no longer {parent}): another writer? "
        "Nothing was overwritten; check the repo, then rerun with --resume."
    )


def _holds(api: HfApi, repo_id: str, revision: str, files: list[tuple[str, Path]]) -> bool:
    """Whether ``revision`` holds each of ``files`` with the same content (LFS sha256 or git blob id)."""
    entries = api.get_paths_info(repo_id, [path for path, _ in files], revision=revision, repo_type="dataset")
    remote = {entry.path: entry for entry in entries if isinstance(entry, RepoFile)}
    for path, local in files:
        entry = remote.get(path)
        if entry is None:
            return False
        same = entry.lfs.sha256 == file_sha256(local) if entry.lfs else entry.blob_id == git_hash(local.read_bytes())
        if not same:
            return False
    return True


def download(api: HfApi, repo_id: str, path: str, revision: str | None, local_dir: Path | None = None) -> str:
    """Download ``path`` at ``revision`` into the Hub cache, or into ``local_dir``; return its local path."""
    return with_retries(
        lambda: api.hf_hub_download(repo_id, path, repo_type="dataset", revision=revision, local_dir=local_dir),
        f"reading {path}",
    )


def create_tag(api: HfApi, repo_id: str, tag: str, revision: str) -> None:
    """Tag ``revision``; a retry that finds the tag already there, on ``revision``, is a success."""
    try:
        with_retries(
            lambda: api.create_tag(repo_id, tag=tag, revision=revision, repo_type="dataset", tag_message=f"Release {tag}"),
            f"tagging {tag}",
        )
    except HfHubHTTPError as error:
        if status_of(error) != 409:
            raise
        tags = {ref.name: ref.target_commit for ref in with_retries(lambda: api.list_repo_refs(repo_id, repo_type="dataset"), "listing tags").tags}
        if tags.get(tag) != revision:
            raise PublishError(f"tag {tag!r} appeared on {repo_id} while publishing: another writer? choose another --tag") from error
