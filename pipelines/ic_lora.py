"""IC-LoRAs: in-context control of the video by a reference video (canny, depth or pose maps, a clip to detail).

An IC-LoRA is trained with the tokens of a reference video next to the generated ones. The official ICLoraPipeline
encodes the reference at the size the LoRA's metadata asks for (`reference_downscale_factor`), appends it to the
video sequence as clean tokens placed on the output's grid, and applies the LoRA. `add_ic_lora` puts both on a copy
of the model: the LoRA in its chain (applied like every LoRA, only while sampling) and a `Control` holding the
reference frames, which the sampler turns into reference tokens (`sampling.reference_conditions`). Multiscale's
stage 2 runs without them (`without_controls`), as the official pipeline's does.

How a file is told to be an IC-LoRA, and its reference scales, are in `lora.ic_lora_mark` / `lora.reference_scale`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from .checks import check_number
from .components import LTX2Model
from .errors import L2AError
from .geometry import SPATIAL, TEMPORAL
from .lora import (
    LoraFile,
    ReferenceScale,
    chained,
    fit_lora,
    ic_lora_mark,
    read_lora_header,
    reference_scale,
)

_CHUNK = 16  # frames scaled at a time


@dataclass(frozen=True)
class Control:
    """An IC-LoRA's reference video on a model: the frames the sampler encodes into reference tokens."""

    adapter: str  # the LoraSpec of its IC-LoRA
    name: str  # the IC-LoRA's file name, for reports
    frames: Any  # uint8 [F, H, W, 3] on the CPU
    scale: ReferenceScale
    strength: float = 1.0  # how clean the reference tokens stay: 1 = exactly the reference
    attention: float = 1.0  # how strongly generated and reference tokens attend to each other
    mask: Any = None  # float [F or 1, H, W] in 0..1: where the reference is attended to (times `attention`)
    fps: float | None = None  # the reference's own frame rate, when it came as a video


@dataclass
class ReferencePixels:
    """One reference prepared for a generation: pixels at the reference size, the pixel attention mask, notes."""

    control: Control
    pixels: Any  # float [1, 3, F, h, w] in -1..1, F = 8k+1
    mask: Any  # float [1, 1, F, h, w] in 0..1, or None
    notes: list


def check_ic_lora(path: str | os.PathLike, model: LTX2Model) -> LoraFile:
    """Read an IC-LoRA's header and make sure it is one and that its target keys fit the loaded model (as for any
    LoRA, whatever generation its name states: Lightricks runs the 2.3 Union on 2.5)."""
    info = read_lora_header(path)
    if ic_lora_mark(info) is None:
        raise L2AError(
            f"'{info.path.name}' is a plain LoRA, not an IC-LoRA: its metadata has no reference_downscale_factor and "
            "its name does not say IC-LoRA. Load it with LTX-2 LoRA. (An IC-LoRA trained without that metadata is "
            "recognised by 'ic-lora' in its file name: rename it so, e.g. my-ic-lora-canny.safetensors.)"
        )
    return fit_lora(info, model)


def _reference_frames(frames) -> Any:
    """Any IMAGE batch [F, H, W, C] (C = 1, 3 or 4; alpha composited on black) as uint8 RGB frames on the CPU."""
    import torch

    frames = torch.as_tensor(frames).detach().to("cpu", torch.float32)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4) or frames.shape[0] < 1 or min(frames.shape[1:3]) < 1:
        raise L2AError(
            f"the reference is {list(frames.shape)}, not a batch of frames [frames, height, width, 1/3/4 channels]: "
            "connect a VIDEO (e.g. LoadVideo) or IMAGE frames."
        )
    if not torch.isfinite(frames).all():
        raise L2AError("the reference frames hold NaN or infinite values: the node that made them failed; run it "
                       "again or use another source.")
    if frames.shape[-1] == 4:
        frames = frames[..., :3] * frames[..., 3:]
    elif frames.shape[-1] == 1:
        frames = frames.expand(-1, -1, -1, 3)
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8)


