"""Audio-aware editing nodes: extend a clip, generate video for given audio, retake a time window."""

from ..pipelines.choices import RETAKE_PARTS
from ..pipelines.errors import L2AError
from . import _comfy
from .common import CATEGORY, CONDITIONING, MODEL, rerun_when_seed_is_random, seed_input
from .hosted import _image_file

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


def _clip_parts(video, images, audio, fps):
    """(frames, fps, waveform, sample rate, notes) of a VIDEO or IMAGE frames, with the given AUDIO or the video's."""
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
    return images, float(fps), waveform, rate, notes


def _clip(video, images, audio, fps, size_mode):
    """A Clip from a VIDEO or IMAGE frames (+ AUDIO), sized to multiples of 32; changes are reported."""
    from ..pipelines.av_edit import Clip, fit_clip

    images, fps, waveform, rate, notes = _clip_parts(video, images, audio, fps)
    clip, note = fit_clip(Clip(images.float(), fps, waveform, rate), size_mode)
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


def _on_backend(backend, unique_id, local, hosted):
    """Run the node's local work (`local(local_backend or None)`) without a backend or on a Local Backend, its hosted
    work (`hosted(hosted_backend)`) on a Hosted Backend, and through LTX-2 Fallback on whichever can run here; the
    fallback's notice leads the report."""
    from ..pipelines.backend import run_on

    if backend is None:
        return local(None)
    result, notices = run_on(backend, local, hosted, lambda text: _comfy.send_status(text, unique_id))
    if notices:
        frames, audio, fps, report = result["result"]
        result = _hosted_outputs(frames, audio, fps, " | ".join([*notices, report]))
    return result


def _local_parts(local_backend, model, conditioning, prompt, fps, what):
    """The model and conditioning a local edit runs with: the connected ones, else the Local Backend's model and
    the prompt encoded with its text encoder."""
    if local_backend is not None:
        local_backend.load()
        model = model or local_backend.model
        if conditioning is None and prompt.strip() and local_backend.text_encoder is not None:
            from ..pipelines.conditioning import encode_text

            conditioning = encode_text(local_backend.text_encoder, prompt, None, fps)
    if model is None or conditioning is None:
        raise L2AError(f"local {what} needs a model and conditioning: connect LTX-2 Model Loader and LTX-2 Text Encode, "
                       "or a backend (a Local Backend with a prompt, a Hosted Backend or LTX-2 Fallback).")
    return model, conditioning


def _hosted_prompt(prompt, conditioning, what, optional=False):
    text = prompt.strip() or (conditioning.prompt if conditioning is not None else "")
    if not text and not optional:
        raise L2AError(f"hosted {what} needs a prompt: write one in `prompt` or connect LTX-2 Text Encode.")
    return text


def _run_hosted(backend, request, unique_id, note=""):
    """Run a request on a hosted backend; (provider video file, report)."""
    from ..pipelines.backend import Hooks

    hooks = Hooks(on_status=lambda text: _comfy.send_status(text, unique_id),
                  check_interrupt=_comfy.throw_if_interrupted)
    outcome = backend.generate(request, _comfy.output_directory() / "LTX-2" / "hosted", hooks)
    return outcome.path, " | ".join(part for part in (note, f"seed {outcome.seed}", outcome.report) if part)


def _hosted_outputs(frames, audio, fps, report):
    return {"ui": {"text": [report]}, "result": (frames, audio, float(fps), report)}


def _hosted_clip_outputs(path, report):
    """The node's outputs from a provider's video file: its frames, sound and rate."""
    from ..pipelines.media import comfy_audio, read_video

    frames, fps, sound = read_video(path)
    waveform = comfy_audio(sound["waveform"][0], sound["sample_rate"]) if sound else None
    return _hosted_outputs(frames, waveform, fps, report)


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

        def local(local_backend):
            use_model, use_conditioning = _local_parts(local_backend, model, conditioning, prompt, float(clip.fps),
                                                       "extension")
            result = extend(use_model, use_conditioning, clip, frames, overlap_frames,
                            _settings(seed, steps, guidance), _hooks(unique_id))
            return _outputs(result, note)

        def hosted(hosted_backend):
            text = _hosted_prompt(prompt, conditioning, "extension")
            return _hosted_extend(hosted_backend, clip, text, frames / clip.fps, seed, unique_id, note)

        return _on_backend(backend, unique_id, local, hosted)


def _hosted_extend(backend, clip, prompt, seconds, seed, unique_id, note):
    """Extend on a provider: the clip is written to a file, uploaded, and the provider's video comes back."""
    from ..pipelines.hosted.types import GenerationRequest
    from ..pipelines.media import write_video
    from ..pipelines.sampling import resolve_seed

    folder = _comfy.temp_directory()
    source = write_video(folder / f"l2a_extend_source_{resolve_seed(-1)}.mp4", clip.frames, clip.fps,
                         audio=clip.audio, sample_rate=clip.sample_rate)
    request = GenerationRequest(mode="extend", prompt=prompt, seed=resolve_seed(seed), video=source,
                                duration=seconds, fps=clip.fps)
    return _hosted_clip_outputs(*_run_hosted(backend, request, unique_id, note))


