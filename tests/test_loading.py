"""Checkpoint loading: official layout <-> diffusers, detection, refusal messages, dtype/fp8 policy, Gemma."""

import json
import re
import shutil

import pytest
import torch
from safetensors.torch import save_file

from ltx2_anywhere.pipelines import convert, loading, tiny
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import LTX2_19B, LTX23_22B, TINY_FAMILIES
from ltx2_anywhere.pipelines.weights import read_safetensors_header

COMPONENTS = convert.COMPONENTS


@pytest.fixture(scope="module")
def models_dir(tiny_models):
    return tiny_models.written


@pytest.fixture(scope="module")
def components():
    return tiny.build_components(tiny.tiny_config())


@pytest.fixture(scope="module")
def diffusers_folder(tmp_path_factory, components):
    path = tmp_path_factory.mktemp("diffusers") / "ltx-2-tiny"
    return loading.save_diffusers_folder(path, components, tiny.tiny_config()["scheduler"])


def _states(modules):
    return {name: modules[name].state_dict() for name in COMPONENTS}


def _assert_same_state(a, b, name):
    assert set(a) == set(b), f"{name}: {sorted(set(a) ^ set(b))[:5]}"
    for key in a:
        assert a[key].dtype == b[key].dtype, f"{name}.{key}"
        assert torch.equal(a[key], b[key]), f"{name}.{key}"


def _meta_modules(config):
    classes = loading.component_classes(config.get("vocoder_class", "LTX2Vocoder"))
    with torch.device("meta"):
        return {name: cls(**config[name]) for name, cls in classes.items()}


def _write(path, keys, metadata=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: torch.zeros(2) for k in keys}, str(path), metadata=metadata)
    return path


# A header with one tensor per component of the official LTX-2 layout (enough for detection, not for loading).
LTX2_KEYS = [
    "model.diffusion_model.patchify_proj.weight",
    "model.diffusion_model.audio_patchify_proj.weight",
    "model.diffusion_model.video_embeddings_connector.learnable_registers",
    "text_embedding_projection.aggregate_embed.weight",
    "vae.per_channel_statistics.mean-of-means",
    "audio_vae.per_channel_statistics.mean-of-means",
    "vocoder.conv_pre.weight",
]
# The same with LTX-2.3's per-modality text projection.
LTX23_KEYS = [k.replace("aggregate_embed", "video_aggregate_embed") for k in LTX2_KEYS]


# ---- key conversion ----------------------------------------------------------------------------------------------


def test_round_trip_is_exact_for_every_component(components):
    states = _states(components)
    official = convert.diffusers_to_official(states)
    stats = {k for k in official if k.startswith("vae.per_channel_statistics.")}
    assert stats == {
        f"vae.per_channel_statistics.{s}"
        for s in ("mean-of-means", "std-of-means", "mean-of-stds", "mean-of-stds_over_std-of-means", "channel")
    }
    assert {k.split(".")[0] for k in official} == {"model", "text_embedding_projection", "vae", "audio_vae", "vocoder"}
    back = convert.official_to_diffusers(official)
    assert set(back) == set(COMPONENTS)
    for name in COMPONENTS:
        _assert_same_state(back[name], states[name], name)


def test_official_layout_agrees_with_diffusers_converters(components):
    from diffusers.loaders.single_file_utils import (
        convert_ltx2_audio_vae_to_diffusers,
        convert_ltx2_transformer_to_diffusers,
        convert_ltx2_vae_to_diffusers,
    )

    states = _states(components)
    official = convert.diffusers_to_official(states)
    pick = {
        "transformer": ("model.diffusion_model.", convert_ltx2_transformer_to_diffusers),
        "vae": ("vae.", convert_ltx2_vae_to_diffusers),
        "audio_vae": ("audio_vae.", convert_ltx2_audio_vae_to_diffusers),
    }
    for name, (prefix, fn) in pick.items():
        converted = fn({k: v for k, v in official.items() if k.startswith(prefix)})
        _assert_same_state(converted, states[name], name)


