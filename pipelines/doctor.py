"""Model doctor: which model files a workflow needs, and whether each is there, in the right folder and right.

A workflow names its files twice: in each node's `properties.models` (what ComfyUI's missing-models dialog
offers to download) and in the loader widgets (what the node actually loads). Both are collected. Each file is
looked up the way the loaders look it up (its folder key, case-insensitive, any sub-folder); a file that is not
there is searched for in every other model folder, because the common mistake is a file in a neighbouring folder
(the latent upsampler in `upscale_models`, a LoRA in `checkpoints`), which the loader never sees. Files that are
found are checked from their safetensors header alone, with the loaders' own checks, so the doctor reads no
tensor and says what the loader would say.

Folders come in as a mapping `{folder key: [paths]}` (ComfyUI's `folder_paths` in the node, `folders_under` for a
plain models folder), so this module never imports ComfyUI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .choices import STAGE_2_OPTIONS
from .errors import L2AError
from .families import FAMILIES, Family, declared_by_name, with_camera_loras
from .loading import PART_LABELS, inspect_checkpoint, inspect_part, inspect_text_encoder, part_of_file
from .lora import fit_lora, read_lora_header
from .upsampler import inspect_upsampler

STATUSES = ("present", "missing", "wrong_folder", "not_ltx2", "wrong_family")
# Folder keys searched for misplaced files, and where ComfyUI's default layout keeps each (legacy names included).
FOLDER_LAYOUT = {
    "checkpoints": ("checkpoints",),
    "diffusers": ("diffusers",),
    "diffusion_models": ("unet", "diffusion_models"),
    "text_encoders": ("text_encoders", "clip"),
    "latent_upscale_models": ("latent_upscale_models",),
    "upscale_models": ("upscale_models",),
    "loras": ("loras",),
    "vae": ("vae",),
    "model_patches": ("model_patches",),
}
FOLDER_KEYS = tuple(FOLDER_LAYOUT)
CHECKPOINT_KEYS = ("checkpoints", "diffusers", "diffusion_models")
DIFFUSERS_PREFIX = "diffusers/"
MUTED_MODES = (2, 4)  # "never" and "bypass": ComfyUI does not run these nodes
# L2A_Sampler's appended stage_2 widget: its position in a UI-format workflow (after the seed's control widget).
SAMPLER_STAGE_2_INDEX = 17
STAGE_2_WITHOUT = STAGE_2_OPTIONS[1]
# Every official file of every family record, by each of its names.
KNOWN_URLS = {name: file.url for fam in FAMILIES.values() for file in fam.files() for name in file.names}
KNOWN_FOLDERS = {name.lower(): file.folder for fam in FAMILIES.values() for file in fam.files() for name in file.names}
# Text encoders any one of which is the one a family needs (the transformers folder, ComfyUI's single files).
TEXT_ENCODER_CHOICES = {fam.text_encoder.kind: tuple(f.name for f in fam.text_encoder.files)
                        for fam in FAMILIES.values()}
# Loader widgets that name a model file: node type -> (input name, widget position, folder key).
# A checkpoint widget's file lives in models/checkpoints unless the family keeps it elsewhere (LTX-2.5's transformer
# in diffusion_models); "auto" VAE widgets name no file (the checkpoint's family says which: see _part_requirements).
LOADER_WIDGETS = {
    "L2A_ModelLoader": (("ckpt_name", 0, "checkpoints"), ("video_vae", 4, "vae"), ("audio_vae", 5, "vae")),
    "L2A_TextEncoderLoader": (("text_encoder_name", 0, "text_encoders"),),
    "L2A_UpsamplerLoader": (("upsampler_name", 0, "latent_upscale_models"),),
    "L2A_LoRA": (("lora_name", 0, "loras"),),
    "L2A_ICLoRA": (("lora_name", 0, "loras"),),
    "L2A_LocalBackend": (
        ("ckpt_name", 0, "checkpoints"),
        ("text_encoder_name", 1, "text_encoders"),
        ("upsampler_name", 4, "latent_upscale_models"),
    ),
}
# Widget values that make a node need one of a family's optional files (LTX-2.5's): node type -> (input name, widget
# position, the value, the extra).
EXTRA_WIDGETS = {
    "L2A_Sampler": ("frames", 2, 0, "duration_head"),
    "L2A_Generate": ("duration", 16, "auto", "duration_head"),
    "L2A_DecodeVideo": ("decoder", 6, "diffusion", "diffusion_decoder"),
}
EXTRA_FILES = {name: file for fam in FAMILIES.values() for name, file in fam.extras.items()}
DIFFUSION_DECODER_NAMES = {n.lower() for fam in FAMILIES.values() if "diffusion_decoder" in fam.extras
                           for n in fam.extras["diffusion_decoder"].names}


@dataclass(frozen=True)
class Requirement:
    """One model file or folder a workflow needs."""

    name: str
    directory: str  # ComfyUI folder key, e.g. "loras"
    url: str  # where to download it ("" when unknown)
    node_type: str
    node_id: str


@dataclass(frozen=True)
class Finding:
    """What the doctor found for one requirement, and what to do about it ("" when nothing)."""

    requirement: Requirement
    status: str  # one of STATUSES
    found_at: Path | None
    message: str
    fix: str
    family: str | None = None  # the generation ("2.0", "2.3") of checkpoints, LoRAs and upsamplers, when known


# ---- what a workflow needs ---------------------------------------------------------------------------------------


def _nodes(workflow: Mapping[str, Any]) -> list[tuple[str, str, Any, dict]]:
    """(id, type, widget values, properties) of each node that runs, from the UI format or the API format."""
    if isinstance(workflow.get("nodes"), list):
        return [
            (str(node.get("id")), str(node.get("type")), node.get("widgets_values") or [], node.get("properties") or {})
            for node in workflow["nodes"]
            if isinstance(node, dict) and node.get("mode", 0) not in MUTED_MODES
        ]
    return [
        (str(node_id), str(node["class_type"]), node.get("inputs") or {}, {})
        for node_id, node in workflow.items()
        if isinstance(node, dict) and "class_type" in node
    ]


def _value(values: Any, name: str, index: int, default: Any = None) -> Any:
    """A widget's value by position (UI list) or by name (UI dict, API inputs)."""
    if isinstance(values, list):
        return values[index] if index < len(values) else default
    return values.get(name, default) if isinstance(values, Mapping) else default


