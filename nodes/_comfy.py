"""The single door to ComfyUI, with plain fallbacks when ComfyUI is absent (tests, the command line).

Everything ComfyUI-specific the nodes need goes through here: model folders, the output folder, the progress bar
(every update is also ComfyUI's interrupt check), latent previews, status text, the native VIDEO type and memory
hooks. ComfyUI modules are imported lazily, on first use.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _comfy_module(name: str):
    """A ComfyUI module, or None outside ComfyUI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class _FallbackInterrupt(Exception):
    """Raised on Cancel when ComfyUI is absent; the same role as ComfyUI's InterruptProcessingException."""


_interrupt_flag = threading.Event()
_settings = {"models_dir": None, "output_dir": None, "previews": False}


def interrupt_exception() -> type[BaseException]:
    mm = _comfy_module("comfy.model_management")
    return mm.InterruptProcessingException if mm is not None else _FallbackInterrupt


def request_interrupt() -> None:
    """Ask the running generation to stop (what ComfyUI's Cancel button does)."""
    mm = _comfy_module("comfy.model_management")
    if mm is not None:
        mm.interrupt_current_processing(True)
    else:
        _interrupt_flag.set()


def throw_if_interrupted() -> None:
    mm = _comfy_module("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()
    elif _interrupt_flag.is_set():
        _interrupt_flag.clear()
        raise _FallbackInterrupt("Processing interrupted")


def configure(models_dir: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None,
              previews: bool | None = None) -> None:
    """Settings used when ComfyUI is absent (the command line and tests)."""
    if models_dir is not None:
        _settings["models_dir"] = Path(models_dir)
    if output_dir is not None:
        _settings["output_dir"] = Path(output_dir)
    if previews is not None:
        _settings["previews"] = bool(previews)


def _fallback_models_dir() -> Path:
    return Path(_settings["models_dir"] or os.environ.get("LTX2_ANYWHERE_MODELS_DIR") or "models")


def folder_paths_for(key: str) -> list[Path]:
    fp = _comfy_module("folder_paths")
    if fp is not None:
        try:
            return [Path(p) for p in fp.get_folder_paths(key)]
        except KeyError:
            return []
    return [_fallback_models_dir() / key]


def list_files(key: str, suffixes: tuple[str, ...] = ()) -> list[str]:
    """Files under a model folder key (relative names, as ComfyUI lists them)."""
    fp = _comfy_module("folder_paths")
    if fp is not None:
        try:
            names = fp.get_filename_list(key)
        except KeyError:
            names = []
    else:
        names = []
        for root in folder_paths_for(key):
            for dirpath, _dirs, files in os.walk(root, followlinks=True):
                names += [(Path(dirpath) / f).relative_to(root).as_posix() for f in files]
    return sorted(n for n in names if not suffixes or n.lower().endswith(suffixes))


def list_model_dirs(key: str, marker: str) -> list[str]:
    """Sub-folders of a model folder key that contain `marker` (e.g. config.json, model_index.json).

    Symlinked folders are followed, as ComfyUI's own listing does (`Path.rglob` skips them before Python 3.13).
    """
    found = []
    for root in folder_paths_for(key):
        if root.is_dir():
            for dirpath, _dirs, files in os.walk(root, followlinks=True):
                if marker in files:
                    found.append(Path(dirpath).relative_to(root).as_posix())
    return sorted(set(found))


def resolve_path(key: str, name: str) -> Path:
    """A model file or folder by its listed name; absolute paths are taken as they are."""
    if os.path.isabs(name):
        return Path(name)
    for root in folder_paths_for(key):
        candidate = root / name
        if candidate.exists():
            return candidate
    roots = ", ".join(str(r) for r in folder_paths_for(key)) or f"models/{key}"
    raise FileNotFoundError(f"'{name}' was not found in the '{key}' model folder ({roots}): put the file there.")


def output_directory() -> Path:
    fp = _comfy_module("folder_paths")
    if fp is not None:
        return Path(fp.get_output_directory())
    return Path(_settings["output_dir"] or "output")


def torch_device():
    mm = _comfy_module("comfy.model_management")
    if mm is not None:
        return mm.get_torch_device()
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def free_comfy_memory() -> None:
    """Ask ComfyUI to unload its own models before we load a multi-GB diffusers model."""
    mm = _comfy_module("comfy.model_management")
    if mm is not None:
        mm.unload_all_models()
        mm.soft_empty_cache()


def previews_enabled() -> bool:
    """Whether ComfyUI's --preview-method asks for latent previews."""
    args = getattr(_comfy_module("comfy.cli_args"), "args", None)
    if args is None:
        return bool(_settings["previews"])
    method = getattr(args, "preview_method", None)
    return str(getattr(method, "value", method)) not in ("none", "None")


class Progress:
    """ComfyUI's progress bar for one node (each update is also an interrupt check), or a plain counter."""

    def __init__(self, total: int, node_id: str | None = None):
        utils = _comfy_module("comfy.utils")
        self.total = total
        self.value = 0
        self.previews: list = []
        self._bar = utils.ProgressBar(total, node_id=node_id) if utils is not None else None

    def update(self, value: int, preview_image=None) -> None:
        """Advance to `value`; `preview_image` is a PIL image or None."""
        self.value = value
        preview = ("JPEG", preview_image, 512) if preview_image is not None else None
        if self._bar is not None:
            self._bar.update_absolute(value, self.total, preview)
        else:
            if preview_image is not None:
                self.previews.append(preview_image)
            throw_if_interrupted()


def save_path(filename_prefix: str, width: int, height: int, suffix: str) -> tuple[Path, str, str]:
    """The next free output path for a prefix, as ComfyUI numbers its outputs: (path, filename, subfolder)."""
    out_dir = output_directory()
    fp = _comfy_module("folder_paths")
    if fp is not None:
        folder, filename, counter, subfolder, _ = fp.get_save_image_path(filename_prefix, str(out_dir), width, height)
        name = f"{filename}_{counter:05}_.{suffix}"
        return Path(folder) / name, name, subfolder
    prefix_path = Path(filename_prefix)
    subfolder = prefix_path.parent.as_posix() if str(prefix_path.parent) != "." else ""
    folder = out_dir / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    counter = 1
    while (folder / f"{prefix_path.name}_{counter:05}_.{suffix}").exists():
        counter += 1
    name = f"{prefix_path.name}_{counter:05}_.{suffix}"
    return folder / name, name, subfolder


@dataclass
class VideoParts:
    """The parts of a video, with the attribute names of ComfyUI's VideoComponents."""

    images: Any
    frame_rate: Any
    audio: Any = None


class VideoFile:
    """A saved video when ComfyUI's own VIDEO type is unavailable: the path, and its parts on demand."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def get_stream_source(self) -> str:
        return str(self.path)

    def get_components(self) -> VideoParts:
        from ..pipelines.media import read_video

        return VideoParts(*read_video(self.path))


def video_from_file(path: str | os.PathLike):
    """ComfyUI's native VIDEO for a file where ComfyUI provides one, so core video nodes accept it."""
    for module_name in ("comfy_api.latest", "comfy_api.input_impl"):
        module = _comfy_module(module_name)
        impl = getattr(module, "InputImpl", module) if module is not None else None
        if impl is not None and hasattr(impl, "VideoFromFile"):
            return impl.VideoFromFile(str(path))
    return VideoFile(path)