def test_ltx23_keys_round_trip_with_official_names():
    modules = _meta_modules(LTX23_22B.config())
    keys = {name: dict.fromkeys(m.state_dict()) for name, m in modules.items()}
    official = {}
    for name in COMPONENTS:
        official.update({v: name for v in convert.diffusers_key_map(name, keys[name]).values()})
    for expected in [
        "model.diffusion_model.prompt_adaln_single.linear.weight",
        "model.diffusion_model.audio_prompt_adaln_single.linear.weight",
        "model.diffusion_model.adaln_single.linear.weight",
        "model.diffusion_model.transformer_blocks.0.attn1.q_norm.weight",
        "model.diffusion_model.video_embeddings_connector.transformer_1d_blocks.7.attn1.k_norm.weight",
        "text_embedding_projection.video_aggregate_embed.weight",
        "text_embedding_projection.audio_aggregate_embed.bias",
        "vae.decoder.up_blocks.8.res_blocks.0.conv1.conv.weight",
        "vae.decoder.up_blocks.7.conv.conv.weight",
        "vocoder.vocoder.ups.0.weight",
        "vocoder.vocoder.conv_pre.weight",
        "vocoder.vocoder.act_post.act.alpha",
        "vocoder.vocoder.resblocks.0.acts1.0.downsample.lowpass.filter",
        "vocoder.bwe_generator.resblocks.2.convs2.2.weight",
        "vocoder.mel_stft.stft_fn.forward_basis",
    ]:
        assert expected in official, expected
    for key, name in official.items():
        assert convert.component_of(key) == name, key
    back = convert.official_key_map(official)
    for name in COMPONENTS:
        assert {t[1] for t in back.values() if t and t[0] == name} == set(keys[name]), name


@pytest.mark.parametrize(
    "file_name, family, transformer_params, vocoder",
    [
        ("ltx2-19b.json", LTX2_19B, 18_876_174_592, "LTX2Vocoder"),
        ("ltx2.3-22b.json", LTX23_22B, 18_988_838_144, "LTX2VocoderWithBWE"),
    ],
)
def test_family_configs_build_real_classes_on_meta(file_name, family, transformer_params, vocoder):
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    config = family.config()
    assert family.config_file == file_name
    assert set(config) >= {
        "transformer",
        "vae",
        "audio_vae",
        "vocoder",
        "connectors",
        "scheduler",
        "latent_upsampler",
        "vocoder_class",
    }
    assert config["vocoder_class"] == vocoder
    modules = _meta_modules(config)
    with torch.device("meta"):
        modules["latent_upsampler"] = LTX2LatentUpsamplerModel(**config["latent_upsampler"])
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items()}
    print(file_name, {k: f"{v:,}" for k, v in counts.items()})
    assert counts["transformer"] == transformer_params
    assert type(modules["vocoder"]).__name__ == vocoder


# ---- loading -----------------------------------------------------------------------------------------------------


def test_file_and_folder_load_identical_parameters(models_dir, diffusers_folder, components):
    from_file = loading.load_model(models_dir["checkpoint_dev"], dtype="fp32")
    from_folder = loading.load_model(diffusers_folder, dtype="fp32")
    for name in COMPONENTS:
        a, b = getattr(from_file, name), getattr(from_folder, name)
        _assert_same_state(a.state_dict(), b.state_dict(), name)
        _assert_same_state(a.state_dict(), components[name].state_dict(), name)
        assert dict(a.named_buffers()).keys() == dict(b.named_buffers()).keys()
        assert not any(t.is_meta for t in [*a.parameters(), *a.buffers()])
    assert from_folder.family == from_file.family and from_folder.family.label.startswith("LTX-2 tiny")
    assert from_folder.variant == "dev"
    assert from_file.scheduler_config.items() <= from_folder.scheduler_config.items()  # the folder adds defaults
    assert json.loads((diffusers_folder / "model_index.json").read_text())["vocoder"] == ["ltx2", "LTX2Vocoder"]


def test_dtype_policy_and_model_fields(models_dir):
    model = loading.load_model(models_dir["checkpoint_distilled"], dtype="bf16")
    assert model.transformer.dtype == torch.bfloat16
    assert model.connectors.dtype == torch.bfloat16 and model.vae.dtype == torch.bfloat16
    assert model.audio_vae.dtype == torch.float32 and model.vocoder.dtype == torch.float32
    assert model.dtype == torch.bfloat16 and model.device == torch.device("cpu")
    assert model.variant == "distilled" and model.family.steps == 8
    assert model.scheduler_config["use_dynamic_shifting"] is False and model.scheduler_config["shift_terminal"] is None
    assert model.configs == tiny.tiny_config() and model.source.endswith("ltx-2-19b-distilled.safetensors")
    assert not model.transformer.training