def _text(values: Any, name: str, index: int) -> str:
    """A text widget's value; "" when absent or linked to another node (API format)."""
    value = _value(values, name, index)
    return value.strip() if isinstance(value, str) else ""


def _widget_requirements(node_type: str, values: Any) -> list[tuple[str, str]]:
    """(name, folder key) of each model file the node's widgets name."""
    if node_type == "L2A_CameraLoRA":
        preset, lora_name, scale = _text(values, "preset", 0), _text(values, "lora_name", 2), _value(values, "scale", 1)
        if preset == "none" or scale == 0:
            return []
        if lora_name:
            return [(lora_name, "loras")]
        files = [f.camera_loras[preset] for f in with_camera_loras() if preset in f.camera_loras]
        return [(files[0].name, "loras")] if files else []
    found = []
    if node_type in EXTRA_WIDGETS:
        name, index, asking, extra = EXTRA_WIDGETS[node_type]
        if _value(values, name, index) == asking:
            found.append((EXTRA_FILES[extra].name, EXTRA_FILES[extra].folder))
    for name, index, key in LOADER_WIDGETS.get(node_type, ()):
        value = _text(values, name, index)
        if key in ("checkpoints", "text_encoders") and value.startswith(DIFFUSERS_PREFIX):
            found.append((value[len(DIFFUSERS_PREFIX):], "diffusers"))
        elif key == "checkpoints" and value:
            found.append((value, KNOWN_FOLDERS.get(Path(value).name.lower(), key)))
        elif value and value != "auto":
            found.append((value, key))
    return found


