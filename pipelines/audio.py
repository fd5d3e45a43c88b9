"""Audio for extending clips: resampling, stereo, LTX-2's log-mel transform, audio VAE encoding and the seam.

The log-mel transform reproduces ltx-core's `AudioProcessor` (torchaudio `MelSpectrogram`, Slaney mel scale and
norm, magnitude, `log(clamp(x, 1e-5))`) in plain torch, because torchaudio is not a dependency of the pack.

Audio latent timing (measured on the diffusers `AutoencoderKLLTX2Audio`, causal in time): T mel frames encode to
ceil(T / 4) latents, and latent i depends only on mel frames 0..4i. With hop 160 at 16 kHz, latent i therefore sits
at i / 25 s, one latent per 640 samples, which is the sampler's 25-per-second grid (`audio_latent_frames`).

Nodes import this module lazily, so av and torch are imported at the top.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import av
import numpy as np
import torch

from .errors import L2AError
from .geometry import audio_latent_frames

N_FFT = 1024
HOP_LENGTH = 160
MEL_SAMPLE_RATE = 16000
LOG_FLOOR = 1e-5

# Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 mels per factor 6.4).
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_BREAK_MEL = 15.0
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


def _check_rate(name: str, rate) -> int:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 < rate < math.inf or rate % 1:
        raise L2AError(f"{name} must be a positive whole number of Hz; got {rate!r}.")
    return int(rate)


def pad_to_video(waveform, frames: int, fps: float, sample_rate: int):
    """A decoded soundtrack padded with silence to the video's exact length.

    The audio VAE turns L latents into 4L-3 mel frames, so decoded audio ends 30-45 ms before the picture; files
    get the missing tail as silence so audio length equals video length. Longer audio is left as it is.
    """
    target = round(frames / fps * sample_rate)
    return fit_length(waveform, target) if waveform.shape[-1] < target else waveform


def fit_length(waveform: torch.Tensor, samples: int) -> torch.Tensor:
    """Trim, or pad with silence at the end, so the last axis has exactly `samples` samples."""
    if samples < 0:
        raise L2AError(f"Audio length must be 0 or more samples; got {samples}.")
    length = waveform.shape[-1]
    if length >= samples:
        return waveform[..., :samples]
    return torch.nn.functional.pad(waveform, (0, samples - length))


def resample(waveform: torch.Tensor, from_rate: int, to_rate: int) -> torch.Tensor:
    """[C, S] -> [C, round(S * to_rate / from_rate)] float32 with FFmpeg's swresample, time-aligned with the input;
    the waveform itself when the rates match.

    swresample holds back up to a filter's length of input, and a very short input entirely, so a little silence is
    appended and the result cut to the exact length (what is kept does not depend on how much silence).
    """
    from_rate, to_rate = _check_rate("Source sample rate", from_rate), _check_rate("Target sample rate", to_rate)
    if waveform.ndim != 2:
        raise L2AError(f"resample takes a [channels, samples] waveform; got shape {tuple(waveform.shape)}.")
    if from_rate == to_rate:
        return waveform
    samples = waveform.shape[1]
    target = round(samples * to_rate / from_rate)
    if samples == 0:
        return waveform.new_zeros((waveform.shape[0], 0), dtype=torch.float32)
    margin = from_rate // 50 + 64
    padded = np.zeros((waveform.shape[0], samples + margin), dtype=np.float32)
    padded[:, :samples] = waveform.detach().to("cpu", torch.float32).numpy()
    channels = []
    for channel in padded:
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=to_rate)
        frame = av.AudioFrame.from_ndarray(channel[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = from_rate, 0, Fraction(1, from_rate)
        pieces = resampler.resample(frame) + resampler.resample(None)
        channels.append(np.concatenate([piece.to_ndarray()[0] for piece in pieces]))
    out = torch.from_numpy(np.stack(channels)).to(waveform.device)
    return fit_length(out, target)


def to_stereo(waveform: torch.Tensor) -> torch.Tensor:
    """[S], [1, S], [2, S] or [C, S] -> [2, S]: mono is duplicated; more than two channels are averaged to mono
    first, as their layout (and so a proper downmix) is unknown here."""
    if waveform.ndim == 1:
        waveform = waveform[None]
    if waveform.ndim != 2 or waveform.shape[0] == 0:
        raise L2AError(f"Audio must be [samples] or [channels, samples]; got shape {tuple(waveform.shape)}.")
    channels = waveform.shape[0]
    if channels == 2:
        return waveform
    if channels > 2:
        waveform = waveform.mean(dim=0, keepdim=True)
    return waveform.expand(2, -1).clone()


def hz_to_mel(freq):
    """Slaney mel of a frequency in Hz (float or tensor)."""
    if isinstance(freq, torch.Tensor):
        log_part = _SLANEY_BREAK_MEL + torch.log(freq.clamp(min=_SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
        return torch.where(freq < _SLANEY_BREAK_HZ, freq * 3.0 / 200.0, log_part)
    if freq < _SLANEY_BREAK_HZ:
        return freq * 3.0 / 200.0
    return _SLANEY_BREAK_MEL + math.log(freq / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP


def mel_to_hz(mel):
    """Inverse of `hz_to_mel` (float or tensor)."""
    if isinstance(mel, torch.Tensor):
        log_part = _SLANEY_BREAK_HZ * torch.exp((mel - _SLANEY_BREAK_MEL) * _SLANEY_LOG_STEP)
        return torch.where(mel < _SLANEY_BREAK_MEL, mel * 200.0 / 3.0, log_part)
    if mel < _SLANEY_BREAK_MEL:
        return mel * 200.0 / 3.0
    return _SLANEY_BREAK_HZ * math.exp((mel - _SLANEY_BREAK_MEL) * _SLANEY_LOG_STEP)


def mel_filterbank(n_mels: int, sample_rate: int = MEL_SAMPLE_RATE, n_fft: int = N_FFT, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    """Slaney-normalized triangular mel filters [n_fft // 2 + 1, n_mels] (torchaudio's `melscale_fbanks` layout).

    Filter m rises from edge m to a peak of 2 / (f[m+2] - f[m]) at edge m+1 and falls to 0 at edge m+2, where the
    n_mels + 2 edges are evenly spaced in mel; the height makes every triangle's area 1 (Slaney's "equal area").
    Built in float64, returned as float32.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    bins = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    triangles = torch.minimum(rising, falling).clamp(min=0.0)
    return (triangles * (2.0 / (upper - lower))).to(torch.float32)


