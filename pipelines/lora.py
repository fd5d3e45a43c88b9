"""LoRAs on a loaded LTX-2 model: file checks, official file names, and per-run activation on shared modules.

ComfyUI hands one model object to every branch of a graph and caches node outputs, so applying a LoRA never
changes the model it receives: `add_lora` returns a shallow copy whose `loras` list has one more `LoraSpec`.
The weights are injected into the shared transformer/connectors as unfused PEFT adapters (diffusers'
`load_lora_adapter`, once per file) and switched on only inside `active_loras(model)`, around sampling. Outside
it every adapter is disabled, so the shared modules compute exactly the base model. `fuse` merges the adapters
into the weights for the run (no extra matmuls per layer) and restores the original weights from a copy on exit.

Files are the official trainer format (PEFT `lora_A`/`lora_B` keys under `diffusion_model.`, connector LoRAs
under `text_embedding_projection.`); diffusers-format keys (`transformer.`, `connectors.`) and kohya-style
`lora_down`/`lora_up`/`alpha` names are read too. Whether a LoRA fits is decided from its safetensors header alone,
by target module names and shapes against the loaded modules, before any tensor is read.
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
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import convert
from .checks import check_number
from .components import LTX2Model
from .errors import L2AError
from .families import LTX2_19B, LTX23_22B

logger = logging.getLogger(__name__)

HF = "https://huggingface.co/"
DISTILLED_LORA = "ltx-2-19b-distilled-lora-384.safetensors"
DISTILLED_LORA_REPO = "Lightricks/LTX-2"
# Official camera-control LoRAs (LTX-2 19B only), file names as listed in the Lightricks/LTX-2 README.
CAMERA_LORAS = {
    preset: (f"Lightricks/LTX-2-19b-LoRA-Camera-Control-{title}", f"ltx-2-19b-lora-camera-control-{slug}.safetensors")
    for preset, title, slug in (
        ("dolly_in", "Dolly-In", "dolly-in"),
        ("dolly_out", "Dolly-Out", "dolly-out"),
        ("dolly_left", "Dolly-Left", "dolly-left"),
        ("dolly_right", "Dolly-Right", "dolly-right"),
        ("jib_up", "Jib-Up", "jib-up"),
        ("jib_down", "Jib-Down", "jib-down"),
        ("static", "Static", "static"),
    )
}
CAMERA_PRESETS = ("none", *CAMERA_LORAS)
# Least recently used adapters beyond this many are deleted from the shared modules, so trying many LoRAs in one
# session does not fill the GPU; the adapters of the current run are never deleted.
MAX_LOADED_ADAPTERS = 4
_LORA_MARKERS = (".lora_A.", ".lora_B.", ".lora_down.", ".lora_up.")
_LORA_PARAMS = (".lora_A.weight", ".lora_B.weight", ".lora_B.bias")
_DECLARED = ((re.compile(r"ltx-?2\.3"), "2.3"), (re.compile(r"ltx-?2-19b"), "2.0"))


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA in a model's chain; `adapter` names its weights in the shared modules (from the file's fingerprint)."""

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


# ---- official files ----------------------------------------------------------------------------------------------


def find_lora_file(name: str, folders: Iterable[str | os.PathLike]) -> Path | None:
    """A file by name in the LoRA folders: case-insensitive, any sub-folder (symlinks followed), first by depth."""
    wanted = Path(name).name.lower()
    for folder in folders:
        found = []
        for root, _dirs, files in os.walk(folder, followlinks=True):
            found += [Path(root) / f for f in files if f.lower() == wanted]
        if found:
            return min(found, key=lambda p: (len(p.parts), str(p)))
    return None


def require_lora_file(name: str, repo: str, folders: Iterable[str | os.PathLike], purpose: str) -> Path:
    """find_lora_file, or an L2AError that says which file to download from where, and where to put it."""
    folders = [Path(f) for f in folders]
    path = find_lora_file(name, folders)
    if path is None:
        where = " or ".join(str(f) for f in folders) or "models/loras"
        raise L2AError(
            f"{purpose} needs '{name}', which is not in {where}. Download it from {HF}{repo} and put it in "
            f"{folders[0] if folders else 'models/loras'} (a sub-folder is fine)."
        )
    return path


