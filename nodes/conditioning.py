"""Conditioning nodes: prompt encoding and the first-frame image."""

from ..pipelines.families import DEFAULT_NEGATIVE_PROMPT
from .common import CATEGORY, CONDITIONING, TEXT_ENCODER


class L2A_TextEncode:
    DESCRIPTION = (
        "Encodes the prompt and the negative prompt with Gemma 3 for LTX-2. Describe the picture, the motion and "
        "the sound (speech in quotes, music, ambience): audio and video are generated together."
    )
    CATEGORY = f"{CATEGORY}/conditioning"
    RETURN_TYPES = (CONDITIONING,)
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text_encoder": (TEXT_ENCODER, {"tooltip": "From LTX-2 Text Encoder Loader."}),
                "prompt": ("STRING", {
                    "multiline": True,
                    "default": "",
                    "tooltip": "What to see and hear. Must not be empty.",
                }),
                "negative_prompt": ("STRING", {
                    "multiline": True,
                    "default": DEFAULT_NEGATIVE_PROMPT,
                    "tooltip": "What to avoid. The default is the official LTX-2 negative prompt. Used when "
                    "guidance is on (not by distilled models).",
                }),
                "frame_rate": ("FLOAT", {
                    "default": 24.0, "min": 1.0, "max": 120.0, "step": 0.001,
                    "tooltip": "The frame rate motion is conditioned on. Keep it equal to the sampler's fps; a "
                    "higher value here than there gives slow motion.",
                }),
            }
        }

    def encode(self, text_encoder, prompt, negative_prompt, frame_rate):
        from ..pipelines.conditioning import encode_text

        return (encode_text(text_encoder, prompt, negative_prompt, frame_rate),)


class L2A_ImageCondition:
    DESCRIPTION = (
        "Makes an image the first frame of the video (image-to-video). Any size or alpha channel is accepted: the "
        "image is composited on black, scaled to cover the output size and centre-cropped, and re-encoded with "
        "H.264 at the given CRF like the model's training data."
    )
    CATEGORY = f"{CATEGORY}/conditioning"
    RETURN_TYPES = (CONDITIONING,)
    RETURN_NAMES = ("conditioning",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "conditioning": (CONDITIONING, {"tooltip": "From LTX-2 Text Encode."}),
                "image": ("IMAGE", {"tooltip": "The first frame. Only the first image of a batch is used."}),
                "strength": ("FLOAT", {
                    "default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                    "tooltip": "1.0 keeps the frame exactly; lower values let the model change it.",
                }),
                "crf": ("INT", {
                    "default": 33, "min": 0, "max": 51,
                    "tooltip": "H.264 CRF of the training-style re-encode; 33 is the official default, 0 skips it.",
                }),
            }
        }

    def apply(self, conditioning, image, strength, crf):
        from ..pipelines.conditioning import image_condition

        return (conditioning.with_image(image_condition(image, strength, crf, frame_index=0)),)


NODE_CLASS_MAPPINGS = {"L2A_TextEncode": L2A_TextEncode, "L2A_ImageCondition": L2A_ImageCondition}
NODE_DISPLAY_NAME_MAPPINGS = {"L2A_TextEncode": "LTX-2 Text Encode", "L2A_ImageCondition": "LTX-2 Image Condition"}
