"""The LTX-2 denoising loop, owned by the pack.

Where diffusers and the official Lightricks code (ltx-core / ltx-pipelines) differ, it follows the official code:
STG perturbs each modality's own self-attention, every token's x0 uses its own sigma (sigma * (1 - strength)), guidance
terms switch on as the official guiders do, and audio-to-video keeps the audio guider off. With no token kept clean
and rescale 0 (or no token kept at all), `schedule="diffusers"` still reproduces diffusers' LTX-2 pipelines. It
adds what diffusers lacks: the official fixed-shift schedule, per-token clean masks for video *and* audio, and
progress/preview/cancel hooks. Latents come out raw (VAE space), like diffusers' `output_type="latent"`.
"""

from __future__ import annotations

import math
import secrets
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from .checks import check_guidance
from .choices import ACCELERATIONS
from .errors import L2AError
from .families import Guidance
from .geometry import MIN_FRAMES, Geometry, audio_latent_frames, make_geometry
from .schedules import SCHEDULES, diffusers_sigmas, fixed_sigmas, official_sigmas

MAX_SEED = 0xFFFF_FFFF_FFFF_FFFF
MAX_STEPS = 200
AUTO_FRAMES = 0  # SamplerSettings.num_frames: the length LTX-2.5's duration head predicts from the prompt


@dataclass(frozen=True)
class SamplerSettings:
    width: int = 768
    height: int = 512
    num_frames: int = 121  # AUTO_FRAMES (0): the duration head's (LTX-2.5)
    fps: float = 24.0
    steps: int = 0  # 0: the model's default
    seed: int = -1  # -1: a fresh random seed, reported back
    guidance: Guidance | None = None  # None: the model's default (full for dev, off for distilled)
    stg_blocks: tuple[int, ...] | None = None  # None: the model's default
    schedule: str = "official"
    generate_audio: bool = True
    acceleration: str = "none"


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
class CleanContext:
    """Latents to keep clean while the rest is generated, by time: an extend prefix, frozen audio for
    audio-to-video, everything outside a retake window. Raw latents cover the whole output grid; `*_keep` says per
    latent frame / audio latent how clean each stays (1 = exactly as given, 0 = generated)."""

    video: Any = None  # raw [1, C, F', H', W']
    video_keep: Any = None  # [F']
    audio: Any = None  # raw [1, C, L, M]
    audio_keep: Any = None  # [L]
    # The kept audio is what the video follows (audio-to-video): as in the official A2Vid pipeline, the audio
    # guider is off and the unconditional pass keeps the positive audio prompt.
    audio_is_condition: bool = False
    # Where IC-LoRA reference videos go: their frame `control_from` at output frame `control_at` (extend: the first
    # new frame); 0 and 0 officially.
    control_at: int = 0
    control_from: int = 0


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
    sampler: str = "euler"  # how a step moves from one sigma to the next: a key of SAMPLERS
    audio_negative: bool = True  # the unconditional pass sees the negative prompt for audio too

    def report(self) -> str:
        g = self.guidance
        steps = len(self.sigmas) - 1
        parts = [
            f"seed {self.seed}",
            f"{steps} steps ({', '.join(filter(None, (f'{self.schedule} schedule', SAMPLERS[self.sampler].label)))})",
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


def check_settings(settings: SamplerSettings, auto_frames: bool = False) -> Geometry:
    """The checks that need no model, so a caller can run them before loading one. With `auto_frames`, frames = 0
    (the duration head's length) passes: everything but the length is checked, and the geometry returned then has
    the shortest one."""
    frames = MIN_FRAMES if auto_frames and settings.num_frames == AUTO_FRAMES else settings.num_frames
    geometry = make_geometry(settings.width, settings.height, frames, settings.fps)
    if settings.schedule not in SCHEDULES:
        raise L2AError(f"schedule = {settings.schedule!r} is unknown: use one of {', '.join(SCHEDULES)}.")
    if settings.acceleration not in ACCELERATIONS:
        raise L2AError(
            f"acceleration = {settings.acceleration!r} is unknown: use one of {', '.join(ACCELERATIONS)}."
        )
    if not 0 <= settings.steps <= MAX_STEPS:
        raise L2AError(f"steps = {settings.steps} is out of range: use 1 to {MAX_STEPS}, or 0 for the model's default.")
    if settings.seed != -1 and not 0 <= settings.seed <= MAX_SEED:
        raise L2AError(f"seed = {settings.seed} is out of range: use 0 to {MAX_SEED}, or -1 for a random seed.")
    if settings.guidance is not None:
        check_guidance(settings.guidance)
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
    sampler = "euler"
    if distilled or settings.acceleration == "full":
        sigmas, guidance = _distilled_schedule(model, settings, guidance, notes)
        schedule, sampler = "distilled", model.family.distilled_sampler
    else:
        steps, guidance = _accelerate(settings.steps or model.family.steps, guidance, settings.acceleration, notes)
        schedule = settings.schedule
        if schedule == "official":
            sigmas = official_sigmas(steps)
        else:
            tokens = geometry.latent_frames * geometry.latent_height * geometry.latent_width
            sigmas = diffusers_sigmas(steps, tokens, model.scheduler_config)
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
        sampler=sampler,
    )


def connector_outputs(model, embeds, mask):
    """(video context, audio context, mask) of the text connectors for prompt features already on the device."""
    from .text_projection import connect, in_text_encoder

    if in_text_encoder(model.configs):  # the conditioning holds projected features (LTX-2.5)
        return connect(model.connectors, embeds, mask)
    return model.connectors(embeds, mask, padding_side="left")


