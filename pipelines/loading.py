"""Load LTX-2 checkpoints (official all-in-one safetensors, LTX-2.5's split files, or a diffusers folder) and the
text encoders (Gemma 3; LTX-2.5's Gemma 4 with the LTX text projection).

Files are checked from their safetensors header alone before any tensor is read, so a wrong file fails in
milliseconds with a message that names it and the fix. Modules are built from the family's configs (or the tiny
config stored in the file) with parameters on the meta device, the files' key sets are compared with the modules'
(still before reading a tensor), then filled with `load_state_dict(assign=True, strict=True)`: no random init, no
second copy of the weights. Everything is offline.

Which family a checkpoint is comes from the family records (`families.recognise`): a file's `model_version` and
tensor names (which must agree), a diffusers folder's configs. A tiny model says so in its own metadata
(`l2a_tiny`, its configs); a tiny diffusers folder has the configs of a tiny record. The variant is "distilled" when
the metadata or the file (folder) name says so, or a folder's scheduler has dynamic shifting off, else "dev".

A family with `parts` (LTX-2.5) ships a transformer file (with the text connectors) and one file per other
component: the video VAE and the audio VAE with its vocoder, found by their official names in the VAE folders
("auto") or given. Every part must be of the transformer's family. The text projection is in the text encoder's file
and travels with the text encoder. The LTX-2.5 diffusers folder holds the distilled transformer in `transformer/`
and the dev one in `transformer_full/`: the path `<folder>/transformer_full` picks the dev model.

The weights of the transformer and the connectors can be read again from the source (`reread_weights`): fusing a
LoRA changes them in place, and re-reading the memory-mapped file restores them exactly without a copy in memory.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import convert
from .components import LTX2Model, TextEncoder
from .errors import L2AError
from .families import (
    FAMILIES,
    GEMMA_3_12B,
    TINY_FAMILIES,
    Family,
    declared_by_name,
    family,
    generation_of_version,
    marked_generation,
    recognise,
    recognise_by_marks,
)
from .memory import MemoryPolicy, apply_scaled_fp8, quantize_fp8, track, with_policy
from .text_projection import CONNECTOR_LAYERS, in_text_encoder, without_projection
from .weights import (
    SAFETENSORS_SUFFIXES,
    config_section,
    file_stamp,
    parameters_on_meta,
    read_safetensors_header,
    resolve_device,
    resolve_dtype,
    write_safetensors,
)

logger = logging.getLogger(__name__)

LTX2_FILES = ", ".join(
    f"{' or '.join(f.name for f in fam.checkpoints.values())} ({fam.label}, {fam.checkpoints['dev'].repo})"
    for fam in FAMILIES.values()
)
FP32_COMPONENTS = ("audio_vae", "vocoder")  # small; the 2.3 BWE vocoder breaks in bf16
GEMMA_MODEL_TYPES = ("gemma3", "gemma3_text")
# The distilled checkpoints sample a fixed sigma list: no dynamic or terminal shift (diffusers' conversion script).
DISTILLED_SCHEDULER = {"use_dynamic_shifting": False, "shift_terminal": None}
REREAD_COMPONENTS = ("transformer", "connectors")  # what LoRAs change
# A split family's parts: the components each part file holds, its key prefix in the official layout.
PART_COMPONENTS = {"vae": ("vae",), "audio_vae": ("audio_vae", "vocoder")}
PART_LABELS = {"vae": "video VAE", "audio_vae": "audio VAE and vocoder"}
DEV_TRANSFORMER_FOLDER = "transformer_full"  # LTX-2.5-Diffusers: the dev transformer beside the distilled one
_WEIGHT_SCALE, _INPUT_SCALE = ".weight_scale", ".input_scale"  # pre-quantized fp8 files
_DAMAGED = "the file is damaged or was not fully downloaded: download it again."
_PLAIN_DTYPES = {"BF16", "F16", "F32"}
_FP8_DTYPES = {"F8_E4M3", "F8_E5M2"}
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
    config: dict  # the family's component configs (or the tiny ones stored in the file)
    fp8: bool  # official pre-quantized fp8 file (weight_scale keys)
    tiny: bool
    metadata: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)  # part ("vae", "audio_vae") -> file, for a split family's transformer
    text_encoder_version: str = ""  # the gemma_version the transformer names (gemma_source_checkpoint)


def with_official_stg(config: dict) -> dict:
    """`config` with the transformer's perturbed-attention path on. The official STG replaces self-attention by its
    value projection on every family; diffusers builds that path only when `perturbed_attn` is set, which its 2.0
    conversion (and so every 2.0 diffusers folder) leaves off, making the STG pass a copy of the conditional one.
    The flag adds no weights."""
    return {**config, "transformer": {**config["transformer"], "perturbed_attn": True}}


def scheduler_config_for(config: dict, variant: str) -> dict:
    """FlowMatchEulerDiscreteScheduler kwargs for a variant: the distilled model turns the shifts off."""
    scheduler = {k: v for k, v in config["scheduler"].items() if not k.startswith("_")}
    if variant == "distilled":
        scheduler.update(DISTILLED_SCHEDULER)
    return scheduler


# ---- safetensors files -------------------------------------------------------------------------------------------


def _variant_from(name: str, metadata: Mapping[str, str]) -> str:
    if metadata.get("l2a_variant") in ("dev", "distilled"):
        return metadata["l2a_variant"]
    hints = [name] + [f"{k}={v}" for k, v in metadata.items() if k not in ("config", "l2a_tiny")]
    return "distilled" if any("distilled" in hint.lower() for hint in hints) else "dev"


def _component_file(keys: list[str], metadata: Mapping[str, str]) -> str | None:
    """What LTX component file a non-transformer file is, by its keys: the text encoder, a part, or None."""
    if "gemma_config" in metadata or any(k.endswith(("layer_scalar", "pre_feedforward_layernorm.weight"))
                                         for k in keys):
        return "text encoder"
    if any(k.startswith(("audio_vae.", "vocoder.")) for k in keys):
        return PART_LABELS["audio_vae"]
    if any(k.startswith(("vae.", "per_channel_statistics.", "encoder.down_blocks.", "decoder.up_blocks."))
           for k in keys):
        return PART_LABELS["vae"]
    return None


def _classify_foreign(path: Path, keys: list[str], metadata: Mapping[str, str]) -> None:
    """Raise a specific L2AError for files that are clearly something other than an LTX-2 checkpoint."""
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
    kind = _component_file(keys, metadata)
    if kind is not None:
        where = "LTX-2 Text Encoder Loader" if kind == "text encoder" else "the model loader's VAE inputs"
        raise L2AError(
            f"'{name}' is an LTX-2 {kind} file, not a model checkpoint: load it with {where}, and load the "
            f"transformer (or all-in-one) checkpoint here: {LTX2_FILES}."
        )
    sample = ", ".join(sorted(keys)[:3]) or "no tensors"
    raise L2AError(
        f"'{name}' is not an LTX-2 checkpoint (it has {len(keys)} tensors, e.g. {sample}). Load an LTX-2 "
        f"all-in-one checkpoint: {LTX2_FILES}."
    )


def _tiny_config(path: Path, metadata: Mapping[str, str]) -> dict:
    try:
        config = json.loads(metadata["l2a_tiny"])
        for name in (*convert.COMPONENTS, "scheduler"):
            dict(config[name])
    except (ValueError, KeyError, TypeError) as exc:
        raise L2AError(f"'{path.name}' has a damaged tiny-model config ({exc}): write it again.") from exc
    return config


def _refuse_quantized(path: Path, header: Mapping[str, dict], generation: Family) -> None:
    """ComfyUI's int8 (ConvRot) and NVFP4 files keep integer weights with block scales, which run in ComfyUI's own
    kernels only: refused with the family's bf16 files. (Official fp8 files with per-tensor scales load.)"""
    odd = next(((k, e.get("dtype")) for k, e in header.items()
                if str(e.get("dtype", "")) not in (_PLAIN_DTYPES | _FP8_DTYPES)), None)
    if odd is not None:
        files = " or ".join(f"{f.name} ({f.url})" for f in generation.checkpoints.values())
        raise L2AError(
            f"'{path.name}' stores weights as {odd[1]} (e.g. {odd[0]}): a ComfyUI-quantized file (e.g. int8-convrot "
            f"or NVFP4) that only ComfyUI's own nodes run. Use the bf16 file: {files}; fp8_weights on the loader halves "
            "its memory."
        )