def required_models(workflow: Mapping[str, Any]) -> list[Requirement]:
    """Every model file a workflow names, once each (the first node naming it; a properties URL wins)."""
    found: dict[tuple[str, str], Requirement] = {}
    for node_id, node_type, values, properties in _nodes(workflow):
        entries = [
            (str(m["name"]), str(m["directory"]), str(m.get("url") or ""))
            for m in properties.get("models") or []
            if isinstance(m, dict) and m.get("name") and m.get("directory")
        ]
        entries += [(name, key, "") for name, key in _widget_requirements(node_type, values)]
        for name, directory, url in entries:
            key = (directory, name.lower())
            url = url or KNOWN_URLS.get(Path(name).name, "")
            if key not in found:
                found[key] = Requirement(name, directory, url, node_type, node_id)
            elif url and not found[key].url:
                old = found[key]
                found[key] = Requirement(old.name, old.directory, url, old.node_type, old.node_id)
    return list(found.values())


def folders_under(models_dir: str | os.PathLike) -> dict[str, list[Path]]:
    """Folder keys of a plain ComfyUI models folder, as ComfyUI maps them by default (models/clip is a
    text_encoders folder, models/unet a diffusion_models one)."""
    root = Path(models_dir)
    return {key: [root / sub for sub in subs] for key, subs in FOLDER_LAYOUT.items()}


# ---- where the files are -----------------------------------------------------------------------------------------


class FolderIndex:
    """Model folders listed once, and header checks done once, for all the workflows of one report."""

    def __init__(self, folders: Mapping[str, Iterable[str | os.PathLike]]):
        self.folders = {key: [Path(p) for p in paths] for key, paths in folders.items()}
        self._listings: dict[Path, list[Path]] = {}
        self._checks: dict[tuple, tuple[Any, L2AError | None]] = {}
        self._modules: dict[str, dict] = {}

    def _listing(self, root: Path) -> list[Path]:
        """Every file and folder under a root (symlinks followed, as ComfyUI lists them), shallowest first."""
        if root not in self._listings:
            entries = []
            for dirpath, dirs, files in os.walk(root, followlinks=True):
                entries += [Path(dirpath) / n for n in (*dirs, *files)]
            self._listings[root] = sorted(entries, key=lambda p: (len(p.parts), str(p)))
        return self._listings[root]

    def find(self, name: str, key: str) -> Path | None:
        """A file or folder by its listed name in a folder key: the exact relative path first, then the name in any
        sub-folder, case-insensitive (as the LoRA loader finds files)."""
        roots = self.folders.get(key, [])
        for root in roots:
            if (root / name).exists():
                return root / name
        wanted = Path(name).name.lower()
        for root in roots:
            match = next((p for p in self._listing(root) if p.name.lower() == wanted), None)
            if match is not None:
                return match
        return None

    def find_elsewhere(self, name: str, key: str) -> tuple[str, Path] | None:
        """(folder key, path) of the name in another folder the loader for `key` never looks in."""
        own = {_real(root) for root in self.folders.get(key, [])}
        wanted = Path(name).name.lower()
        for other, roots in self.folders.items():
            for root in roots:
                if other == key or _real(root) in own:
                    continue
                match = next((p for p in self._listing(root) if p.name.lower() == wanted), None)
                if match is not None:
                    return other, match
        return None

    def target(self, key: str) -> str:
        """Where a file of this folder key belongs, for the fix text."""
        roots = self.folders.get(key)
        return f"{roots[0]}{os.sep}" if roots else f"models/{key}/"

    def check(self, kind: str, path: Path, checkpoint=None) -> tuple[Any, L2AError | None]:
        """(result, None) or (None, error) of a header check, done once per file (and checkpoint, for LoRAs)."""
        cache_key = (kind, path, checkpoint.path if checkpoint is not None else None)
        if cache_key not in self._checks:
            try:
                self._checks[cache_key] = (_CHECKS[kind](self, path, checkpoint), None)
            except (L2AError, OSError) as error:
                self._checks[cache_key] = (None, error if isinstance(error, L2AError) else L2AError(
                    f"'{path.name}' cannot be read: {error}"))
        return self._checks[cache_key]

    def meta_model(self, info) -> SimpleNamespace:
        """A stand-in for the loaded model with parameters on the meta device: enough for the LoRA fit check."""
        from .lora import meta_modules

        config_key = json.dumps(info.config, sort_keys=True)
        if config_key not in self._modules:
            self._modules[config_key] = meta_modules(info.config)
        return SimpleNamespace(family=info.family, **self._modules[config_key])


