"""Audio helpers for extend: resampling, stereo, the LTX-2 log-mel transform, audio VAE encoding and the seam.

The mel filterbank is checked by its defining properties, not against librosa or torchaudio (neither is a test
dependency); the model parts run on the tiny model.
"""

import math
from types import SimpleNamespace

import pytest
import torch

from ltx2_anywhere.pipelines import audio
from ltx2_anywhere.pipelines.decoding import decode_audio
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.geometry import audio_latent_frames


def tone(freq: float, seconds: float, rate: int, start: float = 0.0, phase: float = 0.0, amplitude: float = 0.5):
    """[1, S] sine sampled at absolute times start + n / rate."""
    t = start + torch.arange(round(seconds * rate), dtype=torch.float64) / rate
    return (amplitude * torch.sin(2 * math.pi * freq * t + phase)).to(torch.float32)[None]


def peak_hz(waveform, rate: int) -> float:
    spectrum = torch.fft.rfft(waveform[0].double() * torch.hann_window(waveform.shape[1], dtype=torch.float64))
    return spectrum.abs().argmax().item() * rate / waveform.shape[1]


def max_jump(waveform) -> float:
    return waveform.diff(dim=1).abs().max().item()


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


# ------------------------------------------------------------------------------------------- resample, stereo


@pytest.mark.parametrize("samples", [0, 1, 7, 101, 24000, 24007])
@pytest.mark.parametrize("rates", [(24000, 16000), (16000, 24000), (44100, 16000), (48000, 16000), (22050, 24000)])
def test_resample_length_is_exact(samples, rates):
    from_rate, to_rate = rates
    out = audio.resample(torch.randn(2, samples), from_rate, to_rate)
    assert out.shape == (2, round(samples * to_rate / from_rate))
    assert out.dtype == torch.float32


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_resample_keeps_channels(channels):
    assert audio.resample(torch.randn(channels, 4800), 24000, 16000).shape == (channels, 3200)


def test_resample_same_rate_is_identity():
    waveform = torch.randn(2, 1000)
    assert audio.resample(waveform, 24000, 24000) is waveform


def test_resample_keeps_tone_frequency_and_timing():
    original = tone(440, 1.0, 24000)
    down = audio.resample(original, 24000, 16000)
    back = audio.resample(down, 16000, 24000)
    assert peak_hz(down, 16000) == pytest.approx(440, abs=1.0)
    assert peak_hz(back, 24000) == pytest.approx(440, abs=1.0)
    assert back.shape == original.shape
    # No delay: away from the edges the round trip is the tone itself.
    assert (back - original)[:, 500:-500].abs().max() < 1e-3
    impulse = torch.zeros(1, 24000)
    impulse[0, 12000] = 1.0
    assert audio.resample(impulse, 24000, 16000).argmax().item() == 8000


def test_resample_refuses_bad_rates():
    with pytest.raises(L2AError, match="sample rate"):
        audio.resample(torch.zeros(1, 10), 0, 16000)
    with pytest.raises(L2AError, match="sample rate"):
        audio.resample(torch.zeros(1, 10), 24000, 16000.5)
    with pytest.raises(L2AError, match="channels, samples"):
        audio.resample(torch.zeros(1, 1, 10), 24000, 16000)


def test_to_stereo_shapes_and_mixing():
    mono = torch.randn(100)
    for waveform in (mono, mono[None], torch.randn(2, 100), torch.randn(6, 100)):
        assert audio.to_stereo(waveform).shape == (2, 100)
    assert torch.equal(audio.to_stereo(mono)[1], mono)
    stereo = torch.randn(2, 100)
    assert torch.equal(audio.to_stereo(stereo), stereo)
    surround = torch.randn(6, 100)
    assert torch.allclose(audio.to_stereo(surround)[0], surround.mean(0))
    with pytest.raises(L2AError, match="channels, samples"):
        audio.to_stereo(torch.zeros(1, 2, 100))


def test_fit_length_pads_with_silence_and_trims():
    waveform = torch.randn(2, 10)
    assert torch.equal(audio.fit_length(waveform, 10), waveform)
    assert torch.equal(audio.fit_length(waveform, 4), waveform[:, :4])
    padded = audio.fit_length(waveform, 15)
    assert padded.shape == (2, 15) and torch.equal(padded[:, :10], waveform) and not padded[:, 10:].any()
    with pytest.raises(L2AError):
        audio.fit_length(waveform, -1)


# --------------------------------------------------------------------------------------------- log-mel


