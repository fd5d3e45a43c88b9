"""LTX-2.5's duration head: the natural length of the shot a prompt describes, as a frame count on the 8k+1 grid.

The head (about 2 M parameters) reads the text connectors' outputs for the positive prompt (video tokens and audio
tokens), pools them with one learned query and predicts log-seconds (ltx-core `duration_head/`, diffusers
`LTX2DurationHead`). The official pipelines use it whenever no frame count is given, within 1 to 20 seconds.

Files. The official `ltx-2.5-duration-head-bf16.safetensors` (ComfyUI folder models/model_patches) holds
`duration_head.*` tensors with the pooler's attention as one fused torch MultiheadAttention (`in_proj_weight`,
`out_proj`); its sizes are read from the weight shapes, the head count from the file's `config.duration_head`
metadata (4 when absent, as ltx-core's configurator does). A diffusers folder (`duration_head/` of
LTX-2.5-Diffusers) loads as it is.

Frames. The prediction is turned into frames as ltx-pipelines 1.2.0 does (`seconds_to_clamped_num_frames`):
round(seconds x fps), clamped to [round(min x fps), round(max x fps)], floored to the 8k+1 grid, and moved up one
grid step when flooring fell below the minimum. When the bounds hold no grid point at all the nearest one is used
(diffusers' rule; ltx-pipelines would return an off-grid count there).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import L2AError
from .weights import (
    SAFETENSORS_SUFFIXES,
    config_section,
    parameters_on_meta,
    read_safetensors_header,
    resolve_dtype,
    write_safetensors,
)

FOLDER = "duration_head"
OFFICIAL_FILE = "ltx-2.5-duration-head-bf16.safetensors"
PREFIX = "duration_head."
MIN_SECONDS, MAX_SECONDS = 1.0, 20.0  # ltx-pipelines AutoDuration defaults
LONGEST_SECONDS = 20.0  # the RoPE window LTX-2.5 was trained on
_POOLER = "attention_pooler."
_FUSED = _POOLER + "cross_attn."


@dataclass
class DurationHead:
    module: Any
    source: str


@dataclass(frozen=True)
class Duration:
    """A predicted length: the frame count used, the raw prediction and whether the bounds changed it."""

    frames: int
    seconds: float  # what the head predicted
    frame_rate: float
    clamped: bool

    def describe(self) -> str:
        used = f"{self.frames} frames ({self.frames / self.frame_rate:.2f} s at {self.frame_rate:g} fps)"
        why = f", clamped from {self.seconds:.2f} s" if self.clamped else f" (predicted {self.seconds:.2f} s)"
        return f"auto duration: {used}{why}"


def _config_from_shapes(entries: dict, heads: int) -> dict:
    shape = lambda name: entries[PREFIX + name]["shape"]  # noqa: E731
    queries, pooler = shape(_POOLER + "query_tokens")
    return {
        "video_cross_attention_dim": int(shape("video_input_proj.weight")[1]),
        "audio_cross_attention_dim": int(shape("audio_input_proj.weight")[1]),
        "pooler_hidden_dim": int(pooler),
        "num_queries": int(queries),
        "num_pooler_heads": int(heads),
        "mlp_hidden_dim": int(shape("mlp_hidden.weight")[0]),
    }


def _not_a_head(path: Path, why: str) -> L2AError:
    return L2AError(f"'{path.name}' is not LTX-2.5's duration head ({why}): use {OFFICIAL_FILE} from "
                    "Lightricks/LTX-2.5 (model_patches/) in models/model_patches.")


def inspect_duration_head(path: str | os.PathLike) -> dict:
    """The diffusers configuration of an official duration head file, from its header alone."""
    path = Path(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise _not_a_head(path, "not a safetensors file")
    entries, metadata = read_safetensors_header(path)
    needed = [PREFIX + n for n in ("video_input_proj.weight", "audio_input_proj.weight", "mlp_hidden.weight",
                                   _POOLER + "query_tokens", _FUSED + "in_proj_weight")]
    if not all(n in entries for n in needed):
        raise _not_a_head(path, "no duration_head.* tensors")
    return _config_from_shapes(entries, config_section(metadata, "duration_head").get("num_pooler_heads", 4))


def convert_official(state: dict) -> dict:
    """`duration_head.*` with a fused MultiheadAttention -> LTX2DurationHead's keys."""
    import torch

    out = {}
    for key, tensor in state.items():
        if not key.startswith(PREFIX):
            continue
        key = key[len(PREFIX):]
        if key.startswith(_FUSED + "in_proj_"):
            leaf = "weight" if key.endswith("weight") else "bias"
            for name, part in zip(("to_q", "to_k", "to_v"), torch.chunk(tensor, 3, dim=0)):
                out[f"{_POOLER}{name}.{leaf}"] = part
        elif key.startswith(_FUSED + "out_proj."):
            out[_POOLER + "to_out." + key.rsplit(".", 1)[-1]] = tensor
        else:
            out[key] = tensor
    return out


