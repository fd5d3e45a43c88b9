"""Every example workflow in ``workflows/`` must load in ComfyUI as shipped.

Checked without a ComfyUI checkout: structure, widgets and links against the core definitions of ComfyUI 0.3.64 and
of 0.33.0 (tests/data) plus the pack's own, every core node used having its definition copied; provenance (``cnr_id``/``ver``) so ComfyUI-Manager can offer to install the pack; and the
``properties.models`` download entries of loader nodes, which the frontend uses to fetch missing model files.
"""

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = ROOT / "workflows"
WORKFLOW_FILES = sorted(WORKFLOW_DIR.glob("*.json"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
MODEL_URL = re.compile(r"^https://huggingface\.co/[^\s?#]+\.safetensors$")
# folder_paths keys a model entry may name as its download directory: ComfyUI's (0.3.64 and newer), plus
# latent_upscale_models, which newer ComfyUI has and the pack registers on older ones (nodes/_comfy.py).
MODEL_DIRECTORIES = frozenset({
    "checkpoints", "configs", "loras", "vae", "text_encoders", "clip", "diffusion_models", "unet", "clip_vision",
    "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "t2i_adapter", "gligen",
    "upscale_models", "latent_upscale_models", "hypernetworks", "photomaker", "classifiers", "model_patches",
    "audio_encoders",
})


def _load_validator():
    """Load the sibling module by path: pytest's importlib mode puts no test folder on sys.path."""
    name = "l2a_workflow_validator"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("workflow_validator.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


wv = _load_validator()


@pytest.fixture(scope="module")
def defs():
    pack = wv.pack_defs()
    by_version = {version: {**pack, **wv.load_core_defs(version)} for version in wv.CORE_VERSIONS}
    core = {node_type: node_def for version in wv.CORE_VERSIONS for node_type, node_def in
            wv.load_core_defs(version).items()}
    return {"core": core, "pack": pack, "all": by_version[wv.CORE_VERSIONS[0]], "versions": by_version}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_workflow_folder_has_examples():
    assert len(WORKFLOW_FILES) >= 2, f"expected at least 2 example workflows in {WORKFLOW_DIR}"


@pytest.mark.parametrize("version", wv.CORE_VERSIONS)
@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.name for p in WORKFLOW_FILES])
def test_workflow_is_valid(path, version, defs):
    assert wv.validate_workflow(_load(path), defs["versions"][version]) == []


@pytest.mark.parametrize("version", wv.CORE_VERSIONS)
def test_core_nodes_of_the_workflows_are_copied(version):
    """Every core node a shipped workflow uses has its definition in tests/data, or the message says where to copy
    it from (tests/data/README.md)."""
    used = {node.get("type") for path in WORKFLOW_FILES for node in _load(path)["nodes"]}
    assert wv.missing_core_definitions(used, version) == []
    unused = sorted(set(wv.load_core_defs(version)) - used)
    assert unused == [], f"tests/data holds definitions no shipped workflow uses, remove them: {unused}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.name for p in WORKFLOW_FILES])
def test_workflow_provenance(path, defs):
    problems = []
    for node in _load(path)["nodes"]:
        node_type = node.get("type")
        props = node.get("properties") or {}
        label = f"node {node.get('id')} ({node_type})"
        if node_type in defs["core"]:
            if props.get("cnr_id") != "comfy-core" or not props.get("ver"):
                problems.append(f"{label}: core node needs cnr_id 'comfy-core' and a ver, has {props}")
        elif node_type in defs["pack"]:
            expected = (PROJECT["name"], PROJECT["version"])
            if (props.get("cnr_id"), props.get("ver")) != expected:
                problems.append(f"{label}: pack node needs cnr_id/ver {expected}, "
                                f"has {(props.get('cnr_id'), props.get('ver'))}")
    assert problems == []


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.name for p in WORKFLOW_FILES])
def test_loader_nodes_list_their_models(path, defs):
    """A loader whose widget names a model file lists that file in ``properties.models`` with a Hugging Face URL
    and a folder key, so the frontend can offer the download. A widget naming a folder (a transformers directory
    such as Gemma 3) cannot be described that way and is exempt; entries that are present must still be valid."""
    problems = []
    for node in _load(path)["nodes"]:
        node_type = node.get("type")
        node_def = defs["all"].get(node_type)
        if node_def is None:
            continue
        label = f"node {node.get('id')} ({node_type})"
        values = wv.widget_values_by_name(node_type, node_def, node.get("widgets_values"))
        files = {
            name: values[name]
            for name in wv.model_file_inputs(node_type, node_def)
            if isinstance(values.get(name), str) and values[name].lower().endswith(wv.MODEL_EXTENSIONS)
        }
        models = (node.get("properties") or {}).get("models")
        if models is None and not files:
            continue
        if not isinstance(models, list) or (files and not models):
            problems.append(f"{label}: a loader node needs properties.models entries (name, url, directory)")
            continue
        for entry in models:
            if not isinstance(entry, dict):
                problems.append(f"{label}: model entry {entry!r} is not an object")
                continue
            if not entry.get("name"):
                problems.append(f"{label}: model entry {entry} has no name")
            if not MODEL_URL.match(str(entry.get("url", ""))):
                problems.append(f"{label}: model url {entry.get('url')!r} is not https://huggingface.co/...safetensors")
            if entry.get("directory") not in MODEL_DIRECTORIES:
                problems.append(f"{label}: model directory {entry.get('directory')!r} is not a ComfyUI folder key")
        listed = {entry.get("name") for entry in models if isinstance(entry, dict)}
        for name, value in files.items():
            if value not in listed:
                problems.append(f"{label}: widget '{name}' = {value!r} is not among properties.models names, "
                                "so the frontend cannot offer to download it")
    assert problems == []


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.name for p in WORKFLOW_FILES])
def test_workflow_id_is_a_uuid(path):
    """The frontend's schema wants a UUID here; anything else raises an 'Invalid workflow' alert on load."""
    import uuid

    workflow = json.loads(path.read_text(encoding="utf-8"))
    assert str(uuid.UUID(workflow["id"])) == workflow["id"]
