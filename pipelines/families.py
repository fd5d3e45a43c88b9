"""Model families as data: one record per LTX-2 generation (and per tiny stand-in) that everything else reads.

A record holds what differs between generations: the component configs (a JSON file in `configs/`), the official
defaults (ltx-pipelines `utils/constants.py`: steps, guidance, STG blocks, image CRF, negative prompt, the sampler of
distilled models), the official file of each component with its ComfyUI folder and download, how to recognise the
family's files and tell them from a neighbour's, and the audio format. Loading, the doctor, the command line, the
tiny builder and the sampler read these records; none of them branches on a family's name. A record's `name` is the
generation ("2.0", "2.3"): LoRAs, upsamplers and file names are compared on it, so a tiny stand-in shares its
generation's name and files and differs in configs, label and defaults. A variant is "dev" or "distilled".
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import L2AError

HF = "https://huggingface.co/"
CONFIG_DIR = Path(__file__).parent / "configs"

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
class ModelFile:
    """An official file (or folder) of a family: its name, the ComfyUI folder key it goes in, where to get it."""

    name: str
    folder: str  # ComfyUI folder key: checkpoints, diffusion_models, text_encoders, vae, latent_upscale_models, loras
    repo: str  # Hugging Face repository
    path: str = ""  # where it is in the repository, when not at the root under its name
    aliases: tuple[str, ...] = ()  # other official names of the same component (earlier releases, fp8 files)
    is_folder: bool = False  # a transformers folder: the whole repository

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def url(self) -> str:
        if self.is_folder:
            return f"{HF}{self.repo}"
        return f"{HF}{self.repo}/resolve/main/{self.path or self.name}"


# Text-encoder model types in words (transformers `model_type`; a Gemma 3 text-only config counts as Gemma 3).
ENCODER_KINDS = {"gemma3": "Gemma 3", "gemma4_unified": "Gemma 4 unified", "gemma4": "Gemma 4 (dense)"}


@dataclass(frozen=True)
class TextEncoder:
    """The text encoder a family was trained with, and its official files: any one of them will do.

    `version` is the `gemma_version` an encoder must declare (LTX-2.5's transformer names it in its
    `gemma_source_checkpoint` metadata; "" for Gemma 3, which declares none); `projection` says that the encoder's
    file also holds the LTX text projection (`text_embedding_projection.*`), which then travels with the encoder
    instead of the model.
    """

    kind: str  # the transformers model type the loaders expect
    label: str
    files: tuple[ModelFile, ...]
    version: str = ""
    projection: bool = False

    @property
    def folder(self) -> ModelFile | None:
        """The transformers folder among the files (None when the encoder ships as a single file only)."""
        return next((f for f in self.files if f.is_folder), None)

    @property
    def single_files(self) -> tuple[ModelFile, ...]:
        return tuple(f for f in self.files if not f.is_folder)

    def names(self) -> str:
        return " or ".join(f"{f.name} ({f.url})" for f in self.files)

    def mismatch(self, kind: str, version: str, required: str = "") -> str:
        """Why an encoder of model type `kind` declaring gemma_version `version` cannot serve this family ("" when
        it can). `required` is the version a transformer file names: officially the encoder must declare exactly
        that one; without it, a declared version must be the family's."""
        if kind != self.kind:
            return f"it is {ENCODER_KINDS.get(kind, kind)}, not {self.label}"
        wanted = required or (self.version if version else "")
        if wanted and version != wanted:
            return f"it declares gemma_version {version or '(none)'}, but {wanted} is needed"
        return ""


@dataclass(frozen=True)
class Recognition:
    """How a family's files are recognised and told apart from a neighbour family's.

    `since_version`: the safetensors `model_version` from which a file belongs to this generation (compared
    numerically, as ltx-pipelines' `detect_params` does); `key_markers`: fragments of tensor names only its files
    have; `absent_markers`: tensors its transformer lacks where a neighbour's has them; `config_markers`: (component, config key, value) of a diffusers folder only it has; `components`: diffusers
    sub-folders only it has; `file_name`: a pattern its official file names match.
    """

    since_version: tuple[int, ...] = ()
    until_version: tuple[int, ...] = ()  # the first `model_version` no longer of this generation
    key_markers: tuple[str, ...] = ()
    absent_markers: tuple[str, ...] = ()  # tensors a neighbour's transformer has and this one's lacks (2.5: FFN biases)
    config_markers: tuple[tuple[str, str, Any], ...] = ()
    components: tuple[str, ...] = ()
    file_name: str = ""


