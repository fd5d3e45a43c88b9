"""The video size node: 480p / 720p / 1080p, an aspect ratio and seconds in; valid width, height and frames out."""

from ..pipelines.geometry import SPATIAL
from ..pipelines.sizing import ASPECT_RATIOS, MULTISCALE_MULTIPLE, RESOLUTIONS, resolve_frames, resolve_size
from .common import CATEGORY


class L2A_VideoSize:
    DESCRIPTION = (
        "Sizes and durations the way video platforms name them: a resolution tier (the short side: 480p, 720p, "
        "1080p) with an aspect ratio (or 'auto' from the input image), or custom pixels; a duration in seconds or a "
        "frame count. Everything is mapped to valid LTX-2 geometry (multiples of 32, or 64 for multiscale; 8k+1 "
        "frames; up to 20 s) and the report says what each value became. Connect the outputs to the sampler's "
        "width, height, frames and fps."
    )
    CATEGORY = f"{CATEGORY}/sampling"
    RETURN_TYPES = ("INT", "INT", "INT", "FLOAT", "STRING")
    RETURN_NAMES = ("width", "height", "frames", "fps", "report")
    OUTPUT_TOOLTIPS = (
        "Width in pixels, a valid multiple.",
        "Height in pixels, a valid multiple.",
        "Frame count, 8k+1.",
        "Frame rate, unchanged.",
        "How each value was mapped.",
    )
    FUNCTION = "resolve"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "resolution": (RESOLUTIONS, {"default": "720p",
                                             "tooltip": "The short side, as video platforms name it (720p 16:9 = "
                                             "1280x704); custom: the width and height below."}),
                "aspect_ratio": (ASPECT_RATIOS, {"default": "16:9",
                                                 "tooltip": "Width:height. auto: the input image's ratio (connect "
                                                 "an image). Ignored with custom."}),
                "width": ("INT", {"default": 768, "min": 32, "max": 4096, "step": 32,
                                  "tooltip": "Custom only: width in pixels; snapped to a multiple of 32 (64 with "
                                  "multiscale), reported."}),
                "height": ("INT", {"default": 512, "min": 32, "max": 4096, "step": 32,
                                   "tooltip": "Custom only: height in pixels; snapped to a multiple of 32 (64 with "
                                   "multiscale), reported."}),
                "duration_seconds": ("FLOAT", {"default": 5.0, "min": 0.0, "max": 20.0, "step": 0.01,
                                               "tooltip": "Clip length in seconds, up to 20 (one LTX-2 pass); "
                                               "mapped to the nearest 8k+1 frames. 0 = use frames."}),
                "frames": ("INT", {"default": 121, "min": 9, "max": 481, "step": 8,
                                   "tooltip": "Frame count when duration_seconds is 0; snapped to 8k+1 "
                                   "(121 = 5 s at 24 fps)."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 60.0, "step": 0.001,
                                  "tooltip": "Playback frame rate, 1 to 60 (LTX-2 is trained at 24-30)."}),
                "multiscale": ("BOOLEAN", {"default": False,
                                           "tooltip": "On: sizes become multiples of 64, as the two-stage "
                                           "(multiscale) sampler needs."}),
            },
            "optional": {
                "image": ("IMAGE", {"tooltip": "For aspect_ratio auto: the ratio of its first image."}),
            },
        }

    def resolve(self, resolution, aspect_ratio, width, height, duration_seconds, frames, fps, multiscale,
                image=None):
        image_size = None if image is None else (int(image.shape[2]), int(image.shape[1]))
        multiple = MULTISCALE_MULTIPLE if multiscale else SPATIAL
        out_width, out_height, size_note = resolve_size(resolution, aspect_ratio, width, height, image_size, multiple)
        out_frames, frames_note = resolve_frames(duration_seconds, frames, fps)
        report = f"{size_note} | {frames_note}"
        return {"ui": {"text": [report]}, "result": (out_width, out_height, out_frames, float(fps), report)}


NODE_CLASS_MAPPINGS = {"L2A_VideoSize": L2A_VideoSize}
NODE_DISPLAY_NAME_MAPPINGS = {"L2A_VideoSize": "LTX-2 Video Size"}
