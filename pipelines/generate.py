"""One generation from prompt (and images) to a video file: the node chain's steps in one call, for the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from .conditioning import encode_text, first_last_frame
from .decoding import Tiling, decode_audio, decode_video
from .errors import L2AError
from .sampling import SamplerSettings, sample, sample_multiscale


def _pixels(image):
    from .media import load_image

    return load_image(image) if isinstance(image, (str, Path)) else image


def generate_to_file(model, text_encoder, prompt: str, out_path, settings: SamplerSettings, *,
                     negative_prompt: str | None = None, image=None, image_strength: float = 1.0, end_image=None,
                     end_image_strength: float = 1.0, direction: str = "forward", crf: int = 33,
                     expand_prompt: bool = False, upsampler=None, refine_model=None, tiling: Tiling | None = None,
                     write_options: dict | None = None, on_step=None, check_interrupt=None):
    """Encode, sample (multiscale when an upsampler is given), decode and write; returns (path, latent, prompt).

    Multiscale refines with `refine_model` (`lora.with_distilled_lora(model, ...)` for the official recipe), which
    it then needs. Images are paths, arrays or PIL images; `write_options` go to the video writer (format, ...).
    """
    from .audio import pad_to_video
    from .media import write_video

    if upsampler is not None and refine_model is None:
        raise L2AError("multiscale needs the stage-2 model: the dev model with its family's distilled LoRA "
                       "(lora.with_distilled_lora), the distilled model, or the model itself to refine without it.")

    if expand_prompt:
        from .prompt_expansion import expand_prompt as expand

        prompt = expand(text_encoder, prompt, mode="i2v" if image is not None else "t2v").prompt
    conditioning = encode_text(text_encoder, prompt, negative_prompt, settings.fps)
    if image is not None or end_image is not None:
        conditioning = first_last_frame(
            conditioning, None if image is None else _pixels(image), None if end_image is None else _pixels(end_image),
            image_strength, end_image_strength, direction, crf,
        )
    hooks = dict(on_step=on_step, check_interrupt=check_interrupt)
    if upsampler is not None:
        latent = sample_multiscale(model, conditioning, settings, upsampler, refine_model, **hooks)
    else:
        latent = sample(model, conditioning, settings, **hooks)
    frames = decode_video(model, latent, tiling)
    waveform, sample_rate = decode_audio(model, latent)
    metadata = {"comment": latent.report, "l2a_settings": json.dumps({**latent.settings, "prompt": prompt})}
    audio = pad_to_video(waveform[0], frames.shape[0], latent.fps, sample_rate) if latent.has_audio else None
    path = write_video(out_path, frames, latent.fps, audio=audio, sample_rate=sample_rate, metadata=metadata,
                       **(write_options or {}))
    return Path(path), latent, prompt
