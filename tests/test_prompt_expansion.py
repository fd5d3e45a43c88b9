"""Prompt expansion on the tiny Gemma (its text is gibberish; the mechanics are what is tested): official system
prompts reach the model, seeds are reproducible, limits hold, images reach a model with a vision tower, and the node."""

import json

import pytest
import torch

from ltx2_anywhere.nodes import NODE_CLASS_MAPPINGS
from ltx2_anywhere.nodes.prompt import L2A_PromptExpand
from ltx2_anywhere.pipelines import gemma_single_file as gsf
from ltx2_anywhere.pipelines import loading, tiny
from ltx2_anywhere.pipelines import prompt_expansion as pe
from ltx2_anywhere.pipelines.errors import L2AError

PROMPT = "a robot dancing in the rain"
# Gemma 3's chat template logic (system text + blank line folded into the first user turn, contents trimmed, an image
# item rendered as <start_of_image>), written out for the test.
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{%- set prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- for message in messages[1:] -%}{{ '<start_of_turn>' + message['role'] + '\n' + prefix }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}{%- else -%}"
    "{%- for item in message['content'] -%}{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- else -%}{{ item['text'] | trim }}{%- endif -%}{%- endfor -%}{%- endif -%}{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


@pytest.fixture(scope="module")
def single():
    return loading.load_text_encoder(tiny.ensure_cached() / "text_encoders" / gsf.COMFY_FILE, dtype="fp32")


@pytest.fixture(scope="module")
def folder():
    folder = tiny.tiny_family().text_encoder.folder.name
    return loading.load_text_encoder(tiny.ensure_cached() / "text_encoders" / folder, dtype="fp32")


def _first_input_ids(encoder, **kwargs):
    """The input_ids of the model's first forward call (the whole chat), captured with a hook."""
    seen = []

    def hook(_module, args, kw):
        ids = kw.get("input_ids", args[0] if args else None)
        if not seen and ids is not None:
            seen.append(ids[0].tolist())

    handle = encoder.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        result = pe.expand_prompt(encoder, PROMPT, **kwargs)
    finally:
        handle.remove()
    return seen[0], result


def test_system_prompts_are_the_official_texts():
    from diffusers.pipelines.ltx2 import utils

    data = json.loads(pe.SYSTEM_PROMPTS_PATH.read_text(encoding="utf-8"))
    assert set(data) == {"_source", "t2v", "i2v", "gemma4_t2v", "gemma4_i2v"}
    assert data["t2v"].startswith("\nYou are a Creative Assistant. Given a user's raw input prompt")
    assert data["i2v"].startswith("\nYou are a Creative Assistant writing concise, action-focused image-to-video")
    assert "Lightricks/LTX-2" in data["_source"]
    # LTX-2.5's (ltx-core gemma4_*_system_prompt.txt), byte-identical to diffusers' copies
    assert pe.system_prompt("t2v", "gemma4") == utils.LTX2_5_T2V_DEFAULT_SYSTEM_PROMPT
    assert pe.system_prompt("i2v", "gemma4") == utils.LTX2_5_I2V_DEFAULT_SYSTEM_PROMPT


@pytest.mark.parametrize(("mode", "user"), [("t2v", f"user prompt: {PROMPT}"), ("i2v", f"User Raw Input Prompt: {PROMPT}.")])
def test_the_system_prompt_and_user_turn_reach_the_model(single, mode, user):
    ids, result = _first_input_ids(single, mode=mode, seed=1, max_new_tokens=4)
    text = single.tokenizer.decode(ids)
    expected = f"<bos><start_of_turn>user\n{pe.system_prompt(mode)}\n\n{user}<end_of_turn>\n<start_of_turn>model\n"
    assert text == expected
    assert len(ids) > len(single.tokenizer(pe.system_prompt(mode), add_special_tokens=False).input_ids)
    assert result.mode == mode and not result.used_image


def test_chat_template_is_used_when_the_tokenizer_has_one(single, monkeypatch):
    plain, _ = _first_input_ids(single, seed=1, max_new_tokens=2)
    monkeypatch.setattr(single.tokenizer, "chat_template", GEMMA3_TEMPLATE, raising=False)
    templated, _ = _first_input_ids(single, seed=1, max_new_tokens=2)
    assert templated == plain  # the hand-built turn format is exactly Gemma 3's template output, bos counted once
    monkeypatch.setattr(single.tokenizer, "chat_template", "[{{ messages[1]['content'] }}]", raising=False)
    custom, _ = _first_input_ids(single, seed=1, max_new_tokens=2)
    assert single.tokenizer.decode(custom) == f"<bos>[user prompt: {PROMPT}]"


