"""The fal.ai client against a faithful local fal (tests/fakes/fal_server.py): request mapping, the whole job
lifecycle through run_job, every failure mode, uploads, and that the key never shows. The official `fal_client`
drives the same fake, so the fake (and with it these tests) stays true to fal's protocol."""

import base64
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from fakes.fal_server import ENDPOINTS as FAKE_ENDPOINTS
from fakes.fal_server import FalServer, _validate
from fakes.generic_server import no_outside_connections  # noqa: F401 (autouse)
from fakes.harness import Clock, Interrupted
from PIL import Image

from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted.base import HostedError, HttpClient
from ltx2_anywhere.pipelines.hosted.fal import ENDPOINTS, FalProvider
from ltx2_anywhere.pipelines.hosted.jobs import resume_job, run_job
from ltx2_anywhere.pipelines.hosted.types import GenerationRequest, JobRef
from ltx2_anywhere.pipelines.media import probe_video

KEY = "fal-KEYID-7f3c9e1d:SECRET-xyzzy-4242"  # distinctive, so a leak is found by a plain substring search
KEY_PARTS = (KEY, "7f3c9e1d", "SECRET-xyzzy-4242")
I2V = "fal-ai/ltx-2-19b/image-to-video"


@pytest.fixture
def fal(tmp_path):
    with FalServer(tmp_path / "fake", key=KEY) as server:
        server.settings.stall_s = 5.0
        yield server
        assert server.errors == []


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def provider(fal, clock):
    http = HttpClient(allow_loopback=True, timeout=5.0, backoff=0.01, max_download_bytes=2**20, stall_timeout=0.5,
                      sleep=clock.sleep)
    return FalProvider(http, KEY, fal.url)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "frame.png"
    Image.fromarray(np.full((72, 128, 3), 90, np.uint8)).save(path)
    return path


def request(mode="i2v", prompt="a red fox runs through snow", **kw):
    return GenerationRequest(mode=mode, prompt=prompt, seed=kw.pop("seed", 7), **kw)


def run(provider, prepared, dest, clock, statuses=None, **kw):
    kw.setdefault("deadline_s", 120.0)
    return run_job(provider, prepared, dest, poll=(1.0, 2.0), on_status=(statuses.append if statuses is not None
                                                                        else None), sleep=clock.sleep, clock=clock,
                   **kw)


# ------------------------------------------------------------------------------------------------ prepare (offline)

def test_prepare_maps_every_open_field(image):
    req = request(image=image, end_image_url="https://example.com/end.png", negative_prompt="blurry", width=1280,
                  height=704, num_frames=121, fps=24.0, generate_audio=False, guidance_scale=4.0,
                  num_inference_steps=30, camera="dolly_left", camera_scale=0.5, image_strength=0.9,
                  end_image_strength=0.8, multiscale=False, acceleration="high", prompt_expansion=False,
                  options={"video_output_type": "VP9 (.webm)", "video_quality": "maximum", "video_write_mode": "small",
                           "interpolation_direction": "backward", "enable_safety_checker": False})
    prepared = FalProvider(None, "").prepare(req)  # as the backend prepares: no client, no key, no network
    assert prepared.endpoint == I2V
    assert prepared.payload == {
        "prompt": "a red fox runs through snow", "end_image_url": "https://example.com/end.png", "num_frames": 121,
        "video_size": {"width": 1280, "height": 704}, "generate_audio": False, "use_multiscale": False, "fps": 24.0,
        "guidance_scale": 4.0, "num_inference_steps": 30, "acceleration": "high", "camera_lora": "dolly_left",
        "camera_lora_scale": 0.5, "negative_prompt": "blurry", "seed": 7, "enable_prompt_expansion": False,
        "image_strength": 0.9, "end_image_strength": 0.8, "video_output_type": "VP9 (.webm)",
        "video_quality": "maximum", "video_write_mode": "small", "interpolation_direction": "backward",
        "enable_safety_checker": False,
    }
    assert prepared.uploads == {"image_url": image}
    assert prepared.notes == ()
    assert prepared.cost.usd == pytest.approx(110 * 0.0018)  # ceil(1280*704*121 / 1e6) = 110 MP
    assert "1280x704x121" in prepared.cost.formula


