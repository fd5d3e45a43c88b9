"""LTX-2.5's extras on the tiny 2.5 as users keep its files: automatic duration (Sampler frames = 0, Generate
"auto", refused on hosted backends and other families), Decode Video's diffusion decoder (equal to diffusers'
LTX2VideoDiffusionDecodePipeline, tiled within the seam tolerance, progress and Cancel, a clear error without its
file), the doctor's checks of them, the enhancer folder the tiny writer leaves, and 2.5 under the memory options."""

import math
import os
import shutil

import pytest
import torch

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.hosted import L2A_Generate
from ltx2_anywhere.nodes.loaders import L2A_TextEncoderLoader
from ltx2_anywhere.nodes.media import L2A_DecodeVideo
from ltx2_anywhere.nodes.prompt import L2A_PromptEnhancerLoader
from ltx2_anywhere.nodes.sampling import L2A_Sampler
from ltx2_anywhere.pipelines import conditioning as cond_mod
from ltx2_anywhere.pipelines import doctor, loading
from ltx2_anywhere.pipelines.backend import HostedBackend, LocalBackend
from ltx2_anywhere.pipelines.diffusion_decoder import load_diffusion_decoder
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import LTX25_22B
from ltx2_anywhere.pipelines.geometry import audio_latent_frames
from ltx2_anywhere.pipelines.hosted.types import GenerationRequest
from ltx2_anywhere.pipelines.memory import MemoryPolicy, with_policy
from ltx2_anywhere.pipelines.model_files import MissingModelFile
from ltx2_anywhere.pipelines.sampling import SamplerSettings, connector_outputs, sample

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
PROMPT = "a robot dancing in the rain"
HEAD = LTX25_22B.extras["duration_head"]
DIFFUSION_VAE = LTX25_22B.extras["diffusion_decoder"]
SEAM_TOLERANCE = 1e-5  # README and Decode Video: tiled and untiled diffusion decodes agree to float rounding


@pytest.fixture(scope="module")
def files(tiny_models_25):
    return tiny_models_25


@pytest.fixture(scope="module")
def encoder(files):
    return loading.load_text_encoder(files.text_encoder, dtype="fp32")


@pytest.fixture(scope="module")
def model(files):
    return loading.load_model(files.checkpoint_distilled, dtype="fp32")


@pytest.fixture(scope="module")
def conditioning(encoder):
    return cond_mod.encode_text(encoder, PROMPT, "")


def _run_sampler(model, conditioning, frames, fps=24.0, seed=3):
    return L2A_Sampler().sample(model, conditioning, 96, 64, frames, fps, 0, seed, "auto", 3.0, 7.0, 1.0, "", 3.0,
                                0.7, True, "official", "none")


def _reference_frames(model, conditioning, fps):
    """diffusers' LTX2DurationHead.predict_num_frames (its copy of ltx-pipelines' rule: clamp to 1-20 s, floor to
    8k+1) on the connector outputs of the positive prompt, with the head's weights."""
    from diffusers.pipelines.ltx2 import LTX2DurationHead

    head = model.extras["duration_head"].module
    reference = LTX2DurationHead(**head.config)
    reference.load_state_dict(head.state_dict())
    with torch.no_grad():
        video, audio, _ = connector_outputs(model, conditioning.prompt_embeds, conditioning.prompt_mask)
        return int(reference.predict_num_frames(video, audio, frame_rate=fps, temporal_compression_ratio=8,
                                                min_seconds=1.0, max_seconds=20.0))


