"""Media I/O: mp4 writing/probing/reading, atomic output, image loading/fitting and the CRF round trip."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ltx2_anywhere.pipelines import media
from ltx2_anywhere.pipelines.errors import L2AError

from media_samples import ExplodingFrames, gradient_frames

SR = 24000
SAMPLE = Path(media.__file__).resolve().parent.parent / "assets" / "sample.png"


def _tone(seconds=0.69, channels=2):
    t = torch.arange(round(seconds * SR)) / SR
    return torch.stack([0.4 * torch.sin(2 * torch.pi * (440 + 220 * c) * t) for c in range(channels)])


def test_video_with_audio_streams_sizes_and_durations(tmp_path):
    path = media.write_video(tmp_path / "clip.mp4", gradient_frames(), 24, audio=_tone(), sample_rate=SR)
    info = media.probe_video(path)
    assert (info["video_streams"], info["audio_streams"]) == (1, 1)
    assert (info["video_codec"], info["audio_codec"], info["pix_fmt"]) == ("h264", "aac", "yuv420p")
    assert (info["width"], info["height"], info["frames"]) == (96, 64, 17)
    assert info["fps"] == 24
    assert info["video_duration"] == pytest.approx(17 / 24, abs=1e-6)
    assert (info["sample_rate"], info["channels"]) == (SR, 2)
    assert info["audio_duration"] == pytest.approx(0.69, abs=1e-6)
    assert abs(info["video_duration"] - info["audio_duration"]) < 1 / 24 + 1024 / SR
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.parametrize(("fps", "exact"), [(23.976, Fraction(24000, 1001)), (Fraction(25, 2), Fraction(25, 2))])
def test_fractional_fps_keeps_exact_duration(tmp_path, fps, exact):
    info = media.probe_video(media.write_video(tmp_path / "f.mp4", gradient_frames(9), fps))
    assert info["fps"] == exact
    assert info["frames"] == 9
    assert info["video_duration"] == pytest.approx(float(9 / exact), abs=1e-6)
    assert (info["video_streams"], info["audio_streams"]) == (1, 0)
    assert info["audio_codec"] is None


def test_nan_audio_and_mono_numpy_are_written_and_decode_finite(tmp_path):
    mono = _tone(channels=1)[0].numpy()
    mono[100:3000] = np.nan
    mono[4000] = np.inf
    path = media.write_video(tmp_path / "nan.mp4", gradient_frames().numpy(), 24, audio=mono, sample_rate=SR)
    frames, fps, audio = media.read_video(path)
    wave = audio["waveform"]
    assert wave.shape == (1, 2, mono.shape[0]) and wave.dtype == torch.float32
    assert torch.isfinite(wave).all()
    assert (wave[0, 0] - wave[0, 1]).abs().mean() < 1e-3  # mono duplicated (joint-stereo coding is near-exact)
    assert wave[0, :, 1000:2000].abs().max() < 0.05  # the NaN stretch became silence


def test_read_video_round_trip(tmp_path):
    source = gradient_frames()
    tone = _tone()
    path = media.write_video(tmp_path / "rt.mp4", source, 24, audio={"waveform": tone[None], "sample_rate": SR})
    frames, fps, audio = media.read_video(path)
    assert frames.shape == (17, 64, 96, 3) and frames.dtype == torch.float32
    assert 0.0 <= frames.min() and frames.max() <= 1.0
    assert fps == Fraction(24)
    assert (frames - source).abs().mean() < 0.01
    assert audio["sample_rate"] == SR
    assert audio["waveform"].shape == (1, 2, tone.shape[1])
    assert (audio["waveform"][0] - tone).abs().mean() < 0.02  # aligned: AAC priming is hidden


def test_uint8_frames_and_odd_sizes_are_padded_to_even(tmp_path):
    frames = (gradient_frames(5, 61, 97) * 255).round().to(torch.uint8)
    path = media.write_video(tmp_path / "odd.mp4", frames, 24)
    decoded, _, audio = media.read_video(path)
    assert audio is None
    assert decoded.shape == (5, 62, 98, 3)
    assert (decoded[:, :61, :97] - frames.float() / 255).abs().mean() < 0.01


def test_metadata_tags_round_trip(tmp_path):
    tags = {"prompt": 'a fox runs through snow, "quoted" ünïcode', "seed": 1234, "settings": {"steps": 8}}
    path = media.write_video(tmp_path / "m.mp4", gradient_frames(3), 24, metadata=tags)
    stored = media.probe_video(path)["tags"]
    assert stored["prompt"] == tags["prompt"]
    assert stored["seed"] == "1234"
    assert stored["settings"] == '{"steps": 8}'


def test_failed_encode_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        media.write_video(tmp_path / "bad.mp4", ExplodingFrames(gradient_frames(9)), 24, audio=_tone(), sample_rate=SR)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(Exception):  # noqa: B017 - whatever libx264 raises for an unknown preset
        media.write_video(tmp_path / "bad.mp4", gradient_frames(3), 24, preset="no-such-preset")
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_keeps_previous_file_and_overwrite_flag(tmp_path):
    target = media.write_video(tmp_path / "keep.mp4", gradient_frames(3), 24)
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        media.write_video(target, ExplodingFrames(gradient_frames(9)), 24)
    assert target.read_bytes() == before
    with pytest.raises(FileExistsError):
        media.write_video(target, gradient_frames(3), 24, overwrite=False)
    media.write_video(target, gradient_frames(5), 24)  # overwrite is the default
    assert media.probe_video(target)["frames"] == 5
    media.write_video(tmp_path / "new.mp4", gradient_frames(2), 24, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4", "new.mp4"]


def test_bad_inputs_are_rejected_before_encoding(tmp_path):
    with pytest.raises(L2AError, match="AAC"):
        media.write_video(tmp_path / "a.mp4", gradient_frames(3), 24, audio=_tone(), sample_rate=23000)
    with pytest.raises(L2AError, match="mono or stereo"):
        media.write_video(tmp_path / "a.mp4", gradient_frames(3), 24, audio=torch.zeros(6, 100), sample_rate=SR)
    with pytest.raises(L2AError, match="no frames"):
        media.write_video(tmp_path / "a.mp4", torch.zeros(0, 8, 8, 3), 24)
    assert list(tmp_path.iterdir()) == []


def test_audio_helpers():
    clean = media.sanitize_audio(np.array([np.nan, np.inf, -np.inf, 2.0, -0.5]))
    assert clean.dtype == torch.float32
    assert clean.tolist() == [0.0, 0.0, 0.0, 1.0, -0.5]
    audio = media.comfy_audio(torch.ones(2, 10, dtype=torch.float64), 24000)
    assert audio["waveform"].shape == (1, 2, 10) and audio["waveform"].dtype == torch.float32
    assert audio["sample_rate"] == 24000 and isinstance(audio["sample_rate"], int)
    assert media.comfy_audio(torch.ones(3, 2, 10), 24000)["waveform"].shape == (3, 2, 10)


def test_load_image_modes_and_alpha(tmp_path):
    rgba = np.zeros((61, 97, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 128
    rgba[:, :10, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    image = media.load_image(tmp_path / "rgba.png")
    assert image.shape == (61, 97, 3) and image.dtype == torch.float32
    assert image[:, :10].abs().max() == 0  # transparent -> black
    assert image[0, 50, 0].item() == pytest.approx(200 / 255 * 128 / 255, abs=1e-6)

    Image.fromarray(rgba[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    Image.fromarray(rgba[..., 0]).save(tmp_path / "l.png")
    Image.fromarray((np.arange(97 * 61).reshape(61, 97) * 11).astype(np.uint16)).save(tmp_path / "i16.png")
    Image.new("LA", (5, 3), (255, 0)).save(tmp_path / "la.png")
    for name in ("p.png", "l.png", "i16.png"):
        loaded = media.load_image(tmp_path / name)
        assert loaded.shape == (61, 97, 3), name
        assert 0 <= loaded.min() and loaded.max() <= 1, name
    assert media.load_image(tmp_path / "l.png")[0, 0].tolist() == pytest.approx([200 / 255] * 3)
    sixteen = media.load_image(tmp_path / "i16.png")
    assert sixteen[0, 1, 0].item() == pytest.approx(11 / 65535, abs=1e-7)  # 16-bit precision kept
    assert media.load_image(tmp_path / "la.png").abs().max() == 0


def test_load_image_applies_exif_orientation(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    image.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    loaded = media.load_image(tmp_path / "rot.jpg")
    assert loaded.shape == (40, 20, 3)
    assert loaded[:20].mean() > 0.9 and loaded[20:].mean() < 0.1  # white half now on top


def test_sample_asset_is_small_and_loads():
    assert SAMPLE.stat().st_size < 40_000
    assert media.load_image(SAMPLE).shape == (160, 256, 3)


def test_to_uint8_rgb_inputs():
    batch = torch.zeros(2, 5, 7, 4)
    batch[0, ..., 1] = 1.0
    batch[0, ..., 3] = 0.5
    batch[1] = 1.0
    out = media.to_uint8_rgb(batch)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    assert out[0, 0].tolist() == [0, 128, 0]  # batch item 0, composited onto black
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(media.to_uint8_rgb(array), array)
    assert np.array_equal(media.to_uint8_rgb(torch.from_numpy(array).float() / 255), array)
    assert np.array_equal(media.to_uint8_rgb(Image.fromarray(array)), array)
    assert media.to_uint8_rgb(Image.fromarray(array).convert("L")).shape == (5, 7, 3)


def test_crf_reencode_matches_diffusers_exactly():
    from diffusers.pipelines.ltx2.utils import apply_image_conditioning_crf

    random = np.random.default_rng(2).integers(0, 256, (61, 97, 3), dtype=np.uint8)
    sample = (media.load_image(SAMPLE).numpy() * 255).round().astype(np.uint8)
    for image, crf in ((random, 33), (sample, 33), (sample, 20)):
        ours = media.crf_reencode(image, crf)
        theirs = apply_image_conditioning_crf(image, crf)
        assert ours.dtype == np.uint8 and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)
    assert media.crf_reencode(random, 33).shape == (60, 96, 3)
    assert media.crf_reencode(random, 0) is random
    assert not np.array_equal(media.crf_reencode(sample, 33), sample)


def test_variable_frame_rate_is_retimed_to_a_constant_rate(tmp_path):
    import av

    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        times_ms = [0, 42, 84, 250, 292, 334, 500, 542]
        for index, ms in enumerate(times_ms):
            picture = np.full((64, 64, 3), index * 30, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    frames, fps, _audio, note = media.read_clip(path)
    assert "variable frame rate" in note and "retimed" in note
    assert frames.shape[0] == round(0.542 * float(fps)) + 1
    _, _, _, constant_note = media.read_clip(media.write_video(tmp_path / "cfr.mp4", gradient_frames(9), 24))
    assert constant_note == ""


def test_read_audio_reads_a_wav_and_refuses_a_silent_video(tmp_path):
    import wave

    path = tmp_path / "tone.wav"
    samples = (np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440) * 20000).astype(np.int16)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(samples.tobytes())
    waveform, rate = media.read_audio(path)
    assert rate == 16000 and waveform.shape == (1, 16000)
    silent = media.write_video(tmp_path / "silent.mp4", gradient_frames(9), 24)
    with pytest.raises(L2AError, match="has no audio stream"):
        media.read_audio(silent)
