"""Lightricks LTX API client against a local fake (spec hosted-apis.md §7): the v2 field mapping and its
model/resolution/fps/duration rules, the pre-signed upload (the PUT never carries the key), the v2 status machine,
and the documented submit errors. Its failure modes, each ending in a clear error (never a key) within the deadline,
run with the other providers' in test_hosted_jobs.py."""

import pytest
from fakes.harness import LTX, assert_no_key_leak, run
from PIL import Image

from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted.base import HostedError
from ltx2_anywhere.pipelines.hosted.ltx import LtxProvider
from ltx2_anywhere.pipelines.media import probe_video

KEY = LTX.key
IMAGE_URL = "https://example.com/still.jpg"
request = LTX.request
provider = LTX.connect


@pytest.fixture
def fake():
    with LTX.serve() as server:
        yield server


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
    api = fake.submits() + fake.polls()
    assert all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in api)
    assert fake.downloads() and all("Authorization" not in r.headers for r in fake.downloads())
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


def test_a_job_past_retention_is_reported_as_expired(fake, tmp_path):
    fake.settings.retention_s = 0.0
    client = provider(fake)
    with pytest.raises(HostedError, match="HTTP 404.*expired"):
        run(client, client.prepare(request()), tmp_path / "out.mp4")
    assert len(fake.polls()) == 1
