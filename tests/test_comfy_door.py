"""nodes/_comfy.py against a stand-in of ComfyUI's folder_paths module (the 0.3.64 API)."""

import sys
import types

from ltx2_anywhere.nodes import _comfy


def stand_in_folder_paths(tmp_path):
    module = types.ModuleType("folder_paths")
    module.models_dir = str(tmp_path)
    module.supported_pt_extensions = {".safetensors", ".ckpt"}
    module.folder_names_and_paths = {"checkpoints": ([str(tmp_path / "checkpoints")], module.supported_pt_extensions)}

    def add_model_folder_path(key, path, is_default=False):
        if key in module.folder_names_and_paths:
            module.folder_names_and_paths[key][0].append(path)
        else:
            module.folder_names_and_paths[key] = ([path], set())

    def get_folder_paths(key):
        return module.folder_names_and_paths[key][0]

    def get_filename_list(key):
        paths, extensions = module.folder_names_and_paths[key]
        return sorted(p.name for root in paths for p in __import__("pathlib").Path(root).glob("*")
                      if p.suffix in extensions)

    module.add_model_folder_path = add_model_folder_path
    module.get_folder_paths = get_folder_paths
    module.get_filename_list = get_filename_list
    return module


def test_missing_latent_upscale_models_key_is_registered(tmp_path, monkeypatch):
    module = stand_in_folder_paths(tmp_path)
    monkeypatch.setitem(sys.modules, "folder_paths", module)
    (tmp_path / "latent_upscale_models").mkdir()
    (tmp_path / "latent_upscale_models" / "ltx-2-spatial-upscaler-x2-1.0.safetensors").write_bytes(b"x")
    _comfy.ensure_model_folders()
    assert _comfy.list_files("latent_upscale_models") == ["ltx-2-spatial-upscaler-x2-1.0.safetensors"]
    assert _comfy.resolve_path("latent_upscale_models", "ltx-2-spatial-upscaler-x2-1.0.safetensors").exists()


def test_existing_key_from_a_yaml_keeps_its_paths(tmp_path, monkeypatch):
    module = stand_in_folder_paths(tmp_path)
    module.folder_names_and_paths["latent_upscale_models"] = (["/elsewhere/upscalers"], set())
    monkeypatch.setitem(sys.modules, "folder_paths", module)
    _comfy.ensure_model_folders()
    paths, extensions = module.folder_names_and_paths["latent_upscale_models"]
    assert paths == ["/elsewhere/upscalers"] and ".safetensors" in extensions


def test_comfy_unload_releases_our_models_too(monkeypatch):
    from ltx2_anywhere.pipelines import memory

    module = types.ModuleType("comfy.model_management")
    calls = []
    module.unload_all_models = lambda: calls.append("comfy")
    monkeypatch.setitem(sys.modules, "comfy", types.ModuleType("comfy"))
    monkeypatch.setitem(sys.modules, "comfy.model_management", module)
    monkeypatch.setattr(memory, "release_all", lambda: calls.append("ours") or 0)
    assert _comfy.register_unload_hook() is True
    assert _comfy.register_unload_hook() is False
    module.unload_all_models()
    assert calls == ["comfy", "ours"]


def test_offload_follows_comfy_memory_flags(monkeypatch):
    module = types.ModuleType("comfy.model_management")
    monkeypatch.setitem(sys.modules, "comfy", types.ModuleType("comfy"))
    monkeypatch.setitem(sys.modules, "comfy.model_management", module)
    for state, expected in (("LOW_VRAM", "group"), ("NO_VRAM", "sequential"), ("NORMAL_VRAM", "none")):
        module.vram_state = types.SimpleNamespace(name=state)
        assert _comfy.preferred_offload() == expected
