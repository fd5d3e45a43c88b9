"""Prompt expansion: the loaded Gemma 3 rewrites a short prompt into the detailed audio-visual caption LTX-2 likes.

The recipe is the official one (ltx-core `enhance_t2v` / `enhance_i2v`, as diffusers 0.42.1 reproduces it): the
text-to-video or image-to-video system prompt (`configs/system_prompts.json`, verbatim), the user turn
"user prompt: <prompt>" (t2v) or "User Raw Input Prompt: <prompt>." (i2v, after the image), sampling with
temperature 0.7 for up to 512 new tokens, seed 10, then the reply cleaned of typographic quotes and of anything
before its first letter.

The chat is rendered with the tokenizer's chat template when it has one (Google's Gemma 3 folders do). Without one
(ComfyUI's single file, the tiny model) the same text is built by hand, in Gemma 3's own format:
`<bos><start_of_turn>user\\n{system}\\n\\n{user}<end_of_turn>\\n<start_of_turn>model\\n`.

An image is shown to the model only when it has a vision tower (a transformers folder loaded as
Gemma3ForConditionalGeneration): it is resized to the tower's square input, normalised to [-1, 1] and spliced in as
Gemma 3's processor does ("\\n\\n", begin-of-image, one soft token per image embedding, end-of-image, "\\n\\n").
Otherwise the expansion runs on the text alone and the returned note says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import L2AError

SYSTEM_PROMPTS_PATH = Path(__file__).parent / "configs" / "system_prompts.json"
MODES = ("t2v", "i2v")
DEFAULT_SEED = 10
DEFAULT_MAX_NEW_TOKENS = 512
DEFAULT_TEMPERATURE = 0.7
MAX_SEED = 2**64 - 1
IMAGE_MARKER = "<start_of_image>"
_QUOTES = str.maketrans("\u2018\u2019\u201c\u201d\u2014\u2013\u00a0\u2032\u2212", "''\"\"-- '-")


@dataclass(frozen=True)
class Expansion:
    """The expanded prompt and what happened on the way."""

    prompt: str
    note: str
    mode: str
    used_image: bool
    new_tokens: int
    fell_back: bool


def system_prompt(mode: str) -> str:
    """The official LTX-2 system prompt for 't2v' or 'i2v'."""
    if mode not in MODES:
        raise L2AError(f"mode = {mode!r} is unknown: use 't2v' (text to video) or 'i2v' (image to video).")
    return json.loads(SYSTEM_PROMPTS_PATH.read_text(encoding="utf-8"))[mode]


def user_text(prompt: str, mode: str) -> str:
    return f"User Raw Input Prompt: {prompt}." if mode == "i2v" else f"user prompt: {prompt}"


def clean_reply(text: str) -> str:
    """Straight quotes and plain dashes, and nothing before the first letter (Gemma likes to open with symbols)."""
    text = text.translate(_QUOTES).strip()
    for index, char in enumerate(text):
        if char.isalpha():
            return text[index:].strip()
    return ""


def render_chat(tokenizer, system: str, user: str, with_image: bool) -> str:
    """The chat as text: the tokenizer's template, or Gemma 3's turn format when it has none (or it fails)."""
    if getattr(tokenizer, "chat_template", None):
        from jinja2 import TemplateError

        content: Any = [{"type": "image"}, {"type": "text", "text": user}] if with_image else user
        messages = [{"role": "system", "content": system}, {"role": "user", "content": content}]
        try:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except (TemplateError, ValueError, TypeError, KeyError):  # a template that rejects this message shape
            pass
    image = IMAGE_MARKER if with_image else ""
    return f"<start_of_turn>user\n{system}\n\n{image}{user.strip()}<end_of_turn>\n<start_of_turn>model\n"


def _encode(tokenizer, text: str, first: bool) -> list[int]:
    bos = tokenizer.bos_token
    special = first and not (bos and text.startswith(bos))
    return list(tokenizer(text, add_special_tokens=special, verbose=False).input_ids)


def _vision(model) -> dict | None:
    """Image token ids and input size when the model has a Gemma 3 vision tower, else None."""
    config = getattr(model, "config", None)
    vision = getattr(config, "vision_config", None)
    needed = ("image_token_id", "boi_token_index", "eoi_token_index", "mm_tokens_per_image")
    if vision is None or not hasattr(model, "get_image_features") or not all(hasattr(config, k) for k in needed):
        return None
    return {
        "image": int(config.image_token_id),
        "boi": int(config.boi_token_index),
        "eoi": int(config.eoi_token_index),
        "count": int(config.mm_tokens_per_image),
        "size": int(vision.image_size),
    }


def _knows_image_tokens(tokenizer, vision: dict) -> bool:
    """Whether the tokenizer has Gemma 3's image tokens under the model's ids (Google's folders do), so the image
    block can be tokenized as text exactly as Gemma3Processor does; otherwise the ids are spliced in."""
    names = tokenizer.convert_ids_to_tokens([vision["boi"], vision["image"], vision["eoi"]])
    return names[0] == IMAGE_MARKER and all(
        isinstance(name, str) and tokenizer.convert_tokens_to_ids(name) == token_id
        for name, token_id in zip(names, (vision["boi"], vision["image"], vision["eoi"]))
    ) and names[1] != tokenizer.unk_token


def _pixel_values(image, size: int, dtype, device):
    """Gemma 3's image preprocessing: bilinear resize to the tower's square, scale to [-1, 1], [1, 3, S, S]."""
    import numpy as np
    import torch
    from PIL import Image

    from .media import to_uint8_rgb

    pixels = Image.fromarray(to_uint8_rgb(image)).resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(pixels, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).to(device=device, dtype=dtype)


def build_inputs(text_encoder, prompt: str, mode: str, image=None) -> tuple[dict, bool]:
    """Model inputs for the expansion chat (input_ids, attention_mask, and the image tensors when used)."""
    import torch

    tokenizer, model = text_encoder.tokenizer, text_encoder.model
    vision = _vision(model) if image is not None else None
    text = render_chat(tokenizer, system_prompt(mode), user_text(prompt, mode), vision is not None)
    if vision is None or IMAGE_MARKER not in text:
        ids, vision = _encode(tokenizer, text, first=True), None
    elif _knows_image_tokens(tokenizer, vision):
        soft = tokenizer.convert_ids_to_tokens(vision["image"]) * vision["count"]
        block = f"\n\n{IMAGE_MARKER}{soft}{tokenizer.convert_ids_to_tokens(vision['eoi'])}\n\n"
        ids = _encode(tokenizer, text.replace(IMAGE_MARKER, block, 1), first=True)
    else:
        before, after = text.split(IMAGE_MARKER, 1)
        block = [vision["boi"]] + [vision["image"]] * vision["count"] + [vision["eoi"]]
        gap = _encode(tokenizer, "\n\n", first=False)
        ids = _encode(tokenizer, before, first=True) + gap + block + gap + _encode(tokenizer, after, first=False)
    device = text_encoder.device
    input_ids = torch.tensor([ids], dtype=torch.long, device=device)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if vision is not None:
        inputs["token_type_ids"] = (input_ids == vision["image"]).long()
        inputs["pixel_values"] = _pixel_values(image, vision["size"], model.dtype, device)
    return inputs, vision is not None


def _stop_ids(text_encoder) -> list[int]:
    """End of sequence and Gemma's end of turn, so the reply stops where the model ends its turn."""
    tokenizer = text_encoder.tokenizer
    found = getattr(getattr(text_encoder.model, "generation_config", None), "eos_token_id", None)
    ids = list(found) if isinstance(found, (list, tuple)) else [found]
    ids.append(tokenizer.eos_token_id)
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        ids.append(end_of_turn)
    return list(dict.fromkeys(i for i in ids if isinstance(i, int)))


def _validate(prompt, mode, seed, max_new_tokens, temperature) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise L2AError("prompt is empty: write a short description of the video to expand.")
    if mode not in MODES:
        raise L2AError(f"mode = {mode!r} is unknown: use 't2v' (text to video) or 'i2v' (image to video).")
    if not 0 <= int(seed) <= MAX_SEED:
        raise L2AError(f"seed = {seed} is out of range: use 0 to {MAX_SEED}.")
    if int(max_new_tokens) < 1:
        raise L2AError(f"max_new_tokens = {max_new_tokens} must be at least 1; the official value is 512.")
    if not 0.0 <= float(temperature) <= 2.0:
        raise L2AError(f"temperature = {temperature} is out of range: use 0 (greedy) to 2; the official value is 0.7.")


def expand_prompt(
    text_encoder,
    prompt: str,
    mode: str = "t2v",
    image=None,
    seed: int = DEFAULT_SEED,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    temperature: float = DEFAULT_TEMPERATURE,
    callback: Callable[[int], None] | None = None,
) -> Expansion:
    """Expand `prompt` with the text encoder's Gemma; deterministic for a fixed seed, global RNG untouched.

    `callback(n)` runs after every generated token (progress, and cancel by raising).
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    _validate(prompt, mode, seed, max_new_tokens, temperature)
    prompt = prompt.strip()
    from .conditioning import ensure_on_device

    ensure_on_device(text_encoder)
    model, tokenizer = text_encoder.model, text_encoder.tokenizer
    if getattr(text_encoder, "projection", None) is not None:
        raise L2AError(
            f"{text_encoder.describe()} encodes prompts only: LTX-2.5 expands prompts with its own enhancer (Gemma 4 "
            "E2B), which comes in a later version of LTX-2 Anywhere. Turn prompt expansion off for LTX-2.5, or "
            "expand with a Gemma 3 text encoder."
        )
    if not hasattr(model, "generate"):
        raise L2AError(
            f"The loaded text encoder ({type(model).__name__}) cannot generate text: load Gemma 3 from a "
            "transformers folder (Gemma3ForConditionalGeneration) or ComfyUI's single file to expand prompts."
        )
    inputs, used_image = build_inputs(text_encoder, prompt, mode, image)
    start = inputs["input_ids"].shape[1]

    class _EachToken(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            if callback is not None:
                callback(int(input_ids.shape[1] - start))
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    sampling = {"do_sample": True, "temperature": float(temperature)} if temperature > 0 else {"do_sample": False}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = torch.device(text_encoder.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        torch.manual_seed(int(seed))
        output = model.generate(
            **inputs,
            max_new_tokens=int(max_new_tokens),
            eos_token_id=_stop_ids(text_encoder),
            pad_token_id=pad,
            stopping_criteria=StoppingCriteriaList([_EachToken()]),
            **sampling,
        )
    new = output[0, start:]
    reply = clean_reply(tokenizer.decode(new, skip_special_tokens=True))
    notes = []
    if image is not None and not used_image:
        notes.append(
            f"The image was not shown to the model: {type(model).__name__} has no vision tower (ComfyUI's single "
            "file is loaded text-only), so the expansion used the text alone."
        )
    if not reply:
        notes.append("The model returned no usable text, so the original prompt is kept.")
    return Expansion(
        prompt=reply or prompt,
        note=" ".join(notes),
        mode=mode,
        used_image=used_image,
        new_tokens=int(new.shape[0]),
        fell_back=not reply,
    )
