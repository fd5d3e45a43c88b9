"""Loader nodes: the LTX-2 model (all-in-one checkpoint or diffusers folder) and the Gemma 3 text encoder."""

from ..pipelines.families import FAMILIES
from . import _comfy
from .common import CATEGORY, DTYPES, MODEL, TEXT_ENCODER, UPSAMPLER

DIFFUSERS_PREFIX = "diffusers/"
PLACEHOLDER = FAMILIES["2.0"]  # whose official file names a widget shows while its folder is empty


def _model_choices() -> list[str]:
    checkpoints = _comfy.list_files("checkpoints")
    folders = [DIFFUSERS_PREFIX + d for d in _comfy.list_model_dirs("diffusers", "model_index.json")]
    return checkpoints + folders or [PLACEHOLDER.checkpoints["dev"].name]


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
                "offload": (["auto", "none", "model", "group", "sequential"], {
                    "default": "auto",
                    "tooltip": "Where the weights wait while not computing. auto follows ComfyUI's flags "
                    "(--lowvram: group, --novram: sequential, else none); model/group/sequential keep them in "
                    "system memory so 12-24 GB cards fit (see LTX-2 Memory Options).",
                }),
            }
        }

    def load(self, ckpt_name, dtype, fp8_weights, offload="auto"):
        from ..pipelines.loading import load_model
        from ..pipelines.memory import MemoryPolicy

        if ckpt_name.startswith(DIFFUSERS_PREFIX):
            path = _comfy.resolve_path("diffusers", ckpt_name[len(DIFFUSERS_PREFIX):])
        else:
            path = _comfy.resolve_path("checkpoints", ckpt_name)
        _comfy.free_comfy_memory()
        device = _comfy.torch_device()
        mode = _comfy.preferred_offload() if offload == "auto" else offload
        if getattr(device, "type", str(device)) == "cpu" and offload == "auto":
            mode = "none"
        memory = MemoryPolicy(offload=mode) if mode != "none" else None
        return (load_model(path, dtype=dtype, device=device, fp8=fp8_weights, memory=memory),)


def _text_encoder_choices() -> list[str]:
    """Gemma folders, then single-file Gemmas (header sniffed) that are not part of a listed folder."""
    from ..pipelines.gemma_single_file import looks_like_gemma

    folders = _comfy.list_model_dirs("text_encoders", "config.json")
    inside = tuple(f"{folder}/" for folder in folders if folder != ".")
    files = []
    for name in _comfy.list_files("text_encoders", (".safetensors", ".sft")):
        if name.startswith(inside) or ("." in folders and "/" not in name):
            continue
        if "gemma" in name.lower() or looks_like_gemma(_comfy.resolve_path("text_encoders", name)):
            files.append(name)
    return folders + files


class L2A_TextEncoderLoader:
    DESCRIPTION = (
        "Loads the Gemma 3 12B text encoder LTX-2 uses from models/text_encoders: a transformers folder (e.g. "
        "gemma-3-12b-it-qat-q4_0-unquantized) or the single file ComfyUI's own LTX-2 workflows use "
        "(gemma_3_12B_it.safetensors or gemma_3_12B_it_fp8_scaled.safetensors, tokenizer inside), so no second copy "
        "is needed."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (TEXT_ENCODER,)
    RETURN_NAMES = ("text_encoder",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        choices = _text_encoder_choices() or [PLACEHOLDER.text_encoder.folder.name]
        return {
            "required": {
                "text_encoder_name": (choices, {
                    "tooltip": "A Gemma 3 transformers folder (config.json, weights, tokenizer) or ComfyUI's "
                    "single-file Gemma 3 12B (gemma_3_12B_it*.safetensors) in models/text_encoders.",
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
        target = "cpu" if device == "cpu" else _comfy.torch_device()
        return (load_text_encoder(path, dtype=dtype, device=target),)


class L2A_UpsamplerLoader:
    DESCRIPTION = (
        "Loads the official LTX-2 latent upsampler of the model's family (ltx-2-spatial-upscaler-x2-1.0 for LTX-2 "
        "19B, ltx-2.3-spatial-upscaler-x2-1.1 for LTX-2.3) from models/latent_upscale_models, for multiscale "
        "generation: connect it to LTX-2 Sampler's upsampler input."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (UPSAMPLER,)
    RETURN_NAMES = ("upsampler",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        choices = _comfy.list_files("latent_upscale_models", (".safetensors", ".sft"))
        return {
            "required": {
                "upsampler_name": (choices or [PLACEHOLDER.upsampler.name], {
                    "tooltip": "The x2 spatial latent upsampler in models/latent_upscale_models (not "
                    "models/upscale_models, which holds pixel upscalers).",
                }),
                "dtype": (DTYPES, {"default": "bf16", "tooltip": "Precision of the upsampler."}),
            }
        }

    def load(self, upsampler_name, dtype):
        from ..pipelines.upsampler import load_upsampler

        path = _comfy.resolve_path("latent_upscale_models", upsampler_name)
        return (load_upsampler(path, dtype=dtype),)  # the sampler brings it to the model's device when it runs


NODE_CLASS_MAPPINGS = {
    "L2A_ModelLoader": L2A_ModelLoader,
    "L2A_TextEncoderLoader": L2A_TextEncoderLoader,
    "L2A_UpsamplerLoader": L2A_UpsamplerLoader,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "L2A_ModelLoader": "LTX-2 Model Loader",
    "L2A_TextEncoderLoader": "LTX-2 Text Encoder Loader (Gemma 3)",
    "L2A_UpsamplerLoader": "LTX-2 Latent Upsampler Loader",
}
