"""A deterministic tiny random-weight LTX-2, built from the real diffusers classes with shrunken configs.

It stands in for the 19B weights in tests, the demo and CI: same classes, same on-disk layouts (an all-in-one
checkpoint under the real file name, a Gemma 3 transformers folder), real geometry (32x/8x video compression,
24 kHz stereo audio). Nothing is downloaded; the files are cached in the user cache folder keyed by the config.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

CONFIG_PATH = Path(__file__).parent / "configs" / "tiny.json"
CHECKPOINT_NAMES = {"dev": "ltx-2-19b-dev.safetensors", "distilled": "ltx-2-19b-distilled.safetensors"}
TEXT_ENCODER_NAME = "gemma-3-12b-it-qat-q4_0-unquantized"
# Part of the cache key: bump it whenever write_models_dir writes other files, so old caches are not reused.
LAYOUT_VERSION = 3


def tiny_config() -> dict:
    return json.loads(CONFIG_PATH.read_text())


def config_hash(config: dict | None = None) -> str:
    config = tiny_config() if config is None else config
    keyed = {"config": config, "layout": LAYOUT_VERSION}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]


def cache_root() -> Path:
    base = os.environ.get("LTX2_ANYWHERE_CACHE") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ltx2-anywhere"


def build_components(config: dict | None = None) -> dict:
    """The model components (no text encoder), each seeded so the weights never change between runs."""
    import torch
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    config = tiny_config() if config is None else config
    classes = {
        "transformer": LTX2VideoTransformer3DModel,
        "vae": AutoencoderKLLTX2Video,
        "audio_vae": AutoencoderKLLTX2Audio,
        "vocoder": LTX2Vocoder,
        "connectors": LTX2TextConnectors,
    }
    components = {}
    for name, cls in classes.items():
        torch.manual_seed(0)
        module = cls(**config[name]).eval()
        _randomize_latent_statistics(module, name)
        components[name] = module
    return components


def _randomize_latent_statistics(module, name: str) -> None:
    """Fresh VAEs have mean 0 / std 1 statistics, which would hide (de)normalization bugs: give them real values."""
    import torch

    if name not in ("vae", "audio_vae"):
        return
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        module.latents_mean.copy_(torch.randn(module.latents_mean.shape, generator=generator) * 0.1)
        module.latents_std.copy_(torch.rand(module.latents_std.shape, generator=generator) * 0.5 + 0.75)


def build_upsampler(config: dict | None = None):
    import torch
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    config = tiny_config() if config is None else config
    torch.manual_seed(0)
    return LTX2LatentUpsamplerModel(**config["latent_upsampler"]).eval()


def build_text_encoder(config: dict | None = None):
    """A tiny Gemma 3 (the real class) and an offline tokenizer; returns (model, tokenizer)."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    config = tiny_config() if config is None else config
    te = dict(config["text_encoder"])
    gemma_config = Gemma3Config(**te)
    torch.manual_seed(0)
    model = Gemma3ForConditionalGeneration(gemma_config).eval()
    return model, build_tokenizer(config)


def build_tokenizer(config: dict | None = None):
    """A Gemma tokenizer over a small word vocabulary plus single letters, so any text tokenizes offline."""
    from transformers import GemmaTokenizer

    config = tiny_config() if config is None else config
    vocab: dict[str, int] = {}
    for token in ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]:
        vocab[token] = len(vocab)
    for word in config["tokenizer_words"]:
        vocab.setdefault("\u2581" + word, len(vocab))
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(letter, len(vocab))
        vocab.setdefault("\u2581" + letter, len(vocab))
    tokenizer = GemmaTokenizer(vocab=vocab, merges=[])
    tokenizer.model_max_length = int(config["family"]["max_sequence_length"])
    return tokenizer


def write_models_dir(models_dir: str | os.PathLike, config: dict | None = None) -> dict[str, Path]:
    """Write the tiny model into a ComfyUI models-folder layout under the real file names; returns the paths."""
    from .loading import save_checkpoint

    config = tiny_config() if config is None else config
    models_dir = Path(models_dir)
    written: dict[str, Path] = {}
    components = build_components(config)
    for variant, name in CHECKPOINT_NAMES.items():
        path = models_dir / "checkpoints" / name
        metadata = {"l2a_tiny": json.dumps(config), "l2a_variant": variant, "model_version": "2.0.0-tiny"}
        save_checkpoint(path, components, metadata)
        written[f"checkpoint_{variant}"] = path
    te_dir = models_dir / "text_encoders" / TEXT_ENCODER_NAME
    model, tokenizer = build_text_encoder(config)
    _atomic_dir_write(te_dir, lambda tmp: (model.save_pretrained(tmp), tokenizer.save_pretrained(tmp)))
    written["text_encoder"] = te_dir
    written["upsampler"] = write_tiny_upsampler(models_dir, config)
    written.update(write_tiny_loras(models_dir, config))
    written["text_encoder_file"] = write_tiny_gemma_file(models_dir, config)
    return written