def camera_lora_file(preset: str, folders: Iterable[str | os.PathLike]) -> Path:
    """The official camera-control LoRA of a preset in the LoRA folders."""
    if preset not in CAMERA_LORAS:
        raise L2AError(f"Unknown camera preset {preset!r}: use one of {', '.join(CAMERA_PRESETS)}.")
    repo, name = CAMERA_LORAS[preset]
    return require_lora_file(name, repo, folders, f"Camera preset '{preset}'")


# ---- reading a LoRA header ---------------------------------------------------------------------------------------


def _adapter_name(path: Path, raw_header: bytes) -> str:
    """Same file, same name (so it loads once); a changed file gets a new one. PEFT names cannot contain dots."""
    stat = path.stat()
    digest = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|".encode() + raw_header)
    stem = re.sub(r"[^A-Za-z0-9_]", "_", path.stem)[:48]
    return f"l2a_{stem}_{digest.hexdigest()[:10]}"


def _read_header(path: Path) -> tuple[dict[str, dict], bytes]:
    from .loading import read_safetensors_header

    header, _ = read_safetensors_header(path)
    with open(path, "rb") as f:
        raw = f.read(int.from_bytes(f.read(8), "little"))
    return header, raw


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
    if path.suffix.lower() not in (".safetensors", ".sft"):
        raise L2AError(
            f"'{path.name}' is a {path.suffix or 'suffix-less'} file: only .safetensors LoRAs are loaded (pickle "
            "formats such as .ckpt/.pt/.bin can run code). Use the .safetensors release of this LoRA."
        )
    header, raw = _read_header(path)
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
    )


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
    from .loading import component_classes, parameters_on_meta

    classes = component_classes(config.get("vocoder_class", "LTX2Vocoder"))
    with parameters_on_meta():
        return {name: classes[name].from_config(config[name]) for name in ("transformer", "connectors")}


@functools.lru_cache(maxsize=None)
def reference_modules(kind: str) -> dict[str, Any]:
    """Meta modules of a known model: "2.0" (LTX-2 19B), "2.3" (LTX-2.3 22B) or "tiny" (the test model)."""
    from . import tiny
    from .loading import family_config

    return meta_modules(tiny.tiny_config() if kind == "tiny" else family_config(kind))


def _reference_label(kind: str) -> str:
    from . import tiny

    return tiny.tiny_config()["family"]["label"] if kind == "tiny" else {"2.0": LTX2_19B, "2.3": LTX23_22B}[kind].label


def _declared_family(path: Path) -> str | None:
    """The family an official file name states ("ltx-2-19b-...", "ltx-2.3-22b-..."), if any."""
    name = path.name.lower()
    return next((family for pattern, family in _DECLARED if pattern.search(name)), None)


def _wrong_family(info: LoraFile, kinds: list[str], model: LTX2Model) -> L2AError:
    label = model.family.label
    lora_label = " / ".join(_reference_label(k) for k in kinds)
    text = (
        f"'{info.path.name}' is a LoRA for {lora_label} but the loaded model is {label}: use the version of this "
        f"LoRA made for {label}, or load an {lora_label} checkpoint."
    )
    if "2.3" in kinds or model.family.name == "2.3":
        text += " (The official camera-control LoRAs exist for LTX-2 19B only.)"
    return L2AError(text)


def check_lora(path: str | os.PathLike, model: LTX2Model) -> LoraFile:
    """Read a LoRA's header and make sure it fits the loaded model, or raise an L2AError that says for what it is."""
    info = read_lora_header(path)
    declared = _declared_family(info.path)
    missing, mismatched = fit_problems(info, {"transformer": model.transformer, "connectors": model.connectors})
    if not missing and not mismatched:
        if declared is not None and declared != model.family.name:
            raise _wrong_family(info, [declared], model)
        return info
    fits = [k for k in ("2.0", "2.3", "tiny") if fit_problems(info, reference_modules(k)) == ([], [])]
    if declared in fits:
        fits = [declared]
    if fits:
        raise _wrong_family(info, fits, model)
    problems = []
    if missing:
        problems.append(f"{len(missing)} of the layers it changes do not exist in the model (e.g. {', '.join(missing[:2])})")
    if mismatched:
        problems.append(f"{len(mismatched)} have other shapes (e.g. {'; '.join(mismatched[:2])})")
    raise L2AError(
        f"'{info.path.name}' does not fit the loaded {model.family.label}: {' and '.join(problems)}. It was made for "
        f"another model (it fits none of {LTX2_19B.label}, {LTX23_22B.label}) or the file is damaged."
    )