def test_same_seed_same_text_and_the_global_rng_is_untouched(single):
    state = torch.get_rng_state()
    first = pe.expand_prompt(single, PROMPT, seed=10, max_new_tokens=24)
    again = pe.expand_prompt(single, PROMPT, seed=10, max_new_tokens=24)
    other = pe.expand_prompt(single, PROMPT, seed=11, max_new_tokens=24)
    assert torch.equal(torch.get_rng_state(), state)
    assert first == again and first.prompt != other.prompt
    assert first.new_tokens == 24 and not first.fell_back and first.note == ""


@pytest.mark.parametrize("limit", [1, 7])
def test_max_new_tokens_is_respected_and_reported(single, limit):
    counts = []
    result = pe.expand_prompt(single, PROMPT, seed=3, max_new_tokens=limit, callback=counts.append)
    assert result.new_tokens <= limit and counts[-1] == result.new_tokens
    assert counts == list(range(1, result.new_tokens + 1))


def test_greedy_when_temperature_is_zero(single):
    a = pe.expand_prompt(single, PROMPT, seed=1, max_new_tokens=8, temperature=0)
    b = pe.expand_prompt(single, PROMPT, seed=2, max_new_tokens=8, temperature=0)
    assert a.prompt == b.prompt


def test_empty_reply_falls_back_to_the_prompt(single, monkeypatch):
    def generate(input_ids, **kwargs):
        eos = torch.tensor([[single.tokenizer.convert_tokens_to_ids("<end_of_turn>")]])
        return torch.cat([input_ids, eos], dim=1)

    monkeypatch.setattr(single.model, "generate", generate)
    result = pe.expand_prompt(single, f"  {PROMPT}  ")
    assert result.prompt == PROMPT and result.fell_back and result.new_tokens == 1
    assert "original prompt is kept" in result.note


def test_reply_is_cleaned():
    assert pe.clean_reply("\n** \u201cStyle: cinematic\u201d \u2014 a cat\u2019s walk ") == "Style: cinematic\" - a cat's walk"
    assert pe.clean_reply(" \u2581 123 !!") == ""


def test_image_reaches_a_model_with_a_vision_tower(folder):
    image = torch.rand(1, 40, 60, 3)
    inputs, used = pe.build_inputs(folder, PROMPT, "i2v", image)
    config = folder.model.config
    assert used and inputs["pixel_values"].shape == (1, 3, 28, 28)
    assert inputs["pixel_values"].min() >= -1 and inputs["pixel_values"].max() <= 1
    ids = inputs["input_ids"][0].tolist()
    start = ids.index(config.boi_token_index)
    count = config.mm_tokens_per_image
    assert ids[start + 1:start + 1 + count] == [config.image_token_id] * count and ids[start + 1 + count] == config.eoi_token_index
    assert inputs["token_type_ids"][0].sum() == count
    seen = []
    handle = folder.model.model.vision_tower.register_forward_hook(lambda *a: seen.append(True))
    try:
        result = pe.expand_prompt(folder, PROMPT, mode="i2v", image=image, seed=4, max_new_tokens=6)
    finally:
        handle.remove()
    assert seen and result.used_image and "image was not shown" not in result.note


def test_single_file_says_the_image_was_not_used(single):
    result = pe.expand_prompt(single, PROMPT, mode="i2v", image=torch.rand(1, 32, 32, 3), seed=4, max_new_tokens=4)
    assert not result.used_image and "image was not shown to the model" in result.note


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": PROMPT, "mode": "v2v"}, r"mode = 'v2v' is unknown: use 't2v'"),
        ({"prompt": PROMPT, "seed": -1}, "seed = -1 is out of range"),
        ({"prompt": PROMPT, "max_new_tokens": 0}, "max_new_tokens = 0 must be at least 1"),
        ({"prompt": PROMPT, "temperature": 3}, "temperature = 3 is out of range"),
    ],
)
def test_bad_input_is_refused_before_any_work(single, kwargs, message):
    with pytest.raises(L2AError, match=message):
        pe.expand_prompt(single, **kwargs)


# ---- the node ----------------------------------------------------------------------------------------------------


def test_node_declares_its_widgets_with_tooltips():
    assert NODE_CLASS_MAPPINGS["L2A_PromptExpand"] is L2A_PromptExpand
    spec = L2A_PromptExpand.INPUT_TYPES()
    assert list(spec["required"]) == ["text_encoder", "prompt", "mode", "seed", "max_new_tokens"]
    assert list(spec["optional"]) == ["image", "enhancer"]
    assert spec["optional"]["enhancer"][0] == "L2A_PROMPT_ENHANCER"
    assert spec["required"]["mode"][0] == ["t2v", "i2v"]
    seed, tokens = spec["required"]["seed"][1], spec["required"]["max_new_tokens"][1]
    assert seed["default"] == 10 and seed["control_after_generate"]
    assert (tokens["default"], tokens["min"], tokens["max"]) == (512, 16, 2048)
    assert all(options.get("tooltip") for group in spec.values() for _type, options in group.values())
    assert "off by default for 2.5" in L2A_PromptExpand.DESCRIPTION
    assert L2A_PromptExpand.CATEGORY == "LTX-2 Anywhere/conditioning" and L2A_PromptExpand.DESCRIPTION
    assert L2A_PromptExpand.RETURN_TYPES == ("STRING",) and L2A_PromptExpand.RETURN_NAMES == ("expanded_prompt",)


