"""Audio-aware editing nodes: extend a clip, generate video for given audio, retake a time window."""

from ..pipelines.errors import L2AError
from . import _comfy
from .common import CATEGORY, CONDITIONING, MODEL, rerun_when_seed_is_random, seed_input

OUTPUTS = ("IMAGE", "AUDIO", "FLOAT", "STRING")
OUTPUT_NAMES = ("images", "audio", "fps", "report")
SIZE_MODES = ["crop", "resize"]


def _shared_widgets():
    """Seed, steps and guidance, as on the sampler."""
    return {
        "seed": seed_input("Noise seed; -1 picks a random one (reported)."),
        "steps": ("INT", {"default": 0, "min": 0, "max": 200,
                          "tooltip": "Denoising steps; 0 = the model's default."}),
        "guidance": (["auto", "off"], {"default": "auto",
                                       "tooltip": "auto: the model's official guidance (none on distilled models); "
                                       "off: one model call per step."}),
    }


def _clip_widgets():
    """How a clip is read: the size fix and the frame rate of IMAGE frames."""
    return {
        "size_mode": (SIZE_MODES, {"default": "crop",
                                   "tooltip": "For clips whose size is not a multiple of 32: crop the centre or "
                                   "resize (reported)."}),
        "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 60.0, "step": 0.001,
                          "tooltip": "Frame rate of IMAGE frames (a VIDEO brings its own)."}),
    }


def _clip_inputs():
    return {
        "video": ("VIDEO", {"tooltip": "The clip, e.g. from core LoadVideo; its frame rate and audio are used."}),
        "images": ("IMAGE", {"tooltip": "The clip as frames (instead of a VIDEO); use fps for their rate."}),
        "audio": ("AUDIO", {"tooltip": "Sound for the frames given as images (a VIDEO brings its own)."}),
    }


def _video_parts(video):
    """Frames, fps, audio and a note from a VIDEO: a file-backed one is read with variable frame rates retimed."""
    import os

    source = video.get_stream_source() if hasattr(video, "get_stream_source") else None
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(source):
        from ..pipelines.media import read_clip

        return read_clip(source)
    parts = video.get_components()
    return parts.images, parts.frame_rate, parts.audio, ""


def _clip(video, images, audio, fps, size_mode):
    """A Clip from a VIDEO or IMAGE frames (+ AUDIO), sized to multiples of 32; changes are reported."""
    from ..pipelines.av_edit import Clip, fit_clip

    notes = []
    if video is not None:
        images, fps, own_audio, note = _video_parts(video)
        audio = own_audio if audio is None else audio
        notes.append(note)
    if images is None:
        raise L2AError("no clip given: connect a VIDEO (e.g. from LoadVideo) or IMAGE frames.")
    waveform = rate = None
    if audio is not None:
        from ..pipelines.media import audio_sample_rate

        waveform, rate = audio["waveform"][0], audio_sample_rate(audio)
    clip, note = fit_clip(Clip(images.float(), float(fps), waveform, rate), size_mode)
    return clip, " | ".join(n for n in [*notes, note] if n)


def _settings(seed, steps, guidance, fps=24.0, width=768, height=512):
    from ..pipelines.families import Guidance
    from ..pipelines.sampling import SamplerSettings

    return SamplerSettings(width=width, height=height, fps=fps, steps=steps, seed=seed,
                           guidance=Guidance.off() if guidance == "off" else None)


def _hooks(unique_id):
    return {"on_step": _comfy.step_progress(unique_id), "check_interrupt": _comfy.throw_if_interrupted}


def _outputs(result, note=""):
    from ..pipelines.media import comfy_audio

    clip = result.clip
    report = " | ".join(part for part in (note, result.report) if part)
    audio = comfy_audio(clip.audio, clip.sample_rate) if clip.audio is not None else None
    return {"ui": {"text": [report]}, "result": (clip.frames, audio, float(clip.fps), report)}