def _generation_of_file(path: Path, keys: list[str], metadata: Mapping[str, str]) -> Family:
    """The generation of a transformer file: its `model_version` and its tensors must say the same one."""
    by_version = generation_of_version(metadata.get("model_version", ""), f"'{path.name}'")
    by_marks = marked_generation(keys)
    if by_version is not None and by_marks is not None and by_marks is not by_version:
        raise L2AError(
            f"'{path.name}' says model_version {metadata['model_version']!r} ({by_version.label}) but its tensors are "
            f"{by_marks.label}'s: the file is mislabelled or damaged. Download it again."
        )
    return by_version or by_marks or recognise_by_marks(keys)


def _gemma_source_version(metadata: Mapping[str, str], path: Path) -> str:
    raw = metadata.get("gemma_source_checkpoint")
    if not raw:
        return ""
    try:
        return str(json.loads(raw).get("gemma_version") or "")
    except (ValueError, AttributeError) as exc:
        raise L2AError(f"'{path.name}' has damaged gemma_source_checkpoint metadata ({exc}): {_DAMAGED}") from exc


_BARE_VAE_ROOTS = ("encoder.", "decoder.", "per_channel_statistics.")


def _official_vae_key(key: str) -> str:
    """A video VAE file's key in the all-in-one layout: official VAE files keep bare `encoder.*`, `decoder.*`,
    `per_channel_statistics.*` keys (loaders also accept them `vae.`-prefixed)."""
    return "vae." + key if key.startswith(_BARE_VAE_ROOTS) else key


