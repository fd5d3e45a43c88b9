"""Audio-aware editing: extend a clip, generate video for given audio, retake a time window.

All three run the sampler with a CleanContext: the latents of what must stay (the clip's tail, the whole audio,
everything outside the window) are encoded and kept clean by time while the rest is generated with them in view.
Afterwards the input's own frames and samples are put back untouched outside the generated part, and sound is
crossfaded where old and new meet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from .checks import check_number, check_sample_rate
from .choices import RETAKE_PARTS
from .errors import L2AError
from .geometry import SPATIAL, TEMPORAL, audio_latent_frames, snap_frames
from .sampling import CleanContext, SamplerSettings, resolve_seed, sample

WINDOW_SECONDS = 20.0  # LTX-2's positional window: one generation covers at most about 20 s
SEAM_SECONDS = 0.05  # crossfade at the edges of a retake window


@dataclass
class Clip:
    """Frames [F, H, W, 3] in 0..1 at `fps`, with optional audio [C, S] at `sample_rate`."""

    frames: Any
    fps: float
    audio: Any = None
    sample_rate: int | None = None

    @property
    def duration(self) -> float:
        return self.frames.shape[0] / self.fps

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[2]), int(self.frames.shape[1])


@dataclass
class EditResult:
    """The edited clip, plus the last generation's latent and clean context (what was kept, for inspection)."""

    clip: Clip
    report: str
    seed: int
    latent: Any = None
    context: CleanContext | None = None


