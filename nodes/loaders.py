"""Loader nodes: the LTX-2 model (all-in-one checkpoint or diffusers folder) and the Gemma 3 text encoder."""

from ..pipelines.errors import L2AError
from . import _comfy
from .common import CATEGORY, DTYPES, MODEL, TEXT_ENCODER

DIFFUSERS_PREFIX = "diffusers/"


def _model_choices() -> list[str]:
    checkpoints = _comfy.list_files("checkpoints")
    folders = [DIFFUSERS_PREFIX + d for d in _comfy.list_model_dirs("diffusers", "model_index.json")]
    return checkpoints + folders or ["ltx-2-19b-dev.safetensors"]


class L2A_ModelLoader:
    DESCRIPTION = (
        "Loads an LTX-2 model: an all-in-one Lightricks checkpoint (ltx-2-19b-dev / -distilled .safetensors) from "
        "the checkpoints folder, or a diffusers-format folder from the diffusers folder. Family (LTX-2 19B / "
        "LTX-2.3 22B) and dev/distilled are detected from the file."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "ckpt_name": (_model_choices(), {
                    "tooltip": "An all-in-one LTX-2 .safetensors in models/checkpoints, or 'diffusers/<folder>' for "
                    "a diffusers-format folder in models/diffusers.",
                }),
                "dtype": (DTYPES, {
                    "default": "bf16",
                    "tooltip": "Compute precision of the transformer and video VAE. bf16 is the official choice; "
                    "fp32 only for CPU tests. The audio VAE and vocoder always run in fp32.",
                }),
                "fp8_weights": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Store the transformer weights in fp8 (e4m3) and compute in the chosen dtype: about "
                    "half the memory, slightly lower quality.",
                }),
            }
        }

    def load(self, ckpt_name, dtype, fp8_weights):
        from ..pipelines.loading import load_model

        if ckpt_name.startswith(DIFFUSERS_PREFIX):
            path = _comfy.resolve_path("diffusers", ckpt_name[len(DIFFUSERS_PREFIX):])
        else:
            path = _comfy.resolve_path("checkpoints", ckpt_name)
        _comfy.free_comfy_memory()
        return (load_model(path, dtype=dtype, device=_comfy.torch_device(), fp8=fp8_weights),)


class L2A_TextEncoderLoader:
    DESCRIPTION = (
        "Loads the Gemma 3 text encoder LTX-2 uses (e.g. gemma-3-12b-it-qat-q4_0-unquantized) from a transformers "
        "folder in models/text_encoders, tokenizer included."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (TEXT_ENCODER,)
    RETURN_NAMES = ("text_encoder",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        choices = _comfy.list_model_dirs("text_encoders", "config.json") or ["gemma-3-12b-it-qat-q4_0-unquantized"]
        return {
            "required": {
                "text_encoder_name": (choices, {
                    "tooltip": "A Gemma 3 transformers folder (config.json, weights, tokenizer) in "
                    "models/text_encoders.",
                }),
                "dtype": (DTYPES, {"default": "bf16", "tooltip": "Precision of Gemma. bf16 needs about 24 GB."}),
                "device": (["default", "cpu"], {
                    "default": "default",
                    "tooltip": "'default' uses ComfyUI's device; 'cpu' keeps Gemma off the GPU (slow, saves VRAM).",
                }),
            }
        }

    def load(self, text_encoder_name, dtype, device):
        from ..pipelines.loading import load_text_encoder

        path = _comfy.resolve_path("text_encoders", text_encoder_name)
        if not path.is_dir():
            raise L2AError(
                f"'{text_encoder_name}' is a file, not a Gemma 3 transformers folder: put the whole folder "
                "(config.json, *.safetensors, tokenizer files) in models/text_encoders."
            )
        target = "cpu" if device == "cpu" else _comfy.torch_device()
        return (load_text_encoder(path, dtype=dtype, device=target),)


NODE_CLASS_MAPPINGS = {"L2A_ModelLoader": L2A_ModelLoader, "L2A_TextEncoderLoader": L2A_TextEncoderLoader}
NODE_DISPLAY_NAME_MAPPINGS = {
    "L2A_ModelLoader": "LTX-2 Model Loader",
    "L2A_TextEncoderLoader": "LTX-2 Text Encoder Loader (Gemma 3)",
}