@dataclass
class PartInfo:
    """A split family's component file, from its header."""

    path: Path
    part: str  # "vae" or "audio_vae"
    family: Family | None  # what its metadata or official name says (None: unknown)


def _part_family(path: Path, metadata: Mapping[str, str]) -> Family | None:
    return generation_of_version(metadata.get("model_version", ""), f"'{path.name}'") or declared_by_name(path.name)


def inspect_part(path: str | os.PathLike, part: str, for_family: Family) -> PartInfo:
    """Check a split family's component file from its header: the right component, safetensors, not quantized, not
    LTX-2.5's diffusion-decoder VAE (LTX-2 Decode Video's option, not the model's video VAE)."""
    path = Path(path)
    label, wanted = PART_LABELS[part], for_family.parts[part]
    if not path.is_file():
        raise L2AError(f"The {label} '{path}' does not exist: put {wanted.name} ({wanted.url}) in models/"
                       f"{wanted.folder}.")
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise L2AError(f"'{path.name}' is not a .safetensors file: use {wanted.name} ({wanted.url}) as the {label}.")
    header, metadata = read_safetensors_header(path)
    keys = list(header)
    holds = {convert.component_of(_official_vae_key(k) if part == "vae" else k) for k in keys}
    if not set(PART_COMPONENTS[part]) <= holds or holds - set(PART_COMPONENTS[part]) - {None}:
        what = _component_file(keys, metadata) or "not an LTX-2 component"
        raise L2AError(f"'{path.name}' is the {what} file, not the {label}: pick {wanted.name} ({wanted.url}) as the "
                       f"{label}.")
    diffusion = for_family.extras.get("diffusion_decoder")
    from .diffusion_decoder import DIFFUSION_CLASS

    vae_class = str(config_section(metadata, "vae").get("_class_name", "")) if part == "vae" else ""
    if vae_class == DIFFUSION_CLASS or (diffusion is not None and path.name.lower() == diffusion.name.lower()):
        raise L2AError(f"'{path.name}' is the video VAE with the diffusion decoder, which has no conv decoder: pick "
                       f"{wanted.name} ({wanted.url}) as the {label}, and decoder = diffusion on LTX-2 Decode Video "
                       f"to decode with '{path.name}' (it is found in models/{diffusion.folder if diffusion else 'vae'}).")
    _refuse_quantized(path, header, for_family)
    return PartInfo(path, part, _part_family(path, metadata))


def part_of_file(path: str | os.PathLike) -> str:
    """Which part ("vae", "audio_vae") a split family's VAE file holds, from its header."""
    path = Path(path)
    header, metadata = read_safetensors_header(path)
    kind = _component_file(list(header), metadata)
    for part, label in PART_LABELS.items():
        if kind == label:
            return part
    raise L2AError(f"'{path.name}' is not an LTX-2 VAE file (it is {kind or 'no LTX-2 component'}): LTX-2.5 takes "
                   "its video VAE and its audio VAE from models/vae.")


def _resolve_parts(path: Path, generation: Family, given: Mapping[str, Any] | None,
                   folders: Mapping[str, Iterable[str | os.PathLike]] | None) -> dict[str, Path]:
    """Each part's file: the one given, else ("auto") the family's official file in the part's folders (by default
    the ComfyUI folder beside the transformer's, e.g. models/vae)."""
    from .model_files import require_file

    found = {}
    for part, official in generation.parts.items():
        choice = (given or {}).get(part)
        if choice not in (None, "", "auto"):
            found[part] = Path(choice)
            continue
        where = (folders or {}).get(official.folder)
        if where is None:
            where = [Path(os.path.abspath(path)).parent.parent / official.folder]
        found[part] = require_file(official, where, f"{generation.label} ('{path.name}') needs its "
                                                    f"{PART_LABELS[part]}, and loading it")
    return found


def _check_parts(path: Path, generation: Family, parts: Mapping[str, Path]) -> None:
    """Each part file checked from its header, and of the transformer's family where it says which it is."""
    for part, file in parts.items():
        info = inspect_part(file, part, generation)
        if info.family is not None and info.family.name != generation.name:
            wanted = generation.parts[info.part]
            raise L2AError(
                f"'{path.name}' is the {generation.label} transformer but '{info.path.name}' is {info.family.label}'s "
                f"{PART_LABELS[info.part]}: {generation.label} needs {wanted.name} ({wanted.url})."
            )


def _refuse_parts_for_all_in_one(path: Path, generation: Family, given: Mapping[str, Any] | None) -> None:
    """A family without parts takes no VAE files: a chosen one is refused, naming both files and what it needs."""
    chosen = {part: Path(value) for part, value in (given or {}).items() if value not in (None, "", "auto")}
    if not chosen:
        return
    owners = {part: _part_family(file, read_safetensors_header(file)[1]) if file.is_file() else None
              for part, file in chosen.items()}

    def chosen_as(part: str, file: Path) -> str:
        whose = f" ({owners[part].label}'s)" if owners[part] is not None else ""
        return f"'{file.name}'{whose} was chosen as the {PART_LABELS.get(part, part)}"

    items = ", ".join(chosen_as(part, file) for part, file in chosen.items())
    files = " or ".join(f.name for f in generation.checkpoints.values())
    other = next((f for f in owners.values() if f is not None and f.name != generation.name), None)
    hint = f"; for {other.label}, load its transformer file, e.g. {other.checkpoints['dev'].name}" if other else ""
    raise L2AError(
        f"'{path.name}' is an {generation.label} checkpoint, which takes no separate VAE files, but {items}: "
        f"{generation.label} needs its all-in-one checkpoint ({files}) with the VAE inputs on auto{hint}."
    )