def test_fp8_storage_runs_a_forward(models_dir):
    model = loading.load_model(models_dir["checkpoint_dev"], dtype="bf16", fp8=True)
    block = model.transformer.transformer_blocks[0]
    assert block.attn1.to_q.weight.dtype == torch.float8_e4m3fn
    assert block.ff.net[2].weight.dtype == torch.float8_e4m3fn
    g = torch.Generator().manual_seed(0)
    inputs = dict(
        hidden_states=torch.randn(1, 12, 8, generator=g),
        audio_hidden_states=torch.randn(1, 5, 8, generator=g),
        encoder_hidden_states=torch.randn(1, 8, 32, generator=g),
        audio_encoder_hidden_states=torch.randn(1, 8, 32, generator=g),
        timestep=torch.full((1,), 500.0),
    )
    inputs = {k: v.to(torch.bfloat16) for k, v in inputs.items()}
    with torch.no_grad():
        video, audio = model.transformer(
            **inputs, num_frames=2, height=2, width=3, audio_num_frames=5, return_dict=False
        )
    assert video.shape == (1, 12, 8) and audio.shape == (1, 5, 8)
    assert torch.isfinite(video.float()).all() and torch.isfinite(audio.float()).all()


def test_unknown_dtype_lists_choices(models_dir):
    with pytest.raises(L2AError, match=r"'float8'.*bf16, fp16, fp32"):
        loading.load_model(models_dir["checkpoint_dev"], dtype="float8")


def test_save_checkpoint_is_atomic_and_keeps_metadata(tmp_path, components):
    path = loading.save_checkpoint(tmp_path / "out.safetensors", components, {"model_version": "2.0.0", "x": "1"})
    assert [p.name for p in tmp_path.iterdir()] == ["out.safetensors"]
    header, metadata = read_safetensors_header(path)
    assert metadata["model_version"] == "2.0.0" and metadata["x"] == "1"
    assert "vae.per_channel_statistics.channel" in header


# ---- detection ---------------------------------------------------------------------------------------------------


def test_inspect_tiny_checkpoints(models_dir):
    dev = loading.inspect_checkpoint(models_dir["checkpoint_dev"])
    distilled = loading.inspect_checkpoint(models_dir["checkpoint_distilled"])
    assert (dev.variant, distilled.variant) == ("dev", "distilled")
    assert dev.tiny and not dev.fp8 and dev.config == tiny.tiny_config()
    assert dev.family == TINY_FAMILIES["2.0"] and dev.family.name == "2.0"


def test_a_tiny_23_checkpoint_and_folder_are_its_family(tiny_models_23, tmp_path):
    """A tiny file says it is tiny in its metadata and is of its generation by its tensors, as a real one."""
    info = loading.inspect_checkpoint(tiny_models_23.checkpoint_distilled)
    assert (info.family, info.variant, info.tiny) == (TINY_FAMILIES["2.3"], "distilled", True)
    assert info.config == tiny.tiny_config("2.3") and info.family.use_cross_timestep
    header, metadata = read_safetensors_header(tiny_models_23.checkpoint_dev)
    assert "model.diffusion_model.prompt_adaln_single.linear.weight" in header
    components = tiny.build_components(tiny.tiny_config("2.3"))
    folder = loading.save_diffusers_folder(tmp_path / "tiny-2.3", components, info.config["scheduler"])
    from_folder = loading.inspect_checkpoint(folder)
    assert (from_folder.family, from_folder.tiny) == (TINY_FAMILIES["2.3"], True)
    assert from_folder.config["vocoder_class"] == "LTX2VocoderWithBWE"


@pytest.mark.parametrize(
    "name, extra_keys, metadata, family, variant",
    [
        ("ltx-2-19b-dev.safetensors", [], None, LTX2_19B, "dev"),
        ("ltx-2-19b-distilled.safetensors", [], None, LTX2_19B, "distilled"),
        ("my-model.safetensors", None, {"model_version": "2.3.0"}, LTX23_22B, "dev"),
        ("my-model.safetensors", None, {"model_version": "2.3.0-distilled"}, LTX23_22B, "distilled"),
        (
            "ltx-2.3-22b-dev.safetensors",
            ["model.diffusion_model.prompt_adaln_single.linear.weight"],
            None,
            LTX23_22B,
            "dev",
        ),
    ],
)
def test_inspect_official_headers(tmp_path, name, extra_keys, metadata, family, variant):
    keys = LTX23_KEYS if extra_keys is None else LTX2_KEYS + extra_keys
    info = loading.inspect_checkpoint(_write(tmp_path / name, keys, metadata))
    assert (info.family, info.variant, info.tiny, info.fp8) == (family, variant, False, False)
    assert info.config == family.config()


