"""How large a hosted video may be, so a provider (or whatever answers in its name) can neither fill the disk nor
keep ComfyUI downloading for hours.

A provider that declares the file's size (fal's `file_size`) is held to it, plus a little slack. Otherwise the limit
follows from what was asked: pixels per second times the most bits per pixel the format spends at its highest
quality, times the duration, plus the audio track and the container. The bit rates are deliberately generous (a
limit that refuses a real video is worse than a loose one): H.264 or VP9 2 bits per pixel (a high-quality H.264
LTX clip spends about 0.1-0.3), ProRes 4444 and GIF 12 (ProRes 4444 XQ is about 8). So H.264 at 720p for 5 s may
take about 30 MB (a real one is a few MB), ProRes 4444 at 4K for 20 s about 6 GB.
"""

from __future__ import annotations

BITS_PER_PIXEL = {"h264": 2.0, "vp9": 2.0, "prores": 12.0, "gif": 12.0}
AUDIO_BYTES_PER_S = 64 * 1024  # 512 kb/s: above any AAC/Opus/PCM-in-MOV stereo track a provider writes
CONTAINER_BYTES = 2 * 2**20  # headers, index, the first keyframe's overshoot
DECLARED_SLACK = (0.01, 64 * 1024)  # a declared size may be off by 1 % + 64 KiB (rounding, a re-mux)


def download_cap(width: float, height: float, seconds: float, fps: float, codec: str = "h264") -> int:
    """The most bytes a video of this size, length, rate and format should take (see the module docstring)."""
    if codec not in BITS_PER_PIXEL:
        raise ValueError(f"codec {codec!r} is not one of {', '.join(BITS_PER_PIXEL)}")
    pixels = float(width) * float(height) * float(fps) * float(seconds)
    return int(pixels * BITS_PER_PIXEL[codec] / 8 + AUDIO_BYTES_PER_S * seconds + CONTAINER_BYTES)


def declared_cap(declared: int) -> int:
    """A declared file size plus the slack allowed for it."""
    share, floor = DECLARED_SLACK
    return int(declared + max(floor, declared * share))