def _inspect_file(path: Path, parts: Mapping[str, Any] | None = None,
                  folders: Mapping[str, Iterable[str | os.PathLike]] | None = None,
                  with_parts: bool = True) -> CheckpointInfo:
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise L2AError(
            f"'{path.name}' is a {path.suffix or 'suffix-less'} file: only safetensors are loaded (pickle formats such "
            f"as .ckpt/.pt/.bin can run code). Use the .safetensors release: {LTX2_FILES}."
        )
    header, metadata = read_safetensors_header(path)
    keys = list(header)
    if not any(k.endswith(("audio_patchify_proj.weight", "audio_adaln_single.linear.weight")) for k in keys):
        _classify_foreign(path, keys, metadata)
    generation = _generation_of_file(path, keys, metadata)
    _refuse_quantized(path, header, generation)
    present = {convert.component_of(k) for k in keys}
    found_parts: dict[str, Path] = {}
    if generation.split and not present & {"vae", "audio_vae", "vocoder"}:
        missing = [c for c in ("transformer", "connectors") if c not in present]
        if missing:
            raise L2AError(f"'{path.name}' is an {generation.label} transformer file without the {', '.join(missing)} "
                           f"weights: {_DAMAGED}")
        if with_parts:
            found_parts = _resolve_parts(path, generation, parts, folders)
            _check_parts(path, generation, found_parts)
    else:
        _refuse_parts_for_all_in_one(path, generation, parts)
        missing = [c for c in convert.COMPONENTS if c not in present]
        if missing:
            raise L2AError(
                f"'{path.name}' is an LTX-2 file without the {', '.join(missing)} weights (a split or transformer-only "
                f"file). Load the all-in-one checkpoint, which holds every component except Gemma: {LTX2_FILES}."
            )
    fp8 = any(k.endswith(("weight_scale", "input_scale")) for k in keys) or any(
        str(entry.get("dtype", "")).startswith("F8") for entry in header.values()
    )
    tiny = "l2a_tiny" in metadata
    found = family(generation.name, tiny=True) if tiny else generation
    return CheckpointInfo(
        path=path,
        family=found,
        variant=_variant_from(path.name, metadata),
        config=with_official_stg(_tiny_config(path, metadata) if tiny else found.config()),
        fp8=fp8,
        tiny=tiny,
        metadata=metadata,
        parts=found_parts,
        text_encoder_version=_gemma_source_version(metadata, path),
    )


# ---- diffusers folders -------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise L2AError(f"Cannot read '{path}': {exc}. The folder is incomplete or damaged.") from exc


def _public(config: Mapping[str, Any]) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _tiny_family_of(configs: Mapping[str, Mapping]) -> Family | None:
    """The tiny record of a folder's generation whose transformer config the folder's has (a tiny folder carries no
    metadata: its configs tell it apart)."""
    generation = recognise(configs=configs)
    for tiny in TINY_FAMILIES.values():
        expected = tiny.config()["transformer"]
        if tiny.name == generation.name and all(configs["transformer"].get(k) == v for k, v in expected.items()):
            return tiny
    return None


def folder_layout(path: str | os.PathLike) -> tuple[Path, dict[str, Path]]:
    """(the diffusers folder, component -> sub-folder) of a folder path; `<folder>/transformer_full` is the folder
    with its dev transformer."""
    path = Path(path)
    root, transformer = path, "transformer"
    if path.name == DEV_TRANSFORMER_FOLDER and (path.parent / "model_index.json").is_file():
        root, transformer = path.parent, DEV_TRANSFORMER_FOLDER
    layout = {name: root / name for name in convert.COMPONENTS}
    layout["transformer"] = root / transformer
    return root, layout