def test_prepare_snaps_out_of_range_values_with_notes():
    req = request("t2v", width=1000, height=500, num_frames=100, fps=75, guidance_scale=0.2, num_inference_steps=90,
                  camera="jib_up", camera_scale=1.7)
    prepared = FalProvider(None, "").prepare(req)
    p = prepared.payload
    assert (p["video_size"], p["num_frames"], p["fps"]) == ({"width": 992, "height": 512}, 97, 60.0)
    assert (p["guidance_scale"], p["num_inference_steps"], p["camera_lora_scale"]) == (1.0, 50, 1.0)
    notes = " | ".join(prepared.notes)
    for said in ("1000x500 was sent as 992x512", "num_frames 100 was sent as num_frames 97", "75 was sent as 60",
                 "0.2 was sent as 1", "90 was sent as 50", "1.7 was sent as 1"):
        assert said in notes
    long = FalProvider(None, "").prepare(request("t2v", num_frames=900))
    assert long.payload["num_frames"] == 481 and "481" in long.notes[0]


def test_prepare_duration_resolution_and_aspect():
    fal = FalProvider(None, "")
    five = fal.prepare(request("t2v", duration=5.0, fps=24.0, resolution="720p", aspect_ratio="16:9"))
    assert five.payload["num_frames"] == 121 and five.payload["video_size"] == {"width": 1280, "height": 704}
    portrait = fal.prepare(request("t2v", resolution="480p", aspect_ratio="9:16"))
    assert portrait.payload["video_size"] == {"width": 480, "height": 864}
    square = fal.prepare(request("t2v", resolution="1080p", aspect_ratio="auto"))
    assert square.payload["video_size"] == {"width": 1920, "height": 1088} and any("16:9" in n for n in square.notes)
    remote = fal.prepare(request(image_url="https://example.com/a.png", resolution="720p", aspect_ratio="auto"))
    assert "video_size" not in remote.payload  # fal's auto: the image's own size
    assert any("auto" in n for n in remote.notes) and any("estimated at 1280x720" in n for n in remote.notes)


def test_prepare_follows_a_local_image_for_auto_sizes(image):
    prepared = FalProvider(None, "").prepare(request(image=image, resolution="720p", aspect_ratio="auto"))
    assert prepared.payload["video_size"] == {"width": 1280, "height": 704}  # the image is 16:9
    auto = FalProvider(None, "").prepare(request(image=image))
    assert "video_size" not in auto.payload and "128x64x121" in auto.cost.formula  # 128x72 snapped to 32


def test_prepare_option_aliases_and_never_sync_mode():
    prepared = FalProvider(None, "").prepare(request(
        "t2v", options={"multiscale": False, "prompt_expansion": True, "sync_mode": True}))
    assert prepared.payload["use_multiscale"] is False and prepared.payload["enable_prompt_expansion"] is True
    assert "sync_mode" not in prepared.payload and any("sync_mode" in n for n in prepared.notes)


@pytest.mark.parametrize("req, endpoint, words", [
    (request(acceleration="turbo", image_url="https://e.com/a.png"), None, ["'turbo'", "none, regular, high, full"]),
    (request("t2v", camera="orbit"), None, ["'orbit'", "dolly_in"]),
    (request("t2v", options={"video_quality": "ultra"}), None, ["'ultra'", "maximum"]),
    (request("t2v", options={"enable_safety_checker": "no"}), None, ["'no'"]),
    (request("t2v", options={"loras": []}), None, ["'loras'", "video_quality"]),
    (request("t2v", options={"num_frames": 9}), None, ["'num_frames'", "request's own field"]),
    (request("t2v"), I2V, ["image-to-video", "text-to-video"]),
    (request("t2v"), "fal-ai/ltx-video", ["'fal-ai/ltx-video'"]),
    (request("i2v"), None, ["needs an image"]),
    (request("i2v", image=Path("/nonexistent.png"), image_url="https://e.com/a.png"), None, ["not both"]),
    (request("t2v", image_url="https://e.com/a.png"), None, ["no start image"]),
    (request("t2v", end_image_url="https://e.com/a.png"), None, ["no end frame"]),
    (request(image_url="file:///etc/passwd"), None, ["http(s) URL"]),
    (request("t2v", guidance_scale="lots"), None, ["'lots'", "1-10"]),
    (request("t2v", width=512), None, ["both width and height"]),
    (request("t2v", resolution="8k"), None, ["'8k'", "720p"]),
    (request("t2v", prompt="  "), None, ["needs a prompt"]),
    (request("x2v"), None, ["'x2v'", "t2v, i2v, extend"]),
])
def test_prepare_refuses_what_has_no_nearest_value(req, endpoint, words):
    with pytest.raises(L2AError) as err:
        FalProvider(None, "").prepare(req, endpoint)
    for word in words:
        assert word in str(err.value)


