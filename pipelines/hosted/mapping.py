"""Request-mapping helpers the provider clients share: reading the requested size and frame rate, the start image,
the audio of audio-to-video (length checked, converted when the provider cannot take its format) and the clip of a
retake (window checked against it), naming the parameters a provider has no field for (said in the notes, never
silently dropped), and the download limit of a video rendered at a resolution tier."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
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


MIN_AUDIO_SECONDS = 2.0  # every provider's audio-to-video: shorter audio is refused before anything is sent


def audio_input(request: GenerationRequest, key: str, payload: dict, uploads: dict, provider: str,
                max_seconds: float, formats: tuple[str, ...], notes: list[str]) -> float | None:
    """Put audio-to-video's audio under `key` and return its length in seconds (None for a URL whose length was
    not given as `duration`). A local file is probed: shorter than 2 s or longer than `max_seconds` is refused; a
    format the provider does not list in `formats` (file suffixes) is converted to WAV first, with a note."""
    if request.audio is not None and request.audio_url:
        raise L2AError("give either audio (a file) or audio_url, not both.")
    if request.audio is None:
        if not request.audio_url:
            raise L2AError(f"{provider} audio-to-video needs audio: connect it (2-{max_seconds:g} s) or give an "
                           "audio URL.")
        if not str(request.audio_url).lower().startswith(("https://", "http://")):
            raise L2AError(f"audio_url must be an http(s) URL; got {str(request.audio_url)[:40]!r}.")
        payload[key] = request.audio_url
        if request.duration is not None:
            _check_audio_seconds(request.duration, provider, max_seconds)
        return request.duration
    path = Path(request.audio)
    seconds = audio_seconds(path)
    _check_audio_seconds(seconds, provider, max_seconds)
    if path.suffix.lower().lstrip(".") not in formats:
        converted = _as_wav(path)
        notes.append(f"{provider} takes {', '.join(formats)} audio: {path.name} was converted to WAV for the upload "
                     "(no quality lost).")
        path = converted
    uploads[key] = path
    return seconds


def audio_seconds(path: Path) -> float:
    """The length of a file's first audio stream (refused with the reason when it has none or cannot be read)."""
    from ..media import probe_video

    try:
        info = probe_video(path)
    except (OSError, ValueError) as error:  # PyAV's errors derive from both
        raise L2AError(f"cannot read the audio {path}: {error}. Give a wav, mp3, flac, ogg or m4a file.") from error
    if not info["audio_streams"] or not info["audio_duration"]:
        raise L2AError(f"{path} has no audio stream: give a file with sound (wav, mp3, flac, ogg, m4a).")
    return float(info["audio_duration"])


def _check_audio_seconds(seconds: float, provider: str, max_seconds: float) -> None:
    if seconds < MIN_AUDIO_SECONDS or seconds > max_seconds + 1e-3:
        raise L2AError(f"the audio is {seconds:.2f} s long: {provider} audio-to-video takes {MIN_AUDIO_SECONDS:g} to "
                       f"{max_seconds:g} s (trim it, or split longer audio). Nothing was sent.")


def _as_wav(path: Path) -> Path:
    """The audio as a 16-bit WAV in a cache folder named after the file's content (the same input converts to
    the same file, so identical requests stay identical)."""
    from ..media import read_audio, write_wav

    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / "ltx2-anywhere-audio" / f"{path.stem[:40]}-{digest}.wav"
    if not target.is_file():
        try:
            waveform, rate = read_audio(path)
        except (OSError, ValueError) as error:
            raise L2AError(f"cannot convert {path.name} to WAV: {error}. Give a wav or mp3 file.") from error
        write_wav(target, waveform, rate)
    return target


@dataclass(frozen=True)
class ClipInfo:
    seconds: float
    frames: int
    width: int
    height: int
    fps: float


def clip_info(path: Path) -> ClipInfo:
    """Length, frame count, size and rate of a local video (refused with the reason when it is not one)."""
    from ..media import probe_video

    try:
        info = probe_video(path)
    except (OSError, ValueError) as error:
        raise L2AError(f"cannot read the video {path}: {error}. Give an mp4, mov or webm file.") from error
    if not info["video_streams"] or not info["width"]:
        raise L2AError(f"{path} has no video stream: give a clip (mp4, mov, webm).")
    seconds = info["video_duration"] or info["duration"] or 0.0
    return ClipInfo(float(seconds), int(info["frames"] or 0), int(info["width"]), int(info["height"]),
                    float(info["fps"] or 0.0))


def check_window(request: GenerationRequest, clip_seconds: float | None, provider: str, min_seconds: float,
                 max_seconds: float) -> float:
    """The retake window's length, refused when it leaves the clip, is shorter than `min_seconds` or longer than
    `max_seconds` (what the provider allows); the shared check has already refused empty or negative windows."""
    start, end = request.window_start, request.window_end
    length = end - start
    if clip_seconds is not None and end > clip_seconds + 1e-3:
        raise L2AError(f"the retake window {start:g}-{end:g} s ends after the {clip_seconds:.2f} s clip: use an end "
                       f"of at most {clip_seconds:.2f} s. Nothing was sent.")
    if length < min_seconds - 1e-6:
        raise L2AError(f"the retake window {start:g}-{end:g} s is {length:.2f} s long: {provider} retakes at least "
                       f"{min_seconds:g} s. Widen it. Nothing was sent.")
    if length > max_seconds + 1e-6:
        raise L2AError(f"the retake window {start:g}-{end:g} s is {length:.2f} s long: {provider} retakes at most "
                       f"{max_seconds:g} s. Narrow it. Nothing was sent.")
    return length
