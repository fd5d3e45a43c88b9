"""LoRAs on a loaded LTX-2 model: file checks, the families' official LoRAs, and per-run activation.

ComfyUI hands one model object to every branch of a graph and caches node outputs, so applying a LoRA never
changes the model it receives: `add_lora` returns a shallow copy whose `loras` list has one more `LoraSpec`. The
shared transformer and connectors take the chain only inside `active_loras(model)`, around sampling, and are the
base model again on exit, exactly:

* fused (as the official ltx-core builder does) when the weights are bf16/fp16/fp32 and the model's checkpoint can be
  read again: each changed layer becomes `W + sum(strength * B @ A)` (summed in fp32, one layer at a time straight
  from the memory-mapped LoRA files), and on exit the changed layers are read again from the memory-mapped
  checkpoint. No copy of the weights is kept in memory (for the 19B distilled LoRA that copy would be about 37 GB)
  and no adapter tensor exists at all;
* unfused otherwise (fp8 weights, which fusing would round, or a checkpoint that cannot be read again): PEFT
  adapters (diffusers' `load_lora_adapter`) for the run, removed on exit so none stays on the device.

`lora_note(model)` says which of the two a run uses, and why, for the sampler's report.

Files are the official trainer format (PEFT `lora_A`/`lora_B` keys under `diffusion_model.`, connector LoRAs
under `text_embedding_projection.`); diffusers-format keys (`transformer.`, `connectors.`) and kohya-style
`lora_down`/`lora_up`/`alpha` names are read too. Whether a LoRA fits is decided from its safetensors header alone,
by target module names and shapes against the loaded modules, before any tensor is read: a LoRA whose layers fit is
accepted whatever family its name states (Lightricks says LTX-2.3 LoRAs work on LTX-2.5), with a note in the report.
On LTX-2.5 the text projection belongs to the text encoder, so a LoRA's layers there are left out, as the official
pipelines (which put LoRAs on the transformer only) leave them.

IC-LoRAs (in-context control: canny, depth, pose, detailer, union) are LoRAs trained next to a reference video; they
are told apart from plain LoRAs by `ic_lora_mark` (metadata, official names, the name's "ic-lora") and run with their
reference through `ic_lora.add_ic_lora`, never through `add_lora`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterable, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import convert
from .checks import check_number
from .components import LTX2Model
from .errors import L2AError
from .families import ALL_FAMILIES, CAMERA_PRESETS, FAMILIES, Family, declared_by_name, with_camera_loras
from .loading import build_empty, reread_problem, reread_weights
from .model_files import find_file, require_file
from .text_projection import CONNECTOR_LAYERS
from .weights import SAFETENSORS_SUFFIXES, read_safetensors_header_bytes, write_safetensors

logger = logging.getLogger(__name__)

_LORA_MARKERS = (".lora_A.", ".lora_B.", ".lora_down.", ".lora_up.")
_LORA_PARAMS = (".lora_A.weight", ".lora_B.weight", ".lora_B.bias")


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA in a model's chain; `adapter` names it (from the file's fingerprint). `fuse` asks for a fused run:
    a run that cannot fuse then fails instead of running unfused."""

    path: str
    adapter: str
    strength: float = 1.0
    fuse: bool = False

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class LoraFile:
    """What a LoRA file holds, from its header: diffusers key -> shape, and where each key comes from."""

    path: Path
    adapter: str
    shapes: dict[str, tuple[int, ...]]  # e.g. "transformer.transformer_blocks.0.attn1.to_q.lora_A.weight"
    sources: dict[str, str]  # diffusers key -> key in the file
    alphas: dict[str, str] = field(default_factory=dict)  # "transformer.<module>" -> key of its alpha in the file
    metadata: dict[str, str] = field(default_factory=dict)  # the safetensors metadata

    @property
    def layers(self) -> list[str]:
        """The layers it changes, "transformer.<module>" / "connectors.<module>"."""
        return sorted({key.rsplit(".lora_", 1)[0] for key in self.shapes})

    def without(self, prefixes: tuple[str, ...]) -> LoraFile:
        """The LoRA without its layers whose diffusers name starts with one of `prefixes`."""
        return replace(self, shapes={k: v for k, v in self.shapes.items() if not k.startswith(prefixes)},
                       sources={k: v for k, v in self.sources.items() if not k.startswith(prefixes)},
                       alphas={k: v for k, v in self.alphas.items() if not k.startswith(prefixes)})