def resolve_duration(model, conditioning, settings: SamplerSettings) -> tuple[SamplerSettings, str]:
    """Settings with auto frames (0) given the duration head's length for the positive prompt, and the report's
    note on it, as the official pipelines do when no frame count is given: the connectors' outputs of the prompt,
    the head's seconds clamped to 1-20 s and floored to 8k+1 at the playback frame rate. The audio follows the
    frame count. Other settings pass through unchanged, with no note."""
    if settings.num_frames != AUTO_FRAMES:
        return settings, ""
    import torch

    from .duration import predict_duration
    from .extras import duration_head_of
    from .memory import apply_policy

    if "duration_head" not in model.family.extras:
        raise L2AError(f"frames = 0 (auto duration) needs LTX-2.5's duration head, and {model.family.label} has none: "
                       "give a frame count (e.g. 121 = 5 s at 24 fps).")
    check_settings(settings, auto_frames=True)
    check_conditioning(model, conditioning)
    head = duration_head_of(model)
    apply_policy(model)
    dtype = next(model.connectors.parameters()).dtype
    with torch.no_grad():
        video, audio, _ = connector_outputs(model, conditioning.prompt_embeds.to(model.device, dtype),
                                            conditioning.prompt_mask.to(model.device))
    duration = predict_duration(head, video, audio, settings.fps, ratio=model.vae.temporal_compression_ratio)
    note = duration.describe()
    if duration.frames < MIN_FRAMES:  # below 9 fps one second holds fewer frames than the shortest clip
        note += f", raised to {MIN_FRAMES} frames (the shortest clip)"
    return replace(settings, num_frames=max(duration.frames, MIN_FRAMES)), note


def has_distilled_lora(model) -> bool:
    """Whether the model's LoRA chain holds a distilled LoRA (an official `*-distilled-lora-*` file, e.g.
    ltx-2-19b-distilled-lora-384.safetensors) at a strength that applies it."""
    return any("distilled-lora" in spec.name.lower() and spec.strength != 0 for spec in model.loras)


def _distilled_schedule(model, settings: SamplerSettings, guidance: Guidance, notes: list[str]):
    """The distilled sigmas, which a distilled model (or a dev model with the distilled LoRA under acceleration
    `full`) always samples: any other step count is refused, and presets that cannot change them say so."""
    family = model.family
    if family.distilled_sampler not in SAMPLERS:
        raise L2AError(
            f"{family.label} distilled samples with {family.distilled_sampler!r}, which this version of the pack "
            f"does not have (it has {', '.join(SAMPLERS)})."
        )
    count = len(family.distilled_sigmas) - 1
    preset = settings.acceleration
    distilled = model.variant == "distilled"
    if not distilled and not has_distilled_lora(model):
        raise L2AError(
            f"acceleration = 'full' samples the {count} distilled sigmas without guidance, which needs a distilled "
            f"model or the distilled LoRA, and {family.label} dev has neither: load the distilled checkpoint, "
            f"add {family.distilled_lora.name} with LTX-2 LoRA, or use acceleration 'regular' or 'high'."
        )
    if settings.steps not in (0, count):
        who = "a distilled model" if distilled else "acceleration 'full'"
        raise L2AError(
            f"steps = {settings.steps} does not fit {who}: it samples the {count} distilled sigmas it was trained "
            f"on. Use steps 0 (or {count}), or a dev model for another step count."
        )
    if preset == "full":
        change = "no change" if guidance == Guidance.off() else "guidance off"
        if not distilled:
            change = "the distilled sigmas without guidance (distilled LoRA in the chain)"
        notes.append(f"acceleration full: {change}")
        guidance = Guidance.off()
    elif preset != "none":
        notes.append(f"acceleration {preset}: no change (a distilled model always samples its {count} distilled "
                     "sigmas)")
    if settings.schedule != "official":
        notes.append(f"schedule {settings.schedule} not used: distilled sigmas")
    return fixed_sigmas(family.distilled_sigmas), guidance


def _accelerate(steps: int, guidance: Guidance, preset: str, notes: list[str]) -> tuple[int, Guidance]:
    """Steps and guidance after a dev model's acceleration preset, with what actually changed noted."""
    if preset == "none":
        return steps, guidance
    changes = []
    faster = math.ceil(steps / (2 if preset == "regular" else 4))
    if faster != steps:
        changes.append(f"{steps} → {faster} steps")
    if preset == "high":
        quick = replace(guidance, stg_scale=0.0, audio_stg_scale=0.0, modality_scale=1.0, audio_modality_scale=1.0)
        if quick != guidance:
            changes.append("STG and modality guidance off")
        guidance = quick
    notes.append(f"acceleration {preset}: {', '.join(changes) or 'no change'}")
    return faster, guidance


def check_conditioning(model, conditioning) -> None:
    """Refuse, before any work, a conditioning whose text encoder the model cannot use: another Gemma (Gemma 3
    features have the shape of LTX-2.5's and would only give noise), another gemma_version than the transformer
    names, or embeddings of another width."""
    from pathlib import Path

    from .text_projection import in_text_encoder

    need = model.family.text_encoder
    model_name = f"{model.family.label} ('{Path(model.source).name}')"
    encoder = conditioning.encoder
    if encoder is not None:
        why = need.mismatch(encoder.kind, encoder.version, model.text_encoder_version)
        if why:
            raise L2AError(
                f"the prompt was encoded by {encoder.describe()}, but {model_name} needs {need.label}: {why}. Load "
                f"{need.names()} with LTX-2 Text Encoder Loader and encode the prompt with it."
            )
    config = model.connectors.config
    if in_text_encoder(model.configs):
        width, what = config.video_hidden_dim + config.audio_hidden_dim, "projected features"
    else:
        width, what = config.caption_channels * config.text_proj_in_factor, "stacked Gemma hidden states"
    for name, embeds in (("prompt", conditioning.prompt_embeds), ("negative prompt", conditioning.negative_embeds)):
        if embeds.shape[-1] != width:
            raise L2AError(
                f"the {name} embeddings have {embeds.shape[-1]} features per token, but {model_name} takes {width} "
                f"({what}): encode the prompt with its text encoder, {need.names()}."
            )


def audio_conditioned(p: Plan) -> Plan:
    """The plan for video that follows given audio: the official A2Vid pipeline's audio guider is off (no terms, no
    rescale) and has no negative prompt, so the unconditional pass keeps the positive audio prompt."""
    guidance = replace(p.guidance, audio_cfg=1.0, audio_stg_scale=0.0, audio_modality_scale=1.0, audio_rescale=0.0)
    return replace(p, guidance=guidance, audio_negative=False,
                   notes=(*p.notes, "audio guidance off: the given audio is the condition (official audio-to-video)"))


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


