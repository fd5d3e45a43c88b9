"""ComfyUI's single-file Gemma 3 12B: header detection, the real 12B layout, loading, equality with the folder path,
fp8 variants, refusals with their messages, and the text-encoder loader node listing and loading the file."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.loaders import L2A_TextEncoderLoader
from ltx2_anywhere.pipelines import gemma_single_file as gsf
from ltx2_anywhere.pipelines import loading, tiny
from ltx2_anywhere.pipelines.conditioning import encode_text
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.families import LTX2_19B
from ltx2_anywhere.pipelines.weights import read_safetensors_header

SINGLE = gsf.COMFY_FILE
TEXT_ENCODER_NAME = LTX2_19B.text_encoder.folder.name
DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1, "I8": 1, "F8_E4M3": 1}


@pytest.fixture(scope="module")
def root():
    return tiny.ensure_cached()


@pytest.fixture(scope="module")
def single(root):
    return root / "text_encoders" / SINGLE


@pytest.fixture(scope="module")
def sp_folder(tmp_path_factory):
    """The tiny Gemma folder (same weights) with a tokenizer converted from the single file's SentencePiece model."""
    folder = tmp_path_factory.mktemp("te") / "gemma-3-tiny-sp"
    model, _ = tiny.build_text_encoder(tiny.tiny_config(), tiny.tiny_family().max_sequence_length)
    tokenizer = gsf.tokenizer_from_spiece(tiny.build_spiece_model(tiny.tiny_config()))
    tokenizer.model_max_length = tiny.tiny_family().max_sequence_length
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _header_file(path: Path, entries: dict, metadata: dict | None = None) -> Path:
    """A safetensors file with a real header and zero (sparse) data: enough for header-only checks."""
    header, offset = {}, 0
    for key, (dtype, shape) in entries.items():
        size = DTYPE_BYTES[dtype]
        for n in shape:
            size *= n
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
    os.truncate(path, 8 + len(raw) + offset)
    return path


def _gemma3_12b_layout(text_dtype="BF16") -> dict:
    """ComfyUI's gemma_3_12B_it.safetensors key layout: 48 text layers, the SigLIP tower, the projector, spiece."""
    h, inter, heads, kv, hd, vocab = 3840, 15360, 16, 8, 256, 262208
    e = {"model.embed_tokens.weight": (text_dtype, (vocab, h)), "model.norm.weight": (text_dtype, (h,))}
    for i in range(48):
        p = f"model.layers.{i}."
        e |= {
            p + "self_attn.q_proj.weight": (text_dtype, (heads * hd, h)),
            p + "self_attn.k_proj.weight": (text_dtype, (kv * hd, h)),
            p + "self_attn.v_proj.weight": (text_dtype, (kv * hd, h)),
            p + "self_attn.o_proj.weight": (text_dtype, (h, heads * hd)),
            p + "self_attn.q_norm.weight": (text_dtype, (hd,)),
            p + "self_attn.k_norm.weight": (text_dtype, (hd,)),
            p + "mlp.gate_proj.weight": (text_dtype, (inter, h)),
            p + "mlp.up_proj.weight": (text_dtype, (inter, h)),
            p + "mlp.down_proj.weight": (text_dtype, (h, inter)),
        }
        for norm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                     "post_feedforward_layernorm"):
            e[p + norm + ".weight"] = (text_dtype, (h,))
    v, vi = 1152, 4304
    e |= {
        "vision_model.embeddings.patch_embedding.weight": ("BF16", (v, 3, 14, 14)),
        "vision_model.embeddings.patch_embedding.bias": ("BF16", (v,)),
        "vision_model.embeddings.position_embedding.weight": ("BF16", (4096, v)),
        "vision_model.post_layernorm.weight": ("BF16", (v,)),
        "vision_model.post_layernorm.bias": ("BF16", (v,)),
        "multi_modal_projector.mm_input_projection_weight": ("BF16", (v, h)),
        "multi_modal_projector.mm_soft_emb_norm.weight": ("BF16", (v,)),
    }
    for i in range(27):
        p = f"vision_model.encoder.layers.{i}."
        for name, shape in (("self_attn.q_proj", (v, v)), ("self_attn.k_proj", (v, v)), ("self_attn.v_proj", (v, v)),
                            ("self_attn.out_proj", (v, v)), ("mlp.fc1", (vi, v)), ("mlp.fc2", (v, vi)),
                            ("layer_norm1", None), ("layer_norm2", None)):
            e[p + name + ".weight"] = ("BF16", shape or (v,))
            e[p + name + ".bias"] = ("BF16", (shape[0],) if shape else (v,))
    e[gsf.TOKENIZER_KEY] = ("U8", (4_689_074,))
    return e


