"""Output formats of write_video and L2A_SaveVideo: mp4, webm, mov and gif, qualities, write modes, tags, atomicity."""

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.media import L2A_SaveVideo
from ltx2_anywhere.pipelines import media
from ltx2_anywhere.pipelines.errors import L2AError

from media_samples import ExplodingFrames, gradient_frames

SR = 24000
FPS = 24
# codec names as PyAV reports them, and one audio codec frame in seconds (PCM has none)
CODECS = {
    "mp4": ("h264", "aac", 1024 / SR),
    "webm": ("vp9", "opus", 960 / 48000),
    "mov": ("prores", "pcm_s16le", 0.0),
    "gif": ("gif", None, None),
}


def _tone(seconds=0.69):
    t = torch.arange(round(seconds * SR)) / SR
    return torch.stack([0.4 * torch.sin(2 * torch.pi * (440 + 220 * c) * t) for c in range(2)])


@pytest.mark.parametrize("fmt", media.FORMATS)
def test_each_format_has_its_codecs_streams_frames_and_matching_durations(tmp_path, fmt):
    path = media.write_video(tmp_path / f"clip.{fmt}", gradient_frames(), FPS, audio=_tone(), sample_rate=SR, format=fmt)
    video_codec, audio_codec, codec_frame = CODECS[fmt]
    with av.open(str(path)) as container:  # PyAV itself opens it and sees the codecs
        assert [s.codec_context.name for s in container.streams.video] == [video_codec]
        assert [s.codec_context.name for s in container.streams.audio] == ([audio_codec] if audio_codec else [])
        assert len(container.streams) == (2 if audio_codec else 1)
    info = media.probe_video(path)
    assert (info["width"], info["height"], info["frames"]) == (96, 64, 17)
    # exact in mp4/mov; Matroska rounds each packet's time and length to the millisecond, GIF to the centisecond
    tolerance = {"mp4": 1e-6, "mov": 1e-6, "webm": 2e-3, "gif": 0.005}[fmt]
    assert info["video_duration"] == pytest.approx(17 / FPS, abs=tolerance)
    if audio_codec:
        assert info["channels"] == 2
        assert info["sample_rate"] == (48000 if fmt == "webm" else SR)
        assert info["audio_duration"] == pytest.approx(0.69, abs=tolerance)
        assert abs(info["video_duration"] - info["audio_duration"]) < 1 / FPS + codec_frame
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"clip.{fmt}"]


@pytest.mark.parametrize("fmt", media.FORMATS)
def test_every_quality_and_write_mode_is_accepted_and_quality_orders_the_size(tmp_path, fmt):
    sizes = {}
    for mode in media.WRITE_MODES:
        for quality in media.QUALITIES:
            path = media.write_video(tmp_path / f"{mode}_{quality}.{fmt}", gradient_frames(), FPS, quality=quality,
                                     write_mode=mode)
            sizes[mode, quality] = path.stat().st_size
            assert media.probe_video(path)["frames"] == 17
    for mode in media.WRITE_MODES:
        low, medium, high, maximum = (sizes[mode, quality] for quality in media.QUALITIES)
        assert low < medium < high <= maximum, (mode, low, medium, high, maximum)
        if fmt != "mov":  # ProRes 4444 and 4444 XQ both reach the finest quantiser on this tiny clip
            assert high < maximum
    if fmt == "mov":  # intra-only: the write mode changes nothing
        assert all(len({sizes[mode, q] for mode in media.WRITE_MODES}) == 1 for q in media.QUALITIES)
    if fmt == "gif":  # dithering costs bytes
        assert all(sizes["balanced", q] > sizes["small", q] for q in media.QUALITIES)


def test_encoder_settings_follow_the_table(tmp_path):
    with av.open(str(media.write_video(tmp_path / "x.mov", gradient_frames(3), FPS, quality="maximum"))) as container:
        assert container.streams.video[0].codec_context.profile == "XQ"
    with av.open(str(media.write_video(tmp_path / "h.mov", gradient_frames(3), FPS, quality="high"))) as container:
        assert container.streams.video[0].codec_context.profile == "4444"
    info = media.probe_video(media.write_video(tmp_path / "m.mov", gradient_frames(3), FPS, audio=_tone(0.1),
                                               sample_rate=SR, quality="maximum"))
    assert info["audio_codec"] == "pcm_s24le"
    assert media.probe_video(tmp_path / "x.mov")["pix_fmt"].startswith("yuv444p")
    # an explicit CRF overrides the quality's for mp4 and webm
    coarse = media.write_video(tmp_path / "c.webm", gradient_frames(), FPS, crf=63).stat().st_size
    fine = media.write_video(tmp_path / "f.webm", gradient_frames(), FPS, crf=4).stat().st_size
    assert coarse < fine


