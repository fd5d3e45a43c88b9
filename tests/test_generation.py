"""The node chain end to end on the tiny model: parity with diffusers, schedules, defaults, bad input, cancel."""

import math

import numpy as np
import pytest
import torch

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.conditioning import L2A_ImageCondition, L2A_TextEncode
from ltx2_anywhere.nodes.loaders import L2A_ModelLoader, L2A_TextEncoderLoader
from ltx2_anywhere.nodes.media import L2A_DecodeAudio, L2A_DecodeVideo, L2A_SaveVideo
from ltx2_anywhere.nodes.sampling import L2A_Sampler
from ltx2_anywhere.pipelines import media
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import DISTILLED_SIGMAS, LTX2_19B, Guidance
from ltx2_anywhere.pipelines.geometry import audio_latent_frames
from ltx2_anywhere.pipelines.loading import load_model, load_text_encoder
from ltx2_anywhere.pipelines.sampling import SamplerSettings, plan

PROMPT = "a robot dancing in the rain, music plays"
NEGATIVE = "blurry, static"
SIZE = dict(width=96, height=64, frames=17, fps=24.0)
FULL_GUIDANCE = dict(guidance="custom", video_cfg=3.0, audio_cfg=7.0, stg_scale=1.0, stg_blocks="1",
                     modality_scale=3.0, rescale=0.7)


@pytest.fixture(scope="module")
def models_dir(tiny_models, tmp_path_factory):
    _comfy.configure(models_dir=tiny_models.root, output_dir=tmp_path_factory.mktemp("output"))
    return tiny_models.root


@pytest.fixture(scope="module")
def model(models_dir):
    return L2A_ModelLoader().load(LTX2_19B.checkpoints["dev"].name, "fp32", False)[0]


@pytest.fixture(scope="module")
def distilled(models_dir):
    return L2A_ModelLoader().load(LTX2_19B.checkpoints["distilled"].name, "fp32", False)[0]


@pytest.fixture(scope="module")
def encoder(models_dir):
    return L2A_TextEncoderLoader().load(LTX2_19B.text_encoder.folder.name, "fp32", "cpu")[0]


def run_sampler(model, conditioning, **overrides):
    kwargs = dict(SIZE, steps=6, seed=7, generate_audio=True, schedule="diffusers", **FULL_GUIDANCE)
    kwargs.update(overrides)
    return L2A_Sampler().sample(model, conditioning, **kwargs)["result"]


def decode(model, latent):
    images, fps = L2A_DecodeVideo().decode(model, latent, False, 512, 64, False, 16, 8)
    (audio,) = L2A_DecodeAudio().decode(model, latent)
    return images, fps, audio


def pipeline_kwargs(model, encoder):
    return dict(scheduler=_scheduler(model), vae=model.vae, audio_vae=model.audio_vae, text_encoder=encoder.model,
                tokenizer=encoder.tokenizer, connectors=model.connectors, transformer=model.transformer,
                vocoder=model.vocoder)


def _scheduler(model):
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler.from_config(model.scheduler_config)


def diffusers_call_args(encoder, use_cross_timestep=False):
    return dict(prompt=PROMPT, negative_prompt=NEGATIVE, height=64, width=96, num_frames=17, frame_rate=24.0,
                num_inference_steps=6, guidance_scale=3.0, stg_scale=1.0, modality_scale=3.0, guidance_rescale=0.7,
                audio_guidance_scale=7.0, audio_stg_scale=1.0, audio_modality_scale=3.0, audio_guidance_rescale=0.7,
                spatio_temporal_guidance_blocks=[1], use_cross_timestep=use_cross_timestep,
                max_sequence_length=encoder.max_sequence_length, generator=torch.Generator().manual_seed(7),
                output_type="np")