def resize_cover(pixels, width: int, height: int):
    """uint8 [H, W, 3] -> float [1, 3, height, width] in 0..255, the official way: bilinear scale to cover the
    target (no anti-aliasing), then a centre crop."""
    import torch

    from .media import cover_frames

    return cover_frames(torch.from_numpy(pixels).permute(2, 0, 1)[None].to(torch.float32), width, height)


def encode_image_latent(model, pixels, width: int, height: int):
    """A conditioning image, fitted to the target size, as a normalized latent [1, C, 1, H/32, W/32]."""
    import torch

    image = (resize_cover(pixels, width, height) / 127.5 - 1.0)[:, :, None]
    vae = model.vae
    with torch.no_grad():
        latent = vae.encode(image.to(model.device, vae.dtype)).latent_dist.mode()
    return normalize_video(latent.to(torch.float32), vae)


def v_pos(prediction, batched: bool):
    """The conditional half of a [uncond, cond] batched prediction."""
    return prediction.chunk(2)[1] if batched else prediction


def to_x0(latents, velocity, sigma):
    """The clean estimate of a velocity prediction, `x - v * sigma`, with `sigma` per token where tokens are
    conditioned (official X0Model: `to_denoised(latent, v, timesteps)`, timesteps = sigma * denoise mask)."""
    return latents - velocity * sigma


def guide(cond, uncond, perturbed, isolated, cfg: float, stg: float, modality: float, rescale: float):
    """Official multimodal guidance on x0 estimates (ltx_core/components/guiders.py, MultiModalGuider.calculate):
    cond + (cfg - 1)(cond - uncond) + stg (cond - perturbed) + (modality - 1)(cond - isolated), then rescaled by
    `rescale * std(cond) / std(pred) + (1 - rescale)`. A term whose pass did not run (None) is left out. The
    rescale is written as diffusers' `rescale_noise_cfg` (the same factor, distributed), so that a run without kept
    tokens stays bit-identical to diffusers."""
    pred = cond
    for scale, other in ((cfg - 1, uncond), (stg, perturbed), (modality - 1, isolated)):
        if other is not None:
            pred = pred + scale * (cond - other)
    if rescale != 0:
        pred = rescale * (pred * (cond.std() / pred.std())) + (1 - rescale) * pred
    return pred


def blend_clean(denoised, keep, clean):
    """Each token's clean value mixed in by its strength (official `post_process_latent`, denoise mask =
    1 - strength)."""
    keep = keep.unsqueeze(-1)
    return denoised * (1 - keep) + clean * keep


def euler_step(latents, denoised, sigma, sigma_next, noise=None):
    """One Euler step of the flow ODE from `sigma` to `sigma_next` (official EulerDiffusionStep, diffusers'
    FlowMatchEulerDiscreteScheduler)."""
    return latents + (sigma_next - sigma) * ((latents - denoised) / sigma)


def euler_ancestral_step(latents, denoised, sigma, sigma_next, noise, eta: float = 1.0, s_noise: float = 1.0):
    """One ancestral Euler step for rectified flow (official EulerAncestralDiffusionStep, ltx-core
    diffusion_steps.py; diffusers' LTXEulerAncestralRFScheduler): a deterministic step to
    sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta), then renoised back up to sigma_next with the
    signal rescaled by alpha_next / alpha_down (alpha = 1 - sigma). A step to sigma 0 returns the denoised latent and
    draws no noise; `noise()` draws the fresh noise of a step."""
    if float(sigma_next) == 0.0:
        return denoised
    sigma_down = sigma_next * (1.0 + (sigma_next / sigma - 1.0) * eta)
    ratio = sigma_down / sigma
    stepped = ratio * latents + (1.0 - ratio) * denoised
    alpha_next, alpha_down = 1.0 - sigma_next, 1.0 - sigma_down
    renoise = (sigma_next**2 - sigma_down**2 * alpha_next**2 / alpha_down**2).clamp(min=0) ** 0.5
    return (alpha_next / alpha_down) * stepped + noise() * (s_noise * renoise)


@dataclass(frozen=True)
class Sampler:
    """How a step moves latents from one sigma to the next. A sampler that `draws_noise` gets fresh noise every step
    from its own generator (official: seeded with seed + 10000, video drawn before audio) and puts kept tokens back
    to their clean values after the step, as the official ancestral loop does."""

    step: Callable
    draws_noise: bool = False
    label: str = ""  # how the report names it ("" for plain Euler)


SAMPLERS = {"euler": Sampler(euler_step),
            "euler_ancestral": Sampler(euler_ancestral_step, draws_noise=True, label="ancestral Euler")}
# ltx-pipelines distilled.py: the ancestral loop's noise seed is the pipeline seed plus this, so its first draw is
# not the initial noise again.
NOISE_SEED_OFFSET = 10000


