"""LTX-2.5 on the tiny model: its split release and its Gemma 4 encoder load from the official names and folders,
the sampler matches diffusers (dev) and the official ancestral distilled sampler, the edits keep what they keep, and
wrong files are refused from their headers before any tensor byte is read."""

import json
import math
import re
import wave

import pytest
import torch
from test_gemma_single_file import _header_file

from ltx2_anywhere import cli
from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.loaders import L2A_ModelLoader, L2A_TextEncoderLoader, _model_choices, _text_encoder_choices
from ltx2_anywhere.pipelines import conditioning as cond_mod
from ltx2_anywhere.pipelines import convert, loading, lora, media, sampling, tiny
from ltx2_anywhere.pipelines.av_edit import Clip, extend
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import DISTILLED_SIGMAS, LTX23_22B, LTX25_22B, Guidance
from ltx2_anywhere.pipelines.sampling import SamplerSettings, sample

PROMPT, NEGATIVE = "a robot dancing in the rain, music plays", "blurry static"
SIZE = dict(width=96, height=64, num_frames=17)
DEV_GUIDANCE = dict(guidance_scale=3.0, stg_scale=1.0, modality_scale=3.0, guidance_rescale=0.7,
                    audio_guidance_scale=7.0, audio_stg_scale=1.0, audio_modality_scale=3.0,
                    audio_guidance_rescale=0.7, spatio_temporal_guidance_blocks=[1])
NO_GUIDANCE = dict(guidance_scale=1.0, stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0,
                   audio_guidance_scale=1.0, audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0)


@pytest.fixture(scope="module")
def files(tiny_models_25):
    return tiny_models_25


@pytest.fixture(scope="module")
def encoder(files):
    return loading.load_text_encoder(files.text_encoder, dtype="fp32")


@pytest.fixture(scope="module")
def distilled(files):
    return loading.load_model(files.checkpoint_distilled, dtype="fp32")


@pytest.fixture(scope="module")
def conditioning(encoder):
    return cond_mod.encode_text(encoder, PROMPT, NEGATIVE)


# ---- the files, as users keep them -------------------------------------------------------------------------------


def test_the_sockets_carry_what_their_files_hold(files, distilled, encoder):
    """The model: the transformer file's transformer and connectors (no text projection) and the two VAE files; the
    text encoder: Gemma 4 unified with the projection of its file, as submodule so it follows the model around."""
    info = loading.inspect_checkpoint(files.checkpoint_distilled)
    assert (info.family.name, info.variant, info.tiny) == ("2.5", "distilled", True)
    assert info.parts == {"vae": files.part_vae, "audio_vae": files.part_audio_vae}
    assert info.text_encoder_version == LTX25_22B.text_encoder.version == encoder.version
    assert not any(hasattr(distilled.connectors, n) for n in ("video_text_proj_in", "audio_text_proj_in"))
    assert not distilled.transformer.config.ff_bias and distilled.transformer.config.use_keyframes_abs_pos_embedding
    assert distilled.audio_sample_rate == 48000 and distilled.vocoder.config.out_channels == 2
    assert type(encoder.model).__name__ == "Gemma4UnifiedModel" and encoder.kind == "gemma4_unified"
    assert encoder.projection is encoder.model.ltx_text_projection
    assert {n: m.out_features for n, m in encoder.projection.items()} == {"video": 16, "audio": 8}
    from safetensors import safe_open

    with safe_open(str(files.text_encoder), framework="pt") as f:
        stored = f.get_tensor("text_embedding_projection.video_aggregate_embed.weight")
    assert torch.equal(encoder.projection["video"].weight, stored.float())


