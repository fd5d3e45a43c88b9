"""Every field of fal.ai's `fal-ai/ltx-2-19b/image-to-video` input has a local equivalent, each tested here, or
a stated reason in the README table why none can exist."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.conditioning import L2A_FirstLastFrame, L2A_ImageCondition, L2A_TextEncode
from ltx2_anywhere.nodes.lora import L2A_CameraLoRA
from ltx2_anywhere.nodes.media import L2A_DecodeAudio, L2A_SaveVideo
from ltx2_anywhere.nodes.prompt import L2A_PromptExpand
from ltx2_anywhere.nodes.sampling import L2A_Sampler
from ltx2_anywhere.nodes.size import L2A_VideoSize
from ltx2_anywhere.pipelines import media
from ltx2_anywhere.pipelines.families import DEFAULT_NEGATIVE_PROMPT, LTX2_19B
from ltx2_anywhere.pipelines.geometry import make_geometry
from ltx2_anywhere.pipelines.sampling import prepare_video_tokens
from ltx2_anywhere.pipelines.upsampler import load_upsampler

FAL_FIELDS = [
    "prompt", "image_url", "end_image_url", "num_frames", "video_size", "generate_audio", "use_multiscale", "fps",
    "guidance_scale", "num_inference_steps", "acceleration", "camera_lora", "camera_lora_scale", "negative_prompt",
    "seed", "enable_prompt_expansion", "enable_safety_checker", "video_output_type", "video_quality",
    "video_write_mode", "sync_mode", "interpolation_direction", "image_strength", "end_image_strength",
]
NOT_APPLICABLE = {"enable_safety_checker", "sync_mode"}
PROMPT = "a woman speaks hello in the city"
SAMPLER = dict(width=96, height=64, frames=9, fps=24.0, steps=2, seed=3, guidance="off", video_cfg=3.0,
               audio_cfg=7.0, stg_scale=1.0, stg_blocks="", modality_scale=3.0, rescale=0.7, generate_audio=True,
               schedule="official")


def readme_rows():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Every fal.ai image-to-video parameter, locally", 1)[1].split("\n#", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \|(.*)\|$", section, re.M)}


def test_readme_lists_every_fal_field_with_its_local_equivalent():
    rows = readme_rows()
    assert sorted(rows) == sorted(FAL_FIELDS)
    for field in NOT_APPLICABLE:
        assert "n/a" in rows[field]
    for field in set(FAL_FIELDS) - NOT_APPLICABLE:
        assert "n/a" not in rows[field] and "`" in rows[field]


@pytest.fixture(scope="module")
def kit(tiny_models, tiny_model, tiny_encoder, tmp_path_factory):
    _comfy.configure(models_dir=tiny_models.root, output_dir=tmp_path_factory.mktemp("fal-output"))
    return tiny_model, tiny_encoder, tiny_models.root


def encode(encoder, prompt=PROMPT, negative=DEFAULT_NEGATIVE_PROMPT):
    return L2A_TextEncode().encode(encoder, prompt, negative, 24.0)[0]


def image(seed):
    return torch.from_numpy(np.random.RandomState(seed).rand(1, 64, 96, 3).astype(np.float32))


def run(model, conditioning, **overrides):
    return L2A_Sampler().sample(model, conditioning, **{**SAMPLER, **overrides})["result"]


def test_prompt_and_negative_prompt(kit):
    _, encoder, _ = kit
    a, b = encode(encoder), encode(encoder, "a dog walks in the forest")
    assert not torch.equal(a.prompt_embeds, b.prompt_embeds)
    assert L2A_TextEncode.INPUT_TYPES()["required"]["negative_prompt"][1]["default"] == DEFAULT_NEGATIVE_PROMPT
    assert not torch.equal(a.negative_embeds, encode(encoder, negative="blurry").negative_embeds)


def test_image_url_and_image_strength(kit):
    model, encoder, _ = kit
    (conditioning,) = L2A_ImageCondition().apply(encode(encoder), image(1), 0.6, 0)
    assert conditioning.images[0].frame_index == 0 and conditioning.images[0].strength == 0.6
    tokens = prepare_video_tokens(model, conditioning, make_geometry(96, 64, 9, 24.0), torch.Generator().manual_seed(0))
    first_frame = tokens.mask[0, : 2 * 3]
    assert torch.allclose(first_frame, torch.full_like(first_frame, 0.6))
    assert not tokens.mask[0, 2 * 3 :].any()


def test_end_image_url_end_image_strength_and_interpolation_direction(kit):
    _, encoder, _ = kit
    (forward,) = L2A_FirstLastFrame().apply(encode(encoder), 1.0, 0.7, "forward", 0, image=image(1), end_image=image(2))
    (backward,) = L2A_FirstLastFrame().apply(encode(encoder), 1.0, 0.7, "backward", 0, image=image(1),
                                             end_image=image(2))
    assert {c.frame_index: c.strength for c in forward.images} == {0: 1.0, -1: 0.7}
    assert {c.frame_index: c.strength for c in backward.images} == {-1: 1.0, 0: 0.7}


def test_num_frames_and_fps(kit):
    model, encoder, _ = kit
    latent, _, _ = run(model, encode(encoder), frames=17, fps=12.0)
    assert (latent.num_frames, latent.fps) == (17, 12.0)
    (audio,) = L2A_DecodeAudio().decode(model, latent)
    assert abs(audio["waveform"].shape[-1] / 24000 - 17 / 12.0) < 1 / 12.0


def test_video_size(kit):
    assert L2A_VideoSize().resolve("720p", "16:9", 768, 512, 5.0, 121, 24.0, False)["result"][:2] == (1280, 704)
    portrait = L2A_VideoSize().resolve("480p", "auto", 768, 512, 0.0, 121, 24.0, False,
                                       image=torch.zeros(1, 96, 64, 3))["result"]
    assert portrait[0] < portrait[1]
    assert L2A_VideoSize().resolve("custom", "16:9", 1248, 704, 0.0, 121, 24.0, False)["result"][:2] == (1248, 704)


def test_generate_audio(kit):
    model, encoder, _ = kit
    latent, _, _ = run(model, encode(encoder), generate_audio=False)
    (audio,) = L2A_DecodeAudio().decode(model, latent)
    assert audio["waveform"].abs().max().item() == 0.0


def test_use_multiscale(kit):
    model, encoder, root = kit
    upsampler = load_upsampler(root / "latent_upscale_models" / LTX2_19B.upsampler.name, dtype="fp32")
    latent, _, report = run(model, encode(encoder), width=128, height=128, upsampler=upsampler)
    assert report.startswith("multiscale") and latent.video.shape[-2:] == (4, 4)


def count_calls(model, fn):
    calls = []
    hook = model.transformer.register_forward_hook(lambda *a: calls.append(1))
    try:
        result = fn()
    finally:
        hook.remove()
    return len(calls), result


def test_guidance_scale_num_inference_steps_and_acceleration(kit):
    model, encoder, _ = kit
    conditioning = encode(encoder)
    calls, (low, _, _) = count_calls(model, lambda: run(model, conditioning, guidance="custom", video_cfg=1.5,
                                                        stg_scale=0.0, modality_scale=1.0, steps=3))
    assert calls == 3
    _, (high, _, _) = count_calls(model, lambda: run(model, conditioning, guidance="custom", video_cfg=4.0,
                                                     stg_scale=0.0, modality_scale=1.0, steps=3))
    assert not torch.equal(low.video, high.video)
    calls, _ = count_calls(model, lambda: run(model, conditioning, steps=4, acceleration="regular"))
    assert calls == 2


def test_camera_lora_and_camera_lora_scale(kit):
    model, encoder, root = kit
    (moved,) = L2A_CameraLoRA().apply(model, "jib_up", 0.5)
    assert [(Path(x.path).name, x.strength) for x in moved.loras] == [
        ("ltx-2-19b-lora-camera-control-jib-up.safetensors", 0.5)]
    assert L2A_CameraLoRA().apply(model, "none", 1.0)[0] is model
    base, _, _ = run(model, encode(encoder))
    with_camera, _, _ = run(moved, encode(encoder))
    assert not torch.equal(base.video, with_camera.video)


def test_seed(kit):
    model, encoder, _ = kit
    conditioning = encode(encoder)
    a, seed_a, _ = run(model, conditioning, seed=11)
    b, _, _ = run(model, conditioning, seed=11)
    c, seed_c, _ = run(model, conditioning, seed=-1)
    assert torch.equal(a.video, b.video) and seed_a == 11 and seed_c >= 0 and not torch.equal(a.video, c.video)


def test_enable_prompt_expansion(kit):
    _, encoder, _ = kit
    out = L2A_PromptExpand().expand(encoder, PROMPT, "t2v", 10, 16)
    assert isinstance(out["result"][0], str) and out["result"][0]


@pytest.mark.parametrize(("fmt", "codec"), [("mp4", "h264"), ("webm", "vp9"), ("mov", "prores"), ("gif", "gif")])
def test_video_output_type_quality_and_write_mode(kit, fmt, codec):
    frames = torch.rand(9, 64, 96, 3)
    audio = {"waveform": torch.zeros(1, 2, 9000), "sample_rate": 24000}
    out = L2A_SaveVideo().save(frames, 24.0, f"fal/{fmt}", fmt, "low", "fast", audio=audio)
    preview = out["ui"]["images"][0]
    path = _comfy.output_directory() / preview["subfolder"] / preview["filename"]
    assert path.suffix == f".{fmt}" and media.probe_video(path)["video_codec"] == codec
