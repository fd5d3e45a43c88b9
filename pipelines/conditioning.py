"""Text and image conditioning.

Prompts are tokenized as ltx-core's `LTXGemmaTokenizer` does (truncated, a leading BOS ensured, which Gemma 4's
tokenizer does not add itself, padded on the left) and encoded by Gemma into the stacked hidden states of every
layer (what the LTX-2 connectors expect); the connectors themselves belong to the model and run in the sampler.
LTX-2.5's encoder also holds the LTX text projection, which then runs here (`text_projection.project`). The
conditioning says which encoder made it (`EncodedBy`), so the sampler refuses a model that needs another one (Gemma 3
features have the shape of Gemma 4's and would only give noise). Images are kept as pixels with their CRF re-encode
applied, and are encoded by the model's VAE at the target size when sampling starts.

Gemma 3 12B is 24 GB in bf16 and needed only for a moment, so each text's embeddings are cached (in system memory,
least recently used first out) per encoder, and a re-run with a known prompt never runs Gemma. The text-encoder
options (`text_encoder_options`) choose where Gemma runs, fp8 storage, and whether it leaves the device right after
encoding: it moves to system memory and comes back by itself the next time anything runs it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .checks import check_number
from .components import TextEncoder
from .errors import L2AError
from .families import DEFAULT_NEGATIVE_PROMPT

# About five texts of LTX-2 19B: 1024 tokens x 3840 x 49 hidden states are 385 MB per text in bf16.
EMBEDDING_CACHE_BYTES = 2 * 1024**3
TEXT_ENCODER_DEVICES = ("default", "cpu")
# fp8 storage quantizes Gemma's Linear layers; lm_head stays as it is: it shares its weight with the embeddings.
_GEMMA_FP8_SKIP = ("lm_head",)


@dataclass(frozen=True)
class ImageCondition:
    """A still image pinned to a pixel frame of the output; strength 1 keeps its latent fully clean."""

    pixels: Any  # np.uint8 [H, W, 3], CRF re-encode already applied
    strength: float = 1.0
    frame_index: int = 0


@dataclass(frozen=True)
class EncodedBy:
    """The text encoder a conditioning comes from: its file, model type, declared gemma_version, and whether the
    embeddings are projected features (LTX-2.5) or raw stacked hidden states."""

    name: str
    kind: str
    version: str = ""
    projected: bool = False

    def describe(self) -> str:
        what = "Gemma 4 with the LTX text projection" if self.projected else "Gemma 3"
        return f"'{self.name}' ({what}{f', gemma_version {self.version}' if self.version else ''})"


@dataclass(frozen=True)
class Conditioning:
    prompt: str
    negative_prompt: str
    prompt_embeds: Any  # [1, L, hidden * (layers + 1)], or [1, L, video + audio width] when projected (LTX-2.5)
    prompt_mask: Any  # [1, L]
    negative_embeds: Any
    negative_mask: Any
    frame_rate: float
    images: tuple[ImageCondition, ...] = field(default_factory=tuple)
    direction: str = "forward"  # "backward": first_last_frame swapped the images' ends (said in the report)
    encoder: EncodedBy | None = None

    def with_image(self, image: ImageCondition) -> Conditioning:
        others = tuple(c for c in self.images if c.frame_index != image.frame_index)
        return replace(self, images=(*others, image))


def tokenize(text_encoder, text: str):
    """(input ids, attention mask) [1, L] as ltx-core's `LTXGemmaTokenizer.tokenize_with_weights`: the stripped text
    truncated to the sequence length, a leading BOS prepended when the tokenizer did not add one (Gemma 4's does
    not; Gemma 3's does), then padded on the left to the full length."""
    tokenizer = text_encoder.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    length = text_encoder.max_sequence_length
    ids = tokenizer(text.strip(), padding=False, truncation=True, max_length=length).input_ids
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos):
        ids = [bos, *ids][:length]
    tokens = tokenizer.pad({"input_ids": [ids]}, padding="max_length", max_length=length, return_tensors="pt",
                           return_attention_mask=True)
    return tokens.input_ids, tokens.attention_mask


def _gemma_hidden_states(text_encoder, text: str):
    """What the encoder hands the model for one text: stacked hidden states (projected when it holds the LTX text
    projection) and the attention mask."""
    import torch

    input_ids, mask = (t.to(text_encoder.device) for t in tokenize(text_encoder, text))
    with torch.no_grad():
        out = text_encoder.model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
        hidden = torch.stack(out.hidden_states, dim=-1).flatten(2, 3).to(text_encoder.dtype)
        if text_encoder.projection is not None:
            from .text_projection import project

            hidden = project(text_encoder.projection, hidden, mask, text_encoder.caption_channels)
    return hidden, mask


def encoded_by(text_encoder) -> EncodedBy:
    return EncodedBy(Path(text_encoder.source).name, text_encoder.kind, text_encoder.version,
                     text_encoder.projection is not None)