# ---- automatic duration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [None, 7.3, 60.0])
def test_auto_duration_is_8k_plus_1_within_1_to_20_s_and_the_audio_follows(model, conditioning, seconds):
    """frames = 0: the head's length (as the tiny head predicts it, then pushed to 7.3 s and to 60 s), reported,
    and the run equals one asked for that frame count; its audio is that many frames long."""
    from ltx2_anywhere.pipelines.extras import duration_head_of

    head = duration_head_of(model).module
    bias = head.mlp_out.bias.detach().clone()
    try:
        if seconds is not None:
            with torch.no_grad():
                predicted = head(*connector_outputs(model, conditioning.prompt_embeds, conditioning.prompt_mask)[:2])
                head.mlp_out.bias += math.log(seconds / float(predicted))
        out = _run_sampler(model, conditioning, 0)
        latent, report = out["result"][0], out["result"][2]
        expected = _reference_frames(model, conditioning, 24.0)
    finally:
        with torch.no_grad():
            head.mlp_out.bias.copy_(bias)
    frames = latent.num_frames
    assert frames == expected and (frames - 1) % 8 == 0 and 24 <= frames <= 480
    if seconds == 7.3:
        assert frames == 169  # round(7.3 x 24) = 175, floored to 8k+1
    if seconds == 60.0:
        assert frames == 473 and "clamped from 60.00 s" in report
    assert f"auto duration: {frames} frames" in report and report in out["ui"]["text"][0]
    assert latent.audio.shape[2] == audio_latent_frames(frames, 24.0)
    if seconds is None:
        fixed = _run_sampler(model, conditioning, frames)["result"][0]
        assert torch.equal(fixed.video, latent.video) and torch.equal(fixed.audio, latent.audio)


def test_without_the_head_file_auto_duration_names_it_and_other_families_refuse_it(files, conditioning,
                                                                                   tiny_models_23, tmp_path):
    bare = loading.load_model(files.checkpoint_distilled, dtype="fp32",
                              folders={"vae": [files.root / "vae"], "model_patches": [tmp_path]})
    with pytest.raises(MissingModelFile, match=rf"auto duration \(frames = 0\) needs '{HEAD.name}', which is not in "
                                               rf"{tmp_path}\. Download it from {HEAD.url}"):
        _run_sampler(bare, conditioning, 0)
    older = loading.load_model(tiny_models_23.checkpoint_distilled, dtype="fp32")
    with pytest.raises(L2AError, match="frames = 0 .* needs LTX-2.5's duration head, and LTX-2.3 tiny .* has none"):
        _run_sampler(older, conditioning, 0)


def test_multiscale_predicts_the_length_once_for_both_stages(files, model, conditioning):
    from ltx2_anywhere.pipelines.extras import duration_head_of
    from ltx2_anywhere.pipelines.sampling import sample_multiscale
    from ltx2_anywhere.pipelines.upsampler import load_upsampler

    calls = []
    hook = duration_head_of(model).module.register_forward_hook(lambda *_: calls.append(1))
    try:
        latent = sample_multiscale(model, conditioning, SamplerSettings(width=128, height=128, num_frames=0, seed=4),
                                   load_upsampler(files.upsampler, dtype="fp32"), model)
    finally:
        hook.remove()
    assert len(calls) == 1 and latent.num_frames == _reference_frames(model, conditioning, 24.0)
    assert latent.video.shape[2] == (latent.num_frames - 1) // 8 + 1 and "auto duration" in latent.report