def fit_clip(clip: Clip, mode: str = "crop") -> tuple[Clip, str]:
    """A clip whose size is a multiple of 32: 'crop' keeps the centre, 'resize' scales to the nearest multiples."""
    import torch

    width, height = clip.size
    if width % SPATIAL == 0 and height % SPATIAL == 0:
        return clip, ""
    if mode == "crop":
        new_w, new_h = max(SPATIAL, width // SPATIAL * SPATIAL), max(SPATIAL, height // SPATIAL * SPATIAL)
    elif mode == "resize":
        new_w = max(SPATIAL, round(width / SPATIAL) * SPATIAL)
        new_h = max(SPATIAL, round(height / SPATIAL) * SPATIAL)
    else:
        raise L2AError(f"size mode = {mode!r} is unknown: use 'crop' or 'resize'.")
    pixels = (clip.frames.clamp(0, 1) * 255).permute(0, 3, 1, 2)
    if mode == "crop":
        top, left = (height - new_h) // 2, (width - new_w) // 2
        pixels = pixels[:, :, top : top + new_h, left : left + new_w]
    else:
        pixels = torch.nn.functional.interpolate(pixels, size=(new_h, new_w), mode="bilinear", align_corners=False)
    frames = (pixels / 255).permute(0, 2, 3, 1).contiguous()
    return replace(clip, frames=frames), f"clip {width}x{height} {'cropped' if mode == 'crop' else 'resized'} to " \
                                         f"{new_w}x{new_h} (LTX-2 needs multiples of 32)"


def encode_frames(model, frames):
    """Frames [F, H, W, 3] in 0..1 (F = 8k+1) -> raw video latent [1, C, (F-1)/8+1, H/32, W/32]."""
    import torch

    pixels = frames.to(torch.float32).permute(3, 0, 1, 2)[None] * 2.0 - 1.0
    vae = model.vae
    with torch.no_grad():
        return vae.encode(pixels.to(model.device, vae.dtype)).latent_dist.mode().to(torch.float32)


def _model_rate_audio(model, clip: Clip):
    """The clip's audio at the model's output rate, exactly as long as the video (None without audio)."""
    from .audio import fit_length, resample, to_stereo

    if clip.audio is None:
        return None
    rate = model.audio_sample_rate
    audio = to_stereo(clip.audio.float())
    if clip.sample_rate != rate:
        audio = resample(audio, clip.sample_rate, rate)
    return fit_length(audio, round(clip.duration * rate))


def _audio_latents(model, waveform, seconds: float, num_latents: int):
    """Raw audio latents for `waveform` (at the model's rate) padded with silence to `seconds`."""
    from .audio import encode_audio, fit_length

    rate = model.audio_sample_rate
    return encode_audio(model, fit_length(waveform, round(seconds * rate)), rate, num_latents)


def _generate(model, conditioning, settings: SamplerSettings, context: CleanContext, hooks: dict):
    from .decoding import decode_audio, decode_video

    latent = sample(model, conditioning, settings, context=context, **hooks)
    frames = decode_video(model, latent)
    waveform, _ = decode_audio(model, latent)
    return latent, frames, waveform[0]


def max_generation_frames(fps: float) -> int:
    """The longest 8k+1 frame count inside LTX-2's window at this frame rate."""
    return (int(WINDOW_SECONDS * fps) - 1) // TEMPORAL * TEMPORAL + 1


def check_clip(clip: Clip) -> None:
    """A clip's frame rate is a finite number LTX-2 can play (1 to 120 fps) and it has frames."""
    check_number("the clip's frame rate", clip.fps, 1.0, 120.0, "LTX-2 is trained at 24-30 fps")
    if clip.frames.shape[0] < 1:
        raise L2AError("the clip has no frames: give a video with at least one frame.")


def frames_to_add(seconds, frames, fps: float) -> int:
    """How many frames an extension adds: `frames` when given (> 0), else `seconds` at the clip's rate; at least
    one frame (0, negative, NaN or infinite lengths are refused, never turned into 8 frames)."""
    frames = int(check_number("frames to add", frames, 0, hint="0 = use the seconds"))
    if frames > 0:
        return frames
    seconds = check_number("seconds to add", seconds, 0.0)
    count = round(seconds * fps)
    if count < 1:
        raise L2AError(f"seconds to add = {seconds:g} adds no frame at {fps:g} fps: add at least "
                       f"{TEMPORAL / fps:.2f} s (or some frames).")
    return count


def check_extend(clip: Clip, add_frames: int, overlap_frames: int) -> None:
    """Everything extend checks before any model work: the clip, a positive length and an 8k+1 overlap it holds."""
    check_clip(clip)
    if check_number("frames to add", add_frames, 1, hint=f"rounded to a multiple of {TEMPORAL}") % 1:
        raise L2AError(f"frames to add = {add_frames!r} is not a whole number of frames.")
    frames_in = clip.frames.shape[0]
    if overlap_frames < 1 or (overlap_frames - 1) % TEMPORAL:
        raise L2AError(f"overlap = {overlap_frames} frames is not 8k+1: use e.g. {snap_frames(overlap_frames)}.")
    if frames_in < overlap_frames:
        raise L2AError(
            f"the clip has {frames_in} frames, fewer than the {overlap_frames}-frame overlap: use an overlap of at "
            f"most {max(1, (frames_in - 1) // TEMPORAL * TEMPORAL + 1)} frames or a longer clip."
        )
    if max_generation_frames(clip.fps) - overlap_frames < TEMPORAL:
        raise L2AError(f"an overlap of {overlap_frames} frames fills LTX-2's {WINDOW_SECONDS:g} s window at "
                       f"{clip.fps:g} fps: use a shorter overlap.")


def extend(model, conditioning, clip: Clip, add_frames: int, overlap_frames: int, settings: SamplerSettings,
           hooks: dict | None = None) -> EditResult:
    """Continue a clip by `add_frames` (rounded to a multiple of 8), video and audio together.

    The last `overlap_frames` (8k+1) of the clip, with their sound, are the clean start of each generated part;
    requests longer than the model's window are made in several parts (seed, seed+1, ...). Settings give seed,
    steps and guidance; size and frame rate are the clip's. An IC-LoRA's control video on the model covers the new
    frames: its first frame is the first frame added.
    """
    import torch

    from .audio import crossfade, fit_length

    frames_in = clip.frames.shape[0]
    check_extend(clip, add_frames, overlap_frames)
    per_part = max_generation_frames(clip.fps) - overlap_frames
    wanted = max(TEMPORAL, round(add_frames / TEMPORAL) * TEMPORAL)
    notes = [] if wanted == add_frames else [f"{add_frames} new frames rounded to {wanted} (a multiple of 8)"]
    parts = math.ceil(wanted / per_part)
    if parts > 1:
        notes.append(f"{wanted} frames exceed one {WINDOW_SECONDS:g} s window: made in {parts} parts")
    seed = resolve_seed(settings.seed)
    rate = model.audio_sample_rate
    overlap_seconds = overlap_frames / clip.fps
    overlap_samples = round(overlap_seconds * rate)
    frames, audio = clip.frames, _model_rate_audio(model, clip)
    for part in range(parts):
        total = overlap_frames + min(per_part, wanted - part * per_part)
        step = replace(settings, width=clip.size[0], height=clip.size[1], num_frames=total, fps=clip.fps,
                       seed=seed + part)
        tail_latent = encode_frames(model, frames[-overlap_frames:])
        kept = tail_latent.shape[2]
        grid = (total - 1) // TEMPORAL + 1
        video = torch.cat([tail_latent, tail_latent.new_zeros((1, tail_latent.shape[1], grid - kept,
                                                                *tail_latent.shape[-2:]))], dim=2)
        keep_video = torch.cat([torch.ones(kept), torch.zeros(grid - kept)])
        # An IC-LoRA's control video covers the new frames: its frame part * per_part goes to the first new frame.
        context = CleanContext(video=video, video_keep=keep_video, control_at=overlap_frames,
                               control_from=part * per_part)
        if audio is not None:
            latents = audio_latent_frames(total, clip.fps)
            encoded = _audio_latents(model, audio[:, audio.shape[1] - overlap_samples:], total / clip.fps, latents)
            keep_audio = torch.zeros(latents)
            keep_audio[: math.floor(overlap_seconds * 25)] = 1.0
            context = replace(context, audio=encoded, audio_keep=keep_audio)
        latent, generated, waveform = _generate(model, conditioning, step, context, hooks or {})
        frames = torch.cat([frames, generated[overlap_frames:].to(frames.dtype)])
        waveform = fit_length(waveform, round(total / clip.fps * rate))
        if audio is None:
            silence = waveform.new_zeros((2, round((frames.shape[0] - total) / clip.fps * rate)))
            audio = torch.cat([silence, waveform], dim=1)
        else:
            audio = crossfade(audio, waveform, overlap_samples)
    out = Clip(frames=frames, fps=clip.fps, audio=audio, sample_rate=rate)
    report = (f"extended {frames_in} → {frames.shape[0]} frames ({clip.duration:.2f} s → {out.duration:.2f} s) "
              f"with a {overlap_frames}-frame overlap | {latent.report}")
    return EditResult(out, " | ".join([report, *notes]), seed, latent, context)


MIN_AUDIO_SECONDS, MAX_AUDIO_SECONDS = 2.0, 20.0


def check_audio_input(audio, sample_rate, fps) -> float:
    """The audio-to-video checks that need no model: a positive whole sample rate, a finite frame rate and 2-20 s of
    audio; returns the audio's length in seconds."""
    check_sample_rate(sample_rate)
    check_number("fps", fps, 1.0, 120.0, "LTX-2 is trained at 24-30")
    seconds = audio.shape[-1] / sample_rate
    if not MIN_AUDIO_SECONDS <= seconds <= MAX_AUDIO_SECONDS:
        raise L2AError(
            f"the audio is {seconds:.2f} s long: use {MIN_AUDIO_SECONDS:g} to {MAX_AUDIO_SECONDS:g} s (trim it, or "
            "split longer audio and extend the video part by part)."
        )
    return seconds


def audio_to_video(model, conditioning, audio, sample_rate: int, settings: SamplerSettings,
                   hooks: dict | None = None) -> EditResult:
    """Video for given audio (lip-sync, music video): its length follows the audio, which is frozen while the video
    is generated and passed through to the output untouched. A first frame comes from the conditioning. As in the
    official A2Vid pipeline the audio guider is off and the unconditional pass keeps the positive audio prompt."""
    import torch

    from .audio import fit_length, resample, to_stereo

    seconds = check_audio_input(audio, sample_rate, settings.fps)
    sample_rate = int(sample_rate)
    wanted = round(seconds * settings.fps)
    total = max(9, math.ceil((wanted - 1) / TEMPORAL) * TEMPORAL + 1)  # may pass 20 s by < 8 frames, then cut
    rate = model.audio_sample_rate
    stereo = to_stereo(audio.float())
    model_audio = stereo if sample_rate == rate else resample(stereo, sample_rate, rate)
    latents = audio_latent_frames(total, settings.fps)
    encoded = _audio_latents(model, model_audio, total / settings.fps, latents)
    context = CleanContext(audio=encoded, audio_keep=torch.ones(latents), audio_is_condition=True)
    step = replace(settings, num_frames=total)
    latent, generated, _ = _generate(model, conditioning, step, context, hooks or {})
    frames = generated[:wanted]
    out = Clip(frames=frames, fps=settings.fps, audio=fit_length(audio.float(), audio.shape[-1]),
               sample_rate=sample_rate)
    report = (f"audio-to-video: {seconds:.2f} s of audio → {wanted} frames at {settings.fps:g} fps "
              f"(generated {total}, the audio kept as given) | {latent.report}")
    return EditResult(out, report, latent.seed, latent, context)



def _window_weights(count: int, start: float, end: float, fade: float):
    """Per-sample (or per-frame) weight of the new material: 1 inside [start, end), 0 outside, linear ramps of
    `fade` (in the same units) centred on the edges."""
    import torch

    position = torch.arange(count, dtype=torch.float32) + 0.5
    if fade <= 0:
        return ((position >= start) & (position < end)).float()
    rise = ((position - (start - fade / 2)) / fade).clamp(0, 1)
    fall = (((end + fade / 2) - position) / fade).clamp(0, 1)
    return torch.minimum(rise, fall)


def check_window(clip: Clip, start, end, part: str) -> None:
    """The retake checks that need no model: a known part, finite times, start before end, inside the clip."""
    check_clip(clip)
    if part not in RETAKE_PARTS:
        raise L2AError(f"retake part = {part!r} is unknown: use one of {', '.join(RETAKE_PARTS)}.")
    start, end = check_number("window start", start), check_number("window end", end)
    if end <= start:
        raise L2AError(f"the window ends at {end:g} s, not after its start at {start:g} s: give an end later than "
                       "the start (start and end may have been swapped).")
    if start < 0 or end > clip.duration + 1e-9:
        raise L2AError(
            f"the window {start:g}-{end:g} s is outside the {clip.duration:.2f} s clip: use 0 <= start < end <= "
            f"{clip.duration:.2f}."
        )
    if clip.duration > WINDOW_SECONDS:
        raise L2AError(f"the clip is {clip.duration:.2f} s long: retake works on clips up to {WINDOW_SECONDS:g} s; "
                       "cut the part around the window first.")


def retake(model, conditioning, clip: Clip, start: float, end: float, part: str, settings: SamplerSettings,
           hooks: dict | None = None) -> EditResult:
    """Regenerate `part` ("both", "video" or "audio") inside [start, end) seconds and keep the rest of the clip."""
    import torch

    from .audio import fit_length

    check_window(clip, start, end, part)
    frames_in = clip.frames.shape[0]
    total = max(9, math.ceil((frames_in - 1) / TEMPORAL) * TEMPORAL + 1)
    padded = torch.cat([clip.frames, clip.frames[-1:].expand(total - frames_in, -1, -1, -1)])
    video = encode_frames(model, padded)
    grid = video.shape[2]
    starts = torch.tensor([0.0] + [(TEMPORAL * (j - 1) + 1) for j in range(1, grid)]) / clip.fps
    ends = torch.tensor([1.0] + [(TEMPORAL * j + 1) for j in range(1, grid)]) / clip.fps
    inside = (starts < end) & (ends > start)
    keep_video = (~inside).float() if part in ("both", "video") else torch.ones(grid)
    rate = model.audio_sample_rate
    audio = _model_rate_audio(model, clip)
    if audio is None:
        audio = torch.zeros((2, round(clip.duration * rate)))
    latents = audio_latent_frames(total, clip.fps)
    encoded = _audio_latents(model, audio, total / clip.fps, latents)
    times = torch.arange(latents, dtype=torch.float32) / 25.0
    audio_inside = (times < end) & (times + 1 / 25.0 > start)
    keep_audio = (~audio_inside).float() if part in ("both", "audio") else torch.ones(latents)
    context = CleanContext(video=video, video_keep=keep_video, audio=encoded, audio_keep=keep_audio)
    step = replace(settings, width=clip.size[0], height=clip.size[1], num_frames=total, fps=clip.fps)
    latent, generated, waveform = _generate(model, conditioning, step, context, hooks or {})
    frames = clip.frames
    if part in ("both", "video"):
        weight = _window_weights(frames_in, start * clip.fps, end * clip.fps, 0)[:, None, None, None]
        frames = frames * (1 - weight) + generated[:frames_in].to(frames.dtype) * weight
    if part in ("both", "audio"):
        new = fit_length(waveform, audio.shape[1])
        weight = _window_weights(audio.shape[1], start * rate, end * rate, SEAM_SECONDS * rate)
        audio = audio * (1 - weight) + new * weight
    out = Clip(frames=frames, fps=clip.fps, audio=audio, sample_rate=rate)
    what = {"both": "video and audio", "video": "video", "audio": "audio"}[part]
    report = f"retake of the {what} from {start:g} s to {end:g} s | {latent.report}"
    return EditResult(out, report, latent.seed, latent, context)
