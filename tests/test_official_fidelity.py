"""Where diffusers and the official Lightricks code differ, the pack follows the official code (ltx-core /
ltx-pipelines 1.2.0, github.com/Lightricks/LTX-2). Each reference below is written from the cited official source,
not from the pack's code; the tiny model has the behaviour flags of the real LTX-2 19B config."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from ltx2_anywhere.pipelines import conditioning as cond_mod
from ltx2_anywhere.pipelines import loading, sampling, tiny
from ltx2_anywhere.pipelines.av_edit import audio_to_video
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import DEFAULT_NEGATIVE_PROMPT, DISTILLED_SIGMAS, LTX2_19B, Guidance
from ltx2_anywhere.pipelines.lora import add_lora
from ltx2_anywhere.pipelines.sampling import CleanContext, SamplerSettings, plan, sample

PROMPT = "a man speaks hello, music plays"
OFF = Guidance.off()
SIZE = dict(width=96, height=64, num_frames=9, fps=24.0)


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def distilled(tiny_models):
    return loading.load_model(tiny_models.checkpoint_distilled, dtype="fp32")


@pytest.fixture(scope="module")
def conditioning(tiny_encoder):
    return cond_mod.encode_text(tiny_encoder, PROMPT, "blurry, static", 24.0)


class Recorder:
    """Every transformer call (its keyword arguments and outputs), and the self-attention of the STG block in
    calls that perturb: (modality, input, output)."""

    def __init__(self, transformer, stg_block=1):
        self.calls, self.stg_attention, self._stg = [], [], False
        block = transformer.transformer_blocks[stg_block]
        self._handles = [
            transformer.register_forward_pre_hook(self._start, with_kwargs=True),
            transformer.register_forward_hook(self._call, with_kwargs=True),
            block.attn1.register_forward_hook(self._attention("video"), with_kwargs=True),
            block.audio_attn1.register_forward_hook(self._attention("audio"), with_kwargs=True),
        ]

    def _start(self, module, args, kwargs):
        self._stg = bool(kwargs.get("spatio_temporal_guidance_blocks"))

    def _call(self, module, args, kwargs, output):
        self.calls.append((kwargs, [o.detach().clone() for o in output]))

    def _attention(self, modality):
        def hook(module, args, kwargs, output):
            if self._stg:
                self.stg_attention.append((modality, module, kwargs["hidden_states"], output))
        return hook

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()


def value_projection(attention, hidden_states):
    """Official perturbed self-attention (ltx_core/model/transformer/attention.py, Attention.forward with
    all_perturbed): `out = to_v(x)`, then the output projection."""
    return attention.to_out[0](attention.to_v(hidden_states))


# ---- STG on LTX-2 19B ------------------------------------------------------------------------------------------


def test_the_tiny_model_has_the_behaviour_flags_of_ltx2_19b(model):
    real = LTX2_19B.config()["transformer"]
    flags = {key: value for key, value in real.items() if isinstance(value, (bool, str))}
    assert flags["perturbed_attn"] is True and flags["rope_type"] == "split"
    assert {key: model.transformer.config[key] for key in flags} == flags
    assert all(block.perturbed_attn for block in model.transformer.transformer_blocks)


def test_ltx2_files_and_folders_without_the_stg_flag_load_with_it_and_unchanged_weights(tmp_path, model):
    config = tiny.tiny_config()
    config["transformer"]["perturbed_attn"] = False  # what diffusers' 2.0 conversion writes
    components = tiny.build_components(config)
    folder = loading.save_diffusers_folder(tmp_path / "ltx-2-tiny", components, config["scheduler"])
    assert json.loads((folder / "transformer" / "config.json").read_text())["perturbed_attn"] is False
    file = loading.save_checkpoint(tmp_path / "ltx-2-19b-dev.safetensors", components,
                                   {"l2a_tiny": json.dumps(config)})
    for path in (folder, file):
        loaded = loading.load_model(path, dtype="fp32")
        assert all(block.perturbed_attn for block in loaded.transformer.transformer_blocks)
        reference = model.transformer.state_dict()
        assert all(torch.equal(t, reference[k]) for k, t in loaded.transformer.state_dict().items())


def test_stg_alone_changes_video_and_audio_with_one_pass_more(model, conditioning):
    stg = replace(OFF, stg_scale=1.0, audio_stg_scale=1.0)
    runs = {}
    for name, guidance in (("off", OFF), ("stg", stg)):
        with Recorder(model.transformer) as rec:
            runs[name] = sample(model, conditioning, SamplerSettings(**SIZE, steps=2, seed=3, guidance=guidance))
        runs[name + " calls"] = len(rec.calls)
    assert (runs["off calls"], runs["stg calls"]) == (2, 4)
    assert (runs["off"].video - runs["stg"].video).abs().max().item() > 1e-3
    assert (runs["off"].audio - runs["stg"].audio).abs().max().item() > 1e-3


@pytest.mark.parametrize(("guidance", "passes"), [
    (OFF, 1),
    (replace(OFF, video_cfg=3.0), 2),
    (replace(OFF, video_cfg=0.5), 2),  # official guiders: CFG is on whenever its scale is not 1
    (replace(OFF, audio_stg_scale=1.0), 2),
    (replace(OFF, modality_scale=0.5), 2),
    (replace(OFF, video_cfg=3.0, stg_scale=1.0, audio_stg_scale=1.0), 3),
    (Guidance(), 4),
])
def test_passes_per_step_are_one_plus_the_enabled_terms_and_none_repeats_another(model, conditioning, guidance,
                                                                                   passes):
    with Recorder(model.transformer) as rec:
        sample(model, conditioning, SamplerSettings(**SIZE, steps=1, seed=2, guidance=guidance))
    outputs = [(video[i], audio[i]) for _, (video, audio) in rec.calls for i in range(video.shape[0])]
    assert len(outputs) == passes
    for i in range(passes):
        for j in range(i):
            assert not torch.equal(outputs[i][0], outputs[j][0]) and not torch.equal(outputs[i][1], outputs[j][1])


@pytest.mark.parametrize(("video_stg", "audio_stg"), [(1.0, 1.0), (1.0, 0.0), (0.0, 1.0)])
def test_stg_replaces_self_attention_by_its_value_projection_per_modality(model, conditioning, video_stg, audio_stg):
    """Official `_guided_denoise` (ltx_pipelines/utils/denoisers.py) perturbs SKIP_VIDEO_SELF_ATTN only when the
    video guider's STG is on and SKIP_AUDIO_SELF_ATTN only when the audio guider's is."""
    guidance = replace(OFF, stg_scale=video_stg, audio_stg_scale=audio_stg)
    with Recorder(model.transformer) as rec:
        sample(model, conditioning, SamplerSettings(**SIZE, steps=1, seed=2, guidance=guidance))
    seen = {modality: torch.equal(output, value_projection(attention, hidden))
            for modality, attention, hidden, output in rec.stg_attention}
    assert seen == {"video": video_stg != 0, "audio": audio_stg != 0}


def test_a_compiled_stg_block_runs_eagerly_while_one_modality_stays_unperturbed(model, conditioning):
    """Regional compile (Memory Options `compile_blocks`) would not see the hook that keeps audio unperturbed."""
    block = model.transformer.transformer_blocks[1]
    perturbed_calls = []

    def compiled(*args, **kwargs):
        perturbed_calls.append(kwargs.get("perturbation_mask") is not None)
        return block._call_impl(*args, **kwargs)

    block._compiled_call_impl = compiled
    try:
        with Recorder(model.transformer) as rec:
            sample(model, conditioning, SamplerSettings(**SIZE, steps=1, seed=2,
                                                        guidance=replace(OFF, stg_scale=1.0)))
        assert block._compiled_call_impl is compiled
    finally:
        block._compiled_call_impl = None
    assert perturbed_calls == [False] and [modality for modality, *_ in rec.stg_attention] == ["video", "audio"]


# ---- per-token x0 and the post-rescale blend ---------------------------------------------------------------------


def _pixels(seed):
    return (np.random.RandomState(seed).rand(64, 96, 3) * 255).astype(np.uint8)


def _masked_request(conditioning):
    """17 frames (3 latent frames, 18 audio latents): frame 0 an image at strength 0.6, latent frame 1 kept from a
    given video, frame 2 generated, the last frame a keyframe at strength 0.8; audio kept 1.0 / 0.5 / 0."""
    conditioning = conditioning.with_image(cond_mod.image_condition(_pixels(1), 0.6, 0))
    conditioning = conditioning.with_image(cond_mod.image_condition(_pixels(2), 0.8, 0, frame_index=-1))
    g = torch.Generator().manual_seed(5)
    keep_audio = torch.tensor([1.0] * 6 + [0.5] * 4 + [0.0] * 8)
    context = CleanContext(video=torch.randn(1, 8, 3, 2, 3, generator=g), video_keep=torch.tensor([0.0, 1.0, 0.0]),
                           audio=torch.randn(1, 2, 18, 4, generator=g), audio_keep=keep_audio)
    video_strength = torch.tensor([0.6] * 6 + [1.0] * 6 + [0.0] * 6 + [0.8] * 6)
    return conditioning, context, video_strength, keep_audio


def official_denoised(x, outputs, sigma, strength, clean, g: Guidance, modality: str):
    """ltx-core: X0Model.forward -> to_denoised(latent, v, timesteps) with timesteps = sigma * denoise_mask
    (ltx_pipelines/utils/helpers.py, timesteps_from_mask; denoise_mask = 1 - strength, latent_cond.py);
    MultiModalGuider.calculate (ltx_core/components/guiders.py) on the four passes, rescale on the whole tensor;
    then post_process_latent (helpers.py): denoised * denoise_mask + clean * (1 - denoise_mask)."""
    denoise_mask = (1.0 - strength)[None, :, None]
    timesteps = sigma * denoise_mask
    x0 = {name: x - v * timesteps for name, v in outputs.items()}
    video = modality == "video"
    cfg, stg = (g.video_cfg, g.stg_scale) if video else (g.audio_cfg, g.audio_stg_scale)
    mod, rescale = (g.modality_scale, g.rescale) if video else (g.audio_modality_scale, g.audio_rescale)
    cond = x0["cond"]
    pred = (cond + (cfg - 1) * (cond - x0.get("uncond", 0.0)) + stg * (cond - x0.get("ptb", 0.0))
            + (mod - 1) * (cond - x0.get("mod", 0.0)))
    if rescale != 0:
        factor = cond.std() / pred.std()
        pred = pred * (rescale * factor + (1 - rescale))
    return pred * denoise_mask + clean * (1 - denoise_mask), x0["cond"]


def _passes(calls, index):
    """Name -> (video, audio) output of each pass of one step."""
    named = {}
    for kwargs, (video, audio) in calls:
        if video.shape[0] == 2:
            named["uncond"], named["cond"] = (video[:1], audio[:1]), (video[1:], audio[1:])
        elif kwargs["spatio_temporal_guidance_blocks"]:
            named["ptb"] = (video, audio)
        elif kwargs["isolate_modalities"]:
            named["mod"] = (video, audio)
        else:
            named["cond"] = (video, audio)
    return {name: outs[index] for name, outs in named.items()}


@pytest.mark.parametrize("guidance", [Guidance(), OFF], ids=["full guidance", "no guidance"])
def test_x0_and_the_post_rescale_blend_equal_the_official_formula(model, conditioning, monkeypatch, guidance):
    conditioning, context, video_strength, audio_strength = _masked_request(conditioning)
    settings = SamplerSettings(**{**SIZE, "num_frames": 17}, steps=3, seed=4, guidance=guidance)
    p = plan(model, settings)
    geo = p.geometry
    video = sampling.prepare_video_tokens(model, conditioning, geo, torch.Generator().manual_seed(0), context=context)
    audio = sampling.prepare_audio_tokens(model, geo, torch.Generator().manual_seed(0), context=context)
    assert torch.equal(video.mask[0], video_strength) and torch.equal(audio.mask[0], audio_strength)
    denoised = []

    def recording_step(latents, blended, sigma, sigma_next, noise):
        denoised.append(blended)
        return sampling.euler_step(latents, blended, sigma, sigma_next)

    monkeypatch.setitem(sampling.SAMPLERS, "euler", sampling.Sampler(recording_step))
    with Recorder(model.transformer) as rec:
        sample(model, conditioning, settings, context=context)
    calls_per_step = len(rec.calls) // 3
    first_step = rec.calls[:calls_per_step]
    x = first_step[0][0]["hidden_states"][-1:]
    ax = first_step[0][0]["audio_hidden_states"][-1:]
    sigma = p.sigmas[0]
    ref_v, x0_v = official_denoised(x, _passes(first_step, 0), sigma, video_strength, video.clean, guidance, "video")
    ref_a, x0_a = official_denoised(ax, _passes(first_step, 1), sigma, audio_strength, audio.clean, guidance,
                                    "audio")
    kept_v, kept_a = video_strength == 1, audio_strength == 1
    assert torch.equal(x0_v[:, kept_v], video.clean[:, kept_v]) and torch.equal(x0_a[:, kept_a], audio.clean[:, kept_a])
    assert (denoised[0] - ref_v).abs().max().item() <= 1e-6
    assert (denoised[1] - ref_a).abs().max().item() <= 1e-6
    assert len(denoised) == 2 * 3


# ---- distilled models are sampled as distilled -------------------------------------------------------------------


def test_a_distilled_model_refuses_other_step_counts(distilled):
    with pytest.raises(L2AError, match="steps = 6 does not fit a distilled model: it samples the 8 distilled sigmas"):
        plan(distilled, SamplerSettings(**SIZE, steps=6))


@pytest.mark.parametrize("steps", [0, 8])
def test_a_distilled_model_samples_the_distilled_sigmas(distilled, conditioning, steps):
    settings = SamplerSettings(**SIZE, steps=steps, seed=1, schedule="diffusers")
    p = plan(distilled, settings)
    assert p.sigmas.tolist() == pytest.approx(list(DISTILLED_SIGMAS)) and p.guidance == OFF
    assert "schedule diffusers not used" in p.report()
    with Recorder(distilled.transformer) as rec:
        sample(distilled, conditioning, settings)
    assert [kwargs["hidden_states"].shape[0] for kwargs, _ in rec.calls] == [1] * 8
    assert [kwargs["timestep"][0].item() / 1000 for kwargs, _ in rec.calls] == pytest.approx(list(DISTILLED_SIGMAS[:-1]))


@pytest.mark.parametrize("preset", ["regular", "high"])
def test_regular_and_high_change_nothing_on_a_distilled_model_and_say_so(distilled, preset):
    p = plan(distilled, SamplerSettings(**SIZE, acceleration=preset))
    assert p.sigmas.tolist() == pytest.approx(list(DISTILLED_SIGMAS)) and p.guidance == OFF
    assert f"acceleration {preset}: no change (a distilled model always samples its 8 distilled sigmas)" in p.report()


def test_full_on_a_dev_model_needs_the_distilled_lora(model, tiny_models):
    with pytest.raises(L2AError, match=f"acceleration = 'full' .* add {LTX2_19B.distilled_lora.name} with LTX-2 LoRA"):
        plan(model, SamplerSettings(**SIZE, acceleration="full"))
    with_lora = add_lora(model, tiny_models.lora_distilled)
    p = plan(with_lora, SamplerSettings(**SIZE, acceleration="full"))
    assert p.sigmas.tolist() == pytest.approx(list(DISTILLED_SIGMAS)) and p.guidance == OFF
    assert "distilled LoRA in the chain" in p.report()
    with pytest.raises(L2AError, match="steps = 20 does not fit acceleration 'full'"):
        plan(with_lora, SamplerSettings(**SIZE, steps=20, acceleration="full"))


def test_presets_on_a_dev_model_report_what_changed(model):
    assert "acceleration regular: 8 → 4 steps" in plan(model, SamplerSettings(**SIZE, acceleration="regular")).report()
    high = plan(model, SamplerSettings(**SIZE, acceleration="high"))
    assert "acceleration high: 8 → 2 steps, STG and modality guidance off" in high.report()
    single = plan(model, SamplerSettings(**SIZE, steps=1, guidance=OFF, acceleration="high"))
    assert "acceleration high: no change" in single.report()


def test_generate_starts_from_no_guidance_on_a_distilled_model(distilled, tiny_encoder, tmp_path):
    from ltx2_anywhere.pipelines.backend import Hooks, LocalBackend
    from ltx2_anywhere.pipelines.hosted.types import GenerationRequest

    local = LocalBackend(model=distilled, text_encoder=tiny_encoder, allow_cpu=True)
    batches = {}
    for scale in (None, 3.0):
        request = GenerationRequest(mode="t2v", prompt=PROMPT, seed=1, width=96, height=64, num_frames=9, fps=24.0,
                                    guidance_scale=scale, acceleration="regular")
        with Recorder(distilled.transformer) as rec:
            outcome = local.generate(request, tmp_path, Hooks())
        batches[scale] = [kwargs["hidden_states"].shape[0] for kwargs, _ in rec.calls]
        assert "acceleration regular: no change" in outcome.report
    assert batches == {None: [1] * 8, 3.0: [2] * 8}


# ---- audio-to-video as official ----------------------------------------------------------------------------------


def tone(seconds, rate=24000):
    t = torch.arange(round(seconds * rate)) / rate
    return torch.stack([0.3 * torch.sin(2 * math.pi * 330.0 * t)] * 2)


def test_audio_to_video_turns_the_audio_guider_off_and_keeps_the_positive_audio_prompt(model, conditioning):
    """ltx_pipelines/a2vid_two_stage.py: the audio guider has default params (all terms off) and no negative
    context, so `_guided_denoise` gives the unconditional pass the positive audio context and the perturbed pass
    skips only the video self-attention."""
    settings = SamplerSettings(width=96, height=64, fps=24.0, steps=1, seed=1)
    with Recorder(model.transformer) as rec:
        result = audio_to_video(model, conditioning, tone(2.0), 24000, settings)
    assert "audio guidance off" in result.report
    assert "guidance video cfg 3 / audio cfg 1, stg 1/0" in result.report
    batched = [kwargs for kwargs, _ in rec.calls if kwargs["hidden_states"].shape[0] == 2]
    assert len(batched) == 1 and len(rec.calls) == 3
    audio_ctx, video_ctx = batched[0]["audio_encoder_hidden_states"], batched[0]["encoder_hidden_states"]
    assert torch.equal(audio_ctx[0], audio_ctx[1]) and not torch.equal(video_ctx[0], video_ctx[1])
    seen = {modality: torch.equal(output, value_projection(attention, hidden))
            for modality, attention, hidden, output in rec.stg_attention}
    assert seen == {"video": True, "audio": False}


def test_a_20_second_audio_to_video_is_as_long_as_its_audio(model, conditioning):
    settings = SamplerSettings(width=64, height=64, fps=25.0, steps=1, seed=1, guidance=OFF)
    result = audio_to_video(model, conditioning, tone(20.0), 24000, settings)
    assert result.clip.frames.shape[0] == 500 and result.clip.duration == pytest.approx(20.0)


# ---- defaults ------------------------------------------------------------------------------------------------------


def test_the_default_negative_prompt_is_the_newest_official_one():
    """ltx_pipelines/utils/constants.py (1.2.0), DEFAULT_NEGATIVE_PROMPT: the 1.0.0 list, which diffusers ships,
    with five terms put in front."""
    from diffusers.pipelines.ltx2.utils import DEFAULT_NEGATIVE_PROMPT as DIFFUSERS_NEGATIVE_PROMPT

    added = "has_subtitles, has_blurbox, transition from black, transition to black, speech_ending_short, "
    assert DEFAULT_NEGATIVE_PROMPT == added + DIFFUSERS_NEGATIVE_PROMPT