def _tensors(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _linear(key: str) -> bool:
    return key.startswith("model.layers.") and key.endswith("_proj.weight")


# ---- the file the tiny model writes ------------------------------------------------------------------------------


def test_tiny_models_dir_has_the_comfy_single_file(root, single):
    assert single.is_file() and (root / "text_encoders" / TEXT_ENCODER_NAME / "config.json").is_file()
    header, metadata = read_safetensors_header(single)
    assert header[gsf.TOKENIZER_KEY]["dtype"] == "U8" and len(header[gsf.TOKENIZER_KEY]["shape"]) == 1
    assert {k.split(".")[0] for k in header} == {"model", "vision_model", "multi_modal_projector", "spiece_model"}
    assert "lm_head.weight" not in header and "model.layers.1.self_attn.q_norm.weight" in header
    assert metadata[gsf.MAX_LENGTH_METADATA] == "64"


def test_inspect_derives_the_config_from_the_header_alone(single, monkeypatch):
    monkeypatch.setattr("safetensors.safe_open", None)  # a tensor read would fail
    info = gsf.inspect_gemma_file(single)
    text = tiny.tiny_config()["text_encoder"]["text_config"]
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim"):
        assert info.config[key] == text[key], key
    assert info.prefix == "model." and info.quantization == "none" and info.has_vision
    assert info.weight_dtype == "F32" and gsf.looks_like_gemma(single)


def test_real_gemma3_12b_layout_maps_onto_gemma3_for_causal_lm(tmp_path):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    layout = _gemma3_12b_layout()
    path = _header_file(tmp_path / SINGLE, layout)
    info = gsf.inspect_gemma_file(path)
    c = info.config
    assert (c["vocab_size"], c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]) == (262208, 3840, 15360, 48)
    assert (c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]) == (16, 8, 256)
    assert [i for i, t in enumerate(c["layer_types"]) if t == "full_attention"] == list(range(5, 48, 6))
    config = Gemma3TextConfig(**c)
    assert config.sliding_window == 1024 and config.query_pre_attn_scalar == 256
    assert config.rope_parameters["full_attention"] == {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6}
    assert config.rope_parameters["sliding_attention"]["rope_theta"] == 10000.0
    with torch.device("meta"):
        model = Gemma3ForCausalLM(config)
    state = model.state_dict()
    assert set(state) == set(info.text_keys) | {"lm_head.weight"}
    for target, key in info.text_keys.items():
        assert list(state[target].shape) == list(layout[key][1]), key
    assert len(info.text_keys) == 626 and len(layout) == 1066  # 626 text + 439 vision/projector + the tokenizer


# ---- loading and equality with the folder path -------------------------------------------------------------------


