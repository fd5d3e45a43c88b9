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

LTX-2.5's text encoder (Gemma 4 "unified") cannot write, so 2.5 has a dedicated prompt enhancer: Google's Gemma 4
E2B instruct model (`google/gemma-4-E2B-it`, model type "gemma4"), kept as that repository's transformers folder in
models/text_encoders (`gemma-4-E2B-it/`: config.json, the safetensors weights, tokenizer.json, tokenizer_config.json,
chat_template.jinja and, for images, the processor files). Its recipe is ltx-core 1.2.0's: the Gemma 4 system
prompts (`gemma4_t2v` / `gemma4_i2v`), the same user turns, greedy decoding with no repeated 5-gram, up to 600 new
tokens, the chat left-padded to a multiple of 8 tokens, an image resized to a long side of 896 through the folder's
processor. The enhancer waits in system memory and visits its device only while it writes. Official and ComfyUI
workflows leave it off for 2.5 (users report it hurts prompt adherence); so does the pack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .choices import ENHANCER_FOLDER, ENHANCER_KIND
from .errors import L2AError

SYSTEM_PROMPTS_PATH = Path(__file__).parent / "configs" / "system_prompts.json"
MODES = ("t2v", "i2v")
DEFAULT_SEED = 10
DEFAULT_MAX_NEW_TOKENS = 512
DEFAULT_TEMPERATURE = 0.7
MAX_SEED = 2**64 - 1
IMAGE_MARKER = "<start_of_image>"
ENHANCER_REPO = "google/gemma-4-E2B-it"
ENHANCER_MAX_NEW_TOKENS = 600
ENHANCER_NO_REPEAT_NGRAM = 5
ENHANCER_IMAGE_LONG_SIDE = 896
GEMMA4_TURN_END = "<turn|>"
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


def system_prompt(mode: str, kind: str = "gemma3") -> str:
    """The official system prompt for 't2v' or 'i2v': Gemma 3's (LTX-2.0 / 2.3), or the Gemma 4 enhancer's."""
    if mode not in MODES:
        raise L2AError(f"mode = {mode!r} is unknown: use 't2v' (text to video) or 'i2v' (image to video).")
    key = f"{ENHANCER_KIND}_{mode}" if kind == ENHANCER_KIND else mode
    return json.loads(SYSTEM_PROMPTS_PATH.read_text(encoding="utf-8"))[key]


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
    for marker in ("<end_of_turn>", GEMMA4_TURN_END):
        end_of_turn = tokenizer.convert_tokens_to_ids(marker)
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
        raise L2AError(f"max_new_tokens = {max_new_tokens} must be at least 1; the official value is 512 (600 for the LTX-2.5 enhancer).")
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
    _validate(prompt, mode, seed, max_new_tokens, temperature)
    prompt = prompt.strip()
    from .conditioning import ensure_on_device

    ensure_on_device(text_encoder)
    model, tokenizer = text_encoder.model, text_encoder.tokenizer
    if getattr(text_encoder, "projection", None) is not None:
        raise L2AError(
            f"{text_encoder.describe()} encodes prompts only: LTX-2.5 expands prompts with its own enhancer (Gemma 4 "
            f"E2B, {ENHANCER_REPO}): load it with LTX-2 Prompt Enhancer Loader and connect it to "
            "LTX-2 Prompt Expand's enhancer input, or leave the prompt as it is."
        )
    if not hasattr(model, "generate"):
        raise L2AError(
            f"The loaded text encoder ({type(model).__name__}) cannot generate text: load Gemma 3 from a "
            "transformers folder (Gemma3ForConditionalGeneration) or ComfyUI's single file to expand prompts."
        )
    inputs, used_image = build_inputs(text_encoder, prompt, mode, image)
    sampling = {"do_sample": True, "temperature": float(temperature)} if temperature > 0 else {"do_sample": False}
    new = _generate(text_encoder, inputs, max_new_tokens, seed, sampling, callback)
    note = ""
    if image is not None and not used_image:
        note = (f"The image was not shown to the model: {type(model).__name__} has no vision tower (ComfyUI's single "
                "file is loaded text-only), so the expansion used the text alone.")
    return _expansion(tokenizer, new, prompt, mode, used_image, note)