def _has_fp8_storage(module) -> bool:
    return any(p.is_floating_point() and p.element_size() == 1 for p in module.parameters())


def add_lora(model: LTX2Model, path: str | os.PathLike, strength: float = 1.0, fuse: bool = False) -> LTX2Model:
    """A shallow copy of `model` with one more LoRA in its chain; `model` itself is left as it is."""
    check_number("LoRA strength", strength, hint="1 = as trained, 0 = off")
    info = check_lora(path, model)
    if fuse and _has_fp8_storage(model.transformer):
        raise L2AError(
            f"fuse = True cannot be used for '{info.path.name}' because the model stores its weights in fp8: "
            "turn fuse off (the LoRA then runs unfused) or load the model without fp8 weights."
        )
    spec = LoraSpec(path=str(info.path), adapter=info.adapter, strength=float(strength), fuse=bool(fuse))
    return replace(model, loras=[*model.loras, spec])


# ---- activation on the shared modules ----------------------------------------------------------------------------


@dataclass
class _Slot:
    """LoRA state of one set of shared modules, kept on the transformer object."""

    loaded: list[str] = field(default_factory=list)  # least recently used first
    active: tuple = ()  # ((adapter, weight), ...)
    fused: bool = False
    backups: dict = field(default_factory=dict)  # tuner layer -> (weight, bias) before fusing
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
    """The same file twice adds its strengths (as in ComfyUI); strength 0 is left out; fuse if any LoRA asks.

    PEFT cannot run fused and unfused adapters in one layer, so fusing is all-or-nothing for a run.
    """
    merged: dict[str, list] = {}
    for spec in loras:
        entry = merged.setdefault(spec.adapter, [spec, 0.0, False])
        entry[1] += spec.strength
        entry[2] = entry[2] or spec.fuse
    target = tuple((spec, weight) for spec, weight, _ in merged.values() if weight != 0.0)
    return target, any(fuse for spec, weight, fuse in merged.values() if weight != 0.0)


def _read_state(spec: LoraSpec, model: LTX2Model) -> dict[str, Any]:
    from safetensors import safe_open

    info = read_lora_header(spec.path)
    if info.adapter != spec.adapter:
        raise L2AError(
            f"'{spec.name}' changed on disk after the LoRA node checked it: queue the workflow again so the new file "
            "is checked."
        )
    state = {}
    with safe_open(str(info.path), framework="pt", device="cpu") as f:
        scales = {
            f"{module}.lora_B.weight": f.get_tensor(source).float().item() / info.shapes[f"{module}.lora_A.weight"][0]
            for module, source in info.alphas.items()
        }
        for key, source in info.sources.items():  # one tensor at a time: a big LoRA is never held twice
            tensor = f.get_tensor(source)
            if key in scales:
                tensor = tensor.float() * scales[key]
            state[key] = tensor.to(device=model.device, dtype=model.dtype)
    return state