def test_prepare_lightricks_proxy_endpoints():
    fal = FalProvider(None, "")
    fast = fal.prepare(request("t2v", duration=15.0, fps=25.0, resolution="720p", aspect_ratio="1:1",
                               guidance_scale=3.0), "fal-ai/ltx-2.3/text-to-video/fast")
    assert fast.payload == {"prompt": "a red fox runs through snow", "duration": 16, "resolution": "1080p",
                            "aspect_ratio": "16:9", "fps": 25, "generate_audio": True}
    notes = " | ".join(fast.notes)
    assert "guidance_scale" in notes and "seed" in notes and "720p was sent as 1080p" in notes
    assert fast.cost.usd == pytest.approx(16 * 0.04)
    pro = fal.prepare(request(image_url="https://e.com/a.png", duration=15.0, fps=30.0),
                      "fal-ai/ltx-2.3/image-to-video")
    assert pro.payload["duration"] == 10 and pro.payload["fps"] == 25 and pro.payload["image_url"]
    extend = fal.prepare(request("extend", video_url="https://e.com/v.mp4", duration=30.0,
                                 options={"mode": "start", "context": 8}), "fal-ai/ltx-2.3/extend-video")
    assert extend.payload == {"video_url": "https://e.com/v.mp4", "prompt": "a red fox runs through snow",
                              "duration": 20.0, "mode": "start", "context": 8.0}
    with pytest.raises(L2AError, match="mode and context"):
        fal.prepare(request("extend", video_url="https://e.com/v.mp4", options={"loop": 1}),
                    "fal-ai/ltx-2.3/extend-video")


def test_extend_uploads_a_local_clip_and_prices_its_size(fal):
    prepared = FalProvider(None, "").prepare(request("extend", video=fal.video_path, num_frames=121,
                                                     end_image_url="https://e.com/end.png"))
    assert prepared.endpoint == "fal-ai/ltx-2-19b/extend-video" and prepared.uploads == {"video_url": fal.video_path}
    assert prepared.payload["end_image_url"] and "image_strength" not in prepared.payload
    assert prepared.cost.formula.startswith("unknown: ")  # fal publishes no rate for the 19B extend
    big = FalProvider(None, "").prepare(request("extend", video=fal.video_path, num_frames=121),
                                        "fal-ai/ltx-2.3-22b/extend-video")
    assert "video_size" not in big.payload and big.cost.formula.startswith("96x64x121")  # auto: the clip's size
    with pytest.raises(L2AError, match="no start image"):
        FalProvider(None, "").prepare(request("extend", video=fal.video_path, image_url="https://e.com/a.png"))


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_every_endpoint_sends_only_fields_the_fake_documents(endpoint):
    """The client's payloads and the fake's per-endpoint schemas (spec §3.7) agree, field by field."""
    mode = ENDPOINTS[endpoint]
    media = {"i2v": {"image_url": "https://e.com/a.png", "end_image_url": "https://e.com/b.png"},
             "extend": {"video_url": "https://e.com/v.mp4"},
             "a2v": {"audio_url": "https://e.com/a.mp3", "image_url": "https://e.com/a.png",
                     "end_image_url": "https://e.com/b.png"}}.get(mode, {})
    if endpoint == "fal-ai/ltx-2.3/extend-video":
        media = {"video_url": "https://e.com/v.mp4"}
    prepared = FalProvider(None, "").prepare(request(mode, num_frames=121, fps=25.0, resolution="720p",
                                                     aspect_ratio="16:9", **media), endpoint)
    assert _validate(endpoint, prepared.payload) == []
    assert set(ENDPOINTS) == set(FAKE_ENDPOINTS)


# ---------------------------------------------------------------------------------------------- the job lifecycle

