"""Multiscale (two-stage) generation, the official recipe on each family, and first/last-frame conditions on the
tiny models."""

import shutil
from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest
import torch

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.pipelines import conditioning as cond_mod
from ltx2_anywhere.pipelines import loading, tiny
from ltx2_anywhere.pipelines.decoding import decode_audio, decode_video
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import LTX2_19B, STAGE_2_DISTILLED_SIGMAS, Guidance
from ltx2_anywhere.pipelines.sampling import (
    SamplerSettings,
    encode_image_latent,
    plan,
    prepare_video_tokens,
    resize_cover,
    sample,
    sample_multiscale,
)
from ltx2_anywhere.pipelines.upsampler import load_upsampler

PROMPT = "a robot dancing in the rain, music plays"
NEGATIVE = "blurry"


@pytest.fixture(scope="module")
def parts(tiny_models, tiny_model, tiny_encoder):
    _comfy.configure(models_dir=tiny_models.root)
    return tiny_model, tiny_encoder, load_upsampler(tiny_models.upsampler, dtype="fp32")


def pixels(height, width, seed=0):
    return (np.random.RandomState(seed).rand(height, width, 3) * 255).astype(np.uint8)


def test_two_stage_equals_the_diffusers_composition(parts):
    """Stage 1 through the image-to-video pipeline (given the image resized to half size the official way, which
    that pipeline does not do itself), the x2 upsample pipeline, then stage 2 through the condition pipeline.
    Without rescale: with it, diffusers' image-to-video rescales over a first frame that officially stays clean."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        LTX2ConditionPipeline,
        LTX2ImageToVideoPipeline,
        LTX2LatentUpsamplePipeline,
    )
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

    model, encoder, upsampler = parts
    image = pixels(128, 192)
    half_image = resize_cover(image, 96, 64) / 255.0
    conditioning = cond_mod.encode_text(encoder, PROMPT, NEGATIVE, 24.0)
    conditioning = conditioning.with_image(cond_mod.image_condition(image, 1.0, 0))
    settings = SamplerSettings(width=192, height=128, num_frames=17, fps=24.0, steps=4, seed=5, schedule="diffusers",
                               guidance=Guidance(rescale=0.0, audio_rescale=0.0), stg_blocks=(1,))
    latent = sample_multiscale(model, conditioning, settings, upsampler, model)  # stage 2 without the LoRA
    frames = decode_video(model, latent)
    waveform, _ = decode_audio(model, latent)

    common = dict(vae=model.vae, audio_vae=model.audio_vae, text_encoder=encoder.model, tokenizer=encoder.tokenizer,
                  connectors=model.connectors, transformer=model.transformer, vocoder=model.vocoder)
    text = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_frames=17, frame_rate=24.0, use_cross_timestep=False,
                max_sequence_length=encoder.max_sequence_length)
    generator = torch.Generator().manual_seed(5)
    stage1 = LTX2ImageToVideoPipeline(scheduler=FlowMatchEulerDiscreteScheduler.from_config(model.scheduler_config),
                                      **common)
    video_1, audio_1 = stage1(
        image=half_image, image_crf=0, height=64, width=96, num_inference_steps=4,
        guidance_scale=3.0, stg_scale=1.0, modality_scale=3.0, guidance_rescale=0.0, audio_guidance_scale=7.0,
        audio_stg_scale=1.0, audio_modality_scale=3.0, audio_guidance_rescale=0.0,
        spatio_temporal_guidance_blocks=[1], generator=generator, output_type="latent", return_dict=False, **text)
    upsampled = LTX2LatentUpsamplePipeline(vae=model.vae, latent_upsampler=upsampler.module)(
        latents=video_1, latents_normalized=False, output_type="latent", return_dict=False)[0]
    refine_scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        model.scheduler_config, use_dynamic_shifting=False, shift_terminal=None)
    stage2 = LTX2ConditionPipeline(scheduler=refine_scheduler, **common)
    reference = stage2(
        conditions=[LTX2VideoCondition(frames=PIL.Image.fromarray(image), index=0, strength=1.0, crf=0)],
        latents=upsampled, audio_latents=audio_1, height=128, width=192,
        sigmas=list(STAGE_2_DISTILLED_SIGMAS[:-1]), num_inference_steps=3, noise_scale=STAGE_2_DISTILLED_SIGMAS[0],
        guidance_scale=1.0, stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0, audio_guidance_scale=1.0,
        audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0, generator=generator,
        output_type="np", **text)
    assert frames.shape == (17, 128, 192, 3)
    assert np.abs(reference.frames[0] - frames.numpy()).max() <= 1e-5
    assert (reference.audio - waveform).abs().max().item() <= 1e-5


def test_multiscale_size_must_be_a_multiple_of_64(parts):
    model, encoder, upsampler = parts
    conditioning = cond_mod.encode_text(encoder, PROMPT, NEGATIVE, 24.0)
    with pytest.raises(L2AError, match="width = 160 is not a multiple of 64: .* use 128 or 192"):
        sample_multiscale(model, conditioning, SamplerSettings(width=160, height=128, num_frames=17), upsampler, model)


def test_multiscale_progress_counts_both_stages(parts):
    model, encoder, upsampler = parts
    conditioning = cond_mod.encode_text(encoder, PROMPT, NEGATIVE, 24.0)
    seen = []
    sample_multiscale(model, conditioning, SamplerSettings(width=128, height=128, num_frames=9, steps=2, seed=1,
                                                           guidance=Guidance.off()), upsampler, model,
                      on_step=lambda step, total, preview: seen.append((step, total, tuple(preview().shape[-2:]))))
    assert [s[:2] for s in seen] == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert seen[0][2] == (2, 2) and seen[-1][2] == (4, 4)


def test_end_image_is_a_keyframe_at_the_last_frame(parts):
    model, encoder, _ = parts
    first, last = pixels(64, 96, 1), pixels(64, 96, 2)
    conditioning = cond_mod.encode_text(encoder, PROMPT, NEGATIVE, 24.0)
    conditioning = conditioning.with_image(cond_mod.image_condition(first, 1.0, 0))
    conditioning = conditioning.with_image(cond_mod.image_condition(last, 1.0, 0, frame_index=-1))
    settings = SamplerSettings(width=96, height=64, num_frames=25, fps=24.0, steps=3, seed=2)
    geo = plan(model, settings).geometry
    tokens = prepare_video_tokens(model, conditioning, geo, torch.Generator().manual_seed(0))
    main = tokens.main_count
    encoded_last = encode_image_latent(model, last, 96, 64).flatten(2).transpose(1, 2)
    assert tokens.latents.shape[1] == main + encoded_last.shape[1]
    assert (tokens.clean[:, main:] - encoded_last).abs().max().item() <= 1e-5
    assert torch.equal(tokens.mask[:, main:], torch.ones_like(tokens.mask[:, main:]))
    starts = tokens.coords[0, 0, main:, 0]
    assert torch.allclose(starts, torch.full_like(starts, (25 - 1) / 24.0))
    assert torch.allclose(tokens.coords[0, 0, main:, 1], torch.full_like(starts, 25 / 24.0))
    latent = sample(model, conditioning, settings)
    assert latent.video.shape[2] == 4 and latent.video.isfinite().all()


def test_image_outside_the_video_is_refused(parts):
    model, encoder, _ = parts
    conditioning = cond_mod.encode_text(encoder, PROMPT, NEGATIVE, 24.0)
    conditioning = conditioning.with_image(cond_mod.image_condition(pixels(64, 96), 1.0, 0, frame_index=40))
    with pytest.raises(L2AError, match="image frame 40 is outside the 17-frame video"):
        sample(model, conditioning, SamplerSettings(width=96, height=64, num_frames=17, steps=1))


def count_calls(model, run):
    calls = []
    hook = model.transformer.register_forward_hook(lambda *a: calls.append(1))
    try:
        run()
    finally:
        hook.remove()
    return len(calls)


@pytest.mark.parametrize(("preset", "calls"), [("none", 24), ("regular", 12), ("high", 2), ("full", 8)])
def test_acceleration_presets_cost(parts, tiny_models, preset, calls):
    """The tiny model's default is 8 steps with full guidance (3 calls per step); `full` needs the distilled LoRA."""
    from ltx2_anywhere.pipelines.lora import add_lora

    model, encoder, _ = parts
    if preset == "full":
        model = add_lora(model, tiny_models.lora_distilled)
    conditioning = cond_mod.encode_text(encoder, PROMPT, NEGATIVE, 24.0)
    settings = SamplerSettings(width=96, height=64, num_frames=9, seed=1, acceleration=preset)
    assert count_calls(model, lambda: sample(model, conditioning, settings)) == calls
    if preset != "none":
        assert f"acceleration {preset}" in plan(model, settings).report()


