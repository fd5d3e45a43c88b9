"""Latents to pixels and sound: the video VAE (optionally tiled in space and time) or LTX-2.5's diffusion decoder,
and the audio VAE + vocoder."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import L2AError

# The video decoders: the model's conv VAE decoder, or LTX-2.5's diffusion decoder (its own file, see extras.py).
DECODERS = ("conv", "diffusion")


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


def decode_video(model, latent, tiling: Tiling | None = None, decoder: str = "conv", on_progress=None):
    """Raw video latent -> ComfyUI IMAGE [F, H, W, 3] float32 in 0..1 on the CPU.

    `decoder` "diffusion" runs LTX-2.5's diffusion decoder (found and loaded on first use; `on_progress(done, total)`
    runs before each of its attention blocks, and cancels by raising). The memory policy's forced tiling applies to
    both decoders."""
    import torch

    from .memory import apply_policy, policy_of

    if decoder not in DECODERS:
        raise L2AError(f"decoder = {decoder!r} is unknown: use one of {', '.join(DECODERS)}.")
    forced = policy_of(model).vae_tiling
    tiling = tiling or Tiling()
    tiling = replace(tiling, spatial=tiling.spatial or forced in ("spatial", "both"),
                     temporal=tiling.temporal or forced in ("temporal", "both"))
    tiling.check()
    if decoder == "diffusion":
        return _decode_with_diffusion(model, latent, tiling, on_progress)
    apply_policy(model)
    vae = model.vae
    _configure_tiling(vae, tiling, *latent.video.shape[-2:])
    if tiling.temporal:
        return _decode_in_time_tiles(vae, latent.video.to(model.device, vae.dtype))
    with torch.no_grad():
        frames = vae.decode(latent.video.to(model.device, vae.dtype), None, return_dict=False)[0]
    return _to_image(frames[0])


def _decode_with_diffusion(model, latent, tiling: Tiling, on_progress):
    """The diffusion decoder on the model's device, its noise seeded with the latent's seed; with an offloading
    memory policy it goes back to system memory afterwards, as the model's own weights do."""
    from .diffusion_decoder import decode_video_diffusion
    from .extras import diffusion_decoder_of
    from .memory import make_room, policy_of

    decoder = diffusion_decoder_of(model)
    make_room(model)
    try:
        return decode_video_diffusion(decoder, latent.video, latent.seed, tiling, device=model.device,
                                      on_progress=on_progress)
    finally:
        if policy_of(model).offloads:
            decoder.module.to("cpu")


def _to_image(frames):
    """VAE output [3, F, H, W] in -1..1 -> IMAGE [F, H, W, 3] in 0..1 on the CPU: one copy, the rest in place
    (the input is left as it is: the time-tile loop still blends from it)."""
    return frames.float().mul(0.5).add_(0.5).clamp_(0, 1).permute(1, 2, 3, 0).cpu()


def _decode_in_time_tiles(vae, video):
    """Temporal tiling with flat working memory: diffusers' temporal tiled decode (same tiles, same linear blend
    over the overlap) but keeping only the previous tile and writing each finished part into the output at once,
    instead of holding every decoded tile and concatenating them."""
    import torch

    frames_in = video.shape[2]
    ratio = vae.temporal_compression_ratio
    tile = vae.tile_sample_min_num_frames // ratio
    stride = vae.tile_sample_stride_num_frames // ratio
    stride_frames = vae.tile_sample_stride_num_frames
    blend = vae.tile_sample_min_num_frames - stride_frames
    total = (frames_in - 1) * ratio + 1
    out = torch.empty((total, video.shape[3] * vae.spatial_compression_ratio,
                       video.shape[4] * vae.spatial_compression_ratio, 3), dtype=torch.float32)
    previous, written = None, 0
    vae.use_framewise_decoding = False  # each tile is decoded whole; the loop here does the time tiling
    try:
        with torch.no_grad():
            for index, start in enumerate(range(0, frames_in, stride)):
                decoded = vae.decode(video[:, :, start : start + tile + 1], None, return_dict=False)[0]
                if index > 0:
                    decoded = decoded[:, :, :-1]
                    extent = min(previous.shape[2], decoded.shape[2], blend)
                    for x in range(extent):
                        decoded[:, :, x] = (previous[:, :, -extent + x] * (1 - x / extent)
                                            + decoded[:, :, x] * (x / extent))
                keep = decoded[0, :, : stride_frames + (1 if index == 0 else 0)]
                count = min(keep.shape[1], total - written)
                out[written : written + count] = _to_image(keep[:, :count])
                written += count
                previous = decoded
    finally:
        vae.use_framewise_decoding = True  # as _configure_tiling set it for this temporal decode
    return out


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
