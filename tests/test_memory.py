"""Memory and speed options on the tiny model: offload modes, attention backends, regional compile, VAE tiling,
official pre-quantized fp8 checkpoints, the prompt-embedding cache and Gemma's residency.

Offload CPU to CPU must not change a single value, so those comparisons are exact. Modes that need an accelerator
(model and sequential offload, CUDA streams, releasing Gemma from the GPU) run where CUDA is available and are
skipped with the reason elsewhere; on a CPU-only machine the nodes refuse them with a message that says so.
"""

import dataclasses
import logging
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.memory import L2A_MemoryOptions, L2A_TextEncoderOptions
from ltx2_anywhere.pipelines import conditioning, lora, memory
from ltx2_anywhere.pipelines.decoding import Tiling, decode_audio, decode_video
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import Guidance
from ltx2_anywhere.pipelines.loading import inspect_checkpoint, load_model, load_text_encoder
from ltx2_anywhere.pipelines.memory import MemoryPolicy, with_policy
from ltx2_anywhere.pipelines.sampling import SamplerSettings, sample
from ltx2_anywhere.pipelines.weights import read_safetensors_header

SETTINGS = SamplerSettings(width=96, height=64, num_frames=17, steps=2, seed=1, guidance=Guidance.off())
GUIDED = SamplerSettings(width=96, height=64, num_frames=17, steps=2, seed=1)
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs CUDA: this offload mode only makes sense with an accelerator")
# Linear layers of the transformer blocks, as the official fp8 files quantize them (official key names).
BLOCK_LINEAR = re.compile(r"^model\.diffusion_model\.transformer_blocks\.\d+\..+\.weight$")
FP8_MAX = torch.finfo(torch.float8_e4m3fn).max
# Measured on the tiny random-weight model (2 steps, fp32), relative L2: fp8 transformer blocks 2.1 % (video latent)
# and 3.8 % (audio latent); Gemma in fp8 6.0 % (stacked hidden states). The bounds leave 1.5x headroom.
FP8_FILE_BOUND = 0.06
GEMMA_FP8_BOUND = 0.09


@pytest.fixture(scope="module")
def written(tiny_models):
    return tiny_models.written


@pytest.fixture(scope="module")
def cond(tiny_encoder):
    return conditioning.encode_text(tiny_encoder, "a robot dancing in the rain, music plays", "blurry, static")


@pytest.fixture(scope="module")
def base(written, cond):
    """Latents, frames and sound of the unmodified model: what every placement must reproduce."""
    model = load_model(written["checkpoint_dev"], dtype="fp32")
    latent = sample(model, cond, SETTINGS)
    return latent, decode_video(model, latent), decode_audio(model, latent)[0]


def fresh(written, **kwargs):
    """A model of its own: the options change the modules in place."""
    return load_model(written["checkpoint_dev"], dtype="fp32", **kwargs)