def write_tiny_loras(models_dir: str | os.PathLike, config: dict | None = None) -> dict[str, Path]:
    """Random LoRAs that fit the tiny model, under the official file names in models_dir/loras.

    One per camera preset (attention q/k/v/out, rank 4) and the distilled LoRA (also the feed-forwards and the
    connectors' text projection, rank 8), each with its own seed, in the official trainer key format.
    """
    from .lora import CAMERA_LORAS, DISTILLED_LORA, meta_modules, random_lora, save_lora

    config = tiny_config() if config is None else config
    folder = Path(models_dir) / "loras"
    modules = meta_modules(config)
    attention = r"^transformer\..*\.(to_q|to_k|to_v|to_out\.0)$"
    written: dict[str, Path] = {}
    for seed, (preset, (_repo, name)) in enumerate(CAMERA_LORAS.items(), start=1000):
        written[f"lora_{preset}"] = save_lora(folder / name, random_lora(modules, attention, 4, seed))
    distilled = r"^transformer\..*\.(to_q|to_k|to_v|to_out\.0|net\.0\.proj|net\.2)$|^connectors\.text_proj_in$"
    written["lora_distilled"] = save_lora(folder / DISTILLED_LORA, random_lora(modules, distilled, 8, 2000))
    return written


def _atomic_dir_write(target: Path, write) -> None:
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


def ensure_cached(config: dict | None = None) -> Path:
    """The tiny models folder in the user cache, written once per config."""
    config = tiny_config() if config is None else config
    root = cache_root() / f"tiny-{config_hash(config)}"
    marker = root / ".complete"
    if not marker.exists():
        write_models_dir(root, config)
        marker.write_text(config_hash(config))
    return root


def write_tiny_upsampler(models_dir: str | os.PathLike, config: dict | None = None) -> Path:
    """The tiny x2 latent upsampler under the official file name in `latent_upscale_models/`."""
    from .upsampler import UPSAMPLER_FILE, save_upsampler

    config = tiny_config() if config is None else config
    path = Path(models_dir) / "latent_upscale_models" / UPSAMPLER_FILE
    return save_upsampler(path, build_upsampler(config), {"l2a_tiny": json.dumps(config)})


def build_spiece_model(config: dict | None = None) -> bytes:
    """A real SentencePiece BPE model (proto bytes) for the tiny vocabulary, laid out like Gemma's tokenizer.model.

    Gemma's special ids (pad 0, eos 1, bos 2, unk 3, mask 4), the turn markers, 256 byte-fallback pieces, then
    "\u2581", the letters and every prefix of the prompt words, scored so BPE builds each word letter by letter.
    All ids stay below the tiny model's image token ids, so text never looks like an image.
    """
    from .gemma_single_file import BYTE, CONTROL, NORMAL, UNKNOWN, USER_DEFINED, Piece, encode_spiece

    config = tiny_config() if config is None else config
    pieces = [Piece(name, 0.0, CONTROL) for name in ("<pad>", "<eos>", "<bos>")]
    pieces += [Piece("<unk>", 0.0, UNKNOWN), Piece("<mask>", 0.0, CONTROL)]
    pieces += [Piece(name, 0.0, USER_DEFINED) for name in ("<start_of_turn>", "<end_of_turn>")]
    pieces += [Piece(f"<0x{byte:02X}>", 0.0, BYTE) for byte in range(256)]
    normal = ["\u2581", *"abcdefghijklmnopqrstuvwxyz"]
    for word in config["tokenizer_words"]:
        normal += ["\u2581" + word[:end] for end in range(1, len(word) + 1)]
    normal = list(dict.fromkeys(normal))
    pieces += [Piece(name, -float(rank), NORMAL) for rank, name in enumerate(normal)]
    if len(pieces) > int(config["text_encoder"]["boi_token_index"]):
        raise ValueError(f"tiny tokenizer has {len(pieces)} pieces, more than the image token ids allow")
    return encode_spiece(pieces, unk_id=3, bos_id=2, eos_id=1, pad_id=0)


def write_tiny_gemma_file(models_dir: str | os.PathLike, config: dict | None = None) -> Path:
    """The tiny Gemma (same weights as the folder) as ComfyUI's single file, in `text_encoders/`."""
    from .gemma_single_file import COMFY_FILE, MAX_LENGTH_METADATA, save_gemma_file

    config = tiny_config() if config is None else config
    model, _ = build_text_encoder(config)
    metadata = {MAX_LENGTH_METADATA: str(config["family"]["max_sequence_length"])}
    return save_gemma_file(Path(models_dir) / "text_encoders" / COMFY_FILE, model, build_spiece_model(config), metadata)