def test_text_to_video_equals_diffusers_pipeline(model, encoder):
    from diffusers import LTX2Pipeline

    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
    latent, seed, _ = run_sampler(model, conditioning)
    images, fps, audio = decode(model, latent)
    reference = LTX2Pipeline(**pipeline_kwargs(model, encoder))(**diffusers_call_args(encoder))
    assert seed == 7 and fps == 24.0
    assert images.shape == (17, 64, 96, 3)
    assert np.abs(reference.frames[0] - images.numpy()).max() <= 1e-5
    assert audio["sample_rate"] == 24000
    assert audio["waveform"].shape == reference.audio.shape
    assert (reference.audio - audio["waveform"]).abs().max().item() <= 1e-5


def test_text_to_video_in_bf16_equals_diffusers_pipeline(models_dir):
    """The same latents bit for bit in bf16 too: the sampler hands the transformer its tokens in diffusers' layout
    (the packed view, not a contiguous copy), so every matmul rounds the same way."""
    from diffusers import LTX2Pipeline

    model = L2A_ModelLoader().load(LTX2_19B.checkpoints["dev"].name, "bf16", False)[0]
    encoder = L2A_TextEncoderLoader().load(LTX2_19B.text_encoder.folder.name, "bf16", "cpu")[0]
    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
    latent, _, _ = run_sampler(model, conditioning)
    video, audio = LTX2Pipeline(**pipeline_kwargs(model, encoder))(
        **{**diffusers_call_args(encoder), "output_type": "latent"}, return_dict=False)
    assert torch.equal(video, latent.video) and torch.equal(audio, latent.audio)


def test_ltx23_text_and_image_to_video_equal_diffusers_pipelines(tiny_models_23):
    """The tiny LTX-2.3 (gated attention, cross-attention modulation, prompt AdaLN, per-modality projections, the
    48 kHz BWE vocoder) through the node chain, as the 2.0 tests above: the sampler reads the family's cross-timestep
    flag from the record."""
    import PIL.Image
    from diffusers import LTX2ImageToVideoPipeline, LTX2Pipeline

    model = load_model(tiny_models_23.checkpoint_dev, dtype="fp32")
    encoder = load_text_encoder(tiny_models_23.text_encoder, dtype="fp32")
    assert model.family.use_cross_timestep and model.audio_sample_rate == 48000
    pixels = (np.random.RandomState(0).rand(64, 96, 3) * 255).astype(np.uint8)
    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
    (with_image,) = L2A_ImageCondition().apply(conditioning, torch.from_numpy(pixels).float()[None] / 255.0, 1.0, 33)
    no_rescale = {"guidance_rescale": 0.0, "audio_guidance_rescale": 0.0}  # as the 2.0 image-to-video test above
    for cond, pipeline, extra, rescale in ((conditioning, LTX2Pipeline, {}, 0.7),
                                           (with_image, LTX2ImageToVideoPipeline,
                                            dict(image=PIL.Image.fromarray(pixels), image_crf=33, **no_rescale), 0.0)):
        images, _, audio = decode(model, run_sampler(model, cond, steps=3, rescale=rescale)[0])
        reference = pipeline(**pipeline_kwargs(model, encoder))(
            **{**diffusers_call_args(encoder, True), "num_inference_steps": 3, **extra})
        assert np.abs(reference.frames[0] - images.numpy()).max() <= 1e-5
        assert audio["sample_rate"] == 48000 and audio["waveform"].shape == reference.audio.shape
        assert (reference.audio - audio["waveform"]).abs().max().item() <= 1e-5


def test_image_to_video_without_rescale_equals_diffusers_pipeline(model, encoder):
    """With rescale on, diffusers computes the rescale over a first frame whose x0 uses the global sigma; the
    official x0 keeps it clean (tests/test_official_fidelity.py). Without rescale the two agree."""
    import PIL.Image
    from diffusers import LTX2ImageToVideoPipeline

    pixels = (np.random.RandomState(0).rand(64, 96, 3) * 255).astype(np.uint8)
    image = torch.from_numpy(pixels).float()[None] / 255.0
    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
    (conditioning,) = L2A_ImageCondition().apply(conditioning, image, 1.0, 33)
    latent, _, _ = run_sampler(model, conditioning, rescale=0.0)
    images, _, audio = decode(model, latent)
    reference = LTX2ImageToVideoPipeline(**pipeline_kwargs(model, encoder))(
        image=PIL.Image.fromarray(pixels), image_crf=33,
        **{**diffusers_call_args(encoder), "guidance_rescale": 0.0, "audio_guidance_rescale": 0.0})
    assert np.abs(reference.frames[0] - images.numpy()).max() <= 1e-5
    assert (reference.audio - audio["waveform"]).abs().max().item() <= 1e-5