def test_mov_pcm_audio_is_sample_exact_and_webm_audio_is_resampled_to_48k(tmp_path):
    tone = _tone()
    _, _, audio = media.read_video(media.write_video(tmp_path / "a.mov", gradient_frames(), FPS, audio=tone, sample_rate=SR))
    assert audio["sample_rate"] == SR and audio["waveform"].shape == (1, 2, tone.shape[1])
    assert (audio["waveform"][0] - tone).abs().max() < 1e-4  # 16-bit PCM, no priming, no padding
    frames, fps, audio = media.read_video(media.write_video(tmp_path / "a.webm", gradient_frames(), FPS, audio=tone,
                                                            sample_rate=SR))
    assert frames.shape == (17, 64, 96, 3) and fps == FPS
    assert audio["sample_rate"] == 48000
    assert audio["waveform"].shape[2] == pytest.approx(0.69 * 48000, abs=48)  # Opus's end trim, to the ms
    mono = np.full(SR // 10, np.nan, dtype=np.float32)  # NaN audio still writes as silence in every format
    for fmt in ("mp4", "webm", "mov"):
        info = media.probe_video(media.write_video(tmp_path / f"nan.{fmt}", gradient_frames(3), FPS, audio=mono,
                                                   sample_rate=SR))
        assert info["audio_streams"] == 1 and info["channels"] == 2


def test_gif_drops_audio_rounds_delays_to_centiseconds_and_loops(tmp_path):
    path = media.write_video(tmp_path / "a.gif", gradient_frames(), FPS, audio=_tone(), sample_rate=SR,
                             metadata={"comment": "not stored"})
    info = media.probe_video(path)
    assert (info["video_streams"], info["audio_streams"], info["tags"]) == (1, 0, {})
    with Image.open(path) as image:
        assert image.info["loop"] == 0  # forever
        delays = []
        for index in range(image.n_frames):
            image.seek(index)
            delays.append(image.info["duration"])
    assert set(delays) == {40, 50} and sum(delays) == 710  # 17/24 s = 70.8 cs, frame by frame rounded from exact
    notes = media.format_notes("gif", FPS, has_audio=True, has_metadata=True)
    assert "GIF has no audio track: the audio was not written." in notes
    assert any("metadata" in note for note in notes)
    assert any("4 or 5/100 s" in note for note in notes)
    assert media.format_notes("gif", 25, has_audio=False) == []  # 4 cs exactly
    assert media.format_notes("mp4", 23.976, has_audio=True, has_metadata=True) == []
    with pytest.raises(L2AError, match="at most 50 fps"):
        media.write_video(tmp_path / "fast.gif", gradient_frames(3), 60)
    assert not (tmp_path / "fast.gif").exists()


@pytest.mark.parametrize("fmt", ["mp4", "mov", "webm"])
def test_tags_round_trip(tmp_path, fmt):
    workflow = {"nodes": [{"id": 1, "type": "L2A_Sampler"}], "note": "ünïcode \"quoted\""}
    tags = {
        "comment": "seed 1234 | 8 steps | 768x512 | 24 fps",
        "prompt": json.dumps({"1": {"class_type": "L2A_Sampler", "inputs": {"seed": 1234}}}),
        "workflow": json.dumps(workflow),
        "l2a_settings": {"steps": 8, "prompt": "a fox runs through snow"},
    }
    path = media.write_video(tmp_path / f"t.{fmt}", gradient_frames(3), FPS, audio=_tone(0.1), sample_rate=SR, metadata=tags)
    stored = media.probe_video(path)["tags"]
    assert stored["comment"] == tags["comment"]
    assert json.loads(stored["prompt"])["1"]["inputs"]["seed"] == 1234
    assert json.loads(stored["workflow"]) == workflow
    assert json.loads(stored["l2a_settings"]) == tags["l2a_settings"]


@pytest.mark.parametrize("fmt", ["webm", "mov", "gif"])
def test_failed_encode_leaves_nothing_and_keeps_the_previous_file(tmp_path, fmt):
    with pytest.raises(RuntimeError, match="boom"):
        media.write_video(tmp_path / f"bad.{fmt}", ExplodingFrames(gradient_frames(9)), FPS, audio=_tone(), sample_rate=SR)
    assert list(tmp_path.iterdir()) == []
    target = media.write_video(tmp_path / f"keep.{fmt}", gradient_frames(3), FPS)
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        media.write_video(target, ExplodingFrames(gradient_frames(9)), FPS)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [f"keep.{fmt}"]


def test_bad_choices_are_rejected_before_any_file(tmp_path):
    cases = [
        ({"format": "avi"}, "avi", "mp4, webm, mov, gif"),
        ({"quality": "ultra"}, "ultra", "low, medium, high, maximum"),
        ({"write_mode": "slow"}, "slow", "fast, balanced, small"),
    ]
    for kwargs, value, choices in cases:
        with pytest.raises(L2AError) as error:
            media.write_video(tmp_path / "x.mp4", gradient_frames(3), FPS, audio=_tone(), sample_rate=SR, **kwargs)
        assert f"'{value}'" in str(error.value) and choices in str(error.value)
    for name, fix in (("x.out", "name it x.mp4"), ("x", "name it x.webm")):
        with pytest.raises(L2AError, match=fix):
            media.write_video(tmp_path / name, gradient_frames(3), FPS, format="webm" if name == "x" else None)
    with pytest.raises(L2AError, match="ends in .mp4 but the format is gif"):
        media.write_video(tmp_path / "x.mp4", gradient_frames(3), FPS, format="gif")
    with pytest.raises(L2AError, match="crf applies to mp4"):
        media.write_video(tmp_path / "x.mov", gradient_frames(3), FPS, crf=20)
    with pytest.raises(L2AError, match="0..63"):
        media.write_video(tmp_path / "x.webm", gradient_frames(3), FPS, crf=64)
    with pytest.raises(L2AError, match="preset"):
        media.write_video(tmp_path / "x.webm", gradient_frames(3), FPS, preset="slow")
    with pytest.raises(L2AError, match="AAC"):  # only mp4 limits the sample rate ...
        media.write_video(tmp_path / "x.mp4", gradient_frames(3), FPS, audio=_tone(), sample_rate=23000)
    assert list(tmp_path.iterdir()) == []
    # ... webm resamples it and mov stores it
    assert media.probe_video(media.write_video(tmp_path / "y.webm", gradient_frames(3), FPS, audio=_tone(),
                                               sample_rate=23000))["sample_rate"] == 48000
    assert media.probe_video(media.write_video(tmp_path / "y.mov", gradient_frames(3), FPS, audio=_tone(),
                                               sample_rate=23000))["sample_rate"] == 23000


def test_format_follows_the_suffix_when_not_given(tmp_path):
    for fmt in media.FORMATS:
        assert media.probe_video(media.write_video(tmp_path / f"s.{fmt}", gradient_frames(2), FPS))["video_codec"] == (
            CODECS[fmt][0]
        )
    for name in ("plain", "clip.xyz"):  # an unknown suffix is refused, not written as a silent mp4
        with pytest.raises(L2AError, match="not a video format"):
            media.write_video(tmp_path / name, gradient_frames(2), FPS)
    fractional = media.probe_video(media.write_video(tmp_path / "n.mov", gradient_frames(9), Fraction(24000, 1001)))
    assert fractional["video_duration"] == pytest.approx(9 * 1001 / 24000, abs=1e-6)


def test_node_choices_match_the_writer():
    required = L2A_SaveVideo.INPUT_TYPES()["required"]
    assert list(required)[-3:] == ["format", "quality", "write_mode"]  # appended: saved widget values keep order
    assert tuple(required["format"][0]) == media.FORMATS and required["format"][1]["default"] == "mp4"
    assert tuple(required["quality"][0]) == media.QUALITIES and required["quality"][1]["default"] == "high"
    assert tuple(required["write_mode"][0]) == media.WRITE_MODES and required["write_mode"][1]["default"] == "balanced"
    assert all(required[name][1]["tooltip"] for name in ("format", "quality", "write_mode"))
    assert "audio" in L2A_SaveVideo.INPUT_TYPES()["optional"]


def test_node_writes_each_format_with_its_suffix(tmp_path, monkeypatch):
    monkeypatch.setitem(_comfy._settings, "output_dir", tmp_path)
    audio = {"waveform": _tone()[None], "sample_rate": SR}
    workflow = {"nodes": [], "links": []}
    for fmt in media.FORMATS:
        out = L2A_SaveVideo().save(gradient_frames(), 24.0, "LTX-2/test", fmt, "medium", "fast", audio=audio,
                                   comment="seed 7 | 8 steps", prompt={"1": {"class_type": "x"}},
                                   extra_pnginfo={"workflow": workflow})
        preview = out["ui"]["images"][0]
        path = tmp_path / preview["subfolder"] / preview["filename"]
        assert preview["filename"].endswith(f"_.{fmt}") and path.exists()
        (video,) = out["result"]
        assert Path(video.get_stream_source()) == path
        info = media.probe_video(path)
        assert info["video_codec"] == CODECS[fmt][0] and info["frames"] == 17
        if fmt == "gif":
            assert info["audio_streams"] == 0
            assert "GIF has no audio track: the audio was not written." in out["ui"]["text"]
        else:
            assert info["audio_codec"] == CODECS[fmt][1]
            assert "text" not in out["ui"]
            assert info["tags"]["comment"] == "seed 7 | 8 steps"
            assert json.loads(info["tags"]["workflow"]) == workflow
            assert json.loads(info["tags"]["prompt"]) == {"1": {"class_type": "x"}}
    silent = L2A_SaveVideo().save(gradient_frames(3), 25.0, "LTX-2/quiet", "gif", "low", "small")
    assert "text" not in silent["ui"]  # no audio, no metadata, 25 fps is whole centiseconds
    assert not [p for p in (tmp_path / "LTX-2").iterdir() if p.name.startswith(".")]
