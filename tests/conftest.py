"""Shared test setup: the tiny model's cache goes to a temporary folder, and the tiny models folders are written
once per session (read only; each test module loads its own model from them, as modules load LoRAs into theirs).

`tiny_models` is the tiny LTX-2 19B stand-in (family 2.0), `tiny_models_23` the tiny LTX-2.3 one, `tiny_models_25` the
tiny LTX-2.5 one (its split release), each under its family's official file names; `family_models` runs a test on
each."""

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


def _write(tmp_path_factory, name: str) -> SimpleNamespace:
    root = tmp_path_factory.mktemp(f"tiny-models-{name}")
    written = tiny.write_models_dir(root, name)
    return SimpleNamespace(root=root, written=written, family=tiny.tiny_family(name), **written)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """The tiny 2.0 model in a ComfyUI models layout: `.root`, `.family` and one attribute per written file."""
    return _write(tmp_path_factory, "2.0")


@pytest.fixture(scope="session")
def tiny_models_23(tmp_path_factory):
    """The tiny 2.3 model in a ComfyUI models layout, as `tiny_models`."""
    return _write(tmp_path_factory, "2.3")


@pytest.fixture(scope="session")
def tiny_models_25(tmp_path_factory):
    """The tiny 2.5 model in a ComfyUI models layout (transformers, VAE files, the Gemma 4 encoder file, ...)."""
    return _write(tmp_path_factory, "2.5")


@pytest.fixture(scope="session")
def tiny_models_20_25(tmp_path_factory, tiny_models, tiny_models_25):
    """One models folder holding the tiny 2.0 and 2.5 sets (links to their files; the names never collide), as a
    user with both families has it: what the example workflows of both run on."""
    root = tmp_path_factory.mktemp("tiny-models-2.0-2.5")
    for source in (tiny_models.root, tiny_models_25.root):
        for folder in source.iterdir():
            for entry in folder.iterdir():
                (root / folder.name).mkdir(exist_ok=True)
                (root / folder.name / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return root


FAMILY_FIXTURES = {"2.0": "tiny_models", "2.3": "tiny_models_23", "2.5": "tiny_models_25"}


@pytest.fixture(scope="session", params=list(FAMILY_FIXTURES))
def family_models(request):
    """Each tiny family's models folder in turn."""
    return request.getfixturevalue(FAMILY_FIXTURES[request.param])


@pytest.fixture(scope="module")
def tiny_model(tiny_models):
    return load_model(tiny_models.checkpoint_dev, dtype="fp32")


@pytest.fixture(scope="module")
def tiny_encoder(tiny_models):
    return load_text_encoder(tiny_models.text_encoder, dtype="fp32")