def test_unknown_acceleration_is_refused(parts):
    model, encoder, _ = parts
    with pytest.raises(L2AError, match="acceleration = 'turbo' is unknown: use one of none, regular, high, full"):
        plan(model, SamplerSettings(width=96, height=64, num_frames=9, acceleration="turbo"))


def test_first_last_frame_node_and_direction(parts):
    from ltx2_anywhere.nodes.conditioning import L2A_FirstLastFrame

    model, encoder, _ = parts
    start = torch.from_numpy(pixels(64, 96, 3)).float()[None] / 255
    end = torch.from_numpy(pixels(64, 96, 4)).float()[None] / 255
    conditioning = cond_mod.encode_text(encoder, PROMPT, NEGATIVE, 24.0)
    (forward,) = L2A_FirstLastFrame().apply(conditioning, 1.0, 0.5, "forward", 0, image=start, end_image=end)
    (backward,) = L2A_FirstLastFrame().apply(conditioning, 1.0, 0.5, "backward", 0, image=start, end_image=end)
    by_frame = {c.frame_index: c for c in forward.images}
    assert by_frame[0].strength == 1.0 and by_frame[-1].strength == 0.5
    assert np.array_equal(by_frame[-1].pixels, pixels(64, 96, 4))
    swapped = {c.frame_index: c for c in backward.images}
    assert np.array_equal(swapped[-1].pixels, pixels(64, 96, 3))
    with pytest.raises(L2AError, match="no image given"):
        L2A_FirstLastFrame().apply(conditioning, 1.0, 1.0, "forward", 0)


