"""Extend, audio-to-video and retake on the tiny model: what must stay, stays; durations add up."""

import math
import re

import pytest
import torch

from ltx2_anywhere.pipelines import conditioning as cond_mod
from ltx2_anywhere.pipelines import media
from ltx2_anywhere.pipelines.av_edit import Clip, audio_to_video, extend, fit_clip, retake
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import Guidance
from ltx2_anywhere.pipelines.sampling import SamplerSettings

FAST = SamplerSettings(steps=2, seed=4, guidance=Guidance.off())
TOLERANCE = 1 / 24 + 1024 / 24000  # one video frame plus one AAC frame


@pytest.fixture(scope="module")
def parts(tiny_model, tiny_encoder):
    return tiny_model, cond_mod.encode_text(tiny_encoder, "a man speaks hello, music plays", "blurry", 24.0)


def tone(seconds, rate=24000, freq=440.0):
    t = torch.arange(round(seconds * rate)) / rate
    return torch.stack([0.3 * torch.sin(2 * math.pi * freq * t)] * 2)


def clip(frames=25, fps=24.0, with_audio=True, width=96, height=64):
    pictures = torch.rand(frames, height, width, 3, generator=torch.Generator().manual_seed(frames))
    return Clip(pictures, fps, tone(frames / fps) if with_audio else None, 24000 if with_audio else None)


def test_extend_keeps_the_prefix_clean_and_the_input_as_it_was(parts):
    model, conditioning = parts
    source = clip()
    result = extend(model, conditioning, source, 16, 9, FAST)
    context, latent = result.context, result.latent
    kept_video = int(context.video_keep.sum())
    kept_audio = int(context.audio_keep.sum())
    assert kept_video == 2 and kept_audio == math.floor(9 / 24 * 25)
    assert (latent.video[:, :, :kept_video] - context.video[:, :, :kept_video]).abs().max().item() <= 1e-5
    assert (latent.audio[:, :, :kept_audio] - context.audio[:, :, :kept_audio]).abs().max().item() <= 1e-5
    out = result.clip
    assert out.frames.shape[0] == 25 + 16 and out.size == source.size and out.fps == 24.0
    assert torch.equal(out.frames[:25], source.frames)
    fade_start = round((25 - 9) / 24 * 24000)
    assert torch.equal(out.audio[:, :fade_start], source.audio[:, :fade_start])
    assert out.audio.shape[1] == round(out.duration * 24000)


def test_a_four_link_extend_chain_keeps_durations_in_step(parts, tmp_path):
    model, conditioning = parts
    current = clip(with_audio=False)
    for link in range(4):
        before = current.duration
        current = extend(model, conditioning, current, 8, 9, FAST).clip
        assert current.duration == pytest.approx(before + 8 / 24)
        path = media.write_video(tmp_path / f"link{link}.mp4", current.frames, current.fps, audio=current.audio,
                                 sample_rate=current.sample_rate)
        info = media.probe_video(path)
        assert info["frames"] == 25 + 8 * (link + 1)
        assert abs(info["video_duration"] - info["audio_duration"]) < TOLERANCE


def test_extend_longer_than_the_window_is_made_in_parts(parts):
    model, conditioning = parts
    result = extend(model, conditioning, clip(fps=2.0, frames=9), 40, 9, FAST)
    assert result.clip.frames.shape[0] == 9 + 40 and "made in 2 parts" in result.report


def test_audio_to_video_keeps_the_audio_exactly(parts):
    model, conditioning = parts
    audio = tone(2.3, 44100, 330.0)
    settings = SamplerSettings(width=96, height=64, fps=24.0, steps=2, seed=1, guidance=Guidance.off())
    result = audio_to_video(model, conditioning, audio, 44100, settings)
    assert torch.equal(result.clip.audio, audio) and result.clip.sample_rate == 44100
    assert abs(result.clip.duration - 2.3) <= 0.5 / 24
    context, latent = result.context, result.latent
    assert context.audio_keep.all()
    assert (latent.audio - context.audio).abs().max().item() <= 1e-5