def official_formula(steps):
    """The ltx-core LTX2Scheduler formula, written from its description."""
    shift = 2.05
    sigmas = [1.0 - i / steps for i in range(steps + 1)]
    shifted = [math.exp(shift) / (math.exp(shift) + (1 / s - 1)) if s > 0 else 0.0 for s in sigmas]
    last = shifted[-2]
    if last == 1.0:
        return shifted
    stretch = (1 - last) / (1 - 0.1)
    return [1 - (1 - s) / stretch if s > 0 else 0.0 for s in shifted]


@pytest.mark.parametrize("steps", [1, 4, 8, 30, 40])
def test_official_schedule_equals_the_official_formula(model, steps):
    settings = SamplerSettings(width=96, height=64, num_frames=17, steps=steps, schedule="official")
    sigmas = plan(model, settings).sigmas
    assert len(sigmas) == steps + 1
    assert np.abs(sigmas.double().numpy() - np.array(official_formula(steps))).max() <= 1e-6


@pytest.mark.parametrize("schedule", ["official", "diffusers"])
def test_a_single_step_schedule_is_finite(model, schedule):
    sigmas = plan(model, SamplerSettings(width=96, height=64, num_frames=17, steps=1, schedule=schedule)).sigmas
    assert sigmas.tolist() == [1.0, 0.0]


def test_official_schedule_differs_from_diffusers_at_real_size(model):
    official = plan(model, SamplerSettings(width=768, height=512, num_frames=121, steps=40)).sigmas
    dynamic = plan(model, SamplerSettings(width=768, height=512, num_frames=121, steps=40, schedule="diffusers")).sigmas
    assert 0.1 < (official - dynamic).abs().max().item() < 0.15


def test_family_defaults(model, distilled):
    assert (LTX2_19B.steps, LTX2_19B.stg_blocks, LTX2_19B.use_cross_timestep) == (40, (29,), False)
    dev = plan(model, SamplerSettings(width=96, height=64, num_frames=17))
    assert dev.stg_blocks == (1,) and len(dev.sigmas) - 1 == model.family.steps
    assert dev.guidance == Guidance()
    fast = plan(distilled, SamplerSettings(width=96, height=64, num_frames=17))
    assert fast.guidance == Guidance.off()
    assert fast.sigmas.tolist() == pytest.approx(list(DISTILLED_SIGMAS))


