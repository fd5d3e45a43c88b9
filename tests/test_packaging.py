"""Packaging rules that ComfyUI, ComfyUI-Manager and the Comfy registry rely on.

Manager installs ``requirements.txt`` (never pyproject's dependencies), so the two must agree and neither may
name torch; the registry reads ``[project]`` and ``[tool.comfy]``; ComfyUI silently drops a custom node whose id
collides with a core node. The node checks loop over whatever nodes exist, so they pass while there are none.
"""

import importlib
import json
import re
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
# Every core node id of stock ComfyUI 0.3.64 and 0.33.0 (tests/data/README.md).
CORE_DATA_FILES = sorted((ROOT / "tests" / "data").glob("object_info-core-*.json"))
TORCH_PACKAGES = {"torch", "torchvision", "torchaudio", "torchsde"}
# Semantic Versioning 2.0.0 (the registry takes X.Y.Z with optional pre-release/build parts).
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def _requirements_txt() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def _canonical(requirements) -> list[str]:
    return sorted(str(Requirement(r)) for r in requirements)


def _nodes():
    pack = importlib.import_module("ltx2_anywhere")
    return pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS


def test_requirements_txt_matches_pyproject_dependencies():
    lines = _requirements_txt()
    options = [line for line in lines if line.startswith("-") or "://" in line]
    assert options == [], "Manager v4 rejects -r/-e/-c/--find-links/URL lines in requirements.txt"
    assert _canonical(lines) == _canonical(PROJECT["dependencies"])


def test_no_torch_anywhere():
    for source, requirements in (("requirements.txt", _requirements_txt()), ("pyproject", PROJECT["dependencies"])):
        names = {Requirement(r).name.lower() for r in requirements}
        assert names.isdisjoint(TORCH_PACKAGES), f"{source} names {names & TORCH_PACKAGES}: ComfyUI owns torch"


def test_frontend_pin_stays_out_of_requirements():
    names = {Requirement(r).name.lower() for r in _requirements_txt()}
    assert "comfyui-frontend-package" not in names


def test_tool_comfy_has_registry_fields():
    comfy = PYPROJECT["tool"]["comfy"]
    for key in ("PublisherId", "DisplayName", "Icon"):
        assert isinstance(comfy.get(key), str) and comfy[key].strip(), f"[tool.comfy] {key} is missing or empty"
    assert comfy["Icon"].startswith("https://")


def test_project_name_is_a_valid_registry_id():
    name = PROJECT["name"]
    assert "comfyui" not in name.lower()
    assert len(name) < 100
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", name)
    assert not re.search(r"[._-]{2}", name), "registry ids allow no consecutive special characters"


def test_version_is_semver():
    assert SEMVER.match(PROJECT["version"]), PROJECT["version"]


def test_license_is_apache_2():
    assert PROJECT["license"] == {"file": "LICENSE"}
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0" in text


def test_pytest_uses_importlib_mode():
    addopts = PYPROJECT["tool"]["pytest"]["ini_options"]["addopts"]
    options = addopts.split() if isinstance(addopts, str) else list(addopts)
    assert "--import-mode=importlib" in options


def test_console_script_is_declared_and_importable():
    target = PROJECT["scripts"]["ltx2-anywhere"]
    module_name, _, attribute = target.partition(":")
    assert callable(getattr(importlib.import_module(module_name), attribute))


def test_node_ids_names_and_categories():
    classes, display_names = _nodes()
    problems = []
    for node_id, cls in classes.items():
        if not node_id.startswith("L2A_"):
            problems.append(f"{node_id}: node id must start with L2A_")
        display = display_names.get(node_id)
        if not isinstance(display, str) or not display.startswith("LTX-2"):
            problems.append(f"{node_id}: display name {display!r} must start with 'LTX-2'")
        category = getattr(cls, "CATEGORY", None)
        if not isinstance(category, str) or not category.startswith("LTX-2 Anywhere/"):
            problems.append(f"{node_id}: CATEGORY {category!r} must start with 'LTX-2 Anywhere/'")
    problems += [f"{node_id}: display name without a node" for node_id in display_names if node_id not in classes]
    assert problems == []


def test_no_node_id_collides_with_core():
    assert len(CORE_DATA_FILES) >= 2
    classes, _ = _nodes()
    for path in CORE_DATA_FILES:
        core = json.loads(path.read_text(encoding="utf-8"))["core_node_ids"]
        assert len(core) > 400
        assert sorted(set(classes) & set(core)) == [], f"ComfyUI drops a custom node whose id is a core id ({path.name})"


def test_every_node_is_documented():
    classes, _ = _nodes()
    problems = []
    for node_id, cls in classes.items():
        description = getattr(cls, "DESCRIPTION", None)
        if not isinstance(description, str) or not description.strip():
            problems.append(f"{node_id}: no DESCRIPTION")
        input_types = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, spec in (input_types.get(section) or {}).items():
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                tooltip = options.get("tooltip")
                if not isinstance(tooltip, str) or not tooltip.strip():
                    problems.append(f"{node_id}: input '{name}' has no tooltip")
    assert problems == []


def test_node_classes_are_complete():
    classes, _ = _nodes()
    problems = []
    for node_id, cls in classes.items():
        return_types = getattr(cls, "RETURN_TYPES", None)
        if not isinstance(return_types, tuple):
            problems.append(f"{node_id}: RETURN_TYPES must be a tuple")
            continue
        names = getattr(cls, "RETURN_NAMES", return_types)
        if len(names) != len(return_types):
            problems.append(f"{node_id}: RETURN_NAMES and RETURN_TYPES differ in length")
        if not callable(getattr(cls, getattr(cls, "FUNCTION", ""), None)):
            problems.append(f"{node_id}: FUNCTION does not name a method")
    assert problems == []


def test_registry_zip_leaves_out_development_folders():
    patterns = {
        line.strip() for line in (ROOT / ".comfyignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert {"tests/", ".ci/", "bench/"} <= patterns