# ---- official files ----------------------------------------------------------------------------------------------


def find_camera_lora(preset: str, folders: Iterable[str | os.PathLike]) -> Path | None:
    """Any family's official camera-control LoRA of a preset in the LoRA folders, or None: what a run would pick up
    before the model (and so its family) is known."""
    names = [name for f in with_camera_loras() if preset in f.camera_loras for name in f.camera_loras[preset].names]
    return find_file(names, folders)


def camera_lora_file(model_family: Family, preset: str, folders: Iterable[str | os.PathLike]) -> Path:
    """The family's official camera-control LoRA of a preset in the LoRA folders."""
    if preset not in CAMERA_PRESETS[1:]:
        raise L2AError(f"Unknown camera preset {preset!r}: use one of {', '.join(CAMERA_PRESETS)}.")
    if preset not in model_family.camera_loras:
        have = " and ".join(f.label for f in with_camera_loras())
        raise L2AError(
            f"The official camera-control LoRAs exist for {have} only, but the loaded model is {model_family.label}: "
            f"load an {have} checkpoint, or use a camera LoRA made for {model_family.label}."
        )
    return require_file(model_family.camera_loras[preset], folders, f"Camera preset '{preset}'")


def with_distilled_lora(model: LTX2Model, folders: Iterable[str | os.PathLike], strength: float = 1.0,
                        without: str = "") -> LTX2Model:
    """The stage-2 model of the official multiscale recipe: a dev model with its family's distilled LoRA.

    A distilled model needs none and comes back as it is. A missing LoRA file is an error that names the file, the
    folders searched and the download; `without` says how to refine without it instead (appended to the error).
    """
    if model.variant == "distilled":
        return model
    purpose = f"Multiscale stage 2 on {model.family.label} dev (the official recipe)"
    try:
        path = require_file(model.family.distilled_lora, folders, purpose)
    except L2AError as error:
        raise L2AError(f"{error} {without}".strip()) from None
    return add_lora(model, path, strength)


# ---- reading a LoRA header ---------------------------------------------------------------------------------------


def _adapter_name(path: Path, raw_header: bytes) -> str:
    """Same file, same name; a changed file gets a new one. PEFT names cannot contain dots."""
    stat = path.stat()
    digest = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|".encode() + raw_header)
    stem = re.sub(r"[^A-Za-z0-9_]", "_", path.stem)[:48]
    return f"l2a_{stem}_{digest.hexdigest()[:10]}"


def _not_a_lora(path: Path, keys: list[str]) -> L2AError:
    if any(k.startswith("vae.") for k in keys) and any(k.startswith("model.diffusion_model.") for k in keys):
        return L2AError(
            f"'{path.name}' is a full LTX-2 checkpoint, not a LoRA: load it with LTX-2 Model Loader (from "
            "models/checkpoints) and put only LoRA files in models/loras."
        )
    sample = ", ".join(sorted(keys)[:3]) or "no tensors"
    return L2AError(
        f"'{path.name}' is not a LoRA: it has no lora_A/lora_B (or lora_down/lora_up) tensors ({len(keys)} tensors, "
        f"e.g. {sample}). Use an LTX-2 LoRA .safetensors, e.g. a camera-control LoRA from Lightricks."
    )


def _to_diffusers_names(keys: Iterable[str]) -> dict[str, str]:
    """Official / diffusers LoRA key -> diffusers key ('transformer.' or 'connectors.' prefix); unknown keys absent.

    diffusers' own LTX-2 conversion renames the transformer and `text_embedding_projection` keys; the text
    connectors, which diffusers would send to the transformer, go through the pack's checkpoint renames.
    """
    from diffusers.loaders.lora_conversion_utils import _convert_non_diffusers_ltx2_lora_to_diffusers

    out: dict[str, str] = {}
    official: dict[str, str] = {}
    for key in keys:
        if key.startswith(("transformer.", "connectors.")):
            out[key] = key
        elif key.startswith("diffusion_model.") and key.split(".")[1] in convert.CONNECTOR_ROOTS:
            target = convert.official_key_map(["model." + key])["model." + key]
            if target is not None:
                out[key] = f"{target[0]}.{target[1]}"
        elif key.startswith(("diffusion_model.", "text_embedding_projection.")):
            official[key] = key
    for prefix in ("diffusion_model", "text_embedding_projection"):
        for new, old in _convert_non_diffusers_ltx2_lora_to_diffusers(official, prefix).items():
            out[old] = new
    return out