def test_tokenization_prepends_the_bos_gemma_4_leaves_out(encoder, tiny_models):
    """ltx-core LTXGemmaTokenizer: truncate, ensure one leading BOS, pad on the left to the full length."""
    plain = encoder.tokenizer("a robot", add_special_tokens=True).input_ids
    assert plain[0] != encoder.tokenizer.bos_token_id
    ids, mask = cond_mod.tokenize(encoder, "a robot")
    kept = ids[0][mask[0].bool()].tolist()
    assert kept == [encoder.tokenizer.bos_token_id, *plain] and ids.shape == (1, 64) and mask[0, -1] == 1
    gemma3 = loading.load_text_encoder(tiny_models.text_encoder_file, dtype="fp32")
    ids3, mask3 = cond_mod.tokenize(gemma3, "a robot")
    kept3 = ids3[0][mask3[0].bool()].tolist()
    assert kept3 == gemma3.tokenizer("a robot").input_ids and kept3.count(gemma3.tokenizer.bos_token_id) == 1


def test_loading_finds_the_parts_in_the_vae_folder_and_notes_a_transformer_in_checkpoints(files, tmp_path):
    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    (root / "vae").symlink_to(files.part_vae.parent, target_is_directory=True)
    moved = root / "checkpoints" / files.checkpoint_dev.name
    moved.symlink_to(files.checkpoint_dev)
    model = loading.load_model(moved, dtype="fp32", listed_in="checkpoints")
    assert model.variant == "dev" and model.family.name == "2.5"
    assert model.notes == (f"'{moved.name}' is an LTX-2.5 tiny (random weights) diffusion model file, kept in "
                           "models/checkpoints: it loads from there, but belongs in models/diffusion_models.",)
    (root / "vae").unlink()
    with pytest.raises(L2AError, match=r"needs its video VAE.*needs 'ltx-2.5-video-vae-conv-bf16.safetensors', "
                                       r"which is not in .*models/vae.*resolve/main/vae/ltx-2.5-video-vae-conv"):
        loading.inspect_checkpoint(moved)


def test_the_model_loader_lists_diffusion_models_and_vae_files_and_loads_2_5(files, tiny_models):
    _comfy.configure(models_dir=files.root)
    try:
        assert LTX25_22B.checkpoints["dev"].name in _model_choices()
        assert LTX25_22B.text_encoder.files[0].name in _text_encoder_choices()
        inputs = L2A_ModelLoader.INPUT_TYPES()["required"]
        assert inputs["video_vae"][0] == ["auto", *sorted([*(p.name for p in LTX25_22B.parts.values()),
                                                          LTX25_22B.extras["diffusion_decoder"].name])]
        model = L2A_ModelLoader().load(LTX25_22B.checkpoints["distilled"].name, "fp32", False, "none", "auto",
                                       LTX25_22B.parts["audio_vae"].name)[0]
        assert model.variant == "distilled" and model.family.name == "2.5"
        (te,) = L2A_TextEncoderLoader().load(LTX25_22B.text_encoder.files[0].name, "fp32", "cpu")
        assert te.projection is not None
        with pytest.raises(L2AError, match="is the audio VAE and vocoder file, not the video VAE"):
            L2A_ModelLoader().load(LTX25_22B.checkpoints["distilled"].name, "fp32", False, "none",
                                   LTX25_22B.parts["audio_vae"].name, "auto")
    finally:
        _comfy.configure(models_dir=tiny_models.root)


# ---- parity --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def diffusers_folder(tmp_path_factory):
    return tiny.write_diffusers_folder(tmp_path_factory.mktemp("ltx25") / "LTX-2.5-Diffusers")


@pytest.fixture(scope="module")
def reference(diffusers_folder):
    """diffusers' own modules from the folder, and the encoder's hidden states for given token ids."""
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
    from transformers import Gemma4UnifiedForConditionalGeneration, PreTrainedTokenizerFast

    text_encoder = Gemma4UnifiedForConditionalGeneration.from_pretrained(diffusers_folder / "text_encoder").eval()
    return dict(text_encoder=text_encoder,
                tokenizer=PreTrainedTokenizerFast.from_pretrained(diffusers_folder / "tokenizer"),
                connectors=LTX2TextConnectors.from_pretrained(diffusers_folder / "connectors").eval())