def _attention_mask(mask) -> Any:
    """A MASK [F, H, W] (or [H, W]) as float in 0..1 on the CPU."""
    import torch

    mask = torch.as_tensor(mask).detach().to("cpu", torch.float32)
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3 or mask.shape[0] < 1 or min(mask.shape[1:]) < 1:
        raise L2AError(f"the attention mask is {list(mask.shape)}, not a MASK [frames, height, width]: connect a "
                       "mask (e.g. from LoadImage's mask output or a mask node).")
    if not torch.isfinite(mask).all():
        raise L2AError("the attention mask holds NaN or infinite values: the node that made it failed.")
    return mask.clamp(0, 1)


def add_ic_lora(model: LTX2Model, path: str | os.PathLike, frames, strength: float = 1.0,
                reference_strength: float = 1.0, attention_strength: float = 1.0, mask=None, fuse: bool = False,
                fps: float | None = None) -> LTX2Model:
    """A shallow copy of `model` with an IC-LoRA in its chain and its reference video (`frames`: IMAGE frames, F x H
    x W x C in 0..1) as a control; `model` itself is left as it is."""
    check_number("IC-LoRA strength", strength, hint="1 = as trained, 0 = off")
    check_number("reference strength", reference_strength, 0.0, 1.0, "1 = the reference is kept exactly")
    check_number("attention strength", attention_strength, 0.0, 1.0,
                 "1 = full attention to the reference, 0 = the reference is ignored")
    info = check_ic_lora(path, model)
    scale = reference_scale(info)
    for other in model.controls:
        if (other.scale.spatial, other.scale.temporal) != (scale.spatial, scale.temporal):
            raise L2AError(
                f"'{info.path.name}' wants references at 1/{scale.spatial} size and 1/{scale.temporal} frame rate, "
                f"but '{other.name}' in this model's chain wants 1/{other.scale.spatial} and 1/{other.scale.temporal}: "
                "IC-LoRAs with different reference scales cannot be combined (as in the official pipeline)."
            )
    control_frames = _reference_frames(frames)
    control_mask = None if mask is None else _attention_mask(mask)
    with_lora = chained(model, info, strength, fuse)
    control = Control(adapter=with_lora.loras[-1].adapter, name=info.path.name, frames=control_frames, scale=scale,
                      strength=float(reference_strength), attention=float(attention_strength), mask=control_mask,
                      fps=None if fps is None else float(fps))
    return replace(with_lora, controls=[*model.controls, control])


def without_controls(model: LTX2Model) -> LTX2Model:
    """The model without its IC-LoRAs and their references (multiscale's stage 2, as officially)."""
    if not model.controls:
        return model
    adapters = {control.adapter for control in model.controls}
    return replace(model, loras=[spec for spec in model.loras if spec.adapter not in adapters], controls=[])


def check_reference_size(model: LTX2Model, width: int, height: int) -> None:
    """The reference size each control asks for must be whole and a multiple of 32 (the VAE's grid)."""
    for control in model.controls:
        s = control.scale.spatial
        if s == 1:
            continue
        if width % (SPATIAL * s) or height % (SPATIAL * s):
            raise L2AError(
                f"{width}x{height} cannot hold the reference of '{control.name}': it is encoded at 1/{s} of the "
                f"output size ({control.scale.source}), which must be a multiple of {SPATIAL}. Use a width and "
                f"height that are multiples of {SPATIAL * s} (twice that for multiscale, whose first stage is at "
                "half size)."
            )