def test_the_command_line_takes_duration_auto(files, tmp_path, capsys, monkeypatch):
    """generate --duration auto: the head's length on LTX-2.5, audio as long as the video; refused before loading for
    another family, without the head file (naming it) and on a hosted backend (nothing sent)."""
    from ltx2_anywhere import cli
    from ltx2_anywhere.pipelines.media import probe_video

    out = tmp_path / "auto.mp4"
    common = ["--prompt", PROMPT, "--duration", "auto", "--width", "96", "--height", "64", "--seed", "3"]
    assert cli.main(["generate", "--family", "2.5", *common, "--out", str(out)]) == 0
    assert "auto duration:" in capsys.readouterr().out
    info = probe_video(out)
    assert (info["frames"] - 1) % 8 == 0 and 24 <= info["frames"] <= 20 * 24 + 1
    assert abs(info["audio_duration"] - info["video_duration"]) < 1 / 24 + 1024 / 48000
    assert cli.main(["generate", "--family", "2.0", *common, "--out", str(out)]) == 2
    assert "--duration auto needs a duration head" in capsys.readouterr().err
    models = tmp_path / "models"
    for folder in ("diffusion_models", "vae"):  # copies (the models folder is found from the resolved path)
        shutil.copytree(files.root / folder, models / folder)  # and no model_patches: no duration head
    model = models / "diffusion_models" / files.checkpoint_distilled.name
    assert cli.main(["generate", "--model", str(model), "--text-encoder", str(files.text_encoder), *common,
                     "--out", str(out)]) == 2
    assert f"needs '{HEAD.name}'" in capsys.readouterr().err
    monkeypatch.setenv("LTX_API_KEY", "ltx-KEY-auto")
    assert cli.main(["generate", "--backend", "ltx", "--base-url", "http://127.0.0.1:9", *common,
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "has no automatic duration" in err and "Nothing was sent" in err


def test_a_local_backend_without_the_head_is_unavailable_before_loading(files, tmp_path):
    from ltx2_anywhere.pipelines.backend import BackendUnavailable

    local = LocalBackend(checkpoint=files.checkpoint_distilled, text_encoder_path=files.text_encoder, allow_cpu=True,
                         folders={"vae": [files.root / "vae"], "model_patches": [tmp_path]})
    request = GenerationRequest(mode="t2v", prompt=PROMPT, seed=1, width=96, height=64, auto_duration=True)
    with pytest.raises(BackendUnavailable, match=f"duration 'auto' needs '{HEAD.name}'"):
        local.generate(request, tmp_path, None)
    assert local.model is None  # refused before the model loaded


def test_generate_auto_runs_locally_and_is_refused_on_hosted_before_anything_is_sent(model, encoder, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.setattr(_comfy, "temp_directory", lambda: tmp_path)
    local = LocalBackend(model=model, text_encoder=encoder, allow_cpu=True)
    outputs = L2A_Generate().generate(local, PROMPT, "", "custom", "16:9", 96, 64, 5.0, 121, 24.0, 3, True, "none",
                                      1.0, 0.0, 0, duration="auto")
    images, report = outputs["result"][1], outputs["result"][4]
    assert (images.shape[0] - 1) % 8 == 0 and f"auto duration: {images.shape[0]} frames" in report
    request = GenerationRequest(mode="t2v", prompt=PROMPT, seed=1, auto_duration=True)
    for provider in ("fal", "wavespeed", "bytecompute", "ltx"):  # vibedream has no text-to-video
        with pytest.raises(L2AError, match="duration 'auto' .* has no automatic duration.*Nothing was sent"):
            HostedBackend(provider).prepare(request)
    with pytest.raises(L2AError, match="duration = 'sometimes' is unknown"):
        L2A_Generate().generate(local, PROMPT, "", "custom", "16:9", 96, 64, 5.0, 121, 24.0, 3, True, "none", 1.0,
                                0.0, 0, duration="sometimes")


# ---- the diffusion decoder ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def latent(model, conditioning):
    return sample(model, conditioning, SamplerSettings(width=96, height=96, num_frames=17, seed=5))


def _decode(model, latent, decoder, tiling=(False, 512, 64, False, 16, 8)):
    return L2A_DecodeVideo().decode(model, latent, *tiling, decoder=decoder)[0]


def test_decode_video_diffusion_equals_diffusers_pipeline_and_tiles_meet(files, model, latent):
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2VideoDiffusionDecodePipeline
    from diffusers.models.autoencoders.ltx2_diffusion_decoder import LTX2VideoVaeNeighborhoodAttnProcessor

    frames = _decode(model, latent, "diffusion")
    module = load_diffusion_decoder(files.root / "vae" / DIFFUSION_VAE.name, dtype="fp32").module
    module.set_attn_processor(LTX2VideoVaeNeighborhoodAttnProcessor())  # diffusers' own attention
    pipe = LTX2VideoDiffusionDecodePipeline(diffusion_decoder=module, scheduler=FlowMatchEulerDiscreteScheduler())
    pipe.set_progress_bar_config(disable=True)
    reference = pipe(latent.video, generator=torch.Generator().manual_seed(latent.seed), output_type="pt",
                     denormalize=False).frames[0].permute(0, 2, 3, 1)
    assert frames.shape == reference.shape == (17, 96, 96, 3)
    assert (frames - reference).abs().max() <= 1e-5
    assert (frames - _decode(model, latent, "conv")).abs().max() > 1e-3  # another decoder really ran
    tiled = _decode(model, latent, "diffusion", (True, 64, 0, True, 8, 0))
    assert (tiled - frames).abs().max() <= SEAM_TOLERANCE


def test_decode_video_diffusion_shows_progress_and_cancels(model, latent, monkeypatch):
    class Cancelled(Exception):
        pass

    checks = []

    def interrupt_at_third():
        checks.append(1)
        if len(checks) == 3:
            raise Cancelled

    monkeypatch.setattr(_comfy, "throw_if_interrupted", interrupt_at_third)
    with pytest.raises(Cancelled):
        _decode(model, latent, "diffusion")
    decoder = model.extras["diffusion_decoder"].module.decoder
    assert all(not b._forward_pre_hooks for stage in decoder.det_stages for b in stage)
    assert len(_decode(model, latent, "conv")) == 17  # Cancel left the model usable


def test_diffusion_decode_without_its_file_names_it_and_other_families_refuse_it(files, latent, tiny_models_23,
                                                                                tmp_path):
    conv_only = tmp_path / "vae"
    conv_only.mkdir()
    for part in LTX25_22B.parts.values():
        (conv_only / part.name).symlink_to(files.root / "vae" / part.name)
    model = loading.load_model(files.checkpoint_distilled, dtype="fp32", folders={"vae": [conv_only]})
    with pytest.raises(MissingModelFile, match=rf"decoder = diffusion \(ltx-2.5-video-vae-conv-bf16.safetensors holds "
                                               rf"the conv decoder only.*needs '{DIFFUSION_VAE.name}', which is not in "
                                               rf"{conv_only}\. Download it from {DIFFUSION_VAE.url}"):
        _decode(model, latent, "diffusion")
    older = loading.load_model(tiny_models_23.checkpoint_distilled, dtype="fp32")
    with pytest.raises(L2AError, match="needs a diffusion video decoder, which LTX-2.3 tiny .* does not have"):
        _decode(older, latent, "diffusion")
    with pytest.raises(L2AError, match="decoder = 'vq' is unknown"):
        _decode(model, latent, "vq")


# ---- files: the diffusers layout, the doctor, the enhancer folder ---------------------------------------------------


def test_a_diffusers_folder_brings_its_own_head_and_decoder(tmp_path, conditioning):
    from ltx2_anywhere.pipelines import tiny

    folder = tiny.write_diffusers_folder(tmp_path / "LTX-2.5-Diffusers")
    model = loading.load_model(folder, dtype="fp32")
    out = _run_sampler(model, conditioning, 0)["result"]
    assert out[0].num_frames == _reference_frames(model, conditioning, 24.0)
    assert model.extras["duration_head"].source == str(folder / "duration_head")
    assert _decode(model, out[0], "diffusion").shape[0] == out[0].num_frames
    assert model.extras["diffusion_decoder"].source == str(folder / "diffusion_decoder")
    bare = tmp_path / "bare"
    bare.mkdir()
    for entry in folder.iterdir():
        if entry.name != "duration_head":
            (bare / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    with pytest.raises(MissingModelFile, match=f"the diffusers folder 'bare' has no duration_head/.*{HEAD.name}"):
        _run_sampler(loading.load_model(bare, dtype="fp32"), conditioning, 0)


def test_the_doctor_asks_for_the_extras_a_workflow_uses(files, tmp_path):
    workflow = {
        "1": {"class_type": "L2A_ModelLoader", "inputs": {"ckpt_name": LTX25_22B.checkpoints["distilled"].name,
                                                          "video_vae": "auto", "audio_vae": "auto"}},
        "2": {"class_type": "L2A_Sampler", "inputs": {"frames": 0}},
        "3": {"class_type": "L2A_DecodeVideo", "inputs": {"decoder": "diffusion"}},
    }
    found = doctor.diagnose(doctor.required_models(workflow), doctor.folders_under(files.root))
    status = {f.requirement.name: f.status for f in found}
    assert status == {LTX25_22B.checkpoints["distilled"].name: "present", HEAD.name: "present",
                      DIFFUSION_VAE.name: "present", **{p.name: "present" for p in LTX25_22B.parts.values()}}
    copy = tmp_path / "models"
    (copy / "diffusion_models").mkdir(parents=True)
    (copy / "vae").mkdir()
    distilled = LTX25_22B.checkpoints["distilled"].name
    (copy / "diffusion_models" / distilled).symlink_to(files.root / "diffusion_models" / distilled)
    conv = files.root / "vae" / LTX25_22B.parts["vae"].name
    for name, source in ((DIFFUSION_VAE.name, conv), *((p.name, files.root / "vae" / p.name)
                                                      for p in LTX25_22B.parts.values())):
        (copy / "vae" / name).symlink_to(source)  # the conv VAE under the diffusion VAE's name too
    found = {f.requirement.name: f for f in doctor.diagnose(doctor.required_models(workflow),
                                                           doctor.folders_under(copy))}
    assert found[HEAD.name].status == "missing" and HEAD.url in found[HEAD.name].fix
    assert found[DIFFUSION_VAE.name].status == "not_ltx2" and "without the diffusion decoder" in (
        found[DIFFUSION_VAE.name].message)
    plain = {**workflow, "2": {"class_type": "L2A_Sampler", "inputs": {"frames": 121}},
             "3": {"class_type": "L2A_DecodeVideo", "inputs": {"decoder": "conv"}}}
    assert {r.name for r in doctor.required_models(plain)} == {LTX25_22B.checkpoints["distilled"].name}


def test_the_enhancer_loader_finds_the_tiny_writers_folder_and_the_encoder_loader_leaves_it_out(files):
    from ltx2_anywhere.pipelines.prompt_expansion import ENHANCER_FOLDER, enhance_prompt

    _comfy.configure(models_dir=files.root)
    loader = L2A_PromptEnhancerLoader()
    assert ENHANCER_FOLDER in loader.INPUT_TYPES()["required"]["enhancer_name"][0]
    encoders = L2A_TextEncoderLoader.INPUT_TYPES()["required"]["text_encoder_name"][0]
    assert ENHANCER_FOLDER not in encoders and LTX25_22B.text_encoder.files[0].name in encoders  # not an encoder
    enhancer = loader.load(ENHANCER_FOLDER, "fp32", "cpu")[0]
    assert os.path.samefile(enhancer.source, files.prompt_enhancer)
    assert enhance_prompt(enhancer, PROMPT, max_new_tokens=4).prompt


# ---- memory options ----------------------------------------------------------------------------------------------


def test_2_5_under_group_offload_and_a_released_encoder_never_encoding_twice(files, model, encoder, tiny_models_23):
    """Group offload (CPU to CPU) gives the resident model's latents bit for bit; an fp8 encoder on the CPU,
    released after encoding, encodes a prompt once; 2.3's encoder never shares the 2.5 encoder's cache entries."""
    settings = SamplerSettings(width=96, height=64, num_frames=9, seed=2)
    conditioning = cond_mod.encode_text(encoder, "memory test on 2.5", "")
    base = sample(model, conditioning, settings)
    offloaded = with_policy(loading.load_model(files.checkpoint_distilled, dtype="fp32"),
                            MemoryPolicy(offload="group", blocks_per_group=1))
    got = sample(offloaded, conditioning, settings)
    assert torch.equal(got.video, base.video) and torch.equal(got.audio, base.audio)

    managed = cond_mod.text_encoder_options(loading.load_text_encoder(files.text_encoder, dtype="fp32"), "cpu",
                                            fp8=True, release_after_encode=True)
    calls = []
    managed.model.register_forward_hook(lambda *_: calls.append(1))
    first = cond_mod.encode_text(managed, "fp8 and released", "")
    again = cond_mod.encode_text(managed, "fp8 and released", "")
    assert len(calls) == 2 and torch.equal(first.prompt_embeds, again.prompt_embeds)
    older = loading.load_text_encoder(tiny_models_23.text_encoder, dtype="fp32")
    older_calls = []
    older.model.register_forward_hook(lambda *_: older_calls.append(1))
    cond_mod.encode_text(older, "fp8 and released", "")
    assert len(older_calls) == 2
