"""The LTX text projection where LTX-2.5 keeps it: in the text encoder's file, not the model's.

LTX-2.3 and LTX-2.5 turn Gemma's stacked hidden states into the connectors' inputs the same way (ltx-core
`FeatureExtractorV2`, diffusers `LTX2TextConnectors` with per-modality projections): a per-token RMS norm over each
layer's features, padding zeroed, a rescale by sqrt(modality width / Gemma width), then one linear projection per
modality. LTX-2.3's checkpoint holds those projections, so they belong to the model and run in the sampler; LTX-2.5
ships them inside the text encoder file (`text_embedding_projection.{video,audio}_aggregate_embed.*`), so they
travel with the text encoder and the conditioning carries projected features (a 30th of the size). The sampler then
runs only the connectors' transformers (`connect`), the same computation `LTX2TextConnectors.forward` does after its
projections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Per modality: the official key prefix (checkpoint and text-encoder files) and the diffusers module name.
OFFICIAL_KEYS = {"video": "text_embedding_projection.video_aggregate_embed",
                 "audio": "text_embedding_projection.audio_aggregate_embed"}
CONNECTOR_LAYERS = {"video": "video_text_proj_in", "audio": "audio_text_proj_in"}
CONFIG_FLAG = "text_projection_in_encoder"  # a family config whose text projection is the text encoder's


def in_text_encoder(config: Mapping[str, Any]) -> bool:
    """Whether a model config's text projection lives in the text encoder (LTX-2.5) instead of the model."""
    return bool(config.get(CONFIG_FLAG))


def empty_projection(caption_channels: int, layers: int, widths: Mapping[str, int], bias: bool = True):
    """The two projections (video, audio) with parameters on the meta device, ready for load_state_dict."""
    import torch

    from .weights import parameters_on_meta

    with parameters_on_meta():
        return torch.nn.ModuleDict({name: torch.nn.Linear(caption_channels * layers, width, bias=bias)
                                    for name, width in widths.items()})


def without_projection(connectors):
    """An LTX2TextConnectors without its projection layers (they are the text encoder's): only `connect` runs it."""
    for name in CONNECTOR_LAYERS.values():
        if hasattr(connectors, name):
            delattr(connectors, name)
    return connectors


def project(projection, hidden_states, mask, caption_channels: int):
    """Stacked hidden states [B, L, caption_channels * layers] -> projected features [B, L, video + audio width],
    video first (diffusers `LTX2TextConnectors.forward`, per-modality branch)."""
    import math

    import torch
    from diffusers.pipelines.ltx2.connectors import per_token_rms_norm

    states = hidden_states.unflatten(2, (caption_channels, -1))
    normed = per_token_rms_norm(states).flatten(2, 3)
    normed = torch.where(mask.bool().unsqueeze(-1), normed, torch.zeros_like(normed))
    outputs = []
    for name in CONNECTOR_LAYERS:  # in the encoder's compute dtype (its weights may be stored in fp8)
        layer = projection[name]
        outputs.append(layer((normed * math.sqrt(layer.out_features / caption_channels)).to(hidden_states.dtype)))
    return torch.cat(outputs, dim=-1)


def connect(connectors, features, mask):
    """(video context, audio context, context mask) from projected features: the connectors' transformers, as
    `LTX2TextConnectors.forward` runs them after its projections."""
    import torch

    video_width = connectors.config.video_hidden_dim
    video, audio = features[..., :video_width], features[..., video_width:]
    dtype = video.dtype
    additive = (mask.to(torch.int64) - 1).to(dtype).reshape(mask.shape[0], 1, -1, mask.shape[-1])
    additive = additive * torch.finfo(dtype).max
    video_context, video_mask = connectors.video_connector(video, additive)
    binary = (video_mask < 1e-6).to(torch.int64).reshape(video_context.shape[0], video_context.shape[1], 1)
    video_context = video_context * binary
    audio_context, _ = connectors.audio_connector(audio, additive)
    return video_context, audio_context, binary.squeeze(-1)
