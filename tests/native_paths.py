# SPDX-License-Identifier: GPL-3.0-or-later
"""Run chosen test modules on both replay paths: python-chess and the native reader.

Load it from ``tests/conftest.py`` with ``pytest_plugins = ["native_paths"]``.
Every test of a module named in :data:`BOTH_PATHS` then runs once per path,
with ``CHESSPOS_NATIVE`` set for the module's run on that path (pytest groups
the tests by path). A module-scoped fixture that runs the pipeline must take
the ``replay_path`` fixture as an argument: pytest then builds it once per
path, where it would otherwise keep the first path's result for both.
Without the native binding installed, only the python-chess run is left.
Other modules are not touched.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chesspos_positions import native

#: Modules whose tests go through the batch pipeline (encode_unit), where the
#: two paths differ. test_games goes through extract_board, which always
#: replays with python-chess, so running it twice would only cost time.
BOTH_PATHS = frozenset({"test_builder"})

_SETTINGS = {"python-chess": "0", "native": "1"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ in BOTH_PATHS and "replay_path" in metafunc.fixturenames:
        paths = ["python-chess", "native"] if native.AVAILABLE else ["python-chess"]
        metafunc.parametrize("replay_path", paths, indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def replay_path(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The replay path of this module run (None: the environment decides)."""
    path = getattr(request, "param", None)
    if path is None:
        yield None
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHESSPOS_NATIVE", _SETTINGS[path])
        yield path
