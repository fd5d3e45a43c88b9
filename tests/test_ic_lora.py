"""IC-LoRAs with a reference video on the tiny models: parity with diffusers' LTX2InContextPipeline, the official
placement, attention and stage-2 rules, telling IC-LoRAs from plain LoRAs, the node, and canny edge maps."""

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import load_file, save_file

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.control import L2A_Canny, L2A_ICLoRA
from ltx2_anywhere.nodes.lora import L2A_LoRA
from ltx2_anywhere.pipelines import conditioning, ic_lora, loading, lora, sampling
from ltx2_anywhere.pipelines.av_edit import Clip, audio_to_video, extend
from ltx2_anywhere.pipelines.canny import canny
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import LTX2_19B, LTX23_22B, Guidance
from ltx2_anywhere.pipelines.geometry import make_geometry
from ltx2_anywhere.pipelines.media import write_video
from ltx2_anywhere.pipelines.sampling import SamplerSettings, sample

PROMPT, NEGATIVE = "a robot dancing in the rain", "blurry"
ATTENTION = r"^transformer\..*\.(to_q|to_k|to_v|to_out\.0)$"
CANNY = LTX2_19B.ic_loras["canny"].name
W, H, F = 128, 64, 17


@pytest.fixture(scope="module")
def env(tiny_models, tmp_path_factory):
    """The tiny 2.0 models folder, a fp32 model and encoder, a prompt, and an IC-LoRA of our own whose metadata asks
    for half-size references (no official name)."""
    folder = tmp_path_factory.mktemp("ic")
    _comfy.configure(models_dir=tiny_models.root)
    model = loading.load_model(tiny_models.checkpoint_dev, dtype="fp32")
    encoder = loading.load_text_encoder(tiny_models.text_encoder, dtype="fp32")
    cond = conditioning.encode_text(encoder, PROMPT, NEGATIVE, 24.0)
    modules = {"transformer": model.transformer, "connectors": model.connectors}
    half = lora.save_lora(folder / "my-control.safetensors", lora.random_lora(modules, ATTENTION, 4, 77),
                          {"reference_downscale_factor": "2"})
    frames = torch.randint(0, 256, (F, H // 2, W // 2, 3), generator=torch.Generator().manual_seed(0)) / 255.0
    return SimpleNamespace(root=tiny_models.root, written=tiny_models.written, model=model, encoder=encoder,
                           cond=cond, half=half, frames=frames, folder=folder, modules=modules)


def no_guidance(steps=3, **overrides):
    settings = SamplerSettings(width=W, height=H, num_frames=F, steps=steps, seed=7, guidance=Guidance.off(),
                               schedule="diffusers")
    return replace(settings, **overrides)


def in_context_pipeline(env):
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.pipelines.ltx2.pipeline_ltx2_ic_lora import LTX2InContextPipeline

    m = env.model
    return LTX2InContextPipeline(scheduler=FlowMatchEulerDiscreteScheduler.from_config(m.scheduler_config), vae=m.vae,
                                 audio_vae=m.audio_vae, text_encoder=env.encoder.model, tokenizer=env.encoder.tokenizer,
                                 connectors=m.connectors, transformer=m.transformer, vocoder=m.vocoder)


def diffusers_args(env, **extra):
    """LTX2InContextPipeline without guidance, as the official distilled IC-LoRA pipeline runs."""
    return dict(prompt=PROMPT, negative_prompt=NEGATIVE, height=H, width=W, num_frames=F, frame_rate=24.0,
                num_inference_steps=3, guidance_scale=1.0, stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0,
                audio_guidance_scale=1.0, audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0,
                use_cross_timestep=False, max_sequence_length=env.encoder.max_sequence_length,
                generator=torch.Generator().manual_seed(7), output_type="latent", return_dict=False, **extra)


# ---- parity with diffusers ---------------------------------------------------------------------------------------


def test_reference_video_equals_diffusers_in_context_pipeline(env):
    """The checked case: an IC-LoRA whose metadata asks for half-size references, a reference video, no guidance, the
    diffusers schedule; diffusers loads the same LoRA file itself and gets the factor as an argument."""
    from diffusers.pipelines.ltx2.pipeline_ltx2_ic_lora import LTX2ReferenceCondition

    controlled = ic_lora.add_ic_lora(env.model, env.half, env.frames)
    (control,) = controlled.controls
    assert control.scale.spatial == 2 and control.scale.source == "reference_downscale_factor in the file's metadata"
    ours = sample(controlled, env.cond, no_guidance())
    pipe = in_context_pipeline(env)
    pipe.load_lora_weights(str(env.half), adapter_name="ic")
    try:
        video, audio = pipe(reference_conditions=[LTX2ReferenceCondition(frames=env.frames.numpy())],
                            reference_downscale_factor=control.scale.spatial, **diffusers_args(env))
    finally:
        pipe.unload_lora_weights()
    assert (video - ours.video).abs().max().item() <= 1e-5
    assert (audio - ours.audio).abs().max().item() <= 1e-5
    assert (ours.video - sample(env.model, env.cond, no_guidance()).video).abs().max() > 1e-3  # the reference acts


def test_image_keyframe_and_binary_mask_equal_diffusers_in_context_pipeline(env):
    """A first frame, a keyframe between the generated and the reference tokens, and an attention mask of 0s and 1s
    (where diffusers' linear bias and the official log bias agree): bit for bit, with the same fused weights."""
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition
    from diffusers.pipelines.ltx2.pipeline_ltx2_ic_lora import LTX2ReferenceCondition

    first, key = ((np.random.RandomState(seed).rand(H, W, 3) * 255).astype(np.uint8) for seed in (0, 1))
    cond = env.cond.with_image(conditioning.image_condition(torch.from_numpy(first)[None] / 255.0, 1.0, 0, 0))
    cond = cond.with_image(conditioning.image_condition(torch.from_numpy(key)[None] / 255.0, 1.0, 0, 9))
    mask = torch.zeros(F, H // 2, W // 2)
    mask[:, :, : W // 4] = 1.0
    controlled = ic_lora.add_ic_lora(env.model, env.half, env.frames, mask=mask)
    ours = sample(controlled, cond, no_guidance())
    images = [LTX2VideoCondition(frames=PIL.Image.fromarray(first), index=0, crf=0),
              LTX2VideoCondition(frames=PIL.Image.fromarray(key), index=2, crf=0)]  # latent 2 = pixel frame 9
    with lora.active_loras(controlled):
        video, audio = in_context_pipeline(env)(
            conditions=images, reference_conditions=[LTX2ReferenceCondition(frames=env.frames.numpy())],
            reference_downscale_factor=2, conditioning_attention_mask=mask[None, None], **diffusers_args(env))
    assert torch.equal(video, ours.video) and torch.equal(audio, ours.audio)


# ---- official placement and attention ----------------------------------------------------------------------------


def official_mask(main, appended, groups):
    """ltx-core's `build_attention_mask` applied item by item (written from its block diagram): `appended` earlier
    tokens, then one group per (size, cross weight or None)."""
    count, mask = main + appended, None
    for size, cross in groups:
        if cross is None and mask is None:
            count += size
            continue
        weights = torch.ones(size) if cross is None else torch.full((size,), cross)
        grown = torch.zeros(count + size, count + size)
        grown[:count, :count] = 1.0 if mask is None else mask
        grown[count:, count:] = 1.0
        grown[:main, count:] = weights[None, :]
        grown[count:, :main] = weights[:, None]
        mask, count = grown, count + size
    return mask


def test_fractional_attention_reaches_every_block_as_the_official_log_bias(env):
    """Attention strength 0.5 with a keyframe in between: every block's video self-attention gets log(0.5) between
    the generated and the reference tokens, the dtype's minimum between keyframe and reference, 0 elsewhere (ltx-core
    `_prepare_self_attention_mask`); diffusers' (1 - w) * -10000 would nearly mask the reference instead."""
    key = (np.random.RandomState(1).rand(H, W, 3) * 255).astype(np.uint8)
    cond = env.cond.with_image(conditioning.image_condition(torch.from_numpy(key)[None] / 255.0, 1.0, 0, 9))
    controlled = ic_lora.add_ic_lora(env.model, env.half, env.frames, attention_strength=0.5)
    seen = []
    blocks = env.model.transformer.transformer_blocks
    for block in blocks:
        original = block.attn1.forward

        def spy(*args, _original=original, **kwargs):
            seen.append(kwargs.get("attention_mask"))
            return _original(*args, **kwargs)

        block.attn1.forward = spy
    try:
        sample(controlled, cond, no_guidance(steps=1))
    finally:
        for block in blocks:
            del block.attn1.forward
    main, keyframe, reference = 3 * 2 * 4, 2 * 4, 3 * 1 * 2
    expected = official_mask(main, keyframe, [(reference, 0.5)])
    bias = torch.full_like(expected, torch.finfo(torch.float32).min)
    bias[expected > 0] = torch.log(expected[expected > 0])
    assert len(seen) == len(env.model.transformer.transformer_blocks)
    for mask in seen:
        assert mask.shape == (1, main + keyframe + reference, main + keyframe + reference)
        assert torch.equal(mask[0], bias)


def test_groups_of_several_references_follow_update_attention_mask(env):
    """Item by item: a reference without a mask before one with, and two with masks, as ltx-core builds them."""
    def ref(size, cross):
        return sampling._Reference(torch.zeros(1, size, 8), None, 1.0,
                                   None if cross is None else torch.full((1, size), cross))

    for groups in ([(4, None), (3, 0.25)], [(4, 0.5), (3, 0.0)], [(4, None), (3, None)]):
        mask = sampling.reference_attention([ref(*g) for g in groups], 6, 8)
        expected = official_mask(6, 2, groups)
        assert (mask is None and expected is None) or torch.equal(mask[0], expected)


def test_reference_tokens_sit_on_the_output_grid(env):
    """Half-size references: their RoPE height and width bounds are the output's (factor x their own), time as the
    output's frames; with a temporal scale S, time runs S times slower and is shifted back by S - 1 frames (clamped
    at 0), as VideoConditionByReferenceLatent; in an extend the control starts at the first new frame."""
    geo = make_geometry(W, H, F, 24.0)
    rope = env.model.transformer.rope
    output = rope.prepare_video_coords(1, 3, 2, 4, env.model.device, fps=24.0)
    controlled = ic_lora.add_ic_lora(env.model, env.half, env.frames)
    prepared, _ = sampling.reference_conditions(controlled, geo)
    (reference,) = sampling.encode_references(controlled, prepared, 24.0)
    own = rope.prepare_video_coords(1, 3, 1, 2, env.model.device, fps=24.0)
    assert torch.equal(reference.coords[:, 0], own[:, 0]) and torch.equal(reference.coords[:, 1:], own[:, 1:] * 2)
    assert reference.coords[:, 1:].max() == output[:, 1:].max()

    slow = replace(controlled.controls[0], scale=lora.ReferenceScale(2, 2, "test"))
    pixels = ic_lora.reference_pixels(slow, W, H, 33)
    assert pixels.pixels.shape[2] == 9  # frames 0, 1, 3, ..., 15 of 17 given: 9 = 8k+1
    (slowed,) = sampling.encode_references(replace(controlled, controls=[slow]), [pixels], 24.0)
    grid = rope.prepare_video_coords(1, 2, 1, 2, env.model.device, fps=12.0)
    assert torch.allclose(slowed.coords[:, 0], (grid[:, 0] - 1 / 24.0).clamp(min=0))

    (shifted,) = sampling.encode_references(controlled, prepared, 24.0, at=25)
    assert torch.allclose(shifted.coords[:, 0], own[:, 0] + 25 / 24.0)


def test_references_are_trimmed_accepted_and_fitted_and_each_change_is_reported(env):
    controlled = ic_lora.add_ic_lora(env.model, env.half, torch.rand(30, 50, 120, 3))
    pixels = ic_lora.reference_pixels(controlled.controls[0], W, H, F)
    assert pixels.pixels.shape == (1, 3, 17, 32, 64)
    (note,) = pixels.notes
    assert "30 frames trimmed to the 17" in note and "120x50 scaled to cover and centre-cropped to 64x32" in note
    assert "1/2 of 128x64" in note

    short = ic_lora.add_ic_lora(env.model, env.half, torch.rand(12, 32, 64, 3), mask=torch.ones(1, 8, 8))
    pixels = ic_lora.reference_pixels(short.controls[0], W, H, F)
    assert pixels.pixels.shape[2] == 9 and pixels.mask.shape == (1, 1, 9, 32, 64)
    assert "its 12 frames cover 12 of the 17" in pixels.notes[0] and "last 3 of its 12 frames dropped" in pixels.notes[0]
    result = sample(short, env.cond, no_guidance(steps=1))
    assert "reference of my-control.safetensors" in result.report

    with pytest.raises(L2AError, match="multiples of 64"):
        sample(controlled, env.cond, no_guidance(width=96))


def test_latent_mask_averages_like_the_official_downsampling():
    mask = torch.rand(1, 1, 17, 64, 96)
    got = ic_lora.latent_mask(mask, 3, 2, 3)
    area = torch.nn.functional.avg_pool2d(mask[0, 0], 32)  # area interpolation by whole cells
    expected = torch.stack([area[0], area[1:9].mean(0), area[9:17].mean(0)])
    assert torch.allclose(got[0], expected.flatten(), atol=1e-6)


# ---- the model chain and the stages ------------------------------------------------------------------------------


def test_multiscale_stage_two_runs_without_the_ic_lora(env, monkeypatch):
    from ltx2_anywhere.pipelines.upsampler import load_upsampler

    upsampler = load_upsampler(env.written["upsampler"], dtype="fp32")
    controlled = ic_lora.add_ic_lora(env.model, env.half, torch.rand(17, 32, 32, 3))
    refine = lora.with_distilled_lora(controlled, [env.root / "loras"])
    calls = []
    prepare = sampling.prepare_video_tokens

    def spy(model, *args, references=(), **kwargs):
        calls.append(([spec.name for spec in model.loras], len(references), len(model.controls)))
        return prepare(model, *args, references=references, **kwargs)

    monkeypatch.setattr(sampling, "prepare_video_tokens", spy)
    latent = sampling.sample_multiscale(controlled, env.cond, SamplerSettings(width=128, height=128, num_frames=9,
                                                                            steps=2, seed=3), upsampler, refine)
    assert calls == [(["my-control.safetensors"], 1, 1), ([LTX2_19B.distilled_lora.name], 0, 0)]
    assert "stage 2 without my-control.safetensors (as the official IC-LoRA pipeline)" in latent.report


def test_extend_places_the_control_on_the_new_frames(env, monkeypatch):
    calls = []
    pixels = ic_lora.reference_pixels

    def spy(control, width, height, num_frames, at=0, start=0, fps=None):
        calls.append((num_frames, at, start))
        return pixels(control, width, height, num_frames, at, start, fps)

    monkeypatch.setattr(ic_lora, "reference_pixels", spy)
    controlled = ic_lora.add_ic_lora(env.model, env.written["ic_lora_canny"], torch.rand(40, 64, 96, 3))
    clip = Clip(torch.rand(9, 64, 96, 3), 24.0)
    result = extend(controlled, env.cond, clip, 8, 9, SamplerSettings(steps=1, seed=2))
    assert calls == [(17, 9, 0)]
    assert result.clip.frames.shape[0] == 17 and "its 40 frames" not in result.report
    assert "40 frames trimmed to the 8 it covers" in result.report


def test_audio_to_video_with_the_detailer_keeps_the_source_audio(env):
    source = torch.rand(49, 64, 96, 3)
    seconds = torch.arange(48000) / 24000
    audio = 0.3 * torch.sin(2 * math.pi * 440 * seconds)[None].repeat(2, 1)
    controlled = ic_lora.add_ic_lora(env.model, env.written["ic_lora_detailer"], source)
    result = audio_to_video(controlled, env.cond, audio, 24000, SamplerSettings(width=96, height=64, steps=1, seed=4))
    assert torch.equal(result.clip.audio, audio) and result.clip.sample_rate == 24000
    assert result.clip.frames.shape == (48, 64, 96, 3)


# ---- telling IC-LoRAs apart ----------------------------------------------------------------------------------------


def test_official_ic_loras_are_written_with_the_metadata_of_their_reference_size(tiny_models, tiny_models_23):
    for models, family in ((tiny_models, LTX2_19B), (tiny_models_23, LTX23_22B)):
        for kind, file in family.ic_loras.items():
            info = lora.read_lora_header(models.root / "loras" / file.name)
            assert lora.ic_lora_mark(info) is not None
            assert lora.official_ic_lora(file.name) == (family, kind)
            assert lora.reference_scale(info).spatial == (2 if kind == "union" else 1)
    assert sorted(LTX2_19B.ic_loras) == ["canny", "depth", "detailer", "pose"] and list(LTX23_22B.ic_loras) == ["union"]


def test_plain_and_ic_loras_are_refused_by_the_other_node(env):
    with pytest.raises(L2AError, match=r"is an IC-LoRA \(its metadata has reference_downscale_factor = 1\).*L2A_ICLoRA"):
        L2A_LoRA().apply(env.model, CANNY, 1.0, False)
    with pytest.raises(L2AError, match="is an IC-LoRA"):
        lora.add_lora(env.model, env.half)
    camera = LTX2_19B.camera_loras["static"].name
    with pytest.raises(L2AError, match="is a plain LoRA, not an IC-LoRA.*Load it with LTX-2 LoRA"):
        L2A_ICLoRA().apply(env.model, camera, 1.0, 1.0, 1.0, False, reference_images=env.frames)


def test_without_metadata_the_name_decides(env):
    state = lora.random_lora(env.modules, ATTENTION, 2, 5)
    named = lora.read_lora_header(lora.save_lora(env.folder / "studio_IC_LoRA_depth.safetensors", state))
    half = lora.read_lora_header(lora.save_lora(env.folder / "x-ic-lora-union-ref0.5.safetensors", state))
    plain = lora.read_lora_header(lora.save_lora(env.folder / "style.safetensors", state))
    assert lora.ic_lora_mark(named) == "its name says IC-LoRA"
    assert lora.reference_scale(named) == lora.ReferenceScale(1, 1, "no metadata: the official default")
    assert lora.reference_scale(half).spatial == 2 and "ref0.5" in lora.reference_scale(half).source
    assert lora.ic_lora_mark(plain) is None
    temporal = lora.read_lora_header(lora.save_lora(env.folder / "slow.safetensors", state,
                                                    {"reference_temporal_scale_factor": "4.0"}))
    assert lora.reference_scale(temporal) == lora.ReferenceScale(1, 4, "the file's metadata")
    broken = lora.read_lora_header(lora.save_lora(env.folder / "bad.safetensors", state,
                                                  {"reference_downscale_factor": "0.5"}))
    with pytest.raises(L2AError, match="reference_downscale_factor = '0.5'.*not a whole number"):
        lora.reference_scale(broken)


def test_target_keys_decide_whatever_generation_the_name_states(env, tiny_models_23, tiny_models_25):
    """The 2.3 Union runs where its layers fit: on 2.3, and on 2.5 (Lightricks runs it there) with a note saying so;
    a file whose layers have other shapes is refused from its header."""
    union = tiny_models_23.root / "loras" / LTX23_22B.ic_loras["union"].name
    model_23 = loading.load_model(tiny_models_23.checkpoint_dev, dtype="fp32")
    assert ic_lora.add_ic_lora(model_23, union, env.frames).controls[0].scale.spatial == 2
    model_25 = loading.load_model(tiny_models_25.checkpoint_dev, dtype="fp32")
    on_25 = ic_lora.add_ic_lora(model_25, union, env.frames)
    assert on_25.controls[0].name == union.name
    assert f"{union.name} is named for LTX-2.3" in lora.lora_note(on_25)
    state = load_file(union)
    key = next(k for k in state if k.endswith("lora_A.weight"))
    state[key] = torch.zeros(state[key].shape[0], state[key].shape[1] + 1)
    wider = env.folder / "wider-ic-lora-union.safetensors"
    save_file(state, wider, metadata={"reference_downscale_factor": "2"})
    with pytest.raises(L2AError, match="wider-ic-lora-union.safetensors.*other shapes"):
        ic_lora.add_ic_lora(model_25, wider, env.frames)


def test_ic_loras_stack_with_loras_and_refuse_other_reference_scales(env):
    with_camera = lora.add_lora(env.model, env.written["lora_static"], 0.5)
    controlled = ic_lora.add_ic_lora(with_camera, env.written["ic_lora_canny"], env.frames)
    assert [s.name for s in controlled.loras] == [LTX2_19B.camera_loras["static"].name, CANNY]
    assert env.model.loras == [] and env.model.controls == []
    both = ic_lora.add_ic_lora(controlled, env.written["ic_lora_depth"], env.frames)
    assert len(both.controls) == 2
    assert ic_lora.without_controls(both).loras == with_camera.loras
    with pytest.raises(L2AError, match="different reference scales cannot be combined"):
        ic_lora.add_ic_lora(controlled, env.half, env.frames)


# ---- the node -----------------------------------------------------------------------------------------------------


def test_the_node_takes_a_video_or_frames_and_checks_its_inputs(env, tmp_path):
    node = L2A_ICLoRA()
    path = write_video(tmp_path / "control.mp4", torch.rand(9, 64, 96, 3), 30.0)
    out = node.apply(env.model, CANNY, 1.0, 1.0, 0.5, False, reference_video=_comfy.video_from_file(path))
    (controlled,) = out["result"]
    assert controlled.controls[0].frames.shape == (9, 64, 96, 3) and controlled.controls[0].fps == 30.0
    assert "IC-LoRA ltx-2-19b-ic-lora-canny-control.safetensors x1" in out["ui"]["text"][0]
    assert "its 30 fps frames taken one per output frame at 24 fps" in sample(
        controlled, env.cond, SamplerSettings(width=96, height=64, num_frames=9, steps=1, seed=1)).report
    with pytest.raises(L2AError, match="exactly one of reference_video"):
        node.apply(env.model, CANNY, 1.0, 1.0, 1.0, False)
    with pytest.raises(L2AError, match="attention strength"):
        node.apply(env.model, CANNY, 1.0, 1.0, 1.5, False, reference_images=env.frames)
    with pytest.raises(L2AError, match="not a MASK"):
        node.apply(env.model, CANNY, 1.0, 1.0, 1.0, False, reference_images=env.frames, attention_mask=torch.ones(8))
    with pytest.raises(L2AError, match="NaN"):
        node.apply(env.model, CANNY, 1.0, 1.0, 1.0, False, reference_images=torch.full((3, 8, 8, 3), float("nan")))


# ---- canny ---------------------------------------------------------------------------------------------------------


def _near(edges, expected, radius=1):
    """Whether every True of `edges` lies within `radius` pixels of a True of `expected`."""
    grown = torch.nn.functional.max_pool2d(expected[None].float(), 2 * radius + 1, 1, radius)[0] > 0
    return bool((edges & ~grown).sum() == 0)


def test_canny_finds_the_outlines_of_known_shapes():
    """A bright rectangle sliding right and a disc on a dark, noisy-free clip: edges lie on their outlines (within a
    pixel), cover them, and nothing else; one frame's edges do not depend on the others."""
    frames = torch.zeros(5, 72, 96, 3)
    outlines = torch.zeros(5, 72, 96, dtype=torch.bool)
    yy, xx = torch.meshgrid(torch.arange(72), torch.arange(96), indexing="ij")
    disc = (yy - 50) ** 2 + (xx - 70) ** 2 <= 12**2
    for i in range(5):
        rect = (yy >= 10) & (yy < 30) & (xx >= 8 + 4 * i) & (xx < 40 + 4 * i)
        shape = rect | disc
        frames[i][shape] = 0.8
        inner = torch.nn.functional.max_pool2d((~shape)[None].float(), 3, 1, 1)[0] > 0
        outlines[i] = shape & inner | ~shape & (torch.nn.functional.max_pool2d(shape[None].float(), 3, 1, 1)[0] > 0)
    edges = canny(frames)[..., 0] > 0
    assert canny(frames).shape == (5, 72, 96, 3)
    for i in range(5):
        assert _near(edges[i], outlines[i], radius=0)
        rect_boundary = torch.zeros_like(edges[i])
        rect_boundary[10:30, 8 + 4 * i] = rect_boundary[10:30, 39 + 4 * i] = True
        covered = torch.nn.functional.max_pool2d(edges[i][None].float(), 3, 1, 1)[0] > 0
        assert covered[rect_boundary].float().mean() > 0.95
        ring = disc & (torch.nn.functional.max_pool2d((~disc)[None].float(), 3, 1, 1)[0] > 0)
        assert covered[ring].float().mean() > 0.9
    assert torch.equal(canny(frames[2:3]), canny(frames)[2:3])
    assert not canny(frames * 0.1).any()  # a 0.08 step (20 grey levels) stays below the high threshold of 200
    assert canny(frames * 0.1, 20, 40).any()


def test_canny_blur_removes_noise_edges_and_the_node_checks_thresholds():
    noisy = (torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(1)) - 0.5) * 0.3 + 0.5
    plain = canny(noisy)[..., 0].sum()
    assert canny(noisy, blur=2.0)[..., 0].sum() < plain * 0.1
    (edges,) = L2A_Canny().detect(torch.rand(3, 32, 32, 4), 100, 200, 0.0)
    assert edges.shape == (3, 32, 32, 3)
    with pytest.raises(L2AError, match="low threshold 300 is above high threshold 200"):
        L2A_Canny().detect(noisy, 300, 200, 0.0)
