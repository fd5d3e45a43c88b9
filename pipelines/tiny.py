"""Deterministic tiny random-weight stand-ins of the LTX-2 families, built from the real diffusers classes.

They stand in for the 19B / 22B weights in tests, the demo and CI: same classes, same behaviour flags (2.3: gated
attention, cross-attention modulation, prompt AdaLN, per-modality text projections, the BWE vocoder at 48 kHz; 2.5:
no video FFN biases, the keyframe embedding, a Gemma 4 "unified" encoder holding the text projection), same on-disk
layouts under the official file names and ComfyUI folders of their family record (all-in-one checkpoints, a Gemma 3
transformers folder and ComfyUI's single file; for 2.5 the split release: transformer files, the video VAE and
audio VAE files, the Gemma 4 encoder file; the latent upsampler, the distilled, camera and IC-LoRAs), real geometry.
Nothing is downloaded; the files are cached in the user cache folder keyed by the configs.

This module stands above loading, LoRAs, upsampler and the Gemma writer: it uses them, nothing below imports it.
A tiny file says what it is in its own metadata (`l2a_tiny`: its configs; `model_version`: its generation).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .diffusion_decoder import CONV_CLASS
from .families import Family, family, recognise
from .text_projection import in_text_encoder

# Part of the cache key: bump it whenever write_models_dir writes other files, so old caches are not reused.
LAYOUT_VERSION = 6


def tiny_family(name: str = "2.0") -> Family:
    return family(name, tiny=True)


def tiny_config(name: str = "2.0") -> dict:
    return tiny_family(name).config()


def _metadata(tiny: Family, config: dict) -> dict[str, str]:
    return {"l2a_tiny": json.dumps(config), "model_version": f"{tiny.name}.0-tiny"}


def _transformer_metadata(tiny: Family, config: dict, variant: str) -> dict[str, str]:
    """A checkpoint's metadata; a family whose encoder declares a version gets it named as the official transformer
    files name it (`gemma_source_checkpoint`)."""
    metadata = {**_metadata(tiny, config), "l2a_variant": variant}
    if tiny.text_encoder.version:
        metadata["gemma_source_checkpoint"] = json.dumps({"gemma_version": tiny.text_encoder.version})
    return metadata


def config_hash(tiny: Family) -> str:
    keyed = {"family": tiny.key, "config": tiny.config(), "layout": LAYOUT_VERSION}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]


def cache_root() -> Path:
    base = os.environ.get("LTX2_ANYWHERE_CACHE") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ltx2-anywhere"


def build_components(config: dict) -> dict:
    """The model components (no text encoder), each seeded so the weights never change between runs."""
    import torch

    from .loading import component_classes

    components = {}
    for name, cls in component_classes(config.get("vocoder_class", "LTX2Vocoder")).items():
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


def build_upsampler(config: dict):
    import torch
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    torch.manual_seed(0)
    return LTX2LatentUpsamplerModel(**config["latent_upsampler"]).eval()


def build_text_encoder(config: dict, max_length: int):
    """A tiny Gemma (the real class: Gemma 3, or Gemma 4 unified for 2.5) and an offline tokenizer; returns (model,
    tokenizer)."""
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma4UnifiedConfig,
        Gemma4UnifiedForConditionalGeneration,
    )

    torch.manual_seed(0)
    if in_text_encoder(config):
        model = Gemma4UnifiedForConditionalGeneration(Gemma4UnifiedConfig(**config["text_encoder"])).eval()
        return model, build_tokenizer(config, max_length, bos=False)
    model = Gemma3ForConditionalGeneration(Gemma3Config(**config["text_encoder"])).eval()
    return model, build_tokenizer(config, max_length)


def build_tokenizer(config: dict, max_length: int, bos: bool = True):
    """A Gemma tokenizer over a small word vocabulary plus single letters, so any text tokenizes offline. Like the
    real ones, Gemma 3's adds a BOS and Gemma 4's (`bos=False`) does not."""
    from transformers import GemmaTokenizer

    vocab: dict[str, int] = {}
    for token in ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]:
        vocab[token] = len(vocab)
    for word in config["tokenizer_words"]:
        vocab.setdefault("\u2581" + word, len(vocab))
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(letter, len(vocab))
        vocab.setdefault("\u2581" + letter, len(vocab))
    tokenizer = GemmaTokenizer(vocab=vocab, merges=[], add_bos_token=bos)
    tokenizer.model_max_length = int(max_length)
    return tokenizer


def gemma4_tokenizer(config: dict, max_length: int):
    """(tokenizer.json bytes, tokenizer_config) of the tiny Gemma 4 tokenizer, as LTX-2.5's encoder file embeds them:
    no BOS post-processor, like Gemma 4's."""
    tokenizer = build_tokenizer(config, max_length, bos=False)
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    data["post_processor"] = None
    specials = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
                "mask_token": "<mask>", "padding_side": "left", "model_max_length": int(max_length)}
    return json.dumps(data).encode(), specials