class L2A_AudioToVideo:
    DESCRIPTION = (
        "Generates video for given audio (lip-sync, music video): the video is as long as the audio (2-20 s) and "
        "the audio is kept exactly as given, frozen while the video is generated and passed through untouched. "
        "Add LTX-2 Image Condition to the conditioning, or connect an image, for a first frame. Runs on any "
        "backend: locally, on fal (LTX-2 19B distilled) or the LTX API (LTX-2.5), or local with a hosted fallback; "
        "hosted, the AUDIO output is still the given audio (cut to the video), not the provider's copy."
    )
    CATEGORY = f"{CATEGORY}/edit"
    RETURN_TYPES = OUTPUTS
    RETURN_NAMES = OUTPUT_NAMES
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio": ("AUDIO", {"tooltip": "2 to 20 s of speech or music, e.g. from core LoadAudio (hosted: "
                                    "fal up to 19.2 s)."}),
                "width": ("INT", {"default": 768, "min": 64, "max": 4096, "step": 32,
                                  "tooltip": "Output width, a multiple of 32."}),
                "height": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 32,
                                   "tooltip": "Output height, a multiple of 32."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 60.0, "step": 0.001,
                                  "tooltip": "Frame rate of the video."}),
                **_shared_widgets(),
            },
            "optional": {
                "model": (MODEL, {"tooltip": "From LTX-2 Model Loader (local; not needed with a backend)."}),
                "conditioning": (CONDITIONING, {"tooltip": "What to show (LTX-2 Text Encode, + Image Condition). "
                                                "A hosted backend uses its prompt and first frame."}),
                "image": ("IMAGE", {"tooltip": "First frame (optional); locally it is used when the conditioning "
                                    "has none."}),
                "backend": ("L2A_BACKEND", {"tooltip": "Where to run: LTX-2 Local Backend, Hosted Backend (fal "
                                            "LTX-2 19B distilled, the LTX API's LTX-2.5) or Fallback."}),
                "prompt": ("STRING", {"multiline": True, "default": "",
                                      "tooltip": "What to show, for a backend without conditioning (it wins over "
                                      "the conditioning's prompt on a hosted backend)."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    IS_CHANGED = classmethod(rerun_when_seed_is_random)

    def generate(self, audio, width, height, fps, seed, steps, guidance, model=None, conditioning=None, image=None,
                 backend=None, prompt="", unique_id=None):
        from ..pipelines.media import audio_sample_rate

        waveform, rate = audio["waveform"][0], audio_sample_rate(audio)

        def local(local_backend):
            from ..pipelines.av_edit import audio_to_video

            use_model, use_conditioning = _local_parts(local_backend, model, conditioning, prompt, fps,
                                                       "audio-to-video")
            if image is not None and not any(c.frame_index == 0 for c in use_conditioning.images):
                from ..pipelines.conditioning import image_condition

                use_conditioning = use_conditioning.with_image(image_condition(image, 1.0,
                                                                               use_model.family.image_crf))
            settings = _settings(seed, steps, guidance, fps, width, height)
            return _outputs(audio_to_video(use_model, use_conditioning, waveform, rate, settings, _hooks(unique_id)))

        def hosted(hosted_backend):
            return _hosted_audio_to_video(hosted_backend, waveform, rate, image, conditioning, prompt, width, height,
                                          fps, seed, unique_id)

        return _on_backend(backend, unique_id, local, hosted)


class L2A_Retake:
    DESCRIPTION = (
        "Regenerates a time window of a clip (video, audio or both) from a prompt and keeps everything outside it "
        "exactly; the new sound is crossfaded in and out at the window's edges. Runs on any backend: locally, on "
        "the LTX API's retake (synchronous: sent once, never resent; a lost answer cannot be resumed), or local "
        "with a hosted fallback."
    )
    CATEGORY = f"{CATEGORY}/edit"
    RETURN_TYPES = OUTPUTS
    RETURN_NAMES = OUTPUT_NAMES
    FUNCTION = "retake"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "start_seconds": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 20.0, "step": 0.01,
                                            "tooltip": "Where the window starts."}),
                "end_seconds": ("FLOAT", {"default": 2.0, "min": 0.0, "max": 20.0, "step": 0.01,
                                          "tooltip": "Where the window ends (after start, inside the clip)."}),
                "regenerate": (list(RETAKE_PARTS), {"default": "both",
                                                            "tooltip": "What to regenerate inside the window."}),
                **_clip_widgets(),
                **_shared_widgets(),
            },
            "optional": {
                **_clip_inputs(),
                "model": (MODEL, {"tooltip": "From LTX-2 Model Loader (local; not needed with a backend)."}),
                "conditioning": (CONDITIONING, {"tooltip": "What happens inside the window (LTX-2 Text Encode)."}),
                "backend": ("L2A_BACKEND", {"tooltip": "Where to run: LTX-2 Local Backend, Hosted Backend (the LTX "
                                            "API's retake: window 2 s or longer, clips of 73 frames to 20 s) or "
                                            "Fallback."}),
                "prompt": ("STRING", {"multiline": True, "default": "",
                                      "tooltip": "What happens inside the window, for a backend without "
                                      "conditioning."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    IS_CHANGED = classmethod(rerun_when_seed_is_random)

    def retake(self, start_seconds, end_seconds, regenerate, size_mode, fps, seed, steps, guidance, model=None,
               conditioning=None, video=None, images=None, audio=None, backend=None, prompt="", unique_id=None):
        def local(local_backend):
            from ..pipelines.av_edit import retake

            use_model, use_conditioning = _local_parts(local_backend, model, conditioning, prompt, fps, "retake")
            clip, note = _clip(video, images, audio, fps, size_mode)
            result = retake(use_model, use_conditioning, clip, start_seconds, end_seconds, regenerate,
                            _settings(seed, steps, guidance), _hooks(unique_id))
            return _outputs(result, note)

        def hosted(hosted_backend):
            return _hosted_retake(hosted_backend, video, images, audio, fps, conditioning, prompt, start_seconds,
                                  end_seconds, regenerate, seed, unique_id)

        return _on_backend(backend, unique_id, local, hosted)


def _hosted_audio_to_video(backend, waveform, rate, image, conditioning, prompt, width, height, fps, seed,
                           unique_id):
    """Audio-to-video on a provider: the audio goes up as a WAV; the video comes back, and the AUDIO output is the
    given audio itself cut to the video's length (so a saved file carries it encoded once, not the provider's
    re-encoded copy)."""
    from ..pipelines.hosted.types import GenerationRequest
    from ..pipelines.media import comfy_audio, read_video
    from ..pipelines.sampling import resolve_seed

    first = image if image is not None else _conditioning_frame(conditioning)
    text = _hosted_prompt(prompt, conditioning, "audio-to-video", optional=first is not None)
    request = GenerationRequest(mode="a2v", prompt=text, seed=resolve_seed(seed), audio=_audio_file(waveform, rate),
                                image=_image_file(first, "first") if first is not None else None, width=width,
                                height=height, fps=fps)
    path, report = _run_hosted(backend, request, unique_id)
    frames, video_fps, _provider_audio = read_video(path)
    samples = min(waveform.shape[-1], round(frames.shape[0] / float(video_fps) * rate))
    return _hosted_outputs(frames, comfy_audio(waveform[..., :samples], rate), video_fps, report)


def _hosted_retake(backend, video, images, audio, fps, conditioning, prompt, start, end, regenerate, seed,
                   unique_id):
    """Retake on a provider: the clip goes up as it is (a file-backed VIDEO unchanged, else the frames and sound
    written to an mp4); the provider's clip comes back with its new window, picture and sound."""
    from ..pipelines.hosted.types import GenerationRequest
    from ..pipelines.sampling import resolve_seed

    request = GenerationRequest(mode="retake", prompt=_hosted_prompt(prompt, conditioning, "retake", optional=True),
                                seed=resolve_seed(seed), video=_clip_file(video, images, audio, fps),
                                window_start=start, window_end=end, retake_part=regenerate)
    return _hosted_clip_outputs(*_run_hosted(backend, request, unique_id))


def _conditioning_frame(conditioning):
    """The first-frame image of a conditioning (LTX-2 Image Condition at frame 0), as IMAGE, or None."""
    import torch

    for condition in getattr(conditioning, "images", ()) or ():
        if condition.frame_index == 0:
            return torch.from_numpy(condition.pixels).float().div(255)[None]
    return None


def _audio_file(waveform, rate):
    """The audio as a WAV in ComfyUI's temp folder, named after its samples (the same audio, the same file)."""
    import hashlib

    from ..pipelines.media import write_wav

    data = waveform.detach().cpu().float().contiguous().numpy().tobytes()
    name = f"l2a_audio_{hashlib.sha256(data + str(rate).encode()).hexdigest()[:16]}.wav"
    path = _comfy.temp_directory() / name
    return path if path.is_file() else write_wav(path, waveform, rate)


def _clip_file(video, images, audio, fps):
    """A file of the clip: a file-backed VIDEO as it is, else the frames (+ sound) written to an mp4."""
    import os

    from ..pipelines.media import write_video
    from ..pipelines.sampling import resolve_seed

    source = video.get_stream_source() if video is not None and hasattr(video, "get_stream_source") else None
    if isinstance(source, (str, os.PathLike)) and os.path.isfile(source) and audio is None:
        return source
    images, fps, waveform, rate, _notes = _clip_parts(video, images, audio, fps)
    return write_video(_comfy.temp_directory() / f"l2a_retake_source_{resolve_seed(-1)}.mp4", images, fps,
                       audio=waveform, sample_rate=rate)


NODE_CLASS_MAPPINGS = {"L2A_Extend": L2A_Extend, "L2A_AudioToVideo": L2A_AudioToVideo, "L2A_Retake": L2A_Retake}
NODE_DISPLAY_NAME_MAPPINGS = {
    "L2A_Extend": "LTX-2 Extend (video + audio)",
    "L2A_AudioToVideo": "LTX-2 Audio to Video (lip-sync)",
    "L2A_Retake": "LTX-2 Retake (time window)",
}