def test_retake_regenerates_only_the_window(parts):
    model, conditioning = parts
    source = clip(frames=33)
    result = retake(model, conditioning, source, 0.5, 0.9, "both", FAST)
    context, latent = result.context, result.latent
    kept = context.video_keep.bool()
    assert kept.any() and not kept.all()
    assert (latent.video[:, :, kept] - context.video[:, :, kept]).abs().max().item() <= 1e-5
    kept_audio = context.audio_keep.bool()
    assert (latent.audio[:, :, kept_audio] - context.audio[:, :, kept_audio]).abs().max().item() <= 1e-5
    out = result.clip
    inside = range(12, 22)
    outside = [i for i in range(33) if i not in inside]
    assert torch.equal(out.frames[outside], source.frames[outside])
    assert not torch.equal(out.frames[12], source.frames[12])
    edge = round((0.5 - 0.025) * 24000)
    assert torch.equal(out.audio[:, :edge], source.audio[:, :edge])


def test_retake_of_the_audio_only_keeps_every_frame(parts):
    model, conditioning = parts
    source = clip(frames=25)
    out = retake(model, conditioning, source, 0.2, 0.6, "audio", FAST).clip
    assert torch.equal(out.frames, source.frames)
    assert not torch.equal(out.audio, source.audio)


@pytest.mark.parametrize(("call", "message"), [
    (lambda m, c: extend(m, c, clip(frames=9), 16, 17, FAST), "the clip has 9 frames, fewer than the 17-frame overlap"),
    (lambda m, c: extend(m, c, clip(), 16, 10, FAST), "overlap = 10 frames is not 8k+1"),
    (lambda m, c: retake(m, c, clip(), 0.5, 3.0, "both", FAST), "the window 0.5-3 s is outside the 1.04 s clip"),
    (lambda m, c: retake(m, c, clip(), 0.5, 0.8, "music", FAST), "retake part = 'music' is unknown"),
    (lambda m, c: audio_to_video(m, c, tone(1.0), 24000, FAST), "the audio is 1.00 s long: use 2 to 20 s"),
])
def test_bad_requests_are_refused_before_work(parts, call, message):
    model, conditioning = parts
    with pytest.raises(L2AError, match=re.escape(message)):
        call(model, conditioning)


def test_sizes_that_are_not_multiples_of_32_are_cropped_or_resized():
    odd = clip(width=100, height=70)
    cropped, note = fit_clip(odd, "crop")
    assert cropped.size == (96, 64) and "cropped to 96x64" in note
    resized, note = fit_clip(odd, "resize")
    assert resized.size == (96, 64) and "resized" in note
    assert fit_clip(clip(), "crop")[1] == ""


@pytest.mark.parametrize("family", ["2.3", "2.5"])
def test_extend_audio_to_video_and_retake_on_ltx23_and_ltx25(family, request):
    """The edits on the tiny LTX-2.3 and LTX-2.5 as on 2.0: what must stay, stays, with their 48 kHz audio."""
    from ltx2_anywhere.pipelines.loading import load_model, load_text_encoder

    files = request.getfixturevalue("tiny_models_23" if family == "2.3" else "tiny_models_25")
    model = load_model(files.checkpoint_dev, dtype="fp32")
    encoder = load_text_encoder(files.text_encoder, dtype="fp32")
    conditioning = cond_mod.encode_text(encoder, "a man speaks hello, music plays", "blurry", 24.0)
    source = clip()
    extended = extend(model, conditioning, source, 8, 9, FAST)
    kept = int(extended.context.video_keep.sum())
    assert (extended.latent.video[:, :, :kept] - extended.context.video[:, :, :kept]).abs().max().item() <= 1e-5
    out = extended.clip
    assert out.frames.shape[0] == 25 + 8 and torch.equal(out.frames[:25], source.frames)
    assert out.sample_rate == 48000 and out.audio.shape[1] == round(out.duration * 48000)
    audio = tone(2.0, 44100, 330.0)
    made = audio_to_video(model, conditioning, audio, 44100, SamplerSettings(width=96, height=64, steps=2, seed=1,
                                                                             guidance=Guidance.off()))
    assert torch.equal(made.clip.audio, audio) and made.context.audio_keep.all()
    redone = retake(model, conditioning, clip(frames=33), 0.5, 0.9, "video", FAST).clip
    assert torch.equal(redone.frames[:12], clip(frames=33).frames[:12]) and redone.sample_rate == 48000