def _check_flags(tiny: Family, config: dict) -> None:
    """A tiny config must behave like its generation: the record's audio format and every behaviour flag its
    diffusers configs are recognised by."""
    rate = int(config["vocoder"].get("output_sampling_rate", 0))
    if rate != tiny.audio.sample_rate:
        raise ValueError(f"{tiny.label}: the vocoder writes {rate} Hz, but {tiny.name} is {tiny.audio.describe()}")
    view = {**config, "vocoder": {**config["vocoder"], "_class_name": config.get("vocoder_class", "LTX2Vocoder")}}
    missing = [f"{component}.{key} = {value!r}" for component, key, value in tiny.recognition.config_markers
               if view.get(component, {}).get(key) != value]
    if missing or recognise(configs=view).name != tiny.name:
        raise ValueError(f"{tiny.label}: its configs lack {', '.join(missing) or 'the marks'} of {tiny.name}")
    if in_text_encoder(config) != tiny.text_encoder.projection:
        raise ValueError(f"{tiny.label}: its configs disagree with its record on where the text projection lives")


def write_models_dir(models_dir: str | os.PathLike, name: str = "2.0") -> dict[str, Path]:
    """Write a tiny family's full set into a ComfyUI models-folder layout under the official file names and folders
    of its record; returns the paths by role (checkpoint_dev, text_encoder, upsampler, lora_distilled, ...; a split
    family adds part_vae, part_audio_vae; LTX-2.5 its extras: duration_head, diffusion_decoder, prompt_enhancer)."""
    from .loading import PART_COMPONENTS, save_checkpoint, save_part
    from .upsampler import save_upsampler

    tiny = tiny_family(name)
    config = tiny.config()
    _check_flags(tiny, config)
    models_dir = Path(models_dir)
    written: dict[str, Path] = {}
    components = build_components(config)
    names = ("transformer", "connectors") if tiny.split else tuple(components)
    for variant, file in tiny.checkpoints.items():
        path = models_dir / file.folder / file.name
        save_checkpoint(path, components, _transformer_metadata(tiny, config, variant), names)
        written[f"checkpoint_{variant}"] = path
    for part, file in tiny.parts.items():
        metadata = _metadata(tiny, config)
        if "vae" in PART_COMPONENTS[part]:
            metadata["config"] = json.dumps({"vae": {"_class_name": CONV_CLASS}})
        written[f"part_{part}"] = save_part(models_dir / file.folder / file.name, part, components, metadata)
    written.update(_write_extras(models_dir, tiny, components))
    written.update(_write_text_encoder(models_dir, tiny, config, components))
    upsampler = tiny.upsampler
    written["upsampler"] = save_upsampler(models_dir / upsampler.folder / upsampler.name, build_upsampler(config),
                                          {**_metadata(tiny, config), "config": json.dumps(_upsampler_metadata(config))})
    written.update(write_tiny_loras(models_dir, name, config))
    return written


