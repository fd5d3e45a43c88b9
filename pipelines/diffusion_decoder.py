"""LTX-2.5's diffusion video decoder: loading (official file or diffusers folder), tiled decode, progress and cost.

The decoder (diffusers' LTX2VideoDiffusionDecoderModel, 417 M parameters) turns the same latents as the conv VAE
into pixels with neighborhood-attention stages and a one-step diffusion stage that denoises pixel noise. It is the
default decoder of the official and ComfyUI 2.5 workflows; the pack keeps the conv decoder as the default (it is
cheaper, see `decode_cost`) and offers this one as an option of the decode.

Files. The official `ltx-2.5-video-vae-bf16.safetensors` (models/vae) holds the encoder, this decoder and the latent
statistics under bare `encoder.*` / `decoder.*` / `per_channel_statistics.*` names (or with a `vae.` prefix), and
its configuration as `config.vae` metadata (`_class_name` "CausalDiffusionVAE", hyper-parameters under `decoder`).
Its keys are ltx-core's: fused `attn.qkv`, `attn.proj`, `q_norm`/`k_norm`, `t_embedder.mlp.{0,2}`, static gates
(`gate_msa`, `gate_mlp`, `gate_ctx`) that ltx-core folds into the following linear layer, and a preview head
(`coarse_*`) it drops; they are converted here the same way. A diffusers folder (`diffusion_decoder/` of
Lightricks/LTX-2.5-Diffusers, or that folder alone) loads as it is. The conv VAE file
(`ltx-2.5-video-vae-conv-bf16.safetensors`, "CausalVideoAutoencoder") has no diffusion decoder.

Decode. Attention runs through `neighborhood.NeighborhoodSDPAProcessor` (exactly NATTEN's window rule with PyTorch's
SDPA: no kernel download, no compile, bounded memory). Latents smaller than the decoder's kernels are edge-padded
first and the pixels cropped after, as ltx-core does (`ensure_min_latent_shape`). Tiling is diffusers' own: the
cheap first stages see the whole latent, the last deterministic stage and the diffusion stage run on overlapping
tiles blended linearly. The decoder draws its pixel noise from a generator seeded with the latent's seed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import L2AError
from .weights import SAFETENSORS_SUFFIXES, config_section, parameters_on_meta, read_safetensors_header, resolve_dtype

DIFFUSION_CLASS = "CausalDiffusionVAE"
CONV_CLASS = "CausalVideoAutoencoder"
FOLDER = "diffusion_decoder"
OFFICIAL_FILE = "ltx-2.5-video-vae-bf16.safetensors"
CONV_FILE = "ltx-2.5-video-vae-conv-bf16.safetensors"
# ltx-core DiffusionVideoDecoder's defaults, used for what a file's configuration leaves out.
_OFFICIAL_DEFAULTS = {
    "in_channels": 128, "out_channels": 3, "patch_size": 4, "head_dim": 64,
    "stage_channels": (1024, 512, 256, 256, 128), "stage_depths": (4, 6, 4, 2, 8),
    "stage_kernels": ((3, 7, 7), (3, 7, 7), (3, 5, 5), (3, 5, 5), (3, 3, 3)),
    "upsamples": (((1, 2, 2), 2), ((2, 1, 1), 2), ((2, 2, 2), 1), ((2, 2, 2), 2)),
    "stage5_kernel": (3, 7, 7), "t_emb_dim": 384, "default_num_inference_steps": 2,
    "timestep_scale_multiplier": 1.0, "model_output_type": "v",
}
_GATES = (("gate_msa", ".attn.proj."), ("gate_mlp", ".mlp.w_down."), ("gate_ctx", ".context_proj."))
_RENAMES = ((".attn.proj.", ".attn.to_out.0."), (".attn.q_norm.", ".attn.norm_q."), (".attn.k_norm.", ".attn.norm_k."),
            ("t_embedder.mlp.0.", "t_embedder.timestep_embedder.linear_1."),
            ("t_embedder.mlp.2.", "t_embedder.timestep_embedder.linear_2."))
_STATISTICS = {"mean-of-means": "latents_mean", "std-of-means": "latents_std"}


@dataclass
class DiffusionDecoder:
    """A loaded diffusion video decoder and where it came from."""

    module: Any
    source: str

    @property
    def steps(self) -> int:
        return int(self.module.config.decoder_num_inference_steps)


# ---- files --------------------------------------------------------------------------------------------------------

def video_vae_kind(path: str | os.PathLike) -> str:
    """'diffusion' or 'conv' for a video VAE file, from its header (its `config.vae._class_name`, else its keys)."""
    return _vae_kind(*read_safetensors_header(path))


def _vae_kind(entries: Mapping[str, Any], metadata: Mapping[str, str]) -> str:
    name = config_section(metadata, "vae").get("_class_name")
    if name:
        return "diffusion" if name != CONV_CLASS else "conv"
    diffusion_keys = ("decoder.diff_blocks.", "decoder.det_stages.")
    return "diffusion" if any(marker in key for key in entries for marker in diffusion_keys) else "conv"


def diffusers_config(vae_config: Mapping[str, Any]) -> dict:
    """The LTX2VideoDiffusionDecoderModel configuration of an official `config.vae` (ltx-core's defaults filling the
    gaps, as its configurator does)."""
    decoder = dict(vae_config.get("decoder", vae_config))
    value = lambda key, *alts: next((decoder[k] for k in (key, *alts) if k in decoder), _OFFICIAL_DEFAULTS[key])  # noqa: E731
    stage_channels = tuple(value("stage_channels"))
    stage5 = decoder.get("stage5_channels", stage_channels[-1])
    if stage5 != stage_channels[-1]:
        raise L2AError(f"this diffusion decoder's stage-5 width ({stage5}) differs from its last stage's "
                       f"({stage_channels[-1]}), a layout diffusers cannot build: use {OFFICIAL_FILE}.")
    upsamples = [(tuple(stride), int(reduction)) for stride, reduction in value("upsamples")]
    return {
        "out_channels": int(value("out_channels")),
        "latent_channels": int(decoder.get("in_channels", vae_config.get("latent_channels", 128))),
        "patch_size": int(value("patch_size")),
        "decoder_head_dim": int(value("head_dim", "na_head_dim")),
        "decoder_stage_channels": stage_channels,
        "decoder_stage_depths": tuple(value("stage_depths")),
        "decoder_stage_kernels": tuple(tuple(k) for k in value("stage_kernels")[: len(upsamples)]),
        "decoder_upsample_strides": tuple(stride for stride, _ in upsamples),
        "decoder_upsample_channel_reductions": tuple(reduction for _, reduction in upsamples),
        "decoder_stage5_kernel": tuple(value("stage5_kernel")),
        "decoder_t_emb_dim": int(value("t_emb_dim")),
        "decoder_timestep_scale_multiplier": float(value("timestep_scale_multiplier")),
        "decoder_model_output_type": vae_config.get("model_output_type", _OFFICIAL_DEFAULTS["model_output_type"]),
        "decoder_num_inference_steps": int(value("default_num_inference_steps")),
    }


def official_config(config: Mapping[str, Any]) -> dict:
    """The official `config.vae` describing a diffusers decoder configuration (the inverse of diffusers_config)."""
    kernels = [list(k) for k in config["decoder_stage_kernels"]]
    return {
        "_class_name": DIFFUSION_CLASS,
        "latent_channels": config["latent_channels"],
        "model_output_type": config["decoder_model_output_type"],
        "encoder": {},
        "decoder": {
            "in_channels": config["latent_channels"], "out_channels": config["out_channels"],
            "patch_size": config["patch_size"], "head_dim": config["decoder_head_dim"],
            "stage_channels": list(config["decoder_stage_channels"]),
            "stage_depths": list(config["decoder_stage_depths"]),
            "stage_kernels": kernels + [kernels[-1]],  # ltx-core lists one per stage; the fifth is unused
            "upsamples": [[list(s), r] for s, r in zip(config["decoder_upsample_strides"],
                                                       config["decoder_upsample_channel_reductions"])],
            "stage5_kernel": list(config["decoder_stage5_kernel"]), "t_emb_dim": config["decoder_t_emb_dim"],
            "default_num_inference_steps": config["decoder_num_inference_steps"],
            "timestep_scale_multiplier": config["decoder_timestep_scale_multiplier"],
        },
    }


def _decoder_key(key: str) -> str | None:
    for prefix in ("vae.decoder.", "decoder."):
        if key.startswith(prefix):
            return key[len(prefix):]
    return None


def convert_official(state: Mapping[str, Any]) -> dict:
    """ltx-core decoder keys -> diffusers' (`decoder.` + module path, latent statistics as buffers): fused QKV
    split, static gates folded into the linear layer after them, the preview head dropped."""
    import torch

    raw = {}
    for key, tensor in state.items():
        inner = _decoder_key(key)
        if inner is not None and not inner.startswith("coarse_"):
            raw[inner] = tensor
        for prefix in ("vae.per_channel_statistics.", "per_channel_statistics."):
            name = _STATISTICS.get(key[len(prefix):]) if key.startswith(prefix) else None
            if name:
                raw[name] = tensor
    gates = {key: raw.pop(key) for key in [k for k in raw if k.rsplit(".", 1)[-1] in dict(_GATES)]}
    out = {}
    for key, tensor in raw.items():
        if key in _STATISTICS.values():
            out[key] = tensor
            continue
        gate_key = next((key.split(target)[0] + "." + gate for gate, target in _GATES if target in key), None)
        if gate_key in gates:
            gate = gates[gate_key].float()
            tensor = ((gate[:, None] if tensor.ndim == 2 else gate) * tensor.float()).to(tensor.dtype)
        if ".attn.qkv." in key:
            head, leaf = key.split(".attn.qkv.")
            if leaf.startswith(("to_q.", "to_k.", "to_v.")):
                out[f"decoder.{head}.attn.{leaf}"] = tensor
            else:
                for name, part in zip(("to_q", "to_k", "to_v"), torch.chunk(tensor, 3, dim=0)):
                    out[f"decoder.{head}.attn.{name}.{leaf}"] = part
            continue
        for old, new in _RENAMES:
            key = key.replace(old, new)
        out[f"decoder.{key}"] = tensor
    return out


def to_official(state: Mapping[str, Any]) -> dict:
    """diffusers decoder state -> the official file's keys (`decoder.*` with fused QKV, `per_channel_statistics.*`);
    the inverse of convert_official for a decoder without gates (used to write the tiny model's file)."""
    import torch

    out = {}
    for key, tensor in state.items():
        if key in _STATISTICS.values():
            name = next(k for k, v in _STATISTICS.items() if v == key)
            out[f"per_channel_statistics.{name}"] = tensor
            continue
        inner = key[len("decoder."):]
        if ".attn.to_q." in inner:
            head, leaf = inner.split(".attn.to_q.")
            parts = [state[f"decoder.{head}.attn.{name}.{leaf}"] for name in ("to_q", "to_k", "to_v")]
            out[f"decoder.{head}.attn.qkv.{leaf}"] = torch.cat(parts, dim=0)
            continue
        if ".attn.to_k." in inner or ".attn.to_v." in inner:
            continue
        for old, new in _RENAMES:
            inner = inner.replace(new, old)
        out[f"decoder.{inner}"] = tensor
    return out


def _folder(path: Path) -> Path:
    if (path / FOLDER / "config.json").is_file():
        return path / FOLDER
    config = path / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("_class_name") == "LTX2VideoDiffusionDecoderModel":
        return path
    raise L2AError(f"'{path}' holds no diffusion decoder: give the diffusers folder '{FOLDER}' (with its "
                   f"config.json) of LTX-2.5-Diffusers, or the official {OFFICIAL_FILE} from models/vae.")


def load_diffusion_decoder(path: str | os.PathLike, dtype: Any = "bf16", device: Any = "cpu") -> DiffusionDecoder:
    """Load the diffusion decoder from the official video VAE file or a diffusers folder (nothing downloaded)."""
    import torch
    from diffusers import LTX2VideoDiffusionDecoderModel

    path = Path(path)
    target = resolve_dtype(dtype)
    if path.is_dir():
        module = LTX2VideoDiffusionDecoderModel.from_pretrained(str(_folder(path)), torch_dtype=target,
                                                               local_files_only=True)
    else:
        if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
            raise L2AError(f"'{path.name}' is not a safetensors file: use {OFFICIAL_FILE} (models/vae).")
        entries, metadata = read_safetensors_header(path)
        if _vae_kind(entries, metadata) != "diffusion":
            raise L2AError(
                f"'{path.name}' is the conv video VAE, which has no diffusion decoder: put {OFFICIAL_FILE} "
                f"(Lightricks/LTX-2.5, vae/) in models/vae to decode with the diffusion decoder, or use the conv "
                "decoder.")
        from safetensors import safe_open

        config = diffusers_config(config_section(metadata, "vae"))
        with parameters_on_meta():
            module = LTX2VideoDiffusionDecoderModel(**config)
        with safe_open(str(path), framework="pt", device="cpu") as file:  # the decoder's tensors, not the encoder's
            state = convert_official({key: file.get_tensor(key) for key in entries
                                      if _decoder_key(key) is not None or "per_channel_statistics." in key})
        expected = set(module.state_dict())
        missing = sorted(expected - set(state) - set(_STATISTICS.values()))
        if missing:
            raise L2AError(f"'{path.name}' lacks {len(missing)} tensors of the diffusion decoder (e.g. "
                           f"'{missing[0]}'): it is damaged or of another model. Use {OFFICIAL_FILE}.")
        state = {k: v.to(target) if v.is_floating_point() and k not in _STATISTICS.values() else v
                 for k, v in state.items() if k in expected}
        module.load_state_dict(state, strict=False, assign=True)
    return DiffusionDecoder(module.to(torch.device(device)).eval(), str(path))


# ---- decoding -----------------------------------------------------------------------------------------------------

def _cumulative_strides(config) -> list[tuple[int, int, int]]:
    strides, total = [(1, 1, 1)], (1, 1, 1)
    for stride in config.decoder_upsample_strides:
        total = tuple(a * b for a, b in zip(total, stride))
        strides.append(total)
    return strides


def min_latent_shape(config) -> tuple[int, int, int]:
    """The smallest latent (T, H, W) every stage's neighborhood attention accepts (ltx-core's
    `all_stages_min_tile_size`): each stage's grid at least its kernel."""
    strides = _cumulative_strides(config)
    kernels = [*config.decoder_stage_kernels, config.decoder_stage5_kernel]
    return tuple(max(-(-kernel[axis] // stride[axis]) for kernel, stride in zip(kernels, strides))
                 for axis in range(3))


def _pad_to_min(latent, minimum: tuple[int, int, int]):
    """Edge-pad a latent [B, C, T, H, W] to `minimum` (time at the end, space on both sides, the larger half
    after) and return it with the (before, after) pads of H and W."""
    import torch

    pads = []
    for axis, size in zip((2, 3, 4), minimum):
        need = max(0, size - latent.shape[axis])
        before = 0 if axis == 2 else need // 2
        pads.append((before, need - before))
        if need:
            first, last = latent.narrow(axis, 0, 1), latent.narrow(axis, latent.shape[axis] - 1, 1)
            shape = list(latent.shape)
            parts = []
            if before:
                shape[axis] = before
                parts.append(first.expand(shape))
            parts.append(latent)
            shape[axis] = need - before
            parts.append(last.expand(shape))
            latent = torch.cat(parts, dim=axis)
    return latent, pads[1:]


def _reach(config) -> tuple[int, int, int]:
    """How far (in cells of the grid entering the last deterministic stage) an output depends on its neighbours:
    ltx-core's tile halos of stage 4 and of the diffusion stage, added."""
    kernel4, kernel5 = config.decoder_stage_kernels[-1], config.decoder_stage5_kernel
    depth4, depth5 = config.decoder_stage_depths[-2], config.decoder_stage_depths[-1]
    last = config.decoder_upsample_strides[-1]
    return tuple(depth4 * (kernel4[a] // 2) + -(-(depth5 * (kernel5[a] // 2)) // last[a]) for a in range(3))


def _tiles(length: int, tile: int, reach: int, minimum: int) -> list[tuple[int, int, int, int]]:
    """(kept start, kept end, computed start, computed end) along one axis: kept parts of `tile` cells side by
    side, each computed with `reach` cells of context on both sides (and at least `minimum` cells)."""
    tile = max(tile, 1)
    out = []
    for start in range(0, length, tile):
        end = min(start + tile, length)
        lo, hi = max(0, start - reach), min(length, end + reach)
        while hi - lo < minimum:
            lo, hi = max(0, lo - 1), min(length, hi + 1)
        out.append((start, end, lo, hi))
    return out


@dataclass(frozen=True)
class _Plan:
    """The decode of one latent: grid entering the last deterministic stage, pixel scale and tiles per axis."""

    cells: tuple[int, int, int]
    scale: tuple[int, int, int]  # pixels per cell (T, H, W); a temporal 2 maps cell c to frames 2c-1, 2c
    tiles: tuple[list, list, list]

    def pixel(self, axis: int, cell: int) -> int:
        scale = self.scale[axis]
        return max(0, cell * scale - 1) if axis == 0 and scale == 2 else cell * scale

    @property
    def count(self) -> int:
        return math.prod(len(t) for t in self.tiles)


def _plan(module, latent_shape, tiling) -> _Plan:
    config = module.config
    before_last = _cumulative_strides(config)[-2]
    last = config.decoder_upsample_strides[-1]
    frames, height, width = latent_shape[-3:]
    cells = ((frames - 1) * before_last[0] + 1, height * before_last[1], width * before_last[2])
    scale = (last[0], last[1] * config.patch_size, last[2] * config.patch_size)
    whole = (cells[0], cells[1], cells[2])
    if tiling is not None and (tiling.spatial or tiling.temporal):
        size = (tiling.tile_frames // scale[0] if tiling.temporal else cells[0],
                tiling.tile_size // scale[1] if tiling.spatial else cells[1],
                tiling.tile_size // scale[2] if tiling.spatial else cells[2])
    else:
        size = whole
    kernel4, kernel5 = config.decoder_stage_kernels[-1], config.decoder_stage5_kernel
    minimum = [max(kernel4[a], -(-kernel5[a] // last[a])) for a in range(3)]
    reach = _reach(config)
    tiles = tuple(_tiles(cells[a], size[a], reach[a], minimum[a]) for a in range(3))
    return _Plan(cells, scale, tiles)


def planned_blocks(module, latent_shape: tuple[int, ...], tiling=None) -> int:
    """How many neighborhood-attention blocks a decode of a latent of `latent_shape` runs (the progress total)."""
    depths = module.config.decoder_stage_depths
    steps = int(module.config.decoder_num_inference_steps)
    return sum(depths[:-2]) + _plan(module, latent_shape, tiling).count * (depths[-2] + depths[-1] * steps)


def _decode(module, latent, generator, tiling):
    """Pixels [B, 3, F, H, W] (float32, CPU) of a latent already at least the minimum shape."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    decoder = module.decoder
    steps = int(module.config.decoder_num_inference_steps)
    plan = _plan(module, latent.shape, tiling)
    features = decoder.forward_stages_1_to_3(latent)
    ghost = features.shape[1] - plan.cells[0]
    shape = (latent.shape[0], decoder.out_channels, *(plan.pixel(a, plan.cells[a]) for a in range(3)))
    # One noise canvas for the whole video, drawn on the CPU: tiles take their part of it, so a tiled decode sees
    # the noise an untiled one does (and the frames do not depend on the device).
    noise = randn_tensor(shape, generator=generator, device=torch.device("cpu"), dtype=latent.dtype)
    if plan.count == 1:
        context = decoder.forward_stage_4(features)
        return decoder.denoise(context, noise.to(latent.device), steps).float().cpu()
    out = torch.empty(shape, dtype=torch.float32)
    for (kt0, kt1, t0, t1) in plan.tiles[0]:
        origin, trailing = t0 == 0, t1 == plan.cells[0]
        for (kh0, kh1, h0, h1) in plan.tiles[1]:
            for (kw0, kw1, w0, w1) in plan.tiles[2]:
                context = decoder.forward_stage_4(
                    features[:, t0:t1 + (ghost if trailing else 0), h0:h1, w0:w1],
                    drop_leading_frame=origin, crop_trailing_ghost=trailing)
                region = [(plan.pixel(a, lo), plan.pixel(a, hi)) for a, (lo, hi) in enumerate(((t0, t1), (h0, h1),
                                                                                               (w0, w1)))]
                x_t = noise[:, :, slice(*region[0]), slice(*region[1]), slice(*region[2])].to(latent.device)
                pixels = decoder.denoise(context, x_t, steps)
                keep = [(plan.pixel(a, lo), plan.pixel(a, hi)) for a, (lo, hi) in enumerate(((kt0, kt1), (kh0, kh1),
                                                                                             (kw0, kw1)))]
                part = pixels[:, :, keep[0][0] - region[0][0]:keep[0][1] - region[0][0],
                              keep[1][0] - region[1][0]:keep[1][1] - region[1][0],
                              keep[2][0] - region[2][0]:keep[2][1] - region[2][0]]
                out[:, :, slice(*keep[0]), slice(*keep[1]), slice(*keep[2])] = part.float().cpu()
    return out


def decode_video_diffusion(decoder: DiffusionDecoder, video, seed: int, tiling=None, device: Any = None,
                           on_progress: Callable[[int, int], None] | None = None):
    """Raw video latent [1, C, F, H, W] -> ComfyUI IMAGE [F', H', W', 3] float32 in 0..1 on the CPU.

    `on_progress(done, total)` runs before every attention block (progress, and Cancel by raising); `tiling` is a
    decoding.Tiling (None: untiled; its overlaps are not used: each tile is computed with the decoder's whole reach
    around it, so tiles meet without a seam). The same latent and seed give the same frames.
    """
    import torch

    from .neighborhood import NeighborhoodSDPAProcessor

    module = decoder.module
    device = torch.device(device) if device is not None else next(module.parameters()).device
    if next(module.parameters()).device != device:
        module.to(device)
    module.set_attn_processor(NeighborhoodSDPAProcessor())
    if tiling is not None:
        tiling.check()
    frames_in, height_in, width_in = video.shape[-3:]
    latent, (pad_h, pad_w) = _pad_to_min(video.to(device, module.dtype), min_latent_shape(module.config))
    total = planned_blocks(module, latent.shape, tiling)
    done = [0]

    def tick(_module, _args):
        if on_progress is not None:
            on_progress(done[0], total)
        done[0] += 1

    blocks = [b for stage in module.decoder.det_stages for b in stage] + list(module.decoder.diff_blocks)
    handles = [block.register_forward_pre_hook(tick) for block in blocks]
    try:
        generator = torch.Generator("cpu").manual_seed(int(seed))
        with torch.no_grad():
            pixels = _decode(module, latent, generator, tiling)
    finally:
        for handle in handles:
            handle.remove()
    if on_progress is not None:
        on_progress(total, total)
    ratio_t, ratio_s = module.temporal_compression_ratio, module.spatial_compression_ratio
    out_frames = (frames_in - 1) * ratio_t + 1
    top, left = pad_h[0] * ratio_s, pad_w[0] * ratio_s
    pixels = pixels[0, :, :out_frames, top:top + height_in * ratio_s, left:left + width_in * ratio_s]
    return pixels.mul_(0.5).add_(0.5).clamp_(0, 1).permute(1, 2, 3, 0)
