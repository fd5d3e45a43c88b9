"""The LTX-2 denoising loop, owned by the pack.

It mirrors diffusers' LTX-2 pipelines step for step (so `schedule="diffusers"` reproduces them) and adds what
they lack: the official fixed-shift schedule, per-token clean masks for video *and* audio, guidance terms that
can really be switched off, and progress/preview/cancel hooks. Latents come out raw (VAE space), like
diffusers' `output_type="latent"`.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from .errors import L2AError
from .families import DISTILLED_SIGMAS, Guidance
from .geometry import Geometry, audio_latent_frames, make_geometry
from .schedules import SCHEDULES, diffusers_sigmas, fixed_sigmas, official_sigmas

MAX_SEED = 0xFFFF_FFFF_FFFF_FFFF
MAX_STEPS = 200


@dataclass(frozen=True)
class SamplerSettings:
    width: int = 768
    height: int = 512
    num_frames: int = 121
    fps: float = 24.0
    steps: int = 0  # 0: the model's default
    seed: int = -1  # -1: a fresh random seed, reported back
    guidance: Guidance | None = None  # None: the model's default (full for dev, off for distilled)
    stg_blocks: tuple[int, ...] | None = None  # None: the model's default
    schedule: str = "official"
    generate_audio: bool = True


@dataclass
class Latent:
    """What travels on an L2A_LATENT socket: raw video [B,C,F',H',W'] and audio [B,C,L,M] latents."""

    video: Any
    audio: Any
    width: int
    height: int
    num_frames: int
    fps: float
    seed: int
    has_audio: bool = True
    report: str = ""
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """A validated request: everything decided before the first tensor is touched."""

    geometry: Geometry
    seed: int
    sigmas: Any
    schedule: str
    guidance: Guidance
    stg_blocks: tuple[int, ...]
    use_cross_timestep: bool
    generate_audio: bool
    notes: tuple[str, ...]

    def report(self) -> str:
        g = self.guidance
        steps = len(self.sigmas) - 1
        parts = [
            f"seed {self.seed}",
            f"{steps} steps ({self.schedule} schedule)",
            f"guidance video cfg {g.video_cfg:g} / audio cfg {g.audio_cfg:g}, stg {g.stg_scale:g}/{g.audio_stg_scale:g}"
            f" on blocks {list(self.stg_blocks)}, modality {g.modality_scale:g}/{g.audio_modality_scale:g},"
            f" rescale {g.rescale:g}/{g.audio_rescale:g}",
            f"{self.geometry.width}x{self.geometry.height}, {self.geometry.num_frames} frames @ {self.geometry.fps:g} fps"
            f" ({self.geometry.duration:.2f} s)",
        ]
        if not self.generate_audio:
            parts.append("audio off")
        return " | ".join(parts + list(self.notes))


def resolve_seed(seed: int) -> int:
    return secrets.randbelow(2**53) if seed == -1 else int(seed)


def check_settings(settings: SamplerSettings) -> Geometry:
    """The checks that need no model, so a caller can run them before loading one."""
    geometry = make_geometry(settings.width, settings.height, settings.num_frames, settings.fps)
    if settings.schedule not in SCHEDULES:
        raise L2AError(f"schedule = {settings.schedule!r} is unknown: use one of {', '.join(SCHEDULES)}.")
    if not 0 <= settings.steps <= MAX_STEPS:
        raise L2AError(f"steps = {settings.steps} is out of range: use 1 to {MAX_STEPS}, or 0 for the model's default.")
    if settings.seed != -1 and not 0 <= settings.seed <= MAX_SEED:
        raise L2AError(f"seed = {settings.seed} is out of range: use 0 to {MAX_SEED}, or -1 for a random seed.")
    return geometry


def plan(model, settings: SamplerSettings) -> Plan:
    """Check every setting against the loaded model and decide the schedule, before any heavy work."""
    geometry = check_settings(settings)
    num_layers = model.transformer.config.num_layers
    stg_blocks = model.family.stg_blocks if settings.stg_blocks is None else tuple(settings.stg_blocks)
    bad = [b for b in stg_blocks if not 0 <= b < num_layers]
    if bad:
        raise L2AError(
            f"STG blocks {bad} do not exist in {model.family.label}: it has blocks 0 to {num_layers - 1}; "
            f"the official choice is {list(model.family.stg_blocks)}."
        )
    distilled = model.variant == "distilled"
    if settings.guidance is not None:
        guidance = settings.guidance
    else:
        guidance = Guidance.off() if distilled else model.family.guidance
    notes = list(geometry.notes)
    if settings.steps == 0 and distilled:
        sigmas = fixed_sigmas(DISTILLED_SIGMAS)
        schedule = "distilled"
    else:
        steps = settings.steps or model.family.steps
        if settings.schedule == "official":
            sigmas = official_sigmas(steps)
        else:
            tokens = geometry.latent_frames * geometry.latent_height * geometry.latent_width
            sigmas = diffusers_sigmas(steps, tokens, model.scheduler_config)
        schedule = settings.schedule
    return Plan(
        geometry=geometry,
        seed=resolve_seed(settings.seed),
        sigmas=sigmas,
        schedule=schedule,
        guidance=guidance,
        stg_blocks=stg_blocks,
        use_cross_timestep=model.family.use_cross_timestep,
        generate_audio=settings.generate_audio,
        notes=tuple(notes),
    )


def pack_video(latents):
    """[B, C, F, H, W] -> [B, F*H*W, C] (patch size 1, as all LTX-2 checkpoints use)."""
    return latents.flatten(2).transpose(1, 2)


def unpack_video(tokens, frames: int, height: int, width: int):
    return tokens.transpose(1, 2).unflatten(2, (frames, height, width))


def pack_audio(latents):
    """[B, C, L, M] -> [B, L, C*M]."""
    return latents.transpose(1, 2).flatten(2, 3)


def unpack_audio(tokens, mel_bins: int):
    return tokens.unflatten(2, (-1, mel_bins)).transpose(1, 2)


def normalize_video(latents, vae):
    mean = vae.latents_mean.view(1, -1, 1, 1, 1).to(latents.device, latents.dtype)
    std = vae.latents_std.view(1, -1, 1, 1, 1).to(latents.device, latents.dtype)
    return (latents - mean) * vae.config.scaling_factor / std


def denormalize_video(latents, vae):
    mean = vae.latents_mean.view(1, -1, 1, 1, 1).to(latents.device, latents.dtype)
    std = vae.latents_std.view(1, -1, 1, 1, 1).to(latents.device, latents.dtype)
    return latents * std / vae.config.scaling_factor + mean


def normalize_audio_tokens(tokens, audio_vae):
    return (tokens - audio_vae.latents_mean.to(tokens.device, tokens.dtype)) / audio_vae.latents_std.to(
        tokens.device, tokens.dtype
    )


def denormalize_audio_tokens(tokens, audio_vae):
    return tokens * audio_vae.latents_std.to(tokens.device, tokens.dtype) + audio_vae.latents_mean.to(
        tokens.device, tokens.dtype
    )


def encode_image_latent(model, pixels, width: int, height: int):
    """A conditioning image, fitted to the target size, as a normalized latent [1, C, 1, H/32, W/32]."""
    import numpy as np
    import torch

    from .media import fit_image

    fitted = fit_image(pixels, width, height).astype(np.float32) / 255.0
    image = torch.from_numpy(2.0 * fitted - 1.0).permute(2, 0, 1)[None, :, None]
    vae = model.vae
    with torch.no_grad():
        latent = vae.encode(image.to(model.device, vae.dtype)).latent_dist.mode()
    return normalize_video(latent.to(torch.float32), vae)


def v_pos(prediction, batched: bool):
    """The conditional half of a [uncond, cond] batched prediction."""
    return prediction.chunk(2)[1] if batched else prediction


def _rescale(guided, cond, factor: float):
    """Guidance rescale (Lin et al. 2023): pull the guided prediction's std back towards the conditional one."""
    dims = list(range(1, cond.ndim))
    rescaled = guided * (cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True))
    return factor * rescaled + (1 - factor) * guided


