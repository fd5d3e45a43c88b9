"""Containers that travel between nodes: a loaded LTX-2 model and a loaded Gemma text encoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .families import Family


@dataclass
class LTX2Model:
    """Everything of one LTX-2 checkpoint except Gemma (which lives in TextEncoder); for LTX-2.5, what its
    transformer file and VAE files hold (the text projection is the text encoder's)."""

    transformer: Any
    vae: Any
    audio_vae: Any
    vocoder: Any
    connectors: Any
    scheduler_config: dict
    family: Family
    variant: str  # "dev" or "distilled"
    dtype: Any  # compute dtype of the transformer
    device: Any
    source: str
    configs: dict = field(default_factory=dict)
    loras: list = field(default_factory=list)
    controls: list = field(default_factory=list)  # IC-LoRA reference videos (ic_lora.Control), sampled as reference tokens
    source_stamps: tuple = ()  # (path, size, mtime) of the files the weights were read from: re-readable while equal
    text_encoder_version: str = ""  # the gemma_version its transformer file names ("" when it names none)
    notes: tuple = ()  # what loading noticed, for the sampler's report (e.g. a file kept in another folder)
    # ComfyUI folder key -> folders searched for the family's optional files (duration head, diffusion decoder)
    extra_folders: dict = field(default_factory=dict)
    # Those files once loaded (extras.py), shared by the copies a LoRA or a memory policy makes of the model
    extras: dict = field(default_factory=dict)

    @property
    def audio_sample_rate(self) -> int:
        return int(self.vocoder.config.output_sampling_rate)

    def describe(self) -> str:
        return f"{self.family.label} {self.variant} ({self.source})"


@dataclass
class TextEncoder:
    """Gemma and its tokenizer; only hidden states are used. LTX-2.5's encoder also carries the LTX text
    projection (`projection`, video and audio linears over `caption_channels` x layers features), which its file
    holds; the conditioning then carries projected features."""

    model: Any
    tokenizer: Any
    device: Any
    dtype: Any
    source: str
    max_sequence_length: int = 1024
    kind: str = "gemma3"  # the transformers model type: gemma3, or gemma4_unified (LTX-2.5)
    version: str = ""  # the gemma_version it declares (LTX-2.5's encoders do)
    projection: Any = None
    caption_channels: int = 0

    def describe(self) -> str:
        what = "Gemma 4 with the LTX text projection" if self.projection is not None else "Gemma 3"
        return f"{what} ({Path(self.source).name})"