def test_sampler_node_runs_multiscale_with_an_upsampler(parts):
    from ltx2_anywhere.nodes.sampling import L2A_Sampler

    model, encoder, upsampler = parts
    conditioning = cond_mod.encode_text(encoder, PROMPT, NEGATIVE, 24.0)
    latent, _, report = L2A_Sampler().sample(
        model, conditioning, 128, 128, 9, 24.0, 2, 3, "off", 3.0, 7.0, 1.0, "", 3.0, 0.7, True, "official",
        acceleration="none", upsampler=upsampler)["result"]
    assert latent.video.shape[-2:] == (4, 4) and report.startswith("multiscale")
    assert f"with the distilled LoRA (the official recipe); LoRA {LTX2_19B.distilled_lora.name} 1 (fused)" in report


def test_upsampler_loader_node_and_bad_files(tiny_models, tmp_path):
    from safetensors.torch import save_file

    from ltx2_anywhere.nodes.loaders import L2A_UpsamplerLoader

    name = LTX2_19B.upsampler.name
    (tmp_path / "latent_upscale_models").mkdir()
    shutil.copyfile(tiny_models.upsampler, tmp_path / "latent_upscale_models" / name)
    _comfy.configure(models_dir=tmp_path)
    assert name in L2A_UpsamplerLoader.INPUT_TYPES()["required"]["upsampler_name"][0]
    (loaded,) = L2A_UpsamplerLoader().load(name, "fp32")
    assert loaded.in_channels == 8 and loaded.family.name == "2.0"
    other = tmp_path / "latent_upscale_models" / "RealESRGAN_x4.safetensors"
    save_file({"conv_first.weight": torch.zeros(64, 3, 3, 3)}, str(other))
    with pytest.raises(L2AError, match="is not an LTX-2 latent upsampler.*models/latent_upscale_models"):
        L2A_UpsamplerLoader().load(other.name, "fp32")
    pickled = tmp_path / "latent_upscale_models" / "upscaler.pth"
    pickled.write_bytes(b"not safetensors")
    with pytest.raises(L2AError, match="only safetensors"):
        L2A_UpsamplerLoader().load(pickled.name, "fp32")


