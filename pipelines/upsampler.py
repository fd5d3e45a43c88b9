"""The LTX-2 latent upsampler (x2 spatial) used between the two stages of multiscale generation.

Official files (`ltx-2-spatial-upscaler-x2-1.0.safetensors`, `ltx-2.3-spatial-upscaler-x2-1.1.safetensors`,
`ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors`) hold the diffusers module's keys as they are. LTX-2.5's
carries its configuration as `config` metadata (ltx-core `LatentUpsamplerConfigurator`), which is read; for files
without it each family's configuration is tried against the file's keys and shapes. The family is the one the
file's `model_version` or official name states, else the only one whose configuration fits (LTX-2.3's and
LTX-2.5's have the same shapes, so such a file is checked by its latent width alone). The tiny model's file carries
its configuration in its metadata. The temporal upscaler is refused: it serves LTX-2.5's DFR rounds, which this
version does not run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import L2AError
from .families import FAMILIES, GENERATIONS, Family, declared_by_name, family, generation_of_version
from .model_files import require_file
from .weights import SAFETENSORS_SUFFIXES, parameters_on_meta, read_safetensors_header, resolve_dtype, write_safetensors


@dataclass
class Upsampler:
    module: Any
    config: dict
    source: str
    family: Family | None = None  # None: the file does not say, and its shapes fit several families

    @property
    def in_channels(self) -> int:
        return int(self.config["in_channels"])


def _fits(config: dict, entries: dict) -> bool:
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    with parameters_on_meta():
        module = LTX2LatentUpsamplerModel(**config)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v["shape"]) for k, v in entries.items()}
    return expected == found


def _official_names() -> str:
    return " or ".join(f"{f.upsampler.name} ({f.upsampler.repo})" for f in FAMILIES.values())


def _not_an_upsampler(path: Path) -> L2AError:
    return L2AError(
        f"'{path.name}' is not an LTX-2 latent upsampler: its tensors match no known upsampler. Use "
        f"{_official_names()} in models/latent_upscale_models (not models/upscale_models)."
    )


def _official_config(metadata: dict, name: str) -> dict | None:
    """The diffusers configuration of an official file's `config` metadata (None without one)."""
    if "config" not in metadata:
        return None
    try:
        raw = json.loads(metadata["config"])
        config = {"in_channels": int(raw.get("in_channels", 128)), "mid_channels": int(raw.get("mid_channels", 512)),
                  "num_blocks_per_stage": int(raw.get("num_blocks_per_stage", 4)), "dims": int(raw.get("dims", 3)),
                  "spatial_upsample": bool(raw.get("spatial_upsample", True)),
                  "temporal_upsample": bool(raw.get("temporal_upsample", False)),
                  "rational_spatial_scale": float(raw.get("spatial_scale", 2.0)),
                  "use_rational_resampler": bool(raw.get("rational_resampler", False))}
    except (ValueError, TypeError, AttributeError) as exc:
        raise L2AError(f"'{name}' has a damaged upsampler config ({exc}): download it again.") from exc
    if config["temporal_upsample"] or not config["spatial_upsample"]:
        raise L2AError(f"'{name}' is a temporal latent upscaler (LTX-2.5's DFR rounds), which this version does not "
                       f"run: multiscale takes the x2 spatial upsampler, e.g. {_official_names()}.")
    return config


def inspect_upsampler(path: str | os.PathLike) -> tuple[Family | None, dict]:
    """(family, configuration) of a latent upsampler file, from its header alone (no tensor is read); the family is
    None when the file does not say and several families' upsamplers have its shapes."""
    path = Path(path)
    if not path.is_file():
        raise L2AError(f"The latent upsampler '{path}' does not exist: put {_official_names()} in "
                       "models/latent_upscale_models.")
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise L2AError(f"'{path.name}' is not a .safetensors file: only safetensors latent upsamplers are loaded.")
    entries, metadata = read_safetensors_header(path)
    declared = generation_of_version(metadata.get("model_version", ""), f"'{path.name}'") or declared_by_name(path.name)
    if "l2a_tiny" in metadata:
        candidates = [(family(declared.name, tiny=True), json.loads(metadata["l2a_tiny"])["latent_upsampler"])]
    elif (config := _official_config(metadata, path.name)) is not None:
        candidates = [(declared, config)]
    else:
        candidates = [(f, f.config()["latent_upsampler"]) for f in GENERATIONS]
    fitting = [(found, config) for found, config in candidates if _fits(config, entries)]
    if not fitting:
        raise _not_an_upsampler(path)
    if declared is not None and any(found is not None and found.name == declared.name for found, _ in fitting):
        return next((found, config) for found, config in fitting if found.name == declared.name)
    found, config = fitting[0]
    return (found if len(fitting) == 1 else declared), config


def upsampler_file(model_family: Family, folders: Iterable[str | os.PathLike]) -> Path:
    """The family's official latent upsampler in the latent upsampler folders, or an error naming it."""
    return require_file(model_family.upsampler, folders, f"Multiscale on {model_family.label}")


def load_upsampler(path: str | os.PathLike, dtype: Any = "bf16", device: Any = "cpu") -> Upsampler:
    """Load a latent upsampler file; refuses non-safetensors files and files of another kind with a clear message."""
    import torch
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
    from safetensors.torch import load_file

    path = Path(path)
    found, config = inspect_upsampler(path)
    with parameters_on_meta():
        module = LTX2LatentUpsamplerModel(**config)
    state = load_file(str(path), device="cpu")
    target = resolve_dtype(dtype)
    module.load_state_dict({k: v.to(target) for k, v in state.items()}, strict=True, assign=True)
    return Upsampler(module.to(torch.device(device)).eval(), config, str(path), found)


def save_upsampler(path: str | os.PathLike, module, metadata: dict[str, str]) -> Path:
    """Write an upsampler file atomically (used for the tiny model)."""
    return write_safetensors(path, module.state_dict(), metadata)


def check_upsampler(upsampler: Upsampler, model) -> None:
    """Refuse an upsampler made for another family (or for another latent width) before any sampling."""
    name = Path(upsampler.source).name
    if upsampler.in_channels != model.transformer.config.in_channels:
        raise L2AError(
            f"the latent upsampler '{name}' takes {upsampler.in_channels} latent channels but {model.family.label} "
            f"makes {model.transformer.config.in_channels}: use its own upsampler, {model.family.upsampler.name}."
        )
    if upsampler.family is not None and upsampler.family.name != model.family.name:
        raise L2AError(
            f"the latent upsampler '{name}' is {upsampler.family.label}'s, but the model is {model.family.label}: "
            f"use {model.family.upsampler.name} ({model.family.upsampler.url})."
        )


def upsample(upsampler: Upsampler, model, video_raw):
    """Raw video latent [1, C, F, H, W] -> raw latent at twice the spatial size.

    The upsampler runs on the model's device and follows its memory policy: when the model offloads, the
    upsampler goes back to system memory right after, so its 1 GB does not sit beside stage 2 and the decode.
    """
    import torch

    from .memory import policy_of

    module = upsampler.module.to(model.device)
    dtype = next(module.parameters()).dtype
    try:
        with torch.no_grad():
            return module(video_raw.to(model.device, dtype)).to(torch.float32)
    finally:
        if policy_of(model).offloads:
            module.to("cpu")
