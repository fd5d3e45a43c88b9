"""Backend nodes: generate locally or on a hosted API from the same graph, with a fallback between them.

No node has a key widget: keys come from the environment or the keys file in ComfyUI's user directory (set
through the pack's server route), so they never enter a workflow, the prompt history or a saved file.
"""

import re
from pathlib import Path

from ..pipelines.errors import L2AError
from ..pipelines.families import DEFAULT_NEGATIVE_PROMPT
from . import _comfy
from .common import CATEGORY, MODEL, TEXT_ENCODER, rerun_when_seed_is_random, seed_input
from .loaders import _model_choices, _text_encoder_choices, model_folders, resolve_model, resolve_text_encoder

BACKEND = "L2A_BACKEND"
PROVIDERS = ["fal", "wavespeed", "vibedream", "bytecompute", "ltx"]
TRI_STATE = ["provider default", "on", "off"]
CAMERA_PRESETS = ["none", "dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down", "static"]
FAMILY_AUTO = "auto (match the local model's family)"


def _endpoint_choices() -> list[str]:
    """'auto', the local-family 'auto' and every provider endpoint, for the hosted backend's endpoint widget."""
    from ..pipelines.hosted import provider_class

    choices = ["auto", FAMILY_AUTO]
    for name in PROVIDERS:
        try:
            choices += sorted(provider_class(name).ENDPOINTS)
        except (ImportError, AttributeError):
            continue
    return choices


def _tri(value: str):
    return None if value == "provider default" else value == "on"