@dataclass(frozen=True)
class AudioFormat:
    sample_rate: int  # Hz, what the vocoder writes
    channels: int = 2

    def describe(self) -> str:
        return f"{self.sample_rate / 1000:g} kHz {'stereo' if self.channels == 2 else f'{self.channels} channels'}"


@dataclass(frozen=True)
class Family:
    """What differs between LTX-2 generations: configs, official defaults, files, recognition, audio."""

    name: str  # the generation: "2.0" or "2.3"
    label: str  # shown to users
    config_file: str  # the diffusers configs of every component, in configs/
    steps: int
    stg_blocks: tuple[int, ...]
    use_cross_timestep: bool
    checkpoints: Mapping[str, ModelFile] = field(hash=False)  # variant -> all-in-one (or transformer) file
    text_encoder: TextEncoder
    upsampler: ModelFile  # the x2 spatial latent upsampler of multiscale
    distilled_lora: ModelFile  # stage 2 of multiscale on the dev model
    recognition: Recognition
    audio: AudioFormat
    camera_loras: Mapping[str, ModelFile] = field(default_factory=dict, hash=False)  # preset -> file
    ic_loras: Mapping[str, ModelFile] = field(default_factory=dict, hash=False)  # control kind -> official IC-LoRA
    guidance: Guidance = field(default_factory=Guidance)
    image_crf: int = 33
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    max_sequence_length: int = 1024
    distilled_sampler: str = "euler"  # how distilled models sample stage 1: a key of sampling.SAMPLERS
    distilled_sigmas: tuple[float, ...] = DISTILLED_SIGMAS
    stage_2_sigmas: tuple[float, ...] = STAGE_2_DISTILLED_SIGMAS
    # Components the checkpoint file does not hold, each in an official file of its own (diffusers component ->
    # file; "vae" also names the video VAE, "audio_vae" the audio VAE with its vocoder). Empty: all-in-one files.
    parts: Mapping[str, ModelFile] = field(default_factory=dict, hash=False)
    # Optional official files found when a run asks for them, not when the model loads: "duration_head" (automatic
    # duration) and "diffusion_decoder" (the video VAE file holding LTX-2.5's diffusion decoder).
    extras: Mapping[str, ModelFile] = field(default_factory=dict, hash=False)
    # Official files of capabilities this version does not run yet (the temporal upscaler), so that a loader given
    # one says what it is and what to use instead.
    upcoming: Mapping[str, ModelFile] = field(default_factory=dict, hash=False)
    tiny: bool = False  # a random-weight stand-in for tests and the demo

    def config(self) -> dict:
        """The diffusers configs of every component (a fresh copy: callers may change it)."""
        return copy.deepcopy(_read_config(self.config_file))

    @property
    def key(self) -> str:
        """The record's own name: the generation, or "tiny-" and the generation."""
        return f"tiny-{self.name}" if self.tiny else self.name

    def files(self) -> list[ModelFile]:
        """The family's full set of official files: checkpoints, parts, text encoders, upsampler, LoRAs, extras."""
        return [*self.checkpoints.values(), *self.parts.values(), *self.text_encoder.files, self.upsampler,
                self.distilled_lora, *self.camera_loras.values(), *self.ic_loras.values(), *self.extras.values()]

    @property
    def split(self) -> bool:
        """Whether its checkpoints hold the transformer only (the other components are `parts`)."""
        return bool(self.parts)


@functools.lru_cache(maxsize=None)
def _read_config(name: str) -> dict:
    return json.loads((CONFIG_DIR / name).read_text())


def _lightricks(name: str, folder: str, repo: str, *aliases: str) -> ModelFile:
    return ModelFile(name, folder, repo, aliases=aliases)


GEMMA_3_12B = TextEncoder(
    kind="gemma3",
    label="Gemma 3 12B",
    files=(
        ModelFile("gemma-3-12b-it-qat-q4_0-unquantized", "text_encoders", "google/gemma-3-12b-it-qat-q4_0-unquantized",
                  is_folder=True),
        ModelFile("gemma_3_12B_it.safetensors", "text_encoders", "Comfy-Org/ltx-2",
                  path="split_files/text_encoders/gemma_3_12B_it.safetensors"),
        ModelFile("gemma_3_12B_it_fp8_scaled.safetensors", "text_encoders", "Comfy-Org/ltx-2",
                  path="split_files/text_encoders/gemma_3_12B_it_fp8_scaled.safetensors"),
    ),
)