def encode_text(text_encoder, prompt: str, negative_prompt: str | None = None, frame_rate: float = 24.0) -> Conditioning:
    """Encode the prompt and negative prompt (the official LTX-2 negative prompt when None).

    Embeddings come from the cache when this encoder already encoded the text; otherwise Gemma runs on the
    encoder's device. The tensors are returned in system memory (the sampler moves them to the model's device).
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise L2AError("prompt is empty: describe the scene, the motion and the sound you want.")
    frame_rate = check_number("frame_rate", frame_rate, 1.0, 120.0, "keep it equal to the sampler's fps")
    negative = DEFAULT_NEGATIVE_PROMPT if negative_prompt is None else negative_prompt
    identity = _encoder_identity(text_encoder)
    try:
        embeds, mask = _cached_hidden_states(text_encoder, prompt, identity)
        neg_embeds, neg_mask = _cached_hidden_states(text_encoder, negative, identity)
    finally:
        if getattr(text_encoder, "release_after_encode", False):
            release_text_encoder(text_encoder)
    return Conditioning(prompt, negative, embeds, mask, neg_embeds, neg_mask, float(frame_rate),
                        encoder=encoded_by(text_encoder))


# ---- prompt-embedding cache --------------------------------------------------------------------------------------

_cache: OrderedDict[tuple, tuple] = OrderedDict()
_cache_lock = threading.Lock()


def _entry_bytes(entry: tuple) -> int:
    return sum(t.numel() * t.element_size() for t in entry)


def _has_fp8_storage(model) -> bool:
    return any(p.is_floating_point() and p.element_size() == 1 for p in model.parameters())


def _encoder_identity(text_encoder) -> tuple | None:
    """What besides the text decides its embeddings: the weights (source path, its size and modification time),
    dtype, fp8 storage and sequence length. None (no caching) for an encoder that was not loaded from disk."""
    path = Path(text_encoder.source)
    try:
        stat = path.stat()
    except (OSError, ValueError):
        return None
    storage = "fp8" if _has_fp8_storage(text_encoder.model) else "full"
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(text_encoder.dtype), storage,
            int(text_encoder.max_sequence_length), text_encoder.projection is not None)


def _cached_hidden_states(text_encoder, text: str, identity: tuple | None):
    key = None if identity is None else (text.strip(), identity)
    if key is not None:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    ensure_on_device(text_encoder)
    hidden, mask = _gemma_hidden_states(text_encoder, text)
    entry = (hidden.cpu(), mask.cpu())
    if key is not None:
        with _cache_lock:
            _cache[key] = entry
            total = sum(_entry_bytes(e) for e in _cache.values())
            while len(_cache) > 1 and total > EMBEDDING_CACHE_BYTES:
                total -= _entry_bytes(_cache.popitem(last=False)[1])
    return entry


# ---- where Gemma runs --------------------------------------------------------------------------------------------

_comebacks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Gemma -> handle of its return hook
_device_lock = threading.Lock()


@dataclass
class ManagedTextEncoder(TextEncoder):
    """A text encoder that leaves its device after encoding when asked (what L2A_TextEncoderOptions returns)."""

    release_after_encode: bool = True


def _device_of(model):
    return next(model.parameters()).device


def _same_device(a, b) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def _move(model, device) -> None:
    """Move Gemma, cancelling a pending return; the shared module may be moved by several encoder objects."""
    handle = _comebacks.pop(model, None)
    if handle is not None:
        handle.remove()
    if not _same_device(_device_of(model), device):
        model.to(device)


def ensure_on_device(text_encoder) -> None:
    """Put Gemma on the device this encoder object says, wherever another one (or a release) left it."""
    import torch

    with _device_lock:
        _move(text_encoder.model, torch.device(text_encoder.device))


def release_text_encoder(text_encoder) -> None:
    """Move Gemma to system memory and free its device memory; it returns to its device by itself (a one-shot
    forward pre-hook) the next time anything runs it, e.g. prompt expansion."""
    import torch

    model = text_encoder.model
    with _device_lock:
        home = _device_of(model)
        if home.type == "cpu" or model in _comebacks:
            return
        model.to("cpu")

        def come_back(module, _args):
            with _device_lock:
                _move(module, home)

        _comebacks[model] = model.register_forward_pre_hook(come_back)
    if home.type == "cuda":
        torch.cuda.empty_cache()


def text_encoder_options(text_encoder, device: str = "default", fp8: bool = False,
                         release_after_encode: bool = True) -> ManagedTextEncoder:
    """The text-encoder options: Gemma on its loader's device ("default") or the CPU, fp8 weight storage (the Linear
    layers as fp8 with a per-tensor scale, about half the memory; the shared module is converted in place, so going
    back needs a reload), release after encoding."""
    import torch

    if device not in TEXT_ENCODER_DEVICES:
        raise L2AError(f"text encoder device = {device!r} is unknown: use one of {', '.join(TEXT_ENCODER_DEVICES)}.")
    model = text_encoder.model
    stored_fp8 = _has_fp8_storage(model)
    if fp8 and not stored_fp8:
        from .memory import store_linears_in_fp8

        store_linears_in_fp8(model, skip=_GEMMA_FP8_SKIP)
    elif stored_fp8 and not fp8:
        raise L2AError(
            "this Gemma already stores its weights in fp8 (an earlier run turned fp8 storage on), and fp8 cannot be "
            "undone in place: keep fp8_storage on, or load the text encoder again (change its "
            "loader's dtype and back, or restart ComfyUI) for full precision."
        )
    values = {f.name: getattr(text_encoder, f.name) for f in fields(TextEncoder)}
    values["device"] = torch.device("cpu") if device == "cpu" else torch.device(text_encoder.device)
    managed = ManagedTextEncoder(**values, release_after_encode=bool(release_after_encode))
    if device == "cpu":
        ensure_on_device(managed)
    return managed


def image_condition(image, strength: float = 1.0, crf: int = 33, frame_index: int = 0) -> ImageCondition:
    """Prepare an image condition: any IMAGE/array/PIL input to RGB uint8, then the training-style CRF round trip."""
    from .media import crf_reencode, to_uint8_rgb

    strength = check_number("image strength", strength, 0.0, 1.0, "0 = ignore, 1 = keep the frame exactly")
    if check_number("crf", crf, 0, 51, "0 = no re-encode; the official default is 33") % 1:
        raise L2AError(f"crf = {crf!r} is not a whole number: use 0 (no re-encode) to 51; the official default is 33.")
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
    return replace(conditioning, direction=direction)