def test_the_default_stage_2_is_the_recipe_through_an_explicit_lora_node(parts, tmp_path):
    from ltx2_anywhere.nodes.lora import L2A_LoRA
    from ltx2_anywhere.nodes.sampling import L2A_Sampler

    model, encoder, upsampler = parts
    tiny.write_tiny_loras(tmp_path)
    _comfy.configure(models_dir=tmp_path)
    (refine,) = L2A_LoRA().apply(model, LTX2_19B.distilled_lora.name, 1.0, False)
    conditioning = cond_mod.encode_text(encoder, PROMPT, NEGATIVE, 24.0)
    args = (conditioning, 128, 128, 9, 24.0, 2, 3, "off", 3.0, 7.0, 1.0, "", 3.0, 0.7, True, "official")

    def run(first, second=None, stage_2="distilled LoRA"):
        return L2A_Sampler().sample(first, *args, upsampler=upsampler, refine_model=second,
                                    stage_2=stage_2)["result"][0].video

    plain = run(model, stage_2="without LoRA")
    recipe = run(model, refine)
    assert not torch.equal(plain, recipe)
    assert torch.equal(run(model), recipe)
    assert torch.equal(run(model, stage_2="without LoRA"), plain)
    assert model.loras == []


@pytest.fixture(scope="module", params=["2.0", "2.3"])
def family(request, tmp_path_factory):
    """A tiny family's models folder (and a copy without its distilled LoRA), its dev model, encoder, upsampler."""
    written = request.getfixturevalue("tiny_models" if request.param == "2.0" else "tiny_models_23")
    bare = tmp_path_factory.mktemp(f"no-lora-{request.param}")
    shutil.copytree(written.root / "latent_upscale_models", bare / "latent_upscale_models")
    (bare / "loras").mkdir()
    model = loading.load_model(written.checkpoint_dev, dtype="fp32")
    encoder = loading.load_text_encoder(written.text_encoder, dtype="fp32")
    return SimpleNamespace(root=written.root, bare=bare, record=written.family, model=model,
                           upsampler=load_upsampler(written.upsampler, dtype="fp32"),
                           conditioning=cond_mod.encode_text(encoder, PROMPT, NEGATIVE, 24.0))


def run_node(family, **options):
    from ltx2_anywhere.nodes.sampling import L2A_Sampler

    return L2A_Sampler().sample(
        family.model, family.conditioning, 128, 128, 9, 24.0, 2, 3, "off", 3.0, 7.0, 1.0, "", 3.0, 0.7, True,
        "official", acceleration="none", upsampler=family.upsampler, **options)["result"]


def test_the_sampler_refines_with_the_familys_distilled_lora_by_default(family):
    """The official recipe on each family: stage 2 of a dev model with its own distilled LoRA, found in the LoRA
    folder through the family record; without it only when asked, and the report says so."""
    _comfy.configure(models_dir=family.root)
    name = family.record.distilled_lora.name
    official, _, report = run_node(family)
    assert f"with the distilled LoRA (the official recipe); LoRA {name} 1 (fused)" in report
    plain, _, plain_report = run_node(family, stage_2="without LoRA")
    assert f"with the dev model without {name} (not the official recipe)" in plain_report
    assert (official.video - plain.video).abs().max().item() > 1e-3


def test_a_missing_distilled_lora_is_named_before_any_sampling(family):
    _comfy.configure(models_dir=family.bare)
    calls = []
    hook = family.model.transformer.register_forward_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(L2AError) as error:
            run_node(family)
    finally:
        hook.remove()
    assert calls == []
    message = str(error.value)
    assert f"needs '{family.record.distilled_lora.name}', which is not in {family.bare / 'loras'}" in message
    assert family.record.distilled_lora.url in message and "set stage_2 to 'without LoRA'" in message