# Lightricks/LTX-2 README (19B) and MODELS-LTX-2.3.md (2.3, current release names first).
LTX2_19B = Family(
    name="2.0",
    label="LTX-2 19B",
    config_file="ltx2-19b.json",
    steps=40,
    stg_blocks=(29,),
    use_cross_timestep=False,
    checkpoints={
        "dev": _lightricks("ltx-2-19b-dev.safetensors", "checkpoints", "Lightricks/LTX-2",
                           "ltx-2-19b-dev-fp8.safetensors"),
        "distilled": _lightricks("ltx-2-19b-distilled.safetensors", "checkpoints", "Lightricks/LTX-2",
                                 "ltx-2-19b-distilled-fp8.safetensors"),
    },
    text_encoder=GEMMA_3_12B,
    upsampler=_lightricks("ltx-2-spatial-upscaler-x2-1.0.safetensors", "latent_upscale_models", "Lightricks/LTX-2"),
    distilled_lora=_lightricks("ltx-2-19b-distilled-lora-384.safetensors", "loras", "Lightricks/LTX-2"),
    camera_loras={
        preset: ModelFile(f"ltx-2-19b-lora-camera-control-{slug}.safetensors", "loras",
                          f"Lightricks/LTX-2-19b-LoRA-Camera-Control-{title}")
        for preset, title, slug in (
            ("dolly_in", "Dolly-In", "dolly-in"),
            ("dolly_out", "Dolly-Out", "dolly-out"),
            ("dolly_left", "Dolly-Left", "dolly-left"),
            ("dolly_right", "Dolly-Right", "dolly-right"),
            ("jib_up", "Jib-Up", "jib-up"),
            ("jib_down", "Jib-Down", "jib-down"),
            ("static", "Static", "static"),
        )
    },
    # The IC-LoRA model pages (Lightricks/LTX-2-19b-IC-LoRA-*) and MODELS-LTX-2.3.md.
    ic_loras={
        kind: ModelFile(f"ltx-2-19b-ic-lora-{slug}.safetensors", "loras", f"Lightricks/LTX-2-19b-IC-LoRA-{title}")
        for kind, title, slug in (
            ("canny", "Canny-Control", "canny-control"),
            ("depth", "Depth-Control", "depth-control"),
            ("pose", "Pose-Control", "pose-control"),
            ("detailer", "Detailer", "detailer"),
        )
    },
    # The base generation: a file with none of a newer generation's marks is 2.0 (as ltx-pipelines decides).
    recognition=Recognition(until_version=(2, 3), key_markers=("text_embedding_projection.aggregate_embed.",),
                            file_name=r"ltx-?2-19b"),
    audio=AudioFormat(24000),
)
LTX23_22B = Family(
    name="2.3",
    label="LTX-2.3 22B",
    config_file="ltx2.3-22b.json",
    steps=30,
    stg_blocks=(28,),
    use_cross_timestep=True,
    checkpoints={
        "dev": _lightricks("ltx-2.3-22b-dev.safetensors", "checkpoints", "Lightricks/LTX-2.3"),
        "distilled": _lightricks("ltx-2.3-22b-distilled-1.1.safetensors", "checkpoints", "Lightricks/LTX-2.3",
                                 "ltx-2.3-22b-distilled.safetensors"),
    },
    text_encoder=GEMMA_3_12B,
    upsampler=_lightricks("ltx-2.3-spatial-upscaler-x2-1.1.safetensors", "latent_upscale_models", "Lightricks/LTX-2.3",
                          "ltx-2.3-spatial-upscaler-x2-1.0.safetensors"),
    distilled_lora=_lightricks("ltx-2.3-22b-distilled-lora-384-1.1.safetensors", "loras", "Lightricks/LTX-2.3"),
    # One IC-LoRA for depth, canny and pose maps; "ref0.5": trained with references at half the output size.
    ic_loras={"union": _lightricks("ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors", "loras",
                                   "Lightricks/LTX-2.3-22b-IC-LoRA-Union-Control")},
    recognition=Recognition(
        since_version=(2, 3),
        until_version=(2, 4),
        key_markers=("prompt_adaln_single.", "text_embedding_projection.video_aggregate_embed."),
        config_markers=(("transformer", "gated_attn", True), ("transformer", "cross_attn_mod", True),
                        ("transformer", "use_prompt_embeddings", False),
                        ("connectors", "per_modality_projections", True),
                        ("vocoder", "_class_name", "LTX2VocoderWithBWE")),
        file_name=r"ltx-?2\.3",
    ),
    audio=AudioFormat(48000),
)
def _ltx25(name: str, folder: str) -> ModelFile:
    """A file of Lightricks/LTX-2.5, which keeps each ComfyUI folder's files in a folder of that name."""
    return ModelFile(name, folder, "Lightricks/LTX-2.5", path=f"{folder}/{name}")


