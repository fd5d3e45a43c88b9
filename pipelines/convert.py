"""Key renames between the official Lightricks all-in-one checkpoint and the diffusers modules, both directions.

The official file (`ltx-2-19b-dev.safetensors`, `ltx-2.3-22b-dev.safetensors`) holds every component except Gemma
under one key space; diffusers splits it into five modules with different names. diffusers 0.42.1 converts only the
transformer and the VAEs itself (and mis-detects LTX-2 files as LTX-Video), so the pack owns the whole table: the
facts come from diffusers' `single_file_utils.convert_ltx2_*` and `scripts/convert_ltx2_to_diffusers.py`.

Renames work on whole dot-separated segments, so each rule has an exact inverse and a diffusers -> official ->
diffusers round trip is the identity. One table serves 2.0 and 2.3: the 2.3-only names never occur in a 2.0 file.
Only key names are handled here; tensors pass through untouched (apart from the statistics the official VAE stores
and diffusers drops, which are synthesized when writing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

COMPONENTS = ("transformer", "connectors", "vae", "audio_vae", "vocoder")

TRANSFORMER_PREFIX = "model.diffusion_model."
CONNECTOR_ROOTS = ("video_embeddings_connector", "audio_embeddings_connector", "text_embedding_projection")
PREFIXES = {"vae": "vae.", "audio_vae": "audio_vae.", "vocoder": "vocoder."}

_TRANSFORMER_SEGMENTS = {
    "patchify_proj": "proj_in",
    "audio_patchify_proj": "audio_proj_in",
    "adaln_single": "time_embed",
    "audio_adaln_single": "audio_time_embed",
    "prompt_adaln_single": "prompt_adaln",  # 2.3
    "audio_prompt_adaln_single": "audio_prompt_adaln",  # 2.3
    "av_ca_video_scale_shift_adaln_single": "av_cross_attn_video_scale_shift",
    "av_ca_a2v_gate_adaln_single": "av_cross_attn_video_a2v_gate",
    "av_ca_audio_scale_shift_adaln_single": "av_cross_attn_audio_scale_shift",
    "av_ca_v2a_gate_adaln_single": "av_cross_attn_audio_v2a_gate",
    "scale_shift_table_a2v_ca_video": "video_a2v_cross_attn_scale_shift_table",
    "scale_shift_table_a2v_ca_audio": "audio_a2v_cross_attn_scale_shift_table",
    "q_norm": "norm_q",
    "k_norm": "norm_k",
}
_CONNECTOR_SEGMENTS = {"transformer_1d_blocks": "transformer_blocks", "q_norm": "norm_q", "k_norm": "norm_k"}
_CONNECTOR_ROOTS = {
    "video_embeddings_connector": "video_connector",
    "audio_embeddings_connector": "audio_connector",
    "text_embedding_projection.aggregate_embed": "text_proj_in",  # 2.0: one projection for both modalities
    "text_embedding_projection.video_aggregate_embed": "video_text_proj_in",  # 2.3: per-modality projections
    "text_embedding_projection.audio_aggregate_embed": "audio_text_proj_in",
}
_VOCODER_SEGMENTS = {
    "ups": "upsamplers",
    "resblocks": "resnets",
    "conv_pre": "conv_in",
    "conv_post": "conv_out",
    "act_post": "act_out",  # 2.3 anti-aliased activations
}
_VAE_SEGMENTS = {"res_blocks": "resnets"}
_VAE_DECODER_TOP = {"last_time_embedder": "time_embedder", "last_scale_shift_table": "scale_shift_table"}
_STATISTICS = {"mean-of-means": "latents_mean", "std-of-means": "latents_std"}
# Present in the official video VAE, unused by diffusers (dropped on load, synthesized on save).
VAE_EXTRA_STATISTICS = ("mean-of-stds", "mean-of-stds_over_std-of-means", "channel")


def _invert(table: Mapping[str, str]) -> dict[str, str]:
    return {v: k for k, v in table.items()}


def _rename_segments(key: str, table: Mapping[str, str]) -> str:
    return ".".join(table.get(part, part) for part in key.split("."))


def component_of(key: str) -> str | None:
    """Which diffusers component an official key belongs to (None: not part of an LTX-2 model)."""
    if key.startswith(TRANSFORMER_PREFIX):
        root = key[len(TRANSFORMER_PREFIX) :].split(".", 1)[0]
        return "connectors" if root in CONNECTOR_ROOTS else "transformer"
    if key.startswith("text_embedding_projection."):
        return "connectors"
    for name, prefix in PREFIXES.items():
        if key.startswith(prefix):
            return name
    return None


# ---- official -> diffusers ---------------------------------------------------------------------------------------


def _transformer_to_diffusers(key: str) -> str:
    return _rename_segments(key[len(TRANSFORMER_PREFIX) :], _TRANSFORMER_SEGMENTS)


def _connector_to_diffusers(key: str) -> str:
    key = key.removeprefix(TRANSFORMER_PREFIX)
    for official, diffusers in _CONNECTOR_ROOTS.items():
        if key.startswith(official + "."):
            return diffusers + "." + _rename_segments(key[len(official) + 1 :], _CONNECTOR_SEGMENTS)
    raise KeyError(f"unknown text connector key {key!r}")


def _statistics_to_diffusers(key: str) -> str | None:
    name = key.removeprefix("per_channel_statistics.")
    return _STATISTICS.get(name)


def _vae_to_diffusers(key: str, encoder_mid_index: int) -> str | None:
    parts = key.split(".")
    if parts[0] == "per_channel_statistics":
        return _statistics_to_diffusers(key)
    if parts[0] == "encoder" and len(parts) > 2 and parts[1] == "down_blocks":
        index = int(parts[2])
        if index == encoder_mid_index:
            head = ["mid_block"]
        elif index % 2 == 0:
            head = ["down_blocks", str(index // 2)]
        else:
            head = ["down_blocks", str(index // 2), "downsamplers", "0"]
        parts = ["encoder", *head, *parts[3:]]
    elif parts[0] == "decoder" and len(parts) > 2 and parts[1] == "up_blocks":
        index = int(parts[2])
        if index == 0:
            head = ["mid_block"]
        elif index % 2 == 1:
            head = ["up_blocks", str((index - 1) // 2), "upsamplers", "0"]
        else:
            head = ["up_blocks", str(index // 2 - 1)]
        parts = ["decoder", *head, *parts[3:]]
    elif parts[0] == "decoder" and len(parts) > 1 and parts[1] in _VAE_DECODER_TOP:
        parts = ["decoder", _VAE_DECODER_TOP[parts[1]], *parts[2:]]
    return _rename_segments(".".join(parts), _VAE_SEGMENTS)


def _vocoder_to_diffusers(key: str) -> str:
    parts = key.split(".")
    out: list[str] = []
    for i, part in enumerate(parts):
        if part == "lowpass" and i > 0 and parts[i - 1] == "downsample":
            continue  # 2.3: "downsample.lowpass.filter" -> "downsample.filter"
        out.append(_VOCODER_SEGMENTS.get(part, part))
    return ".".join(out)


def _encoder_mid_index(keys: Iterable[str]) -> int:
    """The official encoder numbers blocks and downsamplers in one list; its last entry is the mid block."""
    indices = [int(k.split(".")[3]) for k in keys if k.startswith("vae.encoder.down_blocks.")]
    return max(indices, default=-1)


def official_key_map(keys: Iterable[str]) -> dict[str, tuple[str, str] | None]:
    """Map every official key to (component, diffusers key); None for keys diffusers does not use.

    Works on names only, so a loader can decide what to read before touching a tensor.
    """
    keys = list(keys)
    mid = _encoder_mid_index(keys)
    mapping: dict[str, tuple[str, str] | None] = {}
    for key in keys:
        component = component_of(key)
        if component == "transformer":
            mapping[key] = (component, _transformer_to_diffusers(key))
        elif component == "connectors":
            mapping[key] = (component, _connector_to_diffusers(key))
        elif component == "vae":
            new = _vae_to_diffusers(key[len("vae.") :], mid)
            mapping[key] = None if new is None else (component, new)
        elif component == "audio_vae":
            rest = key[len("audio_vae.") :]
            new = _statistics_to_diffusers(rest) if rest.startswith("per_channel_statistics.") else rest
            mapping[key] = None if new is None else (component, new)
        elif component == "vocoder":
            mapping[key] = (component, _vocoder_to_diffusers(key[len("vocoder.") :]))
        else:
            mapping[key] = None
    return mapping


def official_to_diffusers(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Split an official state dict into diffusers state dicts, one per component present."""
    out: dict[str, dict[str, Any]] = {}
    for key, target in official_key_map(state).items():
        if target is not None:
            component, new_key = target
            out.setdefault(component, {})[new_key] = state[key]
    return out


