"""LTX-2.5's optional files, found and loaded when a run asks for them, not when the model loads.

The duration head (automatic duration) and the video VAE file that holds the diffusion decoder are listed in the
family record's `extras`. A model loaded from split files looks for them in the ComfyUI folders it was loaded with
(`LTX2Model.extra_folders`: models/model_patches, models/vae), by default the folders beside its transformer file's;
a diffusers folder first in its own `duration_head/` and `diffusion_decoder/` sub-folders. A missing file is an
error naming it, where to get it and where to put it. Once loaded they stay with the model (`LTX2Model.extras`).
"""

from __future__ import annotations

from pathlib import Path

from .errors import L2AError

# Each extra by its record key, which is also its sub-folder in LTX-2.5-Diffusers.
LABELS = {"duration_head": "duration head", "diffusion_decoder": "diffusion video decoder"}


def extra_file(model, name: str, purpose: str) -> Path:
    """Where the family's optional file `name` is for this model, or an L2AError naming what is missing."""
    return find_extra(model.family, model.source, model.extra_folders, name, purpose)


def find_extra(family, source, folders, name: str, purpose: str) -> Path:
    """Where `family`'s optional file `name` is for a model loaded from `source` with the ComfyUI `folders` (folder
    key -> folders; by default the folders beside a transformer file's): a MissingModelFile names the file, its
    download and its folder; a family without it is an L2AError."""
    from .loading import folder_layout
    from .model_files import require_file

    official = family.extras.get(name)
    if official is None:
        from .families import GENERATIONS

        owners = ", ".join(sorted({f.label for f in GENERATIONS if name in f.extras}))
        raise L2AError(f"{purpose} needs a {LABELS[name]}, which {family.label} does not have (it is "
                       f"{owners}'s): load {owners} instead.")
    source = Path(source)
    where = [Path(f) for f in (folders or {}).get(official.folder, [])]
    if source.is_dir():
        root, _ = folder_layout(source)
        own = root / name
        if (own / "config.json").is_file():
            return own
        purpose = f"{purpose} (the diffusers folder '{root.name}' has no {own.name}/)"
    elif not where:
        where = [source.resolve().parent.parent / official.folder]
    return require_file(official, where, purpose)


def duration_head_of(model, purpose: str = "auto duration (frames = 0)"):
    """The model's duration head (duration.DurationHead), loaded once; small, so it stays on the CPU in fp32."""
    from .duration import load_duration_head

    if "duration_head" not in model.extras:
        model.extras["duration_head"] = load_duration_head(extra_file(model, "duration_head", purpose))
    return model.extras["duration_head"]


def diffusion_decoder_of(model, purpose: str = "decoder = diffusion"):
    """The model's diffusion video decoder (diffusion_decoder.DiffusionDecoder) in the model's dtype, loaded once
    into system memory; the decode moves it to the device."""
    from .diffusion_decoder import CONV_FILE, load_diffusion_decoder

    if "diffusion_decoder" not in model.extras:
        official = model.family.extras.get("diffusion_decoder")
        if official is not None:
            purpose = f"{purpose} ({CONV_FILE} holds the conv decoder only; or decode with decoder = conv)"
        path = extra_file(model, "diffusion_decoder", purpose)
        model.extras["diffusion_decoder"] = load_diffusion_decoder(path, dtype=model.dtype, device="cpu")
    return model.extras["diffusion_decoder"]