def _write_extras(models_dir: Path, tiny: Family, components: dict) -> dict[str, Path]:
    """A family's optional files (LTX-2.5): the duration head, the diffusion-decoder video VAE (the tiny VAE's
    encoder and latent statistics, as the official file shares them with the conv one) and the Gemma 4 E2B prompt
    enhancer's transformers folder."""
    if not tiny.extras:
        return {}
    from . import convert
    from .prompt_expansion import ENHANCER_FOLDER
    from .tiny_extras import write_diffusion_vae, write_duration_head, write_enhancer

    head, decoder = tiny.extras["duration_head"], tiny.extras["diffusion_decoder"]
    vae = components["vae"]
    official = convert.diffusers_to_official({"vae": vae.state_dict()})
    encoder = {key.removeprefix("vae."): tensor for key, tensor in official.items()
               if key.startswith("vae.encoder.")}
    return {
        "duration_head": write_duration_head(models_dir / head.folder / head.name),
        "diffusion_decoder": write_diffusion_vae(models_dir / decoder.folder / decoder.name, encoder,
                                                 statistics=(vae.latents_mean, vae.latents_std)),
        "prompt_enhancer": write_enhancer(models_dir / "text_encoders" / ENHANCER_FOLDER),
    }


def _upsampler_metadata(config: dict) -> dict:
    """The official upsampler file's `config` metadata (ltx-core LatentUpsamplerConfigurator) of a diffusers config."""
    ups = config["latent_upsampler"]
    return {"in_channels": ups["in_channels"], "mid_channels": ups["mid_channels"],
            "num_blocks_per_stage": ups["num_blocks_per_stage"], "dims": ups["dims"],
            "spatial_upsample": ups["spatial_upsample"], "temporal_upsample": ups["temporal_upsample"],
            "spatial_scale": ups["rational_spatial_scale"], "rational_resampler": ups["use_rational_resampler"]}


def _write_text_encoder(models_dir: Path, tiny: Family, config: dict, components: dict) -> dict[str, Path]:
    """The family's text encoder files: Gemma 3 as a transformers folder and ComfyUI's single file, or LTX-2.5's
    Gemma 4 single file with the text projection of `components`' connectors."""
    from .gemma4_encoder import save_gemma4_file
    from .gemma_single_file import save_gemma_file
    from .tiny_extras import atomic_dir_write

    model, tokenizer = build_text_encoder(config, tiny.max_sequence_length)
    if tiny.text_encoder.projection:
        file = tiny.text_encoder.single_files[0]
        tokenizer_json, tokenizer_config = gemma4_tokenizer(config, tiny.max_sequence_length)
        path = save_gemma4_file(models_dir / file.folder / file.name, model, projection_of(components["connectors"]),
                                tokenizer_json, tokenizer_config, _gemma_metadata(tiny))
        return {"text_encoder": path}
    folder = tiny.text_encoder.folder
    atomic_dir_write(models_dir / folder.folder / folder.name,
                     lambda tmp: (model.save_pretrained(tmp), tokenizer.save_pretrained(tmp)))
    single = tiny.text_encoder.single_files[0]
    return {
        "text_encoder": models_dir / folder.folder / folder.name,
        "text_encoder_file": save_gemma_file(models_dir / single.folder / single.name, model, build_spiece_model(config),
                                             _gemma_metadata(tiny)),
    }


def projection_of(connectors) -> dict:
    """The text projection layers of a full LTX2TextConnectors, by modality."""
    from .text_projection import CONNECTOR_LAYERS

    return {modality: getattr(connectors, layer) for modality, layer in CONNECTOR_LAYERS.items()}