def _real(path: Path) -> str:
    return os.path.realpath(path)


# ---- is it the right file? ---------------------------------------------------------------------------------------


def _check_checkpoint(_index: FolderIndex, path: Path, _checkpoint):
    return inspect_checkpoint(path, with_parts=False)


def _check_text_encoder(_index: FolderIndex, path: Path, _checkpoint):
    """What the Gemma is, from a single file's header or a folder's config.json (as the loader checks them)."""
    return inspect_text_encoder(path)


def _check_vae(_index: FolderIndex, path: Path, checkpoint):
    """(part, its family or None) of an LTX-2.5 VAE file, checked as the model loader checks it."""
    part = part_of_file(path)
    for_family = checkpoint.family if checkpoint is not None and checkpoint.family.split else next(
        f for f in FAMILIES.values() if f.split)
    return inspect_part(path, part, for_family)


def _check_duration_head(_index: FolderIndex, path: Path, _checkpoint) -> dict:
    """The head's configuration from its header, as load_duration_head reads it."""
    from .duration import inspect_duration_head

    return inspect_duration_head(path)


def _check_diffusion_decoder(_index: FolderIndex, path: Path, _checkpoint) -> str:
    """The video VAE file must hold the diffusion decoder (the conv VAE file has none)."""
    from .diffusion_decoder import OFFICIAL_FILE, video_vae_kind

    if video_vae_kind(path) != "diffusion":
        raise L2AError(f"'{path.name}' is a conv video VAE without the diffusion decoder: decoder = diffusion needs "
                       f"{OFFICIAL_FILE}.")
    return "LTX-2.5 video VAE with the diffusion decoder"


def _check_upsampler(_index: FolderIndex, path: Path, _checkpoint) -> tuple[Family, dict]:
    """(family, config) of the configuration the file's tensors fit, as load_upsampler decides."""
    return inspect_upsampler(path)


def _check_lora(index: FolderIndex, path: Path, checkpoint):
    """The LoRA's header, and (with a checkpoint) the loader's own fit check against its meta-device modules."""
    info = read_lora_header(path)
    return fit_lora(info, index.meta_model(checkpoint)) if checkpoint is not None else info


_CHECKS = {
    "checkpoint": _check_checkpoint,
    "text_encoder": _check_text_encoder,
    "vae": _check_vae,
    "upsampler": _check_upsampler,
    "lora": _check_lora,
    "duration_head": _check_duration_head,
    "diffusion_decoder": _check_diffusion_decoder,
}
KINDS = {
    "checkpoints": "checkpoint",
    "diffusers": "checkpoint",
    "diffusion_models": "checkpoint",
    "text_encoders": "text_encoder",
    "vae": "vae",
    "latent_upscale_models": "upsampler",
    "loras": "lora",
    "model_patches": "duration_head",
}