def _embeds(reference, ids, mask):
    with torch.no_grad():
        out = reference["text_encoder"](input_ids=ids, attention_mask=mask, output_hidden_states=True)
    return torch.stack(out.hidden_states, dim=-1).flatten(2, 3)


def _pipeline(reference, model, scheduler):
    from diffusers import LTX2Pipeline

    pipe = LTX2Pipeline(scheduler=scheduler, vae=model.vae, audio_vae=model.audio_vae, vocoder=model.vocoder,
                        transformer=model.transformer, text_encoder=reference["text_encoder"],
                        tokenizer=reference["tokenizer"], connectors=reference["connectors"])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_text_to_video_on_the_diffusers_folder_equals_ltx2pipeline(diffusers_folder, reference):
    """The dev transformer (transformer_full/) with schedule diffusers and full guidance: LTX2Pipeline given the same
    token ids (diffusers tokenizes Gemma 4 without the BOS the official code adds)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    model = loading.load_model(diffusers_folder / "transformer_full", dtype="fp32")
    encoder = loading.load_text_encoder(diffusers_folder, dtype="fp32")
    assert (model.variant, model.family.name, encoder.kind) == ("dev", "2.5", "gemma4_unified")
    assert loading.load_model(diffusers_folder, dtype="fp32").variant == "distilled"
    ids = {text: cond_mod.tokenize(encoder, text) for text in (PROMPT, NEGATIVE)}
    (pe, pm), (ne, nm) = ((_embeds(reference, *ids[t]), ids[t][1]) for t in (PROMPT, NEGATIVE))
    pipe = _pipeline(reference, model, FlowMatchEulerDiscreteScheduler.from_config(model.scheduler_config))
    video, audio = pipe(prompt_embeds=pe, prompt_attention_mask=pm, negative_prompt_embeds=ne,
                        negative_prompt_attention_mask=nm, height=64, width=96, num_frames=17, frame_rate=24.0,
                        num_inference_steps=4, use_cross_timestep=True, generator=torch.Generator().manual_seed(7),
                        output_type="latent", return_dict=False, **DEV_GUIDANCE)
    latent = sample(model, cond_mod.encode_text(encoder, PROMPT, NEGATIVE),
                    SamplerSettings(**SIZE, steps=4, seed=7, schedule="diffusers", guidance=Guidance(),
                                    stg_blocks=(1,)))
    assert (latent.video - video).abs().max().item() <= 1e-5 and (latent.audio - audio).abs().max().item() <= 1e-5


def test_distilled_stage_1_equals_diffusers_ancestral_scheduler(diffusers_folder, reference):
    """The distilled model samples the 8 distilled sigmas with the ancestral Euler step, as ltx-pipelines 1.2.0 does
    for model_version >= 2.5; diffusers' LTXEulerAncestralRFScheduler (eta 1) over the same list with its terminal 0
    draws its step noise from the global generator, seeded as the official loop seeds its own: seed + 10000."""
    from diffusers import LTXEulerAncestralRFScheduler

    model = loading.load_model(diffusers_folder, dtype="fp32")
    encoder = loading.load_text_encoder(diffusers_folder, dtype="fp32")
    ids, mask = cond_mod.tokenize(encoder, PROMPT)
    pipe = _pipeline(reference, model, LTXEulerAncestralRFScheduler(eta=1.0, s_noise=1.0))
    torch.manual_seed(7 + 10000)
    video, audio = pipe(prompt_embeds=_embeds(reference, ids, mask), prompt_attention_mask=mask, height=64, width=96,
                        num_frames=17, frame_rate=24.0, sigmas=list(DISTILLED_SIGMAS), use_cross_timestep=True,
                        generator=torch.Generator().manual_seed(7), output_type="latent", return_dict=False,
                        **NO_GUIDANCE)
    latent = sample(model, cond_mod.encode_text(encoder, PROMPT, NEGATIVE), SamplerSettings(**SIZE, seed=7))
    assert "8 steps (distilled schedule, ancestral Euler)" in latent.report
    assert (latent.video - video).abs().max().item() <= 1e-5 and (latent.audio - audio).abs().max().item() <= 1e-5


def test_the_ancestral_step_is_the_official_formula():
    """ltx-core EulerAncestralDiffusionStep (eta 1, s_noise 1): sigma_down = sigma_next * (1 + (sigma_next / sigma -
    1)), x' = (sigma_down / sigma) x + (1 - sigma_down / sigma) x0, then (alpha_next / alpha_down) x' + noise *
    sqrt(sigma_next^2 - sigma_down^2 alpha_next^2 / alpha_down^2), alpha = 1 - sigma; x0 when sigma_next is 0."""
    x, x0, noise = (torch.randn(2, 5, generator=torch.Generator().manual_seed(i)) for i in range(3))
    sigma, sigma_next = torch.tensor(0.909375), torch.tensor(0.725)
    down = sigma_next * sigma_next / sigma
    a_next, a_down = 1 - sigma_next, 1 - down
    official = (a_next / a_down) * ((down / sigma) * x + (1 - down / sigma) * x0) + noise * torch.sqrt(
        sigma_next**2 - down**2 * a_next**2 / a_down**2)
    assert torch.allclose(sampling.euler_ancestral_step(x, x0, sigma, sigma_next, lambda: noise), official, atol=1e-6)
    assert torch.equal(sampling.euler_ancestral_step(x, x0, sigma, torch.tensor(0.0), lambda: pytest.fail()), x0)


# ---- the sampler, the edits, the command line ----------------------------------------------------------------------


def test_a_conditioning_from_another_familys_encoder_is_refused_naming_both(distilled, tiny_models_23):
    gemma3 = loading.load_text_encoder(tiny_models_23.text_encoder_file, dtype="fp32")
    foreign = cond_mod.encode_text(gemma3, PROMPT)
    with pytest.raises(L2AError, match=r"encoded by 'gemma_3_12B_it.safetensors' \(Gemma 3\), but LTX-2.5 tiny .* \("
                                       r"'ltx-2.5-22b-distilled-transformer-bf16.safetensors'\) needs Gemma 4 12B with "
                                       r"the LTX-2.5 text projection: it is Gemma 3.*gemma4-12b-with-proj-ltx-2.5"):
        sample(distilled, foreign, SamplerSettings(**SIZE, seed=1))


def test_extend_keeps_its_prefix_exactly_with_the_ancestral_sampler(distilled, conditioning):
    """The distilled 2.5 model's loop renoises every step: kept latents are put back after each step (official
    post_process_latent), so the prefix stays exactly, with 48 kHz stereo sound as long as the video."""
    rate = 48000
    t = torch.arange(round(25 / 24 * rate)) / rate
    sound = torch.stack([0.3 * torch.sin(2 * math.pi * 440 * t), 0.2 * torch.sin(2 * math.pi * 660 * t)])
    frames = torch.rand(25, 64, 96, 3, generator=torch.Generator().manual_seed(3))
    extended = extend(distilled, conditioning, Clip(frames, 24.0, sound, rate), 8, 9, SamplerSettings(seed=4))
    assert "ancestral Euler" in extended.latent.report
    kept_v, kept_a = int(extended.context.video_keep.sum()), int(extended.context.audio_keep.sum())
    assert (extended.latent.video[:, :, :kept_v] - extended.context.video[:, :, :kept_v]).abs().max() <= 1e-5
    assert (extended.latent.audio[:, :, :kept_a] - extended.context.audio[:, :, :kept_a]).abs().max() <= 1e-5
    out = extended.clip
    assert torch.equal(out.frames[:25], frames) and out.sample_rate == rate and out.audio.shape == (
        2, round(out.duration * rate))


def test_48khz_stereo_through_the_nodes_into_every_format(distilled, conditioning, tmp_path, monkeypatch):
    """Sampler → Decode Audio (core AUDIO at 48 kHz, 2 channels) → Save Video as mp4, webm and mov: each file's sound
    is 48 kHz stereo and as long as its video; the returned core VIDEO carries the same audio."""
    from ltx2_anywhere.nodes.media import L2A_DecodeAudio, L2A_DecodeVideo, L2A_SaveVideo
    from ltx2_anywhere.nodes.sampling import L2A_Sampler

    latent = L2A_Sampler().sample(distilled, conditioning, 96, 64, 17, 24.0, 0, 3, "auto", 3.0, 7.0, 1.0, "", 3.0,
                                  0.7, True, "official")["result"][0]
    images, fps = L2A_DecodeVideo().decode(distilled, latent, False, 512, 64, False, 16, 8)
    (audio,) = L2A_DecodeAudio().decode(distilled, latent)
    assert audio["sample_rate"] == 48000 and audio["waveform"].shape[:2] == (1, 2)
    assert audio["waveform"].shape[2] == pytest.approx(17 / 24 * 48000, abs=1920)  # within one audio latent
    monkeypatch.setitem(_comfy._settings, "output_dir", tmp_path)
    for fmt, codec in (("mp4", "aac"), ("webm", "opus"), ("mov", "pcm_s16le")):
        out = L2A_SaveVideo().save(images, fps, f"LTX-2.5/{fmt}", format=fmt, audio=audio)
        preview = out["ui"]["images"][0]
        info = media.probe_video(tmp_path / preview["subfolder"] / preview["filename"])
        assert (info["audio_codec"], info["sample_rate"], info["channels"]) == (codec, 48000, 2), fmt
        assert abs(info["video_duration"] - info["audio_duration"]) < 1 / 24 + 1024 / 48000, fmt
        assert out["result"][0].get_components().audio["sample_rate"] == 48000


def _check_stereo_48k(path, frames):
    info = media.probe_video(path)
    assert (info["video_codec"], info["audio_codec"], info["sample_rate"], info["channels"]) == ("h264", "aac",
                                                                                                   48000, 2)
    assert info["frames"] == frames and abs(info["video_duration"] - info["audio_duration"]) < 1 / 24 + 1024 / 48000


def test_command_line_on_tiny_2_5(tmp_path, capsys):
    """demo, generate (text, image, multiscale distilled), extend, audio-to-video and retake with --family 2.5."""
    assert cli.main(["demo", "--family", "2.5", "--out", str(tmp_path / "demo")]) == 0
    _check_stereo_48k(tmp_path / "demo" / "demo_image_to_video.mp4", 25)
    root = tiny.ensure_cached("2.5")
    model = root / LTX25_22B.checkpoints["distilled"].folder / LTX25_22B.checkpoints["distilled"].name
    encoder = root / "text_encoders" / LTX25_22B.text_encoder.files[0].name
    common = ["--width", "128", "--height", "128", "--frames", "9", "--seed", "2"]
    assert cli.main(["generate", "--prompt", "a dog", "--out", str(tmp_path / "ms.mp4"), "--model", str(model),
                     "--text-encoder", str(encoder), "--multiscale", *common]) == 0
    printed = capsys.readouterr().out
    assert "multiscale: stage 1 64x64" in printed and "ancestral Euler" in printed and "with the distilled model" in printed
    _check_stereo_48k(tmp_path / "ms.mp4", 9)
    clip, song = tmp_path / "clip.mp4", tmp_path / "song.wav"
    quick = ["--steps", "2", "--guidance", "off", "--seed", "1"]
    assert cli.main(["generate", "--family", "2.5", "--prompt", "a dog", "--out", str(clip), "--width", "96",
                     "--height", "64", "--frames", "9", *quick]) == 0
    t = torch.arange(2 * 48000) / 48000
    samples = torch.stack([torch.sin(2 * math.pi * 220 * t), torch.sin(2 * math.pi * 330 * t)], dim=1) * 0.3
    with wave.open(str(song), "wb") as out:
        out.setnchannels(2), out.setsampwidth(2), out.setframerate(48000)
        out.writeframes((samples * 32767).to(torch.int16).numpy().tobytes())
    edits = {"extend": (["--video", str(clip), "--frames", "8", "--overlap", "9"], 17),
             "audio-to-video": (["--audio", str(song), "--width", "64", "--height", "64"], 48),
             "retake": (["--video", str(clip), "--start", "0.1", "--end", "0.3"], 9)}
    for command, (extra, frames) in edits.items():
        out = tmp_path / f"{command}.mp4"
        assert cli.main([command, "--family", "2.5", "--prompt", "a dog barks", "--out", str(out), *quick,
                         *extra]) == 0, command
        _check_stereo_48k(out, frames)


# ---- wrong files, refused from their headers -------------------------------------------------------------------------


def _official_layout(config, names=("transformer", "connectors")) -> dict:
    modules = loading.build_empty(config, names)
    entries = {}
    for name, module in modules.items():
        state = module.state_dict()
        for key, official in convert.diffusers_key_map(name, list(state)).items():
            entries[official] = ("BF16", tuple(state[key].shape))
    return entries


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    """Real-size LTX-2.5 and LTX-2.3 transformer files (tens of GB, sparse: nothing but the header is written), a
    video VAE of LTX-2.5, a Gemma 3 12B and a stock Gemma 4."""
    from test_gemma_single_file import _gemma3_12b_layout

    root = tmp_path_factory.mktemp("sparse") / "models"
    config = LTX25_22B.config()
    t25 = _header_file(root / "diffusion_models" / LTX25_22B.checkpoints["dev"].name, _official_layout(config), {
        "model_version": "2.5.0", "gemma_source_checkpoint": json.dumps({"gemma_version": "gemma4-12b-ltx-v1"})})
    vae = {"vae": _official_layout(config, ("vae",)), "audio_vae": _official_layout(config, ("audio_vae", "vocoder"))}
    parts = {part: _header_file(root / "vae" / LTX25_22B.parts[part].name, {
        k.removeprefix("vae."): v for k, v in entries.items()}, {"model_version": "2.5.0"}) for part, entries in vae.items()}
    t23 = _header_file(root / "diffusion_models" / "ltx-2.3-22b-dev-transformer.safetensors",
                       _official_layout(LTX23_22B.config()), {"model_version": "2.3.0"})
    gemma3 = _header_file(root / "text_encoders" / "gemma_3_12B_it.safetensors", _gemma3_12b_layout())
    stock4 = _header_file(root / "text_encoders" / "gemma-4-12b.safetensors", {
        "model.embed_tokens.weight": ("BF16", (262144, 3840)), "model.layers.0.layer_scalar": ("BF16", (1,)),
        "model.layers.0.self_attn.q_proj.weight": ("BF16", (4096, 3840)), "tokenizer_json": ("U8", (1000,))},
        {"gemma_config": json.dumps({"model_type": "gemma4_unified"})})
    return dict(root=root, t25=t25, t23=t23, gemma3=gemma3, stock4=stock4, **parts)


@pytest.fixture
def no_tensor_reads(monkeypatch):
    """Any tensor read fails the test: the checks must decide from headers."""
    import safetensors
    import safetensors.torch

    def refuse(*_args, **_kwargs):
        raise AssertionError("a tensor was read")

    monkeypatch.setattr(safetensors, "safe_open", refuse)
    monkeypatch.setattr(safetensors.torch, "load_file", refuse)


def _cli_generate(sparse, model, encoder, *extra):
    return cli.main(["generate", "--prompt", "a dog", "--out", str(sparse["root"] / "x.mp4"), "--model", str(model),
                     "--text-encoder", str(encoder), "--models-dir", str(sparse["root"]), *extra])


def test_real_2_5_files_pass_the_header_checks(sparse, no_tensor_reads):
    info = loading.inspect_checkpoint(sparse["t25"])
    assert info.parts == {"vae": sparse["vae"], "audio_vae": sparse["audio_vae"]} and sparse["t25"].stat().st_size > 3e10
    with pytest.raises(L2AError, match="stock Gemma 4 without the LTX text projection"):
        loading.inspect_text_encoder(sparse["stock4"])


@pytest.mark.parametrize(("case", "words"), [
    ("gemma 3 for 2.5", r"'gemma_3_12B_it.safetensors' \(Gemma 3 single file \(bf16\)\) cannot encode prompts for "
                        r"'ltx-2.5-22b-dev-transformer-bf16.safetensors' \(LTX-2.5 22B\): it is Gemma 3, not Gemma 4 "
                        r"12B with the LTX-2.5 text projection\. LTX-2.5 22B needs gemma4-12b-with-proj-ltx-2.5"),
    ("stock gemma 4", r"'gemma-4-12b.safetensors' is a stock Gemma 4 without the LTX text projection"),
    ("2.3 transformer with 2.5 parts", r"'ltx-2.3-22b-dev-transformer.safetensors' is an LTX-2.3 22B checkpoint, which "
                                       r"takes no separate VAE files, but 'ltx-2.5-video-vae-conv-bf16.safetensors' "
                                       r"\(LTX-2.5 22B's\) was chosen as the video VAE"),
    ("unknown version", r"'ltx-2.5-22b-dev-transformer-bf16.safetensors' says model_version '2.7', a generation newer"),
    ("int8", r"stores weights as I8 .*ComfyUI-quantized file \(e.g. int8-convrot or NVFP4\).*ltx-2.5-22b-dev-transformer-bf16"),
    ("diffusion vae", r"'ltx-2.5-video-vae-bf16.safetensors' is the video VAE with the diffusion decoder, which has no "
                      r"conv decoder: pick ltx-2.5-video-vae-conv-bf16.safetensors .* decoder = diffusion on LTX-2 "
                      r"Decode Video"),
])
def test_wrong_files_are_refused_before_any_tensor_is_read(sparse, no_tensor_reads, capsys, tmp_path, case, words):
    model, encoder, extra = sparse["t25"], sparse["stock4"], []
    if case == "gemma 3 for 2.5":
        encoder = sparse["gemma3"]
    elif case == "2.3 transformer with 2.5 parts":
        model, extra = sparse["t23"], ["--video-vae", str(sparse["vae"])]
    elif case == "unknown version":
        header, _ = loading.read_safetensors_header(sparse["t25"])
        model = _header_file(tmp_path / model.name, {k: (v["dtype"], v["shape"]) for k, v in header.items()},
                             {"model_version": "2.7"})
    elif case == "int8":
        model = _header_file(tmp_path / "ltx-2.5-22b-dev-transformer-comfy-int8-convrot.safetensors", {
            "model.diffusion_model.audio_adaln_single.linear.weight": ("I8", (4096, 4096)),
            "model.diffusion_model.keyframes_abs_pos_embedding": ("BF16", (1, 4096))})
    elif case == "diffusion vae":
        diffusion = sparse["root"] / "vae" / LTX25_22B.extras["diffusion_decoder"].name
        diffusion.symlink_to(sparse["vae"])
        extra = ["--video-vae", str(diffusion)]
    assert _cli_generate(sparse, model, encoder, *extra) == 2
    assert re.search(words, " ".join(capsys.readouterr().err.split())), case


# ---- LoRAs ---------------------------------------------------------------------------------------------------------


def test_a_lora_is_accepted_by_its_layers_and_the_text_projection_is_left_to_the_encoder(distilled, tmp_path):
    """A LoRA named for LTX-2.3 whose layers fit the 2.5 transformer is accepted; its text-projection layers (the
    2.5 text encoder's) are left out, as the official pipelines put LoRAs on the transformer only."""
    full = tiny.build_components(tiny.tiny_config("2.5"))
    modules = {"transformer": full["transformer"], "connectors": full["connectors"]}
    state = lora.random_lora(modules, r"^transformer\.transformer_blocks\.0\.attn1\.to_q$|^connectors\..*text_proj_in$",
                             2, 5)
    path = lora.save_lora(tmp_path / "ltx-2.3-22b-style-lora.safetensors", state)
    with_lora = lora.add_lora(distilled, path, 0.5)
    note = lora.lora_note(with_lora)
    assert "named for LTX-2.3 22B; its layers fit LTX-2.5 tiny" in note and "2 text-projection layers left out" in note
    before = distilled.transformer.transformer_blocks[0].attn1.to_q.weight.clone()
    with lora.active_loras(with_lora):
        assert not torch.equal(distilled.transformer.transformer_blocks[0].attn1.to_q.weight, before)
    assert torch.equal(distilled.transformer.transformer_blocks[0].attn1.to_q.weight, before)


def test_the_2_5_encoder_follows_the_memory_options_and_does_not_expand(files, encoder):
    """On the CPU with fp8 storage the projection (part of the encoder) is stored in fp8 too and the features stay
    close; expansion with the encoder is refused with what to do (2.5 expands with its own enhancer)."""
    from ltx2_anywhere.pipelines.prompt_expansion import expand_prompt

    full = cond_mod._gemma_hidden_states(encoder, "a cat plays piano")[0]
    managed = cond_mod.text_encoder_options(loading.load_text_encoder(files.text_encoder, dtype="fp32"), "cpu",
                                            fp8=True)
    assert managed.projection["video"].weight.element_size() == 1
    features = cond_mod._gemma_hidden_states(managed, "a cat plays piano")[0]
    assert features.shape == full.shape == (1, 64, 24)
    assert ((features - full).norm() / full.norm()).item() < 0.2
    with pytest.raises(L2AError, match="encodes prompts only: LTX-2.5 expands prompts with its own enhancer"):
        expand_prompt(encoder, "a cat")


def test_the_2_5_upsampler_is_read_from_its_config_and_the_temporal_one_refused(files, tmp_path):
    from ltx2_anywhere.pipelines.upsampler import inspect_upsampler, load_upsampler

    found, config = inspect_upsampler(files.upsampler)
    assert found.name == "2.5" and config == tiny.tiny_config("2.5")["latent_upsampler"]
    assert load_upsampler(files.upsampler, dtype="fp32").family.name == "2.5"
    header, metadata = loading.read_safetensors_header(files.upsampler)
    raw = json.loads(metadata["config"])
    temporal = _header_file(tmp_path / LTX25_22B.upcoming["temporal_upsampler"].name,
                            {k: (v["dtype"], v["shape"]) for k, v in header.items()},
                            {"config": json.dumps({**raw, "spatial_upsample": False, "temporal_upsample": True})})
    with pytest.raises(L2AError, match="is a temporal latent upscaler .LTX-2.5's DFR rounds., which this version"):
        inspect_upsampler(temporal)


def test_keyframes_condition_as_on_2_3_without_the_keyframe_embedding(files, encoder):
    """A last-frame image is appended as keyframe tokens, as on 2.3; the official code marks only generated keyframe
    slots with 2.5's keyframe embedding (ltx-core mask_utils), never guide keyframes, so the embedding changes
    nothing here."""
    model = loading.load_model(files.checkpoint_dev, dtype="fp32")
    image = torch.rand(64, 96, 3, generator=torch.Generator().manual_seed(1))
    conditioning = cond_mod.first_last_frame(cond_mod.encode_text(encoder, PROMPT), end_image=image, crf=18)
    settings = SamplerSettings(**SIZE, steps=2, seed=5, guidance=Guidance.off())
    before = sample(model, conditioning, settings)
    with torch.no_grad():
        model.transformer.keyframes_abs_pos_embedding.fill_(10.0)
    after = sample(model, conditioning, settings)
    assert torch.equal(before.video, after.video) and torch.equal(before.audio, after.audio)