def test_node_returns_the_string_and_shows_it(single, folder):
    out = L2A_PromptExpand().expand(single, PROMPT, "t2v", 10, 16)
    (text,) = out["result"]
    assert isinstance(text, str) and text and out["ui"]["text"] == [text]
    assert text == pe.expand_prompt(single, PROMPT, seed=10, max_new_tokens=16).prompt
    out = L2A_PromptExpand().expand(single, PROMPT, "i2v", 10, 16, image=torch.rand(1, 16, 16, 3))
    assert out["ui"]["text"][0] == out["result"][0] and "image was not shown" in out["ui"]["text"][1]
    with pytest.raises(L2AError, match="prompt is empty"):
        L2A_PromptExpand().expand(folder, "", "t2v", 10, 16)


def test_image_block_is_tokenized_as_text_when_the_tokenizer_knows_gemmas_image_tokens(folder, monkeypatch):
    from types import SimpleNamespace

    pieces = gsf.parse_spiece(tiny.build_spiece_model(tiny.tiny_config())).pieces
    pieces += [gsf.Piece(f"<unused{i}>", 0.0, gsf.USER_DEFINED) for i in range(500 - len(pieces))]
    pieces += [gsf.Piece(name, 0.0, gsf.USER_DEFINED) for name in ("<start_of_image>", "<end_of_image>",
                                                                  "<image_soft_token>")]
    tokenizer = gsf.tokenizer_from_spiece(gsf.encode_spiece(pieces, unk_id=3, bos_id=2, eos_id=1, pad_id=0))
    encoder = SimpleNamespace(model=folder.model, tokenizer=tokenizer, device=folder.device, dtype=folder.dtype)
    image = torch.rand(1, 8, 8, 3)
    as_text, used = pe.build_inputs(encoder, PROMPT, "i2v", image)
    monkeypatch.setattr(pe, "_knows_image_tokens", lambda *args: False)
    spliced, _ = pe.build_inputs(encoder, PROMPT, "i2v", image)
    assert used and torch.equal(as_text["input_ids"], spliced["input_ids"])
    decoded = tokenizer.decode(as_text["input_ids"][0])
    assert "\n\n<start_of_image>" + "<image_soft_token>" * 4 + "<end_of_image>\n\nUser Raw Input Prompt: " in decoded


def test_a_text_only_encoder_without_generate_is_refused(single):
    from types import SimpleNamespace

    encoder = SimpleNamespace(model=single.model.model, tokenizer=single.tokenizer, device="cpu", dtype=torch.float32)
    with pytest.raises(L2AError, match="Gemma3TextModel\\) cannot generate text"):
        pe.expand_prompt(encoder, PROMPT)


# ---- LTX-2.5's enhancer: Gemma 4 E2B -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def enhancer(tmp_path_factory):
    from ltx2_anywhere.pipelines import tiny_extras

    folder = tiny_extras.write_enhancer(tmp_path_factory.mktemp("text_encoders") / pe.ENHANCER_FOLDER)
    return pe.load_enhancer(folder, dtype="fp32")


def _enhancer_call(enhancer, monkeypatch, **kwargs):
    """The enhancement with the keyword arguments transformers' generate received (captured, then run for real)."""
    seen = {}
    generate = enhancer.model.generate

    def capture(**generate_kwargs):
        seen.update(generate_kwargs)
        return generate(**generate_kwargs)

    monkeypatch.setattr(enhancer.model, "generate", capture)
    return pe.enhance_prompt(enhancer, PROMPT, **kwargs), seen


@pytest.mark.parametrize(("mode", "user"), [("t2v", f"user prompt: {PROMPT}"), ("i2v", f"User Raw Input Prompt: {PROMPT}.")])
def test_enhancer_runs_ltx_cores_gemma4_recipe(enhancer, monkeypatch, mode, user):
    result, seen = _enhancer_call(enhancer, monkeypatch, mode=mode, max_new_tokens=12)
    assert seen["do_sample"] is False and seen["no_repeat_ngram_size"] == 5 and seen["max_new_tokens"] == 12
    ids, mask = seen["input_ids"][0], seen["attention_mask"][0]
    assert ids.shape[0] % 8 == 0 and int((mask == 0).sum()) < 8  # left-padded to a multiple of 8, pads masked
    assert mask[-1] == 1 and bool((ids[mask == 0] == enhancer.tokenizer.pad_token_id).all())
    expected = enhancer.tokenizer.apply_chat_template(
        [{"role": "system", "content": pe.system_prompt(mode, "gemma4")}, {"role": "user", "content": user}],
        tokenize=False, add_generation_prompt=True)
    assert ids[mask == 1].tolist() == enhancer.tokenizer(expected, add_special_tokens=False).input_ids
    assert expected.startswith("<bos><|turn>system\nYou are given a") and expected.endswith("<|turn>model\n")
    turn_end = enhancer.tokenizer.convert_tokens_to_ids("<turn|>")
    assert turn_end in seen["eos_token_id"] and result.mode == mode and 1 <= result.new_tokens <= 12