def test_mel_scale_round_trip_and_known_points():
    assert audio.hz_to_mel(1000.0) == pytest.approx(15.0)
    assert audio.hz_to_mel(200.0) == pytest.approx(3.0)
    assert audio.hz_to_mel(6400.0) == pytest.approx(42.0)  # one factor 6.4 above 1 kHz is 27 mels
    freqs = torch.tensor([0.0, 50.0, 999.0, 1000.0, 1001.0, 4321.0, 8000.0], dtype=torch.float64)
    assert torch.allclose(audio.mel_to_hz(audio.hz_to_mel(freqs)), freqs, rtol=1e-12, atol=1e-9)
    assert torch.allclose(audio.hz_to_mel(freqs), torch.tensor([audio.hz_to_mel(f) for f in freqs.tolist()],
                                                              dtype=torch.float64))


def _edges(n_mels: int) -> torch.Tensor:
    return audio.mel_to_hz(torch.linspace(0.0, audio.hz_to_mel(8000.0), n_mels + 2, dtype=torch.float64))


@pytest.mark.parametrize("n_mels", [16, 64])
def test_mel_filterbank_triangles(n_mels):
    fb = audio.mel_filterbank(n_mels)
    assert fb.shape == (513, n_mels) and fb.dtype == torch.float32 and (fb >= 0).all()
    fb = fb.double()
    bins = torch.linspace(0, 8000, 513, dtype=torch.float64)
    edges = _edges(n_mels)
    for m in range(n_mels):
        lower, centre, upper = edges[m], edges[m + 1], edges[m + 2]
        inside = (bins > lower) & (bins < upper)
        assert not fb[~inside, m].any()
        # Peak at the bin nearest the centre frequency, at most the Slaney height 2 / (upper - lower).
        assert (bins[fb[:, m].argmax()] - centre).abs() <= 8000 / 512
        assert fb[:, m].max() <= 2 / (upper - lower) + 1e-9
    # Undoing the Slaney heights leaves overlapping triangles that sum to 1 between the first and last centres.
    unnormalized = fb * (edges[2:] - edges[:-2]) / 2
    inner = (bins >= edges[1]) & (bins <= edges[-2])
    assert torch.allclose(unnormalized.sum(1)[inner], torch.ones(int(inner.sum()), dtype=torch.float64), atol=1e-6)