def _ensure_loaded(model: LTX2Model, slot: _Slot, spec: LoraSpec, keep: set[str]) -> None:
    if spec.adapter in slot.loaded:
        slot.loaded.remove(spec.adapter)
        slot.loaded.append(spec.adapter)
        return
    from peft.tuners.tuners_utils import BaseTunerLayer

    state = _read_state(spec, model)
    for name, module in _components(model).items():
        part = {k: v for k, v in state.items() if k.startswith(name + ".")}
        if not part:
            continue
        with warnings.catch_warnings():  # several adapters on one model is the point here
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            module.load_lora_adapter(part, prefix=name, adapter_name=spec.adapter, low_cpu_mem_usage=True)
        for layer in module.modules():  # PEFT gives new layers the base weights' dtype, which may be fp8 storage
            if isinstance(layer, BaseTunerLayer) and spec.adapter in layer.lora_A:
                layer.lora_A[spec.adapter].to(device=model.device, dtype=model.dtype)
                layer.lora_B[spec.adapter].to(device=model.device, dtype=model.dtype)
    slot.loaded.append(spec.adapter)
    for old in [a for a in slot.loaded if a not in keep][: max(0, len(slot.loaded) - MAX_LOADED_ADAPTERS)]:
        for module in _components(model).values():
            if old in getattr(module, "peft_config", {}):
                module.delete_adapters(old)
        slot.loaded.remove(old)


def _tuner_layers(module, adapters: Iterable[str]):
    from peft.tuners.tuners_utils import BaseTunerLayer

    adapters = set(adapters)
    return [m for m in module.modules() if isinstance(m, BaseTunerLayer) and adapters & set(m.lora_A)]


def _fuse(model: LTX2Model, slot: _Slot, names: dict[str, list[str]]) -> None:
    """Merge the active adapters into the weights, keeping exact copies (on the CPU) to restore them afterwards."""
    for component, module in _components(model).items():
        if not names.get(component):
            continue
        for layer in _tuner_layers(module, names[component]):
            base = layer.get_base_layer()
            bias = None if base.bias is None else base.bias.detach().to("cpu", copy=True)
            slot.backups[layer] = (base.weight.detach().to("cpu", copy=True), bias)
        module.fuse_lora(adapter_names=names[component])
    slot.fused = True


def _unfuse(slot: _Slot) -> None:
    """Unmerge (so PEFT's state is consistent), then put back the exact original weights."""
    import torch

    with torch.no_grad():
        for layer, (weight, bias) in slot.backups.items():
            layer.unmerge()
            base = layer.get_base_layer()
            base.weight.copy_(weight)
            if bias is not None:
                base.bias.copy_(bias)
    slot.backups.clear()
    slot.fused = False


def _activate(model: LTX2Model, slot: _Slot, target: tuple[tuple[LoraSpec, float], ...], fuse: bool) -> None:
    """Bring the shared modules to exactly `target` (nothing active when empty)."""
    if slot.fused:
        _unfuse(slot)
    slot.active = ()
    keep = {spec.adapter for spec, _ in target}
    for spec, _ in target:
        _ensure_loaded(model, slot, spec, keep)
    names: dict[str, list[str]] = {}
    for component, module in _components(model).items():
        config = getattr(module, "peft_config", None)
        if not config:
            continue
        listed = [(spec.adapter, weight) for spec, weight in target if spec.adapter in config]
        if listed:
            module.enable_lora()
            module.set_adapters([a for a, _ in listed], [w for _, w in listed])
            names[component] = [a for a, _ in listed]
        else:
            module.disable_lora()
    if fuse and names:
        _fuse(model, slot, names)
    slot.active = tuple((spec.adapter, weight) for spec, weight in target)


@contextmanager
def active_loras(model: LTX2Model):
    """Run the model's LoRA chain for the duration of the block; on exit the shared modules are the base again.

    Without LoRAs this does nothing at all. Adapters load once per file and stay cached (disabled) between runs;
    disabled adapters leave the base output bit-exact, and fused runs restore the saved original weights.
    """
    if not model.loras:
        yield model
        return
    target, fuse = _plan(model.loras)
    with _lock:
        slot = _slot(model)
        wanted = tuple((spec.adapter, weight) for spec, weight in target)
        if slot.depth and (wanted, fuse) != (slot.active, slot.fused):
            raise RuntimeError("active_loras: a different LoRA chain is already active on these modules.")
        outer = slot.depth == 0
        slot.depth += 1
        try:
            if outer:
                _activate(model, slot, target, fuse)
            yield model
        finally:
            slot.depth -= 1
            if outer:
                _activate(model, slot, (), False)


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


def save_lora(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write a LoRA state dict as safetensors, atomically."""
    from .loading import write_safetensors

    return write_safetensors(path, state)