def test_image_to_video_end_to_end(provider, fal, clock, image, tmp_path):
    statuses = []
    prepared = provider.prepare(request(image=image, width=96, height=64, num_frames=9))
    outcome = run(provider, prepared, tmp_path / "out" / "fox.mp4", clock, statuses)
    info = probe_video(outcome.path)
    assert (info["width"], info["height"], info["frames"], info["audio_streams"]) == (96, 64, 9, 1)
    assert outcome.result.seed == 7 and outcome.result.prompt == "a red fox runs through snow"
    text = " | ".join(statuses)
    assert "position 2" in text and "position 1" in text and "position 0" in text and "running" in text
    [submit] = fal.submits()
    assert submit.path == f"/{I2V}" and submit.headers["Authorization"] == f"Key {KEY}"
    assert submit.json["image_url"].startswith(f"{fal.url}/files/") and "sync_mode" not in submit.json
    uploaded = submit.json["image_url"][len(fal.url):]
    assert fal.files[uploaded] == image.read_bytes()
    status_calls = fal.calls("GET", r"/fal-ai/ltx-2-19b/requests/[\w-]+/status")
    assert status_calls and all(c.query == "logs=0" for c in status_calls)  # the sub-path is dropped
    assert len(fal.calls("GET", r"/fal-ai/ltx-2-19b/requests/[\w-]+")) == 1
    # The key goes to fal's queue and token endpoints only: the CDN sees the token, the video host nothing.
    [upload] = fal.calls("POST", "/files/upload")
    assert upload.headers["Authorization"].startswith("Bearer ") and upload.headers["X-Fal-File-Name"] == "frame.png"
    assert "Authorization" not in fal.calls("GET", r"/cdn/.+")[0].headers
    assert [p.name for p in outcome.path.parent.iterdir()] == ["fox.mp4"]


def test_failed_job_is_a_clear_error(provider, fal, clock, tmp_path):
    prepared = provider.prepare(request(image_url="https://e.com/a.png", prompt="a fox [fal:fail]"))
    with pytest.raises(HostedError) as err:
        run(provider, prepared, tmp_path / "x.mp4", clock)
    text = str(err.value)
    assert "failed" in text and "could not be read" in text and "image_load_error" in text
    assert len(fal.submits()) == 1 and not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("scenario", ["status-503", "status-429", "drop-status"])
def test_status_bursts_are_retried_and_submit_is_sent_once(provider, fal, clock, tmp_path, scenario):
    fal.settings.retry_after = "2"
    prepared = provider.prepare(request("t2v", prompt=f"a fox [fal:{scenario}]", width=96, height=64))
    outcome = run(provider, prepared, tmp_path / "x.mp4", clock)
    assert probe_video(outcome.path)["frames"] == 9
    assert len(fal.submits()) == 1
    assert len(fal.calls("GET", r"/fal-ai/ltx-2-19b/requests/[\w-]+/status")) == 3 + 3 + 2 + 1  # bursts + machine
    if scenario != "drop-status":  # Retry-After: 2 honoured, in slices of at most a second
        assert sum(clock.slept) >= 3 * 2


@pytest.mark.parametrize("scenario, words", [
    ("submit-503", ["HTTP 503"]),
    ("drop-submit", ["not resent", "dashboard"]),
    ("balance", ["HTTP 403", "Exhausted balance"]),
])
def test_submit_is_never_retried(provider, fal, clock, tmp_path, scenario, words):
    prepared = provider.prepare(request("t2v", prompt=f"a fox [fal:{scenario}]"))
    with pytest.raises(HostedError) as err:
        run(provider, prepared, tmp_path / "x.mp4", clock)
    assert len(fal.submits()) == 1
    for word in words:
        assert word in str(err.value)


def test_interrupt_cancels_the_job_at_fal(provider, fal, clock, tmp_path):
    statuses = []

    def check_interrupt():
        if any("position 1" in s for s in statuses):
            raise Interrupted()

    prepared = provider.prepare(request("t2v", width=96, height=64))
    with pytest.raises(Interrupted):
        run(provider, prepared, tmp_path / "x.mp4", clock, statuses, check_interrupt=check_interrupt)
    [cancel] = fal.calls("PUT", r"/fal-ai/ltx-2-19b/requests/[\w-]+/cancel")
    assert cancel.body == b"" and cancel.headers["Authorization"] == f"Key {KEY}"
    [job] = fal.jobs.values()
    assert job.outcome == "cancelled" and "cancelled at the provider" in statuses[-1]