def test_distilled_default_runs_one_model_call_per_step(distilled, encoder):
    calls = []
    hook = distilled.transformer.register_forward_hook(lambda *a: calls.append(1))
    try:
        (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
        latent, _, report = L2A_Sampler().sample(distilled, conditioning, **SIZE, steps=0, seed=1, guidance="auto",
                                                 video_cfg=3.0, audio_cfg=7.0, stg_scale=1.0, stg_blocks="",
                                                 modality_scale=3.0, rescale=0.7, generate_audio=True,
                                                 schedule="official")["result"]
    finally:
        hook.remove()
    assert len(calls) == len(DISTILLED_SIGMAS) - 1
    assert "distilled schedule" in report


def test_random_seed_is_reported(model, encoder):
    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
    out = L2A_Sampler().sample(model, conditioning, **SIZE, steps=1, seed=-1, guidance="off", video_cfg=3.0,
                               audio_cfg=7.0, stg_scale=1.0, stg_blocks="", modality_scale=3.0, rescale=0.7,
                               generate_audio=True, schedule="official")
    latent, seed, report = out["result"]
    assert seed >= 0 and latent.seed == seed and f"seed {seed}" in report
    assert out["ui"]["text"] == [report]


@pytest.mark.parametrize(("field", "value", "words"), [
    ("width", 500, ["width = 500", "multiple of 32", "480 or 512"]),
    ("height", 100, ["height = 100", "96 or 128"]),
    ("stg_blocks", "29", ["[29]", "blocks 0 to 1"]),
    ("stg_blocks", "x", ["'x'", "'28, 29'"]),
    ("seed", -5, ["seed = -5", "-1 for a random seed"]),
])
def test_bad_sampler_input_is_refused_before_work(model, encoder, field, value, words):
    calls = []
    hook = model.transformer.register_forward_hook(lambda *a: calls.append(1))
    try:
        (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
        with pytest.raises(L2AError) as error:
            run_sampler(model, conditioning, **{field: value})
    finally:
        hook.remove()
    assert not calls
    for word in words:
        assert word in str(error.value)


def test_empty_prompt_is_refused(encoder):
    with pytest.raises(L2AError, match="prompt is empty"):
        L2A_TextEncode().encode(encoder, "   ", NEGATIVE, 24.0)


def test_frames_not_8k_plus_1_are_snapped_and_audio_follows(model, encoder):
    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
    latent, _, report = run_sampler(model, conditioning, frames=20, steps=1)
    assert latent.num_frames == 17 and "snapped to 17" in report
    assert latent.video.isfinite().all() and latent.audio.isfinite().all()
    assert latent.audio.shape[2] == audio_latent_frames(17, 24.0)
    images, _, audio = decode(model, latent)
    assert images.shape[0] == 17
    video_seconds, audio_seconds = 17 / 24.0, audio["waveform"].shape[-1] / 24000
    assert abs(video_seconds - audio_seconds) < 1 / 24.0


def test_image_with_alpha_and_odd_size_is_handled(model, encoder):
    rgba = torch.rand(1, 61, 97, 4)
    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
    (conditioning,) = L2A_ImageCondition().apply(conditioning, rgba, 1.0, 33)
    latent, _, _ = run_sampler(model, conditioning, steps=1)
    assert latent.video.shape[-2:] == (2, 3)


def test_cancel_stops_within_one_step(model, encoder):
    steps_done = []

    def cancel_on_second_call(module, args, output):
        steps_done.append(1)
        if len(steps_done) == 2:
            _comfy.request_interrupt()

    hook = model.transformer.register_forward_hook(cancel_on_second_call)
    try:
        (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
        with pytest.raises(_comfy.interrupt_exception()):
            run_sampler(model, conditioning, steps=8, guidance="off")
    finally:
        hook.remove()
    assert len(steps_done) == 2
    _comfy.throw_if_interrupted()


def test_previews_follow_the_preview_setting(model, encoder, monkeypatch):
    bars = []
    original = _comfy.Progress

    def recording(total, node_id=None):
        bars.append(original(total, node_id))
        return bars[-1]

    monkeypatch.setattr(_comfy, "Progress", recording)
    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
    for enabled in (False, True):
        _comfy.configure(previews=enabled)
        run_sampler(model, conditioning, steps=3, guidance="off")
    _comfy.configure(previews=False)
    assert [bar.value for bar in bars] == [3, 3]
    assert bars[0].previews == [] and len(bars[1].previews) == 3
    assert bars[1].previews[0].size == (3 * 8, 2 * 8)


def test_save_video_writes_mp4_with_audio_and_returns_video(model, encoder, models_dir):
    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
    latent, _, _ = run_sampler(model, conditioning, steps=2)
    images, fps, audio = decode(model, latent)
    out = L2A_SaveVideo().save(images, fps, "LTX-2/test", audio=audio, prompt={"1": {"class_type": "x"}})
    (video,) = out["result"]
    preview = out["ui"]["images"][0]
    path = _comfy.output_directory() / preview["subfolder"] / preview["filename"]
    assert path.exists() and preview["type"] == "output"
    info = media.probe_video(path)
    assert (info["video_streams"], info["audio_streams"]) == (1, 1)
    assert (info["video_codec"], info["audio_codec"]) == ("h264", "aac")
    assert abs(info["video_duration"] - info["audio_duration"]) < 1 / 24 + 1024 / 24000
    parts = video.get_components()
    assert parts.images.shape[0] == 17 and parts.frame_rate == 24 and parts.audio["sample_rate"] == 24000
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_sampler_validates_widgets_at_queue_time_and_reruns_random_seeds():
    assert L2A_Sampler.VALIDATE_INPUTS(width=768, height=512, stg_blocks="29") is True
    assert "width = 500 is not a multiple of 32" in L2A_Sampler.VALIDATE_INPUTS(width=500, height=512)
    assert "'28, 29'" in L2A_Sampler.VALIDATE_INPUTS(stg_blocks="a")
    assert L2A_Sampler.VALIDATE_INPUTS() is True
    changed = L2A_Sampler.IS_CHANGED(seed=-1)
    assert changed != changed
    assert L2A_Sampler.IS_CHANGED(seed=5) == 5


@pytest.mark.parametrize(("width", "height", "tile", "overlap"), [(192, 128, 64, 32), (192, 96, 128, 32)])
def test_spatial_tiling_never_leaves_a_one_latent_tile(model, width, height, tile, overlap):
    from ltx2_anywhere.pipelines.sampling import Latent

    latent = Latent(video=torch.randn(1, 8, 2, height // 32, width // 32), audio=None, width=width, height=height,
                    num_frames=9, fps=24.0, seed=0)
    images, _ = L2A_DecodeVideo().decode(model, latent, True, tile, overlap, False, 16, 8)
    assert images.shape == (9, height, width, 3) and images.isfinite().all()


def test_saved_soundtracks_last_as_long_as_the_video(model, encoder, models_dir):
    """The audio VAE decodes L latents to 4L-3 mel frames (30-45 ms short); the saver pads the tail with silence."""
    (conditioning,) = L2A_TextEncode().encode(encoder, PROMPT, NEGATIVE, 24.0)
    latent, _, _ = run_sampler(model, conditioning, steps=1)
    images, fps, audio = decode(model, latent)
    assert audio["waveform"].shape[-1] < round(17 / 24 * 24000)
    out = L2A_SaveVideo().save(images, fps, "LTX-2/padded", audio=audio)
    preview = out["ui"]["images"][0]
    info = media.probe_video(_comfy.output_directory() / preview["subfolder"] / preview["filename"])
    assert info["audio_duration"] == pytest.approx(17 / 24, abs=1e-3)


@pytest.mark.parametrize(("frames", "tile_frames", "overlap", "spatial"),
                         [(33, 16, 8, False), (65, 24, 8, False), (33, 16, 8, True), (49, 16, 0, False)])
def test_temporal_tiles_stream_into_the_output_exactly_like_diffusers(model, frames, tile_frames, overlap, spatial):
    """The pack's time-tile loop keeps one tile at a time but gives diffusers' temporal tiled decode exactly."""
    from ltx2_anywhere.pipelines.decoding import Tiling, _configure_tiling, decode_video
    from ltx2_anywhere.pipelines.sampling import Latent

    video = torch.randn(1, 8, (frames - 1) // 8 + 1, 4, 6, generator=torch.Generator().manual_seed(frames))
    latent = Latent(video=video, audio=None, width=192, height=128, num_frames=frames, fps=24.0, seed=0)
    tiling = Tiling(spatial=spatial, tile_size=64, tile_overlap=32, temporal=True, tile_frames=tile_frames,
                    frame_overlap=overlap)
    mine = decode_video(model, latent, tiling)
    _configure_tiling(model.vae, tiling, 4, 6)
    with torch.no_grad():
        reference = model.vae.decode(video, None, return_dict=False)[0]
    reference = (reference.float() / 2 + 0.5).clamp(0, 1)[0].permute(1, 2, 3, 0)
    assert mine.shape == reference.shape == (frames, 128, 192, 3)
    assert torch.equal(mine, reference)