def to_official(state: dict) -> dict:
    """LTX2DurationHead's keys -> the official file's (the inverse of convert_official)."""
    import torch

    out = {}
    for key, tensor in state.items():
        if key.startswith((_POOLER + "to_k.", _POOLER + "to_v.")):
            continue
        if key.startswith(_POOLER + "to_q."):
            leaf = key.rsplit(".", 1)[-1]
            fused = torch.cat([state[f"{_POOLER}{n}.{leaf}"] for n in ("to_q", "to_k", "to_v")], dim=0)
            out[f"{PREFIX}{_FUSED}in_proj_{leaf}"] = fused
        elif key.startswith(_POOLER + "to_out."):
            out[f"{PREFIX}{_FUSED}out_proj.{key.rsplit('.', 1)[-1]}"] = tensor
        else:
            out[PREFIX + key] = tensor
    return out


def save_duration_head(path: str | os.PathLike, module) -> Path:
    """Write a duration head in the official layout (the tiny model's file)."""
    settings = {"duration_head": {"pooler_hidden_dim": module.config.pooler_hidden_dim,
                                  "num_queries": module.config.num_queries,
                                  "num_pooler_heads": module.config.num_pooler_heads,
                                  "mlp_hidden": module.config.mlp_hidden_dim}}
    return write_safetensors(path, to_official(module.state_dict()), {"config": json.dumps(settings)})


def load_duration_head(path: str | os.PathLike, dtype: Any = "fp32", device: Any = "cpu") -> DurationHead:
    """Load the duration head from its official file or a diffusers folder (`duration_head/` or its parent)."""
    import torch
    from diffusers.pipelines.ltx2 import LTX2DurationHead

    path = Path(path)
    target = resolve_dtype(dtype)
    if path.is_dir():
        folder = path / FOLDER if (path / FOLDER / "config.json").is_file() else path
        if not (folder / "config.json").is_file():
            raise _not_a_head(path, "a folder without config.json")
        module = LTX2DurationHead.from_pretrained(str(folder), torch_dtype=target, local_files_only=True)
    else:
        from safetensors.torch import load_file

        config = inspect_duration_head(path)
        with parameters_on_meta():
            module = LTX2DurationHead(**config)
        state = convert_official(load_file(str(path), device="cpu"))
        missing = sorted(set(module.state_dict()) - set(state))
        if missing:
            raise _not_a_head(path, f"'{missing[0]}' is missing")
        module.load_state_dict({k: v.to(target) for k, v in state.items()}, strict=True, assign=True)
    return DurationHead(module.to(torch.device(device)).eval(), str(path))


def check_bounds(min_seconds: float, max_seconds: float) -> None:
    if not 0 < float(min_seconds) <= float(max_seconds) <= LONGEST_SECONDS:
        raise L2AError(f"auto duration bounds {min_seconds:g}-{max_seconds:g} s are invalid: use 0 < min <= max <= "
                       f"{LONGEST_SECONDS:g} s (the official range is {MIN_SECONDS:g}-{MAX_SECONDS:g} s).")


def seconds_to_frames(seconds: float, frame_rate: float, min_seconds: float = MIN_SECONDS,
                      max_seconds: float = MAX_SECONDS, ratio: int = 8) -> int:
    """A predicted length in seconds -> a frame count on the (ratio*k + 1) grid within the bounds."""
    low = max(1, round(min_seconds * frame_rate))
    high = max(low, round(max_seconds * frame_rate))
    wanted = max(low, min(round(seconds * frame_rate), high))
    frames = (wanted - 1) // ratio * ratio + 1
    if frames < low:
        above = frames + ratio
        frames = above if above <= high or abs(above - wanted) < abs(frames - wanted) else frames
    return frames


def predict_duration(head: DurationHead, video_tokens, audio_tokens, frame_rate: float,
                     min_seconds: float = MIN_SECONDS, max_seconds: float = MAX_SECONDS, ratio: int = 8) -> Duration:
    """The head's length for one prompt from its connector outputs ([1, L, video dim], [1, L, audio dim])."""
    import torch

    check_bounds(min_seconds, max_seconds)
    module = head.module
    parameter = next(module.parameters())
    with torch.no_grad():
        seconds = module(video_tokens[:1].to(parameter.device), audio_tokens[:1].to(parameter.device))
    seconds = float(seconds.float().item())
    frames = seconds_to_frames(seconds, frame_rate, min_seconds, max_seconds, ratio)
    return Duration(frames, seconds, float(frame_rate), not min_seconds <= seconds <= max_seconds)