# ---- diffusers -> official ---------------------------------------------------------------------------------------

_TRANSFORMER_BACK = _invert(_TRANSFORMER_SEGMENTS)
_CONNECTOR_BACK = _invert(_CONNECTOR_SEGMENTS)
_CONNECTOR_ROOTS_BACK = _invert(_CONNECTOR_ROOTS)
_VOCODER_BACK = _invert(_VOCODER_SEGMENTS)
_VAE_BACK = _invert(_VAE_SEGMENTS)
_VAE_DECODER_TOP_BACK = _invert(_VAE_DECODER_TOP)
_STATISTICS_BACK = _invert(_STATISTICS)


def _transformer_to_official(key: str) -> str:
    return TRANSFORMER_PREFIX + _rename_segments(key, _TRANSFORMER_BACK)


def _connector_to_official(key: str) -> str:
    root, rest = key.split(".", 1)
    official = _CONNECTOR_ROOTS_BACK[root]
    prefix = "" if official.startswith("text_embedding_projection.") else TRANSFORMER_PREFIX
    return f"{prefix}{official}.{_rename_segments(rest, _CONNECTOR_BACK)}"


def _vae_to_official(key: str, num_down_blocks: int) -> str:
    if key in _STATISTICS_BACK:
        return f"vae.per_channel_statistics.{_STATISTICS_BACK[key]}"
    parts = key.split(".")
    if parts[0] == "encoder" and parts[1] == "mid_block":
        parts = ["encoder", "down_blocks", str(2 * num_down_blocks), *parts[2:]]
    elif parts[0] == "encoder" and parts[1] == "down_blocks":
        index = int(parts[2])
        if parts[3:5] == ["downsamplers", "0"]:
            parts = ["encoder", "down_blocks", str(2 * index + 1), *parts[5:]]
        else:
            parts = ["encoder", "down_blocks", str(2 * index), *parts[3:]]
    elif parts[0] == "decoder" and parts[1] == "mid_block":
        parts = ["decoder", "up_blocks", "0", *parts[2:]]
    elif parts[0] == "decoder" and parts[1] == "up_blocks":
        index = int(parts[2])
        if parts[3:5] == ["upsamplers", "0"]:
            parts = ["decoder", "up_blocks", str(2 * index + 1), *parts[5:]]
        else:
            parts = ["decoder", "up_blocks", str(2 * index + 2), *parts[3:]]
    elif parts[0] == "decoder" and parts[1] in _VAE_DECODER_TOP_BACK:
        parts = ["decoder", _VAE_DECODER_TOP_BACK[parts[1]], *parts[2:]]
    return "vae." + _rename_segments(".".join(parts), _VAE_BACK)