class L2A_LocalBackend:
    DESCRIPTION = (
        "Generate on this machine with LTX-2 model files (loaded on first use). Connect it to LTX-2 Generate, or "
        "as the primary of LTX-2 Fallback so a hosted API takes over when the files, a GPU or memory are missing."
    )
    CATEGORY = f"{CATEGORY}/backends"
    RETURN_TYPES = (BACKEND,)
    RETURN_NAMES = ("backend",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "ckpt_name": (_model_choices(), {"tooltip": "The LTX-2 checkpoint in models/checkpoints (LTX-2.5: "
                                                 "its transformer in models/diffusion_models, its VAE files found "
                                                 "in models/vae)."}),
                "text_encoder_name": (_text_encoder_choices(), {"tooltip": "The model family's text encoder in "
                                                                "models/text_encoders: Gemma 3 for LTX-2 19B and "
                                                                "LTX-2.3, LTX-2.5's own Gemma 4 file for LTX-2.5."}),
                "dtype": (["bf16", "fp16", "fp32"], {"default": "bf16", "tooltip": "Compute precision."}),
                "allow_cpu": ("BOOLEAN", {"default": False,
                                          "tooltip": "Run on the CPU when there is no GPU (very slow for the real "
                                          "model; a fallback is used otherwise)."}),
            },
            "optional": {
                "model": (MODEL, {"tooltip": "An already loaded model (instead of ckpt_name)."}),
                "text_encoder": (TEXT_ENCODER, {"tooltip": "An already loaded text encoder."}),
                "upsampler_name": ("STRING", {"default": "", "tooltip": "For multiscale: the latent upsampler "
                                              "file in models/latent_upscale_models (empty = the family's official "
                                              "one)."}),
                "multiscale": ("BOOLEAN", {"default": False,
                                           "tooltip": "Generate in two stages, the official recipe (fal's "
                                           "use_multiscale): half size, x2 latent upsample, then stage 2 of a dev "
                                           "model with its family's distilled LoRA from models/loras. Width and "
                                           "height become multiples of 64."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, ckpt_name=None, text_encoder_name=None):
        """A model file this machine lacks is not an error here (ComfyUI would refuse the prompt as "not in list"):
        the backend then reports itself unavailable, so LTX-2 Fallback can use its hosted fallback."""
        for name, value in (("ckpt_name", ckpt_name), ("text_encoder_name", text_encoder_name)):
            if value is not None and not str(value).strip():
                return f"{name} is empty: pick the LTX-2 model file (or leave the one the workflow names)."
        return True

    def make(self, ckpt_name, text_encoder_name, dtype, allow_cpu, model=None, text_encoder=None,
             upsampler_name="", multiscale=False):
        from ..pipelines.backend import LocalBackend

        def maybe(key, name, resolve=None):
            """The file, or where it was looked for (a missing file makes the backend unavailable, naming it)."""
            if not name:
                return None
            try:
                return resolve(name) if resolve else _comfy.resolve_path(key, name)
            except L2AError:
                folders = _comfy.folder_paths_for(key)
                return (folders[0] if folders else Path("models") / key) / name

        return (LocalBackend(
            checkpoint=maybe("checkpoints", ckpt_name, lambda name: resolve_model(name)[0]), checkpoint_name=ckpt_name,
            text_encoder_path=maybe("text_encoders", text_encoder_name, resolve_text_encoder),
            upsampler_path=maybe("latent_upscale_models", upsampler_name), dtype=dtype, allow_cpu=allow_cpu,
            model=model, text_encoder=text_encoder, device=None if allow_cpu else _comfy.torch_device(),
            folders={**{key: _comfy.folder_paths_for(key) for key in ("loras", "latent_upscale_models")},
                     **model_folders()},
            multiscale=multiscale,
        ),)


class L2A_HostedBackend:
    DESCRIPTION = (
        "Generate on a hosted API (fal.ai, WaveSpeedAI, vibedream, ByteCompute, Lightricks LTX API). The key comes "
        "from the provider's environment variable (FAL_KEY, WAVESPEED_API_KEY, VIBEDREAM_API_KEY, "
        "BYTECOMPUTE_API_KEY, LTX_API_KEY) or the pack's keys file; the estimated cost is shown before submitting."
    )
    CATEGORY = f"{CATEGORY}/backends"
    RETURN_TYPES = (BACKEND,)
    RETURN_NAMES = ("backend",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "provider": (PROVIDERS, {"default": "fal", "tooltip": "Where to generate."}),
                "endpoint": (_endpoint_choices(), {"default": "auto",
                                                   "tooltip": "The provider's model endpoint. auto: the provider's "
                                                   "LTX-2 endpoint for the request (text, image, extend, audio or "
                                                   "retake). auto (match the local model's family): as the fallback "
                                                   "of LTX-2 Fallback, the endpoint of the local model's family "
                                                   "(LTX-2 19B, 2.3 or 2.5); refused, never swapped, where the "
                                                   "provider has none."}),
                "max_cost_usd": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1000.0, "step": 0.01,
                                           "tooltip": "Refuse to submit when the estimate is higher (0 = no "
                                           "limit)."}),
                "reuse_results": ("BOOLEAN", {"default": True,
                                              "tooltip": "An identical request (same seed and inputs) reuses the "
                                              "stored result instead of paying again."}),
                "deadline_minutes": ("INT", {"default": 30, "min": 1, "max": 240,
                                             "tooltip": "Give up waiting after this long (the job id is reported "
                                             "for LTX-2 Resume Job)."}),
                "multiscale": (TRI_STATE, {"default": "provider default",
                                           "tooltip": "fal: two-stage generation (use_multiscale)."}),
                "prompt_expansion": (TRI_STATE, {"default": "provider default",
                                                 "tooltip": "fal: let the provider expand the prompt."}),
            }
        }

    def make(self, provider, endpoint, max_cost_usd, reuse_results, deadline_minutes, multiscale, prompt_expansion):
        from ..pipelines.backend import HostedBackend

        options = {k: v for k, v in (("multiscale", _tri(multiscale)), ("prompt_expansion", _tri(prompt_expansion)))
                   if v is not None}
        return (HostedBackend(
            provider=provider, endpoint=None if endpoint in ("auto", FAMILY_AUTO) else endpoint,
            match_family=endpoint == FAMILY_AUTO, options=options,
            user_dir=_comfy.user_directory(), store_dir=_comfy.output_directory() / "LTX-2" / "hosted",
            reuse=reuse_results, max_cost_usd=max_cost_usd or None, deadline_s=deadline_minutes * 60.0,
        ),)


class L2A_Fallback:
    DESCRIPTION = (
        "Use the primary backend, and the fallback when the primary cannot run here (model files missing, no GPU, "
        "out of memory); the node's status says which ran and why."
    )
    CATEGORY = f"{CATEGORY}/backends"
    RETURN_TYPES = (BACKEND,)
    RETURN_NAMES = ("backend",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"primary": (BACKEND, {"tooltip": "Tried first, e.g. LTX-2 Local Backend."}),
                             "fallback": (BACKEND, {"tooltip": "Used when the primary cannot run."})}}

    def make(self, primary, fallback):
        from ..pipelines.backend import FallbackBackend

        return (FallbackBackend(primary, fallback),)


