"""LTX-2.5's text encoder: Lightricks' Gemma 4 12B "unified" with the LTX text projection, offline.

The official file (`gemma4-12b-with-proj-ltx-2.5-bf16.safetensors`, models/text_encoders) packs everything in one
safetensors file (ltx-core `gemma_assets.py`): the HF config as `gemma_config` metadata (model type `gemma4_unified`,
`gemma_version`), the language model under ComfyUI's flat names (`model.layers.*`, `model.embed_tokens.*`,
`model.norm.*`; older files keep HF's `model.language_model.*`), the vision and audio embedders (`vision_model.*`,
`multi_modal_projector.*`, `audio_projector.*`, which LTX never runs and this loader leaves unread), the text
projection (`text_embedding_projection.{video,audio}_aggregate_embed.*`), the tokenizer as a uint8 tensor
(`tokenizer_json`) and HF's side files as `hf_asset__<name>` tensors (`tokenizer_config.json`, ...; older files keep
small ones as metadata). The diffusers layout (`Lightricks/LTX-2.5-Diffusers`) has the same model in `text_encoder/`,
the tokenizer in `tokenizer/` and the projection in `connectors/`.

Gemma 4 and Gemma 3 12B produce features of the same shape (3840 x 49), so a wrong encoder would load and give
noise: every file is recognised from its header before a tensor is read, and a stock Gemma 4 (no projection), the
Gemma 4 E2B prompt enhancer or a ComfyUI-quantized (int8 / NVFP4) file is refused with the file to use. The
tokenizer is rebuilt the official way (`build_gemma_hf_tokenizer`); Gemma 4's adds no BOS, which the encoding adds
as ltx-core's `LTXGemmaTokenizer` does (conditioning.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .components import TextEncoder
from .errors import L2AError
from .families import GEMMA_4_LTX
from .gemma_single_file import MAX_LENGTH_METADATA
from .text_projection import CONNECTOR_LAYERS, OFFICIAL_KEYS, empty_projection
from .weights import (
    SAFETENSORS_SUFFIXES,
    parameters_on_meta,
    read_safetensors_header,
    resolve_device,
    resolve_dtype,
    write_safetensors,
)

CONFIG_METADATA = "gemma_config"
TOKENIZER_KEY = "tokenizer_json"
ASSET_PREFIX = "hf_asset__"
TOKENIZER_CONFIG = "tokenizer_config.json"
KIND = GEMMA_4_LTX.kind
OFFICIAL_FILE = GEMMA_4_LTX.files[0]
FIX = f"LTX-2.5 needs its own text encoder, {OFFICIAL_FILE.name} ({OFFICIAL_FILE.url}), in models/text_encoders."
# ComfyUI's flat names of the language model -> Gemma4UnifiedModel's (ltx-core `_build_gemma4_unified_llm_key_ops`).
_TEXT_PREFIXES = (("model.language_model.", "language_model."), ("model.layers.", "language_model.layers."),
                  ("model.embed_tokens.", "language_model.embed_tokens."), ("model.norm.", "language_model.norm."))
_PLAIN_DTYPES = {"BF16", "F16", "F32"}
PROJECTION_MODULE = "ltx_text_projection"
# tokenizer_config.json entries that are not PreTrainedTokenizerFast arguments (ltx-core `_TOKENIZER_CONFIG_SKIP`).
_TOKENIZER_SKIP = frozenset({"tokenizer_class", "auto_map", "model_max_length", "backend", "is_local",
                             "local_files_only", "processor_class", "added_tokens_decoder"})


@dataclass
class Gemma4Info:
    """What an LTX-2.5 text encoder holds, read from headers and configs alone."""

    source: Path
    config: dict  # the HF config (model_type gemma4_unified)
    version: str  # its gemma_version ("" when it declares none)
    text_keys: dict[str, str] = field(default_factory=dict)  # Gemma4UnifiedModel key -> file key
    projection_keys: dict[str, str] = field(default_factory=dict)  # "video.weight" ... -> file key
    projection_shapes: dict[str, list[int]] = field(default_factory=dict)
    weight_dtype: str = "?"
    metadata: dict = field(default_factory=dict)

    def describe(self) -> str:
        version = f", gemma_version {self.version}" if self.version else ""
        return f"Gemma 4 12B with the LTX text projection ({self.weight_dtype.lower()}{version})"


def is_gemma4_header(header: Mapping[str, Any], metadata: Mapping[str, str]) -> bool:
    """Whether a safetensors header is a Gemma 4's (its config metadata, or Gemma 4's per-layer scalars)."""
    return CONFIG_METADATA in metadata or any(k.endswith("layer_scalar") for k in header)


def _model_type(config: Mapping[str, Any]) -> str:
    return str(config.get("model_type") or "")


def _refuse_config(name: str, config: Mapping[str, Any]) -> None:
    kind = _model_type(config)
    if kind == "gemma4":
        raise L2AError(f"'{name}' is Gemma 4 E2B/dense (model type gemma4), the LTX-2.5 prompt enhancer, not its text "
                       f"encoder. {FIX}")
    if kind.startswith("gemma3"):
        raise L2AError(f"'{name}' is a Gemma 3, which LTX-2 19B and LTX-2.3 use; load it for those. {FIX}")
    if kind != KIND:
        raise L2AError(f"'{name}' holds a {kind or 'model without a model type'}, not Gemma 4 unified. {FIX}")


def _quantized(name: str, dtypes: Mapping[str, str]) -> None:
    """ComfyUI's int8 (ConvRot) and NVFP4 files store integer weights this loader cannot turn back into bf16."""
    odd = next(((key, dtype) for key, dtype in dtypes.items() if dtype not in _PLAIN_DTYPES), None)
    if odd is not None:
        raise L2AError(
            f"'{name}' stores its weights as {odd[1]} (e.g. {odd[0]}): a ComfyUI-quantized file (int8-convrot or "
            f"NVFP4) that runs in ComfyUI's own nodes only. Use the bf16 file: {OFFICIAL_FILE.name} "
            f"({OFFICIAL_FILE.url})."
        )


