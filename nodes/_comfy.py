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
from pathlib import Path, PureWindowsPath
from typing import Any, Callable


def _comfy_module(name: str):
    """A ComfyUI module, or None outside ComfyUI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class _FallbackInterrupt(Exception):
    """Raised on Cancel when ComfyUI is absent; the same role as ComfyUI's InterruptProcessingException."""


_interrupt_flag = threading.Event()
_settings = {"models_dir": None, "output_dir": None, "previews": False, "user_dir": None, "status": None}


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
              previews: bool | None = None, user_dir: str | os.PathLike | None = None,
              status: Callable[[str], None] | None = None) -> None:
    """Settings used when ComfyUI is absent (the command line and tests)."""
    if user_dir is not None:
        _settings["user_dir"] = Path(user_dir)
    if status is not None:
        _settings["status"] = status
    if models_dir is not None:
        _settings["models_dir"] = Path(models_dir)
    if output_dir is not None:
        _settings["output_dir"] = Path(output_dir)
    if previews is not None:
        _settings["previews"] = bool(previews)


def _fallback_models_dir() -> Path:
    return Path(_settings["models_dir"] or os.environ.get("LTX2_ANYWHERE_MODELS_DIR") or "models")


PACK_MODEL_FOLDERS = ("latent_upscale_models",)  # core keys newer than the oldest ComfyUI the pack supports


def ensure_model_folders() -> None:
    """Register model folder keys an older ComfyUI lacks (0.3.64 has no latent_upscale_models), appending so any
    extra_model_paths.yaml entries survive, and give them ComfyUI's model file extensions."""
    fp = _comfy_module("folder_paths")
    if fp is None:
        return
    for key in PACK_MODEL_FOLDERS:
        if key not in fp.folder_names_and_paths:
            fp.add_model_folder_path(key, os.path.join(fp.models_dir, key))
        paths, extensions = fp.folder_names_and_paths[key]
        if not extensions:
            fp.folder_names_and_paths[key] = (paths, set(fp.supported_pt_extensions))


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


def folder_model_type(key: str, name: str) -> str:
    """The `model_type` in a listed transformers folder's config.json ("" when it has none or cannot be read)."""
    import json

    from ..pipelines.errors import L2AError

    try:
        config = json.loads((resolve_path(key, name) / "config.json").read_text())
    except (OSError, ValueError, L2AError):
        return ""
    return str(config.get("model_type") or "") if isinstance(config, dict) else ""


def resolve_path(key: str, name: str) -> Path:
    """A model file or folder by its listed name; absolute paths are taken as they are. A missing one is an
    L2AError naming the folders searched."""
    if os.path.isabs(name):
        return Path(name)
    for root in folder_paths_for(key):
        candidate = root / name
        if candidate.exists():
            return candidate
    from ..pipelines.errors import L2AError

    roots = ", ".join(str(r) for r in folder_paths_for(key)) or f"models/{key}"
    raise L2AError(f"'{name}' was not found in the '{key}' model folder ({roots}): put the file there.")


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


def preferred_offload() -> str:
    """The offload ComfyUI's own memory flags ask for: --novram -> sequential, --lowvram -> group, else none."""
    mm = _comfy_module("comfy.model_management")
    state = getattr(getattr(mm, "vram_state", None), "name", "")
    return {"NO_VRAM": "sequential", "LOW_VRAM": "group"}.get(state, "none")


def register_unload_hook() -> bool:
    """When ComfyUI unloads its models (the Unload Models button, /free, or before it loads a big one), release
    ours to system memory too: our diffusers models are not ComfyUI ModelPatchers, so it cannot do it itself."""
    mm = _comfy_module("comfy.model_management")
    if mm is None or getattr(mm.unload_all_models, "l2a_wrapped", False):
        return False
    original = mm.unload_all_models

    def unload_all_models(*args, **kwargs):
        from ..pipelines.memory import release_all

        result = original(*args, **kwargs)
        release_all()
        return result

    unload_all_models.l2a_wrapped = True
    mm.unload_all_models = unload_all_models
    return True


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


def step_progress(node_id: str | None = None):
    """An on_step callback for the pipelines: a fresh progress bar whenever a run (or a part of one) restarts at
    step 1, so multi-part jobs show each part's progress."""
    current = {}

    def on_step(step, total, _preview=None):
        if "bar" not in current or step == 1 or current["bar"].total != total:
            current["bar"] = Progress(total, node_id)
        current["bar"].update(step)

    return on_step


def send_status(text: str, node_id: str | None = None) -> None:
    """Status text under a node (hosted jobs: state, queue position, elapsed, cost); printed outside ComfyUI."""
    from ..pipelines.hosted.keys import redact

    text = redact(text)
    server = _comfy_module("server")
    instance = getattr(getattr(server, "PromptServer", None), "instance", None)
    if instance is not None and hasattr(instance, "send_progress_text"):
        instance.send_progress_text(text, node_id)
    elif _settings["status"] is not None:
        _settings["status"](text)


def user_directory() -> Path:
    """Where the API keys file lives: ComfyUI's user directory (outside graphs and git)."""
    fp = _comfy_module("folder_paths")
    if fp is not None and hasattr(fp, "get_user_directory"):
        return Path(fp.get_user_directory())
    return Path(_settings["user_dir"] or Path.home() / ".config" / "ltx2-anywhere")


