"""Conditioning nodes: prompt encoding and the first-frame image."""

from ..pipelines.families import DEFAULT_NEGATIVE_PROMPT
from .common import CATEGORY, CONDITIONING, TEXT_ENCODER


class L2A_TextEncode:
    DESCRIPTION = (
        "Encodes the prompt and the negative prompt with the family's text encoder (Gemma 3; for LTX-2.5 its Gemma 4 "
        "and text projection). Describe the picture, the motion and the sound (speech in quotes, music, ambience): "
        "audio and video are generated together."
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
        "Pins an image to a frame of the video: the first frame by default (image-to-video), the last (-1) or any "
        "keyframe. Any size or alpha channel is accepted: the image is composited on black, scaled to cover the "
        "output size and centre-cropped, and re-encoded with H.264 at the given CRF like the model's training data."
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
                    "tooltip": "H.264 CRF of the training-style re-encode; the official default is 33 (18 for "
                    "LTX-2.5), 0 skips it.",
                }),
                "frame_index": ("INT", {
                    "default": 0, "min": -1025, "max": 1024,
                    "tooltip": "The pixel frame the image pins: 0 = first frame, -1 = last frame, any other frame "
                    "becomes a keyframe at that frame's time. Chain several nodes for several keyframes.",
                }),
            }
        }

    def apply(self, conditioning, image, strength, crf, frame_index=0):
        from ..pipelines.conditioning import image_condition

        return (conditioning.with_image(image_condition(image, strength, crf, frame_index)),)


class L2A_FirstLastFrame:
    DESCRIPTION = (
        "First and/or last frame in one node (the hosted APIs' image + end image): the video starts on one image "
        "and ends on the other. 'backward' swaps the ends, so the video runs towards the first image."
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
                "image_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                             "tooltip": "How exactly the first image is kept (1 = exactly)."}),
                "end_image_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                                 "tooltip": "How exactly the end image is reached (1 = exactly)."}),
                "direction": (["forward", "backward"], {"default": "forward",
                                                        "tooltip": "forward: image first, end image last; "
                                                        "backward: the other way round."}),
                "crf": ("INT", {"default": 33, "min": 0, "max": 51,
                                "tooltip": "Training-style H.264 re-encode of both images (official 33, 18 for "
                                "LTX-2.5; 0 = off)."}),
            },
            "optional": {
                "image": ("IMAGE", {"tooltip": "The first frame (the last with 'backward')."}),
                "end_image": ("IMAGE", {"tooltip": "The last frame (the first with 'backward')."}),
            },
        }

    def apply(self, conditioning, image_strength, end_image_strength, direction, crf, image=None, end_image=None):
        from ..pipelines.conditioning import first_last_frame

        return (first_last_frame(conditioning, image, end_image, image_strength, end_image_strength, direction,
                                 crf),)


NODE_CLASS_MAPPINGS = {
    "L2A_TextEncode": L2A_TextEncode,
    "L2A_ImageCondition": L2A_ImageCondition,
    "L2A_FirstLastFrame": L2A_FirstLastFrame,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "L2A_TextEncode": "LTX-2 Text Encode",
    "L2A_ImageCondition": "LTX-2 Image Condition",
    "L2A_FirstLastFrame": "LTX-2 First / Last Frame",
}