def write_diffusers_folder(path: str | os.PathLike, name: str = "2.5") -> Path:
    """A tiny family in its diffusers layout; for 2.5 the LTX-2.5-Diffusers one: the distilled transformer in
    transformer/, the dev one in transformer_full/ (the same tiny weights), the Gemma 4 encoder in text_encoder/ and
    tokenizer/, the text projection inside connectors/, and the duration_head/ and diffusion_decoder/ folders."""
    from transformers import PreTrainedTokenizerFast

    from .loading import save_diffusers_folder

    tiny = tiny_family(name)
    config = tiny.config()
    components = build_components(config)
    model, _ = build_text_encoder(config, tiny.max_sequence_length)
    scheduler = {**config["scheduler"], "use_dynamic_shifting": False, "shift_terminal": None}

    def text_encoder(folder: Path) -> dict:
        from tokenizers import Tokenizer

        model.save_pretrained(folder / "text_encoder")
        tokenizer_json, tokenizer_config = gemma4_tokenizer(config, tiny.max_sequence_length)
        PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer_json.decode()),
                                **tokenizer_config).save_pretrained(folder / "tokenizer")
        if tiny.extras:
            from .tiny_extras import build_diffusion_decoder, build_duration_head

            build_duration_head().save_pretrained(folder / "duration_head")
            build_diffusion_decoder().save_pretrained(folder / "diffusion_decoder")
        return {"text_encoder": ["transformers", type(model).__name__],
                "tokenizer": ["transformers", "PreTrainedTokenizerFast"]}

    return save_diffusers_folder(path, components, scheduler, dev_transformer=components["transformer"],
                                 extra=text_encoder)


def write_tiny_loras(models_dir: str | os.PathLike, name: str = "2.0", config: dict | None = None) -> dict[str, Path]:
    """Random LoRAs that fit a tiny family, under its record's official file names and folder.

    One per camera preset of the family (attention q/k/v/out, rank 4), one per official IC-LoRA (the same layers,
    with the `reference_downscale_factor` metadata ltx-trainer writes: 2 for "-ref0.5" files, else 1; and the tiny
    marker, as their metadata's order is not fixed from one write to the next) and the
    distilled LoRA (also the feed-forwards and the connectors' text projections, rank 8), each with its own seed, in
    the official trainer key format.
    """
    from .lora import meta_modules, random_lora, save_lora

    tiny = tiny_family(name)
    config = tiny.config() if config is None else config
    models_dir = Path(models_dir)
    modules = meta_modules(config)
    attention = r"^transformer\..*\.(to_q|to_k|to_v|to_out\.0)$"
    written: dict[str, Path] = {}
    for seed, (preset, file) in enumerate(tiny.camera_loras.items(), start=1000):
        written[f"lora_{preset}"] = save_lora(models_dir / file.folder / file.name, random_lora(modules, attention, 4,
                                                                                                 seed))
    for seed, (kind, file) in enumerate(tiny.ic_loras.items(), start=3000):
        scale = "2" if "ref0.5" in file.name else "1"
        written[f"ic_lora_{kind}"] = save_lora(models_dir / file.folder / file.name,
                                               random_lora(modules, attention, 4, seed),
                                               {**_metadata(tiny, config), "reference_downscale_factor": scale})
    distilled = (r"^transformer\..*\.(to_q|to_k|to_v|to_out\.0|net\.0\.proj|net\.2)$"
                 r"|^connectors\.(video_|audio_)?text_proj_in$")
    file = tiny.distilled_lora
    written["lora_distilled"] = save_lora(models_dir / file.folder / file.name, random_lora(modules, distilled, 8, 2000))
    return written


def ensure_cached(name: str = "2.0") -> Path:
    """A tiny family's models folder in the user cache, written once per config."""
    tiny = tiny_family(name)
    root = cache_root() / f"tiny-{tiny.name}-{config_hash(tiny)}"
    marker = root / ".complete"
    if not marker.exists():
        write_models_dir(root, name)
        marker.write_text(config_hash(tiny))
    return root


def _gemma_metadata(tiny: Family) -> dict[str, str]:
    from .gemma_single_file import MAX_LENGTH_METADATA

    return {MAX_LENGTH_METADATA: str(tiny.max_sequence_length)}


def build_spiece_model(config: dict) -> bytes:
    """A real SentencePiece BPE model (proto bytes) for the tiny vocabulary, laid out like Gemma's tokenizer.model.

    Gemma's special ids (pad 0, eos 1, bos 2, unk 3, mask 4), the turn markers, 256 byte-fallback pieces, then
    "\u2581", the letters and every prefix of the prompt words, scored so BPE builds each word letter by letter.
    All ids stay below the tiny model's image token ids, so text never looks like an image.
    """
    from .gemma_single_file import BYTE, CONTROL, NORMAL, UNKNOWN, USER_DEFINED, Piece, encode_spiece

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
