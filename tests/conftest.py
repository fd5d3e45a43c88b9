"""Shared test setup: the tiny model's cache goes to a temporary folder, never the user's cache."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def tiny_cache(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("l2a-cache")
    monkeypatch.setenv("LTX2_ANYWHERE_CACHE", str(path))
    yield path
    monkeypatch.undo()