def _inspect_folder(path: Path) -> CheckpointInfo:
    root, layout = folder_layout(path)
    if not (root / "model_index.json").is_file():
        raise L2AError(
            f"'{path}' is a folder without model_index.json: pass an LTX-2 all-in-one .safetensors file or a "
            "diffusers-format LTX-2 folder (with model_index.json and transformer/, vae/, audio_vae/, vocoder/, "
            "connectors/, scheduler/)."
        )
    missing = [layout[c].name for c in convert.COMPONENTS if not layout[c].is_dir()]
    missing += [] if (root / "scheduler").is_dir() else ["scheduler"]
    if missing:
        raise L2AError(
            f"The diffusers folder '{root}' lacks the subfolder(s) {', '.join(missing)}: copy the complete "
            "LTX-2 diffusers repository (Lightricks/LTX-2 layout)."
        )
    found = {c: _read_json(layout[c] / "config.json") for c in convert.COMPONENTS}
    found["scheduler"] = _read_json(root / "scheduler" / "scheduler_config.json")
    extra = {name: {} for name in ("duration_head", DEV_TRANSFORMER_FOLDER) if (root / name).is_dir()}
    marks = {**found, **extra}
    tiny = _tiny_family_of(marks)
    found_family = tiny or recognise(configs=marks)
    config = found_family.config()
    scheduler = config["scheduler"]
    for name, cfg in found.items():
        config[name] = _public(cfg)
    config["vocoder_class"] = found["vocoder"].get("_class_name", "LTX2Vocoder")
    if layout["transformer"].name == DEV_TRANSFORMER_FOLDER:
        variant = "dev"
        config["scheduler"] = scheduler  # the folder's scheduler is the distilled one's
    elif DEV_TRANSFORMER_FOLDER in extra:
        variant = "distilled"
    else:
        distilled = "distilled" in root.name.lower() or found["scheduler"].get("use_dynamic_shifting") is False
        variant = "distilled" if distilled else "dev"
    return CheckpointInfo(
        path=path,
        family=found_family,
        variant=variant,
        config=with_official_stg(config),
        fp8=False,
        tiny=tiny is not None,
    )


def inspect_checkpoint(path: str | os.PathLike, parts: Mapping[str, Any] | None = None,
                       folders: Mapping[str, Iterable[str | os.PathLike]] | None = None,
                       with_parts: bool = True) -> CheckpointInfo:
    """Identify an LTX-2 checkpoint (file: headers only; folder: configs only) or raise an L2AError saying why not.

    For a split family's transformer file, `parts` may name each part's file ("vae", "audio_vae"; "auto" or
    absent: the official file in `folders[<its ComfyUI folder key>]`, by default the folder beside the
    transformer's); `with_parts=False` checks the transformer file alone (the doctor checks each part itself)."""
    path = Path(path)
    if not path.exists():
        raise L2AError(f"Checkpoint '{path}' does not exist: check the path or put {LTX2_FILES} there.")
    if path.is_dir():
        return _inspect_folder(path)
    return _inspect_file(path, parts, folders, with_parts)


def placement_note(info: CheckpointInfo, listed_in: str | None) -> str:
    """A note when a file was found in another ComfyUI folder than its family keeps it in ("" otherwise)."""
    official = info.family.checkpoints.get(info.variant)
    if listed_in is None or info.path.is_dir() or official is None or official.folder == listed_in:
        return ""
    return (f"'{info.path.name}' is an {info.family.label} {official.folder.replace('_', ' ').rstrip('s')} file, kept "
            f"in models/{listed_in}: it loads from there, but belongs in models/{official.folder}.")


# ---- building and filling modules --------------------------------------------------------------------------------

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


def build_empty(config: dict, names: Iterable[str] = convert.COMPONENTS) -> dict:
    """The modules of a config with meta parameters, ready for load_state_dict(assign=True). When the family's text
    projection is the text encoder's (LTX-2.5), the connectors come without it."""
    classes = component_classes(config.get("vocoder_class", "LTX2Vocoder"))
    with parameters_on_meta():
        modules = {name: classes[name].from_config(config[name]) for name in names}
    if "connectors" in modules and in_text_encoder(config):
        without_projection(modules["connectors"])
    return modules


def _layout_problem(name: str, expected: set, given: set, source: str, label: str) -> L2AError | None:
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if not missing and not unexpected:
        return None
    return L2AError(
        f"The {name} weights in {source} do not match the {label} layout: {len(missing)} missing (e.g. "
        f"{', '.join(missing[:3]) or '-'}), {len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3]) or '-'}). "
        f"The file is another model version or damaged: use {LTX2_FILES}."
    )


def _fill(module, state: dict, name: str, source: str, label: str) -> None:
    problem = _layout_problem(name, set(module.state_dict()), set(state), f"'{source}'", label)
    if problem:
        raise problem
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise L2AError(f"The {name} weights in '{source}' do not fit the {label} config: {exc}") from exc
    module.eval().requires_grad_(False)


@dataclass(frozen=True)
class _Source:
    """One file the model's weights come from: its components, and how its keys map to diffusers keys."""

    path: Path
    rename: Callable[[str], str] | None = None  # file key -> official key (a split part's bare VAE keys)
    folder_component: str = ""  # a diffusers folder's component file: its keys are diffusers keys already


def _sources(info_path: Path, parts: Mapping[str, Path] | None = None, components=convert.COMPONENTS) -> list[_Source]:
    """The files of a checkpoint (its own, then its parts; a folder's weight files per component)."""
    if info_path.is_dir():
        _root, layout = folder_layout(info_path)
        return [_Source(file, folder_component=name) for name in components
                for file in _folder_weight_files(layout[name])]
    sources = [_Source(info_path)]
    for part, file in (parts or {}).items():
        if set(PART_COMPONENTS[part]) & set(components):
            sources.append(_Source(file, _official_vae_key if part == "vae" else None))
    return sources


