"""The single-file Gemma 3 12B that ComfyUI's own LTX-2 workflows put in `models/text_encoders`.

ComfyUI users already have `gemma_3_12B_it.safetensors` (or `gemma_3_12B_it_fp8_scaled.safetensors`, both from
Comfy-Org/ltx-2 `split_files/text_encoders`), so the pack reads that file instead of asking for a second copy as a
transformers folder. Facts about the layout, from ComfyUI's loader (`comfy/sd.py` detection, `comfy/text_encoders/
llama.py` `Gemma3_12B`, `lt.py`, `spiece_tokenizer.py`, `comfy/utils.py` `convert_old_quants`):

* text model under `model.` with transformers' names (`model.embed_tokens.weight`, `model.layers.N.self_attn.
  {q,k,v,o}_proj.weight`, `...q_norm`, `...k_norm`, four RMS norms per layer, `model.norm.weight`); no `lm_head`
  (tied to the embeddings); ComfyUI recognises the 12B by `model.layers.47.self_attn.q_norm.weight`;
* the SigLIP vision tower (`vision_model.*`) and `multi_modal_projector.*`, which this loader leaves unread: LTX-2
  only needs the text model's hidden states, and prompt expansion runs text-only on this file;
* the tokenizer embedded as `spiece_model`, a 1-D uint8 tensor holding Gemma's SentencePiece `tokenizer.model`;
* the fp8 variants keep some weights as float8 with a per-tensor float32 scale: `<layer>.weight_scale` (ComfyUI's
  mixed-precision format, with a `<layer>.comfy_quant` JSON tensor) or, in the older format, `<layer>.scale_weight`
  plus a `scaled_fp8` marker; the real weight is `fp8 * scale`. Plain fp8 files (`..._fp8_e4m3fn`) have no scale.
  4-bit files (`..._fp4_mixed`, NVFP4: uint8 weights with block scales) are refused with the fix.

The files carry no config, so shapes come from the header (vocab, hidden and MLP size, layers, heads, head size) and
everything else from Gemma 3 12B's published text config (sliding window 1024 on five of every six layers, RoPE
theta 1e6 with linear factor 8 on the global layers and 1e4 on the local ones, query scale 256): the same numbers
that Lightricks' and Google's `config.json` give. The tokenizer is rebuilt from the SentencePiece proto the way
transformers converts Gemma's (BPE with byte fallback, merges ordered by piece score), without needing the
`sentencepiece` or `protobuf` packages.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .components import TextEncoder
from .errors import L2AError
from .families import GEMMA_3_12B
from .weights import (
    SAFETENSORS_SUFFIXES,
    parameters_on_meta,
    read_safetensors_header,
    resolve_device,
    resolve_dtype,
    write_safetensors,
)

COMFY_FILE, COMFY_FP8_FILE = (f.name for f in GEMMA_3_12B.single_files)
TOKENIZER_KEY = "spiece_model"
TEXT_PREFIXES = ("model.", "model.language_model.", "language_model.model.")
FIX = (
    f"Use ComfyUI's {COMFY_FILE} or {COMFY_FP8_FILE} (Comfy-Org/ltx-2, split_files/text_encoders) in "
    f"models/text_encoders, or the transformers folder {GEMMA_3_12B.folder.name} ({GEMMA_3_12B.folder.repo})."
)
# Gemma 3 12B's text config (google/gemma-3-12b-it `config.json`, also Lightricks/LTX-2 `text_encoder/config.json`)
# beyond what tensor shapes tell (those give vocab 262208, hidden 3840, MLP 15360, 48 layers, 16 heads, 8 KV heads
# of size 256 for the real file). Every sixth layer attends globally, the others within the sliding window.
SLIDING_WINDOW_PATTERN = 6
GEMMA3_12B = {
    "query_pre_attn_scalar": 256,
    "sliding_window": 1024,
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 131072,
    "hidden_activation": "gelu_pytorch_tanh",
    "rope_parameters": {
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
    },
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
}
# Hidden sizes of the other Gemma 3 releases, which LTX-2's connectors (3840 x 49 inputs) cannot use.
OTHER_GEMMA3 = {640: "270M", 1152: "1B", 2560: "4B", 5376: "27B"}
_PLAIN_DTYPES = {"BF16", "F16", "F32"}
_FP8_DTYPES = {"F8_E4M3", "F8_E5M2"}
_IGNORED_SUFFIXES = (".comfy_quant", ".input_scale", ".scale_input", ".weight_scale", ".scale_weight")
_TIED = "lm_head.weight"
_TURN_TOKENS = ("<start_of_turn>", "<end_of_turn>")
MAX_LENGTH_METADATA = "l2a_tokenizer_max_length"


# ---- SentencePiece model proto (protobuf wire format, only the fields Gemma's tokenizer needs) -------------------

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
BPE_MODEL = 2


class Piece(NamedTuple):
    piece: str
    score: float
    type: int = NORMAL


@dataclass
class SpieceModel:
    """The parts of a SentencePiece `ModelProto` that define a Gemma tokenizer."""

    pieces: list[Piece]
    model_type: int = 1
    byte_fallback: bool = False
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    add_dummy_prefix: bool = True


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _fields(data: bytes):
    """(field number, value) pairs of one protobuf message; varints as int, length-delimited as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated field")
        yield number, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_spiece(data: bytes) -> SpieceModel:
    """Read a SentencePiece `tokenizer.model` (ModelProto): pieces, model type, special ids, dummy prefix."""
    model = SpieceModel(pieces=[])
    for number, value in _fields(data):
        if number == 1:
            piece, score, kind = "", 0.0, NORMAL
            for sub, item in _fields(value):
                if sub == 1:
                    piece = item.decode("utf-8")
                elif sub == 2:
                    score = struct.unpack("<f", item)[0]
                elif sub == 3:
                    kind = item
            model.pieces.append(Piece(piece, score, kind))
        elif number == 2:
            for sub, item in _fields(value):
                if sub == 3:
                    model.model_type = item
                elif sub == 35:
                    model.byte_fallback = bool(item)
                elif sub in (40, 41, 42, 43):
                    setattr(model, {40: "unk_id", 41: "bos_id", 42: "eos_id", 43: "pad_id"}[sub], _signed(item))
        elif number == 3:
            for sub, item in _fields(value):
                if sub == 3:
                    model.add_dummy_prefix = bool(item)
    return model