def _image_file(image, name: str):
    """An IMAGE input as a PNG file (hosted providers upload files)."""
    import numpy as np
    from PIL import Image

    from ..pipelines.media import to_uint8_rgb

    folder = _comfy.temp_directory()
    folder.mkdir(parents=True, exist_ok=True)
    pixels = to_uint8_rgb(image)
    path = folder / f"l2a_{name}_{abs(hash(pixels.tobytes())) % 10**12}.png"
    Image.fromarray(np.ascontiguousarray(pixels)).save(path)
    return path


def _video_outputs(path, report, unique_id):
    from ..pipelines.media import read_video

    frames, fps, audio = read_video(path)
    _comfy.send_status(report, unique_id)
    return {"ui": {"text": [report]}, "result": (_comfy.video_from_file(path), frames, audio, float(fps), report)}


def _hooks(unique_id):
    from ..pipelines.backend import Hooks

    return Hooks(on_step=_comfy.step_progress(unique_id), on_status=lambda text: _comfy.send_status(text, unique_id),
                 check_interrupt=_comfy.throw_if_interrupted)


VIDEO_OUTPUTS = ("VIDEO", "IMAGE", "AUDIO", "FLOAT", "STRING")
DURATION_CHOICES = ("as set", "auto")
VIDEO_OUTPUT_NAMES = ("video", "images", "audio", "fps", "report")


