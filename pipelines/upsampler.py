"""The LTX-2 latent upsampler (x2 spatial) used between the two stages of multiscale generation.

Official files (`ltx-2-spatial-upscaler-x2-1.0.safetensors`) hold the diffusers module's keys as they are. The
configuration is not in the file, so each shipped configuration is tried against the file's keys and shapes; the
tiny model's file carries its configuration in its metadata.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import L2AError
from .loading import (
    CONFIG_DIR,
    FAMILY_CONFIG_FILES,
    parameters_on_meta,
    read_safetensors_header,
    resolve_dtype,
    write_safetensors,
)

UPSAMPLER_FILE = "ltx-2-spatial-upscaler-x2-1.0.safetensors"


@dataclass
class Upsampler:
    module: Any
    config: dict
    source: str

    @property
    def in_channels(self) -> int:
        return int(self.config["in_channels"])


def _candidate_configs(metadata: dict) -> list[dict]:
    if "l2a_tiny" in metadata:
        return [json.loads(metadata["l2a_tiny"])["latent_upsampler"]]
    return [json.loads((CONFIG_DIR / name).read_text())["latent_upsampler"] for name in FAMILY_CONFIG_FILES.values()]


def _fits(config: dict, entries: dict) -> bool:
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    with parameters_on_meta():
        module = LTX2LatentUpsamplerModel(**config)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v["shape"]) for k, v in entries.items()}
    return expected == found


def inspect_upsampler(path: str | os.PathLike) -> dict:
    """The config a latent upsampler file fits, from its header alone; refuses other files with the fix."""
    path = Path(path)
    if not path.is_file():
        raise L2AError(f"The latent upsampler '{path}' does not exist: put {UPSAMPLER_FILE} (Lightricks/LTX-2) in "
                       "models/latent_upscale_models.")
    if path.suffix.lower() not in (".safetensors", ".sft"):
        raise L2AError(f"'{path.name}' is not a .safetensors file: only safetensors latent upsamplers are loaded.")
    entries, metadata = read_safetensors_header(path)
    for config in _candidate_configs(metadata):
        if _fits(config, entries):
            return config
    raise L2AError(
        f"'{path.name}' is not an LTX-2 latent upsampler: its tensors match no known upsampler. Use "
        f"{UPSAMPLER_FILE} from Lightricks/LTX-2 in models/latent_upscale_models (not models/upscale_models)."
    )


def load_upsampler(path: str | os.PathLike, dtype: Any = "bf16", device: Any = "cpu") -> Upsampler:
    """Load a latent upsampler file; refuses non-safetensors files and files of another kind with a clear message."""
    import torch
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
    from safetensors.torch import load_file

    path = Path(path)
    config = inspect_upsampler(path)
    with parameters_on_meta():
        module = LTX2LatentUpsamplerModel(**config)
    state = load_file(str(path), device="cpu")
    target = resolve_dtype(dtype)
    module.load_state_dict({k: v.to(target) for k, v in state.items()}, strict=True, assign=True)
    return Upsampler(module.to(torch.device(device)).eval(), config, str(path))


def save_upsampler(path: str | os.PathLike, module, metadata: dict[str, str]) -> Path:
    """Write an upsampler file atomically (used for the tiny model)."""
    return write_safetensors(path, module.state_dict(), metadata)


def upsample(upsampler: Upsampler, model, video_raw):
    """Raw video latent [1, C, F, H, W] -> raw latent at twice the spatial size.

    The upsampler runs on the model's device and follows its memory policy: when the model offloads, the
    upsampler goes back to system memory right after, so its 1 GB does not sit beside stage 2 and the decode.
    """
    import torch

    from .memory import policy_of

    if upsampler.in_channels != model.transformer.config.in_channels:
        raise L2AError(
            f"the latent upsampler '{Path(upsampler.source).name}' takes {upsampler.in_channels} latent channels "
            f"but {model.family.label} makes {model.transformer.config.in_channels}: use its own upsampler."
        )
    module = upsampler.module.to(model.device)
    dtype = next(module.parameters()).dtype
    try:
        with torch.no_grad():
            return module(video_raw.to(model.device, dtype)).to(torch.float32)
    finally:
        if policy_of(model).offloads:
            module.to("cpu")
