"""One generation from prompt (and image) to an mp4 file: the node chain's steps in one call, for the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from .conditioning import encode_text, image_condition
from .decoding import Tiling, decode_audio, decode_video
from .sampling import SamplerSettings, sample


def generate_to_file(model, text_encoder, prompt: str, out_path, settings: SamplerSettings, *,
                     negative_prompt: str | None = None, image=None, image_strength: float = 1.0, crf: int = 33,
                     tiling: Tiling | None = None, on_step=None, check_interrupt=None):
    """Encode, sample, decode and write; returns (path, latent). `image` is a path, array or PIL image."""
    from .media import load_image, write_video

    conditioning = encode_text(text_encoder, prompt, negative_prompt, settings.fps)
    if image is not None:
        pixels = load_image(image) if isinstance(image, (str, Path)) else image
        conditioning = conditioning.with_image(image_condition(pixels, image_strength, crf))
    latent = sample(model, conditioning, settings, on_step=on_step, check_interrupt=check_interrupt)
    frames = decode_video(model, latent, tiling)
    waveform, sample_rate = decode_audio(model, latent)
    metadata = {"comment": latent.report, "l2a_settings": json.dumps({**latent.settings, "prompt": prompt})}
    audio = waveform[0] if latent.has_audio else None
    path = write_video(out_path, frames, latent.fps, audio=audio, sample_rate=sample_rate, metadata=metadata)
    return Path(path), latent
