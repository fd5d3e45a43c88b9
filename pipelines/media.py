"""Media I/O without ComfyUI: video writing (mp4, webm, mov, gif; the quality/write-mode table is in write_video),
probing and reading, image loading and fitting, and the training-style CRF round trip applied to conditioning images.

Nodes and the CLI import this module lazily, so numpy/av/torch are imported at the top. Frames use ComfyUI's IMAGE
layout (float [F, H, W, 3] in 0..1); audio uses ComfyUI's AUDIO dict (`{"waveform": [B, C, S], "sample_rate"}`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from fractions import Fraction
from io import BytesIO
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageOps

from .checks import check_sample_rate
from .errors import L2AError
from .outputs import check_output_file, make_folder, publish, remove_empty_folders, write_error

# Sample rates the AAC encoder accepts (MPEG-4 sampling-frequency table).
AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
AUDIO_BIT_RATE = 192_000
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


# ----------------------------------------------------------------------------------------------------- audio


def sanitize_audio(waveform) -> torch.Tensor:
    """Float32 copy with NaN/inf set to 0 and values clipped to [-1, 1]: non-finite samples break AAC muxing."""
    wave = torch.as_tensor(waveform).detach().to(torch.float32)
    return torch.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0).clamp_(-1.0, 1.0)


def comfy_audio(waveform, sample_rate: int) -> dict:
    """ComfyUI AUDIO dict from a [S], [C, S] or [B, C, S] waveform.

    Non-finite samples become 0 (core's SaveVideo/SaveAudio choke on them); the level is otherwise kept, so values
    above 1 are not clipped here.
    """
    wave = torch.as_tensor(waveform).detach().to(device="cpu", dtype=torch.float32)
    if wave.ndim == 1:
        wave = wave[None, None]
    elif wave.ndim == 2:
        wave = wave[None]
    elif wave.ndim != 3:
        raise L2AError(f"Audio waveform must be [S], [C, S] or [B, C, S]; got shape {tuple(wave.shape)}.")
    wave = torch.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0).contiguous()
    return {"waveform": wave, "sample_rate": _check_sample_rate(sample_rate, aac=False)}


def audio_sample_rate(audio: dict) -> int:
    """The sample rate of a ComfyUI AUDIO dict, checked (a damaged AUDIO input is an L2AError, not a crash)."""
    return _check_sample_rate(audio.get("sample_rate") if isinstance(audio, dict) else None, aac=False)


def _check_sample_rate(sample_rate, aac: bool) -> int:
    rate = check_sample_rate(sample_rate)
    if aac and rate not in AAC_SAMPLE_RATES:
        raise L2AError(f"AAC cannot store audio at {rate} Hz; resample to one of {AAC_SAMPLE_RATES} (LTX-2 makes 24000 or 48000).")
    return rate


def _stereo_audio(audio, sample_rate, aac: bool) -> tuple[np.ndarray, int]:
    """Audio argument of write_video -> (float32 [2, S] sanitized, sample rate)."""
    if isinstance(audio, dict):
        sample_rate = audio.get("sample_rate") if sample_rate is None else sample_rate
        audio = audio["waveform"]
    rate = _check_sample_rate(sample_rate, aac=aac)
    wave = sanitize_audio(audio).cpu()
    if wave.ndim == 3:
        wave = wave[0]  # ComfyUI AUDIO batch: the first item is the clip of this video
    if wave.ndim == 1:
        wave = wave[None]
    if wave.ndim != 2 or wave.shape[0] not in (1, 2):
        raise L2AError(
            f"Audio must be mono or stereo, [S], [C, S] or [1, C, S] with C in (1, 2); got shape {tuple(wave.shape)}."
        )
    if wave.shape[0] == 1:
        wave = wave.expand(2, -1)
    return np.ascontiguousarray(wave.numpy()), rate


# ----------------------------------------------------------------------------------------------------- frames


def _fps_fraction(fps) -> Fraction:
    """Exact frame rate: NTSC-style floats (23.976, 29.97, 59.94) become n*1000/1001, so durations stay exact."""
    if isinstance(fps, (int, Fraction)):
        rate = Fraction(fps)
    else:
        value = float(fps)
        if not math.isfinite(value) or value <= 0:
            raise L2AError(f"Frame rate must be a positive number; got {fps!r}.")
        ntsc = round(value * 1.001)
        if abs(value - round(value)) < 1e-6:
            rate = Fraction(round(value))
        elif ntsc > 0 and abs(value * 1.001 / ntsc - 1) < 2e-5:
            rate = Fraction(ntsc * 1000, 1001)
        else:
            rate = Fraction(value).limit_denominator(1001)
    if rate <= 0:
        raise L2AError(f"Frame rate must be a positive number; got {fps!r}.")
    return rate


def _to_uint8(values) -> np.ndarray:
    """uint8 numpy array from a uint8 or float (0..1) tensor/array; NaN becomes 0."""
    if isinstance(values, torch.Tensor):
        if values.dtype != torch.uint8:
            # One float copy, then in place: a 1280x704 frame costs one buffer instead of four.
            values = torch.nan_to_num(values.detach().float(), nan=0.0)
            values = values.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
        return values.cpu().numpy()
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values
    values = np.nan_to_num(values.astype(np.float32), nan=0.0)
    return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def _rgb_uint8(pixels) -> np.ndarray:
    """[H, W] / [H, W, 1|3|4] tensor or array -> uint8 [H, W, 3]; alpha is composited onto black."""
    if isinstance(pixels, torch.Tensor):
        pixels = pixels.detach()
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 3, 4):
        raise L2AError(f"An image must be [H, W, C] with C in (1, 3, 4); got shape {tuple(pixels.shape)}.")
    if pixels.shape[-1] == 4:
        if isinstance(pixels, torch.Tensor):
            rgba = pixels.float() / 255.0 if pixels.dtype == torch.uint8 else pixels.float()
            pixels = rgba[..., :3] * rgba[..., 3:]
        else:
            rgba = np.asarray(pixels)
            rgba = rgba.astype(np.float32) / 255.0 if rgba.dtype == np.uint8 else rgba.astype(np.float32)
            pixels = rgba[..., :3] * rgba[..., 3:]
    rgb = _to_uint8(pixels)
    if rgb.shape[-1] == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    return np.ascontiguousarray(rgb)


def _pad_even(rgb: np.ndarray) -> np.ndarray:
    """Repeat the last row/column when a side is odd: yuv420p needs even sizes, and no pixel is dropped."""
    pad_h, pad_w = rgb.shape[0] % 2, rgb.shape[1] % 2
    if pad_h or pad_w:
        rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return rgb


# ----------------------------------------------------------------------------------------------------- video

FORMATS = ("mp4", "webm", "mov", "gif")
QUALITIES = ("low", "medium", "high", "maximum")
WRITE_MODES = ("fast", "balanced", "small")

# The encoder settings behind each quality and write mode (write_video's docstring has the table in words).
H264_CRF = {"low": 28, "medium": 23, "high": 18, "maximum": 12}
H264_PRESETS = {"fast": "veryfast", "balanced": "medium", "small": "slower"}
VP9_CRF = {"low": 36, "medium": 27, "high": 18, "maximum": 10}
VP9_CPU_USED = {"fast": 5, "balanced": 2, "small": 0}
# ProRes profile and bits per macroblock: low/medium cap ProRes 4444 at the data rate of ProRes 422 LT / 422 HQ
# (prores_ks's figures for frames above 1440x1080); None keeps the profile's own rate.
PRORES = {"low": ("4444", 440), "medium": ("4444", 950), "high": ("4444", None), "maximum": ("4444xq", None)}
GIF_COLORS = {"low": 32, "medium": 64, "high": 128, "maximum": 256}
GIF_MAX_FPS = 50
GIF_PALETTE_FRAMES = 8
OPUS_SAMPLE_RATE = 48000
OPUS_BIT_RATE = 128_000


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise L2AError(f"Unknown {name} {value!r}; choose one of: {', '.join(choices)}.")
    return value


def output_format(target, format: str | None = None) -> str:
    """The format of a video file name: its suffix, which must be one of FORMATS and agree with an explicit
    `format` (a file named .xyz is not silently written as mp4)."""
    target = Path(target)
    suffix = target.suffix.lower().lstrip(".")
    if format is not None:
        _choice("format", format, FORMATS)
    if suffix not in FORMATS:
        named = f"ends in .{suffix}" if suffix else "has no suffix"
        wanted = format or "mp4"
        raise L2AError(f"{target.name} {named}, which is not a video format: name it {target.stem}.{wanted} (the "
                       f"formats are {', '.join('.' + f for f in FORMATS)}).")
    if format is not None and suffix != format:
        raise L2AError(f"{target.name} ends in .{suffix} but the format is {format}; name it .{format}.")
    return suffix


def _video_settings(fmt: str, quality: str, write_mode: str, crf, preset) -> tuple[str, str, dict[str, str]]:
    """(encoder, pixel format, encoder options); `crf` and `preset` override the quality's CRF and the mode's preset."""
    if crf is not None and fmt not in ("mp4", "webm"):
        raise L2AError(f"crf applies to mp4 (H.264) and webm (VP9) only, not {fmt}; choose a quality instead.")
    if preset is not None and fmt != "mp4":
        raise L2AError(f"preset is an H.264 (mp4) setting, not one of {fmt}; choose a write mode instead.")
    if fmt == "mp4":
        crf = H264_CRF[quality] if crf is None else _crf(crf, 51, "H.264")
        return "libx264", "yuv420p", {"crf": str(crf), "preset": preset or H264_PRESETS[write_mode]}
    if fmt == "webm":
        crf = VP9_CRF[quality] if crf is None else _crf(crf, 63, "VP9")
        # b=0 with a CRF is libvpx's constant-quality mode (a bit rate would make the CRF a cap instead)
        speed = str(VP9_CPU_USED[write_mode])
        return "libvpx-vp9", "yuv420p", {"crf": str(crf), "b": "0", "deadline": "good", "cpu-used": speed,
                                          "row-mt": "1"}
    if fmt == "mov":
        profile, bits_per_mb = PRORES[quality]
        options = {"profile": profile} if bits_per_mb is None else {"profile": profile, "bits_per_mb": str(bits_per_mb)}
        return "prores_ks", "yuv444p10le", options
    return "gif", "pal8", {}


def _crf(crf, top: int, codec: str) -> int:
    if int(crf) != crf or not 0 <= int(crf) <= top:
        raise L2AError(f"{codec} CRF must be an integer in 0..{top} (lower is better quality); got {crf}.")
    return int(crf)


def _audio_codec(fmt: str, quality: str) -> str | None:
    return {"mp4": "aac", "webm": "libopus", "mov": "pcm_s24le" if quality == "maximum" else "pcm_s16le"}.get(fmt)


def _metadata_strings(metadata: dict | None) -> dict[str, str]:
    tags = {}
    for key, value in (metadata or {}).items():
        if value is None:
            continue
        tags[str(key)] = (
            value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        )
    return tags


def write_video(
    path,
    frames,
    fps,
    audio=None,
    sample_rate: int | None = None,
    metadata: dict | None = None,
    crf: int | None = None,
    preset: str | None = None,
    overwrite: bool = True,
    *,
    format: str | None = None,
    quality: str = "high",
    write_mode: str = "balanced",
) -> Path:
    """Write a video file atomically and return its path.

    `format` is mp4, webm, mov or gif (default: the file name's suffix, else mp4). `quality` sets how close the file
    stays to the frames (higher: larger file); `write_mode` how much encoding time is spent on compression:

    | format | streams                                  | quality low / medium / high / maximum                  |
    |--------|------------------------------------------|--------------------------------------------------------|
    | mp4    | H.264 yuv420p + AAC 192 kb/s             | x264 CRF 28 / 23 / 18 / 12                             |
    | webm   | VP9 yuv420p + Opus 128 kb/s, 48 kHz      | VP9 CRF 36 / 27 / 18 / 10 in constant-quality mode     |
    |        |                                          | (b:v 0); about the PSNR of the H.264 levels            |
    | mov    | ProRes 4444 yuv444p10le (no alpha) + PCM | 4444 capped at the data rate of ProRes 422 LT / 422 HQ |
    |        | 16-bit, 24-bit at maximum                | (440 / 950 bits per macroblock) / 4444's own rate /    |
    |        |                                          | the 4444 XQ profile and its rate                       |
    | gif    | one palette for the file, no audio       | 32 / 64 / 128 / 256 colours                            |

    | format | write mode fast / balanced / small                                                                |
    |--------|---------------------------------------------------------------------------------------------------|
    | mp4    | x264 preset veryfast / medium / slower: slower presets get more quality per byte; at one CRF the  |
    |        | size moves little and not always down (veryfast makes small files of lower quality)                |
    | webm   | libvpx deadline good, cpu-used 5 / 2 / 0: slower is usually smaller at the same CRF                |
    | mov    | no effect: ProRes is intra-only and its encoder has no speed-for-size setting                     |
    | gif    | palette from the first frame, no dithering (quickest; later colours can be off) / palette from 8   |
    |        | frames across the clip with Floyd-Steinberg dithering (smooth gradients, 2-4x larger) / that      |
    |        | palette without dithering (gradients show bands)                                                  |

    `crf` (mp4 0..51, webm 0..63) and `preset` (an x264 preset, mp4 only) override the quality's CRF and the write
    mode's preset. `frames`: [F, H, W, C] float 0..1 or uint8 (torch or numpy), or a sequence of [H, W, C] frames;
    odd sizes are padded to even for the 4:2:0 formats by repeating the last row/column. Colour is tagged BT.709
    limited range (gif: RGB palette). `audio`: [S], [C, S], [1, C, S] or an AUDIO dict; mono is duplicated to
    stereo, NaN/inf become 0, values are clipped to [-1, 1]; mp4 needs an AAC rate (24000 is one), webm resamples
    to 48 kHz (FFmpeg's resampler), mov keeps the rate; gif has no audio track, so the audio is dropped
    (`format_notes` says so). `fps` may be fractional (23.976 is stored as 24000/1001). Durations are exact in mp4
    and mov (F/fps, S/rate), kept to the millisecond in webm (Matroska timestamps) and to the centisecond in gif
    (frame delays alternate, e.g. 4 and 5/100 s at 24 fps; gif allows at most 50 fps and loops forever).
    `metadata` becomes container tags in mp4, mov (`use_metadata_tags`) and webm (Matroska tags); gif cannot hold
    tags. The file is encoded to a hidden temporary beside the target and renamed; on failure nothing is left.
    """
    target = Path(path)
    fmt = output_format(target, format)
    _choice("quality", quality, QUALITIES)
    _choice("write mode", write_mode, WRITE_MODES)
    settings = _video_settings(fmt, quality, write_mode, crf, preset)
    if not overwrite and target.exists():
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it.")
    rate = _fps_fraction(fps)
    if fmt == "gif" and rate > GIF_MAX_FPS:
        raise L2AError(
            f"GIF plays at most {GIF_MAX_FPS} fps (frame delays are whole 1/100 s and browsers slow down shorter "
            f"ones); got {float(rate):g} fps. Choose mp4 or webm, or a lower frame rate."
        )
    count = len(frames)
    if count == 0:
        raise L2AError("Cannot write a video with no frames.")
    stereo, audio_rate = (None, None) if audio is None or fmt == "gif" else _format_audio(audio, sample_rate, fmt)

    check_output_file(target, "video")
    created = make_folder(target.parent)
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
    try:
        _encode(temp, fmt, settings, frames, count, rate, stereo, audio_rate, _audio_codec(fmt, quality),
                _metadata_strings(metadata), write_mode, GIF_COLORS[quality])
        _publish(temp, target, overwrite)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        remove_empty_folders(created)
        if isinstance(error, OSError) and not isinstance(error, FileExistsError):
            raise write_error(error, target) from error
        raise
    return target


def format_notes(format: str, fps, has_audio: bool, has_metadata: bool = False) -> list[str]:
    """What a format could not keep, as sentences for the user: GIF drops the audio and the metadata and rounds
    frame delays to 1/100 s."""
    if format != "gif":
        return []
    notes = ["GIF has no audio track: the audio was not written."] if has_audio else []
    if has_metadata:
        notes.append("GIF cannot hold metadata: the workflow and the prompt are not stored in the file.")
    rate = _fps_fraction(fps)
    delay = 100 / rate
    if delay.denominator != 1:
        notes.append(
            f"GIF stores frame delays in whole 1/100 s: at {float(rate):g} fps frames show for "
            f"{math.floor(delay)} or {math.ceil(delay)}/100 s, so the clip keeps its length to within 1/100 s."
        )
    return notes


def _format_audio(audio, sample_rate, fmt: str) -> tuple[np.ndarray, int]:
    stereo, rate = _stereo_audio(audio, sample_rate, aac=fmt == "mp4")
    if fmt == "webm" and rate != OPUS_SAMPLE_RATE:
        stereo, rate = _resample(stereo, rate, OPUS_SAMPLE_RATE), OPUS_SAMPLE_RATE
    return stereo, rate


def _resample(stereo: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """FFmpeg's resampler (swresample), clipped again to [-1, 1] as its filter can overshoot."""
    if stereo.shape[1] == 0:
        return stereo
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=new_rate)
    frame = av.AudioFrame.from_ndarray(stereo, format="fltp", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
    pieces = resampler.resample(frame) + resampler.resample(None)
    return np.ascontiguousarray(np.clip(np.concatenate([piece.to_ndarray() for piece in pieces], axis=1), -1, 1))


def _publish(temp: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished temporary onto the target; without overwrite, a hard link refuses a target that
    appeared during encoding (filesystems without hard links fall back to check-then-rename)."""
    if overwrite:
        publish(temp, target)
        return
    try:
        os.link(temp, target)
    except FileExistsError:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it.") from None
    except OSError:
        if target.exists():
            raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it.") from None
        publish(temp, target)
        return
    os.unlink(temp)


def _movie_timescale(rate: Fraction, audio_rate: int | None) -> int:
    """mp4 edit lists (B-frame delay, AAC priming) are counted in the movie timescale, 1/1000 s by default, which
    would round F/fps and S/rate to whole milliseconds; a common multiple of both rates keeps them exact."""
    scale = math.lcm(1000, rate.numerator, audio_rate or 1)
    return scale if scale < 2**31 else 1000


def _gif_centiseconds(index: int, rate: Fraction) -> int:
    """Frame start in GIF's 1/100 s, rounded from the exact time, so delays alternate and the length stays right."""
    return math.floor(Fraction(100 * index) / rate + Fraction(1, 2))


def _container_options(fmt: str, rate: Fraction, audio_rate: int | None, count: int) -> dict[str, str]:
    if fmt in ("mp4", "mov"):
        return {"movflags": "+faststart+use_metadata_tags", "movie_timescale": str(_movie_timescale(rate, audio_rate))}
    if fmt == "gif":  # loop forever; the last frame's delay is its own, not a copy of the one before
        last = _gif_centiseconds(count, rate) - _gif_centiseconds(count - 1, rate)
        return {"loop": "0", "final_delay": str(last)}
    return {}


class _GifPalette:
    """One palette for the whole file (Pillow's fast octree), so colours do not flicker between frames."""

    def __init__(self, samples: list[np.ndarray], colors: int, dither: bool):
        self.palette = Image.fromarray(np.concatenate(samples, axis=0)).quantize(
            colors, method=Image.Quantize.FASTOCTREE
        )
        rgb = np.asarray(self.palette.getpalette(), dtype=np.uint8).reshape(-1, 3)
        self.argb = np.zeros((256, 4), np.uint8)
        self.argb[:, 0] = 255
        self.argb[: len(rgb), 1:] = rgb
        self.dither = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE

    def frame(self, rgb: np.ndarray) -> av.VideoFrame:
        indices = np.asarray(Image.fromarray(rgb).quantize(palette=self.palette, dither=self.dither))
        return av.VideoFrame.from_ndarray((np.ascontiguousarray(indices), self.argb), format="pal8")


def _encode(temp, fmt, settings, frames, count, rate, stereo, audio_rate, audio_codec, tags, write_mode,
            gif_colors) -> None:
    codec, pix_fmt, options = settings
    even = pix_fmt == "yuv420p"

    def rgb_frame(index):
        rgb = _rgb_uint8(frames[index])
        return _pad_even(rgb) if even else rgb

    first = rgb_frame(0)
    height, width = first.shape[:2]
    palette = None
    if fmt == "gif":
        picks = [0] if write_mode == "fast" else np.linspace(0, count - 1, min(count, GIF_PALETTE_FRAMES)).round()
        samples = [first if int(index) == 0 else rgb_frame(int(index)) for index in picks]
        palette = _GifPalette(samples, gif_colors, dither=write_mode == "balanced")
    container = av.open(str(temp), "w", format=fmt, options=_container_options(fmt, rate, audio_rate, count))
    try:
        if fmt != "gif":  # GIF has no place for tags
            container.metadata.update(tags)
        video = container.add_stream(codec, rate=rate, options=options)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        time_base = Fraction(1, 100) if fmt == "gif" else 1 / rate
        video.codec_context.time_base = time_base
        if fmt != "gif":  # BT.709 limited range, tagged, so players do not guess the matrix from the frame size
            video.codec_context.colorspace = video.codec_context.color_primaries = video.codec_context.color_trc = 1
            video.codec_context.color_range = 1
        sound = None
        if stereo is not None:
            sound = container.add_stream(audio_codec, rate=audio_rate, layout="stereo")
            sound.codec_context.time_base = Fraction(1, audio_rate)
            if audio_codec != "pcm_s16le" and audio_codec != "pcm_s24le":
                sound.codec_context.bit_rate = AUDIO_BIT_RATE if audio_codec == "aac" else OPUS_BIT_RATE
        written = 0
        for index in range(count):
            rgb = first if index == 0 else rgb_frame(index)
            if rgb.shape[:2] != (height, width):
                raise L2AError(f"Frame {index} is {rgb.shape[1]}x{rgb.shape[0]}, the first frame {width}x{height}.")
            if palette is not None:
                frame = palette.frame(rgb)
                frame.pts = _gif_centiseconds(index, rate)
            else:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame = frame.reformat(format=pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
                frame.pts = index
            frame.time_base = time_base
            container.mux(video.encode(frame))
            if sound is not None:  # interleave: audio up to the end of this frame
                until = min(stereo.shape[1], math.floor((index + 1) * audio_rate / rate))
                written = _encode_audio(container, sound, stereo, written, until)
        container.mux(video.encode())
        if sound is not None:
            _encode_audio(container, sound, stereo, written, stereo.shape[1])
            container.mux(sound.encode())
    except BaseException:
        with contextlib.suppress(Exception):
            container.close()
        raise
    container.close()


def _encode_audio(container, sound, stereo: np.ndarray, start: int, stop: int) -> int:
    if stop > start:
        chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, start:stop]), format="fltp", layout="stereo")
        rate = sound.codec_context.sample_rate
        chunk.sample_rate, chunk.pts, chunk.time_base = rate, start, Fraction(1, rate)
        container.mux(sound.encode(chunk))
    return max(start, stop)


_REEXPORT = "Re-export the file or download it again."


def _check_input_file(path, what: str) -> Path:
    """An input path that exists and is a readable regular file, or an L2AError naming it; `what` is "image",
    "video", "audio" or "media"."""
    path = Path(path)
    kind = f"{'an' if what[0] in 'aeiou' else 'a'} {what} file"
    if not path.exists():
        raise L2AError(f"'{path}' does not exist: check the path of the {what} file.")
    if path.is_dir():
        raise L2AError(f"'{path}' is a folder, not {kind}: give the file itself.")
    if not path.is_file():
        raise L2AError(f"'{path}' is not a regular file (a FIFO or a device?): give {kind} saved on disk.")
    if not os.access(path, os.R_OK):
        raise L2AError(f"'{path}' cannot be read (no permission): fix its permissions or copy it somewhere readable.")
    return path


@contextlib.contextmanager
def _open_input(path, what: str):
    """av.open for reading, with an unreadable or wrong-kind file told as an L2AError."""
    path = _check_input_file(path, what)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as error:
        raise L2AError(f"'{path}' cannot be read as {what} ({_reason(error)}): it is another kind of file, or "
                       f"damaged. {_REEXPORT}") from error
    with container:
        yield container


@contextlib.contextmanager
def _damaged(path, what: str):
    """Decoding errors (a truncated or corrupt file) as an L2AError."""
    try:
        yield
    except (av.FFmpegError, OSError, EOFError) as error:
        raise L2AError(f"'{path}' is damaged: its {what} stops decoding ({_reason(error)}). {_REEXPORT}") from error


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _stream_seconds(stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _packet_spans(container, streams) -> dict[int, tuple[int, float | None]]:
    """Per stream: packets and the seconds from the stream's start to the end of its last packet. For containers
    that keep no stream duration (Matroska); pre-roll packets before the start (Opus priming) do not count."""
    counts, ends = dict.fromkeys((s.index for s in streams), 0), {}
    for packet in container.demux(*streams):
        if packet.pts is None or not packet.size:
            continue
        index = packet.stream.index
        counts[index] += 1
        ends[index] = max(ends.get(index, packet.pts), packet.pts + (packet.duration or 0))
    spans = {}
    for stream in streams:
        end = ends.get(stream.index)
        seconds = None if end is None else float((end - (stream.start_time or 0)) * stream.time_base)
        spans[stream.index] = (counts[stream.index], seconds)
    return spans


def probe_video(path) -> dict:
    """Streams, sizes, rates, frame count, durations and container tags of a media file (PyAV).

    Matroska/WebM stores tag names upper-case; they are given lower-case, as mp4 and mov keep them.
    """
    with _open_input(path, "media") as container, _damaged(path, "media"):
        videos, audios = container.streams.video, container.streams.audio
        matroska = "matroska" in container.format.name
        info = {
            "video_streams": len(videos),
            "audio_streams": len(audios),
            "tags": {key.lower() if matroska else key: value for key, value in container.metadata.items()},
            "duration": container.duration / av.time_base if container.duration is not None else None,
            "video_codec": None,
            "width": None,
            "height": None,
            "pix_fmt": None,
            "frames": None,
            "fps": None,
            "video_duration": None,
            "audio_codec": None,
            "sample_rate": None,
            "channels": None,
            "audio_duration": None,
        }
        if videos:
            stream = videos[0]
            info.update(
                video_codec=stream.codec_context.name,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                pix_fmt=stream.codec_context.pix_fmt,
                fps=stream.average_rate or stream.guessed_rate,
                video_duration=_stream_seconds(stream),
                frames=stream.frames or None,
            )
        if audios:
            stream = audios[0]
            info.update(
                audio_codec=stream.codec_context.name,
                sample_rate=stream.codec_context.sample_rate,
                channels=stream.codec_context.channels,
                audio_duration=_stream_seconds(stream),
            )
        if (videos and (info["frames"] is None or info["video_duration"] is None)) or (
            audios and info["audio_duration"] is None
        ):  # containers without a frame count or stream durations: read them off the packets
            streams = [s[0] for s in (videos, audios) if s]
            spans = _packet_spans(container, streams)
            if videos:
                frames, seconds = spans[videos[0].index]
                info["frames"] = info["frames"] or frames
                info["video_duration"] = info["video_duration"] if info["video_duration"] is not None else seconds
            if audios and info["audio_duration"] is None:
                info["audio_duration"] = spans[audios[0].index][1]
    return info


def _decode(path):
    """Decode the first video stream to float [F, H, W, 3] in 0..1 with each frame's time in seconds, its frame
    rate, and the first audio stream as a ComfyUI AUDIO dict (float planar, trimmed to the stream's duration so
    encoder padding is dropped) or None. A file that fails to decode, or decodes to fewer frames than it declares,
    is refused as damaged."""
    with _open_input(path, "video") as container, _damaged(path, "video"):
        if not container.streams.video:
            raise L2AError(f"'{path}' has no video stream: give a video file (mp4, webm, mov, mkv...).")
        video = container.streams.video[0]
        sound = container.streams.audio[0] if container.streams.audio else None
        fps = video.average_rate or video.guessed_rate
        pictures, times, chunks, resampler, sound_end = [], [], [], None, None
        if sound is not None:
            resampler = av.AudioResampler(
                format="fltp", layout=sound.codec_context.layout, rate=sound.codec_context.sample_rate
            )
        streams = [video] if sound is None else [video, sound]
        for packet in container.demux(*streams):
            if packet.stream is sound and packet.pts is not None and packet.size:
                end = packet.pts + (packet.duration or 0)
                sound_end = end if sound_end is None else max(sound_end, end)
            for frame in packet.decode():
                if packet.stream is video:
                    # The matrix follows the frame's tag (PyAV default); the range must be passed explicitly.
                    full = frame.color_range == 2
                    pictures.append(frame.to_ndarray(format="rgb24", src_color_range="JPEG" if full else None))
                    times.append(frame.time)
                else:
                    chunks.extend(piece.to_ndarray() for piece in resampler.resample(frame))
        if resampler is not None:
            chunks.extend(piece.to_ndarray() for piece in resampler.resample(None))
        declared = video.frames or 0
        if not pictures or declared > len(pictures) + 1:  # one frame of slack for edit lists
            found = f"only {len(pictures)} of its {declared} frames decode" if declared else "no frame decodes"
            raise L2AError(f"'{path}' is damaged: {found}. {_REEXPORT}")
        frames = torch.from_numpy(np.stack(pictures)).to(torch.float32).div_(255.0)
        if fps is None:
            fps = Fraction(len(pictures)) / Fraction(_stream_seconds(video) or 1.0).limit_denominator(1001)
        audio = None
        if sound is not None and chunks:
            wave = np.concatenate(chunks, axis=1)
            seconds = _stream_seconds(sound)
            if seconds is None and sound_end is not None:  # Matroska: the end of the last packet
                seconds = float((sound_end - (sound.start_time or 0)) * sound.time_base)
            if seconds is not None:
                wave = wave[:, : round(seconds * sound.codec_context.sample_rate)]
            audio = comfy_audio(torch.from_numpy(np.ascontiguousarray(wave)), sound.codec_context.sample_rate)
    return frames, times, Fraction(fps), audio


def read_video(path) -> tuple[torch.Tensor, Fraction, dict | None]:
    """Frames [F, H, W, 3] in 0..1, the frame rate, and the audio (AUDIO dict or None) of a video file."""
    frames, _times, fps, audio = _decode(path)
    return frames, fps, audio


def read_clip(path) -> tuple[torch.Tensor, Fraction, dict | None, str]:
    """Like read_video, but a variable-frame-rate file is retimed to its average rate (each output instant shows
    the frame on screen then), with a note saying so; constant-rate files come back as they are."""
    frames, times, fps, audio = _decode(path)
    known = [t for t in times if t is not None]
    if len(known) < 3 or len(known) != len(times):
        return frames, fps, audio, ""
    steps = np.diff(np.asarray(known, dtype=np.float64))
    nominal = 1.0 / float(fps)
    if steps.min() > 0 and np.abs(steps - nominal).max() <= 0.25 * nominal:
        return frames, fps, audio, ""
    start = known[0]
    count = max(1, round((known[-1] - start) * float(fps)) + 1)
    instants = start + np.arange(count) / float(fps)
    picks = np.clip(np.searchsorted(np.asarray(known), instants + 1e-6, side="right") - 1, 0, len(known) - 1)
    note = (f"variable frame rate ({1 / max(steps.max(), 1e-9):.1f}-{1 / max(steps.min(), 1e-9):.1f} fps) retimed "
            f"to a constant {float(fps):g} fps ({len(known)} frames -> {count})")
    return frames[torch.from_numpy(picks)], fps, audio, note


def read_audio(path) -> tuple[torch.Tensor, int]:
    """The first audio stream of any file PyAV reads (wav, mp3, flac, a video's soundtrack): [C, S] float, rate."""
    with _open_input(path, "audio") as container, _damaged(path, "audio"):
        if not container.streams.audio:
            raise L2AError(f"'{path}' has no audio stream: give a file with sound (wav, mp3, flac, m4a, mp4...).")
        sound = container.streams.audio[0]
        rate = sound.codec_context.sample_rate
        resampler = av.AudioResampler(format="fltp", layout=sound.codec_context.layout, rate=rate)
        chunks = []
        for frame in container.decode(sound):
            chunks.extend(piece.to_ndarray() for piece in resampler.resample(frame))
        chunks.extend(piece.to_ndarray() for piece in resampler.resample(None))
    if not chunks:
        raise L2AError(f"'{path}': the audio stream decoded to no samples. {_REEXPORT}")
    if rate is None or rate <= 0:
        raise L2AError(f"'{path}' declares an audio sample rate of {rate!r} Hz: the file is damaged. {_REEXPORT}")
    return torch.from_numpy(np.ascontiguousarray(np.concatenate(chunks, axis=1))).to(torch.float32), rate


def write_wav(path, waveform, sample_rate: int) -> Path:
    """A 16-bit PCM WAV of [S], [C, S] or [1, C, S] audio (NaN/inf to 0, clipped to [-1, 1]), written atomically:
    the format every hosted provider takes."""
    import wave as wavefile

    target = Path(path)
    rate = _check_sample_rate(sample_rate, aac=False)
    wave = sanitize_audio(waveform).cpu()
    wave = wave[0] if wave.ndim == 3 else wave[None] if wave.ndim == 1 else wave
    if wave.ndim != 2 or not 1 <= wave.shape[0] <= 2:
        raise L2AError(f"Audio must be mono or stereo, [S], [C, S] or [1, C, S]; got shape {tuple(wave.shape)}.")
    pcm = np.round(wave.numpy().T * 32767).astype("<i2")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
    try:
        with wavefile.open(str(temp), "wb") as out:
            out.setnchannels(pcm.shape[1])
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(pcm.tobytes())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return target


def replace_audio_track(video_path, waveform, sample_rate: int, dest, metadata: dict | None = None) -> Path:
    """`video_path`'s video stream copied packet for packet (never re-encoded) with `waveform` as its only sound,
    encoded once (AAC 192 kb/s) and cut to the video's length; written atomically to `dest` (mp4)."""
    target = Path(dest)
    stereo, rate = _stereo_audio(waveform, sample_rate, aac=True)
    check_output_file(target, "video")
    created = make_folder(target.parent)
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
    try:
        with av.open(str(video_path)) as source:
            if not source.streams.video:
                raise L2AError(f"{video_path} has no video stream.")
            video_in = source.streams.video[0]
            seconds = _stream_seconds(video_in) or (source.duration / av.time_base if source.duration else None)
            if seconds is not None:
                stereo = stereo[:, : round(seconds * rate)]
            with av.open(str(temp), "w", format="mp4") as out:
                out.metadata.update(_metadata_strings(metadata))
                video_out = out.add_stream_from_template(video_in)
                sound = out.add_stream("aac", rate=rate, layout="stereo")
                sound.codec_context.time_base = Fraction(1, rate)
                sound.codec_context.bit_rate = AUDIO_BIT_RATE
                for packet in source.demux(video_in):
                    if packet.dts is None:
                        continue
                    packet.stream = video_out
                    out.mux(packet)
                _encode_audio(out, sound, stereo, 0, stereo.shape[1])
                out.mux(sound.encode())
        publish(temp, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        remove_empty_folders(created)
        if isinstance(error, OSError):
            raise write_error(error, target) from error
        raise
    return target


# ----------------------------------------------------------------------------------------------------- images


def _pil_rgb_float(image: Image.Image) -> np.ndarray:
    """PIL image of any mode -> float32 [H, W, 3] in 0..1; alpha composited onto black, 16-bit kept precise."""
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode == "F":  # float images are taken as already in 0..1
        grey = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float32)), 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=-1)
    if "A" in image.getbands() or image.mode in ("RGBa", "La", "PA") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        return rgba[..., :3] * rgba[..., 3:]
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def load_image(path) -> torch.Tensor:
    """Image file -> float [H, W, 3] in 0..1, upright per EXIF, any mode converted to RGB, alpha onto black.
    A missing, unreadable, truncated or non-image file is an L2AError naming it."""
    path = _check_input_file(path, "image")
    try:
        with Image.open(path) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            pixels = _pil_rgb_float(upright)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise L2AError(f"'{path}' cannot be read as an image ({_reason(error)}): give a PNG, JPEG or WebP file. "
                       f"{_REEXPORT}") from error
    if pixels.shape[0] < 2 or pixels.shape[1] < 2:
        raise L2AError(f"'{path}' is {pixels.shape[1]}x{pixels.shape[0]} pixels: give an image of at least 2x2.")
    return torch.from_numpy(np.ascontiguousarray(pixels))


def cover_frames(pixels: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Float images [N, C, H, W] scaled to cover width x height and centre-cropped to it, the official way (ltx-pipelines
    `resize_and_center_crop`): bilinear without anti-aliasing, the scaled size rounded up."""
    src_h, src_w = pixels.shape[-2:]
    scale = max(height / src_h, width / src_w)
    new_h, new_w = math.ceil(src_h * scale), math.ceil(src_w * scale)
    pixels = torch.nn.functional.interpolate(pixels, size=(new_h, new_w), mode="bilinear", align_corners=False)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return pixels[:, :, top : top + height, left : left + width]


def to_uint8_rgb(image) -> np.ndarray:
    """uint8 [H, W, 3] from a ComfyUI IMAGE [B, H, W, C] (item 0), an [H, W, C] tensor/array or a PIL image."""
    if isinstance(image, Image.Image):
        if image.mode == "RGB":
            return np.array(image)
        return _to_uint8(_pil_rgb_float(image))
    if image.ndim == 4:
        if image.shape[0] == 0:
            raise L2AError("The IMAGE batch is empty.")
        image = image[0]
    return _rgb_uint8(image)


def crf_reencode(image_uint8: np.ndarray, crf: int) -> np.ndarray:
    """One-frame H.264 round trip at `crf`, as LTX-2 was trained on compressed conditioning images.

    Bit-exact with the official pipelines: crop to even sizes (floor), rgb24 -> yuv420p with swscale defaults,
    libx264 preset veryfast at frame rate 1 in an in-memory mp4, decode back to rgb24. `crf=0` returns the input.
    """
    if crf == 0:
        return image_uint8
    if not 0 < int(crf) <= 51:
        raise L2AError(f"Conditioning CRF must be in 0..51 (0 = no re-compression); got {crf}.")
    if image_uint8.dtype != np.uint8 or image_uint8.ndim != 3 or image_uint8.shape[-1] != 3:
        raise L2AError(
            f"CRF re-compression needs a uint8 [H, W, 3] image; got {image_uint8.dtype} {image_uint8.shape}."
        )
    height, width = image_uint8.shape[0] // 2 * 2, image_uint8.shape[1] // 2 * 2
    if height == 0 or width == 0:
        raise L2AError(f"Image {image_uint8.shape[1]}x{image_uint8.shape[0]} is too small for H.264 (needs 2x2).")
    pixels = np.ascontiguousarray(image_uint8[:height, :width])
    buffer = BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options={"crf": str(int(crf)), "preset": "veryfast"})
        stream.width, stream.height = width, height
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = next(container.decode(video=0))
        return decoded.to_ndarray(format="rgb24")
