"""Containers that travel between nodes: a loaded LTX-2 model and a loaded Gemma text encoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .families import Family


@dataclass
class LTX2Model:
    """Everything of one LTX-2 checkpoint except Gemma (which lives in TextEncoder)."""

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

    @property
    def audio_sample_rate(self) -> int:
        return int(self.vocoder.config.output_sampling_rate)

    def describe(self) -> str:
        return f"{self.family.label} {self.variant} ({self.source})"


@dataclass
class TextEncoder:
    """Gemma 3 and its tokenizer; only hidden states are used."""

    model: Any
    tokenizer: Any
    device: Any
    dtype: Any
    source: str
    max_sequence_length: int = 1024