def log_mel(waveform: torch.Tensor, mel_bins: int, sample_rate: int = MEL_SAMPLE_RATE,
            hop_length: int = HOP_LENGTH) -> torch.Tensor:
    """[B, C, S] waveform -> [B, C, S // hop + 1, mel_bins] log-magnitude mel spectrogram, as the audio VAE was
    trained on: centred 1024-point STFT (reflect padding, periodic Hann), 0 .. sample_rate / 2."""
    if waveform.ndim != 3:
        raise L2AError(f"log_mel takes a [batch, channels, samples] waveform; got shape {tuple(waveform.shape)}.")
    batch, channels, samples = waveform.shape
    if samples <= N_FFT // 2:
        raise L2AError(
            f"Audio of {samples} samples is too short for the mel transform: it needs more than {N_FFT // 2}"
            f" ({(N_FFT // 2 + 1) / sample_rate:.3f} s at {sample_rate} Hz)."
        )
    flat = waveform.reshape(batch * channels, samples).to(torch.float32)
    window = torch.hann_window(N_FFT, periodic=True, device=flat.device)
    spectrum = torch.stft(flat, N_FFT, hop_length=hop_length, win_length=N_FFT, window=window, center=True,
                          pad_mode="reflect", normalized=False, onesided=True, return_complex=True).abs()
    filters = mel_filterbank(mel_bins, sample_rate).to(flat.device)
    mel = spectrum.transpose(1, 2) @ filters
    return torch.log(mel.clamp(min=LOG_FLOOR)).reshape(batch, channels, -1, mel_bins)


