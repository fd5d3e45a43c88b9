"""Media I/O without ComfyUI: mp4 (H.264 + AAC) writing and reading, image loading and fitting, and the
training-style CRF round trip applied to conditioning images.

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

from .errors import L2AError

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


def _check_sample_rate(sample_rate, aac: bool) -> int:
    if sample_rate is None or int(sample_rate) != sample_rate or int(sample_rate) <= 0:
        raise L2AError(f"Audio sample rate must be a positive integer (24000 for LTX-2); got {sample_rate!r}.")
    rate = int(sample_rate)
    if aac and rate not in AAC_SAMPLE_RATES:
        raise L2AError(f"AAC cannot store audio at {rate} Hz; resample to one of {AAC_SAMPLE_RATES} (LTX-2: 24000).")
    return rate


def _stereo_audio(audio, sample_rate) -> tuple[np.ndarray, int]:
    """Audio argument of write_video -> (float32 [2, S] sanitized, sample rate)."""
    if isinstance(audio, dict):
        sample_rate = audio.get("sample_rate") if sample_rate is None else sample_rate
        audio = audio["waveform"]
    rate = _check_sample_rate(sample_rate, aac=True)
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
            values = torch.nan_to_num(values.detach().float(), nan=0.0).clamp(0.0, 1.0).mul(255.0).round()
            values = values.to(torch.uint8)
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
    crf: int = 19,
    preset: str = "medium",
    overwrite: bool = True,
) -> Path:
    """Write an mp4 (H.264 yuv420p BT.709, optional stereo AAC) atomically; return the final path.

    `frames`: [F, H, W, C] float 0..1 or uint8 (torch or numpy), or a sequence of [H, W, C] frames; odd sizes are
    padded to even by repeating the last row/column. `audio`: [S], [C, S], [1, C, S] or an AUDIO dict; mono is
    duplicated to stereo, NaN/inf become 0, values are clipped to [-1, 1]. `fps` may be fractional (23.976 is
    stored as 24000/1001) and the video lasts exactly F/fps. Tags go into the container (`use_metadata_tags`).
    The file is encoded to a hidden temporary beside the target and renamed; on failure nothing is left.
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it.")
    rate = _fps_fraction(fps)
    count = len(frames)
    if count == 0:
        raise L2AError("Cannot write a video with no frames.")
    if not 0 <= int(crf) <= 51:
        raise L2AError(f"H.264 CRF must be in 0..51 (lower is better quality); got {crf}.")
    stereo, audio_rate = _stereo_audio(audio, sample_rate) if audio is not None else (None, None)

    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
    try:
        _encode_mp4(temp, frames, count, rate, stereo, audio_rate, _metadata_strings(metadata), int(crf), preset)
        _publish(temp, target, overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return target


def _publish(temp: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished temporary onto the target; without overwrite, a hard link refuses a target that
    appeared during encoding (filesystems without hard links fall back to check-then-rename)."""
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)
    except FileExistsError:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it.") from None
    except OSError:
        if target.exists():
            raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it.") from None
        os.replace(temp, target)
        return
    os.unlink(temp)


def _movie_timescale(rate: Fraction, audio_rate: int | None) -> int:
    """mp4 edit lists (B-frame delay, AAC priming) are counted in the movie timescale, 1/1000 s by default, which
    would round F/fps and S/rate to whole milliseconds; a common multiple of both rates keeps them exact."""
    scale = math.lcm(1000, rate.numerator, audio_rate or 1)
    return scale if scale < 2**31 else 1000


def _encode_mp4(temp, frames, count, rate, stereo, audio_rate, tags, crf, preset) -> None:
    first = _pad_even(_rgb_uint8(frames[0]))
    height, width = first.shape[:2]
    options = {"movflags": "+faststart+use_metadata_tags", "movie_timescale": str(_movie_timescale(rate, audio_rate))}
    container = av.open(str(temp), "w", format="mp4", options=options)
    try:
        container.metadata.update(tags)
        video = container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = 1 / rate
        # BT.709 limited range, tagged, so players do not guess the matrix from the frame size.
        video.codec_context.colorspace = video.codec_context.color_primaries = video.codec_context.color_trc = 1
        video.codec_context.color_range = 1
        sound = None
        if stereo is not None:
            sound = container.add_stream("aac", rate=audio_rate, layout="stereo")
            sound.codec_context.time_base = Fraction(1, audio_rate)
            sound.codec_context.bit_rate = AUDIO_BIT_RATE
        written = 0
        for index in range(count):
            rgb = first if index == 0 else _pad_even(_rgb_uint8(frames[index]))
            if rgb.shape[:2] != (height, width):
                raise L2AError(f"Frame {index} is {rgb.shape[1]}x{rgb.shape[0]}, the first frame {width}x{height}.")
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            frame.pts, frame.time_base = index, video.codec_context.time_base
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


def _stream_seconds(stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def probe_video(path) -> dict:
    """Streams, sizes, rates, frame count, durations and container tags of a media file (PyAV)."""
    with av.open(str(path)) as container:
        videos, audios = container.streams.video, container.streams.audio
        info = {
            "video_streams": len(videos),
            "audio_streams": len(audios),
            "tags": dict(container.metadata),
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
        if videos and info["frames"] is None:  # containers without a frame count: count the packets
            info["frames"] = sum(1 for packet in container.demux(videos[0]) if packet.size)
        if videos and info["video_duration"] is None and info["fps"]:  # e.g. Matroska keeps no stream duration
            info["video_duration"] = float(info["frames"] / info["fps"])
    return info


def read_video(path) -> tuple[torch.Tensor, Fraction, dict | None]:
    """Decode the first video stream to float [F, H, W, 3] in 0..1, its frame rate, and the first audio stream as
    a ComfyUI AUDIO dict (float planar, trimmed to the stream's duration so encoder padding is dropped) or None."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise L2AError(f"{path} has no video stream.")
        video = container.streams.video[0]
        sound = container.streams.audio[0] if container.streams.audio else None
        fps = video.average_rate or video.guessed_rate
        pictures, chunks, resampler = [], [], None
        if sound is not None:
            resampler = av.AudioResampler(
                format="fltp", layout=sound.codec_context.layout, rate=sound.codec_context.sample_rate
            )
        streams = [video] if sound is None else [video, sound]
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if packet.stream is video:
                    # The matrix follows the frame's tag (PyAV default); the range must be passed explicitly.
                    full = frame.color_range == 2
                    pictures.append(frame.to_ndarray(format="rgb24", src_color_range="JPEG" if full else None))
                else:
                    chunks.extend(piece.to_ndarray() for piece in resampler.resample(frame))
        if resampler is not None:
            chunks.extend(piece.to_ndarray() for piece in resampler.resample(None))
        if not pictures:
            raise L2AError(f"{path}: the video stream decoded to no frames.")
        frames = torch.from_numpy(np.stack(pictures)).to(torch.float32).div_(255.0)
        if fps is None:
            fps = Fraction(len(pictures)) / Fraction(_stream_seconds(video) or 1.0).limit_denominator(1001)
        audio = None
        if sound is not None and chunks:
            wave = np.concatenate(chunks, axis=1)
            seconds = _stream_seconds(sound)
            if seconds is not None:
                wave = wave[:, : round(seconds * sound.codec_context.sample_rate)]
            audio = comfy_audio(torch.from_numpy(np.ascontiguousarray(wave)), sound.codec_context.sample_rate)
    return frames, Fraction(fps), audio


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
    """Image file -> float [H, W, 3] in 0..1, upright per EXIF, any mode converted to RGB, alpha onto black."""
    with Image.open(path) as image:
        image.load()
        upright = ImageOps.exif_transpose(image)
        return torch.from_numpy(np.ascontiguousarray(_pil_rgb_float(upright)))


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


def fit_image(image_uint8: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height keeping the aspect ratio (Lanczos), then centre-crop.

    The input itself is returned when it already has the size, so no filter ever touches matching pixels.
    """
    if width < 1 or height < 1:
        raise L2AError(f"Target size must be at least 1x1; got {width}x{height}.")
    source_h, source_w = image_uint8.shape[:2]
    if (source_w, source_h) == (width, height):
        return image_uint8
    if source_w < 1 or source_h < 1:
        raise L2AError(f"Cannot fit an empty image ({source_w}x{source_h}).")
    scale = max(width / source_w, height / source_h)
    scaled_w = max(width, round(source_w * scale))
    scaled_h = max(height, round(source_h * scale))
    resized = Image.fromarray(np.ascontiguousarray(image_uint8[..., :3])).resize(
        (scaled_w, scaled_h), Image.Resampling.LANCZOS
    )
    left, top = (scaled_w - width) // 2, (scaled_h - height) // 2
    return np.asarray(resized.crop((left, top, left + width, top + height)))


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