# LTX-2.5's own text encoder: Lightricks' fine-tuned Gemma 4 12B "unified" with the LTX text projection in one file
# (ltx-core gemma_assets.py; the transformer's `gemma_source_checkpoint` names its `gemma_version`). Stock Gemma 4
# is no substitute, and Gemma 3 has the same feature shape but gives noise.
GEMMA_4_LTX = TextEncoder(
    kind="gemma4_unified",
    label="Gemma 4 12B with the LTX-2.5 text projection",
    files=(_ltx25("gemma4-12b-with-proj-ltx-2.5-bf16.safetensors", "text_encoders"),),
    version="gemma4-12b-ltx-v1",
    projection=True,
)
# Lightricks/LTX-2 README at 1.2.0 and the LTX-2.5 repository: a split release, one file per component.
LTX25_22B = Family(
    name="2.5",
    label="LTX-2.5 22B",
    config_file="ltx2.5-22b.json",
    steps=30,
    stg_blocks=(28,),
    use_cross_timestep=True,
    checkpoints={
        "dev": _ltx25("ltx-2.5-22b-dev-transformer-bf16.safetensors", "diffusion_models"),
        "distilled": _ltx25("ltx-2.5-22b-distilled-transformer-bf16.safetensors", "diffusion_models"),
    },
    text_encoder=GEMMA_4_LTX,
    upsampler=_ltx25("ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors", "latent_upscale_models"),
    distilled_lora=_ltx25("ltx-2.5-22b-distilled-lora-450-bf16.safetensors", "loras"),
    parts={
        "vae": _ltx25("ltx-2.5-video-vae-conv-bf16.safetensors", "vae"),
        "audio_vae": _ltx25("ltx-2.5-audio-vae-bf16.safetensors", "vae"),
    },
    extras={
        "diffusion_decoder": _ltx25("ltx-2.5-video-vae-bf16.safetensors", "vae"),
        "duration_head": _ltx25("ltx-2.5-duration-head-bf16.safetensors", "model_patches"),
    },
    upcoming={
        "temporal_upsampler": _ltx25("ltx-2.5-latent-temporal-upscaler-x2-bf16-1.0.safetensors",
                                     "latent_upscale_models"),
    },
    # ltx-pipelines 1.2.0 switches to these rules at model_version 2.4 (its pre-releases) and to the ancestral
    # distilled sampler at 2.5; released files are 2.5. The transformer has no video FFN biases and a keyframe
    # embedding, which a diffusers folder says in its config.
    recognition=Recognition(
        since_version=(2, 5),
        until_version=(2, 6),
        key_markers=("keyframes_abs_pos_embedding",),
        absent_markers=("transformer_blocks.0.ff.net.0.proj.bias",),
        config_markers=(("transformer", "use_keyframes_abs_pos_embedding", True), ("transformer", "ff_bias", False)),
        components=("duration_head", "transformer_full"),
        file_name=r"ltx-?2[.-]5",
    ),
    audio=AudioFormat(48000),
    image_crf=18,
    distilled_sampler="euler_ancestral",
)
# Newest first: a file belongs to the first generation it matches, else to the last (the base).
GENERATIONS = (LTX25_22B, LTX23_22B, LTX2_19B)
FAMILIES = {family.name: family for family in GENERATIONS[::-1]}

# Every preset of every family's official camera-control LoRAs (LTX-2 19B: dolly, jib, static), after "none".
CAMERA_PRESETS = ("none", *dict.fromkeys(p for f in FAMILIES.values() for p in f.camera_loras))

def _tiny(real: Family, label: str, config_file: str) -> Family:
    """A random-weight stand-in: the real generation's files and flags at toy sizes, with toy defaults."""
    return replace(real, label=label, config_file=config_file, steps=8, stg_blocks=(1,), max_sequence_length=64,
                   tiny=True)