class L2A_Extend:
    DESCRIPTION = (
        "Continues a clip, video and sound together: the last overlap frames and their audio are kept clean while "
        "the continuation is generated, then the clip is returned with the new part appended (same size and fps) "
        "and the sound crossfaded over the overlap. A clip without audio gets freshly generated sound. Long "
        "requests are made in parts. Extending backwards (prepending) is not offered: LTX-2's video latents are "
        "causal, so a clean end cannot be encoded on its own."
    )
    CATEGORY = f"{CATEGORY}/edit"
    RETURN_TYPES = OUTPUTS
    RETURN_NAMES = OUTPUT_NAMES
    FUNCTION = "extend"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "add_seconds": ("FLOAT", {"default": 5.0, "min": 1.0, "max": 120.0, "step": 0.1,
                                          "tooltip": "How much to add, in seconds (more than ~20 s is made in "
                                          "several parts)."}),
                "add_frames": ("INT", {"default": 0, "min": 0, "max": 2880, "step": 8,
                                       "tooltip": "How much to add, in frames (a multiple of 8); 0 = use seconds."}),
                "overlap_frames": ("INT", {"default": 25, "min": 9, "max": 257, "step": 8,
                                           "tooltip": "How many of the clip's last frames (8k+1) the continuation "
                                           "starts from; their sound is crossfaded with the new sound."}),
                **_clip_widgets(),
                **_shared_widgets(),
            },
            "optional": {
                "model": (MODEL, {"tooltip": "From LTX-2 Model Loader (local extension)."}),
                "conditioning": (CONDITIONING, {"tooltip": "What happens next (LTX-2 Text Encode)."}),
                **_clip_inputs(),
                "backend": ("L2A_BACKEND", {"tooltip": "A hosted backend extends on the provider instead (fal, "
                                            "WaveSpeed LTX-2.3); the prompt is then the conditioning's text or "
                                            "`prompt`."}),
                "prompt": ("STRING", {"multiline": True, "default": "",
                                      "tooltip": "What happens next, for a hosted backend without conditioning."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    IS_CHANGED = classmethod(rerun_when_seed_is_random)

    def extend(self, add_seconds, add_frames, overlap_frames, size_mode, fps, seed, steps, guidance, model=None,
               conditioning=None, video=None, images=None, audio=None, backend=None, prompt="", unique_id=None):
        from ..pipelines.av_edit import check_extend, extend, frames_to_add

        clip, note = _clip(video, images, audio, fps, size_mode)
        frames = frames_to_add(add_seconds, add_frames, clip.fps)
        check_extend(clip, frames, overlap_frames)
        if backend is not None and not hasattr(backend, "checkpoint"):
            text = prompt.strip() or (conditioning.prompt if conditioning is not None else "")
            return _hosted_extend(backend, clip, text, frames / clip.fps, seed, unique_id, note)
        if backend is not None:
            backend.load()
            model = model or backend.model
        if model is None or conditioning is None:
            raise L2AError("local extension needs a model and conditioning: connect LTX-2 Model Loader and LTX-2 "
                           "Text Encode (or a hosted backend).")
        result = extend(model, conditioning, clip, frames, overlap_frames, _settings(seed, steps, guidance),
                        _hooks(unique_id))
        return _outputs(result, note)


def _hosted_extend(backend, clip, prompt, seconds, seed, unique_id, note):
    """Extend on a provider: the clip is written to a file, uploaded, and the provider's video comes back."""
    from ..pipelines.backend import Hooks
    from ..pipelines.hosted.types import GenerationRequest
    from ..pipelines.media import comfy_audio, read_video, write_video
    from ..pipelines.sampling import resolve_seed

    if not prompt:
        raise L2AError("hosted extension needs a prompt: write one in `prompt` or connect LTX-2 Text Encode.")
    folder = _comfy.temp_directory()
    source = write_video(folder / f"l2a_extend_source_{resolve_seed(-1)}.mp4", clip.frames, clip.fps,
                         audio=clip.audio, sample_rate=clip.sample_rate)
    request = GenerationRequest(mode="extend", prompt=prompt, seed=resolve_seed(seed), video=source,
                                duration=seconds, fps=clip.fps)
    hooks = Hooks(on_status=lambda text: _comfy.send_status(text, unique_id),
                  check_interrupt=_comfy.throw_if_interrupted)
    outcome = backend.generate(request, _comfy.output_directory() / "LTX-2" / "hosted", hooks)
    frames, fps, audio = read_video(outcome.path)
    report = " | ".join(part for part in (note, outcome.report) if part)
    waveform = comfy_audio(audio["waveform"][0], audio["sample_rate"]) if audio else None
    return {"ui": {"text": [report]}, "result": (frames, waveform, float(fps), report)}


class L2A_AudioToVideo:
    DESCRIPTION = (
        "Generates video for given audio (lip-sync, music video): the video is as long as the audio (2-20 s) and "
        "the audio is kept exactly as given, frozen while the video is generated and passed through untouched. "
        "Add LTX-2 Image Condition to the conditioning for a first frame."
    )
    CATEGORY = f"{CATEGORY}/edit"
    RETURN_TYPES = OUTPUTS
    RETURN_NAMES = OUTPUT_NAMES
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "From LTX-2 Model Loader."}),
                "conditioning": (CONDITIONING, {"tooltip": "What to show (LTX-2 Text Encode, + Image Condition)."}),
                "audio": ("AUDIO", {"tooltip": "2 to 20 s of speech or music, e.g. from core LoadAudio."}),
                "width": ("INT", {"default": 768, "min": 64, "max": 4096, "step": 32,
                                  "tooltip": "Output width, a multiple of 32."}),
                "height": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 32,
                                   "tooltip": "Output height, a multiple of 32."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 60.0, "step": 0.001,
                                  "tooltip": "Frame rate of the video."}),
                **_shared_widgets(),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    IS_CHANGED = classmethod(rerun_when_seed_is_random)

    def generate(self, model, conditioning, audio, width, height, fps, seed, steps, guidance, unique_id=None):
        from ..pipelines.av_edit import audio_to_video

        settings = _settings(seed, steps, guidance, fps, width, height)
        result = audio_to_video(model, conditioning, audio["waveform"][0], audio["sample_rate"], settings,
                                _hooks(unique_id))
        return _outputs(result)


