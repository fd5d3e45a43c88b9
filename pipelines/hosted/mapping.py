"""Request-mapping helpers the provider clients share: reading the requested size and frame rate, the start image,
naming the parameters a provider has no field for (said in the notes, never silently dropped), and the download
limit of a video rendered at a resolution tier."""

from __future__ import annotations

from pathlib import Path

from ..errors import L2AError
from .limits import download_cap
from .types import GenerationRequest

# The frame rate a download limit assumes where the provider picks the output's rate itself (they render 24-30).
ASSUMED_MAX_FPS = 30.0


def tier_cap(short_side: int, seconds: float, fps: float | None = None) -> int:
    """The download limit of a video at a resolution tier (the short side; 16:9 or 9:16), `seconds` long, at `fps`
    (ASSUMED_MAX_FPS where the provider picks it)."""
    return download_cap(short_side * 16 / 9, short_side, seconds, fps or ASSUMED_MAX_FPS)


def requested_short_side(request: GenerationRequest, aliases: dict[str, int], choices: str) -> int | None:
    """The requested short side in pixels, from `resolution` ("720p", an alias such as "4k", "1280x720") or
    width/height; None when nothing was asked."""
    text = (request.resolution or "").strip().lower()
    if text in aliases:
        return aliases[text]
    if text.endswith("p") and text[:-1].isdigit():
        return int(text[:-1])
    if "x" in text:
        width, _, height = text.partition("x")
        if width.isdigit() and height.isdigit():
            return min(int(width), int(height))
    if text:
        raise L2AError(f"Unknown resolution {request.resolution!r}: use {choices}.")
    if request.width and request.height:
        return min(request.width, request.height)
    return None


def ignored_fields(request: GenerationRequest, first: dict | None = None, last: dict | None = None) -> list[str]:
    """Names of the set parameters a provider has no field for: its own (`first`, `last`: name -> is set) around
    the ones no simple LTX-2 endpoint takes, then every provider option."""
    checks = {
        **(first or {}),
        "negative prompt": request.negative_prompt,
        "guidance scale": request.guidance_scale is not None,
        "step count": request.num_inference_steps is not None,
        "camera motion": request.camera != "none",
        "image strength": request.image_strength != 1.0,
        "multiscale switch": request.multiscale is not None,
        "acceleration setting": request.acceleration,
        "prompt expansion switch": request.prompt_expansion is not None,
        **(last or {}),
    }
    names = [name for name, present in checks.items() if present]
    return names + [f"option {key!r}" for key in sorted(request.options)]


def start_image(request: GenerationRequest, key: str, payload: dict, uploads: dict, provider: str) -> None:
    """Put the image-to-video start image under `key`: a connected image as an upload, else the given URL."""
    if request.image is not None:
        uploads[key] = Path(request.image)
    elif request.image_url:
        payload[key] = request.image_url
    else:
        raise L2AError(f"{provider} image-to-video needs an image: connect one or give an image URL.")


def nearest_fps(request: GenerationRequest, choices: tuple[int, ...], notes: list[str], provider: str) -> int:
    """The provider's frame rate nearest the requested one (its first choice when none was asked), noted if it
    differs."""
    if request.fps is None:
        return choices[0]
    fps = min(choices, key=lambda choice: abs(choice - request.fps))
    if fps != request.fps:
        rates = " or ".join(str(choice) for choice in choices)
        notes.append(f"{provider} renders {rates} fps: {request.fps:g} fps was sent as {fps}.")
    return fps
