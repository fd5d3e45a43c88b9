"""Sizes and durations the way users speak (480p / 720p / 1080p, an aspect ratio, seconds), mapped to LTX-2 geometry.

The hosted providers take these words (WaveSpeed `resolution` + `aspect_ratio` + `duration`, fal `video_size: auto`
+ `num_frames` + `fps`); the local sampler takes pixels and frames. Every mapping returns a note saying what it
became, so nothing drifts silently.

Rounding rule for sides: the nearest multiple, ties go down, never below one multiple. Ties go down because 720
sits exactly between 704 and 736, and 704 is what the LTX-2 services deliver for 720p (1280x704); a tier then
never costs more pixels than it names. Frames use the nearest 8k+1 instead, ties up (`geometry.snap_frames`).
"""

from __future__ import annotations

import math
from fractions import Fraction

from .errors import L2AError
from .geometry import MAX_FRAMES, MAX_SIDE, MIN_FRAMES, SPATIAL, TEMPORAL

TIERS = {"480p": 480, "720p": 720, "1080p": 1080}
RESOLUTIONS = [*TIERS, "custom"]
RATIOS = {name: Fraction(*map(int, name.split(":"))) for name in ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")}
ASPECT_RATIOS = ["auto", *RATIOS]
MULTISCALE_MULTIPLE = 2 * SPATIAL  # the two-stage pipeline upsamples x2 from a half-size first pass
MAX_SECONDS = 20.0
MIN_FPS, MAX_FPS = 1.0, 60.0


def round_side(value: Fraction | int, multiple: int = SPATIAL) -> int:
    """The nearest multiple of `multiple`, ties down, at least one multiple. Exact: 720 * 21/9 is a tie, not noise."""
    return max(multiple, math.ceil(Fraction(value) / multiple - Fraction(1, 2)) * multiple)


def _number(value: Fraction | int) -> str:
    return f"{value}" if Fraction(value).denominator == 1 else f"{float(value):.1f}"


def _why(multiple: int) -> str:
    return f"LTX-2 needs multiples of {multiple}" + (" with multiscale" if multiple != SPATIAL else "")


def _ratio_of(aspect_ratio: str, image_size) -> tuple[Fraction, str]:
    """Width / height, and how to name it in the note."""
    if aspect_ratio == "auto":
        if not image_size:
            raise L2AError("aspect ratio 'auto' follows the input image: connect an image or pick a ratio.")
        image_width, image_height = image_size
        if image_width < 1 or image_height < 1:
            raise L2AError(f"the input image is {image_width}x{image_height}: connect a non-empty image or pick a ratio.")
        return Fraction(int(image_width), int(image_height)), f"auto (image {image_width}x{image_height})"
    if aspect_ratio not in RATIOS:
        raise L2AError(f"aspect ratio {aspect_ratio!r} is unknown: use one of {', '.join(ASPECT_RATIOS)}.")
    return RATIOS[aspect_ratio], aspect_ratio


AUTO_WITHOUT_IMAGE = "16:9"


def backend_aspect_ratio(aspect_ratio: str | None, has_image: bool) -> tuple[str, str]:
    """(aspect ratio, note) for LTX-2 Generate and the command line: 'auto' without an image is read as 16:9, as
    the hosted providers and the cost badge read it, so one request means one size on every backend."""
    if aspect_ratio in (None, "", "auto") and not has_image:
        return AUTO_WITHOUT_IMAGE, f"aspect ratio auto without an image: {AUTO_WITHOUT_IMAGE}, as hosted"
    return aspect_ratio or AUTO_WITHOUT_IMAGE, ""


def _check_range(name: str, value: int, multiple: int, hint: str) -> None:
    if value > MAX_SIDE or value < multiple:
        raise L2AError(
            f"{name} = {value} is out of range: LTX-2 takes {multiple} to {MAX_SIDE} pixels a side; {hint}."
        )


def resolve_size(resolution: str, aspect_ratio: str, width: int | None = None, height: int | None = None,
                 image_size: tuple[int, int] | None = None, multiple: int = SPATIAL) -> tuple[int, int, str]:
    """(width, height, note) for a tier and ratio, or for custom pixels, snapped to `multiple`.

    A tier names the short side, as video platforms do; the long side follows the ratio (of the input image for
    `auto`, given as `image_size` = (width, height)). `custom` takes `width`/`height` and ignores the ratio.
    """
    if resolution == "custom":
        if width is None or height is None:
            raise L2AError("resolution 'custom' needs width and height: set both, or pick 480p, 720p or 1080p.")
        _check_range("width", width, multiple, f"use a width from {multiple} to {MAX_SIDE}")
        _check_range("height", height, multiple, f"use a height from {multiple} to {MAX_SIDE}")
        wanted, named = (Fraction(width), Fraction(height)), f"custom {width}x{height}"
    elif resolution in TIERS:
        ratio, ratio_name = _ratio_of(aspect_ratio, image_size)
        short = Fraction(TIERS[resolution])
        wanted = (short * ratio, short) if ratio >= 1 else (short, short / ratio)
        named = f"{resolution} {ratio_name}"
    else:
        raise L2AError(f"resolution {resolution!r} is unknown: use one of {', '.join(RESOLUTIONS)}.")
    out_width, out_height = round_side(wanted[0], multiple), round_side(wanted[1], multiple)
    if resolution in TIERS:
        hint = "pick a lower resolution or a less extreme aspect ratio"
        _check_range("width", out_width, multiple, hint)
        _check_range("height", out_height, multiple, hint)
    changes = [f"{_number(w)} rounded to {o}" for w, o in zip(wanted, (out_width, out_height)) if w != o]
    note = f"{named} → {out_width}x{out_height}"
    if changes:
        note += f" ({', '.join(changes)}: {_why(multiple)})"
    return out_width, out_height, note


def _nearest_8k1(count: float) -> int:
    """The nearest 8k+1 frame count, ties up, at least 9 (as `geometry.snap_frames`, for fractional counts)."""
    return max(1, math.floor((count - 1) / TEMPORAL + 0.5)) * TEMPORAL + 1


def max_frames(fps: float) -> int:
    """The longest one pass at this frame rate: the 8k+1 count nearest to 20 s, within the sampler's limit."""
    return min(_nearest_8k1(MAX_SECONDS * fps), MAX_FRAMES)


def resolve_frames(duration_seconds: float, frames: int, fps: float) -> tuple[int, str]:
    """(frames, note): a duration > 0 wins over `frames`; either way the count is 8k+1 and at most ~20 s."""
    fps = float(fps)
    if not MIN_FPS <= fps <= MAX_FPS:
        raise L2AError(f"fps = {fps:g} is out of range: use {MIN_FPS:g} to {MAX_FPS:g} (LTX-2 is trained at 24-30).")
    limit = max_frames(fps)
    if not duration_seconds >= 0:
        raise L2AError(f"duration = {duration_seconds!r} s is not valid: use seconds > 0, or 0 to set frames instead.")
    if duration_seconds > 0:
        if duration_seconds > MAX_SECONDS:
            raise L2AError(
                f"duration = {duration_seconds:g} s is too long: LTX-2 generates up to {MAX_SECONDS:g} s in one "
                f"pass; use {MAX_SECONDS:g} or less, or LTX-2 Extend to continue a clip."
            )
        count = _nearest_8k1(round(duration_seconds * fps, 6))  # 6 decimals: 4.2 * 30 is 126, not 126.00000000000001
        if count > limit:
            raise L2AError(
                f"duration = {duration_seconds:g} s at {fps:g} fps is {count} frames: one pass takes at most {limit} "
                f"frames ({limit / fps:.2f} s at {fps:g} fps); use a shorter duration or a lower fps."
            )
        return count, f"{duration_seconds:.2f} s at {fps:g} fps → {count} frames ({count / fps:.2f} s)"
    if not isinstance(frames, int) or frames < MIN_FRAMES:
        raise L2AError(f"frames = {frames!r} is out of range: LTX-2 makes {MIN_FRAMES} or more frames (8k+1); use "
                       f"{MIN_FRAMES} or more, or set a duration.")
    count = _nearest_8k1(frames)
    if count > limit:
        raise L2AError(
            f"frames = {frames} at {fps:g} fps is {count / fps:.2f} s: LTX-2 generates up to {limit} frames "
            f"({limit / fps:.2f} s) at {fps:g} fps in one pass; use {limit} frames or fewer, a higher fps, or "
            f"LTX-2 Extend to continue a clip."
        )
    if count != frames:
        return count, f"frames {frames} → {count} (LTX-2 needs 8k+1 frames; {count / fps:.2f} s at {fps:g} fps)"
    return count, f"{count} frames at {fps:g} fps ({count / fps:.2f} s)"