def read_lora_header(path: str | os.PathLike) -> LoraFile:
    """Check that a file is a readable LTX-2 LoRA and map its keys, from the header only."""
    path = Path(path)
    if not path.is_file():
        raise L2AError(f"LoRA file '{path}' does not exist: put it in models/loras.")
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise L2AError(
            f"'{path.name}' is a {path.suffix or 'suffix-less'} file: only .safetensors LoRAs are loaded (pickle "
            "formats such as .ckpt/.pt/.bin can run code). Use the .safetensors release of this LoRA."
        )
    header, metadata, raw = read_safetensors_header_bytes(path)
    keys = list(header)
    if not any(marker in k for k in keys for marker in _LORA_MARKERS):
        raise _not_a_lora(path, keys)
    dora = [k for k in keys if k.endswith(".dora_scale")]
    if dora:
        logger.warning("'%s' is a DoRA: its %d dora_scale tensors are ignored, as diffusers does.", path.name, len(dora))
    alphas = {k[: -len(".alpha")]: k for k in keys if k.endswith(".alpha")}
    renamed = {
        k.replace(".lora_down.", ".lora_A.").replace(".lora_up.", ".lora_B."): k
        for k in keys
        if not k.endswith((".alpha", ".dora_scale"))
    }
    names = _to_diffusers_names(list(renamed) + list(alphas))
    modules = {k.rsplit(".lora_", 1)[0] for k in renamed}
    bad = [src for k, src in renamed.items() if k not in names or not k.endswith(_LORA_PARAMS)]
    bad += [src for k, src in alphas.items() if k not in names or k not in modules]
    if bad:
        raise L2AError(
            f"'{path.name}' is not an LTX-2 LoRA this pack can read: {len(bad)} of its {len(keys)} tensors are not "
            f"LTX-2 LoRA weights (e.g. {', '.join(sorted(bad)[:3])}). LTX-2 LoRAs have keys like "
            "'diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight'; LoRAs made for other models (Wan, "
            "Flux, LTX-Video 0.9, ...) do not work with LTX-2."
        )
    shapes = {names[k]: tuple(header[src]["shape"]) for k, src in renamed.items()}
    return LoraFile(
        path=path,
        adapter=_adapter_name(path, raw),
        shapes=shapes,
        sources={names[k]: src for k, src in renamed.items()},
        alphas={names[k]: src for k, src in alphas.items()},
        metadata=dict(metadata),
    )


# ---- IC-LoRAs ----------------------------------------------------------------------------------------------------

# Metadata ltx-trainer writes into reference-conditioned LoRAs (video_to_video always; the flexible strategy only for
# scales other than 1); the inference pipelines read the reference size from it.
SPATIAL_SCALE_KEYS = ("reference_downscale_factor", "reference_spatial_scale_factor")
TEMPORAL_SCALE_KEY = "reference_temporal_scale_factor"
_IC_LORA_NAME = re.compile(r"ic[-_ ]?lora", re.IGNORECASE)
_HALF_SIZE_NAME = re.compile(r"[-_]ref0?\.5(?![0-9])", re.IGNORECASE)  # Lightricks' "-ref0.5": half-size references


@dataclass(frozen=True)
class ReferenceScale:
    """The reference video an IC-LoRA was trained with: `spatial` = output size / reference size, `temporal` = output
    frame rate / reference frame rate; `source` says where the values come from."""

    spatial: int = 1
    temporal: int = 1
    source: str = "the default"


def official_ic_lora(name: str) -> tuple[Family, str] | None:
    """(generation, control kind) of an official IC-LoRA file name, e.g. ltx-2-19b-ic-lora-canny-control."""
    lowered = name.lower()
    return next(((f, kind) for f in FAMILIES.values() for kind, file in f.ic_loras.items()
                 if lowered in (n.lower() for n in file.names)), None)


