"""Number checks shared by the command line, the nodes and the pipelines: a value that is NaN, infinite or out of
range is refused with its name, its value and the range, before any heavy work. Light module: no heavy import."""

from __future__ import annotations

import math
from dataclasses import fields

from .errors import L2AError

# Guidance scales the pipelines accept (the node widgets start cfg and modality at 1): field -> (low, high).
GUIDANCE_RANGES = {
    "video_cfg": (0.0, 20.0),
    "audio_cfg": (0.0, 20.0),
    "stg_scale": (0.0, 10.0),
    "audio_stg_scale": (0.0, 10.0),
    "modality_scale": (0.0, 10.0),
    "audio_modality_scale": (0.0, 10.0),
    "rescale": (0.0, 1.0),
    "audio_rescale": (0.0, 1.0),
}


def _text(value: float) -> str:
    return f"{value:g}"


def check_number(name: str, value, low: float | None = None, high: float | None = None, hint: str = "") -> float:
    """`value` as a float when it is a finite number in [low, high]; else an L2AError naming it and the range."""
    if isinstance(value, bool):
        number = math.nan
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
    if low is not None and high is not None:
        wanted = f"a number from {_text(low)} to {_text(high)}"
    elif low is not None:
        wanted = f"a number of at least {_text(low)}"
    elif high is not None:
        wanted = f"a number of at most {_text(high)}"
    else:
        wanted = "a finite number"
    hint = f" ({hint})" if hint else ""
    if not math.isfinite(number):
        raise L2AError(f"{name} = {value!r} is not a finite number: use {wanted}{hint}.")
    if (low is not None and number < low) or (high is not None and number > high):
        raise L2AError(f"{name} = {value!r} is out of range: use {wanted}{hint}.")
    return number


def check_guidance(guidance) -> None:
    """Every guidance scale finite and in a sane range. As in the official guiders, cfg and modality switch their term
    on whenever they are not 1 (below 1 too) and stg whenever it is not 0."""
    for item in fields(guidance):
        low, high = GUIDANCE_RANGES.get(item.name, (None, None))
        check_number(item.name, getattr(guidance, item.name), low, high)


def check_sample_rate(sample_rate) -> int:
    """An AUDIO's sample rate as a positive whole number of Hz, or the error that says the input is damaged."""
    valid = isinstance(sample_rate, (int, float)) and not isinstance(sample_rate, bool) and math.isfinite(sample_rate)
    if not valid or int(sample_rate) != sample_rate or int(sample_rate) <= 0:
        raise L2AError(f"the audio's sample rate is {sample_rate!r}, not a positive whole number of Hz (LTX-2 makes "
                       "24000 or 48000): the audio input is damaged, load it again.")
    return int(sample_rate)
