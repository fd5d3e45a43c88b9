"""Tiny random-weight stand-ins of LTX-2.5's extra components, in their official layouts.

The duration head (its official `model_patches` file), the diffusion video decoder (inside an official
"CausalDiffusionVAE" video VAE file) and the Gemma 4 E2B prompt enhancer (a transformers folder like
google/gemma-4-E2B-it, with a tokenizer over a small vocabulary and Gemma 4's chat template) are built from the real
diffusers / transformers classes, shrunken, each with its own seed so the weights never change between runs. Sizes
follow the tiny LTX-2.5 (video connector width 16, audio 8, latent channels 8). This module stands above the loaders
it writes for; nothing below imports it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import string
import tempfile
from pathlib import Path

from .prompt_expansion import SYSTEM_PROMPTS_PATH

# The tiny LTX-2.5's connector widths (video / audio) and latent channels, which the parts below must fit.
TINY_DURATION_HEAD = {"video_cross_attention_dim": 16, "audio_cross_attention_dim": 8, "pooler_hidden_dim": 16,
                      "mlp_hidden_dim": 16}
# The real decoder's layout (strides, reductions, x0 in one step) at toy widths; every kernel 3, so a 96 x 96 x 9
# video (3 x 3 x 2 latents) is enough.
TINY_DIFFUSION_DECODER = {"latent_channels": 8, "patch_size": 4, "decoder_head_dim": 8,
                          "decoder_stage_channels": (32, 16, 8, 8, 8), "decoder_stage_depths": (1, 1, 1, 1, 1),
                          "decoder_stage_kernels": ((3, 3, 3),) * 4,
                          "decoder_upsample_channel_reductions": (2, 2, 1, 1), "decoder_stage5_kernel": (3, 3, 3),
                          "decoder_t_emb_dim": 32}
# Gemma 4 text model at toy size, with E2B's per-layer input embeddings; special ids at the end of the vocabulary.
TINY_ENHANCER = {
    "text_config": {"vocab_size": 4096, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                    "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16, "global_head_dim": 16,
                    "max_position_embeddings": 4096, "sliding_window": 64,
                    "layer_types": ["sliding_attention", "full_attention"], "hidden_size_per_layer_input": 8,
                    "vocab_size_per_layer_input": 4096},
    "vision_config": None, "audio_config": None, "boi_token_id": 4089, "eoi_token_id": 4090, "image_token_id": 4091,
    "video_token_id": 4092, "boa_token_id": 4093, "eoa_token_index": 4094, "audio_token_id": 4095,
}
# Whole words besides those of the system prompts, so a chat stays about as long in tokens as with Gemma's tokenizer.
TINY_ENHANCER_WORDS = ("a", "robot", "dancing", "in", "the", "rain", "cat", "walks", "slowly", "user", "prompt",
                       "User", "Raw", "Input", "Prompt", "system", "model")
# Gemma 4's turn format (<|turn>role ... <turn|>), system turn first, as google/gemma-4-E2B-it's template renders it.
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{%- for message in messages -%}{{ '<|turn>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}{%- else -%}"
    "{%- for item in message['content'] -%}{%- if item['type'] == 'image' -%}{{ '<|image|>' }}"
    "{%- else -%}{{ item['text'] | trim }}{%- endif -%}{%- endfor -%}{%- endif -%}{{ '<turn|>\\n' }}"
    "{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|turn>model\\n' }}{%- endif -%}"
)


def build_duration_head():
    import torch
    from diffusers.pipelines.ltx2 import LTX2DurationHead

    torch.manual_seed(0)
    return LTX2DurationHead(**TINY_DURATION_HEAD).eval()


def build_diffusion_decoder():
    """The tiny decoder with non-trivial latent statistics (mean 0 / std 1 would hide normalization bugs)."""
    import torch
    from diffusers import LTX2VideoDiffusionDecoderModel

    torch.manual_seed(0)
    module = LTX2VideoDiffusionDecoderModel(**TINY_DIFFUSION_DECODER).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        module.latents_mean.copy_(torch.randn(module.latents_mean.shape, generator=generator) * 0.1)
        module.latents_std.copy_(torch.rand(module.latents_std.shape, generator=generator) * 0.5 + 0.75)
    return module


def build_enhancer():
    """(model, tokenizer) of a tiny Gemma 4 instruct model; the tokenizer adds no BOS, like Gemma 4's."""
    import torch
    from transformers import Gemma4Config, Gemma4ForConditionalGeneration, GemmaTokenizer

    torch.manual_seed(0)
    model = Gemma4ForConditionalGeneration(Gemma4Config(**TINY_ENHANCER)).eval()
    vocab: dict[str, int] = {}
    for token in ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>", "<|image|>", "\u2581"):
        vocab[token] = len(vocab)
    for char in string.ascii_letters + string.digits + string.punctuation + "\n":
        vocab.setdefault(char, len(vocab))
    # Byte-pair merges that build each word letter by letter after its word-start mark.
    prompts = json.loads(SYSTEM_PROMPTS_PATH.read_text(encoding="utf-8"))
    words = set(re.findall(r"[A-Za-z]+", prompts["gemma4_t2v"] + prompts["gemma4_i2v"])) | set(TINY_ENHANCER_WORDS)
    merges = []
    for word in sorted(words):
        for end in range(1, len(word) + 1):
            piece = "\u2581" + word[:end]
            if piece not in vocab:
                merges.append((piece[:-1], piece[-1]))
                vocab[piece] = len(vocab)
    if len(vocab) > TINY_ENHANCER["boi_token_id"]:
        raise ValueError(f"tiny enhancer vocabulary has {len(vocab)} tokens, more than the special ids allow")
    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|turn>", "<turn|>", "<|image|>"]})
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    model.generation_config.eos_token_id = [vocab["<eos>"], vocab["<turn|>"]]
    return model, tokenizer


def write_duration_head(path: str | os.PathLike) -> Path:
    from .duration import save_duration_head

    return save_duration_head(path, build_duration_head())


def write_diffusion_vae(path: str | os.PathLike, encoder_state: dict | None = None,
                        statistics: tuple | None = None) -> Path:
    """The official diffusion video VAE file: `encoder_state` (official `encoder.*` keys, when given), the diffusion
    decoder and the latent statistics (`statistics` = (mean, std) when given, e.g. the conv VAE's), with its
    `config.vae` metadata."""
    import torch

    from .diffusion_decoder import official_config, to_official
    from .weights import write_safetensors

    module = build_diffusion_decoder()
    if statistics is not None:
        with torch.no_grad():
            module.latents_mean.copy_(statistics[0])
            module.latents_std.copy_(statistics[1])
    tensors = {**(encoder_state or {}), **to_official(module.state_dict())}
    config = {"vae": official_config(dict(module.config))}
    return write_safetensors(path, tensors, {"config": json.dumps(config)})


def write_enhancer(folder: str | os.PathLike) -> Path:
    """The enhancer as a transformers folder (config.json, model.safetensors, tokenizer, chat template), written
    whole or not at all."""
    model, tokenizer = build_enhancer()
    folder = Path(folder)
    atomic_dir_write(folder, lambda tmp: (model.save_pretrained(tmp), tokenizer.save_pretrained(tmp)))
    return folder


def atomic_dir_write(target: Path, write) -> None:
    """`write(folder)` into a hidden folder beside `target`, then moved into its place: whole or not at all."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
