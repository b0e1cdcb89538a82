# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: the local Hub-compatible server and clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub_server import HubServer, client_env, configure_client_env

#: The builder tests run on both replay paths: python-chess and the native reader.
pytest_plugins = ["native_paths"]

TOKEN = "hf_test_write_token"
USER = "user"


@pytest.fixture(scope="session")
def hub_server() -> Iterator[HubServer]:
    server = HubServer(tokens={TOKEN: USER})
    server.start()
    yield server
    server.stop()


@dataclass
class Hub:
    """The running server, and the environment a client process needs to reach it."""

    server: HubServer
    home: Path

    @property
    def url(self) -> str:
        return self.server.url

    def env(self, token: str | None = TOKEN) -> dict[str, str]:
        """Environment of a fresh client process (own caches, HF_ENDPOINT set before import)."""
        return client_env(self.url, self.home, token)


@pytest.fixture
def hub(hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """The server, with this process's huggingface_hub and datasets pointed at it."""
    home = tmp_path / "hf"
    configure_client_env(monkeypatch, hub_server.url, home, TOKEN)
    return Hub(hub_server, home)
