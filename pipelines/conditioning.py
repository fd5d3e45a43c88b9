"""Text and image conditioning.

Prompts are encoded by Gemma into the stacked hidden states of every layer (what the LTX-2 connectors expect);
the connectors themselves belong to the model and run in the sampler. Images are kept as pixels with their
CRF re-encode applied, and are encoded by the model's VAE at the target size when sampling starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .errors import L2AError
from .families import DEFAULT_NEGATIVE_PROMPT


@dataclass(frozen=True)
class ImageCondition:
    """A still image pinned to a pixel frame of the output; strength 1 keeps its latent fully clean."""

    pixels: Any  # np.uint8 [H, W, 3], CRF re-encode already applied
    strength: float = 1.0
    frame_index: int = 0


@dataclass(frozen=True)
class Conditioning:
    prompt: str
    negative_prompt: str
    prompt_embeds: Any  # [1, L, hidden * (layers + 1)]
    prompt_mask: Any  # [1, L]
    negative_embeds: Any
    negative_mask: Any
    frame_rate: float
    images: tuple[ImageCondition, ...] = field(default_factory=tuple)

    def with_image(self, image: ImageCondition) -> Conditioning:
        others = tuple(c for c in self.images if c.frame_index != image.frame_index)
        return replace(self, images=(*others, image))


def _gemma_hidden_states(text_encoder, text: str):
    import torch

    tokenizer = text_encoder.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokens = tokenizer(
        [text.strip()],
        padding="max_length",
        max_length=text_encoder.max_sequence_length,
        truncation=True,
        add_special_tokens=True,
        return_tensors="pt",
    )
    input_ids = tokens.input_ids.to(text_encoder.device)
    mask = tokens.attention_mask.to(text_encoder.device)
    with torch.no_grad():
        out = text_encoder.model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
    hidden = torch.stack(out.hidden_states, dim=-1).flatten(2, 3).to(text_encoder.dtype)
    return hidden, mask


def encode_text(text_encoder, prompt: str, negative_prompt: str | None = None, frame_rate: float = 24.0) -> Conditioning:
    """Encode the prompt and negative prompt (the official LTX-2 negative prompt when None)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise L2AError("prompt is empty: describe the scene, the motion and the sound you want.")
    negative = DEFAULT_NEGATIVE_PROMPT if negative_prompt is None else negative_prompt
    embeds, mask = _gemma_hidden_states(text_encoder, prompt)
    neg_embeds, neg_mask = _gemma_hidden_states(text_encoder, negative)
    return Conditioning(prompt, negative, embeds, mask, neg_embeds, neg_mask, float(frame_rate))


def image_condition(image, strength: float = 1.0, crf: int = 33, frame_index: int = 0) -> ImageCondition:
    """Prepare an image condition: any IMAGE/array/PIL input to RGB uint8, then the training-style CRF round trip."""
    from .media import crf_reencode, to_uint8_rgb

    if not 0.0 <= float(strength) <= 1.0:
        raise L2AError(f"image strength = {strength} is out of range: use 0.0 (ignore) to 1.0 (keep the frame exactly).")
    if not 0 <= int(crf) <= 51:
        raise L2AError(f"crf = {crf} is out of range: use 0 (no re-encode) to 51; the official default is 33.")
    pixels = to_uint8_rgb(image)
    return ImageCondition(crf_reencode(pixels, int(crf)), float(strength), int(frame_index))


DIRECTIONS = ("forward", "backward")


def first_last_frame(conditioning: Conditioning, image=None, end_image=None, image_strength: float = 1.0,
                     end_image_strength: float = 1.0, direction: str = "forward", crf: int = 33) -> Conditioning:
    """The hosted APIs' image / end image pair: first frame and last frame; 'backward' swaps the ends."""
    if direction not in DIRECTIONS:
        raise L2AError(f"direction = {direction!r} is unknown: use 'forward' or 'backward'.")
    if image is None and end_image is None:
        raise L2AError("no image given: connect an image, an end image, or both.")
    first_frame, last_frame = (0, -1) if direction == "forward" else (-1, 0)
    if image is not None:
        conditioning = conditioning.with_image(image_condition(image, image_strength, crf, first_frame))
    if end_image is not None:
        conditioning = conditioning.with_image(image_condition(end_image, end_image_strength, crf, last_frame))
    return conditioning