def _key_map(source: _Source, keys: Iterable[str], skip: Callable[[str, str], bool]) -> dict[str, tuple | None]:
    """File key -> (component, diffusers key), None for keys diffusers does not use or the model does not hold."""
    keys = list(keys)
    if source.folder_component:
        mapped = {k: (source.folder_component, k) for k in keys}
    else:
        renamed = {k: source.rename(k) if source.rename else k for k in keys}
        official = convert.official_key_map(renamed.values())
        mapped = {k: official[renamed[k]] for k in keys}
    return {k: None if target is None or skip(*target) else target for k, target in mapped.items()}


def _skipper(config: Mapping[str, Any]) -> Callable[[str, str], bool]:
    """Which (component, key) a model leaves out: the text projection when the text encoder holds it (LTX-2.5's
    diffusers folder has it in connectors/; its text encoder loads it from there)."""
    prefixes = tuple(f"{layer}." for layer in CONNECTOR_LAYERS.values())
    projection_elsewhere = in_text_encoder(config)
    return lambda component, key: projection_elsewhere and component == "connectors" and key.startswith(prefixes)


def _file_tensors(source: _Source, prepare, skip, wanted: Mapping[str, set] | None = None
                  ) -> Iterator[tuple[str, str, Any]]:
    """(component, diffusers key, tensor) for every tensor of one file (or the `wanted` ones), each passed through
    `prepare(component, key, tensor, scale)`, one at a time.

    Official pre-quantized files (`*-fp8.safetensors`, ltx-core's `fp8_scaled_mm` format) store a Linear as an fp8
    `<layer>.weight` plus a float32 `<layer>.weight_scale` (and `<layer>.input_scale`); the real weight is
    `weight.float() * weight_scale`, so such a weight comes with its scale (None for every other tensor). Input
    scales only serve fp8 matmul kernels, which the pack does not use: they are dropped, with a note in the log.
    """
    import torch
    from safetensors import safe_open

    path = source.path
    dropped = 0
    with safe_open(str(path), framework="pt", device="cpu") as f:
        key_map = _key_map(source, f.keys(), skip)
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
            if wanted is not None and new_key not in wanted.get(name, ()):
                continue
            scale_key = key.removesuffix(".weight") + _WEIGHT_SCALE
            scale = None
            if key.endswith(".weight") and scale_key in key_map:
                scale = f.get_tensor(scale_key).to(torch.float32)
                if not bool(torch.isfinite(scale).all() and (scale > 0).all()):
                    raise L2AError(f"'{path.name}' has an invalid fp8 scale {scale_key}: {_DAMAGED}")
            yield name, new_key, prepare(name, new_key, f.get_tensor(key), scale)
    if dropped and wanted is None:
        logger.info("%s: ignored %d fp8 input scales (activations are computed in bf16/fp16/fp32).", path.name, dropped)


def _header_keys(sources: list[_Source], skip) -> dict[str, set]:
    """The diffusers keys each component would get from the files, from their headers alone."""
    keys: dict[str, set] = {}
    for source in sources:
        header, _ = read_safetensors_header(source.path)
        for key, target in _key_map(source, header, skip).items():
            if target is not None and not key.endswith((_WEIGHT_SCALE, _INPUT_SCALE)):
                keys.setdefault(target[0], set()).add(target[1])
    return keys


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


def _source_tensors(sources: list[_Source], prepare, skip, wanted: Mapping[str, set] | None = None
                    ) -> Iterator[tuple[str, str, Any]]:
    for source in sources:
        if source.folder_component:
            read_safetensors_header(source.path)
        yield from _file_tensors(source, prepare, skip, wanted)


def _restore_cast(tensor, scale, dtype):
    """How `load_model` turns a stored tensor into a weight of a non-fp8 model: scaled fp8 widened, then cast."""
    import torch

    if scale is not None:
        tensor = tensor.to(torch.float32) * scale
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def reread_problem(model: LTX2Model) -> str | None:
    """Why the model's transformer and connectors weights cannot be read again from their source, or None."""
    if not model.source_stamps:
        return "its weights were not read from a checkpoint file"
    for stamp in model.source_stamps:
        try:
            now = file_stamp(stamp[0])
        except OSError:
            return f"'{Path(stamp[0]).name}' is no longer where the model was loaded from"
        if now != tuple(stamp):
            return f"'{Path(stamp[0]).name}' changed on disk since the model was loaded"
    return None


def reread_weights(model: LTX2Model, wanted: Mapping[str, Iterable[str]]) -> Iterator[tuple[str, str, Any]]:
    """(component, key, tensor) of the `wanted` transformer / connectors tensors, exactly as `load_model` gave
    them to the model, read again from its memory-mapped source one tensor at a time (on the CPU)."""
    problem = reread_problem(model)
    if problem is not None:
        raise L2AError(f"The original weights of {model.describe()} cannot be read again: {problem}.")
    unknown = [name for name in wanted if name not in REREAD_COMPONENTS]
    if unknown:
        raise L2AError(f"Only {', '.join(REREAD_COMPONENTS)} weights are read again, not {', '.join(unknown)}.")

    def prepare(_name, _key, tensor, scale):
        return _restore_cast(tensor, scale, model.dtype)

    sources = _sources(Path(model.source), components=REREAD_COMPONENTS)
    return _source_tensors(sources, prepare, _skipper(model.configs),
                           {name: set(keys) for name, keys in wanted.items()})