def test_mel_filterbank_areas_are_normalized():
    """Slaney norm makes every triangle's area 1 Hz; a fine frequency grid measures the continuous area."""
    n_fft = 1 << 16
    fb = audio.mel_filterbank(64, n_fft=n_fft).double()
    areas = fb.sum(0) * 8000 / (n_fft // 2)
    assert torch.allclose(areas, torch.ones(64, dtype=torch.float64), atol=1e-4)


def test_log_mel_shape_floor_and_finite():
    samples = 16000
    waveform = torch.randn(3, 2, samples) * 0.1
    mel = audio.log_mel(waveform, 64)
    assert mel.shape == (3, 2, samples // 160 + 1, 64)
    assert torch.isfinite(mel).all()
    silence = audio.log_mel(torch.zeros(1, 2, 4000), 16)
    assert silence.shape == (1, 2, 26, 16)
    assert torch.equal(silence, torch.full_like(silence, math.log(1e-5)))
    with pytest.raises(L2AError, match="too short"):
        audio.log_mel(torch.zeros(1, 2, 512), 16)


def test_log_mel_pure_tone_lights_its_band():
    waveform = tone(1000, 1.0, 16000)[None].expand(1, 2, -1)
    mel = audio.log_mel(waveform, 64)
    centres = _edges(64)[1:-1]
    expected = (centres - 1000).abs().argmin().item()
    assert (mel.mean(dim=2).argmax(dim=-1) == expected).all()


def test_log_mel_keeps_channels_apart():
    left, right = tone(300, 0.5, 16000), tone(5000, 0.5, 16000)
    mel = audio.log_mel(torch.cat([left, right])[None], 64).mean(dim=2)[0]
    assert mel[0].argmax() < mel[1].argmax()


# --------------------------------------------------------------------------------------------- encode


def test_encode_one_second_matches_the_sampler_grid(model):
    vae = model.audio_vae
    latents = audio.encode_audio(model, tone(440, 1.0, 24000), 24000)
    frames = audio_latent_frames(24, 24.0, vae.config.sample_rate, vae.config.mel_hop_length,
                                 vae.temporal_compression_ratio)
    assert frames == 25
    mel_bins = vae.config.mel_bins // vae.mel_compression_ratio
    assert latents.shape == (1, vae.config.latent_channels, frames, mel_bins)
    assert latents.dtype == torch.float32 and torch.isfinite(latents).all()
    # Any rate and channel count gives the same count for the same duration.
    assert audio.encode_audio(model, torch.randn(6, 44100) * 0.1, 44100).shape[2] == frames


def test_encode_decode_lengths(model):
    latents = audio.encode_audio(model, torch.randn(1, 2, 30000) * 0.1, 24000, num_latents=18)
    assert latents.shape[2] == 18
    waveform, rate = decode_audio(model, SimpleNamespace(audio=latents, has_audio=True))
    assert rate == model.audio_sample_rate == 24000
    assert waveform.shape == (1, 2, (4 * 18 - 3) * 240)
    # Decoded audio is (4L - 3) mel frames long: asking for L latents gets all of them back.
    assert audio.encode_audio(model, waveform, rate, num_latents=18).shape[2] == 18


def test_encoded_latents_line_up_in_time(model):
    """Latent i covers audio up to i / 25 s only: a clip's first latents do not depend on what follows it, and a
    short clip is padded with silence rather than stretched."""
    waveform = torch.randn(2, 48000) * 0.1
    full = audio.encode_audio(model, waveform, 24000, num_latents=40)
    head = audio.encode_audio(model, waveform[:, : 12 * 960], 24000, num_latents=12)
    assert torch.allclose(full[:, :, :12], head, atol=1e-5)
    changed_tail = waveform.clone()
    changed_tail[:, 12 * 960:] = torch.randn(2, 48000 - 12 * 960)
    assert torch.equal(audio.encode_audio(model, changed_tail, 24000, num_latents=12), head)
    padded = audio.encode_audio(model, waveform[:, : 12 * 960], 24000, num_latents=20)
    assert torch.allclose(padded[:, :, :12], head, atol=1e-5)


def test_encode_refuses_empty_requests(model):
    with pytest.raises(L2AError, match="at least one latent"):
        audio.encode_audio(model, torch.zeros(2, 100), 24000)
    with pytest.raises(L2AError, match="at least one latent"):
        audio.encode_audio(model, torch.zeros(2, 24000), 24000, num_latents=0)
    with pytest.raises(L2AError, match="sample rate"):
        audio.encode_audio(model, torch.zeros(2, 24000), -1)


# --------------------------------------------------------------------------------------------- crossfade

RATE = 24000
FADE = RATE // 10


def seam_pair(phase: float):
    """A 440 Hz tone for 1 s, and a 660 Hz tone starting 0.1 s before the first one ends (same time axis)."""
    a = tone(440, 1.0, RATE).expand(2, -1).clone()
    b = tone(660, 1.0, RATE, start=1.0 - FADE / RATE, phase=phase).expand(2, -1).clone()
    return a, b


@pytest.mark.parametrize("phase", [0.0, math.pi / 2, math.pi, 2.0])
def test_crossfade_has_no_jump_at_the_seam(phase):
    a, b = seam_pair(phase)
    joined = audio.crossfade(a, b, FADE)
    assert joined.shape == (2, a.shape[1] + b.shape[1] - FADE)
    assert max_jump(joined) <= 1.1 * max(max_jump(a), max_jump(b))
    assert torch.equal(joined[:, : a.shape[1] - FADE], a[:, :-FADE])
    assert torch.equal(joined[:, a.shape[1]:], b[:, FADE:])


def test_the_seam_check_catches_a_hard_cut():
    a, b = seam_pair(math.pi / 2)
    cut = torch.cat([a, b[:, FADE:]], dim=1)
    assert max_jump(cut) > 1.1 * max(max_jump(a), max_jump(b))


def test_crossfade_weights_exclude_the_ends():
    joined = audio.crossfade(torch.zeros(1, 5), torch.ones(1, 6), 3)
    assert torch.allclose(joined, torch.tensor([[0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]]))
    assert torch.equal(audio.crossfade(torch.zeros(1, 2), torch.ones(1, 3), 0), torch.tensor([[0.0, 0, 1, 1, 1]]))
    assert audio.crossfade(torch.zeros(2, 4), torch.ones(2, 4), 4).shape == (2, 4)


def test_crossfade_refuses_bad_lengths():
    with pytest.raises(L2AError, match="5 samples .*4 and 9"):
        audio.crossfade(torch.zeros(2, 4), torch.zeros(2, 9), 5)
    with pytest.raises(L2AError, match="5 samples .*9 and 4"):
        audio.crossfade(torch.zeros(2, 9), torch.zeros(2, 4), 5)
    with pytest.raises(L2AError, match="same channels"):
        audio.crossfade(torch.zeros(1, 9), torch.zeros(2, 9), 2)
    with pytest.raises(L2AError, match="0 or more"):
        audio.crossfade(torch.zeros(2, 9), torch.zeros(2, 9), -1)
