"""The extend, audio-to-video and retake nodes, fed the way ComfyUI feeds them (VIDEO, or IMAGE + AUDIO)."""

import pytest
import torch

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.av_edit import L2A_AudioToVideo, L2A_Extend, L2A_Retake
from ltx2_anywhere.nodes.conditioning import L2A_TextEncode
from ltx2_anywhere.pipelines import media
from ltx2_anywhere.pipelines.errors import L2AError

FAST = dict(seed=2, steps=2, guidance="off")


@pytest.fixture(scope="module")
def parts(tiny_model, tiny_encoder, tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    model = tiny_model
    (conditioning,) = L2A_TextEncode().encode(tiny_encoder, "a woman says hello", "blurry", 24.0)
    frames = torch.rand(25, 70, 100, 3, generator=torch.Generator().manual_seed(0))
    t = torch.arange(25 * 1000) / 24000
    sound = torch.stack([0.3 * torch.sin(2 * torch.pi * 300 * t)] * 2)
    video = _comfy.VideoFile(media.write_video(root / "clip.mp4", frames, 24, audio=sound, sample_rate=24000))
    return model, conditioning, video


def test_extend_node_from_a_video_file(parts):
    model, conditioning, video = parts
    out = L2A_Extend().extend(1.0, 16, 9, "crop", 24.0, model=model, conditioning=conditioning, video=video, **FAST)
    images, audio, fps, report = out["result"]
    assert images.shape == (25 + 16, 64, 96, 3) and fps == 24.0
    assert audio["sample_rate"] == 24000 and audio["waveform"].shape[-1] == round(41 / 24 * 24000)
    assert "cropped to 96x64" in report and out["ui"]["text"] == [report]


def test_extend_node_from_images_without_audio_generates_sound(parts):
    model, conditioning, _ = parts
    images = torch.rand(17, 64, 96, 3)
    out_images, audio, _, _ = L2A_Extend().extend(1.0, 8, 9, "crop", 24.0, model=model, conditioning=conditioning, images=images,
                                                  **FAST)["result"]
    assert out_images.shape[0] == 25 and audio["waveform"].abs().max() > 0


def test_audio_to_video_node_passes_the_audio_through(parts):
    model, conditioning, _ = parts
    waveform = torch.rand(1, 2, 48000) * 0.2
    images, audio, fps, _ = L2A_AudioToVideo().generate({"waveform": waveform, "sample_rate": 22050}, 96, 64, 24.0,
                                                         model=model, conditioning=conditioning, **FAST)["result"]
    assert torch.equal(audio["waveform"], waveform) and audio["sample_rate"] == 22050
    assert images.shape[0] == round(48000 / 22050 * 24)


def test_retake_node_and_missing_clip(parts):
    model, conditioning, video = parts
    images, audio, _, report = L2A_Retake().retake(0.2, 0.5, "video", "resize", 24.0, model=model,
                                                   conditioning=conditioning, video=video, **FAST)["result"]
    assert images.shape == (25, 64, 96, 3) and "retake of the video" in report
    with pytest.raises(L2AError, match="no clip given"):
        L2A_Retake().retake(0.2, 0.5, "both", "crop", 24.0, model=model, conditioning=conditioning, **FAST)