def _audio_vae_to_official(key: str) -> str:
    if key in _STATISTICS_BACK:
        return f"audio_vae.per_channel_statistics.{_STATISTICS_BACK[key]}"
    return "audio_vae." + key


def _vocoder_to_official(key: str) -> str:
    parts = key.split(".")
    out: list[str] = []
    for i, part in enumerate(parts):
        out.append(_VOCODER_BACK.get(part, part))
        if part == "downsample" and parts[i + 1 : i + 2] == ["filter"]:
            out.append("lowpass")
    return "vocoder." + ".".join(out)


def diffusers_key_map(component: str, keys: Iterable[str]) -> dict[str, str]:
    """Map the diffusers keys of one component to official keys."""
    keys = list(keys)
    if component == "transformer":
        return {k: _transformer_to_official(k) for k in keys}
    if component == "connectors":
        return {k: _connector_to_official(k) for k in keys}
    if component == "vae":
        blocks = {int(k.split(".")[2]) for k in keys if k.startswith("encoder.down_blocks.")}
        return {k: _vae_to_official(k, len(blocks)) for k in keys}
    if component == "audio_vae":
        return {k: _audio_vae_to_official(k) for k in keys}
    if component == "vocoder":
        return {k: _vocoder_to_official(k) for k in keys}
    raise KeyError(f"unknown component {component!r}; expected one of {', '.join(COMPONENTS)}")


def _vae_extra_statistics(latents_mean, latents_std) -> dict[str, Any]:
    """Plausible values for the statistics diffusers drops, so a written file has the real key set."""
    import torch

    mean_of_stds = torch.ones_like(latents_std)
    return {
        "vae.per_channel_statistics.mean-of-stds": mean_of_stds,
        "vae.per_channel_statistics.mean-of-stds_over_std-of-means": mean_of_stds / latents_std,
        "vae.per_channel_statistics.channel": torch.arange(
            latents_mean.shape[0], dtype=latents_mean.dtype, device=latents_mean.device
        ),
    }


def diffusers_to_official(states: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge diffusers state dicts (by component name) into one official all-in-one state dict."""
    out: dict[str, Any] = {}
    for component, state in states.items():
        for key, new_key in diffusers_key_map(component, state).items():
            if new_key in out:
                raise KeyError(f"{component} key {key!r} collides with {new_key!r}")
            out[new_key] = state[key]
        if component == "vae" and "latents_mean" in state:
            out.update(_vae_extra_statistics(state["latents_mean"], state["latents_std"]))
    return out
