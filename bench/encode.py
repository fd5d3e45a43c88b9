"""What the pack's mp4 writer costs over a bare PyAV encode loop with the same codec settings.

`media.write_video` (defaults: mp4, quality high, write mode balanced) gets what L2A_SaveVideo gets: float IMAGE
frames [F, H, W, 3] in 0..1 and a stereo waveform. The bare loop gets the same tensors and does only what any
writer must: float to uint8, RGB to BT.709 yuv420p, libx264 with the pack's CRF/preset, AAC at the pack's bit rate,
the pack's container options (faststart, movie timescale); its settings are read from `pipelines/media.py`, and
the script checks that both files hold the same video and audio packets. The Debian `ffmpeg` command line, fed the
same frames as raw RGB through a pipe (uint8 conversion not timed), is timed for information only: it links other
FFmpeg and x264 builds than PyAV's wheel. Runs alternate after a 2-frame warm-up of each; x264 picks its own
thread count in all three.

    python bench/encode.py [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import torch
from _common import footer, header, median, say, spread, table, timed

from ltx2_anywhere.pipelines import media

TARGET = 1.1
FPS = 24
SAMPLE_RATE = 24000
QUALITY, WRITE_MODE = "high", "balanced"  # write_video's defaults


def make_clip(count: int, height: int, width: int):
    """Deterministic frames (gradients and stripes moving at different speeds over a fixed grain) and a stereo
    tone with a little noise, as float tensors like the decoders return."""
    tau = 2 * torch.pi
    y = torch.linspace(0, 1, height).view(1, height, 1)
    x = torch.linspace(0, 1, width).view(1, 1, width)
    t = (torch.arange(count) / count).view(count, 1, 1)
    red = ((x + t) % 1.0).expand(count, height, width)
    green = 0.5 + 0.4 * torch.sin(tau * (3 * x + y + t))
    blue = 0.5 + 0.4 * torch.sin(tau * (2 * x - 3 * y - 2 * t))
    generator = torch.Generator().manual_seed(0)
    frames = torch.stack([red, green, blue], dim=-1)
    frames.add_((torch.rand(height, width, 3, generator=generator) - 0.5) * 0.03).clamp_(0, 1)
    seconds = torch.arange(round(count / FPS * SAMPLE_RATE)) / SAMPLE_RATE
    noise = (torch.rand(2, seconds.numel(), generator=generator) - 0.5) * 0.02
    audio = torch.stack([0.3 * torch.sin(tau * 440 * seconds), 0.3 * torch.sin(tau * 660 * seconds)]) + noise
    return frames, audio.to(torch.float32)


def pack_writer(path: Path, frames, audio) -> None:
    media.write_video(path, frames, FPS, audio=audio, sample_rate=SAMPLE_RATE, quality=QUALITY, write_mode=WRITE_MODE)


def bare_pyav(path: Path, frames, audio) -> None:
    """The plainest PyAV loop that writes the file the pack writes."""
    codec, pix_fmt, options = media._video_settings("mp4", QUALITY, WRITE_MODE, None, None)
    rate = Fraction(FPS)
    count, height, width = frames.shape[:3]
    container_options = media._container_options("mp4", rate, SAMPLE_RATE, count)
    with av.open(str(path), "w", format="mp4", options=container_options) as container:
        video = container.add_stream(codec, rate=rate, options=options)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        context = video.codec_context
        context.time_base = 1 / rate
        context.colorspace = context.color_primaries = context.color_trc = context.color_range = 1  # BT.709, limited
        sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        sound.codec_context.time_base = Fraction(1, SAMPLE_RATE)
        sound.codec_context.bit_rate = media.AUDIO_BIT_RATE
        for index in range(count):
            rgb = frames[index].mul(255).round_().to(torch.uint8).numpy()
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame = frame.reformat(format=pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
            frame.pts, frame.time_base = index, 1 / rate
            container.mux(video.encode(frame))
        container.mux(video.encode())
        chunk = av.AudioFrame.from_ndarray(audio.numpy(), format="fltp", layout="stereo")
        chunk.sample_rate, chunk.pts, chunk.time_base = SAMPLE_RATE, 0, Fraction(1, SAMPLE_RATE)
        container.mux(sound.encode(chunk))
        container.mux(sound.encode())


def ffmpeg_command(ffmpeg: str, width: int, height: int, audio_file: Path, out: Path) -> list[str]:
    """The command line for the same settings: raw RGB on stdin, raw float stereo from a file."""
    _codec, pix_fmt, options = media._video_settings("mp4", QUALITY, WRITE_MODE, None, None)
    timescale = media._movie_timescale(Fraction(FPS), SAMPLE_RATE)
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(FPS), "-i", "pipe:0",
        "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "2", "-i", str(audio_file),
        "-map", "0:v", "-map", "1:a",
        "-vf", f"scale=out_color_matrix=bt709:out_range=tv,format={pix_fmt}",
        "-c:v", "libx264", "-preset", options["preset"], "-crf", options["crf"],
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
        "-c:a", "aac", "-b:a", str(media.AUDIO_BIT_RATE),
        "-movflags", "+faststart", "-movie_timescale", str(timescale), str(out),
    ]


def packet_digests(path: Path) -> dict[str, str]:
    """A hash of each stream's packets, to show two files hold the same encoded video and audio."""
    digests = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size:
                digests.setdefault(packet.stream.type, hashlib.sha256()).update(bytes(packet))
    return {kind: digest.hexdigest()[:12] for kind, digest in digests.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed writes of each (>= 3 for a figure)")
    parser.add_argument("--quick", action="store_true", help="9 frames of 256x144, 2 repeats: checks the script")
    args = parser.parse_args(argv)
    count, width, height = (9, 256, 144) if args.quick else (121, 1280, 704)
    repeats = 2 if args.quick else args.repeats

    header("mp4 writer vs a bare PyAV encode loop")
    frames, audio = make_clip(count, height, width)
    raw = frames.mul(255).round_().to(torch.uint8).numpy().tobytes()
    ffmpeg = shutil.which("ffmpeg")
    say(f"clip: {count} frames of {width}x{height} @ {FPS} fps (float32 IMAGE, {frames.numel() * 4 / 2**20:.0f} MiB) "
        f"+ stereo {SAMPLE_RATE} Hz audio ({audio.shape[1] / SAMPLE_RATE:.3f} s); {repeats} repeats each, alternating")
    times = {"pack": [], "bare": [], "ffmpeg": []}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        audio_file = folder / "audio.f32"
        audio.T.contiguous().numpy().tofile(audio_file)
        outputs = {name: folder / f"{name}.mp4" for name in times}
        warm = round(2 / FPS * SAMPLE_RATE)  # first-call costs (codec libraries paged in) stay out of the figures
        pack_writer(outputs["pack"], frames[:2], audio[:, :warm])
        bare_pyav(outputs["bare"], frames[:2], audio[:, :warm])
        command = ffmpeg_command(ffmpeg, width, height, audio_file, outputs["ffmpeg"]) if ffmpeg else None
        for _ in range(repeats):
            times["pack"].append(timed(lambda: pack_writer(outputs["pack"], frames, audio))[:2])
            times["bare"].append(timed(lambda: bare_pyav(outputs["bare"], frames, audio))[:2])
            if command:
                times["ffmpeg"].append(timed(lambda: subprocess.run(command, input=raw, check=True))[:2])
        sizes = {name: path.stat().st_size / 2**20 for name, path in outputs.items() if path.exists()}
        same = packet_digests(outputs["pack"]) == packet_digests(outputs["bare"])

    def seconds(name, kind):  # kind 0: wall, 1: CPU (all threads, and ffmpeg's process)
        return [run[kind] for run in times[name]]

    labels = {"pack": "pack: media.write_video", "bare": "bare PyAV loop (reference)",
              "ffmpeg": "ffmpeg CLI, raw RGB piped (information)"}
    table(["writer", "median s", "min s", "max s", "median CPU s", "file MiB"], [
        [label, *spread(seconds(name, 0), digits=2), f"{median(seconds(name, 1)):.2f}", f"{sizes[name]:.2f}"]
        for name, label in labels.items() if times[name]
    ])
    ratio = median(seconds("pack", 0)) / median(seconds("bare", 0))
    paired = median([p / b for p, b in zip(seconds("pack", 0), seconds("bare", 0))])
    cpu_ratio = median(seconds("pack", 1)) / median(seconds("bare", 1))
    best = min(seconds("pack", 0)) / min(seconds("bare", 0))
    say(f"cross-checks, less moved by other processes: fastest / fastest {best:.3f}, median per-pair ratio "
        f"{paired:.3f}, CPU-time ratio {cpu_ratio:.3f}")
    say(f"pack and bare files hold identical video and audio packets: {'yes' if same else 'NO'}")
    if ffmpeg:
        version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout.split(" Copyright")[0]
        say(f"{version} (PyAV {av.__version__} bundles FFmpeg {av.ffmpeg_version_info}); "
            f"ffmpeg CLI / bare PyAV = {median(seconds('ffmpeg', 0)) / median(seconds('bare', 0)):.2f}x")
    else:
        say("ffmpeg CLI: not installed, not measured (apt-get install ffmpeg to add it)")
    footer()
    verdict = "holds" if ratio <= TARGET else "MISSED"
    say(f"pack writer / bare PyAV = {ratio:.3f}x (target <= {TARGET:g}: {verdict})")


if __name__ == "__main__":
    main()
