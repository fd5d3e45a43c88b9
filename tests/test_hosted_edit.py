"""Every mode on every backend (issue 18): hosted audio-to-video (fal's distilled 19B, the LTX API's LTX-2.5) and
the LTX API's synchronous v1 retake against the fake servers, LTX-2.5 text/image-to-video limits and prices, the
Hosted Backend matching the local model's family, providers without a mode sending nothing, and the nodes and the
command line on top. Real mp4 files and WAVs throughout; the fakes decode what they receive."""

import math
import time
import wave
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
from fakes.generic_server import no_outside_connections  # noqa: F401 (autouse)
from fakes.harness import EVERY, FAL, LTX, Interrupted, assert_no_key_leak, run

from ltx2_anywhere import cli
from ltx2_anywhere.nodes import _comfy
from ltx2_anywhere.nodes.av_edit import L2A_AudioToVideo, L2A_Retake
from ltx2_anywhere.pipelines.backend import (
    PROVIDER_CLASSES,
    FallbackBackend,
    Hooks,
    HostedBackend,
    LocalBackend,
    local_family,
    provider_class,
)
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted.base import HostedError
from ltx2_anywhere.pipelines.hosted.fal import FalProvider
from ltx2_anywhere.pipelines.hosted.jobs import resume_job
from ltx2_anywhere.pipelines.hosted.ltx import LtxProvider
from ltx2_anywhere.pipelines.hosted.store import ResultStore
from ltx2_anywhere.pipelines.hosted.types import MODE_PROVIDERS, MODES, GenerationRequest, JobRef
from ltx2_anywhere.pipelines.media import probe_video, read_audio, read_video, write_video, write_wav

FAST_POLL = (0.02, 0.05)


def tone(path: Path, seconds: float, rate: int = 44100, hz: float = 220.0) -> Path:
    t = torch.arange(round(seconds * rate)) / rate
    return write_wav(path, torch.stack([0.3 * torch.sin(2 * math.pi * hz * t)] * 2), rate)


def clip(path: Path, frames: int = 97, fps: int = 24, sound: bool = True) -> Path:
    """A real clip (with sound unless told not to): 97 frames at 24 fps (4 s), above the LTX API retake's 73-frame
    minimum."""
    video = np.zeros((frames, 64, 96, 3), dtype=np.uint8)
    video[..., 0] = np.linspace(0, 255, 96, dtype=np.uint8)[None, None, :]
    video[..., 1] = (np.arange(frames) * 255 // frames)[:, None, None]
    t = torch.arange(round(24000 * frames / fps)) / 24000
    audio = 0.3 * torch.sin(2 * math.pi * 330 * t)[None] if sound else None
    return write_video(path, video, fps, audio=audio, sample_rate=24000, write_mode="fast")


def encoded_audio(path: Path, codec: str, seconds: float = 2.5, rate: int = 44100) -> Path:
    """Audio in a format a provider may not take (FLAC, AAC in m4a), encoded with PyAV."""
    samples = (0.3 * np.sin(2 * np.pi * 220 * np.arange(round(seconds * rate)) / rate)).astype(np.float32)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([samples, samples]), format="fltp", layout="stereo")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture
def ltx():
    with LTX.serve() as server:
        yield server


@pytest.fixture
def fal():
    with FAL.serve() as server:
        yield server


def a2v(**fields) -> GenerationRequest:
    return GenerationRequest(**{"mode": "a2v", "prompt": "a woman sings on a small stage", "seed": 4, **fields})


def retake(video, start=1.0, end=3.0, **fields) -> GenerationRequest:
    return GenerationRequest(**{"mode": "retake", "prompt": "a dog barks twice", "seed": 4, "video": video,
                                "window_start": start, "window_end": end, **fields})


# ---------------------------------------------------------------------------------------------- audio-to-video