def test_enhancer_defaults_to_600_tokens_and_is_greedy(enhancer, monkeypatch):
    torch.manual_seed(123)
    first, seen = _enhancer_call(enhancer, monkeypatch, max_new_tokens=10)
    torch.manual_seed(456)
    again = pe.enhance_prompt(enhancer, PROMPT, max_new_tokens=10)
    assert first == again and not first.fell_back
    assert pe.enhance_prompt.__defaults__[2] == pe.ENHANCER_MAX_NEW_TOKENS == 600


def test_enhancer_cancel_stops_generation(enhancer):
    class Cancelled(Exception):
        pass

    counts = []

    def cancel_at_three(count):
        counts.append(count)
        if count == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        pe.enhance_prompt(enhancer, PROMPT, max_new_tokens=50, callback=cancel_at_three)
    assert counts == [1, 2, 3]


def test_enhancer_without_a_vision_tower_says_the_image_was_not_used(enhancer):
    result = pe.enhance_prompt(enhancer, PROMPT, mode="i2v", image=torch.rand(1, 16, 16, 3), max_new_tokens=4)
    assert not result.used_image and "image was not shown to the enhancer" in result.note


def test_enhancer_folders_of_other_kinds_are_refused(tmp_path, folder):
    with pytest.raises(L2AError, match="loads from a transformers folder, not 'model.safetensors'"):
        pe.load_enhancer(tmp_path / "model.safetensors")
    with pytest.raises(L2AError, match="model type 'gemma3': Gemma 3, which expands prompts by itself"):
        pe.load_enhancer(folder.source)
    unified = tmp_path / "gemma4-12b-with-proj-ltx-2.5"
    unified.mkdir()
    (unified / "config.json").write_text(json.dumps({"model_type": "gemma4_unified"}))
    with pytest.raises(L2AError, match="LTX-2.5's text encoder, which encodes prompts but does not write them"):
        pe.load_enhancer(unified)


def test_node_uses_the_enhancer_and_passes_25_prompts_through_without_it(enhancer, single):
    from types import SimpleNamespace

    out = L2A_PromptExpand().expand(single, PROMPT, "t2v", 10, 16, enhancer=enhancer)
    assert out["result"][0] == pe.enhance_prompt(enhancer, PROMPT, max_new_tokens=16).prompt
    ltx25_encoder = SimpleNamespace(model=None, tokenizer=None, projection=object(), device="cpu")
    out = L2A_PromptExpand().expand(ltx25_encoder, f" {PROMPT} ", "t2v", 10, 16)
    assert out["result"] == (PROMPT,) and "enhancement is off by default for LTX-2.5" in out["ui"]["text"][1]


def test_node_cancel_reaches_the_enhancer(enhancer):
    from ltx2_anywhere.nodes import _comfy

    calls = []

    def cancel_after_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            _comfy.request_interrupt()

    handle = enhancer.model.register_forward_hook(cancel_after_two)
    try:
        with pytest.raises(_comfy.interrupt_exception()):
            L2A_PromptExpand().expand(None, PROMPT, "t2v", 10, 64, enhancer=enhancer)
    finally:
        handle.remove()
    assert len(calls) == 2  # stopped at the token the Cancel came in
    _comfy.throw_if_interrupted()


def test_enhancer_loader_lists_gemma4_folders_only(tmp_path, monkeypatch):
    from ltx2_anywhere.nodes import _comfy
    from ltx2_anywhere.nodes.prompt import L2A_PromptEnhancerLoader

    for name, kind in (("gemma-4-E2B-it", "gemma4"), ("gemma-3-12b-it", "gemma3")):
        (tmp_path / "text_encoders" / name).mkdir(parents=True)
        (tmp_path / "text_encoders" / name / "config.json").write_text(json.dumps({"model_type": kind}))
    monkeypatch.setattr(_comfy, "folder_paths_for", lambda key: [tmp_path / key])
    spec = L2A_PromptEnhancerLoader.INPUT_TYPES()["required"]
    assert spec["enhancer_name"][0] == ["gemma-4-E2B-it"] and spec["dtype"][1]["default"] == "bf16"