def _inspect(index: FolderIndex, req: Requirement, path: Path, checkpoint) -> tuple[str, str, str, str | None]:
    """(status, message, fix, family) of a found file, from its header."""
    kind = "diffusion_decoder" if Path(req.name).name.lower() in DIFFUSION_DECODER_NAMES else KINDS.get(req.directory)
    redownload = f"download {req.name} from {req.url} into models/{req.directory}/" if req.url else (
        f"replace it with an LTX-2 file in models/{req.directory}/")
    if kind is None:
        return "present", "found (no header check for this folder)", "", None
    result, error = index.check(kind, path, checkpoint if kind in ("lora", "vae") else None)
    if error is not None and kind == "lora" and checkpoint is not None:
        if index.check("lora", path)[1] is None:  # an LTX-2 LoRA, for another model
            declared = declared_by_name(path.name)
            return "wrong_family", f"{error} (checked against {checkpoint.path.name})", (
                f"use the version of this LoRA made for {checkpoint.family.label}"), declared and declared.name
    if error is not None:
        return "not_ltx2", str(error), redownload, None
    if kind == "checkpoint":
        family = result.family.name
        text = f"{result.family.label} {result.variant} checkpoint" + (" (fp8)" if result.fp8 else "")
        declared = declared_by_name(req.name)
        if declared is not None and declared.name != family:
            return "wrong_family", (
                f"'{path.name}' holds {result.family.label}, but its name says {declared.label}: the workflow's LoRAs "
                "and upsampler follow the name."), redownload, family
        return "present", text, "", family
    if kind == "upsampler":
        found, config = result
        other = found is not None and checkpoint is not None and found.name != checkpoint.family.name
        if checkpoint is not None and (other or int(config["in_channels"]) != int(
                checkpoint.config["transformer"]["in_channels"])):
            wanted = checkpoint.family.upsampler
            whose = f"of {found.label}" if found is not None else f"for {config['in_channels']} latent channels"
            return "wrong_family", (
                f"'{path.name}' is the latent upsampler {whose}, but the checkpoint "
                f"{checkpoint.path.name} is {checkpoint.family.label}"), (
                f"use the latent upsampler made for {checkpoint.family.label}: {wanted.name} ({wanted.url})"), (
                found and found.name)
        label = found.label if found is not None else "its shapes fit LTX-2.3 and LTX-2.5"
        return "present", f"LTX-2 latent upsampler ({label})", "", found and found.name
    if kind == "text_encoder" and checkpoint is not None and (refusal := result.refusal(checkpoint)):
        need = checkpoint.family.text_encoder
        return "wrong_family", refusal, f"use {need.names()} in models/text_encoders", None
    if kind == "vae":
        what = f"{result.family.label}'s " if result.family is not None else ""
        if checkpoint is not None and result.family is not None and result.family.name != checkpoint.family.name:
            wanted = checkpoint.family.parts.get(result.part)
            fix = f"use {wanted.name} ({wanted.url})" if wanted else "use the all-in-one checkpoint's own VAEs"
            return "wrong_family", (f"'{path.name}' is {what}{PART_LABELS[result.part]}, but the checkpoint "
                                    f"{checkpoint.path.name} is {checkpoint.family.label}"), fix, result.family.name
        return "present", f"{what}{PART_LABELS[result.part]}", "", result.family and result.family.name
    if kind == "duration_head":
        return "present", "LTX-2.5 duration head", "", None
    if kind == "diffusion_decoder":
        return "present", result, "", None
    if kind == "lora":
        declared = declared_by_name(path.name)
        if checkpoint is not None:
            return "present", f"LTX-2 LoRA that fits {checkpoint.path.name} ({checkpoint.family.label})", "", (
                declared.name if declared else checkpoint.family.name)
        said = f" for {declared.label} by its name" if declared else ""
        return "present", f"LTX-2 LoRA{said} (its fit is checked once the checkpoint is there)", "", (
            declared and declared.name)
    return "present", result.description, "", None


def _diagnose_one(index: FolderIndex, req: Requirement, checkpoint) -> Finding:
    path = index.find(req.name, req.directory)
    if path is not None:
        status, message, fix, family = _inspect(index, req, path, checkpoint)
        return Finding(req, status, path, message, fix, family)
    elsewhere = index.find_elsewhere(req.name, req.directory)
    if elsewhere is not None:
        key, path = elsewhere
        status, message, fix, family = _inspect(index, req, path, checkpoint)
        if status == "present":
            return Finding(req, "wrong_folder", path, (
                f"in the wrong folder ({key}, where the loader never looks): {message}"), (
                f"move {path} to {index.target(req.directory)}"), family)
        return Finding(req, status, path, f"in {key}: {message}", fix, family)
    where = " or ".join(str(r) for r in index.folders.get(req.directory, [])) or f"models/{req.directory}"
    fix = f"download {req.name} from {req.url} into models/{req.directory}/" if req.url else (
        f"put {req.name} into models/{req.directory}/")
    choices = next((names for names in TEXT_ENCODER_CHOICES.values() if req.name in names), ())
    others = [name for name in choices if name != req.name and index.find(name, "text_encoders")]
    if others:
        fix = f"pick {others[0]} (already in text_encoders) in {req.node_type} instead, or {fix}"
    return Finding(req, "missing", None, f"missing: not in {where}", fix)