@pytest.mark.parametrize(
    "family, folder_name, variant",
    [(LTX2_19B, "LTX-2", "dev"), (LTX23_22B, "LTX-2.3", "dev"), (LTX2_19B, "LTX-2-19b-distilled", "distilled")],
)
def test_inspect_diffusers_folder_configs(tmp_path, family, folder_name, variant):
    config = family.config()
    classes = loading.component_classes(config["vocoder_class"])
    folder = tmp_path / folder_name
    for name in COMPONENTS:
        (folder / name).mkdir(parents=True)
        (folder / name / "config.json").write_text(json.dumps({"_class_name": classes[name].__name__, **config[name]}))
    (folder / "scheduler").mkdir()
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(config["scheduler"]))
    (folder / "model_index.json").write_text("{}")
    info = loading.inspect_checkpoint(folder)
    assert (info.family, info.variant, info.tiny, info.fp8) == (family, variant, False, False)
    assert info.config["vocoder_class"] == config["vocoder_class"]
    assert info.config["transformer"] == config["transformer"]


def test_official_layout_mismatch_is_reported(tmp_path):
    path = _write(tmp_path / "ltx-2-19b-dev.safetensors", LTX2_KEYS)
    with pytest.raises(L2AError, match=r"ltx-2-19b-dev\.safetensors.*do not match the LTX-2 19B layout"):
        loading.load_model(path)


def test_prequantized_fp8_is_detected(tmp_path):
    """Official *-fp8 files carry weight scales (loading them is tested in tests/test_memory.py)."""
    path = _write(
        tmp_path / "ltx-2-19b-dev-fp8.safetensors",
        LTX2_KEYS + ["model.diffusion_model.transformer_blocks.0.attn1.to_q.weight_scale"],
    )
    assert loading.inspect_checkpoint(path).fp8


# ---- refusals ----------------------------------------------------------------------------------------------------


def test_pickle_checkpoint_is_refused(tmp_path):
    path = tmp_path / "ltx-2-19b-dev.ckpt"
    path.write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(L2AError, match=r"ltx-2-19b-dev\.ckpt.*only safetensors are loaded"):
        loading.inspect_checkpoint(path)


def test_truncated_header_is_refused(tmp_path, models_dir):
    path = tmp_path / "ltx-2-19b-dev.safetensors"
    path.write_bytes(models_dir["checkpoint_dev"].read_bytes()[:200])
    with pytest.raises(L2AError, match=r"ltx-2-19b-dev\.safetensors' is truncated: its safetensors header"):
        loading.inspect_checkpoint(path)


def test_truncated_data_is_refused(tmp_path, models_dir):
    path = tmp_path / "ltx-2-19b-dev.safetensors"
    data = models_dir["checkpoint_dev"].read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(L2AError, match=r"truncated: the header describes \d+ bytes.*download it again"):
        loading.inspect_checkpoint(path)
    with pytest.raises(L2AError, match="truncated"):
        loading.load_model(path)


