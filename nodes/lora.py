"""LoRA nodes: any LTX-2 LoRA, and the official camera-control LoRAs by preset.

Both return a copy of the model with the LoRA added to its chain; the model they receive is left unchanged, so
other branches of the graph keep the base model. The LoRA is checked against the model here, before sampling.
"""

from ..pipelines.errors import L2AError
from ..pipelines.families import CAMERA_PRESETS, FAMILIES
from . import _comfy
from .common import CATEGORY, MODEL

NO_FILE = FAMILIES["2.0"].distilled_lora.name  # what the widget shows while models/loras is empty


def _lora_file(name: str):
    """A LoRA by its listed name (or an absolute path); a case-insensitive match in any sub-folder also counts."""
    from ..pipelines.model_files import find_file

    try:
        return _comfy.resolve_path("loras", name)
    except L2AError:
        folders = _comfy.folder_paths_for("loras")
        found = find_file(name, folders)
        if found is None:
            where = " or ".join(str(f) for f in folders) or "models/loras"
            raise L2AError(f"LoRA '{name}' was not found in {where}: put the .safetensors file there.") from None
        return found


def _fingerprint(path) -> str:
    """Changes when the file does, so ComfyUI re-runs the node (and re-checks the LoRA) after it is replaced."""
    stat = path.stat()
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def lora_changed(cls, lora_name="", **_):
    """IS_CHANGED of a node that loads the LoRA `lora_name`: its file's fingerprint."""
    try:
        return _fingerprint(_lora_file(lora_name))
    except (L2AError, OSError):
        return ""


class L2A_LoRA:
    DESCRIPTION = (
        "Adds an LTX-2 LoRA to the model (official trainer format, e.g. camera-control or the distilled LoRA). "
        "LoRAs stack: chain several of these nodes. The incoming model is not changed; the LoRA's layers are checked "
        "against the model here and it is applied only while sampling: merged into bf16/fp16/fp32 weights, which "
        "are read back from the checkpoint afterwards (no copy in memory), or unfused on fp8 weights. The "
        "sampler's report says which."
    )
    CATEGORY = f"{CATEGORY}/loras"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The model with this LoRA added to its chain.",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "From LTX-2 Model Loader or another LoRA node."}),
                "lora_name": (_comfy.list_files("loras", (".safetensors",)) or [NO_FILE], {
                    "tooltip": "A LoRA .safetensors in models/loras whose layers fit the loaded model (LTX-2 19B, "
                    "LTX-2.3 22B or LTX-2.5 22B; LTX-2.3 LoRAs fit LTX-2.5).",
                }),
                "strength": ("FLOAT", {
                    "default": 1.0, "min": -2.0, "max": 2.0, "step": 0.05,
                    "tooltip": "How strongly the LoRA applies: 1 = as trained, 0 = off, negative = the opposite "
                    "effect. The same LoRA twice adds up.",
                }),
                "fuse": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "LoRAs are merged into the weights whenever that is cheap (bf16/fp16/fp32 weights "
                    "that can be read back from the checkpoint file), as Lightricks' pipelines do, else they run "
                    "unfused. On: insist on merging, and fail with the reason where it cannot be done (fp8 "
                    "weights) instead of running unfused.",
                }),
            }
        }

    IS_CHANGED = classmethod(lora_changed)

    def apply(self, model, lora_name, strength, fuse):
        from ..pipelines.lora import add_lora

        return (add_lora(model, _lora_file(lora_name), strength=strength, fuse=fuse),)


class L2A_CameraLoRA:
    DESCRIPTION = (
        "Camera motion with Lightricks' camera-control LoRAs (LTX-2 19B): dolly in/out/left/right, jib up/down, "
        "or a static camera. Finds the official file for the preset in models/loras (any sub-folder); if it is "
        "missing, the error says which file to download from which repository."
    )
    CATEGORY = f"{CATEGORY}/loras"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The model with the camera LoRA added (unchanged for preset 'none' or scale 0).",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "From LTX-2 Model Loader (LTX-2 19B) or another LoRA node."}),
                "preset": (list(CAMERA_PRESETS), {
                    "default": "dolly_in",
                    "tooltip": "The camera move. dolly = the camera travels (in: towards the subject); jib = it "
                    "rises or descends; static = a locked-off camera; none = no camera LoRA.",
                }),
                "scale": ("FLOAT", {
                    "default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                    "tooltip": "Strength of the camera LoRA: 1 = as trained, 0 = off. Describe the move and what "
                    "it reveals in the prompt too.",
                }),
            },
            "optional": {
                "lora_name": ("STRING", {
                    "default": "",
                    "tooltip": "Leave empty to use the official file of the preset. Or give a LoRA file in "
                    "models/loras (e.g. a renamed copy, or a camera LoRA made for another model family).",
                }),
            },
        }

    @classmethod
    def IS_CHANGED(cls, preset="none", scale=1.0, lora_name="", **_):
        from ..pipelines.lora import find_camera_lora

        try:
            if lora_name.strip():
                return _fingerprint(_lora_file(lora_name.strip()))
            found = find_camera_lora(preset, _comfy.folder_paths_for("loras"))
            return _fingerprint(found) if found else ""
        except (L2AError, OSError):
            return ""

    def apply(self, model, preset, scale, lora_name=""):
        from ..pipelines.lora import add_lora, camera_lora_file

        if not 0.0 <= scale <= 1.0:
            raise L2AError(f"scale = {scale} is out of range: use 0 (off) to 1 (as trained).")
        if preset == "none" or scale == 0.0:
            return (model,)
        if lora_name.strip():
            path = _lora_file(lora_name.strip())
        else:
            path = camera_lora_file(model.family, preset, _comfy.folder_paths_for("loras"))
        return (add_lora(model, path, strength=scale),)


NODE_CLASS_MAPPINGS = {"L2A_LoRA": L2A_LoRA, "L2A_CameraLoRA": L2A_CameraLoRA}
NODE_DISPLAY_NAME_MAPPINGS = {"L2A_LoRA": "LTX-2 LoRA", "L2A_CameraLoRA": "LTX-2 Camera LoRA"}
