"""Lightricks LTX API client against a local fake (spec hosted-apis.md §7): the v2 field mapping and its
model/resolution/fps/duration rules, the pre-signed upload (the PUT never carries the key), the v2 status machine,
the documented errors, and every failure mode ending in a clear error (never a key) within the deadline."""

import pytest
from fakes.generic_server import loopback_only
from fakes.ltx_server import LtxServer
from PIL import Image

from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted.base import HostedError, HttpClient
from ltx2_anywhere.pipelines.hosted.jobs import run_job
from ltx2_anywhere.pipelines.hosted.ltx import LtxProvider
from ltx2_anywhere.pipelines.hosted.types import GenerationRequest
from ltx2_anywhere.pipelines.media import probe_video

KEY = "ltx-secret-key-0123456789"
IMAGE_URL = "https://example.com/still.jpg"


class Interrupted(Exception):
    pass


class Clock:
    """run_job's clock and sleep: waiting costs no real time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake():
    with LtxServer(KEY) as server, loopback_only() as outside:
        yield server
    assert server.errors == [] and outside == []


def provider(fake, **http) -> LtxProvider:
    options = dict(allow_loopback=True, timeout=5.0, backoff=0.01, stall_timeout=0.5, sleep=lambda s: None)
    return LtxProvider(HttpClient(**{**options, **http}), KEY, base_url=fake.url)


def request(**fields) -> GenerationRequest:
    values = dict(mode="t2v", prompt="a lighthouse in a storm", seed=3, duration=6.0, fps=25.0)
    return GenerationRequest(**{**values, **fields})


def run(client, prepared, dest, **kwargs):
    clock = Clock()
    kwargs = {"deadline_s": 60.0, "poll": (1.0, 5.0), "sleep": clock.sleep, "clock": clock, **kwargs}
    return run_job(client, prepared, dest, **kwargs)


def assert_no_key_leak(fake, *texts):
    for text in texts:
        assert KEY not in text
    for rec in fake.requests:
        assert KEY not in rec.path and KEY not in rec.query


def test_prepare_maps_the_request_to_v2_fields():
    prepared = LtxProvider(None, "").prepare(request(generate_audio=False))
    assert prepared.endpoint == "ltx-2-fast/text-to-video" and prepared.uploads == {}
    assert prepared.payload == {"prompt": "a lighthouse in a storm", "model": "ltx-2-fast", "duration": 6,
                                "resolution": "1920x1080", "fps": 25, "generate_audio": False}
    assert prepared.notes == ("The LTX API has no seed (results differ run to run): not sent.",)
    assert prepared.cost.usd == pytest.approx(0.24)
    pro = LtxProvider(None, "").prepare(request(mode="i2v", image_url=IMAGE_URL, resolution="4k"),
                                        "ltx-2-pro/image-to-video")
    assert pro.payload["model"] == "ltx-2-pro" and pro.payload["image_uri"] == IMAGE_URL
    assert pro.payload["resolution"] == "3840x2160" and pro.cost.usd == pytest.approx(1.44)


def test_prepare_snaps_with_notes(tmp_path):
    client = LtxProvider(None, "")
    small = client.prepare(request(resolution="720p", fps=24.0, duration=5.0, aspect_ratio="9:16"))
    assert (small.payload["resolution"], small.payload["fps"], small.payload["duration"]) == ("1920x1080", 25, 6)
    text = " ".join(small.notes)
    assert "720p was sent as 1920x1080" in text and "24 fps was sent as 25" in text
    assert "5 s was sent as 6 s" in text and "landscape only" in text
    long = client.prepare(request(duration=15.0))
    assert long.payload["duration"] == 14  # ltx-2-fast at 1080p and 25 fps: up to 20 s in even steps
    capped = client.prepare(request(duration=15.0), "ltx-2-pro/text-to-video")
    assert capped.payload["duration"] == 10 and any("over 10 s needs ltx-2-fast" in n for n in capped.notes)
    frames = client.prepare(request(duration=None, num_frames=201, fps=50.0))
    assert (frames.payload["fps"], frames.payload["duration"]) == (50, 6)  # 201 frames at 50 fps = 4.02 s
    image = tmp_path / "still.png"
    Image.new("RGB", (64, 64)).save(image)
    local = client.prepare(request(mode="i2v", image=image))
    assert local.uploads == {"image_uri": image} and "image_uri" not in local.payload


@pytest.mark.parametrize("fields, endpoint, message", [
    (dict(mode="extend"), None, "The LTX API has no video extension: use fal or wavespeed"),
    (dict(mode="i2v"), None, "needs an image"),
    (dict(mode="i2v", image_url=IMAGE_URL, end_image_url=IMAGE_URL), None, "no end image"),
    (dict(), "ltx-2-pro/image-to-video", "does not do text-to-video"),
    (dict(prompt="x" * 5001), None, "1-5000 characters"),
    (dict(resolution="big"), None, "Unknown resolution"),
])
def test_refusals(fields, endpoint, message):
    with pytest.raises(L2AError, match=message):
        LtxProvider(None, "").prepare(request(**fields), endpoint)


def test_a_job_runs_to_a_real_mp4(fake, tmp_path):
    client = provider(fake)
    statuses = []
    outcome = run(client, client.prepare(request()), tmp_path / "out.mp4", on_status=statuses.append)
    info = probe_video(outcome.path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1 and info["frames"] == 9
    assert len(fake.submits()) == 1 and fake.submits()[0].path == "/v2/text-to-video"
    job = outcome.job.job_id
    assert fake.calls("GET", rf"/v2/text-to-video/{job}")
    assert any("in queue" in s for s in statuses) and any("running" in s for s in statuses)
    api = fake.calls("POST", r"/v2/.*") + fake.calls("GET", r"/v2/.*")
    assert all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in api)
    assert all("Authorization" not in r.headers for r in fake.calls("GET", r"/results/.*"))
    assert_no_key_leak(fake, *statuses)


def test_a_local_image_goes_through_the_presigned_upload(fake, tmp_path):
    image = tmp_path / "still.png"
    Image.new("RGB", (64, 64), (10, 120, 200)).save(image)
    client = provider(fake)
    outcome = run(client, client.prepare(request(mode="i2v", image=image)), tmp_path / "out.mp4")
    assert probe_video(outcome.path)["frames"] == 9
    (ticket,) = fake.calls("POST", r"/v1/upload")
    assert ticket.headers["Authorization"] == f"Bearer {KEY}"
    (put,) = fake.calls("PUT", r"/storage/\w+")
    assert "Authorization" not in put.headers and put.headers["Content-Type"] == "image/png"
    assert put.body == image.read_bytes()
    submit = fake.submits()[0]
    assert submit.path == "/v2/image-to-video" and submit.json["image_uri"].startswith("gs://ltx-api-uploads/")


def test_an_image_url_is_passed_without_upload(fake, tmp_path):
    client = provider(fake)
    run(client, client.prepare(request(mode="i2v", image_url=IMAGE_URL)), tmp_path / "out.mp4")
    assert fake.calls("POST", r"/v1/upload") == [] and fake.submits()[0].json["image_uri"] == IMAGE_URL


@pytest.mark.parametrize("scenario, message", [
    ("fail", "Generation failed"),
    ("filtered", "content_filtered_error"),
])
def test_a_failed_job_says_why(fake, tmp_path, scenario, message):
    fake.scenario = scenario
    client = provider(fake)
    with pytest.raises(HostedError, match=message) as failed:
        run(client, client.prepare(request()), tmp_path / "out.mp4")
    assert len(fake.submits()) == 1 and not (tmp_path / "out.mp4").exists()
    assert_no_key_leak(fake, str(failed.value))


@pytest.mark.parametrize("scenario, message", [
    ("submit-402", "Insufficient funds. Required: 120 credits"),
    ("submit-413", "request_too_large"),
    ("submit-429", "HTTP 429.*concurrency_limit_error"),
    ("submit-500", "HTTP 500"),
    ("drop-submit", "was not resent"),
])
def test_submit_errors_are_reported_and_never_resent(fake, tmp_path, scenario, message):
    fake.scenario = scenario
    client = provider(fake)
    with pytest.raises(HostedError, match=message) as failed:
        run(client, client.prepare(request()), tmp_path / "out.mp4")
    assert len(fake.submits()) == 1
    assert "request id" in str(failed.value) or scenario == "drop-submit"  # x-request-id is quoted
    assert_no_key_leak(fake, str(failed.value))


@pytest.mark.parametrize("scenario", ["poll-503", "poll-429", "poll-529", "drop-poll", "download-503",
                                      "drop-download", "slow-queue"])
def test_bursts_are_retried_and_submit_is_sent_once(fake, tmp_path, scenario):
    fake.scenario = scenario
    client = provider(fake)
    outcome = run(client, client.prepare(request()), tmp_path / "out.mp4")
    assert probe_video(outcome.path)["frames"] == 9
    assert len(fake.submits()) == 1


@pytest.mark.parametrize("scenario, message", [
    ("malformed", "malformed JSON"),
    ("never", "did not finish within 60 s"),
    ("oversized", "over the 1,048,576-byte limit"),
    ("slow-download", "stalled"),
    ("wrong-type", "text/html"),
    ("redirect-file", "only http and https"),
    ("redirect-private", "private address"),
    ("expired", "expired"),
])
def test_failure_modes_end_in_a_clear_error(fake, tmp_path, scenario, message):
    fake.scenario = scenario
    client = provider(fake, max_download_bytes=2**20)
    dest = tmp_path / "out" / "video.mp4"
    with pytest.raises(HostedError, match=message) as failed:
        run(client, client.prepare(request()), dest)
    assert len(fake.submits()) == 1
    assert not dest.exists() and not any(dest.parent.glob(".*.part"))
    assert_no_key_leak(fake, str(failed.value))


def test_a_job_past_retention_is_reported_as_expired(fake, tmp_path):
    fake.settings.retention_s = 0.0
    client = provider(fake)
    with pytest.raises(HostedError, match="HTTP 404.*expired"):
        run(client, client.prepare(request()), tmp_path / "out.mp4")
    assert len(fake.calls("GET", r"/v2/.*")) == 1


def test_interrupt_stops_polling_and_says_the_job_still_bills(fake, tmp_path):
    fake.scenario = "never"
    client = provider(fake)

    def check_interrupt():
        if len(fake.calls("GET", r"/v2/.*")) >= 2:
            raise Interrupted()

    statuses = []
    with pytest.raises(Interrupted) as stopped:
        run(client, client.prepare(request()), tmp_path / "out.mp4", check_interrupt=check_interrupt,
            on_status=statuses.append)
    note = " ".join(getattr(stopped.value, "__notes__", [])) or statuses[-1]
    assert "ltx has no cancel" in note and "will still run and bill" in note
    assert len(fake.submits()) == 1
    assert_no_key_leak(fake, note, *statuses)
