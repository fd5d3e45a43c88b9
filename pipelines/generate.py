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


def condition_notes(model, conditioning, image_names=(None, None)) -> list[str]:
    """What besides the prompt shaped a clip, for its report: each LoRA (camera presets by name) with its strength,
    each IC-LoRA with its reference, each pinned image with its frame and strength, and the direction when it is
    backward. `image_names` are the
    start and end image files' names where known."""
    from .families import with_camera_loras

    presets = {file.name.lower(): preset for family in with_camera_loras()
               for preset, file in family.camera_loras.items()}
    controls = getattr(model, "controls", ())
    controlled = {control.adapter for control in controls}
    notes = []
    for spec in getattr(model, "loras", ()):
        if spec.adapter in controlled:
            continue
        name = Path(spec.path).name
        preset = presets.get(name.lower())
        label = f"camera LoRA {preset} ({name})" if preset else f"LoRA {name}"
        notes.append(f"{label} x{spec.strength:g}")
    if controls:
        from .ic_lora import control_notes

        notes += control_notes(model)
    direction = getattr(conditioning, "direction", "forward")
    start_name, end_name = image_names
    if direction == "backward":
        start_name, end_name = end_name, start_name
    for condition in sorted(conditioning.images, key=lambda c: (c.frame_index < 0, c.frame_index)):
        if condition.frame_index == 0:
            what, name = "start image", start_name
        elif condition.frame_index == -1:
            what, name = "end image", end_name
        else:
            what, name = f"keyframe image at frame {condition.frame_index}", None
        notes.append(f"{what}{f' {Path(name).name}' if name else ''} (strength {condition.strength:g})")
    if direction == "backward":
        notes.append("direction backward (the images swap ends)")
    return notes


def generate_to_file(model, text_encoder, prompt: str, out_path, settings: SamplerSettings, *,
                     negative_prompt: str | None = None, image=None, image_strength: float = 1.0, end_image=None,
                     end_image_strength: float = 1.0, direction: str = "forward", crf: int = 33,
                     expand_prompt: bool = False, upsampler=None, refine_model=None, tiling: Tiling | None = None,
                     write_options: dict | None = None, on_step=None, check_interrupt=None,
                     image_names=(None, None)):
    """Encode, sample (multiscale when an upsampler is given), decode and write; returns (path, latent, prompt).

    Multiscale refines with `refine_model` (`lora.with_distilled_lora(model, ...)` for the official recipe), which
    it then needs. Images are paths, arrays or PIL images (`image_names` name them in the report when they are not
    paths); `write_options` go to the video writer (format, quality, ...). The report names the LoRAs, images and
    direction used.
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
    names = tuple(given if given is not None else (str(item) if isinstance(item, (str, Path)) else None)
                  for given, item in zip(image_names, (image, end_image)))
    notes = condition_notes(model, conditioning, names)
    hooks = dict(on_step=on_step, check_interrupt=check_interrupt)
    if upsampler is not None:
        latent = sample_multiscale(model, conditioning, settings, upsampler, refine_model, **hooks)
    else:
        latent = sample(model, conditioning, settings, **hooks)
    if notes:
        latent.report = " | ".join([latent.report, *notes])
    frames = decode_video(model, latent, tiling)
    waveform, sample_rate = decode_audio(model, latent)
    metadata = {"comment": latent.report, "l2a_settings": json.dumps({**latent.settings, "prompt": prompt})}
    audio = pad_to_video(waveform[0], frames.shape[0], latent.fps, sample_rate) if latent.has_audio else None
    path = write_video(out_path, frames, latent.fps, audio=audio, sample_rate=sample_rate, metadata=metadata,
                       **(write_options or {}))
    return Path(path), latent, prompt