def _text_key(file_key: str) -> str | None:
    for old, new in _TEXT_PREFIXES:
        if file_key.startswith(old):
            return new + file_key[len(old):]
    return None


def _projection_keys(keys, name: str, official: bool) -> dict[str, str]:
    """{"video.weight": file key, ...} of the two projections, official (`text_embedding_projection.*`) or diffusers
    (`video_text_proj_in.*`) names; both modalities must be there."""
    prefixes = OFFICIAL_KEYS if official else CONNECTOR_LAYERS
    found = {}
    for modality, prefix in prefixes.items():
        for key in keys:
            if key.startswith(prefix + "."):
                found[f"{modality}.{key[len(prefix) + 1:]}"] = key
    if not found:
        raise L2AError(f"'{name}' is a stock Gemma 4 without the LTX text projection (no {OFFICIAL_KEYS['video']}.* "
                       f"tensors): it is not LTX-2.5's fine-tuned encoder. {FIX}")
    if not any(k.startswith("audio.") for k in found) or not any(k.startswith("video.") for k in found):
        raise L2AError(f"'{name}' has only part of the LTX text projection: the file is damaged. {FIX}")
    return found


def inspect_gemma4_file(path: str | os.PathLike) -> Gemma4Info:
    """Identify LTX-2.5's single-file text encoder from its header (no tensor is read) or raise naming the fix."""
    path = Path(path)
    name = path.name
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise L2AError(f"'{name}' is not a .safetensors file. {FIX}")
    header, metadata = read_safetensors_header(path)
    try:
        config = json.loads(metadata[CONFIG_METADATA])
        dict(config)
    except KeyError:
        raise L2AError(f"'{name}' is a Gemma 4 without its config (the '{CONFIG_METADATA}' metadata LTX-2.5's "
                       f"encoder file carries). {FIX}") from None
    except (ValueError, TypeError) as exc:
        raise L2AError(f"'{name}' has a damaged '{CONFIG_METADATA}' ({exc}). {FIX}") from exc
    _refuse_config(name, config)
    text_keys = {_text_key(k): k for k in header if _text_key(k) is not None}
    if not text_keys:
        raise L2AError(f"'{name}' has no Gemma language model (no model.layers.* tensors). {FIX}")
    projection = _projection_keys(header, name, official=True)
    _quantized(name, {k: str(header[k].get("dtype", "")) for k in (*text_keys.values(), *projection.values())})
    if TOKENIZER_KEY not in header:
        raise L2AError(f"'{name}' has no embedded tokenizer (the '{TOKENIZER_KEY}' tensor is missing). {FIX}")
    if ASSET_PREFIX + TOKENIZER_CONFIG not in header and TOKENIZER_CONFIG not in metadata:
        raise L2AError(f"'{name}' lacks {TOKENIZER_CONFIG} (an '{ASSET_PREFIX}{TOKENIZER_CONFIG}' tensor). {FIX}")
    norm = header.get("model.norm.weight") or header.get("model.language_model.norm.weight") or {}
    return Gemma4Info(
        source=path, config=config, version=str(config.get("gemma_version") or ""), text_keys=text_keys,
        projection_keys=projection, projection_shapes={k: header[v]["shape"] for k, v in projection.items()},
        weight_dtype=str(norm.get("dtype", "?")), metadata=metadata,
    )