class L2A_Retake:
    DESCRIPTION = (
        "Regenerates a time window of a clip (video, audio or both) from a prompt and keeps everything outside it "
        "exactly; the new sound is crossfaded in and out at the window's edges."
    )
    CATEGORY = f"{CATEGORY}/edit"
    RETURN_TYPES = OUTPUTS
    RETURN_NAMES = OUTPUT_NAMES
    FUNCTION = "retake"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "From LTX-2 Model Loader."}),
                "conditioning": (CONDITIONING, {"tooltip": "What happens inside the window (LTX-2 Text Encode)."}),
                "start_seconds": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 20.0, "step": 0.01,
                                            "tooltip": "Where the window starts."}),
                "end_seconds": ("FLOAT", {"default": 2.0, "min": 0.0, "max": 20.0, "step": 0.01,
                                          "tooltip": "Where the window ends (after start, inside the clip)."}),
                "regenerate": (["both", "video", "audio"], {"default": "both",
                                                            "tooltip": "What to regenerate inside the window."}),
                **_clip_widgets(),
                **_shared_widgets(),
            },
            "optional": _clip_inputs(),
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    IS_CHANGED = classmethod(rerun_when_seed_is_random)

    def retake(self, model, conditioning, start_seconds, end_seconds, regenerate, size_mode, fps, seed, steps,
               guidance, video=None, images=None, audio=None, unique_id=None):
        from ..pipelines.av_edit import retake

        clip, note = _clip(video, images, audio, fps, size_mode)
        result = retake(model, conditioning, clip, start_seconds, end_seconds, regenerate,
                        _settings(seed, steps, guidance), _hooks(unique_id))
        return _outputs(result, note)


NODE_CLASS_MAPPINGS = {"L2A_Extend": L2A_Extend, "L2A_AudioToVideo": L2A_AudioToVideo, "L2A_Retake": L2A_Retake}
NODE_DISPLAY_NAME_MAPPINGS = {
    "L2A_Extend": "LTX-2 Extend (video + audio)",
    "L2A_AudioToVideo": "LTX-2 Audio to Video (lip-sync)",
    "L2A_Retake": "LTX-2 Retake (time window)",
}
