"""Prompt expansion: Gemma 3 (LTX-2.0 / 2.3) or LTX-2.5's Gemma 4 E2B enhancer turns a short idea into the detailed
prompt LTX-2 was trained on."""


from ..pipelines.choices import ENHANCER_FOLDER, ENHANCER_KIND, TEXT_ENCODER_DEVICES
from . import _comfy
from .common import CATEGORY, DTYPES, PROMPT_ENHANCER, TEXT_ENCODER

MAX_SEED = 2**64 - 1


def _enhancer_choices() -> list[str]:
    """Transformers folders in models/text_encoders whose config says Gemma 4 (model type "gemma4")."""
    found = [name for name in _comfy.list_model_dirs("text_encoders", "config.json")
             if _comfy.folder_model_type("text_encoders", name) == ENHANCER_KIND]
    return found or [ENHANCER_FOLDER]


class L2A_PromptEnhancerLoader:
    DESCRIPTION = (
        "Loads LTX-2.5's prompt enhancer, Google's Gemma 4 E2B instruct model, from its transformers folder in "
        "models/text_encoders (a copy of google/gemma-4-E2B-it: config.json, the safetensors weights, tokenizer "
        "files, chat_template.jinja, and the processor files for images). Connect it to LTX-2 Prompt Expand's "
        "enhancer input. It waits in system memory and uses the GPU only while it writes."
    )
    CATEGORY = f"{CATEGORY}/loaders"
    RETURN_TYPES = (PROMPT_ENHANCER,)
    RETURN_NAMES = ("enhancer",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "enhancer_name": (_enhancer_choices(), {
                    "tooltip": "The Gemma 4 E2B instruct folder (model type gemma4) in models/text_encoders, e.g. "
                    f"{ENHANCER_FOLDER} downloaded from https://huggingface.co/google/gemma-4-E2B-it.",
                }),
                "dtype": (DTYPES, {"default": "bf16",
                                   "tooltip": "Precision of the enhancer; bf16 needs about 10 GB while it writes."}),
                "device": (list(TEXT_ENCODER_DEVICES), {
                    "default": "default",
                    "tooltip": "Where it writes: 'default' is ComfyUI's device (the GPU), 'cpu' keeps it off the "
                    "GPU (slower). Between runs it always waits in system memory.",
                }),
            }
        }

    def load(self, enhancer_name, dtype, device):
        from ..pipelines.prompt_expansion import load_enhancer

        path = _comfy.resolve_path("text_encoders", enhancer_name)
        target = "cpu" if device == "cpu" else _comfy.torch_device()
        return (load_enhancer(path, dtype=dtype, device=target),)


class L2A_PromptExpand:
    DESCRIPTION = (
        "Expands a short prompt into a detailed audio-visual one with the official LTX-2 recipes. LTX-2.0 / 2.3: "
        "the Gemma 3 text encoder writes it with the official system prompts (temperature 0.7, up to 512 new "
        "tokens). LTX-2.5: its text encoder cannot write, so connect the Gemma 4 E2B enhancer (LTX-2 Prompt "
        "Enhancer Loader): the 2.5 system prompts, greedy, up to 600 new tokens officially. Without an enhancer a "
        "2.5 prompt passes through unchanged: enhancement is off by default for 2.5, as users report it hurts "
        "prompt adherence. The expanded prompt is the output (wire it into LTX-2 Text Encode's prompt) and is "
        "shown on the node."
    )
    CATEGORY = f"{CATEGORY}/conditioning"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("expanded_prompt",)
    FUNCTION = "expand"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text_encoder": (TEXT_ENCODER, {
                    "tooltip": "From LTX-2 Text Encoder Loader. Gemma 3 (LTX-2.0 / 2.3) writes the expansion "
                    "itself; with LTX-2.5's encoder the enhancer input decides.",
                }),
                "prompt": ("STRING", {
                    "multiline": True,
                    "default": "",
                    "tooltip": "The short idea to expand: subject, action, camera, sound. Must not be empty.",
                }),
                "mode": (["t2v", "i2v"], {
                    "default": "t2v",
                    "tooltip": "t2v: the text-to-video system prompt. i2v: the image-to-video one, which describes "
                    "only what changes from the first frame (connect the image).",
                }),
                "seed": ("INT", {
                    "default": 10, "min": 0, "max": MAX_SEED, "control_after_generate": True,
                    "tooltip": "Sampling seed of Gemma 3's expansion; 10 is the official default. Same seed, same "
                    "text. The Gemma 4 enhancer decodes greedily: it ignores the seed.",
                }),
                "max_new_tokens": ("INT", {
                    "default": 512, "min": 16, "max": 2048, "step": 1,
                    "tooltip": "Upper limit on the length of the expanded prompt in tokens; officially 512 for "
                    "Gemma 3 and 600 for the LTX-2.5 enhancer. The model usually stops earlier.",
                }),
            },
            "optional": {
                "image": ("IMAGE", {
                    "tooltip": "The first frame, for i2v. Shown to Gemma when it was loaded from a transformers "
                    "folder with its vision part (and image processor, for the enhancer); otherwise the node "
                    "expands from the text alone and says so.",
                }),
                "enhancer": (PROMPT_ENHANCER, {
                    "tooltip": "LTX-2.5's prompt enhancer (Gemma 4 E2B) from LTX-2 Prompt Enhancer Loader. When "
                    "connected it writes the expansion, whatever the text encoder. Not connected: off for LTX-2.5 "
                    "(the prompt passes through), Gemma 3 writes for LTX-2.0 / 2.3.",
                }),
            },
        }

    def expand(self, text_encoder, prompt, mode, seed, max_new_tokens, image=None, enhancer=None):
        from ..pipelines.prompt_expansion import enhance_prompt, expand_prompt, passthrough

        progress = _comfy.Progress(int(max_new_tokens))
        if enhancer is not None:
            result = enhance_prompt(enhancer, prompt, mode=mode, image=image, max_new_tokens=max_new_tokens,
                                    callback=progress.update)
        elif getattr(text_encoder, "projection", None) is not None:
            result = passthrough(prompt, mode)
        else:
            result = expand_prompt(
                text_encoder, prompt, mode=mode, image=image, seed=seed, max_new_tokens=max_new_tokens,
                callback=progress.update,
            )
        shown = [result.prompt] + ([result.note] if result.note else [])
        return {"ui": {"text": shown}, "result": (result.prompt,)}


NODE_CLASS_MAPPINGS = {"L2A_PromptExpand": L2A_PromptExpand, "L2A_PromptEnhancerLoader": L2A_PromptEnhancerLoader}
NODE_DISPLAY_NAME_MAPPINGS = {
    "L2A_PromptExpand": "LTX-2 Prompt Expand",
    "L2A_PromptEnhancerLoader": "LTX-2 Prompt Enhancer Loader (Gemma 4)",
}
