"""Size and length rules of LTX-2, checked before any heavy work.

Width and height must be multiples of 32 (the VAE's spatial compression); frames must be 8k+1 (temporal
compression 8, plus the first frame). Audio length follows the video: 25 audio latents per second.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import L2AError

SPATIAL = 32
TEMPORAL = 8
MAX_SIDE = 4096
MIN_FRAMES = 9  # the shortest 8k+1 clip: fewer frames are refused, never stretched to 9
MAX_FRAMES = 1025


@dataclass(frozen=True)
class Geometry:
    width: int
    height: int
    num_frames: int
    fps: float
    notes: tuple[str, ...] = ()

    @property
    def latent_frames(self) -> int:
        return (self.num_frames - 1) // TEMPORAL + 1

    @property
    def latent_height(self) -> int:
        return self.height // SPATIAL

    @property
    def latent_width(self) -> int:
        return self.width // SPATIAL

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def _nearest_multiples(value: int, multiple: int) -> str:
    low = max(multiple, value // multiple * multiple)
    high = low + multiple if low < value else low
    return f"{low}" if low == high else f"{low} or {high}"


def check_side(name: str, value: int, multiple: int = SPATIAL) -> None:
    if not isinstance(value, int) or value < multiple or value > MAX_SIDE:
        raise L2AError(f"{name} = {value!r} is out of range: use a multiple of {multiple} from {multiple} to {MAX_SIDE}.")
    if value % multiple:
        raise L2AError(
            f"{name} = {value} is not a multiple of {multiple}: LTX-2 needs multiples of {multiple}; "
            f"use {_nearest_multiples(value, multiple)}."
        )


def snap_frames(num_frames: int) -> int:
    """The nearest valid 8k+1 frame count (ties go up), at least 9."""
    k = max(1, round((num_frames - 1) / TEMPORAL + 1e-9))
    return k * TEMPORAL + 1


def make_geometry(width: int, height: int, num_frames: int, fps: float, multiple: int = SPATIAL) -> Geometry:
    """Validate a request; frames that are not 8k+1 are snapped and the change is reported in `notes`."""
    check_side("width", width, multiple)
    check_side("height", height, multiple)
    if not 1.0 <= float(fps) <= 120.0:
        raise L2AError(f"fps = {fps!r} is out of range: use a frame rate from 1 to 120 (LTX-2 is trained at 24-30).")
    if not isinstance(num_frames, int) or num_frames < MIN_FRAMES or num_frames > MAX_FRAMES:
        raise L2AError(f"frames = {num_frames!r} is out of range: LTX-2 makes {MIN_FRAMES} to {MAX_FRAMES} frames "
                       f"(8k+1); use e.g. {MIN_FRAMES} or 121.")
    notes = []
    if (num_frames - 1) % TEMPORAL:
        snapped = snap_frames(num_frames)
        notes.append(
            f"frames {num_frames} is not 8k+1; snapped to {snapped} ({snapped / fps:.3f} s), audio length follows"
        )
        num_frames = snapped
    return Geometry(width, height, num_frames, float(fps), tuple(notes))


def audio_latent_frames(num_frames: int, fps: float, sample_rate: int = 16000, hop: int = 160, compression: int = 4) -> int:
    """Audio latents for a clip, as the LTX-2 pipelines size them: 25 per second at the real 16 kHz / hop 160."""
    return round(num_frames / fps * sample_rate / hop / compression)
