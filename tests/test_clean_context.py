"""Clean-by-time masks: given video and audio latents stay exactly as given while the rest is generated."""

import pytest
import torch

from ltx2_anywhere.pipelines import conditioning as cond_mod
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import Guidance
from ltx2_anywhere.pipelines.geometry import audio_latent_frames
from ltx2_anywhere.pipelines.sampling import CleanContext, SamplerSettings, sample


@pytest.fixture(scope="module")
def parts(tiny_model, tiny_encoder):
    return tiny_model, cond_mod.encode_text(tiny_encoder, "a man speaks hello", "blurry", 24.0)


SETTINGS = SamplerSettings(width=96, height=64, num_frames=25, fps=24.0, steps=4, seed=3, guidance=Guidance(),
                           stg_blocks=(1,))


def raw_context(frames=4, audio=26, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 8, frames, 2, 3, generator=g), torch.randn(1, 2, audio, 4, generator=g)


def test_video_prefix_and_all_audio_stay_clean(parts):
    model, conditioning = parts
    video, audio = raw_context()
    keep_video = torch.tensor([1.0, 1.0, 0.0, 0.0])
    context = CleanContext(video=video, video_keep=keep_video, audio=audio, audio_keep=torch.ones(26))
    latent = sample(model, conditioning, SETTINGS, context=context)
    assert audio_latent_frames(25, 24.0) == 26
    assert (latent.video[:, :, :2] - video[:, :, :2]).abs().max().item() <= 1e-5
    assert (latent.video[:, :, 2:] - video[:, :, 2:]).abs().max().item() > 0.1
    assert (latent.audio - audio).abs().max().item() <= 1e-5


def test_a_window_in_the_middle_is_regenerated_and_the_rest_kept(parts):
    model, conditioning = parts
    video, audio = raw_context(seed=1)
    keep_video = torch.tensor([1.0, 0.0, 0.0, 1.0])
    keep_audio = torch.ones(26)
    keep_audio[8:18] = 0.0
    context = CleanContext(video=video, video_keep=keep_video, audio=audio, audio_keep=keep_audio)
    latent = sample(model, conditioning, SETTINGS, context=context)
    for index in (0, 3):
        assert (latent.video[:, :, index] - video[:, :, index]).abs().max().item() <= 1e-5
    kept = keep_audio.bool()
    assert (latent.audio[:, :, kept] - audio[:, :, kept]).abs().max().item() <= 1e-5
    assert (latent.audio[:, :, ~kept] - audio[:, :, ~kept]).abs().max().item() > 0.1


def test_audio_of_the_wrong_length_is_refused(parts):
    model, conditioning = parts
    video, audio = raw_context(audio=20)
    with pytest.raises(L2AError, match="20 latent frames but the video needs 26"):
        sample(model, conditioning, SETTINGS, context=CleanContext(audio=audio, audio_keep=torch.ones(20)))
