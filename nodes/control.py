"""Control nodes: an IC-LoRA with its reference video, and canny edge maps to make one from any clip."""

from ..pipelines.errors import L2AError
from ..pipelines.families import FAMILIES
from . import _comfy
from .common import CATEGORY, MODEL
from .lora import _lora_file, lora_changed

NO_FILE = FAMILIES["2.0"].ic_loras["canny"].name  # what the widget shows while models/loras is empty


class L2A_ICLoRA:
    DESCRIPTION = (
        "In-context control with an IC-LoRA: the video follows a reference video (canny edges, depth or pose maps, "
        "or a clip to refine with the detailer). Loads the IC-LoRA (official Canny, Depth, Pose, Detailer for LTX-2 "
        "19B, Union for LTX-2.3, or any file whose metadata or name marks it), reads the reference size it was "
        "trained with from the file, and adds both to the model: the sampler, Extend, Audio to Video and Retake "
        "then place the reference as the official IC-LoRA pipeline does. Multiscale's second stage runs without it, "
        "as officially. The reference carries no sound."
    )
    CATEGORY = f"{CATEGORY}/control"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The model with the IC-LoRA and its reference video.",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "From LTX-2 Model Loader or a LoRA node."}),
                "lora_name": (_comfy.list_files("loras", (".safetensors",)) or [NO_FILE], {
                    "tooltip": "An IC-LoRA .safetensors in models/loras, e.g. ltx-2-19b-ic-lora-canny-control "
                    "(LTX-2 19B) or ltx-2.3-22b-ic-lora-union-control-ref0.5 (LTX-2.3). A plain LoRA is refused.",
                }),
                "strength": ("FLOAT", {
                    "default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05,
                    "tooltip": "LoRA strength: 1 = as trained (the official value).",
                }),
                "reference_strength": ("FLOAT", {
                    "default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                    "tooltip": "How clean the reference stays while sampling: 1 = exactly the reference (official); "
                    "lower values let the model change it.",
                }),
                "attention_strength": ("FLOAT", {
                    "default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                    "tooltip": "How strongly the video attends to the reference: 1 = fully (official default), 0 = "
                    "the reference is ignored. Multiplies the attention mask when one is connected.",
                }),
                "fuse": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "As on LTX-2 LoRA: on insists on merging the LoRA into the weights and fails where "
                    "that cannot be done (fp8 weights) instead of running unfused.",
                }),
            },
            "optional": {
                "reference_video": ("VIDEO", {"tooltip": "The control video, e.g. from core LoadVideo (its sound is "
                                              "not used). Frames are taken one per output frame from the start."}),
                "reference_images": ("IMAGE", {"tooltip": "The control video as frames, instead of a VIDEO: canny "
                                               "edges (LTX-2 Canny), depth or pose maps from any node."}),
                "attention_mask": ("MASK", {"tooltip": "Where the reference is attended to (white) or ignored "
                                            "(black), per frame or one for all frames; scaled onto the reference."}),
            },
        }

    IS_CHANGED = classmethod(lora_changed)

    def apply(self, model, lora_name, strength, reference_strength, attention_strength, fuse, reference_video=None,
              reference_images=None, attention_mask=None):
        from ..pipelines.ic_lora import add_ic_lora, control_notes

        if (reference_video is None) == (reference_images is None):
            raise L2AError("connect the control video to exactly one of reference_video (a VIDEO) and "
                           "reference_images (IMAGE frames).")
        fps, note = None, ""
        frames = reference_images
        if reference_video is not None:
            from .av_edit import _video_parts

            frames, fps, _, note = _video_parts(reference_video)
        controlled = add_ic_lora(model, _lora_file(lora_name), frames, strength=strength,
                                 reference_strength=reference_strength, attention_strength=attention_strength,
                                 mask=attention_mask, fuse=fuse, fps=None if fps is None else float(fps))
        text = " | ".join(part for part in (control_notes(controlled)[-1], note) if part)
        return {"ui": {"text": [text]}, "result": (controlled,)}


class L2A_Canny:
    DESCRIPTION = (
        "Canny edge maps of images or video frames, for a canny IC-LoRA's control video (white edges on black). "
        "Pure torch, nothing to download; thresholds on OpenCV's scale (cv2.Canny(image, 100, 200) = low 100, high "
        "200)."
    )
    CATEGORY = f"{CATEGORY}/control"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("edges",)
    OUTPUT_TOOLTIPS = ("The edge maps, one per input frame, same size.",)
    FUNCTION = "detect"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Frames, e.g. from core LoadVideo + Get Video Components."}),
                "low_threshold": ("INT", {
                    "default": 100, "min": 0, "max": 2040, "step": 1,
                    "tooltip": "Weak edges above this are kept where they touch a strong edge (cv2.Canny scale).",
                }),
                "high_threshold": ("INT", {
                    "default": 200, "min": 0, "max": 2040, "step": 1,
                    "tooltip": "Gradients above this are edges (cv2.Canny scale). Raise both for fewer edges.",
                }),
                "blur": ("FLOAT", {
                    "default": 0.0, "min": 0.0, "max": 20.0, "step": 0.1,
                    "tooltip": "Gaussian blur (sigma in pixels) before detection, against noise and grain; 0 = none.",
                }),
            }
        }

    def detect(self, images, low_threshold, high_threshold, blur):
        from ..pipelines.canny import canny

        return (canny(images, low_threshold, high_threshold, blur),)


NODE_CLASS_MAPPINGS = {"L2A_ICLoRA": L2A_ICLoRA, "L2A_Canny": L2A_Canny}
NODE_DISPLAY_NAME_MAPPINGS = {"L2A_ICLoRA": "LTX-2 IC-LoRA (control video)", "L2A_Canny": "LTX-2 Canny Edges"}