def _stage_two_requirement(requirements: list[Requirement], checkpoint) -> Requirement | None:
    """Multiscale on a dev checkpoint runs stage 2 with the family's distilled LoRA, which the workflow need not
    name: the sampler finds it. A workflow with a latent upsampler needs it unless it names it already."""
    if checkpoint is None or checkpoint.variant != "dev":
        return None
    upsampler = next((r for r in requirements if r.directory == "latent_upscale_models"), None)
    lora = checkpoint.family.distilled_lora
    named = {name.lower() for name in lora.names}
    if upsampler is None or any(r.directory == "loras" and Path(r.name).name.lower() in named for r in requirements):
        return None
    return Requirement(lora.name, lora.folder, lora.url, upsampler.node_type, upsampler.node_id)


def _part_requirements(index: FolderIndex, requirements: list[Requirement], checkpoint) -> list[Requirement]:
    """A split family's checkpoint needs its VAE files, which a workflow's "auto" widgets do not name: the official
    ones, unless the workflow names a file of that part already."""
    if checkpoint is None or not checkpoint.family.split:
        return []
    named = [r for r in requirements if r.directory == "vae" and Path(r.name).name.lower() not in
             DIFFUSION_DECODER_NAMES]  # the diffusion-decoder VAE is Decode Video's, not the model's video VAE
    covered = set()
    for req in named:
        path = index.find(req.name, req.directory)
        try:
            covered.add(part_of_file(path) if path is not None else None)
        except (L2AError, OSError):
            continue
    names = {Path(r.name).name.lower() for r in named}
    node = next(r for r in requirements if r.directory in CHECKPOINT_KEYS)
    return [Requirement(file.name, file.folder, file.url, node.node_type, node.node_id)
            for part, file in checkpoint.family.parts.items()
            if part not in covered and not names & {name.lower() for name in file.names}]


def diagnose(requirements: Iterable[Requirement],
             folders: Mapping[str, Iterable[str | os.PathLike]] | FolderIndex, multiscale: bool = False
             ) -> list[Finding]:
    """A finding per requirement, in order. Checkpoints are checked first so LoRAs and the upsampler can be checked
    against the workflow's checkpoint; with `multiscale`, the checkpoint family's stage-2 LoRA is required too."""
    index = folders if isinstance(folders, FolderIndex) else FolderIndex(folders)
    requirements = list(requirements)
    findings: dict[int, Finding] = {}
    checkpoint = None
    for i, req in enumerate(requirements):
        if req.directory in CHECKPOINT_KEYS:
            findings[i] = _diagnose_one(index, req, None)
            if checkpoint is None and findings[i].found_at is not None:
                checkpoint = index.check("checkpoint", findings[i].found_at)[0]
    stage_two = _stage_two_requirement(requirements, checkpoint) if multiscale else None
    if stage_two is not None:
        requirements.append(stage_two)
    requirements += _part_requirements(index, requirements, checkpoint)
    for i, req in enumerate(requirements):
        if i not in findings:
            findings[i] = _diagnose_one(index, req, checkpoint)
    return [findings[i] for i in range(len(requirements))]


def runs_multiscale(workflow: Mapping[str, Any]) -> bool:
    """Whether a workflow samples in two stages with the official stage-2 LoRA: a latent upsampler feeds a
    sampler that does not refine without it."""
    nodes = _nodes(workflow)
    if not any(node_type == "L2A_UpsamplerLoader" for _id, node_type, _v, _p in nodes):
        return False
    return not any(node_type == "L2A_Sampler" and _value(values, "stage_2", SAMPLER_STAGE_2_INDEX) == STAGE_2_WITHOUT
                   for _id, node_type, values, _p in nodes)


def diagnose_workflows(paths: Iterable[str | os.PathLike],
                       folders: Mapping[str, Iterable[str | os.PathLike]]) -> dict[str, list[Finding]]:
    """Findings per workflow (by file stem); the folders are listed once for all of them."""
    index = FolderIndex(folders)
    results = {}
    for path in paths:
        path = Path(path)
        try:
            workflow = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise L2AError(f"Cannot read the workflow '{path}': {exc}") from exc
        if not isinstance(workflow, dict):
            raise L2AError(f"'{path}' is not a ComfyUI workflow (UI or API format JSON object).")
        results[path.stem] = diagnose(required_models(workflow), index, runs_multiscale(workflow))
    return results