def _read_json(path: Path, name: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise L2AError(f"Cannot read '{path}' ({exc}): the folder '{name}' is incomplete. {FIX}") from exc


def _safetensors_in(folder: Path, name: str) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise L2AError(f"'{name}' has no safetensors weights in {folder.name}/. {FIX}")
    return files


def inspect_gemma4_folder(path: str | os.PathLike) -> Gemma4Info:
    """Identify the text encoder of a diffusers LTX-2.5 folder (text_encoder/, tokenizer/, the projection in
    connectors/) from its configs and headers alone."""
    root = Path(path)
    name = root.name
    config = _read_json(root / "text_encoder" / "config.json", name)
    _refuse_config(f"{name}/text_encoder", config)
    if not (root / "tokenizer" / "tokenizer.json").is_file():
        raise L2AError(f"'{name}' has no tokenizer/tokenizer.json. {FIX}")
    text_keys, dtypes = {}, {}
    for file in _safetensors_in(root / "text_encoder", name):
        header, _ = read_safetensors_header(file)
        for key, entry in header.items():
            if key.startswith("model.language_model."):
                text_keys[_text_key(key)] = f"{file.name}:{key}"
                dtypes[key] = str(entry.get("dtype", ""))
    projection, shapes = {}, {}
    for file in _safetensors_in(root / "connectors", name):
        header, _ = read_safetensors_header(file)
        found = {k: v for k, v in _projection_keys(header, f"{name}/connectors", official=False).items()}
        projection.update({k: f"{file.name}:{v}" for k, v in found.items()})
        shapes.update({k: header[v]["shape"] for k, v in found.items()})
    _quantized(name, dtypes)
    return Gemma4Info(source=root, config=config, version=str(config.get("gemma_version") or ""),
                      text_keys=text_keys, projection_keys=projection, projection_shapes=shapes,
                      weight_dtype=next(iter(dtypes.values()), "?"))


def inspect_gemma4(path: str | os.PathLike) -> Gemma4Info:
    path = Path(path)
    return inspect_gemma4_folder(path) if path.is_dir() else inspect_gemma4_file(path)


# ---- loading -----------------------------------------------------------------------------------------------------


def text_only_config(config: Mapping[str, Any]):
    """The Gemma4UnifiedConfig of the language model alone: LTX reads hidden states of text, never images or sound."""
    from transformers import Gemma4UnifiedConfig

    return Gemma4UnifiedConfig.from_dict({**config, "vision_config": None, "audio_config": None})


def build_tokenizer(tokenizer_json: bytes, tokenizer_config: Mapping[str, Any], max_length: int):
    """The official tokenizer of an encoder file (ltx-core `build_gemma_hf_tokenizer`), padding on the left."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    kwargs = {k: v for k, v in tokenizer_config.items() if k not in _TOKENIZER_SKIP}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_buffer(tokenizer_json),
                                        model_max_length=max_length, **kwargs)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.bos_token_id is None:
        raise L2AError("The embedded tokenizer has no BOS token, which LTX-2.5's encoding starts with. " + FIX)
    return tokenizer


def _tensor_bytes(tensor) -> bytes:
    import numpy as np

    return tensor.numpy().astype(np.uint8).tobytes()


def _reader(info: Gemma4Info):
    """(open files, get(key) -> tensor) over the encoder's weight files; keys are "file:key" in a folder."""
    from contextlib import ExitStack

    from safetensors import safe_open

    stack = ExitStack()
    handles: dict[str, Any] = {}

    def get(key: str):
        if info.source.is_dir():
            file, key = key.split(":", 1)
            folder = "connectors" if key.startswith(tuple(CONNECTOR_LAYERS.values())) else "text_encoder"
            path = info.source / folder / file
        else:
            path = info.source
        if str(path) not in handles:
            handles[str(path)] = stack.enter_context(safe_open(str(path), framework="pt", device="cpu"))
        return handles[str(path)].get_tensor(key)

    return stack, get


def load_gemma4(path: str | os.PathLike, dtype: Any = "bf16", device: Any = "cpu",
                max_length: int = 1024) -> TextEncoder:
    """Load LTX-2.5's text encoder (single file or a diffusers folder): the language model of Gemma 4 unified, the
    LTX text projection and the tokenizer, all checked from headers first."""
    from transformers import Gemma4UnifiedModel

    torch_dtype = resolve_dtype(dtype)
    device = resolve_device(device)
    info = inspect_gemma4(path)
    config = text_only_config(info.config)
    with parameters_on_meta():
        model = Gemma4UnifiedModel(config)
    expected = set(model.state_dict())
    if expected != set(info.text_keys):
        missing, unexpected = sorted(expected - set(info.text_keys)), sorted(set(info.text_keys) - expected)
        raise L2AError(
            f"The Gemma 4 weights in '{info.source.name}' do not match its config: {len(missing)} missing (e.g. "
            f"{', '.join(missing[:3]) or '-'}), {len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3]) or '-'})."
            f" The file is damaged. {FIX}"
        )
    text = config.text_config
    caption_channels = int(text.hidden_size)
    widths = {m: int(info.projection_shapes[f"{m}.weight"][0]) for m in CONNECTOR_LAYERS}
    layers, rest = divmod(int(info.projection_shapes["video.weight"][1]), caption_channels)
    if rest or layers != text.num_hidden_layers + 1:
        raise L2AError(f"The LTX text projection in '{info.source.name}' takes {info.projection_shapes['video.weight'][1]}"
                       f" features, not Gemma's {caption_channels} x {text.num_hidden_layers + 1}: the file is damaged.")
    projection = empty_projection(caption_channels, layers, widths, bias="video.bias" in info.projection_keys)
    stack, get = _reader(info)
    with stack:
        model.load_state_dict({k: get(v).to(torch_dtype) for k, v in info.text_keys.items()}, strict=True, assign=True)
        projection.load_state_dict({k: get(v).to(torch_dtype) for k, v in info.projection_keys.items()}, strict=True,
                                   assign=True)
        if info.source.is_dir():
            tokenizer_json = (info.source / "tokenizer" / "tokenizer.json").read_bytes()
            config_file = info.source / "tokenizer" / TOKENIZER_CONFIG
            tokenizer_config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
            max_length = min(max_length, int(tokenizer_config.get("model_max_length") or max_length))
        else:
            max_length = int(info.metadata.get(MAX_LENGTH_METADATA, max_length))
            tokenizer_json = _tensor_bytes(get(TOKENIZER_KEY))
            if TOKENIZER_CONFIG in info.metadata:  # older files keep it as metadata (ltx-core gemma_assets.py)
                tokenizer_config = json.loads(info.metadata[TOKENIZER_CONFIG])
            else:
                tokenizer_config = json.loads(_tensor_bytes(get(ASSET_PREFIX + TOKENIZER_CONFIG)))
    tokenizer = build_tokenizer(tokenizer_json, tokenizer_config, max_length)
    # A submodule of the model, so it follows the model wherever it goes (device, release after encoding, fp8).
    model.add_module(PROJECTION_MODULE, projection)
    return TextEncoder(
        model=model.to(device).eval().requires_grad_(False),
        tokenizer=tokenizer,
        device=device,
        dtype=torch_dtype,
        source=str(info.source),
        max_sequence_length=int(min(max_length, tokenizer.model_max_length)),
        kind=KIND,
        version=info.version,
        projection=getattr(model, PROJECTION_MODULE),
        caption_channels=caption_channels,
    )


# ---- writing (the tiny model) ------------------------------------------------------------------------------------


def comfy_flat_state(model) -> dict:
    """A Gemma4UnifiedForConditionalGeneration state dict under ComfyUI's flat names (ltx-core
    `_flatten_gemma4_unified_keys_for_comfy`), without the tied lm_head."""
    renames = (("model.language_model.", "model."), ("model.vision_embedder.", "vision_model."),
               ("model.embed_vision.", "multi_modal_projector."), ("model.embed_audio.", "audio_projector."))
    out = {}
    for key, tensor in model.state_dict().items():
        if key == "lm_head.weight":
            continue
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = tensor
    return out


def save_gemma4_file(path: str | os.PathLike, model, projection: Mapping[str, Any], tokenizer_json: bytes,
                     tokenizer_config: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> Path:
    """Write LTX-2.5's single-file text encoder layout (config, weights, projection, tokenizer), atomically."""
    import torch

    def as_bytes(data: bytes):
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)

    tensors = comfy_flat_state(model)
    for modality, prefix in OFFICIAL_KEYS.items():
        for name, tensor in projection[modality].state_dict().items():
            tensors[f"{prefix}.{name}"] = tensor
    tensors[TOKENIZER_KEY] = as_bytes(tokenizer_json)
    tensors[ASSET_PREFIX + TOKENIZER_CONFIG] = as_bytes(json.dumps(dict(tokenizer_config)).encode())
    return write_safetensors(path, tensors, {CONFIG_METADATA: model.config.to_json_string(use_diff=False),
                                             **(metadata or {})})