def load_model(path: str | os.PathLike, dtype: Any = "bf16", device: Any = "cpu", fp8: bool = False,
               memory: MemoryPolicy | None = None, parts: Mapping[str, Any] | None = None,
               folders: Mapping[str, Iterable[str | os.PathLike]] | None = None,
               listed_in: str | None = None) -> LTX2Model:
    """Load an LTX-2 checkpoint (all-in-one .safetensors, a split family's transformer file with its parts, or a
    diffusers folder) into diffusers modules.

    Transformer, connectors and video VAE use `dtype`; the audio VAE and vocoder stay fp32. `fp8=True` stores the
    transformer blocks' Linear weights as fp8 with a per-tensor scale (the official fp8 format) and computes in
    `dtype`: an official pre-quantized `*-fp8.safetensors` keeps its fp8 weights and scales, other files are
    quantized while reading, so the full-precision transformer never sits on the device. Without `fp8` a
    pre-quantized file is dequantized (`weight * weight_scale`) into `dtype`.

    `parts` and `folders` choose a split family's part files (see `inspect_checkpoint`); `listed_in` is the ComfyUI
    folder key the file was picked from, so a file kept in another folder than its family's gets a note.
    `memory` is applied before returning (see `memory.MemoryPolicy`); when it offloads, weights are read into system
    memory and only what the policy places on `device` goes there.
    """
    import torch

    torch_dtype = resolve_dtype(dtype)
    device = resolve_device(device)
    if memory is not None:
        memory.check(device)
    info = inspect_checkpoint(path, parts, folders)
    note = placement_note(info, listed_in)
    if note:
        logger.warning(note)
    dtypes = {name: torch.float32 if name in FP32_COMPONENTS else torch_dtype for name in convert.COMPONENTS}
    modules = build_empty(info.config)
    sources = _sources(info.path, info.parts)
    skip = _skipper(info.config)
    given = _header_keys(sources, skip)
    files = " and ".join(f"'{s.path.name}'" for s in sources if not s.folder_component) or f"'{info.path}'"
    for name, module in modules.items():  # every file's key set against the modules, before reading a tensor
        problem = _layout_problem(name, set(module.state_dict()), given.get(name, set()), files, info.family.label)
        if problem:
            raise problem
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
        return _restore_cast(tensor, None, dtypes[name]).to(read_device)

    stamps = tuple(file_stamp(s.path) for s in _sources(info.path, components=REREAD_COMPONENTS))
    states: dict[str, dict] = {name: {} for name in convert.COMPONENTS}
    for name, key, tensor in _source_tensors(sources, prepare, skip):
        states[name][key] = tensor
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
        source_stamps=stamps,
        text_encoder_version=info.text_encoder_version,
        notes=(note,) if note else (),
        extra_folders={key: [Path(f) for f in paths] for key, paths in (folders or {}).items()},
    )
    model = model if memory is None else with_policy(model, memory)
    track(model)
    return model


# ---- writing -----------------------------------------------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike, components: Mapping[str, Any], metadata: Mapping[str, str],
                    names: Iterable[str] = convert.COMPONENTS) -> Path:
    """Write modules in the official layout, atomically: every component (an all-in-one file) or the `names` given
    (a split family's transformer file: transformer and connectors, without the text projection it does not hold)."""
    names = list(names)
    missing = [c for c in names if c not in components]
    if missing:
        raise L2AError(f"save_checkpoint needs all of {', '.join(names)}; missing {', '.join(missing)}.")
    states = {name: components[name].state_dict() for name in names}
    if "connectors" in states and "vae" not in states:
        prefixes = tuple(f"{layer}." for layer in CONNECTOR_LAYERS.values())
        states["connectors"] = {k: v for k, v in states["connectors"].items() if not k.startswith(prefixes)}
    return write_safetensors(path, convert.diffusers_to_official(states), metadata)


def save_part(path: str | os.PathLike, part: str, components: Mapping[str, Any], metadata: Mapping[str, str]) -> Path:
    """Write a split family's part file in the official layout (the video VAE with bare `encoder.`/`decoder.` keys,
    the audio VAE with its vocoder), atomically."""
    official = convert.diffusers_to_official({name: components[name].state_dict() for name in PART_COMPONENTS[part]})
    if part == "vae":
        official = {k.removeprefix("vae."): v for k, v in official.items()}
    return write_safetensors(path, official, metadata)