def encode_audio(model, waveform: torch.Tensor, sample_rate: int, num_latents: int | None = None) -> torch.Tensor:
    """A waveform ([S], [C, S] or [1, C, S]) -> raw audio latents [1, C, L, M] float32 on the model's device.

    The clip starts at latent 0, so latent i covers the audio around i / 25 s (see the module notes). Without
    `num_latents`, L is what the sampler allots to the clip's duration (`audio_latent_frames`, round(25 * seconds)).
    The 16 kHz audio is fitted to L * 640 samples (silence appended, or the rest dropped) and the one extra latent
    the encoder then returns is cut; as the encoder is causal, the L latents kept do not depend on that tail.
    Decoding L latents gives (4L - 3) mel frames, 240 samples each at 24 kHz; encode such audio with
    `num_latents=L` to get all L latents back, as its duration rounds to L - 1.
    """
    sample_rate = _check_rate("Audio sample rate", sample_rate)
    if waveform.ndim == 3 and waveform.shape[0] == 1:
        waveform = waveform[0]
    stereo = to_stereo(waveform)
    vae = model.audio_vae
    config = vae.config
    per_latent = config.mel_hop_length * vae.temporal_compression_ratio
    if num_latents is None:
        num_latents = audio_latent_frames(stereo.shape[1], sample_rate, config.sample_rate, config.mel_hop_length,
                                          vae.temporal_compression_ratio)
    if int(num_latents) != num_latents or num_latents < 1:
        seconds = stereo.shape[1] / sample_rate
        raise L2AError(
            f"Audio needs at least one latent ({per_latent / config.sample_rate:.3f} s); got num_latents"
            f" {num_latents!r} for {seconds:.3f} s of audio."
        )
    num_latents = int(num_latents)
    wave = resample(stereo.to(torch.float32), sample_rate, config.sample_rate)
    wave = fit_length(wave, num_latents * per_latent)
    mel = log_mel(wave[None].to(model.device), config.mel_bins, config.sample_rate, config.mel_hop_length)
    with torch.no_grad():
        latents = vae.encode(mel.to(vae.dtype)).latent_dist.mode()
    return latents[:, :, :num_latents].to(torch.float32)


def crossfade(a: torch.Tensor, b: torch.Tensor, fade_samples: int) -> torch.Tensor:
    """Join [C, S] waveforms whose last / first `fade_samples` cover the same time, with a linear crossfade.

    Across the overlap b's weight runs (k + 1) / (fade + 1) for k = 0 .. fade - 1, never 0 or 1, so no sample of
    either side is repeated; before the overlap `a` and after it `b` are kept exactly. The result has
    len(a) + len(b) - fade_samples samples.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise L2AError(
            f"crossfade needs two [channels, samples] waveforms with the same channels; got {tuple(a.shape)} and"
            f" {tuple(b.shape)}."
        )
    if isinstance(fade_samples, bool) or int(fade_samples) != fade_samples or fade_samples < 0:
        raise L2AError(f"Crossfade length must be 0 or more samples; got {fade_samples!r}.")
    fade = int(fade_samples)
    if fade > a.shape[1] or fade > b.shape[1]:
        raise L2AError(
            f"Crossfade of {fade} samples is longer than the audio it joins ({a.shape[1]} and {b.shape[1]} samples);"
            f" use at most {min(a.shape[1], b.shape[1])}."
        )
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    a, b = a.to(dtype), b.to(a.device, dtype)
    keep = a.shape[1] - fade
    weight = (torch.arange(1, fade + 1, device=a.device, dtype=torch.float64) / (fade + 1)).to(dtype)
    overlap = a[:, keep:] * (1 - weight) + b[:, :fade] * weight
    return torch.cat([a[:, :keep], overlap, b[:, fade:]], dim=1)
