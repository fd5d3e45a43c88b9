"""Loader nodes: the LTX-2 model (all-in-one checkpoint, LTX-2.5's transformer with its VAE files, or a diffusers
folder), the text encoder (Gemma 3; LTX-2.5's Gemma 4 with the text projection) and the latent upsampler."""

import functools

from ..pipelines.choices import ENHANCER_KIND, TEXT_ENCODER_DEVICES
from ..pipelines.errors import L2AError
from ..pipelines.families import FAMILIES
from . import _comfy
from .common import CATEGORY, DTYPES, MODEL, TEXT_ENCODER, UPSAMPLER

DIFFUSERS_PREFIX = "diffusers/"
DEV_TRANSFORMER = "/transformer_full"  # LTX-2.5-Diffusers keeps its dev transformer there (transformer/: distilled)
PLACEHOLDER = FAMILIES["2.0"]  # whose official file names a widget shows while its folder is empty
MODEL_FOLDERS = ("checkpoints", "diffusion_models")  # where the model loader looks, in this order
AUTO = "auto"
SAFETENSORS = (".safetensors", ".sft")


def _is_ltx_transformer(key: str, name: str) -> bool:
    """A diffusion_models file the model loader lists: an LTX name, or an LTX-2 transformer's header."""
    if "ltx" in name.lower():
        return True
    try:
        path = _comfy.resolve_path(key, name)
        state = path.stat()
    except (L2AError, OSError):
        return False
    return _has_ltx2_transformer_keys(str(path), state.st_size, state.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _has_ltx2_transformer_keys(path: str, _size: int, _mtime_ns: int) -> bool:
    """Read once per file version: every node list (/object_info) asks again, for two nodes."""
    from ..pipelines.weights import read_safetensors_header

    try:
        header, _ = read_safetensors_header(path)
    except (L2AError, OSError):
        return False
    return any(k.endswith("audio_adaln_single.linear.weight") for k in header)


def _diffusers_choices() -> list[str]:
    """Diffusers folders; one with a dev transformer beside the distilled one is listed twice, the dev pick last."""
    found = []
    for folder in _comfy.list_model_dirs("diffusers", "model_index.json"):
        found.append(DIFFUSERS_PREFIX + folder)
        root = _comfy.resolve_path("diffusers", folder)
        if (root / DEV_TRANSFORMER.strip("/") / "config.json").is_file():
            found.append(DIFFUSERS_PREFIX + folder + DEV_TRANSFORMER)
    return found


def _model_choices() -> list[str]:
    checkpoints = _comfy.list_files("checkpoints")
    transformers = [n for n in _comfy.list_files("diffusion_models", SAFETENSORS)
                    if n not in checkpoints and _is_ltx_transformer("diffusion_models", n)]
    return checkpoints + transformers + _diffusers_choices() or [PLACEHOLDER.checkpoints["dev"].name]


def resolve_model(name: str):
    """(path, ComfyUI folder key it was found in) of a listed model name."""
    if name.startswith(DIFFUSERS_PREFIX):
        return _comfy.resolve_path("diffusers", name[len(DIFFUSERS_PREFIX):]), "diffusers"
    for key in MODEL_FOLDERS[:-1]:
        try:
            return _comfy.resolve_path(key, name), key
        except L2AError:
            continue
    return _comfy.resolve_path(MODEL_FOLDERS[-1], name), MODEL_FOLDERS[-1]


def _vae_choices() -> list[str]:
    return [AUTO, *_comfy.list_files("vae", SAFETENSORS)]


def part_choices(video_vae: str, audio_vae: str) -> dict:
    """The model loader's VAE inputs as load_model's `parts`: "auto" (the family's official file), or a file."""
    return {part: value if value == AUTO else _comfy.resolve_path("vae", value)
            for part, value in (("vae", video_vae), ("audio_vae", audio_vae))}


def model_folders() -> dict:
    """ComfyUI's folders of the files a model may need besides its checkpoint (LTX-2.5's VAE files, and its duration
    head and diffusion-decoder VAE when a run asks for them)."""
    return {key: _comfy.folder_paths_for(key) for key in ("vae", "model_patches")}


class L2A_ModelLoader:
    DESCRIPTION = (
        "Loads an LTX-2 model: an all-in-one Lightricks checkpoint (LTX-2 19B, LTX-2.3 22B) from models/checkpoints; "
        "an LTX-2.5 transformer (ltx-2.5-22b-dev / -distilled-transformer-bf16) from models/diffusion_models with its "
        "video VAE and audio VAE files from models/vae (auto: the official files); or a diffusers-format folder from "
        "models/diffusers (for LTX-2.5-Diffusers, '<folder>' is the distilled model and '<folder>/transformer_full' "
        "the dev one). Family and dev/distilled are detected from the files, and wrong files are refused before "
        "anything is read."
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
                    "tooltip": "An all-in-one LTX-2 .safetensors in models/checkpoints, an LTX-2.5 transformer in "
                    "models/diffusion_models, or 'diffusers/<folder>' for a diffusers-format folder in "
                    "models/diffusers.",
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
                "video_vae": (_vae_choices(), {
                    "default": AUTO,
                    "tooltip": "LTX-2.5 only (its release is split): the video VAE in models/vae. auto = the "
                    "official ltx-2.5-video-vae-conv-bf16.safetensors. All-in-one checkpoints hold their own.",
                }),
                "audio_vae": (_vae_choices(), {
                    "default": AUTO,
                    "tooltip": "LTX-2.5 only: the audio VAE with its vocoder (48 kHz stereo) in models/vae. auto = "
                    "the official ltx-2.5-audio-vae-bf16.safetensors.",
                }),
            }
        }

    def load(self, ckpt_name, dtype, fp8_weights, offload="auto", video_vae=AUTO, audio_vae=AUTO):
        from ..pipelines.loading import load_model
        from ..pipelines.memory import MemoryPolicy

        path, listed_in = resolve_model(ckpt_name)
        parts = part_choices(video_vae, audio_vae)
        _comfy.free_comfy_memory()
        device = _comfy.torch_device()
        mode = _comfy.preferred_offload() if offload == "auto" else offload
        if getattr(device, "type", str(device)) == "cpu" and offload == "auto":
            mode = "none"
        memory = MemoryPolicy(offload=mode) if mode != "none" else None
        return (load_model(path, dtype=dtype, device=device, fp8=fp8_weights, memory=memory, parts=parts,
                           folders=model_folders(), listed_in=listed_in),)