def test_corrupt_header_is_refused(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes((20).to_bytes(8, "little") + b"{not json at all....")
    with pytest.raises(L2AError, match=r"broken\.safetensors' does not have a valid safetensors header"):
        loading.inspect_checkpoint(path)


def test_ltx_video_09_is_refused(tmp_path):
    path = _write(
        tmp_path / "ltxv-13b-0.9.7-dev.safetensors",
        [
            "model.diffusion_model.patchify_proj.weight",
            "model.diffusion_model.adaln_single.linear.weight",
            "vae.decoder.conv_in.conv.weight",
        ],
    )
    with pytest.raises(L2AError, match=r"ltxv-13b-0\.9\.7-dev\.safetensors' is an LTX-Video 0\.9.*ltx-2-19b-dev"):
        loading.inspect_checkpoint(path)


def test_sdxl_is_refused(tmp_path):
    path = _write(
        tmp_path / "sd_xl_base_1.0.safetensors",
        ["model.diffusion_model.input_blocks.0.0.weight", "conditioner.embedders.0.transformer.x.weight"],
    )
    with pytest.raises(L2AError, match=r"sd_xl_base_1\.0\.safetensors' is a Stable Diffusion / SDXL"):
        loading.inspect_checkpoint(path)


def test_lora_is_refused(tmp_path):
    path = _write(
        tmp_path / "camera-dolly-in.safetensors", ["diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight"]
    )
    with pytest.raises(L2AError, match=r"camera-dolly-in\.safetensors' is a LoRA"):
        loading.inspect_checkpoint(path)


def test_unknown_file_is_refused(tmp_path):
    path = _write(tmp_path / "mystery.safetensors", ["encoder.layer.0.weight"])
    with pytest.raises(L2AError, match=r"mystery\.safetensors' is not an LTX-2 checkpoint.*ltx-2-19b-dev"):
        loading.inspect_checkpoint(path)


def test_transformer_only_file_is_refused(tmp_path):
    path = _write(tmp_path / "ltx-2-19b-transformer.safetensors", LTX2_KEYS[:3])
    with pytest.raises(L2AError, match=r"without the .*vae.*all-in-one"):
        loading.inspect_checkpoint(path)


def test_missing_path_and_bad_folders(tmp_path, diffusers_folder):
    with pytest.raises(L2AError, match=r"nothing-here\.safetensors' does not exist"):
        loading.load_model(tmp_path / "nothing-here.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(L2AError, match="without model_index.json"):
        loading.load_model(tmp_path / "empty")
    partial = tmp_path / "partial"
    shutil.copytree(diffusers_folder, partial)
    shutil.rmtree(partial / "vocoder")
    with pytest.raises(L2AError, match="lacks the subfolder.*vocoder"):
        loading.load_model(partial)


# ---- Gemma -------------------------------------------------------------------------------------------------------


def test_load_tiny_text_encoder(models_dir):
    encoder = loading.load_text_encoder(models_dir["text_encoder"], dtype="fp32")
    assert type(encoder.model).__name__ == "Gemma3ForConditionalGeneration"
    assert encoder.max_sequence_length == 64 and encoder.tokenizer.padding_side == "left"
    assert encoder.tokenizer.pad_token is not None and encoder.dtype == torch.float32


def test_gemma_folder_validation(tmp_path):
    llama = tmp_path / "Llama-3-8B"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(L2AError, match=r"Llama-3-8B' holds a 'llama' model, not Gemma 3.*gemma-3-12b-it-qat-q4_0"):
        loading.load_text_encoder(llama)
    with pytest.raises(L2AError, match=r"no-gemma' does not exist"):
        loading.load_text_encoder(tmp_path / "no-gemma")
    empty = tmp_path / "gemma-empty"
    empty.mkdir()
    with pytest.raises(L2AError, match="has no config.json"):
        loading.load_text_encoder(empty)


@pytest.mark.parametrize(("version", "words"), [
    ("2.6.0", "a generation newer than this version of LTX-2 Anywhere knows: update the pack"),
    ("3.0", "a generation newer than this version of LTX-2 Anywhere knows: update the pack"),
    ("2.4-rc2", "not a released generation (a pre-release build?): use the released files"),  # ltx-pipelines' 2.4 = pre-release 2.5 builds
])
def test_unknown_model_versions_are_refused_from_the_header(tmp_path, version, words):
    path = _write(tmp_path / "model.safetensors", LTX23_KEYS, {"model_version": version})
    with pytest.raises(L2AError, match=rf"'model.safetensors' says model_version '{version}', {re.escape(words)}\. "
                                       r"This version runs LTX-2 19B \(2.0\), LTX-2.3 22B \(2.3\), LTX-2.5 22B"):
        loading.inspect_checkpoint(path)


def test_a_version_that_contradicts_the_tensors_is_refused(tmp_path):
    keys = [*LTX23_KEYS, "model.diffusion_model.keyframes_abs_pos_embedding"]
    path = _write(tmp_path / "model.safetensors", keys, {"model_version": "2.3.0"})
    with pytest.raises(L2AError, match="says model_version '2.3.0' .LTX-2.3 22B. but its tensors are LTX-2.5 22B's"):
        loading.inspect_checkpoint(path)


def test_reread_weights_give_back_what_was_loaded_until_the_file_changes(tmp_path, models_dir):
    path = tmp_path / "ltx-2-19b-dev.safetensors"
    shutil.copyfile(models_dir["checkpoint_dev"], path)
    model = loading.load_model(path, dtype="bf16")
    state = model.transformer.state_dict()
    wanted = {"transformer": ["transformer_blocks.0.attn1.to_q.weight", "proj_in.bias"],
              "connectors": ["text_proj_in.weight"]}
    again = {(c, k): t for c, k, t in loading.reread_weights(model, wanted)}
    assert set(again) == {(c, k) for c, keys in wanted.items() for k in keys}
    assert all(torch.equal(again["transformer", k], state[k]) for k in wanted["transformer"])
    assert torch.equal(again["connectors", "text_proj_in.weight"], model.connectors.text_proj_in.weight)
    assert loading.reread_problem(model) is None
    path.write_bytes(path.read_bytes())  # rewritten: another modification time
    assert "changed on disk since the model was loaded" in loading.reread_problem(model)
    with pytest.raises(L2AError, match="cannot be read again: 'ltx-2-19b-dev.safetensors' changed on disk"):
        loading.reread_weights(model, wanted)