def reference_pixels(control: Control, width: int, height: int, num_frames: int, at: int = 0, start: int = 0,
                     fps: float | None = None) -> ReferencePixels | None:
    """A control's frames for a generation of `num_frames` at width x height, with what changed in `notes`.

    The control's frame `start` goes to output frame `at` (extend: the first new frame); longer references are
    trimmed, shorter ones accepted, as officially; frames are taken 1:1 whatever their frame rate (as officially),
    subsampled by the LoRA's temporal scale, cut to 8k+1 (what the VAE encodes), and scaled to cover the reference
    size and centre-cropped. None when the control has no frame for this generation.
    """
    import torch

    from .media import cover_frames

    s, t = control.scale.spatial, control.scale.temporal
    ref_w, ref_h = width // s, height // s
    frames = control.frames[start:]
    room = num_frames - at
    label = f"reference of {control.name}"
    if frames.shape[0] == 0 or room <= 0:
        return None
    notes = []
    given = frames.shape[0]
    if given > room:
        frames = frames[:room]
        notes.append(f"{given} frames trimmed to the {room} it covers")
    elif given < room:
        notes.append(f"its {given} frames cover {given} of the {room} (the rest follows the prompt)")
    if control.fps is not None and fps is not None and abs(control.fps - fps) > 1e-3:
        notes.append(f"its {control.fps:g} fps frames taken one per output frame at {fps:g} fps")
    picked = list(range(frames.shape[0]))
    if t > 1:
        picked = [0, *range(1, frames.shape[0], t)]
    kept = (len(picked) - 1) // TEMPORAL * TEMPORAL + 1
    if kept < len(picked):
        notes.append(f"the last {len(picked) - kept} of its {len(picked)} frames dropped (8k+1 are encoded)")
    picked = picked[:kept]
    src_h, src_w = int(frames.shape[1]), int(frames.shape[2])
    if (src_w, src_h) != (ref_w, ref_h):
        how = "scaled" if src_w * ref_h == src_h * ref_w else "scaled to cover and centre-cropped"
        notes.append(f"{src_w}x{src_h} {how} to {ref_w}x{ref_h}"
                     + (f" (1/{s} of {width}x{height}, {control.scale.source})" if s != 1 else ""))
    fitted = [cover_frames(frames[picked[i:i + _CHUNK]].permute(0, 3, 1, 2).to(torch.float32), ref_w, ref_h)
              for i in range(0, len(picked), _CHUNK)]  # a chunk at a time: full-size float frames add up
    pixels = (torch.cat(fitted) / 127.5 - 1.0).permute(1, 0, 2, 3)[None]
    mask = None
    if control.mask is not None:
        mask = _mask_frames(control, start, len(frames), picked, ref_w, ref_h, notes)
    return ReferencePixels(control, pixels, mask, [f"{label}: {'; '.join(notes)}"] if notes else [])


def _mask_frames(control: Control, start: int, count: int, picked: list, width: int, height: int, notes: list):
    """The attention mask's frames lined up with the reference's: one frame is used for all, a shorter mask repeats
    its last frame (said), then the same frames as the reference, scaled to cover its size."""
    import torch

    from .media import cover_frames

    mask = control.mask
    if mask.shape[0] == 1:
        mask = mask.expand(count, -1, -1)
    else:
        mask = mask[start:start + count]
        if mask.shape[0] < count:
            if mask.shape[0] == 0:
                mask = control.mask[-1:]
            notes.append(f"its attention mask has {mask.shape[0]} frames for {count}: the last one holds for the "
                         "rest")
            mask = torch.cat([mask, mask[-1:].expand(count - mask.shape[0], -1, -1)])
    resized = cover_frames(mask[picked][:, None].to(torch.float32), width, height)
    return resized.permute(1, 0, 2, 3)[None].clamp(0, 1)


def latent_mask(mask, frames: int, height: int, width: int):
    """A pixel attention mask [1, 1, F, H, W] as one weight per reference token [1, frames * height * width]: area
    averaged over each latent cell, the first frame alone and then 8 frames per latent frame (causal), as the
    official `downsample_mask_video_to_latent`."""
    import torch

    pixel_frames = mask.shape[2]
    area = torch.nn.functional.interpolate(mask[0].permute(1, 0, 2, 3), size=(height, width), mode="area")
    area = area.permute(1, 0, 2, 3)[None]  # [1, 1, F, height, width]
    first = area[:, :, :1]
    if pixel_frames > 1 and frames > 1:
        step = (pixel_frames - 1) // (frames - 1)
        rest = area[:, :, 1:].unflatten(2, (frames - 1, step)).mean(dim=3)
        area = torch.cat([first, rest], dim=2)
    else:
        area = first
    return area.flatten(1)


def control_notes(model: LTX2Model) -> list[str]:
    """What the model's controls are, for reports: file, reference scale and where it came from, strengths."""
    notes = []
    for control in model.controls:
        strength = next((s.strength for s in model.loras if s.adapter == control.adapter), 1.0)
        scale = f"references at 1/{control.scale.spatial} size"
        if control.scale.temporal != 1:
            scale += f" and 1/{control.scale.temporal} frame rate"
        parts = [f"IC-LoRA {control.name} x{strength:g}", f"{scale} ({control.scale.source})",
                 f"{control.frames.shape[0]} reference frames, strength {control.strength:g}, attention "
                 f"{control.attention:g}" + (" with a mask" if control.mask is not None else "")]
        notes.append(", ".join(parts))
    return notes