@contextmanager
def _pre_hooks(hooks):
    """Forward pre-hooks (with kwargs) on (transformer block, attention module, hook) for the duration of the block.
    A compiled block would not see hooks added after compilation (dynamo skips hook guards): it runs eagerly."""
    handles, compiled = [], {}
    try:
        for block, attention, hook in hooks:
            if getattr(block, "_compiled_call_impl", None) is not None:
                compiled[block], block._compiled_call_impl = block._compiled_call_impl, None
            handles.append(attention.register_forward_pre_hook(hook, with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for block, call in compiled.items():
            block._compiled_call_impl = call


@contextmanager
def _stg_on(transformer, blocks, video: bool, audio: bool):
    """Perturb only the chosen modalities' self-attention in the STG blocks, as the official perturbed pass does
    (`SKIP_VIDEO_SELF_ATTN` / `SKIP_AUDIO_SELF_ATTN` per guider); diffusers perturbs both whenever it perturbs."""

    def unperturbed(module, args, kwargs):
        return args, {**kwargs, "perturbation_mask": None, "all_perturbed": False}

    hooks = []
    for index in blocks if not (video and audio) else ():
        block = transformer.transformer_blocks[index]
        hooks += [(block, attention, unperturbed)
                  for attention, perturbed in ((block.attn1, video), (block.audio_attn1, audio)) if not perturbed]
    with _pre_hooks(hooks):
        yield


def attention_bias(mask, dtype):
    """Attention weights in [0, 1] as the additive bias ltx-core's `_prepare_self_attention_mask` makes of them:
    log(w), and the dtype's minimum where w <= 0 (diffusers' IC-LoRA pipeline uses (1 - w) * -10000 instead, which
    equals it only for weights 0 and 1)."""
    import torch

    finfo = torch.finfo(dtype)
    bias = torch.full_like(mask, finfo.min, dtype=dtype)
    positive = mask > 0
    bias[positive] = torch.log(mask[positive].clamp(min=finfo.tiny)).to(dtype)
    return bias


@contextmanager
def _self_attention_bias(transformer, bias):
    """The video self-attention of every block attends with the additive `bias` ([1, T, T], `attention_bias`; None:
    no mask), as the official transformer does with a conditioning item's attention mask."""
    if bias is None:
        yield
        return

    def masked(module, args, kwargs):
        return args, {**kwargs, "attention_mask": bias.expand(kwargs["hidden_states"].shape[0], -1, -1)}

    with _pre_hooks([(block, block.attn1, masked) for block in transformer.transformer_blocks]):
        yield


StepCallback = Callable[[int, int, Callable[[], Any]], None]


@dataclass
class _VideoTokens:
    """The video sequence the transformer sees: the main grid, then appended keyframe and reference tokens."""

    latents: Any  # [1, S + K + R, C] normalized
    mask: Any  # [1, S + K + R] strength of each token's clean value
    clean: Any  # [1, S + K + R, C]
    coords: Any  # [1, 3, S + K + R, 2]
    main_count: int  # S
    attention: Any = None  # [1, T, T] self-attention weights in [0, 1] (IC-LoRA attention strength), None: full


@dataclass
class _Reference:
    """An IC-LoRA reference video appended to the video sequence (official `VideoConditionByReferenceLatent`)."""

    tokens: Any  # [1, M, C] normalized
    coords: Any  # [1, 3, M, 2]
    strength: float  # 1: kept clean
    cross: Any  # [1, M] attention weight between each reference token and the generated ones; None: full attention


def reference_conditions(model, geo: Geometry, context: CleanContext | None = None):
    """The model's IC-LoRA references prepared for this generation (pixels, no VAE yet) and what was changed to fit
    them (trimmed, scaled, cropped), each said."""
    controls = getattr(model, "controls", None)
    if not controls:
        return [], []
    from .ic_lora import check_reference_size, reference_pixels

    check_reference_size(model, geo.width, geo.height)
    at, start = (context.control_at, context.control_from) if context is not None else (0, 0)
    prepared, notes = [], []
    for control in controls:
        reference = reference_pixels(control, geo.width, geo.height, geo.num_frames, at, start, geo.fps)
        if reference is None:
            notes.append(f"reference of {control.name}: no frame of it falls in this generation")
            continue
        prepared.append(reference)
        notes += reference.notes
    return prepared, notes


def with_appended_tokens(p: Plan, model, conditioning, prepared) -> Plan:
    """The diffusers schedule's shift from the whole video sequence: diffusers' condition and IC-LoRA pipelines count
    the appended keyframe and reference tokens too. The other schedules do not depend on the token count."""
    geo = p.geometry
    pinned = {c.frame_index + geo.num_frames if c.frame_index < 0 else c.frame_index for c in conditioning.images}
    keyframes = sum(1 for frame in pinned if 0 < frame < geo.num_frames)
    if p.schedule != "diffusers" or not (prepared or keyframes):
        return p
    vae = model.vae
    tokens = (geo.latent_frames + keyframes) * geo.latent_height * geo.latent_width
    for reference in prepared:
        frames, height, width = reference.pixels.shape[2:]
        tokens += ((frames - 1) // vae.temporal_compression_ratio + 1) * (height // vae.spatial_compression_ratio) \
            * (width // vae.spatial_compression_ratio)
    return replace(p, sigmas=diffusers_sigmas(len(p.sigmas) - 1, tokens, model.scheduler_config))


def encode_references(model, prepared, fps: float, at: int = 0) -> list[_Reference]:
    """Encode prepared references into tokens placed on the output's grid, as the official IC-LoRA pipeline does:
    the reference's own RoPE grid (causal first frame), time over fps / temporal scale (shifted back so its last
    patch ends with the output's, and by `at` frames), height and width times the spatial scale; the attention
    weight of each token is the pixel mask averaged onto the latent grid, times the attention strength."""
    import torch

    from .ic_lora import latent_mask

    vae, rope = model.vae, model.transformer.rope
    references = []
    for reference in prepared:
        control = reference.control
        spatial, temporal = control.scale.spatial, control.scale.temporal
        with torch.no_grad():
            latent = vae.encode(reference.pixels.to(model.device, vae.dtype)).latent_dist.mode()
        latent = normalize_video(latent.to(torch.float32), vae)
        _, _, frames, height, width = latent.shape
        coords = rope.prepare_video_coords(1, frames, height, width, model.device, fps=fps / temporal)
        if temporal != 1:
            coords[:, 0] = (coords[:, 0] - (temporal - 1) / fps).clamp(min=0)
        if at:
            coords[:, 0] = coords[:, 0] + at / fps
        if spatial != 1:
            coords[:, 1] = coords[:, 1] * spatial
            coords[:, 2] = coords[:, 2] * spatial
        cross = None
        if reference.mask is not None:
            cross = latent_mask(reference.mask.to(model.device), frames, height, width) * control.attention
        elif control.attention < 1.0:
            cross = torch.full((1, frames * height * width), control.attention, device=model.device)
        references.append(_Reference(pack_video(latent), coords, control.strength, cross))
    return references


def reference_attention(references, main_count: int, count: int):
    """The self-attention weights [1, T, T] of a sequence with `references` appended after `count` tokens, built one
    reference at a time as ltx-core's `update_attention_mask`: the tokens before keep what they had (all 1 at
    first), a reference attends fully to itself, to and from the `main_count` generated tokens with its weights, and
    not at all to earlier appended tokens (keyframes, other references). None when no reference asks for less than
    full attention."""
    mask = None
    for reference in references:
        size = reference.tokens.shape[1]
        if reference.cross is None and mask is None:
            count += size
            continue
        cross = reference.cross if reference.cross is not None else reference.tokens.new_ones((1, size))
        grown = reference.tokens.new_zeros((1, count + size, count + size))
        grown[:, :count, :count] = 1.0 if mask is None else mask
        grown[:, count:, count:] = 1.0
        grown[:, :main_count, count:] = cross[:, None, :]
        grown[:, count:, :main_count] = cross[:, :, None]
        mask, count = grown, count + size
    return mask


def keyframe_coords(model, latent_height: int, latent_width: int, pixel_frame: int, fps: float):
    """RoPE bounds of a single-image keyframe appended at a pixel frame: it lasts [frame, frame + 1) / fps."""
    import torch

    coords = model.transformer.rope.prepare_video_coords(1, 1, latent_height, latent_width, model.device, fps=1.0)
    coords = coords.clone()
    coords[:, 0, :, 0] = pixel_frame / fps
    coords[:, 0, :, 1] = (pixel_frame + 1) / fps
    return coords.to(torch.float32)


def _image_conditions(model, conditioning, geo: Geometry):
    """Each image condition as (pixel frame, strength, normalized latent); frame -1 means the last frame."""
    found = {}
    for cond in conditioning.images:
        frame = cond.frame_index + geo.num_frames if cond.frame_index < 0 else cond.frame_index
        if not 0 <= frame < geo.num_frames:
            raise L2AError(
                f"image frame {cond.frame_index} is outside the {geo.num_frames}-frame video: use 0 to "
                f"{geo.num_frames - 1} (or -1 for the last frame)."
            )
        found[frame] = (frame, cond.strength, encode_image_latent(model, cond.pixels, geo.width, geo.height))
    return [found[k] for k in sorted(found)]


def prepare_video_tokens(model, conditioning, geo: Geometry, generator, init_video=None, noise_scale: float = 1.0,
                         context: CleanContext | None = None, references=()):
    """Noisy video tokens with the image conditions and IC-LoRA references applied.

    An image at frame 0 replaces the first latent frame; an image at any other pixel frame is appended as
    keyframe tokens placed at that frame's time (official keyframe semantics); `references` (`encode_references`)
    come last, with their attention weights. A fresh start draws its noise in [B, C, F, H, W] order (as diffusers'
    text/image-to-video pipelines do), or, with references, once over the whole packed sequence (as ltx-core's
    noiser and diffusers' IC-LoRA pipeline do); a refine pass from `init_video` (raw latents) draws it over the
    packed sequence and mixes it in at `noise_scale` (as diffusers' condition pipeline).
    """
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    device = model.device
    f, h, w = geo.latent_frames, geo.latent_height, geo.latent_width
    channels = model.transformer.config.in_channels
    fps = conditioning.frame_rate
    clean = torch.zeros((1, channels, f, h, w), dtype=torch.float32, device=device)
    mask = torch.zeros((1, 1, f, h, w), dtype=torch.float32, device=device)
    keyframes = []
    if context is not None and context.video is not None:
        keep = context.video_keep.to(device, torch.float32).view(1, 1, f, 1, 1)
        clean = normalize_video(context.video.to(device, torch.float32), model.vae) * (keep > 0)
        mask = keep.expand(1, 1, f, h, w).clone()
    for frame, strength, latent in _image_conditions(model, conditioning, geo):
        if frame == 0:
            clean[:, :, :1] = latent
            mask[:, :, 0] = strength
        else:
            keyframes.append((pack_video(latent), strength, keyframe_coords(model, h, w, frame, fps)))
    coords = model.transformer.rope.prepare_video_coords(1, f, h, w, device, fps=fps)
    keyframes += [(r.tokens, r.strength, r.coords) for r in references]
    kf_tokens = [k[0] for k in keyframes]
    kf_mask = [torch.full(k[0].shape[:2], float(k[1]), device=device) for k in keyframes]
    mask_tokens = torch.cat([pack_video(mask).squeeze(-1), *kf_mask], dim=1)
    clean_tokens = torch.cat([pack_video(clean), *kf_tokens], dim=1)
    coords = torch.cat([coords, *[k[2] for k in keyframes]], dim=2)
    main_count = f * h * w
    appended = sum(r.tokens.shape[1] for r in references)
    attention = reference_attention(references, main_count, clean_tokens.shape[1] - appended)
    if init_video is None and references:
        noise = randn_tensor(clean_tokens.shape, generator=generator, device=device, dtype=torch.float32)
        keep = mask_tokens.unsqueeze(-1)
        latents = noise * (1 - keep) + clean_tokens * keep
    elif init_video is None:
        noise = pack_video(randn_tensor((1, channels, f, h, w), generator=generator, device=device,
                                        dtype=torch.float32))
        main = pack_video(clean * mask + unpack_video(noise, f, h, w) * (1 - mask))
        extra = clean_tokens[:, main_count:]
        if extra.shape[1]:
            kf_noise = randn_tensor(extra.shape, generator=generator, device=device, dtype=torch.float32)
            keep = mask_tokens[:, main_count:].unsqueeze(-1)
            extra = extra * keep + kf_noise * (1 - keep)
        # Keep the packed view's layout when nothing is appended, as diffusers does: in bf16 the transformer's
        # matmuls round differently on a contiguous copy.
        latents = torch.cat([main, extra], dim=1) if extra.shape[1] else main
    else:
        start = pack_video(normalize_video(init_video.to(device, torch.float32), model.vae))
        keep = mask_tokens[:, :main_count].unsqueeze(-1)
        start = start * (1 - keep) + pack_video(clean) * keep
        latents = torch.cat([start, clean_tokens[:, main_count:]], dim=1)
        noise = randn_tensor(latents.shape, generator=generator, device=device, dtype=torch.float32)
        scaled = (1.0 - mask_tokens.unsqueeze(-1)) * noise_scale
        latents = noise * scaled + latents * (1 - scaled)
    return _VideoTokens(latents, mask_tokens, clean_tokens, coords, main_count, attention)


@dataclass
class _AudioTokens:
    latents: Any  # [1, L, C*M] normalized
    mask: Any  # [1, L]
    clean: Any  # [1, L, C*M]
    mel_bins: int


def prepare_audio_tokens(model, geo: Geometry, generator, init_audio=None, noise_scale: float = 1.0,
                         context: CleanContext | None = None, packed_noise: bool = False) -> _AudioTokens:
    """Noisy audio tokens [1, L, C*M] sized to the video's duration, or a re-noised `init_audio` (raw); audio in
    `context` is kept clean where its keep mask says so. Fresh noise is drawn in [B, C, L, M] order (diffusers'
    text/image-to-video), or `packed_noise` in [B, L, C*M] order (ltx-core, diffusers' IC-LoRA pipeline)."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    audio_vae = model.audio_vae
    device = model.device
    mel_bins = audio_vae.config.mel_bins // audio_vae.mel_compression_ratio
    if init_audio is not None:
        start = normalize_audio_tokens(pack_audio(init_audio.to(device, torch.float32)), audio_vae)
        noise = randn_tensor(start.shape, generator=generator, device=device, dtype=torch.float32)
        latents = noise_scale * noise + (1 - noise_scale) * start
        return _AudioTokens(latents, torch.zeros(latents.shape[:2], device=device), torch.zeros_like(latents),
                            mel_bins)
    frames = audio_latent_frames(
        geo.num_frames, geo.fps, audio_vae.config.sample_rate, audio_vae.config.mel_hop_length,
        audio_vae.temporal_compression_ratio,
    )
    shape = (1, audio_vae.config.latent_channels, frames, mel_bins)
    if packed_noise:
        noise = randn_tensor((1, frames, shape[1] * mel_bins), generator=generator, device=device,
                             dtype=torch.float32)
    else:
        noise = pack_audio(randn_tensor(shape, generator=generator, device=device, dtype=torch.float32))
    mask = torch.zeros(noise.shape[:2], device=device)
    clean = torch.zeros_like(noise)
    if context is not None and context.audio is not None:
        if context.audio.shape[2] != frames:
            raise L2AError(
                f"the audio to keep has {context.audio.shape[2]} latent frames but the video needs {frames}: "
                "encode it for the same duration."
            )
        mask = context.audio_keep.to(device, torch.float32)[None]
        clean = normalize_audio_tokens(pack_audio(context.audio.to(device, torch.float32)), audio_vae)
        clean = clean * (mask > 0).unsqueeze(-1)
    keep = mask.unsqueeze(-1)
    return _AudioTokens(clean * keep + noise * (1 - keep), mask, clean, mel_bins)


def _denoise(model, conditioning, p: Plan, video: _VideoTokens, audio: _AudioTokens, on_step, check_interrupt):
    """The loop over `p.sigmas` with multimodal guidance in x0 space; returns (video tokens, audio tokens).

    Passes per step: the conditional one, plus one per enabled term, each enabled as the official guiders do
    (CFG and modality when their scale is not 1, STG when not 0); the unconditional pass is batched with the
    conditional one, as in diffusers. A token kept with strength s sees sigma * (1 - s) and its x0 uses that
    sigma, so fully kept tokens are exactly their clean value before guidance rescale, as officially. A sampler that
    draws noise (the ancestral one of LTX-2.5's distilled stage 1) draws it for video, then audio, each step.
    """
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    g = p.guidance
    geo = p.geometry
    device, dtype, transformer = model.device, model.dtype, model.transformer
    do_cfg = g.video_cfg != 1.0 or g.audio_cfg != 1.0
    stg_video, stg_audio = g.stg_scale != 0.0, g.audio_stg_scale != 0.0
    do_mod = g.modality_scale != 1.0 or g.audio_modality_scale != 1.0

    connector_dtype = next(model.connectors.parameters()).dtype
    if do_cfg:
        embeds = torch.cat([conditioning.negative_embeds, conditioning.prompt_embeds])
        mask = torch.cat([conditioning.negative_mask, conditioning.prompt_mask])
    else:
        embeds, mask = conditioning.prompt_embeds, conditioning.prompt_mask
    video_ctx, audio_ctx, ctx_mask = connector_outputs(model, embeds.to(device, connector_dtype), mask.to(device))
    pos_video_ctx = v_pos(video_ctx, do_cfg)
    pos_audio_ctx = v_pos(audio_ctx, do_cfg)
    pos_ctx_mask = v_pos(ctx_mask, do_cfg)
    audio_ctx_mask = ctx_mask
    if do_cfg and not p.audio_negative:
        audio_ctx, audio_ctx_mask = torch.cat([pos_audio_ctx] * 2), torch.cat([pos_ctx_mask] * 2)
    f, h, w = geo.latent_frames, geo.latent_height, geo.latent_width
    audio_latents = audio.latents
    audio_frames = audio_latents.shape[1]
    batch = 2 if do_cfg else 1
    video_coords = video.coords
    audio_coords = transformer.audio_rope.prepare_audio_coords(1, audio_frames, device)
    video_coords_b = video_coords.repeat((batch,) + (1,) * (video_coords.ndim - 1))
    audio_coords_b = audio_coords.repeat((batch,) + (1,) * (audio_coords.ndim - 1))
    video_mask, audio_mask = video.mask, audio.mask
    has_video_mask, has_audio_mask = bool(video_mask.any()), bool(audio_mask.any())
    per_token = has_video_mask or has_audio_mask
    # A modality kept whole is frozen: officially its sigma (prompt AdaLN, cross-modal gates) is 0 as well.
    video_frozen = bool((video_mask == 1).all())
    audio_frozen = bool((audio_mask == 1).all())
    latents = video.latents
    sampler = SAMPLERS[p.sampler]
    bias = None if video.attention is None else attention_bias(video.attention, dtype)
    noise_source = torch.Generator("cpu").manual_seed((p.seed + NOISE_SEED_OFFSET) % 2**64)

    def noise_like(x):
        return lambda: randn_tensor(x.shape, generator=noise_source, device=x.device, dtype=torch.float32)

    sigmas = p.sigmas.to(device)
    timesteps = sigmas[:-1] * 1000.0
    total = len(timesteps)

    def forward(x, ax, vctx, actx, vmask, amask, t, coords, acoords, isolate=False, stg_blocks=None):
        video_t = t.unsqueeze(-1) * (1 - video_mask) if has_video_mask else t
        audio_t = t.unsqueeze(-1) * (1 - audio_mask) if has_audio_mask else (t if per_token else None)
        with _stg_on(transformer, stg_blocks or (), stg_video, stg_audio):
            out_v, out_a = transformer(
                hidden_states=x.to(dtype),
                audio_hidden_states=ax.to(dtype),
                encoder_hidden_states=vctx,
                audio_encoder_hidden_states=actx,
                timestep=video_t,
                audio_timestep=audio_t,
                sigma=t * 0 if video_frozen else t,
                audio_sigma=(t * 0 if audio_frozen else t) if per_token else None,
                encoder_attention_mask=vmask,
                audio_encoder_attention_mask=amask,
                num_frames=f,
                height=h,
                width=w,
                fps=conditioning.frame_rate,
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

    with _self_attention_bias(transformer, bias):  # the reference tokens' weights, the same every pass
        for i, t in enumerate(timesteps):
            if check_interrupt is not None:
                check_interrupt()
            sigma, sigma_next = sigmas[i], sigmas[i + 1]
            sigma_v = sigma * (1 - video_mask).unsqueeze(-1) if has_video_mask else sigma
            sigma_a = sigma * (1 - audio_mask).unsqueeze(-1) if has_audio_mask else sigma
            v, a = forward(
                torch.cat([latents] * batch), torch.cat([audio_latents] * batch),
                video_ctx, audio_ctx, ctx_mask, audio_ctx_mask, t.expand(batch), video_coords_b, audio_coords_b,
            )
            x0_v, x0_a = to_x0(latents, v_pos(v, do_cfg), sigma_v), to_x0(audio_latents, v_pos(a, do_cfg), sigma_a)
            uncond_v = uncond_a = stg_v = stg_a = mod_v = mod_a = None
            if do_cfg:
                uncond_v, uncond_a = to_x0(latents, v.chunk(2)[0], sigma_v), to_x0(audio_latents, a.chunk(2)[0], sigma_a)
            t1 = t.expand(1)
            if stg_video or stg_audio:
                sv, sa = forward(latents, audio_latents, pos_video_ctx, pos_audio_ctx, pos_ctx_mask, pos_ctx_mask, t1,
                                 video_coords, audio_coords, stg_blocks=list(p.stg_blocks))
                stg_v, stg_a = to_x0(latents, sv, sigma_v), to_x0(audio_latents, sa, sigma_a)
            if do_mod:
                mv, ma = forward(latents, audio_latents, pos_video_ctx, pos_audio_ctx, pos_ctx_mask, pos_ctx_mask, t1,
                                 video_coords, audio_coords, isolate=True)
                mod_v, mod_a = to_x0(latents, mv, sigma_v), to_x0(audio_latents, ma, sigma_a)
            guided_v = guide(x0_v, uncond_v, stg_v, mod_v, g.video_cfg, g.stg_scale, g.modality_scale, g.rescale)
            guided_a = guide(x0_a, uncond_a, stg_a, mod_a, g.audio_cfg, g.audio_stg_scale, g.audio_modality_scale,
                             g.audio_rescale)
            if has_video_mask:
                guided_v = blend_clean(guided_v, video_mask, video.clean)
            if has_audio_mask:
                guided_a = blend_clean(guided_a, audio_mask, audio.clean)
            latents = sampler.step(latents, guided_v, sigma, sigma_next, noise_like(latents))
            audio_latents = sampler.step(audio_latents, guided_a, sigma, sigma_next, noise_like(audio_latents))
            if sampler.draws_noise and has_video_mask:
                latents = blend_clean(latents, video_mask, video.clean)
            if sampler.draws_noise and has_audio_mask:
                audio_latents = blend_clean(audio_latents, audio_mask, audio.clean)
            if on_step is not None:
                on_step(i + 1, total, lambda x0=guided_v: unpack_video(x0[:, :video.main_count], f, h, w))
    return latents, audio_latents


def _finish(model, p: Plan, video_tokens, audio_tokens, mel_bins: int, main_count: int, report: str) -> Latent:
    geo = p.geometry
    f, h, w = geo.latent_frames, geo.latent_height, geo.latent_width
    video = denormalize_video(unpack_video(video_tokens[:, :main_count], f, h, w), model.vae)
    audio = unpack_audio(denormalize_audio_tokens(audio_tokens, model.audio_vae), mel_bins)
    return Latent(
        video=video, audio=audio, width=geo.width, height=geo.height, num_frames=geo.num_frames, fps=geo.fps,
        seed=p.seed, has_audio=p.generate_audio, report=report,
        settings={
            "seed": p.seed, "steps": len(p.sigmas) - 1, "schedule": p.schedule, "stg_blocks": list(p.stg_blocks),
            "guidance": asdict(p.guidance), "width": geo.width, "height": geo.height, "frames": geo.num_frames,
            "fps": geo.fps,
        },
    )


def sample(
    model,
    conditioning,
    settings: SamplerSettings,
    *,
    on_step: StepCallback | None = None,
    check_interrupt: Callable[[], None] | None = None,
    context: CleanContext | None = None,
) -> Latent:
    """Generate video and audio latents together; `context` keeps given latents clean by time.

    `on_step(step, total, preview)` runs after every step (`preview()` returns the current x0 estimate as a
    normalized video latent); `check_interrupt()` runs before every step and cancels by raising.
    """
    import torch

    from .lora import active_loras, lora_note
    from .memory import apply_policy

    settings, duration_note = resolve_duration(model, conditioning, settings)
    p = _with_note(plan(model, settings), duration_note)
    check_conditioning(model, conditioning)
    if context is not None and context.audio_is_condition:
        p = audio_conditioned(p)
    prepared, reference_notes = reference_conditions(model, p.geometry, context)
    p = with_appended_tokens(p, model, conditioning, prepared)
    report = " | ".join(part for part in (p.report(), lora_note(model), *model.notes, *reference_notes) if part)
    apply_policy(model)
    generator = torch.Generator("cpu").manual_seed(p.seed)
    with torch.no_grad(), active_loras(model):
        at = context.control_at if context is not None else 0
        references = encode_references(model, prepared, conditioning.frame_rate, at)
        video = prepare_video_tokens(model, conditioning, p.geometry, generator, context=context,
                                     references=references)
        audio = prepare_audio_tokens(model, p.geometry, generator, context=context, packed_noise=bool(references))
        video_out, audio_out = _denoise(model, conditioning, p, video, audio, on_step, check_interrupt)
        return _finish(model, p, video_out, audio_out, audio.mel_bins, video.main_count, report)


MULTISCALE_MULTIPLE = 64


def _with_note(p: Plan, note: str) -> Plan:
    return replace(p, notes=(note, *p.notes)) if note else p


def _progress_from(on_step: StepCallback | None, offset: int, total: int) -> StepCallback | None:
    """Report one stage's steps as part of the whole run's progress."""
    if on_step is None:
        return None
    return lambda step, _stage_total, preview: on_step(offset + step, total, preview)


def stage_two_note(model, refine_model) -> str:
    """What stage 2 of multiscale runs with: the official distilled LoRA, a distilled model, or neither (said so)."""
    from .lora import lora_note

    official = {name.lower() for name in refine_model.family.distilled_lora.names}
    with_lora = any(spec.name.lower() in official for spec in refine_model.loras)
    if refine_model.variant == "distilled":
        what = "the distilled model"
    elif with_lora:
        what = "the distilled LoRA (the official recipe)"
    else:
        what = f"the dev model without {refine_model.family.distilled_lora.name} (not the official recipe)"
    return "; ".join(part for part in (f"with {what}", lora_note(refine_model)) if part)


def sample_multiscale(
    model,
    conditioning,
    settings: SamplerSettings,
    upsampler,
    refine_model,
    *,
    on_step: StepCallback | None = None,
    check_interrupt: Callable[[], None] | None = None,
) -> Latent:
    """Two-stage generation, the official recipe.

    Stage 1 at half the size with the chosen steps and guidance; the video latent upsampled x2; stage 2 at full
    size over the family's distilled refinement sigmas without guidance, video and stage-1 audio re-noised to the
    first of them, image conditions re-encoded at full size. `refine_model` runs stage 2: officially the dev model
    with its family's distilled LoRA (`lora.with_distilled_lora`), or the distilled model itself; anything else is
    the caller's explicit choice, and the report says what it was. IC-LoRA references guide stage 1 only: stage 2
    runs without the IC-LoRAs, as the official IC-LoRA pipeline's does.
    """
    import torch

    from .ic_lora import without_controls
    from .lora import active_loras, lora_note
    from .memory import apply_policy
    from .upsampler import check_upsampler, upsample

    make_geometry(settings.width, settings.height, settings.num_frames or MIN_FRAMES, settings.fps, MULTISCALE_MULTIPLE)
    settings, duration_note = resolve_duration(model, conditioning, settings)  # predicted once, for both stages
    final = make_geometry(settings.width, settings.height, settings.num_frames, settings.fps, MULTISCALE_MULTIPLE)
    half = replace(settings, width=final.width // 2, height=final.height // 2, num_frames=final.num_frames)
    p1 = _with_note(plan(model, half), duration_note)
    check_conditioning(model, conditioning)
    if refine_model.family.name != model.family.name:
        raise L2AError(
            f"the stage-2 model is {refine_model.family.label} but stage 1 runs {model.family.label}: refine with the "
            "same family."
        )
    check_upsampler(upsampler, model)
    prepared, reference_notes = reference_conditions(model, p1.geometry)
    p1 = with_appended_tokens(p1, model, conditioning, prepared)
    controlled = refine_model.controls
    refine_model = without_controls(refine_model)
    if controlled:
        reference_notes.append("stage 2 without " + ", ".join(c.name for c in controlled)
                               + " (as the official IC-LoRA pipeline)")
    sigmas = fixed_sigmas(refine_model.family.stage_2_sigmas)
    p2 = replace(p1, geometry=final, sigmas=sigmas, schedule="distilled refinement", guidance=Guidance.off(),
                 sampler="euler")  # stage 2 is plain Euler in every family (official)
    steps_one = len(p1.sigmas) - 1
    total = steps_one + len(sigmas) - 1
    report = " | ".join(part for part in (
        f"multiscale: stage 1 {p1.geometry.width}x{p1.geometry.height}", p1.report(), lora_note(model), *model.notes,
        f"stage 2 {final.width}x{final.height}, {len(sigmas) - 1} distilled refinement steps, no guidance, "
        f"{stage_two_note(model, refine_model)}", *reference_notes) if part)

    generator = torch.Generator("cpu").manual_seed(p1.seed)
    with torch.no_grad():
        apply_policy(model)
        with active_loras(model):
            references = encode_references(model, prepared, conditioning.frame_rate)
            video = prepare_video_tokens(model, conditioning, p1.geometry, generator, references=references)
            audio = prepare_audio_tokens(model, p1.geometry, generator, packed_noise=bool(references))
            first = _denoise(model, conditioning, p1, video, audio, _progress_from(on_step, 0, total),
                             check_interrupt)
            low = _finish(model, p1, *first, audio.mel_bins, video.main_count, "")
        upsampled = upsample(upsampler, model, low.video)
        noise_scale = float(sigmas[0])
        apply_policy(refine_model)
        with active_loras(refine_model):
            video = prepare_video_tokens(refine_model, conditioning, final, generator, upsampled, noise_scale)
            audio = prepare_audio_tokens(refine_model, final, generator, low.audio, noise_scale)
            second = _denoise(refine_model, conditioning, p2, video, audio,
                              _progress_from(on_step, steps_one, total), check_interrupt)
        return _finish(refine_model, p2, *second, audio.mel_bins, video.main_count, report)