StepCallback = Callable[[int, int, Callable[[], Any]], None]


def sample(
    model,
    conditioning,
    settings: SamplerSettings,
    *,
    on_step: StepCallback | None = None,
    check_interrupt: Callable[[], None] | None = None,
) -> Latent:
    """Generate video and audio latents together.

    `on_step(step, total, preview)` runs after every step (`preview()` returns the current x0 estimate as a
    normalized video latent); `check_interrupt()` runs before every step and cancels by raising.
    """
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    p = plan(model, settings)
    geo = p.geometry
    device = model.device
    transformer, vae, audio_vae = model.transformer, model.vae, model.audio_vae
    dtype = model.dtype
    g = p.guidance
    do_cfg = g.video_cfg > 1.0 or g.audio_cfg > 1.0
    do_stg = g.stg_scale > 0.0 or g.audio_stg_scale > 0.0
    do_mod = g.modality_scale > 1.0 or g.audio_modality_scale > 1.0
    generator = torch.Generator("cpu").manual_seed(p.seed)

    with torch.no_grad():
        connector_dtype = next(model.connectors.parameters()).dtype
        if do_cfg:
            embeds = torch.cat([conditioning.negative_embeds, conditioning.prompt_embeds])
            mask = torch.cat([conditioning.negative_mask, conditioning.prompt_mask])
        else:
            embeds, mask = conditioning.prompt_embeds, conditioning.prompt_mask
        video_ctx, audio_ctx, ctx_mask = model.connectors(
            embeds.to(device, connector_dtype), mask.to(device), padding_side="left"
        )

        f, h, w = geo.latent_frames, geo.latent_height, geo.latent_width
        channels = transformer.config.in_channels
        clean = torch.zeros((1, channels, f, h, w), dtype=torch.float32, device=device)
        video_mask = torch.zeros((1, 1, f, h, w), dtype=torch.float32, device=device)
        for cond in conditioning.images:
            index = (cond.frame_index + 7) // 8
            if not 0 <= index < f:
                raise L2AError(
                    f"image frame {cond.frame_index} is outside the {geo.num_frames}-frame video: "
                    f"use 0 to {geo.num_frames - 1}."
                )
            clean[:, :, index : index + 1] = encode_image_latent(model, cond.pixels, geo.width, geo.height)
            video_mask[:, :, index] = cond.strength
        noise = randn_tensor((1, channels, f, h, w), generator=generator, device=device, dtype=torch.float32)
        latents = pack_video(clean * video_mask + noise * (1 - video_mask))
        clean_tokens = pack_video(clean)
        video_mask = pack_video(video_mask).squeeze(-1)
        has_video_mask = bool(video_mask.any())

        audio_frames = audio_latent_frames(
            geo.num_frames, geo.fps, audio_vae.config.sample_rate, audio_vae.config.mel_hop_length,
            audio_vae.temporal_compression_ratio,
        )
        mel_bins = audio_vae.config.mel_bins // audio_vae.mel_compression_ratio
        audio_shape = (1, audio_vae.config.latent_channels, audio_frames, mel_bins)
        audio_latents = pack_audio(randn_tensor(audio_shape, generator=generator, device=device, dtype=torch.float32))

        # Video positions are in seconds at the conditioning frame rate (a higher one than playback = slow motion).
        fps = conditioning.frame_rate
        video_coords = transformer.rope.prepare_video_coords(1, f, h, w, device, fps=fps)
        audio_coords = transformer.audio_rope.prepare_audio_coords(1, audio_frames, device)
        batch = 2 if do_cfg else 1
        video_coords_b = video_coords.repeat((batch,) + (1,) * (video_coords.ndim - 1))
        audio_coords_b = audio_coords.repeat((batch,) + (1,) * (audio_coords.ndim - 1))
        pos_video_ctx = video_ctx.chunk(2)[1] if do_cfg else video_ctx
        pos_audio_ctx = audio_ctx.chunk(2)[1] if do_cfg else audio_ctx
        pos_ctx_mask = ctx_mask.chunk(2)[1] if do_cfg else ctx_mask

        sigmas = p.sigmas.to(device)
        timesteps = sigmas[:-1] * 1000.0
        total = len(timesteps)

        def forward(x, ax, vctx, actx, cmask, t, coords, acoords, isolate=False, stg_blocks=None):
            video_t = t.unsqueeze(-1) * (1 - video_mask) if has_video_mask else t
            out_v, out_a = transformer(
                hidden_states=x.to(dtype),
                audio_hidden_states=ax.to(dtype),
                encoder_hidden_states=vctx,
                audio_encoder_hidden_states=actx,
                timestep=video_t,
                audio_timestep=t if has_video_mask else None,
                sigma=t,
                encoder_attention_mask=cmask,
                audio_encoder_attention_mask=cmask,
                num_frames=f,
                height=h,
                width=w,
                fps=fps,
                audio_num_frames=audio_frames,
                video_coords=coords,
                audio_coords=acoords,
                isolate_modalities=isolate,
                spatio_temporal_guidance_blocks=stg_blocks,
                perturbation_mask=None,
                use_cross_timestep=p.use_cross_timestep,
                return_dict=False,
            )
            return out_v.float(), out_a.float()

        for i, t in enumerate(timesteps):
            if check_interrupt is not None:
                check_interrupt()
            sigma, sigma_next = sigmas[i], sigmas[i + 1]
            tb = t.expand(batch)
            v, a = forward(
                torch.cat([latents] * batch), torch.cat([audio_latents] * batch),
                video_ctx, audio_ctx, ctx_mask, tb, video_coords_b, audio_coords_b,
            )
            x0_v, x0_a = latents - v_pos(v, do_cfg) * sigma, audio_latents - v_pos(a, do_cfg) * sigma
            # Each guidance term is a delta in x0 space, summed in diffusers' order so results match it exactly.
            cfg_v = cfg_a = stg_v = stg_a = mod_v = mod_a = 0
            if do_cfg:
                cfg_v = (g.video_cfg - 1) * (x0_v - (latents - v.chunk(2)[0] * sigma))
                cfg_a = (g.audio_cfg - 1) * (x0_a - (audio_latents - a.chunk(2)[0] * sigma))
            t1 = t.expand(1)
            if do_stg:
                sv, sa = forward(
                    latents, audio_latents, pos_video_ctx, pos_audio_ctx, pos_ctx_mask, t1, video_coords,
                    audio_coords, stg_blocks=list(p.stg_blocks),
                )
                stg_v = g.stg_scale * (x0_v - (latents - sv * sigma))
                stg_a = g.audio_stg_scale * (x0_a - (audio_latents - sa * sigma))
            if do_mod:
                mv, ma = forward(
                    latents, audio_latents, pos_video_ctx, pos_audio_ctx, pos_ctx_mask, t1, video_coords,
                    audio_coords, isolate=True,
                )
                mod_v = (g.modality_scale - 1) * (x0_v - (latents - mv * sigma))
                mod_a = (g.audio_modality_scale - 1) * (x0_a - (audio_latents - ma * sigma))
            guided_v = x0_v + cfg_v + stg_v + mod_v
            guided_a = x0_a + cfg_a + stg_a + mod_a
            if g.rescale > 0:
                guided_v = _rescale(guided_v, x0_v, g.rescale)
            if g.audio_rescale > 0:
                guided_a = _rescale(guided_a, x0_a, g.audio_rescale)
            if has_video_mask:
                keep = video_mask.unsqueeze(-1)
                guided_v = guided_v * (1 - keep) + clean_tokens * keep
            latents = latents + (sigma_next - sigma) * ((latents - guided_v) / sigma)
            audio_latents = audio_latents + (sigma_next - sigma) * ((audio_latents - guided_a) / sigma)
            if on_step is not None:
                on_step(i + 1, total, lambda x0=guided_v: unpack_video(x0, f, h, w))

        video = denormalize_video(unpack_video(latents, f, h, w), vae)
        audio = unpack_audio(denormalize_audio_tokens(audio_latents, audio_vae), mel_bins)

    return Latent(
        video=video,
        audio=audio,
        width=geo.width,
        height=geo.height,
        num_frames=geo.num_frames,
        fps=geo.fps,
        seed=p.seed,
        has_audio=p.generate_audio,
        report=p.report(),
        settings={
            "seed": p.seed, "steps": total, "schedule": p.schedule, "stg_blocks": list(p.stg_blocks),
            "guidance": asdict(g), "width": geo.width, "height": geo.height,
            "frames": geo.num_frames, "fps": geo.fps,
        },
    )