def _expansion(tokenizer, new, prompt: str, mode: str, used_image: bool, note: str) -> Expansion:
    reply = clean_reply(tokenizer.decode(new, skip_special_tokens=True))
    notes = [note] if note else []
    if not reply:
        notes.append("The model returned no usable text, so the original prompt is kept.")
    return Expansion(prompt=reply or prompt, note=" ".join(notes), mode=mode, used_image=used_image,
                     new_tokens=int(new.shape[0]), fell_back=not reply)


def _generate(encoder, inputs: dict, max_new_tokens: int, seed: int, decoding: dict, callback) -> Any:
    """The new token ids of one generation; `callback(n)` after every token (progress, and cancel by raising)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    start = inputs["input_ids"].shape[1]

    class _EachToken(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            if callback is not None:
                callback(int(input_ids.shape[1] - start))
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    tokenizer = encoder.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = torch.device(encoder.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        torch.manual_seed(int(seed))
        output = encoder.model.generate(
            **inputs,
            max_new_tokens=int(max_new_tokens),
            eos_token_id=_stop_ids(encoder),
            pad_token_id=pad,
            stopping_criteria=StoppingCriteriaList([_EachToken()]),
            **decoding,
        )
    return output[0, start:]


# ---- LTX-2.5's prompt enhancer: Gemma 4 E2B -----------------------------------------------------------------------

@dataclass
class PromptEnhancer:
    """Gemma 4 E2B and its tokenizer (and processor, for images); `device` is where it writes, system memory is
    where it waits."""

    model: Any
    tokenizer: Any
    processor: Any
    source: str
    device: Any
    dtype: Any


def _enhancer_fix() -> str:
    return (f"use the transformers folder of {ENHANCER_REPO} (https://huggingface.co/{ENHANCER_REPO}) in "
            f"models/text_encoders/{ENHANCER_FOLDER}")


def load_enhancer(path, dtype: Any = "bf16", device: Any = "cpu") -> PromptEnhancer:
    """Load the Gemma 4 E2B enhancer from its transformers folder (nothing is downloaded); it stays in system memory
    until it writes."""
    from transformers import AutoConfig, AutoTokenizer, Gemma4ForConditionalGeneration

    from .weights import resolve_device, resolve_dtype

    path = Path(path)
    if not path.is_dir():
        raise L2AError(f"the prompt enhancer loads from a transformers folder, not '{path.name}': {_enhancer_fix()}.")
    if not (path / "config.json").is_file():
        raise L2AError(f"'{path}' has no config.json: {_enhancer_fix()} (the whole repository).")
    kind = getattr(AutoConfig.from_pretrained(str(path), local_files_only=True), "model_type", "")
    if kind != ENHANCER_KIND:
        why = {"gemma4_unified": "LTX-2.5's text encoder, which encodes prompts but does not write them",
               "gemma3": "Gemma 3, which expands prompts by itself: connect it as the text encoder instead"}
        raise L2AError(f"'{path.name}' is not the Gemma 4 E2B prompt enhancer (model type {kind!r}: "
                       f"{why.get(kind, 'another model')}); {_enhancer_fix()}.")
    target = resolve_dtype(dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    processor = None
    if any((path / name).is_file() for name in ("processor_config.json", "preprocessor_config.json")):
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
    model = Gemma4ForConditionalGeneration.from_pretrained(str(path), dtype=target, local_files_only=True).eval()
    return PromptEnhancer(model, tokenizer, processor, str(path), resolve_device(device), target)


def _gemma4_chat(tokenizer, system: str, user: str, with_image: bool) -> str:
    """The chat as text: the tokenizer's template, or Gemma 4's turn format when it has none."""
    if getattr(tokenizer, "chat_template", None):
        content: Any = [{"type": "image"}, {"type": "text", "text": user}] if with_image else user
        messages = [{"role": "system", "content": system}, {"role": "user", "content": content}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    bos = tokenizer.bos_token or ""
    return f"{bos}<|turn>system\n{system}{GEMMA4_TURN_END}\n<|turn>user\n{user}{GEMMA4_TURN_END}\n<|turn>model\n"


def _left_pad(inputs: dict, multiple: int, pad_id: int) -> dict:
    """Left-pad the chat to a multiple of `multiple` tokens, masked out (ltx-core pads so for its attention)."""
    import torch

    length = inputs["input_ids"].shape[1]
    extra = -length % multiple
    if not extra:
        return inputs
    padded = {}
    for name, tensor in inputs.items():
        if name in ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids"):
            value = pad_id if name == "input_ids" else 0
            fill = torch.full((tensor.shape[0], extra), value, dtype=tensor.dtype, device=tensor.device)
            tensor = torch.cat([fill, tensor], dim=1)
        padded[name] = tensor
    return padded


def enhancer_inputs(enhancer: PromptEnhancer, prompt: str, mode: str, image=None) -> tuple[dict, bool]:
    """Model inputs of the enhancement chat (with the image when the folder has a processor and a vision tower)."""
    import torch

    tokenizer = enhancer.tokenizer
    vision = image is not None and enhancer.processor is not None and \
        getattr(enhancer.model.config, "vision_config", None) is not None
    text = _gemma4_chat(tokenizer, system_prompt(mode, ENHANCER_KIND), user_text(prompt, mode), vision)
    if vision:
        from PIL import Image

        from .media import to_uint8_rgb

        picture = Image.fromarray(to_uint8_rgb(image))
        scale = ENHANCER_IMAGE_LONG_SIDE / max(picture.size)
        picture = picture.resize((int(picture.width * scale), int(picture.height * scale)),
                                 Image.Resampling.BICUBIC)
        inputs = dict(enhancer.processor(text=text, images=picture, return_tensors="pt"))
    else:
        ids = _encode(tokenizer, text, first=True)
        input_ids = torch.tensor([ids], dtype=torch.long)
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    inputs = _left_pad(inputs, 8, pad)
    device = torch.device(enhancer.device)
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in inputs.items()}, vision


def enhance_prompt(enhancer: PromptEnhancer, prompt: str, mode: str = "t2v", image=None,
                   max_new_tokens: int = ENHANCER_MAX_NEW_TOKENS,
                   callback: Callable[[int], None] | None = None) -> Expansion:
    """Enhance `prompt` with the Gemma 4 enhancer, ltx-core's recipe (greedy, so the same prompt always gives the
    same text); `callback(n)` runs after every token (progress, and cancel by raising). The enhancer goes back to
    system memory afterwards, also when cancelled."""
    import torch

    _validate(prompt, mode, DEFAULT_SEED, max_new_tokens, 0.0)
    prompt = prompt.strip()
    model = enhancer.model
    device = torch.device(enhancer.device)
    inputs, used_image = enhancer_inputs(enhancer, prompt, mode, image)
    try:
        model.to(device)
        decoding = {"do_sample": False, "no_repeat_ngram_size": ENHANCER_NO_REPEAT_NGRAM}
        new = _generate(enhancer, inputs, max_new_tokens, DEFAULT_SEED, decoding, callback)
    finally:
        if device.type != "cpu":
            model.to("cpu")
            torch.cuda.empty_cache()
    note = ""
    if image is not None and not used_image:
        note = ("The image was not shown to the enhancer: its folder has no image processor or vision tower, so the "
                "enhancement used the text alone.")
    return _expansion(enhancer.tokenizer, new, prompt, mode, used_image, note)


def passthrough(prompt: str, mode: str = "t2v") -> Expansion:
    """LTX-2.5 without its enhancer: the prompt as it is, with the reason (enhancement is off by default for 2.5)."""
    _validate(prompt, mode, DEFAULT_SEED, 1, 0.0)
    note = ("LTX-2.5's text encoder does not write prompts and no enhancer is connected, so the prompt is used as it "
            "is (enhancement is off by default for LTX-2.5: users report it hurts prompt adherence). Connect LTX-2 "
            f"Prompt Enhancer Loader ({ENHANCER_REPO}) to enhance.")
    return Expansion(prompt=prompt.strip(), note=note, mode=mode, used_image=False, new_tokens=0, fell_back=True)