def ic_lora_mark(info: LoraFile) -> str | None:
    """Why a LoRA is an IC-LoRA, or None for a plain LoRA.

    An IC-LoRA is a LoRA whose metadata gives a reference scale (ltx-trainer writes one), an official IC-LoRA file
    (by name), or a file whose name says "ic-lora" / "ic_lora" / "iclora" (Lightricks names every IC-LoRA so; files
    trained at reference scale 1 by the trainer's flexible strategy carry no metadata and are known by name only).
    """
    for key in (*SPATIAL_SCALE_KEYS, TEMPORAL_SCALE_KEY):
        if key in info.metadata:
            return f"its metadata has {key} = {info.metadata[key]}"
    official = official_ic_lora(info.path.name)
    if official is not None:
        return f"the official {official[1]} IC-LoRA of {official[0].label}"
    if _IC_LORA_NAME.search(info.path.stem):
        return "its name says IC-LoRA"
    return None


def _scale_value(info: LoraFile, key: str) -> int:
    text = info.metadata[key]
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 1 and value == int(value)):
        raise L2AError(
            f"'{info.path.name}' has {key} = {text!r} in its metadata, which is not a whole number of at least 1: "
            "the file is damaged or was written by another tool; fix the metadata or use the original file."
        )
    return int(value)


def reference_scale(info: LoraFile) -> ReferenceScale:
    """The reference scales of an IC-LoRA: from its metadata, as the official ICLoraPipeline reads them; without
    metadata, 2 when its name has Lightricks' "-ref0.5" (references at half size) and 1 otherwise (the official
    default)."""
    spatial_key = next((k for k in SPATIAL_SCALE_KEYS if k in info.metadata), None)
    temporal = _scale_value(info, TEMPORAL_SCALE_KEY) if TEMPORAL_SCALE_KEY in info.metadata else 1
    if spatial_key is not None:
        return ReferenceScale(_scale_value(info, spatial_key), temporal, f"{spatial_key} in the file's metadata")
    if _HALF_SIZE_NAME.search(info.path.stem):
        return ReferenceScale(2, temporal, "'ref0.5' in the file name (no metadata)")
    source = "the file's metadata" if TEMPORAL_SCALE_KEY in info.metadata else "no metadata: the official default"
    return ReferenceScale(1, temporal, source)


# ---- does it fit? ------------------------------------------------------------------------------------------------