def save_diffusers_folder(path: str | os.PathLike, components: Mapping[str, Any], scheduler_config: dict,
                          dev_transformer: Any = None, extra: Callable[[Path], Mapping | None] | None = None) -> Path:
    """Write modules as a diffusers-format folder (Lightricks/LTX-2 layout, without Gemma), atomically;
    `dev_transformer` adds LTX-2.5-Diffusers' `transformer_full/`; `extra(folder)` writes more (a text encoder) and
    returns its model_index.json entries."""
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
        if dev_transformer is not None:
            dev_transformer.save_pretrained(tmp / DEV_TRANSFORMER_FOLDER, safe_serialization=True)
        FlowMatchEulerDiscreteScheduler(**scheduler_config).save_pretrained(tmp / "scheduler")
        index = {"_class_name": "LTX2Pipeline", "_diffusers_version": diffusers.__version__, **_PIPELINE_INDEX}
        index["vocoder"] = ["ltx2", type(components["vocoder"]).__name__]
        if extra is not None:
            index.update(extra(tmp) or {})
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


# ---- text encoders -----------------------------------------------------------------------------------------------


def _gemma_error(folder: Path, problem: str) -> L2AError:
    return L2AError(
        f"Text encoder folder '{folder}' {problem}. LTX-2 needs a Gemma 3 transformers folder with config.json, "
        f"safetensors weights and the tokenizer, e.g. {GEMMA_3_12B.folder.name} ({GEMMA_3_12B.folder.repo})."
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


@dataclass(frozen=True)
class EncoderInfo:
    """What a text encoder path is, from headers and configs alone."""

    path: Path
    kind: str  # "gemma3" or "gemma4_unified"
    version: str  # the gemma_version it declares ("" for none)
    description: str

    def refusal(self, checkpoint: CheckpointInfo) -> str:
        """Why this encoder cannot serve the checkpoint's family, naming both files ("" when it can)."""
        need = checkpoint.family.text_encoder
        why = need.mismatch(self.kind, self.version, checkpoint.text_encoder_version)
        if not why:
            return ""
        return (f"'{self.path.name}' ({self.description}) cannot encode prompts for '{checkpoint.path.name}' "
                f"({checkpoint.family.label}): {why}. {checkpoint.family.label} needs {need.names()}.")


def _is_gemma4(path: Path) -> bool:
    """Whether a text-encoder path is LTX-2.5's kind (a Gemma 4 file, or a diffusers folder with a Gemma 4 encoder)."""
    from .gemma4_encoder import is_gemma4_header

    if path.is_dir():
        config = path / "text_encoder" / "config.json"
        return (path / "model_index.json").is_file() and config.is_file() and "gemma4" in str(
            _read_json(config).get("model_type", ""))
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES or not path.is_file():
        return False
    return is_gemma4_header(*read_safetensors_header(path))


def inspect_text_encoder(path: str | os.PathLike) -> EncoderInfo:
    """Check a text encoder path from its headers and configs alone (no weights read): what it is."""
    path = Path(path)
    if _is_gemma4(path):
        from .gemma4_encoder import inspect_gemma4

        info = inspect_gemma4(path)
        return EncoderInfo(path, info.config.get("model_type", ""), info.version, info.describe())
    if path.is_file() or path.suffix.lower() in SAFETENSORS_SUFFIXES:
        from .gemma_single_file import inspect_gemma_file

        info = inspect_gemma_file(path)
        quantized = "" if info.quantization == "none" else f", {info.quantization}"
        return EncoderInfo(path, "gemma3", "", f"Gemma 3 single file ({info.weight_dtype.lower()}{quantized})")
    inspect_gemma_folder(path)
    return EncoderInfo(path, "gemma3", "", "Gemma 3 transformers folder")


def check_text_encoder_for(checkpoint: CheckpointInfo, encoder: EncoderInfo) -> None:
    """Refuse, from headers alone, a text encoder the checkpoint's family cannot use (Gemma 3 for LTX-2.5 has the
    same feature shape and would give noise; LTX-2.5's Gemma 4 for LTX-2.3; another gemma_version)."""
    refusal = encoder.refusal(checkpoint)
    if refusal:
        raise L2AError(refusal)


def load_text_encoder(folder: str | os.PathLike, dtype: Any = "bf16", device: Any = "cpu") -> TextEncoder:
    """Load a text encoder, offline, headers and configs checked first: a local Gemma 3 folder (multimodal or
    text-only) with its tokenizer; ComfyUI's single-file Gemma 3 (`gemma_single_file`); or LTX-2.5's Gemma 4 with the
    LTX text projection, a single file or a diffusers folder (`gemma4_encoder`).
    """
    if _is_gemma4(Path(folder)):
        from .gemma4_encoder import load_gemma4

        return load_gemma4(folder, dtype=dtype, device=device)
    # ---- single file: ComfyUI's gemma_3_12B_it*.safetensors, tokenizer embedded ----
    if Path(folder).is_file() or Path(folder).suffix.lower() in SAFETENSORS_SUFFIXES:
        from .gemma_single_file import load_gemma_file

        return load_gemma_file(folder, dtype=dtype, device=device)
    # ---- transformers folder ----
    torch_dtype = resolve_dtype(dtype)
    device = resolve_device(device)
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
