"""Load LTX-2 checkpoints (official all-in-one safetensors or a diffusers folder) and the Gemma 3 text encoder.

Files are checked from their safetensors header alone before any tensor is read, so a wrong file fails in
milliseconds with a message that names it and the fix. Modules are built from the configs shipped in `configs/`
(or the tiny config stored in the file) with parameters on the meta device, then filled with
`load_state_dict(assign=True, strict=True)`: no random init, no second copy of the weights. Everything is offline.

Diffusers-folder detection: the family is 2.3 when the transformer uses gated attention / cross-attention
modulation / no caption projection, the connectors use per-modality projections or the vocoder is the BWE one,
else 2.0; a folder whose transformer config matches `configs/tiny.json` is the tiny model. The variant is
"distilled" when the folder name says so or the scheduler has dynamic shifting off, else "dev".
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import convert
from .components import LTX2Model, TextEncoder
from .errors import L2AError
from .families import Family, family_from_dict
from .memory import MemoryPolicy, apply_scaled_fp8, quantize_fp8, track, with_policy
from .outputs import check_output_file, make_folder, publish, remove_empty_folders, write_error

logger = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "configs"
FAMILY_CONFIG_FILES = {"2.0": "ltx2-19b.json", "2.3": "ltx2.3-22b.json"}
SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
LTX2_FILES = (
    "ltx-2-19b-dev.safetensors or ltx-2-19b-distilled.safetensors (LTX-2 19B, Lightricks/LTX-2), "
    "ltx-2.3-22b-dev.safetensors or ltx-2.3-22b-distilled.safetensors (LTX-2.3 22B, Lightricks/LTX-2.3)"
)
DTYPE_CHOICES = ("bf16", "fp16", "fp32")
FP32_COMPONENTS = ("audio_vae", "vocoder")  # small; the 2.3 BWE vocoder breaks in bf16
GEMMA_MODEL_TYPES = ("gemma3", "gemma3_text")
GEMMA_FOLDER = "gemma-3-12b-it-qat-q4_0-unquantized"
# The distilled checkpoints sample a fixed sigma list: no dynamic or terminal shift (diffusers' conversion script).
DISTILLED_SCHEDULER = {"use_dynamic_shifting": False, "shift_terminal": None}
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_WEIGHT_SCALE, _INPUT_SCALE = ".weight_scale", ".input_scale"  # pre-quantized fp8 files
_DAMAGED = "the file is damaged or was not fully downloaded: download it again."
_PIPELINE_INDEX = {
    "transformer": ["diffusers", "LTX2VideoTransformer3DModel"],
    "vae": ["diffusers", "AutoencoderKLLTX2Video"],
    "audio_vae": ["diffusers", "AutoencoderKLLTX2Audio"],
    "connectors": ["ltx2", "LTX2TextConnectors"],
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
    "text_encoder": [None, None],
    "tokenizer": [None, None],
    "processor": [None, None],
    "prompt_enhancer": [None, None],
    "duration_head": [None, None],
}


@dataclass
class CheckpointInfo:
    """What a checkpoint is, read from its header (or a diffusers folder's configs) without loading tensors."""

    path: Path
    family: Family
    variant: str  # "dev" or "distilled"
    config: dict  # same shape as configs/tiny.json
    fp8: bool  # official pre-quantized fp8 file (weight_scale keys)
    tiny: bool
    metadata: dict = field(default_factory=dict)


def with_official_stg(config: dict) -> dict:
    """`config` with the transformer's perturbed-attention path on. The official STG replaces self-attention by its
    value projection on every family; diffusers builds that path only when `perturbed_attn` is set, which its 2.0
    conversion (and so every 2.0 diffusers folder) leaves off, making the STG pass a copy of the conditional one.
    The flag adds no weights."""
    return {**config, "transformer": {**config["transformer"], "perturbed_attn": True}}


def family_config(name: str) -> dict:
    """The shipped diffusers configs of a family ("2.0" or "2.3")."""
    return json.loads((CONFIG_DIR / FAMILY_CONFIG_FILES[name]).read_text())


def resolve_dtype(dtype: Any):
    """'bf16' | 'fp16' | 'fp32' (or a torch floating dtype) to a torch dtype."""
    import torch

    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if isinstance(dtype, torch.dtype) and dtype in table.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower() in table:
        return table[dtype.lower()]
    raise L2AError(f"Unknown dtype {dtype!r}: choose one of {', '.join(DTYPE_CHOICES)}.")


def scheduler_config_for(config: dict, variant: str) -> dict:
    """FlowMatchEulerDiscreteScheduler kwargs for a variant: the distilled model turns the shifts off."""
    scheduler = {k: v for k, v in config["scheduler"].items() if not k.startswith("_")}
    if variant == "distilled":
        scheduler.update(DISTILLED_SCHEDULER)
    return scheduler


# ---- safetensors header ------------------------------------------------------------------------------------------


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict[str, dict], dict[str, str]]:
    """(tensor entries, metadata) from the header only; a truncated or corrupt file raises L2AError."""
    path = Path(path)
    if not path.is_file():
        raise L2AError(f"'{path}' is not a file: give the path of a .safetensors file.")
    size = path.stat().st_size
    redownload = "The file is damaged or was not fully downloaded: download it again."
    with open(path, "rb") as f:
        head = f.read(32)
        _refuse_other_format(path, head)
        prefix = head[:8]
        f.seek(len(prefix))
        if len(prefix) < 8:
            raise L2AError(f"'{path.name}' is only {size} bytes, too short for a safetensors file. {redownload}")
        length = int.from_bytes(prefix, "little")
        if length > size - 8:
            raise L2AError(
                f"'{path.name}' is truncated: its safetensors header claims {length} bytes but the file has only "
                f"{size - 8} after the length field. {redownload}"
            )
        if length > _MAX_HEADER_BYTES:
            raise L2AError(f"'{path.name}' has an implausible {length}-byte safetensors header. {redownload}")
        raw = f.read(length)
    try:
        header = json.loads(raw)
        metadata = header.pop("__metadata__", None) or {}
        end = max((int(entry["data_offsets"][1]) for entry in header.values()), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise L2AError(f"'{path.name}' does not have a valid safetensors header ({exc}). {redownload}") from exc
    if 8 + length + end > size:
        raise L2AError(
            f"'{path.name}' is truncated: the header describes {end} bytes of tensor data but only "
            f"{size - 8 - length} are present. {redownload}"
        )
    return header, {str(k): str(v) for k, v in metadata.items()}


# File kinds recognised by their first bytes, for files renamed .safetensors: (test on the first 32 bytes, name).
_OTHER_FORMATS = (
    (lambda head: head.startswith(b"PK\x03\x04"), "a zip archive (a PyTorch .pt/.ckpt/.bin pickle checkpoint, or "
     "a zipped download)"),
    (lambda head: len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5, "a Python pickle (.pt/.ckpt/.bin)"),
    (lambda head: head.startswith(b"GGUF"), "a GGUF file (llama.cpp format)"),
    (lambda head: head.lstrip().lower().startswith((b"<!doctype", b"<html", b"<?xml")), "a web page, not a model "
     "(the download saved an error or login page)"),
    (lambda head: head.startswith(b"version https://git-lfs"), "a Git LFS pointer, not the file itself (clone "
     "with git lfs, or download the file)"),
)


def _refuse_other_format(path: Path, head: bytes) -> None:
    """A pickle, zip, GGUF, web page or LFS pointer renamed .safetensors is named for what it is (not 'truncated'),
    and never unpickled. A real safetensors file (its JSON header starting at byte 8) is never taken for one."""
    if head[8:9] == b"{":
        return
    for test, kind in _OTHER_FORMATS:
        if test(head):
            raise L2AError(
                f"'{path.name}' is {kind}, not a safetensors file, although it is named like one. Only safetensors "
                "are loaded (pickle formats can run code): get the .safetensors release of this file."
            )


def _variant_from(name: str, metadata: Mapping[str, str]) -> str:
    if metadata.get("l2a_variant") in ("dev", "distilled"):
        return metadata["l2a_variant"]
    hints = [name] + [f"{k}={v}" for k, v in metadata.items() if k not in ("config", "l2a_tiny")]
    return "distilled" if any("distilled" in hint.lower() for hint in hints) else "dev"


def _classify_foreign(path: Path, keys: list[str]) -> None:
    """Raise a specific L2AError for files that are clearly something other than an LTX-2 all-in-one checkpoint."""
    name = path.name
    if any(("lora_A" in k or "lora_B" in k or "lora_down" in k or "lora_up" in k) for k in keys):
        raise L2AError(
            f"'{name}' is a LoRA, not a model checkpoint. Load an LTX-2 checkpoint ({LTX2_FILES}) here and apply the "
            "LoRA with the LoRA loader."
        )
    if any(
        k.startswith(("model.diffusion_model.input_blocks.", "conditioner.embedders.", "cond_stage_model."))
        for k in keys
    ):
        raise L2AError(
            f"'{name}' is a Stable Diffusion / SDXL checkpoint, not LTX-2. Load an LTX-2 checkpoint instead: "
            f"{LTX2_FILES}."
        )
    if any(k.endswith("patchify_proj.weight") for k in keys):
        raise L2AError(
            f"'{name}' is an LTX-Video 0.9 checkpoint (video only, no audio branch), not LTX-2. Load an LTX-2 "
            f"all-in-one checkpoint instead: {LTX2_FILES}."
        )
    sample = ", ".join(sorted(keys)[:3]) or "no tensors"
    raise L2AError(
        f"'{name}' is not an LTX-2 checkpoint (it has {len(keys)} tensors, e.g. {sample}). Load an LTX-2 "
        f"all-in-one checkpoint: {LTX2_FILES}."
    )


def _inspect_file(path: Path) -> CheckpointInfo:
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise L2AError(
            f"'{path.name}' is a {path.suffix or 'suffix-less'} file: only safetensors are loaded (pickle formats such "
            f"as .ckpt/.pt/.bin can run code). Use the .safetensors release: {LTX2_FILES}."
        )
    header, metadata = read_safetensors_header(path)
    keys = list(header)
    if not any(k.endswith(("audio_patchify_proj.weight", "audio_adaln_single.linear.weight")) for k in keys):
        _classify_foreign(path, keys)
    if metadata.get("model_version", "").startswith(("2.5", "3")) or any(k.startswith("duration_head.") for k in keys):
        raise L2AError(
            f"'{path.name}' is an LTX-2.5 or newer checkpoint, which this version of the pack does not support. "
            f"Use {LTX2_FILES}."
        )
    present = {convert.component_of(k) for k in keys}
    missing = [c for c in convert.COMPONENTS if c not in present]
    if missing:
        raise L2AError(
            f"'{path.name}' is an LTX-2 file without the {', '.join(missing)} weights (a split or transformer-only "
            f"file). Load the all-in-one checkpoint, which holds every component except Gemma: {LTX2_FILES}."
        )
    fp8 = any(k.endswith(("weight_scale", "input_scale")) for k in keys) or any(
        str(entry.get("dtype", "")).startswith("F8") for entry in header.values()
    )
    if "l2a_tiny" in metadata:
        try:
            config = json.loads(metadata["l2a_tiny"])
            family_from_dict(config["family"])
        except (ValueError, KeyError, TypeError) as exc:
            raise L2AError(f"'{path.name}' has a damaged tiny-model config ({exc}): write it again.") from exc
        tiny = True
    else:
        is_23 = metadata.get("model_version", "").startswith("2.3") or any(
            k.startswith(
                ("model.diffusion_model.prompt_adaln_single.", "text_embedding_projection.video_aggregate_embed.")
            )
            for k in keys
        )
        config = family_config("2.3" if is_23 else "2.0")
        tiny = False
    return CheckpointInfo(
        path=path,
        family=family_from_dict(config["family"]),
        variant=_variant_from(path.name, metadata),
        config=with_official_stg(config),
        fp8=fp8,
        tiny=tiny,
        metadata=metadata,
    )


# ---- diffusers folders -------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise L2AError(f"Cannot read '{path}': {exc}. The folder is incomplete or damaged.") from exc


def _public(config: Mapping[str, Any]) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _inspect_folder(path: Path) -> CheckpointInfo:
    from . import tiny as tiny_module

    if not (path / "model_index.json").is_file():
        raise L2AError(
            f"'{path}' is a folder without model_index.json: pass an LTX-2 all-in-one .safetensors file or a "
            "diffusers-format LTX-2 folder (with model_index.json and transformer/, vae/, audio_vae/, vocoder/, "
            "connectors/, scheduler/)."
        )
    missing = [c for c in (*convert.COMPONENTS, "scheduler") if not (path / c).is_dir()]
    if missing:
        raise L2AError(
            f"The diffusers folder '{path}' lacks the subfolder(s) {', '.join(missing)}: copy the complete "
            "LTX-2 diffusers repository (Lightricks/LTX-2 layout)."
        )
    found = {c: _read_json(path / c / "config.json") for c in convert.COMPONENTS}
    found["scheduler"] = _read_json(path / "scheduler" / "scheduler_config.json")
    transformer = found["transformer"]
    if transformer.get("use_keyframes_abs_pos_embedding") or (path / "duration_head" / "config.json").is_file():
        raise L2AError(
            f"'{path}' is an LTX-2.5 or newer folder, which this version of the pack does not support: use an LTX-2 "
            "19B or LTX-2.3 22B diffusers folder."
        )
    tiny_config = tiny_module.tiny_config()
    is_tiny = all(transformer.get(k) == v for k, v in tiny_config["transformer"].items() if k != "perturbed_attn")
    if is_tiny:
        base = tiny_config
    else:
        is_23 = (
            transformer.get("gated_attn")
            or transformer.get("cross_attn_mod")
            or transformer.get("use_prompt_embeddings") is False
            or found["connectors"].get("per_modality_projections")
            or found["vocoder"].get("_class_name") == "LTX2VocoderWithBWE"
        )
        base = family_config("2.3" if is_23 else "2.0")
    config = dict(base)
    for name, cfg in found.items():
        config[name] = _public(cfg)
    config["vocoder_class"] = found["vocoder"].get("_class_name", "LTX2Vocoder")
    distilled = "distilled" in path.name.lower() or found["scheduler"].get("use_dynamic_shifting") is False
    return CheckpointInfo(
        path=path,
        family=family_from_dict(config["family"]),
        variant="distilled" if distilled else "dev",
        config=with_official_stg(config),
        fp8=False,
        tiny=is_tiny,
    )


def inspect_checkpoint(path: str | os.PathLike) -> CheckpointInfo:
    """Identify an LTX-2 checkpoint (file: header only; folder: configs only) or raise an L2AError saying why not."""
    path = Path(path)
    if not path.exists():
        raise L2AError(f"Checkpoint '{path}' does not exist: check the path or put {LTX2_FILES} there.")
    if path.is_dir():
        return _inspect_folder(path)
    return _inspect_file(path)


# ---- building and filling modules --------------------------------------------------------------------------------

_meta_lock = threading.Lock()


@contextmanager
def parameters_on_meta():
    """Create parameters on the meta device (no memory, no random init) but keep buffers real.

    Buffers stay real because non-persistent ones (the BWE vocoder's resampler filter) are never in a checkpoint.
    """
    import torch

    original = torch.nn.Module.register_parameter

    def register(module, name, param):
        if param is not None and not param.is_meta:
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    with _meta_lock:
        torch.nn.Module.register_parameter = register
        try:
            yield
        finally:
            torch.nn.Module.register_parameter = original


def component_classes(vocoder_class: str = "LTX2Vocoder") -> dict[str, type]:
    """The diffusers class of each component."""
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2 import vocoder
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors

    if vocoder_class not in ("LTX2Vocoder", "LTX2VocoderWithBWE"):
        raise L2AError(f"Unknown vocoder class {vocoder_class!r}: expected LTX2Vocoder or LTX2VocoderWithBWE.")
    return {
        "transformer": LTX2VideoTransformer3DModel,
        "connectors": LTX2TextConnectors,
        "vae": AutoencoderKLLTX2Video,
        "audio_vae": AutoencoderKLLTX2Audio,
        "vocoder": getattr(vocoder, vocoder_class),
    }


def build_empty(config: dict) -> dict:
    """The five modules of a config with meta parameters, ready for load_state_dict(assign=True)."""
    classes = component_classes(config.get("vocoder_class", "LTX2Vocoder"))
    with parameters_on_meta():
        return {name: cls.from_config(config[name]) for name, cls in classes.items()}


def _fill(module, state: dict, name: str, source: str, label: str) -> None:
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise L2AError(
            f"The {name} weights in '{source}' do not match the {label} layout: {len(missing)} missing "
            f"(e.g. {', '.join(missing[:3]) or '-'}), {len(unexpected)} unexpected (e.g. "
            f"{', '.join(unexpected[:3]) or '-'}). The file is another model version or damaged: use {LTX2_FILES}."
        )
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise L2AError(f"The {name} weights in '{source}' do not fit the {label} config: {exc}") from exc
    module.eval().requires_grad_(False)


def _cast(tensor, dtype, device):
    return tensor.to(device=device, dtype=dtype) if tensor.is_floating_point() else tensor.to(device=device)


def _read_file_states(path: Path, prepare) -> dict[str, dict]:
    """Every component's tensors, each passed through `prepare(component, key, tensor, scale)`.

    Official pre-quantized files (`*-fp8.safetensors`, ltx-core's `fp8_scaled_mm` format) store a Linear as an fp8
    `<layer>.weight` plus a float32 `<layer>.weight_scale` (and `<layer>.input_scale`); the real weight is
    `weight.float() * weight_scale`, so such a weight comes with its scale (None for every other tensor). Input
    scales only serve fp8 matmul kernels, which the pack does not use: they are dropped, with a note in the log.
    """
    import torch
    from safetensors import safe_open

    states: dict[str, dict] = {name: {} for name in convert.COMPONENTS}
    dropped = 0
    with safe_open(str(path), framework="pt", device="cpu") as f:
        key_map = convert.official_key_map(f.keys())
        for key, target in key_map.items():
            if target is None:
                continue
            if key.endswith(_INPUT_SCALE):
                dropped += 1
                continue
            if key.endswith(_WEIGHT_SCALE):
                if key.removesuffix(_WEIGHT_SCALE) + ".weight" not in key_map:
                    raise L2AError(f"'{path.name}' has the fp8 scale {key} without its weight: {_DAMAGED}")
                continue
            name, new_key = target
            scale_key = key.removesuffix(".weight") + _WEIGHT_SCALE
            scale = None
            if key.endswith(".weight") and scale_key in key_map:
                scale = f.get_tensor(scale_key).to(torch.float32)
                if not bool(torch.isfinite(scale).all() and (scale > 0).all()):
                    raise L2AError(f"'{path.name}' has an invalid fp8 scale {scale_key}: {_DAMAGED}")
            states[name][new_key] = prepare(name, new_key, f.get_tensor(key), scale)
    if dropped:
        logger.info("%s: ignored %d fp8 input scales (activations are computed in bf16/fp16/fp32).", path.name, dropped)
    return states


def _folder_weight_files(folder: Path) -> list[Path]:
    index = sorted(folder.glob("*.safetensors.index.json"))
    if index:
        shards = sorted(set(_read_json(index[0]).get("weight_map", {}).values()))
        return [folder / shard for shard in shards]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        found = ", ".join(p.name for p in folder.iterdir()) or "nothing"
        raise L2AError(f"'{folder}' has no .safetensors weights (found: {found}); only safetensors are loaded.")
    return files


def _read_folder_states(path: Path, prepare) -> dict[str, dict]:
    from safetensors import safe_open

    states: dict[str, dict] = {}
    for name in convert.COMPONENTS:
        state: dict = {}
        for file in _folder_weight_files(path / name):
            read_safetensors_header(file)
            with safe_open(str(file), framework="pt", device="cpu") as f:
                for key in f.keys():
                    state[key] = prepare(name, key, f.get_tensor(key), None)
        states[name] = state
    return states


def _resolve_device(device: Any):
    import torch

    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise L2AError(f"Unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'.") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise L2AError(f"Device {str(device)!r} was requested but CUDA is not available: use device='cpu'.")
    return device


def load_model(path: str | os.PathLike, dtype: Any = "bf16", device: Any = "cpu", fp8: bool = False,
               memory: MemoryPolicy | None = None) -> LTX2Model:
    """Load an LTX-2 checkpoint (all-in-one .safetensors or diffusers folder) into diffusers modules.

    Transformer, connectors and video VAE use `dtype`; the audio VAE and vocoder stay fp32. `fp8=True` stores the
    transformer blocks' Linear weights as fp8 with a per-tensor scale (the official fp8 format) and computes in
    `dtype`: an official pre-quantized `*-fp8.safetensors` keeps its fp8 weights and scales, other files are
    quantized while reading, so the full-precision transformer never sits on the device. Without `fp8` a
    pre-quantized file is dequantized (`weight * weight_scale`) into `dtype`.

    `memory` is applied before returning (see `memory.MemoryPolicy`); when it offloads, weights are read into system
    memory and only what the policy places on `device` goes there.
    """
    import torch

    torch_dtype = resolve_dtype(dtype)
    device = _resolve_device(device)
    if memory is not None:
        memory.check(device)
    info = inspect_checkpoint(path)
    dtypes = {name: torch.float32 if name in FP32_COMPONENTS else torch_dtype for name in convert.COMPONENTS}
    modules = build_empty(info.config)
    read_device = torch.device("cpu") if memory is not None and memory.offloads else device
    fp8_layers = set()
    if fp8:  # what ltx-core's fp8 modes quantize: the Linear layers of the transformer blocks (98 % of the weights)
        fp8_layers = {n for n, m in modules["transformer"].named_modules()
                      if isinstance(m, torch.nn.Linear) and n.startswith("transformer_blocks.")}
    scales: dict[str, float] = {}

    def prepare(name: str, key: str, tensor, scale):
        layer = key.removesuffix(".weight")
        stored_fp8 = name == "transformer" and key.endswith(".weight") and layer in fp8_layers
        if stored_fp8 and scale is not None and scale.numel() == 1 and tensor.element_size() == 1:
            scales[layer] = float(scale)
            return tensor.to(read_device)
        if scale is not None:
            tensor = tensor.to(torch.float32) * scale
        if stored_fp8:
            tensor, scales[layer] = quantize_fp8(tensor)
            return tensor.to(read_device)
        return _cast(tensor, dtypes[name], read_device)

    if info.path.is_dir():
        states = _read_folder_states(info.path, prepare)
    else:
        states = _read_file_states(info.path, prepare)
    for name, module in modules.items():
        _fill(module, states.pop(name), name, str(info.path), info.family.label)
        module.to(read_device)
    apply_scaled_fp8(modules["transformer"], scales)
    model = LTX2Model(
        **modules,
        scheduler_config=scheduler_config_for(info.config, info.variant),
        family=info.family,
        variant=info.variant,
        dtype=torch_dtype,
        device=device,
        source=str(info.path),
        configs=info.config,
    )
    model = model if memory is None else with_policy(model, memory)
    track(model)
    return model


# ---- writing -----------------------------------------------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike, components: Mapping[str, Any], metadata: Mapping[str, str]) -> Path:
    """Write modules as one official-layout all-in-one safetensors file, atomically."""
    missing = [c for c in convert.COMPONENTS if c not in components]
    if missing:
        raise L2AError(f"save_checkpoint needs all of {', '.join(convert.COMPONENTS)}; missing {', '.join(missing)}.")
    states = {name: components[name].state_dict() for name in convert.COMPONENTS}
    return write_safetensors(path, convert.diffusers_to_official(states), metadata)


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
                      ) -> Path:
    """Write `tensors` as a safetensors file atomically: a hidden temporary file beside `path`, renamed when
    complete, so a crash or a full disk never leaves a half-written model where a loader would find it."""
    from safetensors.torch import save_file

    path = check_output_file(path, "safetensors file")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {"format": "pt", **{str(k): str(v) for k, v in (metadata or {}).items()}}
    created = make_folder(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        save_file(tensors, tmp, metadata=meta)
        publish(tmp, path)
    except BaseException as error:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        remove_empty_folders(created)
        if isinstance(error, OSError):
            raise write_error(error, path) from error
        raise
    return path


def save_diffusers_folder(path: str | os.PathLike, components: Mapping[str, Any], scheduler_config: dict) -> Path:
    """Write modules as a diffusers-format folder (Lightricks/LTX-2 layout, without Gemma), atomically."""
    import shutil

    import diffusers
    from diffusers import FlowMatchEulerDiscreteScheduler

    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise L2AError(f"'{path}' already exists and is not empty: choose a new folder.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for name in convert.COMPONENTS:
            components[name].save_pretrained(tmp / name, safe_serialization=True)
        FlowMatchEulerDiscreteScheduler(**scheduler_config).save_pretrained(tmp / "scheduler")
        index = {"_class_name": "LTX2Pipeline", "_diffusers_version": diffusers.__version__, **_PIPELINE_INDEX}
        index["vocoder"] = ["ltx2", type(components["vocoder"]).__name__]
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


# ---- Gemma 3 text encoder ----------------------------------------------------------------------------------------


def _gemma_error(folder: Path, problem: str) -> L2AError:
    return L2AError(
        f"Text encoder folder '{folder}' {problem}. LTX-2 needs a Gemma 3 transformers folder with config.json, "
        f"safetensors weights and the tokenizer, e.g. {GEMMA_FOLDER} (google/{GEMMA_FOLDER})."
    )


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")


def inspect_gemma_folder(folder: str | os.PathLike) -> dict:
    """The config of a Gemma 3 transformers folder, after checking what loading needs without reading weights:
    config.json of a Gemma 3 12B, safetensors weights and the tokenizer files (without them transformers would
    silently build a tokenizer that turns every prompt into one token)."""
    from .gemma_single_file import OTHER_GEMMA3

    folder = Path(folder)
    if not folder.is_dir():
        raise _gemma_error(folder, "does not exist or is not a folder")
    if not (folder / "config.json").is_file():
        raise _gemma_error(folder, "has no config.json")
    config = _read_json(folder / "config.json")
    model_type = config.get("model_type")
    if model_type not in GEMMA_MODEL_TYPES:
        raise _gemma_error(folder, f"holds a {model_type!r} model, not Gemma 3 ({' or '.join(GEMMA_MODEL_TYPES)})")
    hidden = (config.get("text_config") or config).get("hidden_size")
    if hidden in OTHER_GEMMA3:
        raise _gemma_error(folder, f"holds Gemma 3 {OTHER_GEMMA3[hidden]}, but LTX-2 was trained with Gemma 3 12B")
    if not any(folder.glob("*.safetensors")):
        raise _gemma_error(folder, "has no .safetensors weights (only safetensors are loaded)")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise _gemma_error(folder, f"has no tokenizer ({' or '.join(TOKENIZER_FILES)} is missing; copy the "
                                   "tokenizer files of the same download into it)")
    return config


def inspect_text_encoder(path: str | os.PathLike) -> str:
    """Check a text encoder path from its headers and configs alone (no weights read): what it is, in words."""
    path = Path(path)
    if path.is_file() or path.suffix.lower() in SAFETENSORS_SUFFIXES:
        from .gemma_single_file import inspect_gemma_file

        info = inspect_gemma_file(path)
        quantized = "" if info.quantization == "none" else f", {info.quantization}"
        return f"Gemma 3 single file ({info.weight_dtype.lower()}{quantized})"
    inspect_gemma_folder(path)
    return "Gemma 3 transformers folder"


def load_text_encoder(folder: str | os.PathLike, dtype: Any = "bf16", device: Any = "cpu") -> TextEncoder:
    """Load a local Gemma 3 folder (multimodal or text-only) and its tokenizer, offline; config checked first.

    A file (or a path ending in .safetensors) is ComfyUI's single-file Gemma, read by `gemma_single_file`.
    """
    # ---- single file: ComfyUI's gemma_3_12B_it*.safetensors, tokenizer embedded ----
    if Path(folder).is_file() or Path(folder).suffix.lower() in SAFETENSORS_SUFFIXES:
        from .gemma_single_file import load_gemma_file

        return load_gemma_file(folder, dtype=dtype, device=device)
    # ---- transformers folder ----
    torch_dtype = resolve_dtype(dtype)
    device = _resolve_device(device)
    folder = Path(folder)
    config = inspect_gemma_folder(folder)
    model_type = config.get("model_type")

    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3ForConditionalGeneration, Gemma3TextModel

    if model_type == "gemma3":
        cls = Gemma3ForConditionalGeneration
    elif "Gemma3ForCausalLM" in (config.get("architectures") or []):
        cls = Gemma3ForCausalLM
    else:
        cls = Gemma3TextModel
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise _gemma_error(folder, f"has no usable tokenizer ({exc})") from exc
    if len(tokenizer("a cat walks in the rain", add_special_tokens=False).input_ids) < 2:
        raise _gemma_error(folder, "has a tokenizer that turns a whole sentence into one token (its tokenizer files "
                                   "are damaged or from another model)")
    try:
        model = cls.from_pretrained(str(folder), dtype=torch_dtype, local_files_only=True, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise _gemma_error(folder, f"could not be loaded ({exc})") from exc
    model = model.to(device).eval().requires_grad_(False)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return TextEncoder(
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=torch_dtype,
        source=str(folder),
        max_sequence_length=int(min(1024, tokenizer.model_max_length)),
    )