def fit_problems(info: LoraFile, modules: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(targets the modules lack, targets whose shapes differ) of a LoRA against {"transformer": .., "connectors": ..}."""
    import torch

    missing: set[str] = set()
    mismatched: dict[str, str] = {}
    ranks: dict[str, int] = {}
    for key, shape in sorted(info.shapes.items()):
        component, rest = key.split(".", 1)
        module_path, kind = re.split(r"\.(?=lora_[AB]\.)", rest, maxsplit=1)
        target = f"{component}.{module_path}"
        try:
            layer = modules[component].get_submodule(module_path)
        except (AttributeError, KeyError):
            missing.add(target)
            continue
        base = layer.get_base_layer() if hasattr(layer, "get_base_layer") else layer
        if not isinstance(base, torch.nn.Linear):
            mismatched.setdefault(target, f"{target} (a {type(base).__name__}, not a linear layer)")
            continue
        out_features, in_features = base.weight.shape
        if kind == "lora_A.weight":
            ok = len(shape) == 2 and shape[1] == in_features
            rank = shape[0] if len(shape) == 2 else -1
        elif kind == "lora_B.weight":
            ok = len(shape) == 2 and shape[0] == out_features
            rank = shape[1] if len(shape) == 2 else -1
        else:  # lora_B.bias
            ok, rank = tuple(shape) == (out_features,), ranks.get(target, -1)
        if ranks.setdefault(target, rank) != rank:
            ok = False
        if not ok:
            mismatched.setdefault(target, f"{target} ({kind} {list(shape)} vs layer {in_features}->{out_features})")
    return sorted(missing), list(mismatched.values())


def meta_modules(config: dict) -> dict[str, Any]:
    """Transformer and connectors of a config with parameters on the meta device: shapes without memory."""
    return build_empty(config, ("transformer", "connectors"))


@functools.lru_cache(maxsize=None)
def reference_modules(key: str) -> dict[str, Any]:
    """Meta modules of a family record by its key: "2.0", "2.3", "tiny-2.0", "tiny-2.3"."""
    return meta_modules(next(f for f in ALL_FAMILIES if f.key == key).config())


def _wrong_family(info: LoraFile, fits: list[Family], model: LTX2Model) -> L2AError:
    label = model.family.label
    lora_label = " / ".join(f.label for f in fits)
    text = (
        f"'{info.path.name}' is a LoRA for {lora_label} but the loaded model is {label}: use the version of this "
        f"LoRA made for {label}, or load an {lora_label} checkpoint."
    )
    if any(not f.camera_loras for f in (*fits, model.family)):
        text += f" (The official camera-control LoRAs exist for {' and '.join(f.label for f in with_camera_loras())} only.)"
    return L2AError(text)


def _text_projection_layers(modules: Mapping[str, Any]) -> tuple[str, ...]:
    """LoRA name prefixes of the text projection when the modules lack it (LTX-2.5: the text encoder holds it)."""
    connectors = modules["connectors"]
    if any(hasattr(connectors, layer) for layer in (*CONNECTOR_LAYERS.values(), "text_proj_in")):
        return ()
    return tuple(f"connectors.{layer}." for layer in CONNECTOR_LAYERS.values())


def applicable(info: LoraFile, modules: Mapping[str, Any]) -> LoraFile:
    """The part of a LoRA that applies to the modules: all of it, except text-projection layers where the text
    encoder holds the projection."""
    prefixes = _text_projection_layers(modules)
    return info.without(prefixes) if prefixes else info


def check_lora(path: str | os.PathLike, model: LTX2Model) -> LoraFile:
    """Read a LoRA's header and make sure its layers fit the loaded model (`fit_lora`)."""
    return fit_lora(read_lora_header(path), model)


def fit_lora(info: LoraFile, model: LTX2Model) -> LoraFile:
    """A read LoRA whose layers fit the loaded model (names and shapes), or an L2AError that says what it is for. A
    LoRA that fits is accepted whatever family its file name states."""
    modules = {"transformer": model.transformer, "connectors": model.connectors}
    fitting = applicable(info, modules)
    if not fitting.shapes:
        raise L2AError(f"'{info.path.name}' changes only the text projection, which {model.family.label} keeps in its "
                       "text encoder: it has nothing to apply to the model.")
    missing, mismatched = fit_problems(fitting, modules)
    if not missing and not mismatched:
        return info
    declared = declared_by_name(info.path.name)
    fits = [f for f in ALL_FAMILIES if fit_problems(applicable(info, reference_modules(f.key)),
                                                    reference_modules(f.key)) == ([], [])]
    if declared is not None and any(f.name == declared.name for f in fits):
        fits = [f for f in fits if f.name == declared.name]
    if fits:
        raise _wrong_family(info, fits, model)
    problems = []
    if missing:
        problems.append(f"{len(missing)} of the layers it changes do not exist in the model (e.g. {', '.join(missing[:2])})")
    if mismatched:
        problems.append(f"{len(mismatched)} have other shapes (e.g. {'; '.join(mismatched[:2])})")
    raise L2AError(
        f"'{info.path.name}' does not fit the loaded {model.family.label}: {' and '.join(problems)}. It was made for "
        f"another model (it fits none of {', '.join(f.label for f in FAMILIES.values())}) or the file is damaged."
    )


def fit_notes(model: LTX2Model, infos: Iterable[LoraFile]) -> list[str]:
    """What the report says about LoRAs applied to a family other than their name states, or partly applied."""
    notes = []
    for info in infos:
        declared = declared_by_name(info.path.name)
        if declared is not None and declared.name != model.family.name:
            notes.append(f"{info.path.name} is named for {declared.label}; its layers fit {model.family.label}")
        left = len(info.layers) - len(applicable(info, _components(model)).layers)
        if left:
            notes.append(f"{info.path.name}: {left} text-projection layers left out ({model.family.label}'s text "
                         "encoder holds the projection)")
    return notes


def _has_fp8_storage(module) -> bool:
    return any(p.is_floating_point() and p.element_size() == 1 for p in module.parameters())


def unfused_reason(model: LTX2Model) -> str | None:
    """Why LoRAs on this model run unfused, or None when they are fused (and restored by re-reading the file)."""
    if _has_fp8_storage(model.transformer):
        return "the model stores its weights in fp8, which fusing would round"
    problem = reread_problem(model)
    if problem is not None:
        return f"restoring fused weights would need a copy of them in memory: {problem}"
    return None


def add_lora(model: LTX2Model, path: str | os.PathLike, strength: float = 1.0, fuse: bool = False) -> LTX2Model:
    """A shallow copy of `model` with one more LoRA in its chain; `model` itself is left as it is. IC-LoRAs are
    refused: without their reference video they do not do what they were trained for."""
    check_number("LoRA strength", strength, hint="1 = as trained, 0 = off")
    info = check_lora(path, model)
    mark = ic_lora_mark(info)
    if mark is not None:
        raise L2AError(
            f"'{info.path.name}' is an IC-LoRA ({mark}): it steers the video with a reference video, so load it "
            "with LTX-2 IC-LoRA (L2A_ICLoRA) and connect the control video there, not with LTX-2 LoRA."
        )
    return chained(model, info, strength, fuse)


def chained(model: LTX2Model, info: LoraFile, strength: float = 1.0, fuse: bool = False) -> LTX2Model:
    """A shallow copy of `model` with a checked LoRA file appended to its chain."""
    reason = unfused_reason(model) if fuse else None
    if reason is not None:
        raise L2AError(
            f"fuse = True cannot be used for '{info.path.name}': {reason}. Turn fuse off (the LoRA then runs "
            "unfused) or load the model without fp8 weights."
        )
    spec = LoraSpec(path=str(info.path), adapter=info.adapter, strength=float(strength), fuse=bool(fuse))
    return replace(model, loras=[*model.loras, spec])


# ---- activation on the shared modules ----------------------------------------------------------------------------


@dataclass
class _Slot:
    """LoRA state of one set of shared modules, kept on the transformer object."""

    active: tuple = ()  # ((adapter, weight), ...)
    fused: bool = False
    touched: dict = field(default_factory=dict)  # component -> parameter names changed by fusing
    depth: int = 0


_lock = threading.RLock()


def _slot(model: LTX2Model) -> _Slot:
    slot = model.transformer.__dict__.get("_l2a_lora_slot")
    if slot is None:
        slot = _Slot()
        model.transformer.__dict__["_l2a_lora_slot"] = slot
    return slot


def _components(model: LTX2Model) -> dict[str, Any]:
    return {"transformer": model.transformer, "connectors": model.connectors}


def _plan(loras: Iterable[LoraSpec]) -> tuple[tuple[tuple[LoraSpec, float], ...], bool]:
    """The same file twice adds its strengths (as in ComfyUI); strength 0 is left out; whether any asks to fuse."""
    merged: dict[str, list] = {}
    for spec in loras:
        entry = merged.setdefault(spec.adapter, [spec, 0.0, False])
        entry[1] += spec.strength
        entry[2] = entry[2] or spec.fuse
    target = tuple((spec, weight) for spec, weight, _ in merged.values() if weight != 0.0)
    return target, any(fuse for spec, weight, fuse in merged.values() if weight != 0.0)


def _checked_header(spec: LoraSpec, model: LTX2Model) -> LoraFile:
    """The LoRA's header, unchanged since the node checked it, restricted to the layers that apply to the model."""
    info = read_lora_header(spec.path)
    if info.adapter != spec.adapter:
        raise L2AError(
            f"'{spec.name}' changed on disk after the LoRA node checked it: queue the workflow again so the new file "
            "is checked."
        )
    return applicable(info, _components(model))


def _bias_without_base(model: LTX2Model, infos: Iterable[LoraFile]) -> str | None:
    """A LoRA that adds a bias to a layer without one cannot be fused into it."""
    modules = _components(model)
    for info in infos:
        for key in info.shapes:
            if key.endswith(".lora_B.bias"):
                component, module_path = key.removesuffix(".lora_B.bias").split(".", 1)
                if modules[component].get_submodule(module_path).bias is None:
                    return f"'{info.path.name}' adds a bias to {component}.{module_path}, which has none"
    return None


def _tensor(handle, info: LoraFile, key: str, device):
    """One LoRA tensor in fp32 on `device`, lora_B scaled by alpha / rank when the file has an alpha."""
    import torch

    tensor = handle.get_tensor(info.sources[key]).to(device=device, dtype=torch.float32)
    module = key.rsplit(".lora_", 1)[0]
    if key.endswith(".lora_B.weight") and module in info.alphas:
        rank = info.shapes[f"{module}.lora_A.weight"][0]
        tensor = tensor * (handle.get_tensor(info.alphas[module]).float().item() / rank)
    return tensor


def _fuse(model: LTX2Model, slot: _Slot, uses: list[tuple[LoraFile, float]]) -> None:
    """Merge the LoRAs into the weights, one layer at a time, read straight from the memory-mapped files.

    As ltx-core's builder: the deltas of every LoRA on a layer are summed first, then added to the weight once; here
    in fp32 on the model's device, whatever device the weight waits on.
    """
    import torch
    from safetensors import safe_open

    modules = _components(model)
    device = torch.device(model.device)
    layers: dict[str, list[tuple[LoraFile, float]]] = {}
    for info, weight in uses:
        for layer in info.layers:
            layers.setdefault(layer, []).append((info, weight))
    with ExitStack() as stack, torch.no_grad():
        handles = {info.path: stack.enter_context(safe_open(str(info.path), framework="pt", device="cpu"))
                   for info, _ in uses}
        for layer_name, layer_uses in layers.items():
            component, module_path = layer_name.split(".", 1)
            layer = modules[component].get_submodule(module_path)
            delta = bias = None
            for info, weight in layer_uses:
                handle = handles[info.path]
                down = _tensor(handle, info, f"{layer_name}.lora_A.weight", device)
                up = _tensor(handle, info, f"{layer_name}.lora_B.weight", device) * weight
                if delta is None:
                    delta = up @ down
                else:
                    delta.addmm_(up, down)
                if f"{layer_name}.lora_B.bias" in info.sources:
                    extra = _tensor(handle, info, f"{layer_name}.lora_B.bias", device) * weight
                    bias = extra if bias is None else bias + extra
            touched = slot.touched.setdefault(component, [])
            touched.append(f"{module_path}.weight")  # before the change: a failure half-way still restores it
            slot.fused = True
            layer.weight.copy_(delta.add_(layer.weight.to(device)))
            if bias is not None:
                touched.append(f"{module_path}.bias")
                layer.bias.copy_(bias.add_(layer.bias.to(device)))


def _restore(model: LTX2Model, slot: _Slot) -> None:
    """Read the changed weights again from the checkpoint, one tensor at a time, into the modules."""
    import torch

    params = {name: dict(module.named_parameters()) for name, module in _components(model).items()}
    try:
        with torch.no_grad():
            for component, key, tensor in reread_weights(model, slot.touched):
                params[component][key].copy_(tensor)
    except L2AError as error:
        raise L2AError(f"{error} The LoRAs stay merged into this model's weights: load the model again.") from None
    finally:
        slot.touched = {}
        slot.fused = False


def _load_adapters(model: LTX2Model, uses: list[tuple[LoraFile, float]]) -> None:
    """PEFT adapters for an unfused run, read one tensor at a time, in the model's compute dtype."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from safetensors import safe_open

    names: dict[str, list[tuple[str, float]]] = {}
    for info, weight in uses:
        with safe_open(str(info.path), framework="pt", device="cpu") as handle:
            state = {key: _tensor(handle, info, key, model.device).to(model.dtype) for key in info.sources}
        for name, module in _components(model).items():
            part = {k: v for k, v in state.items() if k.startswith(name + ".")}
            if not part:
                continue
            with warnings.catch_warnings():  # several adapters on one model is the point here
                warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                module.load_lora_adapter(part, prefix=name, adapter_name=info.adapter, low_cpu_mem_usage=True)
            for layer in module.modules():  # PEFT gives new layers the base weights' dtype, which may be fp8 storage
                if isinstance(layer, BaseTunerLayer) and info.adapter in layer.lora_A:
                    layer.lora_A[info.adapter].to(device=model.device, dtype=model.dtype)
                    layer.lora_B[info.adapter].to(device=model.device, dtype=model.dtype)
            names.setdefault(name, []).append((info.adapter, weight))
    for name, listed in names.items():
        module = _components(model)[name]
        module.set_adapters([a for a, _ in listed], [w for _, w in listed])


def _release(model: LTX2Model) -> None:
    """Remove every PEFT adapter and wrapper: the modules are the plain base modules again."""
    for module in _components(model).values():
        if getattr(module, "peft_config", None):
            module.unload_lora()


def adapter_bytes(model: LTX2Model) -> int:
    """Bytes of LoRA adapter tensors held by the shared modules (0 outside a run)."""
    return sum(p.numel() * p.element_size() for module in _components(model).values()
               for name, p in module.named_parameters() if ".lora_" in name)


def _unfused_reason(model: LTX2Model, infos: Iterable[LoraFile]) -> str | None:
    return unfused_reason(model) or _bias_without_base(model, infos)


def _activate(model: LTX2Model, slot: _Slot, target: tuple[tuple[LoraSpec, float], ...], require_fused: bool) -> None:
    infos = [(_checked_header(spec, model), weight) for spec, weight in target]
    reason = _unfused_reason(model, [info for info, _ in infos])
    if reason is not None and require_fused:
        names = ", ".join(spec.name for spec, _ in target if spec.fuse)
        raise L2AError(f"fuse = True cannot be used for {names}: {reason}. Turn fuse off to run the LoRAs unfused.")
    slot.active = tuple((spec.adapter, weight) for spec, weight in target)
    if reason is None:
        _fuse(model, slot, infos)
    else:
        _load_adapters(model, infos)


def _deactivate(model: LTX2Model, slot: _Slot) -> None:
    try:
        if slot.fused or slot.touched:
            _restore(model, slot)
    finally:
        _release(model)
        slot.active = ()


def lora_note(model: LTX2Model) -> str:
    """What a run of this model does with its LoRAs, for the report ("" without LoRAs)."""
    target, _ = _plan(model.loras)
    if not target:
        return ""
    names = ", ".join(f"{spec.name} {weight:g}" for spec, weight in target)
    infos = [_checked_header(spec, model) for spec, _ in target]
    reason = _unfused_reason(model, infos)
    notes = "".join(f"; {note}" for note in fit_notes(model, [read_lora_header(spec.path) for spec, _ in target]))
    return f"LoRA {names} (" + ("fused" if reason is None else f"unfused: {reason}") + notes + ")"


@contextmanager
def active_loras(model: LTX2Model):
    """Run the model's LoRA chain for the duration of the block; on exit the shared modules are the base again.

    Without LoRAs this does nothing at all. Fused weights are read back from the checkpoint on exit, unfused
    adapters are removed, also when the block raises (an error, a Cancel).
    """
    target, require_fused = _plan(model.loras)
    if not target:
        yield model
        return
    with _lock:
        slot = _slot(model)
        wanted = tuple((spec.adapter, weight) for spec, weight in target)
        if slot.depth and wanted != slot.active:
            raise RuntimeError("active_loras: a different LoRA chain is already active on these modules.")
        outer = slot.depth == 0
        slot.depth += 1
        try:
            if outer:
                _activate(model, slot, target, require_fused)
            yield model
        finally:
            slot.depth -= 1
            if outer:
                _deactivate(model, slot)


def random_lora(modules: Mapping[str, Any], pattern: str, rank: int, seed: int, scale: float = 0.1) -> dict:
    """A random LoRA in the official trainer format for the linear layers whose diffusers name matches `pattern`.

    Names are "transformer.<module>" / "connectors.<module>"; lora_B is non-zero so the LoRA changes the output.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for component, module in modules.items():
        for name, layer in module.named_modules():
            if not isinstance(layer, torch.nn.Linear) or not re.search(pattern, f"{component}.{name}"):
                continue
            official = convert.diffusers_key_map(component, [f"{name}.weight"])[f"{name}.weight"]
            official = official.removeprefix("model.").removesuffix(".weight")
            out_features, in_features = layer.weight.shape
            a = torch.randn((rank, in_features), generator=generator) / in_features**0.5
            b = torch.randn((out_features, rank), generator=generator) * scale
            state[f"{official}.lora_A.weight"] = a.to(torch.bfloat16)
            state[f"{official}.lora_B.weight"] = b.to(torch.bfloat16)
    return state


def save_lora(path: str | os.PathLike, state: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a LoRA state dict as safetensors, atomically."""
    return write_safetensors(path, state, metadata)