def family_requirements(model_family: Family, folders: Mapping[str, Iterable[str | os.PathLike]] | FolderIndex
                        ) -> list[Requirement]:
    """A family's full set from its record: both checkpoints, its part files (LTX-2.5's VAEs), a text encoder (the
    first of its files that is there, else the first), the latent upsampler, the distilled LoRA, any camera
    LoRAs and its optional files (LTX-2.5's duration head and diffusion-decoder VAE)."""
    index = folders if isinstance(folders, FolderIndex) else FolderIndex(folders)
    node = f"family {model_family.name}"
    encoders = model_family.text_encoder.files
    encoder = next((f for f in encoders if index.find(f.name, f.folder)), encoders[0])
    files = [*model_family.checkpoints.values(), *model_family.parts.values(), encoder, model_family.upsampler,
             model_family.distilled_lora, *model_family.camera_loras.values(), *model_family.extras.values()]
    return [Requirement(f.name, f.folder, f.url, node, model_family.key) for f in files]


def diagnose_family(model_family: Family, folders: Mapping[str, Iterable[str | os.PathLike]]
                    ) -> dict[str, list[Finding]]:
    """Findings for a family's full set (checked against its dev checkpoint), as one report entry."""
    index = FolderIndex(folders)
    title = f"{model_family.label}: the full set"
    return {title: diagnose(family_requirements(model_family, index), index)}


# ---- the report --------------------------------------------------------------------------------------------------

MARKERS = {"present": "✓", "wrong_folder": "→"}
SUMMARY = (
    ("present", "present"),
    ("missing", "missing"),
    ("wrong_folder", "in the wrong folder"),
    ("not_ltx2", "not LTX-2"),
    ("wrong_family", "of the wrong family"),
)


def all_right(results: Mapping[str, list[Finding]]) -> bool:
    return all(f.status == "present" for findings in results.values() for f in findings)


def summary_line(results: Mapping[str, list[Finding]]) -> str:
    """Counts of distinct files (a checkpoint shared by nine workflows counts once); the first three always show."""
    seen = {(f.requirement.directory, f.requirement.name.lower(), f.status) for fs in results.values() for f in fs}
    counts = {status: sum(1 for s in seen if s[2] == status) for status in STATUSES}
    parts = [f"{counts[status]} {text}" for i, (status, text) in enumerate(SUMMARY) if i < 3 or counts[status]]
    return ", ".join(parts)


def report_text(results: Mapping[str, list[Finding]]) -> str:
    """A readable report: ✓ right, ✗ missing or wrong, → in the wrong folder; each fix below. One workflow is
    reported file by file; several are reported by distinct file, each once with the workflows that need it, so a
    checkpoint missing for nine workflows is one entry, not nine."""
    if len(results) > 1:
        return _report_by_file(results)
    lines = []
    for workflow, findings in results.items():
        lines.append(workflow)
        if not findings:
            lines.append(f"  {HOSTED_ONLY}")
        for f in findings:
            lines += _finding_lines(f)
        lines.append("")
    lines.append(summary_line(results))
    return "\n".join(lines)


HOSTED_ONLY = "(no local model files: hosted backends only)"


def _finding_lines(finding: Finding) -> list[str]:
    req = finding.requirement
    lines = [f"  {MARKERS.get(finding.status, '✗')} {req.directory}/{req.name}: {finding.message}"]
    return lines + ([f"      {finding.fix}"] if finding.fix else [])


def _report_by_file(results: Mapping[str, list[Finding]]) -> str:
    groups: dict[tuple, tuple[Finding, list[str]]] = {}
    for workflow, findings in results.items():
        for f in findings:
            key = (f.requirement.directory, f.requirement.name.lower(), f.status, f.message, f.fix)
            users = groups.setdefault(key, (f, []))[1]
            if workflow not in users:
                users.append(workflow)
    lines = []
    for finding, users in groups.values():
        lines += _finding_lines(finding)
        lines.append(f"      needed by {', '.join(users)}")
    hosted = [workflow for workflow, findings in results.items() if not findings]
    if hosted:
        lines.append(f"  {', '.join(hosted)}: {HOSTED_ONLY}")
    lines += ["", summary_line(results)]
    return "\n".join(lines)
