"""Prompt expansion: the loaded Gemma 3 turns a short idea into the detailed prompt LTX-2 was trained on."""

from . import _comfy
from .common import CATEGORY, TEXT_ENCODER

MAX_SEED = 2**64 - 1


class L2A_PromptExpand:
    DESCRIPTION = (
        "Expands a short prompt into a detailed audio-visual one with the Gemma 3 text encoder itself and the "
        "official LTX-2 system prompts (text-to-video or image-to-video), as Lightricks' prompt enhancer does: "
        "temperature 0.7, up to 512 new tokens. The expanded prompt is the output (wire it into LTX-2 Text "
        "Encode's prompt) and is shown on the node. The same seed gives the same text."
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
                    "tooltip": "From LTX-2 Text Encoder Loader: the same Gemma 3 that encodes the prompt writes it.",
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
                    "tooltip": "Sampling seed of the expansion; 10 is the official default. Same seed, same text.",
                }),
                "max_new_tokens": ("INT", {
                    "default": 512, "min": 16, "max": 2048, "step": 1,
                    "tooltip": "Upper limit on the length of the expanded prompt in tokens; the official value is "
                    "512. The model usually stops earlier.",
                }),
            },
            "optional": {
                "image": ("IMAGE", {
                    "tooltip": "The first frame, for i2v. Shown to Gemma when it was loaded from a transformers "
                    "folder (with its vision tower); ComfyUI's single file is text-only and the node says so.",
                }),
            },
        }

    def expand(self, text_encoder, prompt, mode, seed, max_new_tokens, image=None):
        from ..pipelines.prompt_expansion import expand_prompt

        progress = _comfy.Progress(int(max_new_tokens))
        result = expand_prompt(
            text_encoder, prompt, mode=mode, image=image, seed=seed, max_new_tokens=max_new_tokens,
            callback=progress.update,
        )
        shown = [result.prompt] + ([result.note] if result.note else [])
        return {"ui": {"text": shown}, "result": (result.prompt,)}


NODE_CLASS_MAPPINGS = {"L2A_PromptExpand": L2A_PromptExpand}
NODE_DISPLAY_NAME_MAPPINGS = {"L2A_PromptExpand": "LTX-2 Prompt Expand (Gemma 3)"}