@pytest.mark.parametrize("scenario, words", [
    ("slow-queue", None),
    ("never", ["did not finish within 120 s", "so it was cancelled at fal"]),
    ("fail-5xx", ["Runner disconnected", "runner_disconnected"]),
    ("malformed", ["malformed JSON"]),
    ("malformed-result", ["malformed JSON"]),
    ("no-video", ["without a video URL"]),
    ("oversized", ["refused before reading", "-byte limit (fal declared", "finished and was billed", "job id"]),
    ("oversized-chunked", ["refused while reading", "-byte limit (fal declared", "job id"]),
    ("slow-download", ["stalled"]),
    ("wrong-type", ["text/html"]),
    ("redirect-file", ["only http and https"]),
    ("redirect-private", ["10.0.0.7", "private"]),
    ("redirect-metadata", ["169.254.169.254", "link-local"]),
    ("expired", ["HTTP 404", "expired"]),
])
def test_every_failure_mode_ends_within_the_deadline(provider, fal, clock, tmp_path, scenario, words):
    prepared = provider.prepare(request("t2v", prompt=f"a fox [fal:{scenario}]", width=96, height=64))
    dest = tmp_path / "out" / "x.mp4"
    if words is None:
        assert probe_video(run(provider, prepared, dest, clock).path)["frames"] == 9
    else:
        with pytest.raises(HostedError) as err:
            run(provider, prepared, dest, clock)
        for word in words:
            assert word in str(err.value)
        assert not dest.parent.exists() or list(dest.parent.iterdir()) == []  # nothing partial left
    assert clock() <= 120.0 + 2.0 * 1.1 and len(fal.submits()) == 1


def test_no_key_in_any_message_or_url(provider, fal, clock, tmp_path, image):
    """Errors, status texts and every URL the fake was sent carry no part of the key."""
    texts = []
    for scenario in ("fail", "malformed", "expired", "submit-503", "redirect-private", "never"):
        prepared = provider.prepare(request("t2v", prompt=f"a fox [fal:{scenario}]"))
        with pytest.raises(HostedError) as err:
            run(provider, prepared, tmp_path / f"{scenario}.mp4", clock, texts, deadline_s=5.0)
        texts.append(str(err.value))
    fal.settings.cdn_upload_status = 500
    fal.settings.storage_upload_status = 500
    with pytest.raises(HostedError) as err:
        provider.upload(fal.video_path)  # a video is never sent as a data URI
    texts.append(str(err.value))
    wrong = FalProvider(provider.http, KEY + "-revoked", fal.url)
    with pytest.raises(HostedError) as err:
        wrong.submit(wrong.prepare(request("t2v")))
    assert "HTTP 401" in str(err.value) and "key was refused" in str(err.value)
    texts.append(str(err.value))
    urls = [f"{r.path}?{r.query}" for r in fal.requests]
    for part in KEY_PARTS:
        assert not any(part in text for text in texts + urls)
    assert {r.headers.get("Authorization") for r in fal.requests
            if r.path.startswith(("/cdn/", "/gcs/", "/files/"))} <= {None} | {f"Bearer {t}" for t in fal.tokens}


def test_status_result_and_cancel_urls(provider, fal, clock):
    prepared = provider.prepare(request("t2v", width=96, height=64))
    job = provider.submit(prepared)
    base = f"{fal.url}/fal-ai/ltx-2-19b/requests/{job.job_id}"
    assert job.urls == {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}
    # A resumed job has no URLs, and a URL on another host is never used (the key would go there): both are
    # built the documented way, without the endpoint's sub-path.
    for urls in ({}, {"status_url": "https://attacker.example/steal"}):
        resumed = JobRef("fal", "fal-ai/ltx-2-19b/text-to-video", job.job_id, urls=urls)
        assert provider.status(resumed).state == "queued"
    assert [c.path for c in fal.calls("GET", r".+/status")] == [f"/fal-ai/ltx-2-19b/requests/{job.job_id}/status"] * 2
    assert provider.cancel(job) is True
    assert provider.status(job).state == "failed"
    assert provider.cancel(job) is False  # 400 ALREADY_COMPLETED
    assert provider.cancel(JobRef("fal", job.endpoint, "no-such-id")) is False  # 404 NOT_FOUND
    with pytest.raises(L2AError, match="owner/alias"):
        provider.status(JobRef("fal", "", job.job_id))


def test_a_start_deadline_passed_in_the_queue_fails_the_job(provider, fal):
    """X-Fal-Request-Timeout (fal-client's start_timeout): past it, the job ends COMPLETED + request_timeout and its
    result answers 504 with X-Fal-Request-Timeout-Type: user (spec §3.4, §10.2)."""
    answer = requests.post(f"{fal.url}/fal-ai/ltx-2-19b/text-to-video", json={"prompt": "a fox [fal:slow-queue]"},
                           headers={"Authorization": f"Key {KEY}", "X-Fal-Request-Timeout": "0.001"}, timeout=5)
    time.sleep(0.01)
    job = JobRef("fal", "fal-ai/ltx-2-19b/text-to-video", answer.json()["request_id"])
    status = provider.status(job)
    assert status.state == "failed" and "request_timeout" in status.message
    with pytest.raises(HostedError) as err:
        provider.result(job)
    assert err.value.status == 504 and "Request timed out" in str(err.value)