class L2A_Generate:
    DESCRIPTION = (
        "Text- or image-to-video with sound on any backend: local, hosted, or local with a hosted fallback. A mode "
        "or field a provider lacks is refused before anything is submitted, naming the providers that have it."
    )
    CATEGORY = f"{CATEGORY}/backends"
    RETURN_TYPES = VIDEO_OUTPUTS
    RETURN_NAMES = VIDEO_OUTPUT_NAMES
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "backend": (BACKEND, {"tooltip": "LTX-2 Local Backend, LTX-2 Hosted Backend or LTX-2 Fallback."}),
                "prompt": ("STRING", {"multiline": True, "default": "", "tooltip": "What to see and hear."}),
                "negative_prompt": ("STRING", {"multiline": True, "default": DEFAULT_NEGATIVE_PROMPT,
                                               "tooltip": "What to avoid (where the backend takes one)."}),
                "resolution": (["480p", "720p", "1080p", "custom"], {"default": "720p",
                                                                   "tooltip": "Size tier (the short side), or "
                                                                   "custom width x height."}),
                "aspect_ratio": (["16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "auto"], {
                    "default": "16:9", "tooltip": "With a tier; auto follows the image."}),
                "width": ("INT", {"default": 768, "min": 64, "max": 4096, "step": 32, "tooltip": "custom only."}),
                "height": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 32, "tooltip": "custom only."}),
                "duration_seconds": ("FLOAT", {"default": 5.0, "min": 0.0, "max": 20.0, "step": 0.1,
                                               "tooltip": "Length in seconds (0 = use frames)."}),
                "frames": ("INT", {"default": 121, "min": 9, "max": 481, "step": 8,
                                   "tooltip": "Length in frames when duration is 0."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 60.0, "step": 0.001, "tooltip": "Frame rate."}),
                "seed": seed_input("-1 = random (the seed used is reported; identical requests with a fixed seed "
                                   "reuse stored hosted results)."),
                "generate_audio": ("BOOLEAN", {"default": True, "tooltip": "Generate sound with the video."}),
                "camera": (CAMERA_PRESETS, {"default": "none", "tooltip": "Camera-control LoRA preset (LTX-2 19B)."}),
                "camera_scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                                           "tooltip": "Strength of the camera preset."}),
                "guidance_scale": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0, "step": 0.1,
                                             "tooltip": "Video CFG where the backend has it (0 = its default; "
                                             "a local distilled model then runs without guidance)."}),
                "steps": ("INT", {"default": 0, "min": 0, "max": 200,
                                  "tooltip": "Denoising steps where the backend has them (0 = its default)."}),
            },
            "optional": {
                "image": ("IMAGE", {"tooltip": "First frame (image-to-video)."}),
                "end_image": ("IMAGE", {"tooltip": "Last frame."}),
                "duration": (list(DURATION_CHOICES), {
                    "default": DURATION_CHOICES[0],
                    "tooltip": "as set: duration_seconds (or frames). auto: a local LTX-2.5 model's duration head "
                    "picks 1-20 s from the prompt (8k+1 frames, in the report; the audio follows); it needs "
                    "ltx-2.5-duration-head-bf16.safetensors in models/model_patches. Hosted providers have no "
                    "automatic duration: auto is refused there before anything is sent."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    IS_CHANGED = classmethod(rerun_when_seed_is_random)

    def generate(self, backend, prompt, negative_prompt, resolution, aspect_ratio, width, height, duration_seconds,
                 frames, fps, seed, generate_audio, camera, camera_scale, guidance_scale, steps, image=None,
                 end_image=None, duration=DURATION_CHOICES[0], unique_id=None):
        from ..pipelines.hosted.types import GenerationRequest
        from ..pipelines.sampling import resolve_seed

        if not prompt.strip():
            raise L2AError("prompt is empty: describe the scene, the motion and the sound you want.")
        if duration not in DURATION_CHOICES:
            raise L2AError(f"duration = {duration!r} is unknown: use one of {', '.join(DURATION_CHOICES)}.")
        custom = resolution == "custom"
        request = GenerationRequest(
            mode="i2v" if image is not None else "t2v", prompt=prompt, seed=resolve_seed(seed),
            negative_prompt=negative_prompt or None,
            image=_image_file(image, "image") if image is not None else None,
            end_image=_image_file(end_image, "end") if end_image is not None else None,
            width=width if custom else None, height=height if custom else None,
            resolution=None if custom else resolution, aspect_ratio=aspect_ratio,
            duration=duration_seconds or None, num_frames=None if duration_seconds else frames, fps=fps,
            generate_audio=generate_audio, camera=camera, camera_scale=camera_scale,
            guidance_scale=guidance_scale or None, num_inference_steps=steps or None,
            auto_duration=duration == "auto",
        )
        out_dir = _comfy.temp_directory() / "LTX-2"
        outcome = backend.generate(request, out_dir, _hooks(unique_id))
        return _video_outputs(outcome.path, f"seed {outcome.seed} | {outcome.report}", unique_id)


class L2A_ResumeJob:
    DESCRIPTION = (
        "Fetches a hosted job submitted earlier (e.g. after a deadline, a restart or a Cancel on a provider "
        "without cancel) by its job id, without submitting or paying again."
    )
    CATEGORY = f"{CATEGORY}/backends"
    RETURN_TYPES = VIDEO_OUTPUTS
    RETURN_NAMES = VIDEO_OUTPUT_NAMES
    FUNCTION = "resume"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "provider": (PROVIDERS, {"default": "fal", "tooltip": "The provider the job runs on."}),
                "endpoint": ("STRING", {"default": "", "tooltip": "The endpoint the job was submitted to (as "
                                        "reported with the job id); may stay empty for a job this ComfyUI "
                                        "submitted."}),
                "job_id": ("STRING", {"default": "", "tooltip": "The job (request) id."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def resume(self, provider, endpoint, job_id, unique_id=None):
        from ..pipelines.backend import HostedBackend
        from ..pipelines.hosted.jobs import resume_job
        from ..pipelines.hosted.store import ResultStore
        from ..pipelines.hosted.types import JobRef

        if not job_id.strip():
            raise L2AError("job_id is empty: paste the id the failed or interrupted run reported.")
        backend = HostedBackend(provider=provider, user_dir=_comfy.user_directory())
        job = JobRef(provider=provider, endpoint=endpoint.strip(), job_id=job_id.strip())
        store = _comfy.output_directory() / "LTX-2" / "hosted"
        safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", job.job_id).lstrip(".")  # the file stays in the output folder
        hooks = _hooks(unique_id)
        outcome = resume_job(backend.client(), job, store / f"{provider}_{safe_id}.mp4", store=ResultStore(store),
                             on_status=hooks.on_status, check_interrupt=hooks.check_interrupt)
        return _video_outputs(outcome.path, f"{provider}: job {job.job_id} fetched", unique_id)


NODE_CLASS_MAPPINGS = {
    "L2A_LocalBackend": L2A_LocalBackend,
    "L2A_HostedBackend": L2A_HostedBackend,
    "L2A_Fallback": L2A_Fallback,
    "L2A_Generate": L2A_Generate,
    "L2A_ResumeJob": L2A_ResumeJob,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "L2A_LocalBackend": "LTX-2 Local Backend",
    "L2A_HostedBackend": "LTX-2 Hosted Backend",
    "L2A_Fallback": "LTX-2 Fallback (local, else hosted)",
    "L2A_Generate": "LTX-2 Generate (any backend)",
    "L2A_ResumeJob": "LTX-2 Resume Job",
}
