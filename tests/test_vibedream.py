"""vibedream client against a local fake (spec hosted-apis.md §5): mapping and snapping, the public-URL-only
rule (a local image is refused before anything is sent), and whole jobs through run_job, including every failure
mode ending in a clear error (never a key) within the deadline."""

import pytest
from fakes.generic_server import loopback_only
from fakes.vibedream_server import VibedreamServer

from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted.base import HostedError, HttpClient
from ltx2_anywhere.pipelines.hosted.jobs import run_job
from ltx2_anywhere.pipelines.hosted.types import GenerationRequest
from ltx2_anywhere.pipelines.hosted.vibedream import LOCAL_IMAGE, VibedreamProvider
from ltx2_anywhere.pipelines.media import probe_video

KEY = "vd-secret-key-0123456789"
IMAGE_URL = "https://example.com/cat.png"


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
def fake(tmp_path):
    with VibedreamServer(KEY) as server, loopback_only() as outside:
        yield server
    assert server.errors == [] and outside == []


def provider(fake, **http) -> VibedreamProvider:
    options = dict(allow_loopback=True, timeout=5.0, backoff=0.01, stall_timeout=0.5, sleep=lambda s: None)
    return VibedreamProvider(HttpClient(**{**options, **http}), KEY, base_url=fake.url)


def request(**fields) -> GenerationRequest:
    values = dict(mode="i2v", prompt="a cat yawns", seed=42, image_url=IMAGE_URL)
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


def test_prepare_maps_the_request_to_vibedream_fields():
    prepared = VibedreamProvider(None, "").prepare(request(resolution="1080p", duration=8))
    assert prepared.endpoint == "ltx-2-19b" and prepared.uploads == {}
    assert prepared.payload == {"image": IMAGE_URL, "prompt": "a cat yawns", "resolution": "1080p", "duration": 8,
                                "seed": 42}
    assert prepared.notes == ()
    assert prepared.cost.usd == pytest.approx(0.29)  # ceil(12 x 1.5 x 8 / 5) cents
    assert "costCents" in prepared.cost.formula


def test_prepare_snaps_with_notes():
    prepared = VibedreamProvider(None, "").prepare(request(
        resolution="1440p", duration=3.4, seed=1_234_567, negative_prompt="blur", fps=24.0, generate_audio=False,
        options={"multiscale": True}))
    assert prepared.payload["resolution"] == "1080p"
    assert prepared.payload["duration"] == 5
    assert prepared.payload["seed"] == 234_567
    text = " ".join(prepared.notes)
    for expected in ("1440p was sent as 1080p", "3.4 s was sent as 5 s", "seed 1234567 was sent as 234567",
                     "negative prompt", "frame-rate", "silent mode", "option 'multiscale'"):
        assert expected in text
    long = VibedreamProvider(None, "").prepare(request(num_frames=721, fps=24.0))
    assert long.payload["duration"] == 20 and any("30.04 s was sent as 20 s" in n for n in long.notes)
    sized = VibedreamProvider(None, "").prepare(request(width=854, height=480))
    assert sized.payload["resolution"] == "480p"
    assert VibedreamProvider(None, "").prepare(request()).payload["resolution"] == "720p"


def test_local_image_is_refused_before_anything_is_sent(fake, tmp_path):
    image = tmp_path / "frame.png"
    image.write_bytes(b"\x89PNG")
    client = provider(fake)
    with pytest.raises(L2AError) as refused:
        client.prepare(request(image=image, image_url=None))
    assert str(refused.value) == LOCAL_IMAGE
    assert "public image URL" in LOCAL_IMAGE and "fal/wavespeed" in LOCAL_IMAGE
    with pytest.raises(L2AError, match="only takes a public image URL"):
        client.upload(image)
    with pytest.raises(L2AError, match="public image URL"):
        client.prepare(request(image_url="data:image/png;base64,iVBORw0KGgo="))
    assert fake.requests == []


@pytest.mark.parametrize("mode, named", [("t2v", "use fal, wavespeed, bytecompute or ltx"),
                                         ("extend", "use fal or wavespeed")])
def test_modes_vibedream_lacks_are_refused_naming_who_has_them(mode, named):
    with pytest.raises(L2AError, match=named):
        VibedreamProvider(None, "").prepare(request(mode=mode, image_url=None))


def test_end_image_and_missing_image_are_refused():
    with pytest.raises(L2AError, match="no end image"):
        VibedreamProvider(None, "").prepare(request(end_image_url=IMAGE_URL))
    with pytest.raises(L2AError, match="needs an image"):
        VibedreamProvider(None, "").prepare(request(image_url=None))


def test_a_job_runs_to_a_real_mp4(fake, tmp_path):
    client = provider(fake)
    statuses = []
    outcome = run(client, client.prepare(request()), tmp_path / "out.mp4", on_status=statuses.append)
    info = probe_video(outcome.path)
    assert info["video_streams"] == 1 and info["audio_streams"] == 1 and info["frames"] == 9
    assert len(fake.submits()) == 1
    assert outcome.result.raw["costCents"] == 12  # the actual cost, from the submit answer
    assert outcome.result.video_url.startswith(f"{fake.url}/assets/outputs/{outcome.job.job_id}/")
    assert any("running" in s for s in statuses) and statuses[-1].startswith("vibedream: done")
    api = fake.calls("POST", r"/api/.*") + fake.calls("GET", r"/api/.*")
    assert api and all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in api)
    assert all("Authorization" not in r.headers for r in fake.calls("GET", r"/assets/.*"))
    assert_no_key_leak(fake, *statuses)


def test_a_failed_job_says_why(fake, tmp_path):
    client = provider(fake)
    with pytest.raises(HostedError, match="flagged by content moderation") as failed:
        run(client, client.prepare(request(prompt="a cat yawns [vd:fail]")), tmp_path / "out.mp4")
    assert len(fake.submits()) == 1 and not (tmp_path / "out.mp4").exists()
    assert_no_key_leak(fake, str(failed.value))


@pytest.mark.parametrize("scenario", ["poll-503", "poll-429", "drop-poll", "download-503", "drop-download",
                                      "slow-queue"])
def test_bursts_are_retried_and_submit_is_sent_once(fake, tmp_path, scenario):
    fake.scenario = scenario
    client = provider(fake)
    outcome = run(client, client.prepare(request()), tmp_path / "out.mp4")
    assert probe_video(outcome.path)["frames"] == 9
    assert len(fake.submits()) == 1


@pytest.mark.parametrize("scenario, message", [
    ("malformed", "malformed JSON"),
    ("never", "did not finish within 60 s"),
    ("submit-500", "HTTP 500"),
    ("drop-submit", "was not resent"),
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


def test_interrupt_stops_polling_and_says_the_job_still_bills(fake, tmp_path):
    fake.scenario = "never"
    client = provider(fake)
    checks = []

    def check_interrupt():
        checks.append(1)
        if len(fake.calls("GET", r"/api/v1/predictions/.+")) >= 2:
            raise Interrupted()

    statuses = []
    with pytest.raises(Interrupted) as stopped:
        run(client, client.prepare(request()), tmp_path / "out.mp4", check_interrupt=check_interrupt,
            on_status=statuses.append)
    note = " ".join(getattr(stopped.value, "__notes__", [])) or statuses[-1]
    assert "vibedream has no cancel" in note and "will still run and bill" in note
    assert "job id" in note and len(fake.submits()) == 1
    assert_no_key_leak(fake, note, *statuses)