def test_fal_audio_to_video_follows_the_audio(fal, tmp_path):
    song = tone(tmp_path / "song.wav", 2.5)
    client = FAL.connect(fal)
    prepared = client.prepare(a2v(audio=song, width=96, height=64))
    assert prepared.endpoint == "fal-ai/ltx-2-19b/distilled/audio-to-video"
    assert prepared.payload == {"prompt": "a woman sings on a small stage", "match_audio_length": True,
                                "video_size": {"width": 96, "height": 64}}
    assert prepared.uploads == {"audio_url": song}
    assert prepared.cost.usd == pytest.approx(0.0008) and "96x64x65" in prepared.cost.formula  # 2.5 s at 25 fps
    statuses = []
    outcome = run(client, prepared, tmp_path / "out.mp4", on_status=statuses.append)
    info = probe_video(outcome.path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1
    assert info["duration"] == pytest.approx(2.5, abs=0.05)
    [submit] = fal.submits()
    assert fal.files[submit.json["audio_url"][len(fal.url):]] == song.read_bytes()
    assert statuses[0].endswith("est. $0.0008") or "est. $0.0008" in statuses[0]  # the cost before anything is sent
    assert_no_key_leak(fal, *statuses)


def test_ltx_audio_to_video_runs_ltx_25_with_a_first_frame(ltx, tmp_path):
    from PIL import Image

    song = tone(tmp_path / "song.wav", 3.0)
    still = tmp_path / "face.png"
    Image.new("RGB", (64, 96), (200, 120, 90)).save(still)
    client = LTX.connect(ltx)
    prepared = client.prepare(a2v(audio=song, image=still, aspect_ratio="9:16"), "ltx-2-5-pro/audio-to-video")
    assert prepared.payload == {"prompt": "a woman sings on a small stage", "model": "ltx-2-5-pro",
                                "resolution": "1080x1920"}
    assert prepared.uploads == {"audio_uri": song, "image_uri": still}
    assert prepared.cost.usd == pytest.approx(0.51) and "3 s x $0.17/s (1080p)" in prepared.cost.formula
    outcome = run(client, prepared, tmp_path / "out.mp4")
    info = probe_video(outcome.path)
    assert (info["video_streams"], info["audio_streams"], info["fps"]) == (1, 1, 25)
    assert info["duration"] == pytest.approx(3.0, abs=0.05)
    [submit] = ltx.submits()
    assert submit.path == "/v2/audio-to-video" and submit.json["audio_uri"].startswith("gs://")
    puts = ltx.calls("PUT", r"/storage/\w+")
    assert sorted(p.headers["Content-Type"] for p in puts) == ["audio/x-wav", "image/png"]
    assert all("Authorization" not in p.headers for p in puts)


@pytest.mark.parametrize("provider, codec, suffix", [("fal", "flac", ".flac"), ("ltx", "aac", ".m4a")])
def test_audio_the_provider_cannot_take_is_converted_to_wav(provider, codec, suffix, tmp_path):
    source = encoded_audio(tmp_path / f"song{suffix}", codec)
    prepared = provider_class(provider)(None, "").prepare(a2v(audio=source))
    (upload,) = prepared.uploads.values()
    assert upload.suffix == ".wav" and upload.read_bytes()[:4] == b"RIFF"
    assert any(f"{source.name} was converted to WAV" in note for note in prepared.notes)
    converted, rate = read_audio(upload)
    original, _ = read_audio(source)
    assert rate == 44100 and abs(converted.shape[-1] - original.shape[-1]) <= 1
    again = provider_class(provider)(None, "").prepare(a2v(audio=source))
    assert list(again.uploads.values()) == [upload]  # the same input converts to the same file


@pytest.mark.parametrize("provider, seconds, message", [
    ("fal", 1.5, "1.50 s long: fal audio-to-video takes 2 to 19.2 s"),
    ("ltx", 1.5, "1.50 s long: The LTX API audio-to-video takes 2 to 20 s"),
    ("fal", 19.6, "19.60 s long: fal audio-to-video takes 2 to 19.2 s"),
    ("ltx", 20.5, "20.50 s long: The LTX API audio-to-video takes 2 to 20 s"),
])
def test_audio_too_short_or_too_long_is_refused(provider, seconds, message, tmp_path):
    song = tone(tmp_path / "song.wav", seconds, rate=8000)
    with pytest.raises(L2AError, match=message):
        provider_class(provider)(None, "").prepare(a2v(audio=song))


def test_unreadable_audio_is_refused_with_the_reason(tmp_path):
    fake = tmp_path / "song.mp3"
    fake.write_text("not audio")
    with pytest.raises(L2AError, match="cannot read the audio"):
        LtxProvider(None, "").prepare(a2v(audio=fake))
    silent = write_video(tmp_path / "silent.mp4", torch.rand(9, 64, 96, 3), 24)
    with pytest.raises(L2AError, match="has no audio stream"):
        FalProvider(None, "").prepare(a2v(audio=silent))


# --------------------------------------------------------------------------------------------- LTX-2.5 limits


@pytest.mark.parametrize("endpoint, fields, payload, notes", [
    ("ltx-2-5-fast/text-to-video", dict(resolution="720p", aspect_ratio="9:16", fps=24.0, duration=15.0),
     {"model": "ltx-2-5-fast", "resolution": "720x1280", "fps": 24, "duration": 14}, ["15 s was sent as 14 s"]),
    ("ltx-2-5-fast/text-to-video", dict(resolution="4k", fps=48.0, duration=15.0),
     {"resolution": "3840x2160", "fps": 48, "duration": 10}, ["over 10 s needs ltx-2-5-fast at 1280x720 or "
                                                               "1920x1080 and 24 or 25 fps"]),
    ("ltx-2-5-pro/text-to-video", dict(resolution="1440p", fps=48.0, duration=3.0),
     {"resolution": "1920x1080", "fps": 50, "duration": 3}, ["1440p was sent as 1920x1080", "48 fps was sent as 50"]),
    ("ltx-2-5-pro/text-to-video", dict(aspect_ratio="1:1"), {"resolution": "1920x1080", "duration": 6, "fps": 25},
     ["1:1 was sent as 16:9"]),
])
def test_ltx_25_limits_snap_with_notes(endpoint, fields, payload, notes):
    prepared = LtxProvider(None, "").prepare(GenerationRequest(mode="t2v", prompt="a storm", seed=1, **fields),
                                             endpoint)
    assert payload.items() <= prepared.payload.items()
    for note in notes:
        assert any(note in text for text in prepared.notes), (note, prepared.notes)


def test_ltx_25_image_to_video_takes_a_last_frame(ltx, tmp_path):
    from PIL import Image

    first, last = tmp_path / "first.png", tmp_path / "last.png"
    for path, colour in ((first, (10, 20, 30)), (last, (200, 100, 0))):
        Image.new("RGB", (96, 64), colour).save(path)
    client = LTX.connect(ltx)
    prepared = client.prepare(GenerationRequest(mode="i2v", prompt="a door opens", seed=1, image=first,
                                                end_image=last, duration=5.0), "ltx-2-5-fast/image-to-video")
    assert prepared.uploads == {"image_uri": first, "last_frame_uri": last}
    outcome = run(client, prepared, tmp_path / "out.mp4")
    assert probe_video(outcome.path)["video_streams"] == 1
    [submit] = ltx.submits()
    assert submit.json["last_frame_uri"].startswith("gs://") and submit.json["duration"] == 5


@pytest.mark.parametrize("fields, endpoint, message", [
    (dict(mode="i2v", image_url="https://e.com/a.png", end_image_url="https://e.com/b.png"),
     "ltx-2-pro/image-to-video", "LTX-2 Pro takes no end image \\(last frame, an LTX-2.5 option\\)"),
    (dict(mode="a2v", audio_url="https://e.com/a.mp3", end_image_url="https://e.com/b.png"), None,
     "audio-to-video takes a first frame only"),
    (dict(mode="a2v", audio_url="https://e.com/a.mp3"), "ltx-2-fast/image-to-video",
     "does not do audio-to-video; use one of ltx-2-5-fast/audio-to-video, ltx-2-5-pro/audio-to-video"),
    (dict(mode="a2v", audio_url="https://e.com/a.mp3", prompt=" "), None, "needs a prompt, or a first frame"),
])
def test_ltx_refusals_of_new_modes(fields, endpoint, message):
    with pytest.raises(L2AError, match=message):
        LtxProvider(None, "").prepare(GenerationRequest(**{"prompt": "a storm", "seed": 1, **fields}), endpoint)


def test_an_over_budget_ltx_25_run_is_refused_with_no_request(ltx, tmp_path, monkeypatch):
    monkeypatch.setenv("LTX_API_KEY", LTX.key)
    song = tone(tmp_path / "song.wav", 10.0, rate=8000)
    backend = HostedBackend(provider="ltx", endpoint="ltx-2-5-pro/audio-to-video", base_url=ltx.url,
                            user_dir=tmp_path / "user", store_dir=tmp_path / "store", allow_loopback=True,
                            max_cost_usd=1.0)
    with pytest.raises(HostedError, match=r"estimated cost \$1\.70 .* over the spend limit \$1\.00; nothing was sent"):
        backend.generate(a2v(audio=song), tmp_path / "out", Hooks())
    t2v = GenerationRequest(mode="t2v", prompt="a storm", seed=1, resolution="1080p", duration=8.0)
    with pytest.raises(HostedError, match="over the spend limit"):
        replace(backend, endpoint="ltx-2-5-pro/text-to-video").generate(t2v, tmp_path / "out", Hooks())
    assert ltx.requests == []


# ------------------------------------------------------------------------------------------- providers and modes


def test_the_mode_table_names_every_provider_that_has_the_mode():
    for mode in MODES:
        have = tuple(name for name in PROVIDER_CLASSES if mode in provider_class(name).modes)
        assert MODE_PROVIDERS[mode] == have, mode


@pytest.mark.parametrize("case", EVERY, ids=lambda case: case.name)
def test_a_provider_without_a_mode_sends_nothing(case, tmp_path, monkeypatch):
    song, video = tone(tmp_path / "song.wav", 2.5, rate=8000), clip(tmp_path / "clip.mp4")
    requests = {"a2v": a2v(audio=song), "retake": retake(video), "extend": GenerationRequest(
        mode="extend", prompt="on", seed=1, video=video, duration=2.0)}
    lacking = [mode for mode in requests if mode not in case.client.modes]
    monkeypatch.setenv(case.client.key_env, case.key)
    with case.serve() as fake:
        backend = HostedBackend(provider=case.name, base_url=fake.url, user_dir=tmp_path / "user",
                                store_dir=tmp_path / "store", allow_loopback=True)
        for mode in lacking:
            have = MODE_PROVIDERS[mode]
            with pytest.raises(L2AError, match=f"has no .*: use {have[0]}.*Nothing was sent or uploaded"):
                backend.generate(requests[mode], tmp_path / "out", Hooks())
        assert fake.requests == []


# ------------------------------------------------------------------------------------------------- v1 retake


@pytest.mark.parametrize("part, mode", [("both", "replace_audio_and_video"), ("video", "replace_video"),
                                        ("audio", "replace_audio")])
def test_ltx_retake_is_sent_once_and_answers_the_clip(part, mode, ltx, tmp_path):
    source = clip(tmp_path / "clip.mp4")
    client = LTX.connect(ltx)
    prepared = client.prepare(retake(source, 1.0, 3.0, retake_part=part))
    assert prepared.endpoint == "retake" and prepared.uploads == {"video_uri": source}
    assert prepared.payload == {"start_time": 1.0, "duration": 2.0, "mode": mode, "prompt": "a dog barks twice"}
    assert prepared.cost.usd == pytest.approx(0.4042, abs=1e-3)  # the whole 4.04 s clip at $0.10/s
    statuses = []
    store = ResultStore(tmp_path / "store")
    outcome = run(client, prepared, tmp_path / "out.mp4", on_status=statuses.append, store=store)
    [submit] = ltx.submits()
    assert submit.path == "/v1/retake" and ltx.polls() == [] and ltx.downloads() == []
    assert outcome.job.endpoint == "retake" and outcome.job.job_id  # the x-request-id of the answer
    before, _, sound_before = read_video(source)
    after, fps, sound_after = read_video(outcome.path)
    assert after.shape == before.shape and fps == 24
    window = slice(round(1.0 * 24) + 1, round(3.0 * 24) - 1)
    outside = slice(0, round(1.0 * 24) - 1)
    picture_changed = (after[window] - before[window]).abs().mean() > 0.1
    assert picture_changed == (part != "audio")
    assert (after[outside] - before[outside]).abs().mean() < 0.05
    rate = sound_after["sample_rate"]
    heard = sound_after["waveform"][0, 0, round(1.5 * rate):round(2.5 * rate)]
    kept = sound_before["waveform"][0, 0, round(1.5 * rate):round(2.5 * rate)]
    assert ((heard - kept).abs().mean() > 0.05) == (part != "video")
    assert any("cannot be resumed" in text and "not resent" in text for text in statuses)
    again = run(client, client.prepare(retake(source, 1.0, 3.0, retake_part=part)), tmp_path / "again.mp4",
                store=store)
    assert again.reused and len(ltx.submits()) == 1


@pytest.mark.parametrize("scenario", ["drop-submit", "drop-download"])
def test_a_lost_retake_answer_is_never_resent(scenario, ltx, tmp_path):
    ltx.scenario = scenario
    source = clip(tmp_path / "clip.mp4")
    client = LTX.connect(ltx)
    store = ResultStore(tmp_path / "store")
    with pytest.raises(HostedError, match="cannot be fetched again by id") as lost:
        run(client, client.prepare(retake(source)), tmp_path / "out.mp4", store=store)
    assert lost.value.maybe_accepted and "recorded as sent" in str(lost.value)
    with pytest.raises(HostedError, match="its answer was never recorded.*the video itself and cannot be fetched "
                                          "again: see your ltx console"):
        run(client, client.prepare(retake(source)), tmp_path / "out.mp4", store=store)
    assert len(ltx.submits()) == 1
    assert list(tmp_path.glob("out*")) == [] and list(tmp_path.glob(".out*")) == []


def test_a_retake_without_an_answer_by_the_deadline_is_not_resent(ltx, tmp_path):
    ltx.scenario = "never"
    source = clip(tmp_path / "clip.mp4")
    client = LTX.connect(ltx)
    started = time.monotonic()
    with pytest.raises(HostedError, match="no answer within 2 s.*cannot be fetched again") as late:
        run(client, client.prepare(retake(source)), tmp_path / "out.mp4", deadline_s=2.0)
    assert late.value.maybe_accepted and time.monotonic() - started < 15
    assert len(ltx.submits()) == 1


def test_cancel_while_waiting_for_a_retake_is_honoured_within_seconds(ltx, tmp_path):
    ltx.scenario = "never"
    source = clip(tmp_path / "clip.mp4")
    client = LTX.connect(ltx)
    statuses = []

    def check():
        if ltx.submits():
            raise Interrupted()

    started = time.monotonic()
    with pytest.raises(Interrupted) as stopped:
        run(client, client.prepare(retake(source)), tmp_path / "out.mp4", check_interrupt=check,
            on_status=statuses.append)
    assert time.monotonic() - started < 10
    assert "cannot be resumed" in statuses[-1] and "cannot be resumed" in " ".join(stopped.value.__notes__)
    assert len(ltx.submits()) == 1 and not list(tmp_path.glob("*out*"))


@pytest.mark.parametrize("scenario, message, accepted", [
    ("submit-402", "HTTP 402.*Insufficient funds", False),
    ("filtered", "content_filtered_error", False),
    ("submit-504", "HTTP 504.*was not resent", True),
    ("wrong-type", "text/html instead of the video", True),
    ("oversized", "17,179,869,184 bytes, over the", True),
])
def test_retake_errors_say_whether_it_may_bill(scenario, message, accepted, ltx, tmp_path):
    ltx.scenario = scenario
    source = clip(tmp_path / "clip.mp4")
    client = LTX.connect(ltx)
    with pytest.raises(HostedError, match=message) as failed:
        run(client, client.prepare(retake(source)), tmp_path / "out.mp4")
    assert failed.value.maybe_accepted is accepted
    assert len(ltx.submits()) == 1 and not list(tmp_path.glob("*out*"))
    assert_no_key_leak(ltx, str(failed.value))


@pytest.mark.parametrize("fields, message", [
    (dict(start=3.0, end=4.5), "ends after the 4.04 s clip"),
    (dict(start=1.0, end=2.5), "1.50 s long: the LTX API retakes at least 2 s"),
    (dict(start=2.0, end=1.0), "empty or starts before the clip"),
    (dict(start=1.0, end=3.0, retake_part="sound"), "retake_part = 'sound' is unknown"),
])
def test_bad_retake_windows_are_refused(fields, message, tmp_path):
    source = clip(tmp_path / "clip.mp4")
    with pytest.raises(L2AError, match=message):
        LtxProvider(None, "").prepare(retake(source, **fields))


def test_clips_the_ltx_api_cannot_retake_are_refused(tmp_path):
    short = clip(tmp_path / "short.mp4", frames=49)
    with pytest.raises(L2AError, match="49 frames: the LTX API retakes clips of at least 73 frames"):
        LtxProvider(None, "").prepare(retake(short, 0.0, 2.0))
    long = clip(tmp_path / "long.mp4", frames=253, fps=12, sound=False)
    with pytest.raises(L2AError, match="21.08 s long: the LTX API retakes clips of up to 20 s"):
        LtxProvider(None, "").prepare(retake(long, 0.0, 2.0))
    url = LtxProvider(None, "").prepare(retake(None, video_url="https://e.com/clip.mp4"))
    assert url.payload["video_uri"] == "https://e.com/clip.mp4" and url.cost.usd == pytest.approx(2.0)
    assert any("length is unknown" in note for note in url.notes)


def test_a_retake_cannot_be_resumed_by_id(ltx):
    client = LTX.connect(ltx)
    with pytest.raises(HostedError, match="cannot be polled or resumed.*synchronous"):
        resume_job(client, JobRef("ltx", "retake", "v1-abc"), Path("unused.mp4"))
    assert ltx.requests == []


# --------------------------------------------------------------------------------- the local model's family


def family_model(name: str):
    """A loaded model as far as family matching reads it (the local LTX-2.5 family is added elsewhere)."""
    return SimpleNamespace(family=SimpleNamespace(name=name), describe=lambda: f"LTX-{name} (stand-in)")


def unavailable_local(**fields) -> LocalBackend:
    """A local backend that cannot run here: no text encoder file (and no GPU allowed)."""
    return LocalBackend(text_encoder_path=Path("/nonexistent/gemma"), **fields)


def test_fallback_matches_the_local_25_family_on_the_ltx_api(ltx, tmp_path, monkeypatch):
    monkeypatch.setenv("LTX_API_KEY", LTX.key)
    hosted = HostedBackend(provider="ltx", match_family=True, base_url=ltx.url, user_dir=tmp_path / "user",
                           allow_loopback=True, poll=FAST_POLL)
    request = GenerationRequest(mode="t2v", prompt="a storm", seed=1, resolution="720p", duration=5.0, fps=24.0)
    notices = []
    outcome = FallbackBackend(unavailable_local(model=family_model("2.5")), hosted).generate(
        request, tmp_path / "out", Hooks(on_status=notices.append))
    [submit] = ltx.submits()
    assert submit.json["model"] == "ltx-2-5-fast" and submit.json["resolution"] == "1280x720"
    assert "Using ltx (the LTX-2.5 22B endpoint)." in outcome.report
    assert "ltx ltx-2-5-fast/text-to-video (matched the local LTX-2.5 22B model)" in outcome.report
    assert "est. $0.45" in " ".join(notices)  # 5 s x $0.09/s at 720p, shown before submitting
    by_name = unavailable_local(checkpoint_name="ltx-2.5-22b-distilled-transformer-bf16.safetensors")
    FallbackBackend(by_name, hosted).generate(replace(request, seed=2), tmp_path / "out", Hooks())
    assert [s.json["model"] for s in ltx.submits()] == ["ltx-2-5-fast", "ltx-2-5-fast"]


@pytest.mark.parametrize("family, provider, mode, message", [
    ("2.3", "ltx", "t2v", "ltx has no LTX-2.3 22B endpoint for text-to-video.*use fal or wavespeed"),
    ("2.5", "fal", "t2v", "fal has no LTX-2.5 22B endpoint for text-to-video.*use ltx"),
    ("2.5", "ltx", "retake", "ltx has no LTX-2.5 22B endpoint for retake.*never swapped"),
    ("2.0", "bytecompute", "t2v", "bytecompute has no LTX-2 19B endpoint for text-to-video.*use fal or wavespeed "
                                  "or ltx"),
])
def test_a_family_the_provider_lacks_is_refused_never_swapped(family, provider, mode, message, tmp_path):
    hosted = HostedBackend(provider=provider, match_family=True, user_dir=tmp_path / "user")
    request = retake(clip(tmp_path / "clip.mp4")) if mode == "retake" else GenerationRequest(
        mode=mode, prompt="a storm", seed=1)
    with pytest.raises(L2AError, match=message):
        replace(hosted, family=family).prepare(request)
    if mode == "t2v":  # the same through LTX-2 Fallback, from the local model's family
        with pytest.raises(L2AError, match=message):
            FallbackBackend(unavailable_local(model=family_model(family)), hosted).generate(request, tmp_path,
                                                                                            Hooks())


def test_family_matching_needs_a_local_model_to_match(tmp_path):
    request = GenerationRequest(mode="t2v", prompt="a storm", seed=1)
    with pytest.raises(L2AError, match="needs a local model to match"):
        HostedBackend(provider="ltx", match_family=True).prepare(request)
    unknown = unavailable_local(checkpoint_name="my-finetune.safetensors")
    with pytest.raises(L2AError, match="family of the local model \\(my-finetune.safetensors\\) is unknown"):
        FallbackBackend(unknown, HostedBackend(provider="ltx", match_family=True)).generate(request, tmp_path,
                                                                                            Hooks())


def test_local_family_reads_the_model_then_the_file_then_its_name(tiny_models):
    assert local_family(LocalBackend(model=family_model("2.5"))) == "2.5"
    assert local_family(LocalBackend(checkpoint=tiny_models.checkpoint_dev)) == "2.0"  # the header
    for name, family in (("ltx-2.3-22b-dev.safetensors", "2.3"), ("ltx-2-19b-distilled.safetensors", "2.0"),
                         ("ltx-2.5-22b-dev-transformer-bf16.safetensors", "2.5"), ("other.safetensors", None)):
        assert local_family(LocalBackend(checkpoint_name=name)) == family


# -------------------------------------------------------------------------------------------------- the nodes


@pytest.fixture
def comfy(tmp_path, monkeypatch):
    seen = []
    for key in ("output_dir", "user_dir", "status"):
        monkeypatch.setitem(_comfy._settings, key, _comfy._settings[key])
    _comfy.configure(output_dir=tmp_path / "output", user_dir=tmp_path / "user", status=seen.append)
    monkeypatch.setenv("LTX_API_KEY", LTX.key)
    return seen


def ltx_backend(server, tmp_path, **fields):
    return HostedBackend(provider="ltx", base_url=server.url, user_dir=tmp_path / "user",
                         store_dir=tmp_path / "store", allow_loopback=True, poll=FAST_POLL, **fields)


def test_audio_to_video_node_on_the_ltx_api_outputs_the_given_audio(ltx, comfy, tmp_path):
    waveform = 0.2 * torch.sin(2 * math.pi * 300 * torch.arange(2 * 22050 + 777) / 22050).expand(1, 2, -1)
    images, audio, fps, report = L2A_AudioToVideo().generate(
        {"waveform": waveform, "sample_rate": 22050}, 768, 512, 24.0, 5, 0, "auto",
        backend=ltx_backend(ltx, tmp_path), prompt="a man talks", image=torch.rand(1, 64, 96, 3))["result"]
    [submit] = ltx.submits()
    assert submit.json["model"] == "ltx-2-5-fast" and "image_uri" in submit.json
    assert fps == 25 and images.shape[1:] == (64, 96, 3)
    samples = round(images.shape[0] / 25 * 22050)
    assert audio["sample_rate"] == 22050 and torch.equal(audio["waveform"], waveform[..., :samples])
    assert "ltx ltx-2-5-fast/audio-to-video" in report and "est." in " ".join(comfy)
    assert_no_key_leak(ltx, report, *comfy)


def test_retake_node_falls_back_to_the_ltx_api_and_uploads_the_clip_as_it_is(ltx, comfy, tmp_path):
    source = clip(tmp_path / "clip.mp4")
    video = _comfy.VideoFile(source)
    backend = FallbackBackend(unavailable_local(checkpoint_name="ltx-2-19b-dev.safetensors"),
                              ltx_backend(ltx, tmp_path, endpoint="retake"))
    images, audio, fps, report = L2A_Retake().retake(1.0, 3.0, "video", "crop", 24.0, 5, 0, "auto", video=video,
                                                     backend=backend, prompt="it rains")["result"]
    assert images.shape == (97, 64, 96, 3) and fps == 24 and audio["waveform"].shape[1] == 2
    assert report.startswith("local ltx-2-19b-dev.safetensors unavailable: ") and "Using ltx (retake)." in report
    assert "ltx retake: job" in report
    (put,) = ltx.calls("PUT", r"/storage/\w+")
    assert put.body == source.read_bytes()  # not re-encoded
    assert ltx.submits()[0].json["mode"] == "replace_video"


def test_audio_to_video_node_on_a_local_backend_encodes_its_prompt(tiny_models, comfy):
    local = LocalBackend(checkpoint=tiny_models.checkpoint_dev, text_encoder_path=tiny_models.text_encoder,
                         dtype="fp32", allow_cpu=True)
    waveform = torch.rand(1, 2, 2 * 24000) * 0.2
    images, audio, fps, report = L2A_AudioToVideo().generate(
        {"waveform": waveform, "sample_rate": 24000}, 96, 64, 24.0, 3, 2, "off", backend=local,
        prompt="a drummer plays")["result"]
    assert images.shape == (48, 64, 96, 3) and torch.equal(audio["waveform"], waveform)
    assert "audio-to-video: 2.00 s of audio" in report
    with pytest.raises(L2AError, match="local audio-to-video needs a model and conditioning"):
        L2A_AudioToVideo().generate({"waveform": waveform, "sample_rate": 24000}, 96, 64, 24.0, 3, 2, "off")


# ---------------------------------------------------------------------------------------------- command line


def test_cli_audio_to_video_and_retake_on_the_ltx_api(ltx, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LTX_API_KEY", LTX.key)
    monkeypatch.setenv("LTX2_ANYWHERE_TEST_ALLOW_LOOPBACK", "1")
    monkeypatch.setenv("LTX2_ANYWHERE_CACHE", str(tmp_path / "cache"))
    song = tone(tmp_path / "song.wav", 2.5, rate=48000, hz=440.0)
    out = tmp_path / "a2v.mp4"
    assert cli.main(["audio-to-video", "--backend", "ltx", "--base-url", ltx.url, "--audio", str(song), "--prompt",
                     "a singer", "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ltx: estimated $0.33" in printed and "the given audio, encoded once" in printed
    sound, rate = read_audio(out)
    given, _ = read_audio(song)
    n = min(sound.shape[-1], given.shape[-1]) - 2048
    assert rate == 48000 and (sound[:, 1024:n] - given[:, 1024:n]).abs().mean() < 0.01  # AAC once, same tone
    take = tmp_path / "take.mp4"
    assert cli.main(["retake", "--backend", "ltx", "--base-url", ltx.url, "--video", str(clip(tmp_path / "c.mp4")),
                     "--start", "1", "--end", "3", "--part", "audio", "--prompt", "thunder", "--out", str(take)]) == 0
    assert probe_video(take)["frames"] == 97 and len(ltx.submits()) == 2
    assert LTX.key not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["retake", "--backend", "nowhere", "--video", "x.mp4", "--start", "1", "--end", "3", "--prompt", "x",
                  "--out", "y.mp4"])


def test_cli_refuses_a_provider_without_the_mode_before_sending(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WAVESPEED_API_KEY", "ws-key")
    song = tone(tmp_path / "song.wav", 2.5, rate=8000)
    assert cli.main(["audio-to-video", "--backend", "wavespeed", "--audio", str(song), "--prompt", "a singer",
                     "--out", str(tmp_path / "x.mp4")]) == 2
    assert "WaveSpeed has no audio-to-video: use fal or ltx" in capsys.readouterr().err


def test_a_wav_holds_what_was_written(tmp_path):
    waveform = torch.tensor([[0.0, 0.5, -0.5, 2.0], [1.0, -1.0, float("nan"), 0.25]])
    path = write_wav(tmp_path / "x.wav", waveform, 16000)
    with wave.open(str(path)) as data:
        assert (data.getnchannels(), data.getframerate(), data.getsampwidth()) == (2, 16000, 2)
        pcm = np.frombuffer(data.readframes(4), "<i2").reshape(4, 2).T
    assert pcm.tolist() == [[0, 16384, -16384, 32767], [32767, -32767, 0, 8192]]

