"""The sampler node: video and audio denoised together, with ComfyUI's progress bar, previews and Cancel."""

from ..pipelines.choices import ACCELERATIONS, STAGE_2_OPTIONS
from ..pipelines.errors import L2AError
from ..pipelines.families import Guidance
from ..pipelines.schedules import SCHEDULES
from . import _comfy
from .common import CATEGORY, CONDITIONING, LATENT, MODEL, UPSAMPLER, rerun_when_seed_is_random, seed_input

GUIDANCE_MODES = ["auto", "custom", "off"]


def parse_blocks(text: str):
    """'29' or '28, 29' -> (28, 29); '' -> None (the model's default)."""
    text = text.strip()
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise L2AError(f"stg_blocks = {text!r} is not a list of block numbers: write e.g. '29' or '28, 29'.") from None


class L2A_Sampler:
    DESCRIPTION = (
        "Generates video and audio latents together with LTX-2. Defaults follow the official pipelines: 40 steps, "
        "STG block 29 and full guidance for LTX-2 19B dev; the 8-step distilled sigmas and no guidance for "
        "distilled models. Width/height must be multiples of 32; frames are snapped to 8k+1 (reported), and 0 lets "
        "LTX-2.5's duration head choose them from the prompt. With a "
        "latent upsampler it runs multiscale, the official recipe: stage 2 of a dev model with its family's "
        "distilled LoRA, found in models/loras."
    )
    CATEGORY = f"{CATEGORY}/sampling"
    RETURN_TYPES = (LATENT, "INT", "STRING")
    RETURN_NAMES = ("latent", "seed", "report")
    OUTPUT_TOOLTIPS = ("Video + audio latents.", "The seed actually used.", "The settings actually used.")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "From LTX-2 Model Loader."}),
                "conditioning": (CONDITIONING, {"tooltip": "From LTX-2 Text Encode (and Image Condition)."}),
                "width": ("INT", {"default": 768, "min": 64, "max": 4096, "step": 32,
                                  "tooltip": "Output width in pixels, a multiple of 32."}),
                "height": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 32,
                                   "tooltip": "Output height in pixels, a multiple of 32."}),
                "frames": ("INT", {"default": 121, "min": 0, "max": 1025, "step": 1,
                                   "tooltip": "Number of frames, 8k+1 (121 = 5 s at 24 fps). Others are snapped. "
                                   "0 = auto (LTX-2.5): its duration head picks 1-20 s from the prompt, snapped to "
                                   "8k+1 and shown in the report; the audio follows. Needs "
                                   "ltx-2.5-duration-head-bf16.safetensors in models/model_patches."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 60.0, "step": 0.001,
                                  "tooltip": "Playback frame rate; sets the duration and so the audio length."}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 200,
                                  "tooltip": "Denoising steps. 0 = the model's default (40 for 19B dev, 30 for "
                                  "2.3). Distilled models always sample their 8 distilled sigmas: 0 or 8."}),
                "seed": seed_input("Noise seed; -1 picks a random one (reported on the seed output)."),
                "guidance": (GUIDANCE_MODES, {"default": "auto",
                                              "tooltip": "auto: the values below on dev models, none on distilled; "
                                              "custom: the values below on any model; off: no guidance (1 model "
                                              "call per step)."}),
                "video_cfg": ("FLOAT", {"default": 3.0, "min": 1.0, "max": 20.0, "step": 0.1,
                                        "tooltip": "Classifier-free guidance for video (official 3.0; 1 = off)."}),
                "audio_cfg": ("FLOAT", {"default": 7.0, "min": 1.0, "max": 20.0, "step": 0.1,
                                        "tooltip": "Classifier-free guidance for audio (official 7.0; 1 = off)."}),
                "stg_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.05,
                                        "tooltip": "Spatio-temporal guidance strength (official 1.0; 0 = off)."}),
                "stg_blocks": ("STRING", {"default": "",
                                          "tooltip": "Transformer blocks STG perturbs, e.g. '29'. Empty = the "
                                          "model's default (29 for 19B, 28 for 2.3)."}),
                "modality_scale": ("FLOAT", {"default": 3.0, "min": 1.0, "max": 10.0, "step": 0.1,
                                             "tooltip": "Audio-video cross-modal guidance (official 3.0; 1 = off)."}),
                "rescale": ("FLOAT", {"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.01,
                                      "tooltip": "Guidance rescale against over-saturation (official 0.7)."}),
                "generate_audio": ("BOOLEAN", {"default": True,
                                               "tooltip": "Off: the video is generated as usual and the audio "
                                               "decodes to silence."}),
                "schedule": (list(SCHEDULES), {"default": "official",
                                               "tooltip": "official: the fixed-shift LTX-2 sigma schedule; "
                                               "diffusers: diffusers' resolution-dependent shift (guidance and "
                                               "x0 stay official). Distilled models ignore it."}),
                "acceleration": (list(ACCELERATIONS), {"default": "none",
                                                       "tooltip": "none: as set above; regular: half the steps; "
                                                       "high: a quarter of the steps with CFG only; full: the 8 "
                                                       "distilled sigmas without guidance (distilled models, or "
                                                       "a dev model with the distilled LoRA). regular and high "
                                                       "change nothing on distilled models."}),
            },
            "optional": {
                "upsampler": (UPSAMPLER, {"tooltip": "Connect a latent upsampler for multiscale: stage 1 at half "
                                          "size, x2 upsample, stage 2 at full size with the 3 distilled refinement "
                                          "steps and the family's distilled LoRA (dev models). Width and height "
                                          "must then be multiples of 64."}),
                "refine_model": (MODEL, {"tooltip": "Multiscale only: a model of your own for stage 2, used as it "
                                         "is. Default: this model with its family's distilled LoRA (e.g. "
                                         "ltx-2-19b-distilled-lora-384 from models/loras), as the official "
                                         "recipe does; a distilled model as it is."}),
                "stage_2": (list(STAGE_2_OPTIONS), {"default": STAGE_2_OPTIONS[0],
                                                    "tooltip": "Multiscale on a dev model: 'distilled LoRA' refines "
                                                    "with the family's distilled LoRA (the official recipe; an "
                                                    "error names the file when it is missing); 'without LoRA' "
                                                    "refines with the plain dev model (not the official recipe; "
                                                    "the report says so)."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    IS_CHANGED = classmethod(rerun_when_seed_is_random)

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, stg_blocks=None):
        """Refuse bad sizes when the prompt is queued, before any model is loaded (ComfyUI passes widget values
        only; inputs fed by links are checked when the node runs)."""
        from ..pipelines.geometry import check_side

        try:
            for name, value in (("width", width), ("height", height)):
                if value is not None:
                    check_side(name, value)
            if stg_blocks is not None:
                parse_blocks(stg_blocks)
        except L2AError as error:
            return str(error)
        return True

    def sample(self, model, conditioning, width, height, frames, fps, steps, seed, guidance, video_cfg, audio_cfg,
               stg_scale, stg_blocks, modality_scale, rescale, generate_audio, schedule, acceleration="none",
               upsampler=None, refine_model=None, stage_2=STAGE_2_OPTIONS[0], unique_id=None):
        from ..pipelines.previews import latent_to_rgb
        from ..pipelines.sampling import SamplerSettings, sample, sample_multiscale

        if guidance not in GUIDANCE_MODES:
            raise L2AError(f"guidance = {guidance!r} is unknown: use one of {', '.join(GUIDANCE_MODES)}.")
        if stage_2 not in STAGE_2_OPTIONS:
            raise L2AError(f"stage_2 = {stage_2!r} is unknown: use one of {', '.join(STAGE_2_OPTIONS)}.")
        chosen = Guidance(video_cfg, audio_cfg, stg_scale, stg_scale, modality_scale, modality_scale, rescale, rescale)
        if guidance == "off":
            chosen = Guidance.off()
        elif guidance == "auto" and model.variant == "distilled":
            chosen = None
        settings = SamplerSettings(
            width=width, height=height, num_frames=frames, fps=fps, steps=steps, seed=seed, guidance=chosen,
            stg_blocks=parse_blocks(stg_blocks), schedule=schedule, generate_audio=generate_audio,
            acceleration=acceleration,
        )
        show_previews = _comfy.previews_enabled()
        factors = model.configs.get("latent_rgb_factors")
        bar = None

        def on_step(step, total, preview):
            nonlocal bar
            bar = bar or _comfy.Progress(total, unique_id)
            bar.update(step, latent_to_rgb(preview(), factors) if show_previews else None)

        hooks = dict(on_step=on_step, check_interrupt=_comfy.throw_if_interrupted)
        if upsampler is not None:
            latent = sample_multiscale(model, conditioning, settings, upsampler,
                                       _stage_two_model(model, refine_model, stage_2), **hooks)
        else:
            latent = sample(model, conditioning, settings, **hooks)
        from ..pipelines.generate import condition_notes

        report = " | ".join([latent.report, *condition_notes(model, conditioning)])
        if abs(conditioning.frame_rate - latent.fps) > 1e-3:
            report += (f" | motion conditioned at {conditioning.frame_rate:g} fps, played at {latent.fps:g} fps "
                       f"(motion x{latent.fps / conditioning.frame_rate:.2f})")
        return {"ui": {"text": [report]}, "result": (latent, latent.seed, report)}


def _stage_two_model(model, refine_model, stage_2: str):
    """The connected refine model as it is; else the official recipe, or the model itself when asked."""
    from ..pipelines.lora import with_distilled_lora

    if refine_model is not None:
        return refine_model
    if stage_2 == STAGE_2_OPTIONS[1]:
        return model
    return with_distilled_lora(model, _comfy.folder_paths_for("loras"),
                               without=f"Or set stage_2 to '{STAGE_2_OPTIONS[1]}' to refine without it.")


NODE_CLASS_MAPPINGS = {"L2A_Sampler": L2A_Sampler}
NODE_DISPLAY_NAME_MAPPINGS = {"L2A_Sampler": "LTX-2 Sampler (video + audio)"}