def _text_encoder_choices() -> list[str]:
    """Gemma folders (not the prompt enhancer's), then single-file Gemmas (header sniffed) that are not part of a listed folder, then diffusers
    folders with a text encoder (LTX-2.5-Diffusers)."""
    from ..pipelines.gemma_single_file import looks_like_gemma

    folders = [name for name in _comfy.list_model_dirs("text_encoders", "config.json")
               if _comfy.folder_model_type("text_encoders", name) != ENHANCER_KIND]  # Prompt Enhancer Loader's
    inside = tuple(f"{folder}/" for folder in folders if folder != ".")
    files = []
    for name in _comfy.list_files("text_encoders", SAFETENSORS):
        if name.startswith(inside) or ("." in folders and "/" not in name):
            continue
        if "gemma" in name.lower() or looks_like_gemma(_comfy.resolve_path("text_encoders", name)):
            files.append(name)
    pipelines = [DIFFUSERS_PREFIX + folder for folder in _comfy.list_model_dirs("diffusers", "model_index.json")
                 if (_comfy.resolve_path("diffusers", folder) / "text_encoder" / "config.json").is_file()]
    return folders + files + pipelines


def resolve_text_encoder(name: str):
    if name.startswith(DIFFUSERS_PREFIX):
        return _comfy.resolve_path("diffusers", name[len(DIFFUSERS_PREFIX):])
    return _comfy.resolve_path("text_encoders", name)


class L2A_TextEncoderLoader:
    DESCRIPTION = (
        "Loads the text encoder of the model's family from models/text_encoders. LTX-2 19B and LTX-2.3: Gemma 3 12B, "
        "a transformers folder (e.g. gemma-3-12b-it-qat-q4_0-unquantized) or the single file ComfyUI's own LTX-2 "
        "workflows use (gemma_3_12B_it.safetensors or gemma_3_12B_it_fp8_scaled.safetensors, tokenizer inside). "
        "LTX-2.5: its own Gemma 4 12B with the LTX text projection, gemma4-12b-with-proj-ltx-2.5-bf16.safetensors "
        "(or 'diffusers/<folder>' of LTX-2.5-Diffusers). The sampler refuses an encoder of another family: Gemma 3 "
        "would give LTX-2.5 noise."
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
                    "tooltip": "Gemma 3 12B for LTX-2 19B / LTX-2.3 (a transformers folder, or ComfyUI's "
                    "single-file gemma_3_12B_it*.safetensors); for LTX-2.5 its "
                    "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors. All in models/text_encoders.",
                }),
                "dtype": (DTYPES, {"default": "bf16", "tooltip": "Precision of Gemma. bf16 needs about 24 GB."}),
                "device": (list(TEXT_ENCODER_DEVICES), {
                    "default": "default",
                    "tooltip": "'default' uses ComfyUI's device; 'cpu' keeps Gemma off the GPU (slow, saves VRAM).",
                }),
            }
        }

    def load(self, text_encoder_name, dtype, device):
        from ..pipelines.loading import load_text_encoder

        path = resolve_text_encoder(text_encoder_name)
        target = "cpu" if device == "cpu" else _comfy.torch_device()
        return (load_text_encoder(path, dtype=dtype, device=target),)


class L2A_UpsamplerLoader:
    DESCRIPTION = (
        "Loads the official LTX-2 latent upsampler of the model's family (ltx-2-spatial-upscaler-x2-1.0 for LTX-2 "
        "19B, ltx-2.3-spatial-upscaler-x2-1.1 for LTX-2.3, ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0 for "
        "LTX-2.5) from models/latent_upscale_models, for multiscale generation: connect it to LTX-2 Sampler's "
        "upsampler input."
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
    "L2A_TextEncoderLoader": "LTX-2 Text Encoder Loader (Gemma)",
    "L2A_UpsamplerLoader": "LTX-2 Latent Upsampler Loader",
}