def test_resume_fetches_a_job_submitted_earlier(provider, fal, clock, tmp_path):
    job = provider.submit(provider.prepare(request("t2v", width=96, height=64)))
    outcome = resume_job(provider, JobRef("fal", job.endpoint, job.job_id), tmp_path / "resumed.mp4", poll=(1, 2),
                         sleep=clock.sleep, clock=clock)
    assert probe_video(outcome.path)["frames"] == 9 and len(fal.submits()) == 1


def test_uploads_cdn_then_storage_then_data_uri(provider, fal, image, tmp_path):
    first = provider.upload(image)
    second = provider.upload(image)
    assert first != second and len(fal.calls("POST", "/storage/auth/token")) == 1  # the token is reused
    fal.settings.cdn_upload_status = 500
    via_storage = provider.upload(image)
    [put] = fal.calls("PUT", r"/gcs/.+")
    assert "Authorization" not in put.headers and fal.files[via_storage[len(fal.url):]] == image.read_bytes()
    fal.settings.storage_upload_status = 503
    data_uri = provider.upload(image)
    assert data_uri == "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(2**20))
    with pytest.raises(HostedError, match="HTTP 500"):
        provider.upload(big)  # above ~1 MB, fal wants an upload, not a data URI


def test_multipart_upload_above_the_threshold(provider, fal, tmp_path):
    provider.MULTIPART_THRESHOLD, provider.MULTIPART_CHUNK = 1000, 400
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(fal.video[:2500])
    url = provider.upload(clip)
    parts = fal.calls("PUT", r"/files/\w+/clip\.mp4/multipart/\w+/\d+")
    assert [p.path.rsplit("/", 1)[1] for p in parts] == ["1", "2", "3", "4", "5", "6", "7"]
    assert fal.files[url[len(fal.url):]] == clip.read_bytes()
    assert not fal.calls("POST", "/files/upload")


# --------------------------------------------------------------------------------- the fake, checked by fal_client

def test_official_fal_client_accepts_the_fake(fal, monkeypatch, tmp_path):
    """Spec §3.12 recipe B: the official client, pointed at the fake, runs submit/status/result/cancel/upload."""
    fal_client = pytest.importorskip("fal_client")
    import fal_client.client as internals

    for name in ("QUEUE_URL_FORMAT", "RUN_URL_FORMAT"):
        monkeypatch.setattr(internals, name, f"{fal.url}/")
    monkeypatch.setattr(internals, "REST_URL", fal.url)
    monkeypatch.setattr(internals, "CDN_URL", fal.url)
    client = fal_client.SyncClient(key=KEY)

    handle = client.submit(I2V, {"prompt": "a fox", "image_url": "https://e.com/a.png", "num_frames": 9},
                           start_timeout=30)
    events = list(handle.iter_events(with_logs=True, interval=0))
    assert [e.position for e in events if isinstance(e, fal_client.Queued)] == [2, 1, 0]
    assert isinstance(events[-1], fal_client.Completed) and events[-1].error is None and events[-1].logs
    assert any(isinstance(e, fal_client.InProgress) and e.logs for e in events)
    result = handle.get(interval=0)
    assert result["video"]["url"].startswith(f"{fal.url}/cdn/") and result["seed"] == 1234567
    [submit] = fal.submits()
    assert submit.headers["X-Fal-Request-Timeout"] == "30.0" and "fal-client/" in submit.headers["User-Agent"]
    assert {c.query for c in fal.calls("GET", r".+/status")} == {"logs=true", "logs=false"}

    failing = client.submit(I2V, {"prompt": "a fox [fal:fail]", "image_url": "https://e.com/a.png"})
    with pytest.raises(internals.FalClientHTTPError) as err:
        failing.get(interval=0)
    assert err.value.status_code == 422 and err.value.response.headers["X-Fal-Retryable"] == "false"

    queued = client.submit(I2V, {"prompt": "a fox", "image_url": "https://e.com/a.png"})
    queued.cancel()
    assert queued.status().error
    with pytest.raises(internals.FalClientHTTPError) as err:
        queued.cancel()
    assert err.value.status_code == 400

    url = client.upload(b"\x89PNG fake", "image/png", "frame.png")
    assert fal.files[url[len(fal.url):]] == b"\x89PNG fake"
    assert fal.calls("POST", "/files/upload")[0].headers["X-Fal-File-Name"] == "frame.png"
