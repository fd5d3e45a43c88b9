"""Importing the pack must stay cheap: ComfyUI imports every custom node pack at start-up.

Each check runs in a fresh interpreter, so modules imported by other tests cannot hide (or fake) a heavy import.
The pack is imported both as the installed ``ltx2_anywhere`` package and as ComfyUI's ``load_custom_node`` loads
it: the folder's ``__init__.py`` under a module name made from its path, where only relative imports work.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY_MODULES = ("diffusers", "transformers", "peft", "av")

PROBE = textwrap.dedent(
    """
    import importlib, importlib.util, json, os, sys, time

    mode, root = sys.argv[1], sys.argv[2]
    started = time.perf_counter()
    if mode == "package":
        module = importlib.import_module("ltx2_anywhere")
    else:
        # nodes.py load_custom_node: the module is named after the folder's path with dots replaced, so it is
        # never a dotted name (a dotted one would also make CPython import its invented top-level parent).
        name = root.replace(".", "_x_")
        spec = importlib.util.spec_from_file_location(name, os.path.join(root, "__init__.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    # As ComfyUI does right after the import: the mappings (which load the node modules) and the web folder.
    mappings = getattr(module, "NODE_CLASS_MAPPINGS", None), getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None)
    elapsed = time.perf_counter() - started
    web = getattr(module, "WEB_DIRECTORY", None)
    print(json.dumps({
        "seconds": elapsed,
        "modules": sorted(sys.modules),
        "has_class_mappings": isinstance(mappings[0], dict),
        "has_display_names": isinstance(mappings[1], dict),
        "web_directory": web,
        "web_directory_exists": isinstance(web, str)
        and os.path.isdir(os.path.join(os.path.dirname(module.__file__), web)),
    }))
    """
)


MODES = ("package", "comfyui_folder")


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict:
    """One fresh-interpreter import per mode, run from an empty folder so the working directory cannot make a
    missing import succeed."""
    empty = tmp_path_factory.mktemp("cwd")
    out = {}
    for mode in MODES:
        result = subprocess.run(
            [sys.executable, "-c", PROBE, mode, str(ROOT)],
            cwd=empty,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"importing the pack ({mode}) failed:\n{result.stderr}"
        out[mode] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("mode", MODES)
def test_import_is_light(mode, reports, record_property):
    report = reports[mode]
    modules = report["modules"]
    torch_imported = "torch" in modules
    record_property("torch_imported", torch_imported)
    record_property("import_seconds", round(report["seconds"], 3))
    print(f"{mode}: import took {report['seconds']:.3f}s; torch imported: {torch_imported}")
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY_MODULES)
    assert heavy == [], f"importing the pack pulled in heavy modules: {heavy}"


@pytest.mark.parametrize("mode", MODES)
def test_exports(mode, reports):
    report = reports[mode]
    assert report["has_class_mappings"], "NODE_CLASS_MAPPINGS must be a dict"
    assert report["has_display_names"], "NODE_DISPLAY_NAME_MAPPINGS must be a dict"
    assert report["web_directory_exists"], f"WEB_DIRECTORY {report['web_directory']!r} is not an existing folder"


def test_folder_import_uses_only_relative_imports(reports):
    """In ComfyUI the pack is not installed: an absolute ``ltx2_anywhere`` import works here but fails there."""
    modules = reports["comfyui_folder"]["modules"]
    assert [m for m in modules if m.split(".")[0] == "ltx2_anywhere"] == []


def test_the_command_line_starts_without_the_nodes(tmp_path):
    """`ltx2-anywhere` imports the package, then its cli module: neither loads the node modules (ComfyUI's door, the
    routes), so start-up stays short and a Ctrl-C during it ends cleanly in the command's own handler."""
    probe = "import sys, ltx2_anywhere.cli; print(sorted(m for m in sys.modules if m.startswith('ltx2_anywhere')))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=True)
    loaded = eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 - our own probe's repr of a list of names
    assert set(loaded) <= {"ltx2_anywhere", "ltx2_anywhere.cli", "ltx2_anywhere.pipelines",
                           "ltx2_anywhere.pipelines.errors"}, loaded