def test_load_single_file(single):
    encoder = loading.load_text_encoder(single, dtype="fp32", device="cpu")
    assert type(encoder.model).__name__ == "Gemma3ForCausalLM" and encoder.source == str(single)
    assert encoder.max_sequence_length == 64 and encoder.tokenizer.padding_side == "left"
    assert encoder.tokenizer.pad_token == "<pad>" and encoder.dtype == torch.float32
    assert encoder.model.generation_config.eos_token_id == [1, encoder.tokenizer.convert_tokens_to_ids("<end_of_turn>")]
    assert encoder.model.lm_head.weight is encoder.model.model.embed_tokens.weight
    assert not any(p.requires_grad for p in encoder.model.parameters())


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_single_file_encodes_exactly_like_the_folder(single, sp_folder, dtype):
    from_file = loading.load_text_encoder(single, dtype=dtype)
    from_folder = loading.load_text_encoder(sp_folder, dtype=dtype)
    assert type(from_folder.model).__name__ == "Gemma3ForConditionalGeneration"
    prompt = "a robot dancing in the rain, Hello World!"
    ids = from_file.tokenizer(prompt).input_ids
    assert ids == from_folder.tokenizer(prompt).input_ids and ids[0] == 2
    a = encode_text(from_file, prompt, "dark city street")
    b = encode_text(from_folder, prompt, "dark city street")
    assert a.prompt_embeds.dtype == b.prompt_embeds.dtype == loading.resolve_dtype(dtype)
    assert torch.equal(a.prompt_mask, b.prompt_mask) and torch.equal(a.prompt_embeds, b.prompt_embeds)
    assert torch.equal(a.negative_embeds, b.negative_embeds)


def test_embedded_tokenizer_matches_sentencepiece():
    spm = pytest.importorskip("sentencepiece")
    data = tiny.build_spiece_model(tiny.tiny_config())
    reference = spm.SentencePieceProcessor(model_proto=data)
    tokenizer = gsf.tokenizer_from_spiece(data)
    assert reference.get_piece_size() == len(tokenizer)
    for text in ["a robot dancing in the rain", "Hello, World! 123 \u00fcn\u00efcode \u65e5\u672c", "  two  spaces ",
                 "<start_of_turn>user\nthe cat walks\tslowly<end_of_turn>\n"]:
        ids = reference.encode(text)
        assert tokenizer(text, add_special_tokens=False).input_ids == ids, text
        assert tokenizer.decode(ids) == reference.decode(ids) == text


def test_spiece_proto_round_trips():
    pieces = [gsf.Piece("<pad>", 0.0, gsf.CONTROL), gsf.Piece("<eos>", 0.0, gsf.CONTROL),
              gsf.Piece("<bos>", 0.0, gsf.CONTROL), gsf.Piece("<unk>", 0.0, gsf.UNKNOWN),
              gsf.Piece("\u2581", -1.0), gsf.Piece("a", -2.0), gsf.Piece("\u2581a", -3.5)]
    model = gsf.parse_spiece(gsf.encode_spiece(pieces, unk_id=3, bos_id=2, eos_id=1, pad_id=0))
    assert model.pieces == pieces and model.model_type == gsf.BPE_MODEL and model.byte_fallback
    assert (model.unk_id, model.bos_id, model.eos_id, model.pad_id, model.add_dummy_prefix) == (3, 2, 1, 0, False)


# ---- fp8 variants ------------------------------------------------------------------------------------------------


def _fp8(weight):
    scale = (weight.abs().amax() / torch.finfo(torch.float8_e4m3fn).max).to(torch.float32)
    return (weight / scale).to(torch.float8_e4m3fn), scale