def temp_directory() -> Path:
    fp = _comfy_module("folder_paths")
    if fp is not None:
        return Path(fp.get_temp_directory())
    return output_directory() / ".temp"


def register_key_routes() -> bool:
    """POST /ltx2_anywhere/keys stores a provider key server-side; GET says which are set. No key ever goes back."""
    server = _comfy_module("server")
    instance = getattr(getattr(server, "PromptServer", None), "instance", None)
    if instance is None:
        return False
    from aiohttp import web

    from ..pipelines.hosted import keys

    @instance.routes.get("/ltx2_anywhere/keys")
    async def key_status(_request):
        return web.json_response(keys.key_status(user_directory()))

    @instance.routes.post("/ltx2_anywhere/keys")
    async def store_key(request):
        body = await request.json()
        provider, key = str(body.get("provider", "")), str(body.get("key", ""))
        if provider not in keys.KEY_ENVS or not key.strip():
            return web.json_response({"error": f"give a provider ({', '.join(keys.KEY_ENVS)}) and a key"},
                                     status=400)
        keys.save_key(provider, key.strip(), user_directory())
        return web.json_response(keys.key_status(user_directory()))

    return True


def register_price_route() -> bool:
    """GET /ltx2_anywhere/prices: the one price table (pipelines/hosted/prices.json) for the web cost badge, plus
    `defaults` ({provider: {mode: endpoint}}, what endpoint `auto` picks, from the provider classes) and `key_envs`
    (each provider's key variable, for the key status). No-op outside ComfyUI."""
    server = _comfy_module("server")
    instance = getattr(getattr(server, "PromptServer", None), "instance", None)
    if instance is None:
        return False
    import sys

    from aiohttp import web

    from ..pipelines.hosted import keys, pricing

    def default_endpoints() -> dict:
        # Each provider's own choice for endpoint=None: its module's DEFAULT_ENDPOINTS, else its first endpoint
        # for the mode (tests/test_web_extension.py checks this against the providers' prepare()).
        from ..pipelines.hosted import PROVIDER_CLASSES, provider_class

        found = {}
        for name in PROVIDER_CLASSES:
            cls = provider_class(name)
            chosen = getattr(sys.modules[cls.__module__], "DEFAULT_ENDPOINTS", {})
            found[name] = {mode: chosen.get(mode) or next((e for e, m in cls.ENDPOINTS.items() if m == mode), None)
                           for mode in cls.modes}
        return found

    @instance.routes.get("/ltx2_anywhere/prices")
    async def prices(_request):
        return web.json_response({**pricing.price_table(), "defaults": default_endpoints(),
                                  "key_envs": dict(keys.KEY_ENVS)})

    return True


def _check_prefix(filename_prefix: str) -> str:
    """A filename prefix that stays inside the output folder: relative, no '..', not empty."""
    from ..pipelines.errors import L2AError

    text = str(filename_prefix).strip()
    parts = text.replace("\\", "/").split("/")
    if not text or not parts[-1].strip():
        raise L2AError(f"filename_prefix = {filename_prefix!r} names no file: give a name such as LTX-2/video.")
    drive = os.name == "nt" and bool(PureWindowsPath(text).drive)
    if os.path.isabs(text) or text.startswith(("/", "\\")) or drive or ".." in parts:
        raise L2AError(f"filename_prefix = {filename_prefix!r} leaves the output folder: use a name inside it, such "
                       "as LTX-2/video (sub-folders are fine; absolute paths and '..' are not).")
    return text


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` (resolved, symlinks followed) lies in `folder`."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True


def save_path(filename_prefix: str, width: int, height: int, suffix: str) -> tuple[Path, str, str]:
    """The next free output path for a prefix, as ComfyUI numbers its outputs: (path, filename, subfolder). A prefix
    that would leave the output folder ('..', an absolute path, a symlinked sub-folder pointing out) is refused."""
    from ..pipelines.errors import L2AError
    from ..pipelines.outputs import make_folder

    filename_prefix = _check_prefix(filename_prefix)
    out_dir = output_directory()
    fp = _comfy_module("folder_paths")
    if fp is not None:
        try:
            folder, filename, counter, subfolder, _ = fp.get_save_image_path(filename_prefix, str(out_dir), width,
                                                                             height)
        except Exception as error:  # ComfyUI raises a bare Exception for a path outside the output folder
            raise L2AError(f"filename_prefix = {filename_prefix!r} cannot be used: {error}") from error
        name = f"{filename}_{counter:05}_.{suffix}"
        path = Path(folder) / name
    else:
        prefix_path = Path(filename_prefix)
        subfolder = prefix_path.parent.as_posix() if str(prefix_path.parent) != "." else ""
        folder = out_dir / subfolder
        if not _inside(folder, out_dir):
            raise L2AError(f"filename_prefix = {filename_prefix!r} leads outside the output folder {out_dir} (through "
                           "a link): use a name inside it.")
        make_folder(folder)
        counter = 1
        while (folder / f"{prefix_path.name}_{counter:05}_.{suffix}").exists():
            counter += 1
        name = f"{prefix_path.name}_{counter:05}_.{suffix}"
        path = folder / name
    if not _inside(path.parent, out_dir):
        raise L2AError(f"filename_prefix = {filename_prefix!r} leads outside the output folder {out_dir}: use a name "
                       "inside it.")
    return path, name, subfolder


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
