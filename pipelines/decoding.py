"""Latents to pixels and sound: the video VAE (optionally tiled in space and time) and audio VAE + vocoder."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import L2AError


@dataclass(frozen=True)
class Tiling:
    """VAE decode tiling; tiles overlap so seams blend. Sizes are in pixels and frames."""

    spatial: bool = False
    tile_size: int = 512
    tile_overlap: int = 64
    temporal: bool = False
    tile_frames: int = 16
    frame_overlap: int = 8

    def check(self) -> None:
        if self.spatial and not 0 <= self.tile_overlap < self.tile_size:
            raise L2AError(
                f"tile overlap {self.tile_overlap} must be smaller than the tile size {self.tile_size}: "
                "use e.g. tile 512 with overlap 64."
            )
        if self.temporal and not 0 <= self.frame_overlap < self.tile_frames:
            raise L2AError(
                f"frame overlap {self.frame_overlap} must be smaller than the tile length {self.tile_frames}: "
                "use e.g. 16 frames with overlap 8."
            )


def _safe_stride(stride: int, tile: int, sizes: tuple[int, ...]) -> int:
    """A spatial tile stride (in latents) that never leaves a last tile one latent wide.

    diffusers tiles both sides once either exceeds the tile, starting a tile every `stride` latents, so a side of
    k*stride + 1 latents ends in a 1-wide tile, which the decoder's reflect padding cannot handle. The nearest
    stride (less overlap first) without that is used instead.
    """
    def fits(candidate):
        return all(size == 1 or (size - 1) % candidate for size in sizes)

    for delta in range(tile):
        for candidate in (stride + delta, stride - delta):
            if 1 <= candidate <= tile and fits(candidate):
                return candidate
    return tile


def _configure_tiling(vae, tiling: Tiling, latent_height: int, latent_width: int) -> None:
    ratio = vae.spatial_compression_ratio
    tile = max(1, tiling.tile_size // ratio)
    stride = _safe_stride(max(1, (tiling.tile_size - tiling.tile_overlap) // ratio), tile, (latent_height, latent_width))
    vae.use_tiling = tiling.spatial
    vae.use_framewise_decoding = tiling.temporal
    vae.tile_sample_min_height = vae.tile_sample_min_width = tile * ratio
    vae.tile_sample_stride_height = vae.tile_sample_stride_width = stride * ratio
    vae.tile_sample_min_num_frames = tiling.tile_frames
    vae.tile_sample_stride_num_frames = tiling.tile_frames - tiling.frame_overlap


def decode_video(model, latent, tiling: Tiling | None = None):
    """Raw video latent -> ComfyUI IMAGE [F, H, W, 3] float32 in 0..1 on the CPU."""
    import torch

    from .memory import apply_policy, policy_of

    apply_policy(model)
    forced = policy_of(model).vae_tiling
    tiling = tiling or Tiling()
    tiling = replace(tiling, spatial=tiling.spatial or forced in ("spatial", "both"),
                     temporal=tiling.temporal or forced in ("temporal", "both"))
    tiling.check()
    vae = model.vae
    _configure_tiling(vae, tiling, *latent.video.shape[-2:])
    with torch.no_grad():
        frames = vae.decode(latent.video.to(model.device, vae.dtype), None, return_dict=False)[0]
    frames = (frames.float() / 2 + 0.5).clamp(0, 1)
    return frames[0].permute(1, 2, 3, 0).cpu()


def decode_audio(model, latent):
    """Raw audio latent -> waveform [1, 2, S] float32 at the vocoder's sample rate, never NaN or inf."""
    import torch

    from .memory import apply_policy

    apply_policy(model)
    with torch.no_grad():
        mel = model.audio_vae.decode(latent.audio.to(model.device, model.audio_vae.dtype), return_dict=False)[0]
        waveform = model.vocoder(mel.to(next(model.vocoder.parameters()).dtype)).float()
    if not latent.has_audio:
        waveform = torch.zeros_like(waveform)
    return torch.nan_to_num(waveform, nan=0.0, posinf=0.0, neginf=0.0).clamp(-1, 1).cpu(), model.audio_sample_rate