@pytest.mark.parametrize("variant", ["comfy_quant", "scaled_fp8", "plain"])
def test_fp8_files_are_dequantized(single, tmp_path, variant):
    tensors = _tensors(single)
    expected = {}
    for key in [k for k in tensors if _linear(k)]:
        layer = key[: -len(".weight")]
        quantized, scale = _fp8(tensors[key])
        if variant == "plain":
            quantized, scale = tensors[key].to(torch.float8_e4m3fn), torch.tensor(1.0)
        elif variant == "comfy_quant":
            tensors[layer + ".weight_scale"] = scale
            tensors[layer + ".comfy_quant"] = torch.tensor(list(b'{"format": "float8_e4m3fn"}'), dtype=torch.uint8)
        else:
            tensors[layer + ".scale_weight"] = scale.reshape(1)
            tensors[layer + ".scale_input"] = torch.ones(1)
        tensors[key] = quantized
        expected["model." + key[len("model."):]] = quantized.to(torch.float32) * scale
    if variant == "scaled_fp8":
        tensors["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    path = tmp_path / gsf.COMFY_FP8_FILE
    save_file(tensors, str(path))
    info = gsf.inspect_gemma_file(path)
    assert info.quantization == ("fp8" if variant == "plain" else "fp8-scaled")
    encoder = loading.load_text_encoder(path, dtype="fp32")
    state = encoder.model.state_dict()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    assert encode_text(encoder, "a cat").prompt_embeds.isfinite().all()


# ---- refusals ----------------------------------------------------------------------------------------------------


def _small_gemma(hidden=32, extra=None, drop=()):
    entries = {
        "model.embed_tokens.weight": ("BF16", (8, hidden)),
        "model.norm.weight": ("BF16", (hidden,)),
        "model.layers.0.self_attn.q_proj.weight": ("BF16", (32, hidden)),
        "model.layers.0.self_attn.k_proj.weight": ("BF16", (16, hidden)),
        "model.layers.0.self_attn.q_norm.weight": ("BF16", (16,)),
        "model.layers.0.pre_feedforward_layernorm.weight": ("BF16", (hidden,)),
        "model.layers.0.post_feedforward_layernorm.weight": ("BF16", (hidden,)),
        "model.layers.0.mlp.gate_proj.weight": ("BF16", (64, hidden)),
        gsf.TOKENIZER_KEY: ("U8", (16,)),
    }
    entries |= extra or {}
    return {k: v for k, v in entries.items() if k not in drop}


@pytest.mark.parametrize(
    ("name", "entries", "message"),
    [
        ("t5xxl_fp16.safetensors", {"encoder.block.0.layer.0.SelfAttention.k.weight": ("BF16", (4, 4))},
         r"'t5xxl_fp16.safetensors' is a T5 text encoder, not Gemma 3.*gemma_3_12B_it.safetensors"),
        ("qwen.safetensors", {"model.embed_tokens.weight": ("BF16", (4, 4)),
                              "model.layers.0.self_attn.q_proj.weight": ("BF16", (4, 4))},
         r"'qwen.safetensors' is a Llama-style model, not Gemma 3"),
        ("gemma_3_12B_it.safetensors", _small_gemma(drop=(gsf.TOKENIZER_KEY,)),
         r"holds Gemma 3 weights but no embedded tokenizer: the 'spiece_model' tensor .*SentencePiece tokenizer\.model"
         r".*Comfy-Org/ltx-2.*gemma-3-12b-it-qat-q4_0-unquantized"),
        ("gemma4-12b.safetensors", _small_gemma(extra={"model.layers.0.layer_scalar": ("BF16", (1,))}),
         r"'gemma4-12b.safetensors' is a Gemma 4 without its config .*LTX-2.5 needs its own text encoder, "
         r"gemma4-12b-with-proj-ltx-2.5-bf16.safetensors"),
        ("ltx-2.3_text_projection_bf16.safetensors",
         {"text_embedding_projection.video_aggregate_embed.weight": ("BF16", (4, 4))},
         r"is the LTX text projection, not Gemma"),
        ("gemma-2-2b.safetensors", _small_gemma(drop=("model.layers.0.self_attn.q_norm.weight",)),
         r"'gemma-2-2b.safetensors' is a Gemma 2 model, not Gemma 3"),
        ("gemma-3-4b-it.safetensors", _small_gemma(hidden=2560),
         r"'gemma-3-4b-it.safetensors' is Gemma 3 4B \(hidden size 2560\), but LTX-2 was trained with Gemma 3 12B"),
        ("gemma_3_12B_it_fp4_mixed.safetensors",
         _small_gemma(extra={"model.layers.0.self_attn.q_proj.weight": ("U8", (32, 16)),
                             "model.layers.0.self_attn.q_proj.weight_scale": ("F8_E4M3", (32, 2)),
                             "model.layers.0.self_attn.q_proj.weight_scale_2": ("F32", ())}),
         r"stores its weights as U8 .*q_proj.weight.*fp4_mixed \(NVFP4\).*cannot dequantize"),
        ("gemma_rowwise_fp8.safetensors",
         _small_gemma(extra={"model.layers.0.self_attn.q_proj.weight": ("F8_E4M3", (32, 32)),
                             "model.layers.0.self_attn.q_proj.weight_scale": ("F32", (32, 1))}),
         r"per-row or per-block fp8 scale .*only per-tensor fp8 scales are supported"),
    ],
)
def test_foreign_and_unsupported_files_are_refused(tmp_path, name, entries, message):
    path = _header_file(tmp_path / name, entries)
    with pytest.raises(L2AError, match=message):
        loading.load_text_encoder(path)


def test_damaged_tokenizer_and_other_formats_are_refused(single, tmp_path):
    tensors = _tensors(single)
    tensors[gsf.TOKENIZER_KEY] = torch.tensor(list(b"\x0a\xff\xff"), dtype=torch.uint8)
    damaged = tmp_path / "gemma_damaged_tokenizer.safetensors"
    save_file(tensors, str(damaged))
    with pytest.raises(L2AError, match="The tokenizer embedded in 'gemma_damaged_tokenizer.safetensors' is damaged"):
        loading.load_text_encoder(damaged)
    gguf = tmp_path / "gemma-3-12b-it-Q4_K_M.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(L2AError, match=r"is a \.gguf file: only \.safetensors text encoders.*GGUF is not supported"):
        loading.load_text_encoder(gguf)
    with pytest.raises(L2AError, match=r"Text encoder file '.*gemma_3_12B_it_missing.safetensors' does not exist"):
        loading.load_text_encoder(tmp_path / "gemma_3_12B_it_missing.safetensors")


# ---- the loader node ---------------------------------------------------------------------------------------------


def test_loader_node_lists_and_loads_the_single_file(root, tmp_path, monkeypatch):
    models = tmp_path / "models"
    encoders = models / "text_encoders"
    shutil.copytree(root / "text_encoders" / TEXT_ENCODER_NAME, encoders / TEXT_ENCODER_NAME)
    shutil.copy2(root / "text_encoders" / SINGLE, encoders / SINGLE)
    _header_file(encoders / "t5xxl_fp16.safetensors", {"encoder.block.0.layer.0.SelfAttention.k.weight": ("BF16", (4,))})
    monkeypatch.setitem(_comfy._settings, "models_dir", _comfy._settings["models_dir"])
    _comfy.configure(models_dir=models)

    choices, options = L2A_TextEncoderLoader.INPUT_TYPES()["required"]["text_encoder_name"]
    assert choices == [TEXT_ENCODER_NAME, SINGLE]
    assert "single-file" in options["tooltip"]
    assert list(L2A_TextEncoderLoader.INPUT_TYPES()["required"]) == ["text_encoder_name", "dtype", "device"]

    (encoder,) = L2A_TextEncoderLoader().load(SINGLE, "fp32", "cpu")
    assert type(encoder.model).__name__ == "Gemma3ForCausalLM" and encoder.source == str(encoders / SINGLE)
    (folder,) = L2A_TextEncoderLoader().load(TEXT_ENCODER_NAME, "fp32", "cpu")
    assert type(folder.model).__name__ == "Gemma3ForConditionalGeneration"
    with pytest.raises(L2AError, match="'t5xxl_fp16.safetensors' is a T5 text encoder"):
        L2A_TextEncoderLoader().load("t5xxl_fp16.safetensors", "fp32", "cpu")
