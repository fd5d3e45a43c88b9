"""Shared test setup: the tiny model's cache goes to a temporary folder, and the tiny models folder is written
once per session (read only; each test module loads its own model from it, as modules load LoRAs into theirs)."""

from types import SimpleNamespace

import pytest

from ltx2_anywhere.pipelines import tiny
from ltx2_anywhere.pipelines.loading import load_model, load_text_encoder


@pytest.fixture(scope="session", autouse=True)
def tiny_cache(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("l2a-cache")
    monkeypatch.setenv("LTX2_ANYWHERE_CACHE", str(path))
    yield path
    monkeypatch.undo()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """The tiny model in a ComfyUI models layout: `.root` and one attribute per written file (`.written` too)."""
    root = tmp_path_factory.mktemp("tiny-models")
    written = tiny.write_models_dir(root)
    return SimpleNamespace(root=root, written=written, **written)


@pytest.fixture(scope="module")
def tiny_model(tiny_models):
    return load_model(tiny_models.checkpoint_dev, dtype="fp32")


@pytest.fixture(scope="module")
def tiny_encoder(tiny_models):
    return load_text_encoder(tiny_models.text_encoder, dtype="fp32")
