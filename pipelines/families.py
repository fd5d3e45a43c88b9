"""Per-family defaults of the official LTX-2 pipelines (ltx-pipelines 1.0.0), as plain data.

A family is the architecture generation (LTX-2 19B = "2.0", LTX-2.3 22B = "2.3"); a variant is "dev" or
"distilled". Tiny test models reuse the 2.0 family with their own STG blocks and step count.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# ltx_pipelines/utils/constants.py (LTX-2.0 and 2.3): stage-1 distilled sigmas and the stage-2 refinement sigmas.
DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0)
STAGE_2_DISTILLED_SIGMAS = (0.909375, 0.725, 0.421875, 0.0)

# ltx_pipelines/utils/constants.py (ltx-pipelines 1.2.0): one default for every family; 1.2.0 added the first five
# terms to the list of 1.0.0 (which diffusers ships).
DEFAULT_NEGATIVE_PROMPT = (
    "has_subtitles, has_blurbox, transition from black, transition to black, speech_ending_short, "
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive noise, "
    "grainy texture, poor lighting, flickering, motion blur, distorted proportions, unnatural skin tones, "
    "deformed facial features, asymmetrical face, missing facial features, extra limbs, disfigured hands, "
    "wrong hand count, artifacts around text, inconsistent perspective, camera shake, incorrect depth of "
    "field, background too sharp, background clutter, distracting reflections, harsh shadows, inconsistent "
    "lighting direction, color banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny "
    "valley effect, incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, "
    "mismatched lip sync, silent or muted audio, distorted voice, robotic voice, echo, background noise, "
    "off-sync audio, incorrect dialogue, added dialogue, repetitive speech, jittery movement, awkward "
    "pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted camera, flat lighting, "
    "inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)


@dataclass(frozen=True)
class Guidance:
    """Multimodal guidance scales; cfg 1 / stg 0 / modality 1 / rescale 0 switch a term off."""

    video_cfg: float = 3.0
    audio_cfg: float = 7.0
    stg_scale: float = 1.0
    audio_stg_scale: float = 1.0
    modality_scale: float = 3.0
    audio_modality_scale: float = 3.0
    rescale: float = 0.7
    audio_rescale: float = 0.7

    @classmethod
    def off(cls) -> Guidance:
        return cls(1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0)


@dataclass(frozen=True)
class Family:
    """What differs between LTX-2 generations at sampling time."""

    name: str  # "2.0" or "2.3"
    label: str  # shown to users
    steps: int
    stg_blocks: tuple[int, ...]
    use_cross_timestep: bool
    guidance: Guidance = field(default_factory=Guidance)
    image_crf: int = 33
    max_sequence_length: int = 1024


LTX2_19B = Family("2.0", "LTX-2 19B", steps=40, stg_blocks=(29,), use_cross_timestep=False)
LTX23_22B = Family("2.3", "LTX-2.3 22B", steps=30, stg_blocks=(28,), use_cross_timestep=True)
FAMILIES = {f.name: f for f in (LTX2_19B, LTX23_22B)}


def family_from_dict(data: dict) -> Family:
    """Build a family from checkpoint metadata (the tiny model declares its own defaults this way)."""
    base = FAMILIES[data.get("family", "2.0")]
    overrides = {}
    if "steps" in data:
        overrides["steps"] = int(data["steps"])
    if "stg_blocks" in data:
        overrides["stg_blocks"] = tuple(int(b) for b in data["stg_blocks"])
    if "label" in data:
        overrides["label"] = str(data["label"])
    if "max_sequence_length" in data:
        overrides["max_sequence_length"] = int(data["max_sequence_length"])
    return replace(base, **overrides)


def family_to_dict(family: Family) -> dict:
    return {
        "family": family.name,
        "label": family.label,
        "steps": family.steps,
        "stg_blocks": list(family.stg_blocks),
        "max_sequence_length": family.max_sequence_length,
    }
