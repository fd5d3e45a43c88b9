"""Every example workflow in ``workflows/`` must load in ComfyUI as shipped.

Checked without a ComfyUI checkout: structure, widgets and links against the core 0.3.64 definitions plus the
pack's own; provenance (``cnr_id``/``ver``) so ComfyUI-Manager can offer to install the pack; and the
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
    core = wv.load_core_defs()
    pack = wv.pack_defs()
    return {"core": core, "pack": pack, "all": {**pack, **core}}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_workflow_folder_has_examples():
    assert len(WORKFLOW_FILES) >= 2, f"expected at least 2 example workflows in {WORKFLOW_DIR}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.name for p in WORKFLOW_FILES])
def test_workflow_is_valid(path, defs):
    assert wv.validate_workflow(_load(path), defs["all"]) == []


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