def rel(a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def assert_same_run(model, cond, base):
    latent = sample(model, cond, SETTINGS)
    assert torch.equal(latent.video, base[0].video) and torch.equal(latent.audio, base[0].audio)
    assert torch.equal(decode_video(model, latent), base[1])
    assert torch.equal(decode_audio(model, latent)[0], base[2])


def hook_names(module) -> set:
    return {name for sub in module.modules() if hasattr(sub, "_diffusers_hook") for name in sub._diffusers_hook.hooks}


# ---- offload -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blocks", [1, 2])
def test_group_offload_cpu_to_cpu_gives_identical_output(written, cond, base, blocks):
    model = with_policy(fresh(written), MemoryPolicy(offload="group", blocks_per_group=blocks))
    assert "group_offloading" in hook_names(model.transformer) and "group_offloading" in hook_names(model.vae)
    assert model.configs["memory"]["offload"] == "group" and model.configs["memory"]["blocks_per_group"] == blocks
    assert_same_run(model, cond, base)


def test_the_last_policy_applied_wins_and_a_carried_one_can_be_reapplied(written, cond, base):
    model = with_policy(fresh(written), MemoryPolicy(offload="group"))
    plain = with_policy(model, MemoryPolicy())
    assert hook_names(plain.transformer) == set() and hook_names(plain.vae) == set()
    assert_same_run(plain, cond, base)
    memory.apply_policy(model)  # the group-offloaded branch again
    assert "group_offloading" in hook_names(plain.transformer)
    memory.apply_policy(model)  # already applied: nothing changes
    assert_same_run(model, cond, base)


@pytest.mark.parametrize("fuse", [False, True])
def test_group_offload_keeps_loras_exact(tiny_models, written, cond, fuse):
    _comfy.configure(models_dir=tiny_models.root)
    camera = tiny_models.written["lora_dolly_in"]
    expected = sample(lora.add_lora(fresh(written), camera, fuse=fuse), cond, SETTINGS)
    offloaded = with_policy(fresh(written), MemoryPolicy(offload="group"))
    got = sample(lora.add_lora(offloaded, camera, fuse=fuse), cond, SETTINGS)
    assert torch.equal(got.video, expected.video) and torch.equal(got.audio, expected.audio)


def test_model_offload_hooks_move_one_component_at_a_time(written, cond, base, monkeypatch):
    """The hook mechanics of model offload, with the CPU standing in for the GPU (the mode itself needs one)."""
    model = fresh(written)
    modules = {name: getattr(model, name) for name in ("transformer", "connectors", "vae", "audio_vae", "vocoder")}
    names = {id(module): name for name, module in modules.items()}
    entered = []
    enter = memory._Residency.enter

    def recording(self, component):
        if self.current is not component:
            entered.append(names[id(component)])
        enter(self, component)

    monkeypatch.setattr(memory._Residency, "enter", recording)
    residency = memory._model_offload(modules, torch.device("cpu"))
    try:
        assert_same_run(model, cond, base)
    finally:
        residency.remove_hooks()
    assert entered == ["connectors", "transformer", "vae", "audio_vae", "vocoder"]
    assert residency.current is model.vocoder and residency.park() and residency.current is None
    assert not residency.park(), "nothing left on the device to park"


def test_a_placement_that_fails_halfway_is_redone_by_the_next_apply(written, cond, base, monkeypatch):
    """Running out of memory while moving weights leaves the modules following neither policy: applying the old
    policy again must place it again, not trust the record of what was there before."""
    model = with_policy(fresh(written), MemoryPolicy(offload="group"))

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(model.vae, "to", out_of_memory)
        with pytest.raises(torch.OutOfMemoryError):
            memory.apply_policy(model, MemoryPolicy())
    assert "group_offloading" not in hook_names(model.transformer), "the undo ran before the failed placement"
    memory.apply_policy(model)
    assert "group_offloading" in hook_names(model.transformer) and "group_offloading" in hook_names(model.vae)
    assert_same_run(model, cond, base)


@pytest.mark.parametrize("offload", ["model", "sequential"])
def test_accelerator_modes_are_refused_on_a_cpu_model(written, offload):
    with pytest.raises(L2AError, match=f"offload = '{offload}' needs a GPU.*offload 'none'"):
        L2A_MemoryOptions().apply(fresh(written), offload, 1, False, "native", False, "off")


def test_cuda_streams_are_refused_on_a_cpu_model(written):
    with pytest.raises(L2AError, match="group offload with CUDA streams needs a GPU"):
        L2A_MemoryOptions().apply(fresh(written), "group", 1, True, "native", False, "off")


def test_load_model_refuses_an_accelerator_mode_before_reading(written):
    with pytest.raises(L2AError, match="needs a GPU"):
        load_model(written["checkpoint_dev"], device="cpu", memory=MemoryPolicy(offload="model"))


def test_load_model_applies_a_policy(written, cond, base):
    model = load_model(written["checkpoint_dev"], dtype="fp32", memory=MemoryPolicy(offload="group"))
    assert memory.policy_of(model) == MemoryPolicy(offload="group")
    assert_same_run(model, cond, base)


@needs_cuda
@pytest.mark.parametrize("policy", [
    MemoryPolicy(offload="model"),
    MemoryPolicy(offload="sequential"),
    MemoryPolicy(offload="group", blocks_per_group=2, cuda_streams=True),
    MemoryPolicy(offload="sequential", cuda_streams=True),
], ids=["model", "sequential", "group-streams", "sequential-streams"])
def test_accelerator_offload_matches_the_resident_model(written, cond, policy):
    resident = load_model(written["checkpoint_dev"], dtype="fp32", device="cuda")
    expected = sample(resident, cond, SETTINGS)
    frames = decode_video(resident, expected)
    model = with_policy(load_model(written["checkpoint_dev"], dtype="fp32", device="cuda"), policy)
    assert next(model.transformer.parameters()).device.type == "cpu"  # waiting in system memory
    latent = sample(model, cond, SETTINGS)
    assert rel(latent.video, expected.video) < 1e-5 and rel(latent.audio, expected.audio) < 1e-5
    assert rel(decode_video(model, latent), frames) < 1e-5


@needs_cuda
def test_release_parks_what_model_offload_left_on_the_gpu(written, cond):
    model = with_policy(load_model(written["checkpoint_dev"], dtype="fp32", device="cuda"),
                        MemoryPolicy(offload="model"))
    memory.track(model)
    decode_video(model, sample(model, cond, SETTINGS))
    assert next(model.vae.parameters()).device.type == "cuda", "the component that ran last stays between runs"
    assert memory.release_all() >= 1
    for name in ("transformer", "connectors", "vae", "audio_vae", "vocoder"):
        assert all(p.device.type == "cpu" for p in getattr(model, name).parameters()), name


@needs_cuda
@pytest.mark.parametrize("offload", ["none", "sequential"])
def test_the_upsampler_follows_the_models_memory_policy(tiny_models, written, cond, offload):
    from ltx2_anywhere.pipelines.sampling import sample_multiscale
    from ltx2_anywhere.pipelines.upsampler import load_upsampler

    model = with_policy(load_model(written["checkpoint_dev"], dtype="fp32", device="cuda"),
                        MemoryPolicy(offload=offload))
    upsampler = load_upsampler(tiny_models.upsampler, dtype="fp32")
    settings = dataclasses.replace(SETTINGS, width=192, height=128)
    sample_multiscale(model, cond, settings, upsampler, model)
    assert next(upsampler.module.parameters()).device.type == ("cpu" if offload == "sequential" else "cuda")


# ---- attention, compile, VAE tiling ------------------------------------------------------------------------------


def test_attention_backends(written, cond, base):
    model = with_policy(fresh(written), MemoryPolicy(attention_backend="_native_math"))
    latent = sample(model, cond, SETTINGS)
    assert rel(latent.video, base[0].video) < 1e-5
    assert_same_run(with_policy(model, MemoryPolicy(attention_backend="native")), cond, base)


@pytest.mark.parametrize(("backend", "message"), [
    ("nope", r"'nope' is unknown: use one of native"),
    ("flash", r"'flash' cannot take the attention mask"),
    ("sage_varlen", r"'sage_varlen' cannot take the attention mask"),
    ("_native_efficient", r"'_native_efficient' needs a GPU"),
])
def test_unusable_attention_backends_are_refused(written, backend, message):
    with pytest.raises(L2AError, match=message):
        L2A_MemoryOptions().apply(fresh(written), "none", 1, False, backend, False, "off")


def test_compile_blocks_compiles_each_block_and_can_be_undone(written):
    """Compilation itself is lazy (the first run compiles), so this checks the wiring; the next test runs it."""
    model = with_policy(fresh(written), MemoryPolicy(compile_blocks=True))
    blocks = list(model.transformer.transformer_blocks)
    assert all(block._compiled_call_impl is not None for block in blocks)
    with_policy(model, MemoryPolicy())
    assert all(block._compiled_call_impl is None for block in blocks)


@pytest.mark.skipif(not CUDA, reason="too slow on the CPU: the first compiled run of the tiny model took 119 s "
                    "with a cold compiler cache (8.5 s warm) on 2 cores")
def test_compiled_blocks_match_eager(written, cond):
    eager = load_model(written["checkpoint_dev"], dtype="fp32", device="cuda")
    expected = sample(eager, cond, SETTINGS)
    compiled = with_policy(load_model(written["checkpoint_dev"], dtype="fp32", device="cuda"),
                           MemoryPolicy(compile_blocks=True))
    assert rel(sample(compiled, cond, SETTINGS).video, expected.video) < 1e-4


@pytest.mark.parametrize("mode", ["spatial", "temporal"])
def test_vae_tiling_policy_tiles_every_decode(written, base, mode):
    channels = base[0].video.shape[1]
    video = torch.randn(1, channels, 3, 4, 6, generator=torch.Generator().manual_seed(0))  # 192x128, 17 frames
    latent = dataclasses.replace(base[0], video=video, width=192, height=128)
    sizes = dict(tile_size=64, tile_overlap=32, tile_frames=16, frame_overlap=8)
    spatial, temporal = mode in ("spatial", "both"), mode in ("temporal", "both")
    plain = fresh(written)
    whole = decode_video(plain, latent, Tiling(**sizes))
    expected = decode_video(plain, latent, Tiling(spatial=spatial, temporal=temporal, **sizes))
    assert not torch.equal(expected, whole)  # tiling does change the pixels at this size
    tiled = with_policy(fresh(written), MemoryPolicy(vae_tiling=mode))
    assert torch.equal(decode_video(tiled, latent, Tiling(**sizes)), expected)
    untiled = with_policy(tiled, MemoryPolicy())
    assert torch.equal(decode_video(untiled, latent, Tiling(**sizes)), whole)


def test_options_node_returns_a_copy_that_carries_the_policy(written):
    model = fresh(written)
    (out,) = L2A_MemoryOptions().apply(model, "group", 2, False, "native", False, "spatial")
    assert "memory" not in model.configs and out.transformer is model.transformer
    assert memory.policy_of(out) == MemoryPolicy(offload="group", blocks_per_group=2, vae_tiling="spatial")
    assert memory.policy_of(dataclasses.replace(out, loras=[])) == memory.policy_of(out)  # LoRA nodes keep it
    with pytest.raises(L2AError, match="offload_blocks_per_group = 3 is out of range: use 1 to 2"):
        L2A_MemoryOptions().apply(model, "group", 3, False, "native", False, "off")  # the tiny model has 2 blocks


# ---- official pre-quantized fp8 files ----------------------------------------------------------------------------


def write_fp8_checkpoint(source: Path, target: Path, scale_of=None) -> dict:
    """The tiny checkpoint in the official `*-fp8.safetensors` layout: each transformer-block Linear weight as
    float8_e4m3fn with a per-tensor float32 `weight_scale` and an `input_scale`; returns the tensors written."""
    _, metadata = read_safetensors_header(source)
    tensors = {}
    with safe_open(str(source), framework="pt") as f:
        for key in f.keys():
            tensor = f.get_tensor(key)
            if BLOCK_LINEAR.match(key) and tensor.ndim == 2:
                layer = key.removesuffix(".weight")
                scale = (tensor.abs().amax() / FP8_MAX).to(torch.float32) if scale_of is None else scale_of(tensor)
                tensors[key] = (tensor.float() / scale).to(torch.float8_e4m3fn)
                tensors[layer + ".weight_scale"] = scale.reshape(())
                tensors[layer + ".input_scale"] = torch.tensor(1.0)
            else:
                tensors[key] = tensor
    save_file(tensors, str(target), metadata=metadata)
    return tensors


@pytest.fixture(scope="module")
def fp8_file(written, tmp_path_factory):
    path = tmp_path_factory.mktemp("fp8") / "ltx-2-19b-dev-fp8.safetensors"
    return path, write_fp8_checkpoint(written["checkpoint_dev"], path)


def test_prequantized_fp8_is_dequantized_with_its_scales(written, fp8_file, cond, base, caplog):
    path, tensors = fp8_file
    assert inspect_checkpoint(path).fp8
    with caplog.at_level(logging.INFO, logger="ltx2_anywhere.pipelines.loading"):
        model = load_model(path, dtype="fp32")
    assert "ignored 56 fp8 input scales" in caplog.text
    state = model.transformer.state_dict()
    original = fresh(written).transformer.state_dict()
    quantized = 0
    for key, value in state.items():
        official = "model.diffusion_model." + key
        if official in tensors and tensors[official].dtype == torch.float8_e4m3fn:
            scale = tensors[official.removesuffix(".weight") + ".weight_scale"]
            assert torch.equal(value, tensors[official].float() * scale), key
            quantized += 1
        else:
            assert torch.equal(value, original[key]), key
    assert quantized == 56
    latent = sample(model, cond, SETTINGS)
    assert rel(latent.video, base[0].video) < FP8_FILE_BOUND and rel(latent.audio, base[0].audio) < FP8_FILE_BOUND


def test_prequantized_fp8_can_stay_fp8(fp8_file, cond):
    path, tensors = fp8_file
    dequantized = sample(load_model(path, dtype="fp32"), cond, SETTINGS)
    model = load_model(path, dtype="fp32", fp8=True)
    weight = model.transformer.transformer_blocks[0].attn1.to_q.weight
    assert weight.dtype == torch.float8_e4m3fn
    assert torch.equal(weight.view(torch.uint8),
                       tensors["model.diffusion_model.transformer_blocks.0.attn1.to_q.weight"].view(torch.uint8))
    latent = sample(model, cond, SETTINGS)  # same values, rescaled per call: identical in fp32
    assert torch.equal(latent.video, dequantized.video) and torch.equal(latent.audio, dequantized.audio)
    offloaded = with_policy(load_model(path, dtype="fp32", fp8=True), MemoryPolicy(offload="group"))
    assert torch.equal(sample(offloaded, cond, SETTINGS).video, latent.video)


def test_prequantized_fp8_takes_a_lora_unfused(tiny_models, fp8_file, cond):
    model = load_model(fp8_file[0], dtype="fp32", fp8=True)
    plain = sample(model, cond, SETTINGS)
    with_lora = sample(lora.add_lora(model, tiny_models.written["lora_dolly_in"]), cond, SETTINGS)
    assert not torch.equal(with_lora.video, plain.video)
    assert torch.equal(sample(model, cond, SETTINGS).video, plain.video)


def test_fp8_option_quantizes_a_bf16_file_with_scales_while_reading(written, fp8_file, cond, base):
    model = fresh(written, fp8=True)
    original = fresh(written).transformer.state_dict()
    weight = model.transformer.transformer_blocks[0].ff.net[2].weight
    quantized, scale = memory.quantize_fp8(original["transformer_blocks.0.ff.net.2.weight"])
    assert weight.dtype == torch.float8_e4m3fn and torch.equal(weight.view(torch.uint8), quantized.view(torch.uint8))
    assert model.transformer.transformer_blocks[0].ff.net[2]._diffusers_hook.get_hook("l2a_scaled_fp8").scale == scale
    assert model.transformer.proj_in.weight.dtype == torch.float32  # outside the blocks: not quantized
    latent = sample(model, cond, SETTINGS)  # the same quantization as the fp8 file: the same result
    assert torch.equal(latent.video, sample(load_model(fp8_file[0], dtype="fp32", fp8=True), cond, SETTINGS).video)
    assert rel(latent.video, base[0].video) < FP8_FILE_BOUND


@pytest.mark.parametrize(("change", "message"), [
    ("nan", r"invalid fp8 scale .*to_q\.weight_scale"),
    ("orphan", r"fp8 scale .*weight_scale without its weight"),
])
def test_damaged_fp8_files_are_refused(written, tmp_path, change, message):
    path = tmp_path / "ltx-2-19b-dev-fp8.safetensors"
    tensors = write_fp8_checkpoint(written["checkpoint_dev"], path)
    _, metadata = read_safetensors_header(path)
    layer = "model.diffusion_model.transformer_blocks.0.attn1.to_q"
    if change == "nan":
        tensors[layer + ".weight_scale"] = torch.tensor(float("nan"))
    else:
        tensors["model.diffusion_model.transformer_blocks.0.attn1.extra.weight_scale"] = torch.tensor(1.0)
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(L2AError, match=message):
        load_model(path, dtype="fp32")


# ---- text encoder: embedding cache, fp8, residency ---------------------------------------------------------------


def count_gemma_calls(encoder) -> list:
    calls = []
    encoder.model.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_repeated_prompts_skip_gemma(written):
    encoder = load_text_encoder(written["text_encoder"], dtype="fp32")
    calls = count_gemma_calls(encoder)
    first = conditioning.encode_text(encoder, "a cat plays piano, cache test one", "cache test negative")
    assert len(calls) == 2
    again = conditioning.encode_text(encoder, "a cat plays piano, cache test one", "cache test negative")
    assert len(calls) == 2  # Gemma did not run
    assert torch.equal(again.prompt_embeds, first.prompt_embeds) and torch.equal(again.negative_mask, first.negative_mask)
    conditioning.encode_text(encoder, "a dog sings, cache test two", "cache test negative")
    assert len(calls) == 3  # only the new prompt; the negative is shared
    reloaded = load_text_encoder(written["text_encoder"], dtype="fp32")  # e.g. ComfyUI ran the loader again
    reload_calls = count_gemma_calls(reloaded)
    conditioning.encode_text(reloaded, "a cat plays piano, cache test one", "cache test negative")
    assert reload_calls == []


def test_the_cache_is_keyed_by_encoder_and_bounded(written, monkeypatch):
    fp32 = load_text_encoder(written["text_encoder"], dtype="fp32")
    bf16 = load_text_encoder(written["text_encoder"], dtype="bf16")
    conditioning.encode_text(fp32, "keyed by dtype", "keyed negative")
    calls = count_gemma_calls(bf16)
    assert conditioning.encode_text(bf16, "keyed by dtype", "keyed negative").prompt_embeds.dtype == torch.bfloat16
    assert len(calls) == 2
    one_entry = conditioning._entry_bytes(conditioning._cache[next(reversed(conditioning._cache))])
    monkeypatch.setattr(conditioning, "EMBEDDING_CACHE_BYTES", one_entry)
    conditioning.encode_text(fp32, "evicts the others", "keyed negative")
    assert len(conditioning._cache) == 1


def test_gemma_in_fp8(written):
    encoder = load_text_encoder(written["text_encoder"], dtype="fp32")
    expected = conditioning._gemma_hidden_states(encoder, "a cat plays piano")[0]
    (managed,) = L2A_TextEncoderOptions().apply(encoder, "default", True, True)
    gemma = managed.model.model.language_model
    assert gemma.layers[0].self_attn.q_proj.weight.dtype == torch.float8_e4m3fn
    assert gemma.embed_tokens.weight.dtype == torch.float32 and gemma.norm.weight.dtype == torch.float32
    got = conditioning._gemma_hidden_states(managed, "a cat plays piano")[0]
    assert rel(got, expected) < GEMMA_FP8_BOUND
    calls = count_gemma_calls(managed)
    conditioning.encode_text(managed, "fp8 is another identity", "fp8 negative")
    conditioning.encode_text(encoder, "fp8 is another identity", "fp8 negative")  # same (now fp8) Gemma
    assert len(calls) == 2
    with pytest.raises(L2AError, match="already stores its weights in fp8.*load the text encoder again"):
        L2A_TextEncoderOptions().apply(encoder, "default", False, True)


def test_text_encoder_options_node(written):
    encoder = load_text_encoder(written["text_encoder"], dtype="fp32")
    (managed,) = L2A_TextEncoderOptions().apply(encoder, "cpu", False, True)
    assert isinstance(managed, conditioning.ManagedTextEncoder) and managed.release_after_encode
    assert managed.device == torch.device("cpu") and managed.source == encoder.source
    result = conditioning.encode_text(managed, "released after encoding", "on the cpu")
    assert result.prompt_embeds.device.type == "cpu"
    assert managed.model not in conditioning._comebacks  # nothing to release from the CPU
    with pytest.raises(L2AError, match="text encoder device = 'gpu7' is unknown"):
        conditioning.text_encoder_options(encoder, "gpu7")


@pytest.mark.skipif(not CUDA, reason="needs CUDA: releasing Gemma means moving it off an accelerator")
def test_release_moves_gemma_off_the_gpu_and_back_on_demand(written):
    encoder = load_text_encoder(written["text_encoder"], dtype="fp32", device="cuda")
    (managed,) = L2A_TextEncoderOptions().apply(encoder, "default", False, True)
    conditioning.encode_text(managed, "release test", "release negative")
    assert next(managed.model.parameters()).device.type == "cpu"
    conditioning.encode_text(managed, "release test, a new prompt", "release negative")  # Gemma comes back to run
    assert next(managed.model.parameters()).device.type == "cpu"
    ids = managed.tokenizer(["any caller"], return_tensors="pt").input_ids.to("cuda")
    with torch.no_grad():
        managed.model(input_ids=ids)  # e.g. prompt expansion: the return hook brings Gemma back first
    assert next(managed.model.parameters()).device.type == "cuda"