def _key(number: int, wire: int) -> bytes:
    return _put_varint((number << 3) | wire)


def _put_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _put_bytes(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _put_varint(len(payload)) + payload


def _put_int(number: int, value: int) -> bytes:
    return _key(number, 0) + _put_varint(value)


def encode_spiece(pieces: list[Piece], unk_id: int, bos_id: int, eos_id: int, pad_id: int) -> bytes:
    """A Gemma-style SentencePiece BPE model (byte fallback, identity normalizer, no dummy prefix) as proto bytes."""
    out = bytearray()
    for piece in pieces:
        body = _put_bytes(1, piece.piece.encode("utf-8")) + _key(2, 5) + struct.pack("<f", piece.score)
        out += _put_bytes(1, body + _put_int(3, piece.type))
    names = {45: unk_id, 46: bos_id, 47: eos_id, 48: pad_id}
    trainer = _put_int(3, BPE_MODEL) + _put_int(4, len(pieces)) + _put_int(35, 1)
    trainer += b"".join(_put_int(number, value) for number, value in zip((40, 41, 42, 43), names.values()))
    trainer += b"".join(_put_bytes(number, pieces[index].piece.encode("utf-8")) for number, index in names.items())
    normalizer = _put_bytes(1, b"identity") + _put_int(3, 0) + _put_int(4, 0) + _put_int(5, 1)
    return bytes(out + _put_bytes(2, trainer) + _put_bytes(3, normalizer))


def tokenizer_from_spiece(data: bytes, source: str = "the embedded tokenizer"):
    """A transformers GemmaTokenizer equal to the one transformers converts from the same `tokenizer.model`."""
    from tokenizers import AddedToken
    from transformers import GemmaTokenizer
    from transformers.tokenization_utils_base import generate_merges

    try:
        model = parse_spiece(data)
    except (ValueError, UnicodeDecodeError, struct.error) as exc:
        raise L2AError(f"The tokenizer embedded in '{source}' is damaged ({exc}). {FIX}") from exc
    if model.model_type != BPE_MODEL or not model.pieces:
        raise L2AError(
            f"The tokenizer embedded in '{source}' is not Gemma's SentencePiece BPE model (model type "
            f"{model.model_type}, {len(model.pieces)} pieces). {FIX}"
        )
    names = [p.piece for p in model.pieces]
    if "\t" not in names and "<0x09>" in names:  # as transformers' Gemma converter: older models lack a tab piece
        names[names.index("<0x09>")] = "\t"
    vocab = {name: index for index, name in enumerate(names)}
    if len(vocab) != len(names):
        raise L2AError(f"The tokenizer embedded in '{source}' repeats pieces: it is damaged. {FIX}")
    scores = [(name, 0.0 if index < 3 else model.pieces[index].score) for index, name in enumerate(names)]

    def special(index: int, default: str) -> str:
        return names[index] if 0 <= index < len(names) else default

    tokenizer = GemmaTokenizer(
        vocab=vocab,
        merges=generate_merges(vocab, scores),
        unk_token=special(model.unk_id, "<unk>"),
        bos_token=special(model.bos_id, "<bos>"),
        eos_token=special(model.eos_id, "<eos>"),
        pad_token=special(model.pad_id, special(model.eos_id, "<eos>")),
        mask_token="<mask>" if "<mask>" in vocab else None,
        add_bos_token=True,
        add_eos_token=False,
    )
    tokenizer.add_tokens([
        AddedToken(p.piece, normalized=False, special=p.type == CONTROL or p.piece in _TURN_TOKENS)
        for p in model.pieces
        if p.type in (CONTROL, USER_DEFINED)
    ])
    tokenizer.padding_side = "left"
    return tokenizer


# ---- header inspection -------------------------------------------------------------------------------------------


@dataclass
class GemmaFileInfo:
    """What a single-file Gemma 3 holds, read from its safetensors header alone."""

    path: Path
    prefix: str  # where the text model's keys start, e.g. "model."
    config: dict  # Gemma3TextConfig kwargs
    quantization: str  # "none", "fp8" (plain cast) or "fp8-scaled"
    weight_dtype: str  # safetensors dtype of the norms, e.g. "BF16"
    has_vision: bool
    text_keys: dict[str, str] = field(default_factory=dict)  # Gemma3ForCausalLM key -> file key
    scales: dict[str, str] = field(default_factory=dict)  # file key of an fp8 weight -> file key of its scale
    metadata: dict = field(default_factory=dict)


def looks_like_gemma(path: str | os.PathLike) -> bool:
    """Cheap test for the loader's file list: a safetensors file whose header has Gemma-style decoder norms."""
    path = Path(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES or not path.is_file():
        return False
    try:
        header, _ = read_safetensors_header(path)
    except (L2AError, OSError):
        return False
    return any(k.endswith("layers.0.pre_feedforward_layernorm.weight") for k in header)


def _refuse_foreign(name: str, keys: list[str]) -> None:
    if any(k.endswith("layer_scalar") for k in keys):
        raise L2AError(
            f"'{name}' is a Gemma 4 text encoder (LTX-2.5's), not the Gemma 3 12B that LTX-2 and LTX-2.3 use. {FIX}"
        )
    if any(k.startswith("text_embedding_projection.") for k in keys):
        raise L2AError(
            f"'{name}' is the LTX text projection, not Gemma: LTX-2 Anywhere reads the projection from the LTX-2 "
            f"checkpoint, so this file is not needed. {FIX}"
        )
    kinds = (
        ("encoder.block.", "a T5 text encoder"),
        ("text_model.encoder.", "a CLIP text encoder"),
        ("model.diffusion_model.", "a diffusion model checkpoint"),
    )
    for start, kind in kinds:
        if any(k.startswith(start) for k in keys):
            raise L2AError(f"'{name}' is {kind}, not Gemma 3. LTX-2 needs Gemma 3 12B. {FIX}")
    sample = ", ".join(sorted(keys)[:3]) or "no tensors"
    raise L2AError(
        f"'{name}' is not a Gemma 3 text encoder (it has {len(keys)} tensors, e.g. {sample}). LTX-2 needs Gemma 3 "
        f"12B. {FIX}"
    )


def _find_prefix(header: Mapping[str, Any]) -> str | None:
    for prefix in TEXT_PREFIXES:
        if f"{prefix}embed_tokens.weight" in header and f"{prefix}layers.0.self_attn.q_proj.weight" in header:
            return prefix
    return None


def _shape(header: Mapping[str, dict], key: str, name: str) -> list[int]:
    try:
        return [int(x) for x in header[key]["shape"]]
    except KeyError as exc:
        raise L2AError(f"'{name}' lacks the tensor {key}: the file is incomplete or damaged. {FIX}") from exc


def _text_config(header: Mapping[str, dict], prefix: str, name: str) -> dict:
    """Gemma3TextConfig kwargs: sizes from tensor shapes, the rest from Gemma 3 12B."""
    layer_ids = {int(k[len(prefix) + 7:].split(".", 1)[0]) for k in header if k.startswith(f"{prefix}layers.")}
    layers = len(layer_ids)
    if layer_ids != set(range(layers)):
        raise L2AError(f"'{name}' has gaps in its decoder layers ({sorted(layer_ids)[:5]}...): it is damaged. {FIX}")
    vocab, hidden = _shape(header, f"{prefix}embed_tokens.weight", name)
    head_dim = _shape(header, f"{prefix}layers.0.self_attn.q_norm.weight", name)[0]
    q_out = _shape(header, f"{prefix}layers.0.self_attn.q_proj.weight", name)[0]
    kv_out = _shape(header, f"{prefix}layers.0.self_attn.k_proj.weight", name)[0]
    intermediate = _shape(header, f"{prefix}layers.0.mlp.gate_proj.weight", name)[0]
    if head_dim < 1 or q_out % head_dim or kv_out % head_dim:
        raise L2AError(
            f"'{name}' has inconsistent attention shapes (q {q_out}, k {kv_out}, head size {head_dim}): it is "
            f"damaged. {FIX}"
        )
    config = dict(GEMMA3_12B)
    config.update(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=q_out // head_dim,
        num_key_value_heads=kv_out // head_dim,
        head_dim=head_dim,
        layer_types=[
            "full_attention" if (i + 1) % SLIDING_WINDOW_PATTERN == 0 else "sliding_attention" for i in range(layers)
        ],
        tie_word_embeddings=True,
    )
    return config


def _quantization(header: Mapping[str, dict], text_keys: Mapping[str, str], name: str) -> tuple[str, dict]:
    """("none" | "fp8" | "fp8-scaled", {fp8 weight key: scale key}); other storage formats are refused."""
    scales: dict[str, str] = {}
    fp8 = False
    for key in text_keys.values():
        dtype = str(header[key].get("dtype", ""))
        if dtype in _PLAIN_DTYPES:
            continue
        if dtype not in _FP8_DTYPES:
            raise L2AError(
                f"'{name}' stores its weights as {dtype} (e.g. {key}), a 4-bit or integer quantization such as "
                f"ComfyUI's gemma_3_12B_it_fp4_mixed (NVFP4) that this loader cannot dequantize. {FIX}"
            )
        fp8 = True
        layer = key[: -len(".weight")] if key.endswith(".weight") else key
        for suffix in (".weight_scale", ".scale_weight"):
            scale = header.get(layer + suffix)
            if scale is None:
                continue
            if any(int(n) != 1 for n in scale.get("shape", [])) or scale.get("dtype") not in _PLAIN_DTYPES:
                raise L2AError(
                    f"'{name}' uses a per-row or per-block fp8 scale ({layer + suffix}, shape {scale.get('shape')}), "
                    f"which this loader does not dequantize; only per-tensor fp8 scales are supported. {FIX}"
                )
            scales[key] = layer + suffix
            break
    if not fp8:
        return "none", scales
    return ("fp8-scaled" if scales else "fp8"), scales


def inspect_gemma_file(path: str | os.PathLike) -> GemmaFileInfo:
    """Identify a single-file Gemma 3 from its header (no tensor is read) or raise an L2AError naming the fix."""
    path = Path(path)
    name = path.name
    if not path.exists():
        raise L2AError(f"Text encoder file '{path}' does not exist. {FIX}")
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise L2AError(
            f"'{name}' is a {path.suffix or 'suffix-less'} file: only .safetensors text encoders are loaded (GGUF is "
            f"not supported; pickle formats such as .bin/.pt can run code). {FIX}"
        )
    header, metadata = read_safetensors_header(path)
    keys = list(header)
    prefix = _find_prefix(header)
    if prefix is None or any(k.endswith("layer_scalar") for k in keys):
        _refuse_foreign(name, keys)
    if f"{prefix}layers.0.self_attn.q_norm.weight" not in header or (
        f"{prefix}layers.0.pre_feedforward_layernorm.weight" not in header
    ):
        family = "a Gemma 2" if f"{prefix}layers.0.pre_feedforward_layernorm.weight" in header else "a Llama-style"
        raise L2AError(f"'{name}' is {family} model, not Gemma 3 (no q_norm / pre-feedforward norms). {FIX}")
    config = _text_config(header, prefix, name)
    if config["hidden_size"] in OTHER_GEMMA3:
        size = OTHER_GEMMA3[config["hidden_size"]]
        raise L2AError(
            f"'{name}' is Gemma 3 {size} (hidden size {config['hidden_size']}), but LTX-2 was trained with Gemma 3 12B "
            f"(hidden size 3840, 48 layers). {FIX}"
        )
    text_keys = {}
    for key in keys:
        if key.startswith(prefix) and not key.endswith(_IGNORED_SUFFIXES) and key[len(prefix):] != _TIED:
            text_keys["model." + key[len(prefix):]] = key
    quantization, scales = _quantization(header, text_keys, name)
    if TOKENIZER_KEY not in header or header[TOKENIZER_KEY].get("dtype") != "U8":
        raise L2AError(
            f"'{name}' holds Gemma 3 weights but no embedded tokenizer: the '{TOKENIZER_KEY}' tensor (Gemma's "
            f"SentencePiece tokenizer.model, which ComfyUI's files carry) is missing. {FIX}"
        )
    norm = header.get(f"{prefix}norm.weight", {})
    return GemmaFileInfo(
        path=path,
        prefix=prefix,
        config=config,
        quantization=quantization,
        weight_dtype=str(norm.get("dtype", "?")),
        has_vision=any(k.startswith(("vision_model.", "vision_tower.", "model.vision_tower.")) for k in keys),
        text_keys=text_keys,
        scales=scales,
        metadata=metadata,
    )


# ---- loading -----------------------------------------------------------------------------------------------------


def _read_weight(handle, key: str, scale_key: str | None, dtype, device):
    """One tensor on `device` in `dtype`; fp8 weights are widened and multiplied by their per-tensor scale."""
    import torch

    tensor = handle.get_tensor(key).to(device)
    if tensor.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        tensor = tensor.to(torch.float32)
        if scale_key is not None:
            tensor = tensor * handle.get_tensor(scale_key).to(device=device, dtype=torch.float32).reshape(())
    return tensor.to(dtype)


def load_gemma_file(path: str | os.PathLike, dtype: Any = "bf16", device: Any = "cpu") -> TextEncoder:
    """Load a single-file Gemma 3 (ComfyUI layout, tokenizer embedded) as a text-only Gemma3ForCausalLM."""
    from safetensors import safe_open
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, GenerationConfig

    torch_dtype = resolve_dtype(dtype)
    device = resolve_device(device)
    info = inspect_gemma_file(path)
    with safe_open(str(info.path), framework="pt", device="cpu") as handle:
        with parameters_on_meta():
            model = Gemma3ForCausalLM(Gemma3TextConfig(**info.config))
        expected = set(model.state_dict())
        given = set(info.text_keys) | {_TIED}
        if expected != given:
            missing, unexpected = sorted(expected - given), sorted(given - expected)
            raise L2AError(
                f"The Gemma weights in '{info.path.name}' do not match Gemma 3: {len(missing)} missing (e.g. "
                f"{', '.join(missing[:3]) or '-'}), {len(unexpected)} unexpected (e.g. "
                f"{', '.join(info.text_keys.get(k, k) for k in unexpected[:3]) or '-'}). The file is damaged or "
                f"another model. {FIX}"
            )
        tokenizer = tokenizer_from_spiece(handle.get_tensor(TOKENIZER_KEY).numpy().tobytes(), info.path.name)
        state = {
            target: _read_weight(handle, key, info.scales.get(key), torch_dtype, device)
            for target, key in info.text_keys.items()
        }
    state[_TIED] = state["model.embed_tokens.weight"]
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise L2AError(f"The Gemma weights in '{info.path.name}' do not fit their own shapes: {exc}. {FIX}") from exc
    model.tie_weights()
    model = model.to(device).eval().requires_grad_(False)
    stops = [GEMMA3_12B["eos_token_id"]]
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        stops.append(end_of_turn)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=stops, pad_token_id=tokenizer.pad_token_id
    )
    if MAX_LENGTH_METADATA in info.metadata:
        tokenizer.model_max_length = int(info.metadata[MAX_LENGTH_METADATA])
    return TextEncoder(
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=torch_dtype,
        source=str(info.path),
        max_sequence_length=int(min(1024, tokenizer.model_max_length)),
    )


# ---- writing -----------------------------------------------------------------------------------------------------


def comfy_state_dict(model) -> dict:
    """A transformers Gemma 3 (multimodal or text-only) state dict renamed to ComfyUI's single-file layout."""
    renames = (
        ("model.language_model.", "model."),
        ("model.vision_tower.vision_model.", "vision_model."),
        ("model.vision_tower.", "vision_model."),
        ("model.multi_modal_projector.", "multi_modal_projector."),
        ("model.", "model."),
    )
    out = {}
    for key, tensor in model.state_dict().items():
        if key == _TIED:
            continue
        for old, new in renames:
            if key.startswith(old):
                out[new + key[len(old):]] = tensor
                break
    return out


def save_gemma_file(
    path: str | os.PathLike, model, spiece: bytes, metadata: Mapping[str, str] | None = None
) -> Path:
    """Write a Gemma 3 as ComfyUI's single-file text encoder (tokenizer embedded), atomically."""
    import torch

    tensors = dict(comfy_state_dict(model))
    tensors[TOKENIZER_KEY] = torch.frombuffer(bytearray(spiece), dtype=torch.uint8)
    return write_safetensors(path, tensors, metadata)