TINY_FAMILIES = {
    "2.0": _tiny(LTX2_19B, "LTX-2 tiny (random weights)", "tiny.json"),
    "2.3": _tiny(LTX23_22B, "LTX-2.3 tiny (random weights)", "tiny-2.3.json"),
    "2.5": _tiny(LTX25_22B, "LTX-2.5 tiny (random weights)", "tiny-2.5.json"),
}
ALL_FAMILIES = (*FAMILIES.values(), *TINY_FAMILIES.values())


def family(name: str, tiny: bool = False) -> Family:
    """A record by generation ("2.0", "2.3", "2.5"), the real one or its tiny stand-in."""
    table = TINY_FAMILIES if tiny else FAMILIES
    if name not in table:
        raise L2AError(f"family = {name!r} is unknown: use one of {', '.join(table)}.")
    return table[name]


def parse_version(text: str) -> tuple[int, ...]:
    """A `model_version` as numbers, up to the first part that is not one ("2.3.0-tiny" -> (2, 3, 0))."""
    numbers = []
    for part in text.replace("-", ".").split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


def _marked(recognition: Recognition, keys, configs: Mapping[str, Mapping]) -> bool:
    keys = list(keys)
    if any(marker in key for key in keys for marker in recognition.key_markers):
        return True
    for marker in recognition.absent_markers:  # telling only where the file has the layer the tensor belongs to
        layer = marker.rsplit(".", 1)[0] + ".weight"
        if any(key.endswith(layer) for key in keys) and not any(key.endswith(marker) for key in keys):
            return True
    if any(name in configs for name in recognition.components):
        return True
    return any(configs.get(component, {}).get(key, not value) == value
               for component, key, value in recognition.config_markers)


def _in_range(recognition: Recognition, version: tuple[int, ...]) -> bool:
    return version >= recognition.since_version and (not recognition.until_version
                                                     or version < recognition.until_version)


def generation_of_version(model_version: str, source: str = "the file") -> Family | None:
    """The generation a `model_version` belongs to (None without one); a version of no known generation (a newer
    release, or a pre-release such as 2.4) is an L2AError that names it and what this pack runs."""
    version = parse_version(model_version or "")
    if not version:
        return None
    found = next((f for f in GENERATIONS if _in_range(f.recognition, version)), None)
    if found is not None:
        return found
    known = ", ".join(f"{f.label} ({f.name})" for f in FAMILIES.values())
    if version >= GENERATIONS[0].recognition.until_version:
        why = "a generation newer than this version of LTX-2 Anywhere knows: update the pack"
    else:
        why = "not a released generation (a pre-release build?): use the released files"
    raise L2AError(f"{source} says model_version {model_version!r}, {why}. This version runs {known}.")


def recognise(keys=(), metadata: Mapping[str, str] | None = None,
              configs: Mapping[str, Mapping] | None = None, source: str = "the file") -> Family:
    """The generation of a checkpoint from its tensor names and metadata (a file) or its configs (a folder).

    A `model_version` decides when the file has one: the generation whose range holds it (a version of none is
    an L2AError). Otherwise the first generation (newest first) whose marks the files carry; files with none are
    the base generation.
    """
    by_version = generation_of_version((metadata or {}).get("model_version", ""), source)
    return by_version if by_version is not None else recognise_by_marks(keys, configs)


def marked_generation(keys=(), configs: Mapping[str, Mapping] | None = None) -> Family | None:
    """The newest generation whose marks (tensor names, configs) the files carry; None when they carry none."""
    keys = list(keys)
    configs = configs or {}
    return next((f for f in GENERATIONS if _marked(f.recognition, keys, configs)), None)


def recognise_by_marks(keys=(), configs: Mapping[str, Mapping] | None = None) -> Family:
    """The generation whose marks the files carry, newest first; files with none are the base generation."""
    return marked_generation(keys, configs) or GENERATIONS[-1]


def declared_by_name(file_name: str) -> Family | None:
    """The generation an official file name states ("ltx-2-19b-...", "ltx-2.3-22b-..."), if any."""
    lowered = file_name.lower()
    return next((f for f in GENERATIONS if re.search(f.recognition.file_name, lowered)), None)


def with_camera_loras() -> list[Family]:
    """The generations that have official camera-control LoRAs."""
    return [f for f in GENERATIONS if f.camera_loras]
