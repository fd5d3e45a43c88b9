"""WaveSpeedAI client: request mapping (no network), then whole jobs through `run_job` against the local fake
(tests/fakes/wavespeed_server.py), every failure mode ending in a video or a clear error within the deadline, and
the official `wavespeed` SDK run against the same fake so the fake's protocol is the real one."""

import time

import numpy as np
import pytest
from fakes.generic_server import no_outside_connections  # noqa: F401 (autouse)
from fakes.harness import Interrupted
from fakes.wavespeed_server import WaveSpeedServer
from PIL import Image

from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted import pricing
from ltx2_anywhere.pipelines.hosted.base import HostedError, HttpClient
from ltx2_anywhere.pipelines.hosted.jobs import resume_job, run_job
from ltx2_anywhere.pipelines.hosted.types import GenerationRequest, JobRef
from ltx2_anywhere.pipelines.hosted.wavespeed import WaveSpeedProvider
from ltx2_anywhere.pipelines.media import probe_video

T2V = "wavespeed-ai/ltx-2-19b/text-to-video"
I2V = "wavespeed-ai/ltx-2-19b/image-to-video"
EXTEND = "wavespeed-ai/ltx-2.3/extend"
DEADLINE = 15.0


@pytest.fixture
def ws(tmp_path):
    with WaveSpeedServer(tmp_path / "fake") as server:
        yield server
        assert server.errors == []


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "first frame.png"
    Image.fromarray(np.full((64, 96, 3), 120, dtype=np.uint8)).save(path)
    return path


def provider(ws=None, key=None, **http):
    client = HttpClient(allow_loopback=True, backoff=0.01, **http)
    return WaveSpeedProvider(client, key or (ws.key if ws else "k"), base_url=ws.url if ws else None)


def request(mode="t2v", **fields):
    fields.setdefault("prompt", "a lighthouse at dusk, waves, gulls calling")
    fields.setdefault("seed", 42)
    return GenerationRequest(mode=mode, **fields)


def run(p, prepared, dest, **kwargs):
    kwargs.setdefault("deadline_s", DEADLINE)
    kwargs.setdefault("poll", (0.01, 0.05))
    return run_job(p, prepared, dest, **kwargs)


# -- prepare(): mapping, snapping, refusing ---------------------------------------------------------------------------


def test_text_to_video_maps_to_the_documented_fields():
    prepared = provider().prepare(request())
    assert prepared.endpoint == T2V
    assert prepared.payload == {"prompt": "a lighthouse at dusk, waves, gulls calling", "resolution": "720p",
                                "aspect_ratio": "16:9", "seed": 42, "duration": 5}
    assert prepared.notes == ()
    assert prepared.cost.usd == pytest.approx(0.08)
    assert "enable_sync_mode" not in prepared.payload and "enable_base64_output" not in prepared.payload


def test_default_endpoint_per_mode(image, tmp_path):
    p = provider()
    assert p.prepare(request("i2v", image=image)).endpoint == I2V
    assert p.prepare(request("extend", video=image)).endpoint == EXTEND
    assert set(p.ENDPOINTS) == {T2V, I2V, "wavespeed-ai/ltx-2.3/text-to-video", "wavespeed-ai/ltx-2.3/image-to-video",
                                EXTEND}


def test_size_snaps_to_a_tier_and_an_aspect_ratio_with_notes():
    prepared = provider().prepare(request(width=704, height=1280))
    assert prepared.payload["resolution"] == "720p" and prepared.payload["aspect_ratio"] == "9:16"
    assert any("704x1280 was sent as 720p" in note for note in prepared.notes)
    assert any("704:1280 was sent as 9:16" in note for note in prepared.notes)
    assert provider().prepare(request(width=1280, height=720)).payload["aspect_ratio"] == "16:9"


@pytest.mark.parametrize(("asked", "tier"), [("480p", "480p"), ("540p", "480p"), ("1440p", "1080p"), ("4k", "1080p"),
                                             ("1920x1080", "1080p"), ("600p", "480p")])
def test_resolution_tiers(asked, tier):
    prepared = provider().prepare(request(resolution=asked))
    assert prepared.payload["resolution"] == tier
    assert bool(prepared.notes) == (asked != tier)


def test_unknown_resolution_and_aspect_are_refused():
    with pytest.raises(L2AError, match="480p, 720p or 1080p"):
        provider().prepare(request(resolution="huge"))
    with pytest.raises(L2AError, match="16:9 or 9:16"):
        provider().prepare(request(aspect_ratio="wide"))
    prepared = provider().prepare(request(aspect_ratio="4:3"))
    assert prepared.payload["aspect_ratio"] == "16:9" and "4:3 was sent as 16:9" in prepared.notes[0]


@pytest.mark.parametrize(("mode", "fields", "seconds", "noted"), [
    ("t2v", {"duration": 5.0}, 5, False),
    ("t2v", {"duration": 7.6}, 8, True),
    ("t2v", {"duration": 25}, 20, True),
    ("t2v", {"num_frames": 121, "fps": 24}, 5, True),
    ("t2v", {"num_frames": 241}, 10, True),  # the assumed 24 fps
    ("t2v", {"duration": 2}, 5, True),
    ("extend", {"duration": 1}, 1, False),
    ("extend", {"duration": 0.2}, 1, True),
])
def test_duration_is_whole_seconds_in_range(image, mode, fields, seconds, noted):
    extra = {"video": image} if mode == "extend" else {}
    prepared = provider().prepare(request(mode, **fields, **extra))
    assert prepared.payload["duration"] == seconds
    assert any("whole seconds" in note for note in prepared.notes) == noted


def test_large_seed_is_folded_into_range():
    big = 2**40 + 7
    prepared = provider().prepare(request(seed=big))
    assert prepared.payload["seed"] == big % 2**31
    assert f"seed {big} was sent as {big % 2**31}" in prepared.notes[0]
    assert provider().prepare(request(seed=2147483647)).payload["seed"] == 2147483647


def test_image_is_uploaded_or_passed_as_url(image):
    p = provider()
    local = p.prepare(request("i2v", image=image))
    assert local.uploads == {"image": image} and "image" not in local.payload
    remote = p.prepare(request("i2v", image_url="https://example.com/a.png"))
    assert remote.payload["image"] == "https://example.com/a.png" and remote.uploads == {}
    with pytest.raises(L2AError, match="needs an image"):
        p.prepare(request("i2v"))
    with pytest.raises(L2AError, match="pass the file"):
        p.prepare(request("i2v", image_url="data:image/png;base64,AAAA"))
    with pytest.raises(L2AError, match="does not exist"):
        p.prepare(request("i2v", image=image.with_name("missing.png")))


def test_end_image_is_refused_naming_fal(image):
    with pytest.raises(L2AError, match="use fal"):
        provider().prepare(request("i2v", image=image, end_image=image))


def test_unoffered_parameters_are_noted_not_sent(image):
    prepared = provider().prepare(request(
        "i2v", image=image, negative_prompt="blurry", guidance_scale=4.0, num_inference_steps=30, camera="dolly_in",
        aspect_ratio="9:16", generate_audio=False))
    assert set(prepared.payload) == {"prompt", "resolution", "seed", "duration"}
    note = next(n for n in prepared.notes if n.startswith("Not offered by WaveSpeed"))
    for word in ("negative prompt", "guidance scale", "step count", "camera motion", "aspect ratio", "audio"):
        assert word in note


def test_extend_takes_a_video_an_optional_prompt_and_no_seed(image):
    prepared = provider().prepare(request("extend", prompt="", video=image, duration=3, resolution="1080p"))
    assert prepared.payload == {"duration": 3} and prepared.uploads == {"video": image}
    note = prepared.notes[0]
    assert "seed" in note and "size" in note
    assert prepared.cost.usd == pytest.approx(0.30)
    with pytest.raises(L2AError, match="needs a video"):
        provider().prepare(request("extend"))


def test_wrong_endpoint_mode_and_empty_prompt_are_refused():
    with pytest.raises(L2AError, match="does not do text-to-video"):
        provider().prepare(request(), endpoint=I2V)
    with pytest.raises(L2AError, match="unknown"):
        provider().prepare(request("v2v"))
    with pytest.raises(L2AError, match="needs a prompt"):
        provider().prepare(request(prompt="  "))


def test_options_are_noted_and_never_sent():
    prepared = provider().prepare(request(options={"enable_sync_mode": True, "multiscale": True}))
    assert "enable_sync_mode" not in prepared.payload and "multiscale" not in prepared.payload
    assert "enable_sync_mode, multiscale" in prepared.notes[0]


def test_costs_follow_the_price_table():
    assert provider().prepare(request(resolution="1080p", duration=20)).cost.usd == pytest.approx(0.48)
    assert provider().prepare(request(resolution="480p")).cost.usd == pytest.approx(0.06)
    unknown = provider().prepare(request(), endpoint="wavespeed-ai/ltx-2.3/text-to-video").cost
    assert pricing.is_unknown(unknown)


class _CannedHttp:
    """An HttpClient stand-in answering every request with one JSON body (HTTP 200), recording the URLs asked."""

    def __init__(self, body):
        self.body, self.urls = body, []

    def json(self, method, url, **kwargs):
        self.urls.append(url)
        return self.body


@pytest.mark.parametrize(("status", "state"), [("created", "queued"), ("pending", "queued"), ("processing", "running"),
                                               ("completed", "completed"), ("failed", "failed"), ("timeout", "failed"),
                                               ("deleted", "failed"), ("cancelled", "cancelled"),
                                               ("warming-up", "queued")])
def test_status_mapping_includes_the_sdk_terminal_states(status, state):
    http = _CannedHttp({"code": 200, "message": "success", "data": {"id": "j", "status": status, "error": "boom"}})
    result = WaveSpeedProvider(http, "k").status(JobRef("wavespeed", T2V, "j"))
    assert result.state == state
    if state in ("failed", "cancelled"):
        assert "boom" in result.message


def test_result_url_from_another_host_is_not_sent_the_key():
    http = _CannedHttp({"code": 200, "data": {"id": "j", "status": "processing"}})
    p = WaveSpeedProvider(http, "k")
    p.status(JobRef("wavespeed", T2V, "j", urls={"get": "https://evil.example/api/v3/predictions/j/result"}))
    p.status(JobRef("wavespeed", T2V, "j", urls={"get": "https://api.wavespeed.ai/api/v3/predictions/j"}))
    assert http.urls == ["https://api.wavespeed.ai/api/v3/predictions/j/result",
                         "https://api.wavespeed.ai/api/v3/predictions/j"]


def test_envelope_code_is_checked_even_on_http_200():
    http = _CannedHttp({"code": 500, "message": "model busy", "data": None})
    with pytest.raises(HostedError, match="code 500: model busy"):
        WaveSpeedProvider(http, "k").status(JobRef("wavespeed", T2V, "j"))


# -- whole jobs against the fake ----------------------------------------------------------------------------------------


def _no_key_leaks(ws, texts):
    for text in texts:
        assert ws.key not in text
    for rec in ws.requests:
        assert ws.key not in rec.path and ws.key not in rec.query
        if not rec.path.startswith("/api/"):
            assert "Authorization" not in rec.headers, rec.path


def test_text_to_video_end_to_end(ws, tmp_path):
    statuses = []
    outcome = run(provider(ws), provider(ws).prepare(request()), tmp_path / "out.mp4", on_status=statuses.append)
    info = probe_video(outcome.path)
    assert (info["width"], info["height"], info["video_streams"], info["audio_streams"]) == (96, 64, 1, 1)
    assert outcome.path.read_bytes() == ws.video
    [submit] = ws.submits()
    assert submit.path == f"/api/v3/{T2V}" and submit.headers["Authorization"] == f"Bearer {ws.key}"
    assert submit.json == {"prompt": request().prompt, "resolution": "720p", "aspect_ratio": "16:9", "seed": 42,
                           "duration": 5}
    assert len(ws.calls("GET", rf"/api/v3/predictions/{outcome.job.job_id}/result")) >= 3
    assert any("in queue" in s for s in statuses) and any("running" in s for s in statuses)
    _no_key_leaks(ws, statuses)


def test_image_to_video_uploads_the_local_image_first(ws, tmp_path, image):
    outcome = run(provider(ws), provider(ws).prepare(request("i2v", image=image)), tmp_path / "out.mp4")
    [ticket] = ws.calls("POST", "/api/v3/media/uploads")
    assert ticket.json == {"filename": image.name, "size": image.stat().st_size, "content_type": "image/png"}
    [put] = ws.calls("PUT", r"/s3/\w+")
    assert "Authorization" not in put.headers and put.body == image.read_bytes()
    [submit] = ws.submits()
    assert submit.json["image"].startswith(f"{ws.url}/files/")
    assert ws.requests.index(put) < ws.requests.index(submit)
    assert probe_video(outcome.path)["frames"] == 9


def test_extend_uploads_the_local_video_then_extends_it(ws, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(ws.video)
    prepared = provider(ws).prepare(request("extend", prompt="the tide rolls in", video=clip, duration=3))
    outcome = run(provider(ws), prepared, tmp_path / "extended.mp4")
    [put] = ws.calls("PUT", r"/s3/\w+")
    assert put.body == ws.video and put.headers["Content-Type"] == "video/mp4"
    [submit] = ws.submits()
    assert submit.path == f"/api/v3/{EXTEND}"
    assert submit.json == {"video": submit.json["video"], "prompt": "the tide rolls in", "duration": 3}
    assert submit.json["video"].startswith(f"{ws.url}/files/")
    assert probe_video(outcome.path)["video_streams"] == 1


def test_legacy_multipart_upload_when_the_ticket_endpoint_is_missing(ws, tmp_path, image):
    ws.settings.ticket_uploads = False
    outcome = run(provider(ws), provider(ws).prepare(request("i2v", image=image)), tmp_path / "out.mp4")
    [multipart] = ws.calls("POST", "/api/v3/media/upload/binary")
    assert multipart.headers["Content-Type"].startswith("multipart/form-data")
    assert ws.submits()[0].json["image"].endswith(f"/{image.name}")
    assert outcome.path.exists()


def test_upload_error_in_the_envelope_stops_before_submit(ws, tmp_path, image):
    ws.settings.upload_error = "unsupported file type"
    with pytest.raises(HostedError, match="unsupported file type"):
        run(provider(ws), provider(ws).prepare(request("i2v", image=image)), tmp_path / "out.mp4")
    assert ws.submits() == []


def test_failed_job_is_a_clear_error(ws, tmp_path):
    with pytest.raises(HostedError) as caught:
        run(provider(ws), provider(ws).prepare(request(prompt="x [ws:fail]")), tmp_path / "out.mp4")
    text = str(caught.value)
    assert "failed" in text and "Content policy violation" in text and "refunds" in text
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("scenario", ["poll-503", "poll-429", "drop-poll", "slow-queue"])
def test_poll_trouble_is_retried_and_the_submit_sent_once(ws, tmp_path, scenario):
    outcome = run(provider(ws), provider(ws).prepare(request(prompt=f"x [ws:{scenario}]")), tmp_path / "out.mp4")
    assert probe_video(outcome.path)["frames"] == 9
    assert len(ws.submits()) == 1


@pytest.mark.parametrize(("scenario", "words"), [
    ("submit-500", "HTTP 500"),
    ("drop-submit", "not resent"),
    ("malformed-submit", "may have accepted it, so it was not resent"),
])
def test_submit_trouble_is_never_resent(ws, tmp_path, scenario, words):
    with pytest.raises(HostedError, match=words):
        run(provider(ws), provider(ws).prepare(request(prompt=f"x [ws:{scenario}]")), tmp_path / "out.mp4")
    assert len(ws.submits()) == 1


def test_refused_key_says_top_up_and_never_shows_the_key(ws, tmp_path):
    bad = "ws-wrong-key-123456"
    with pytest.raises(HostedError) as caught:
        run(provider(ws, key=bad), provider(ws).prepare(request()), tmp_path / "out.mp4")
    assert "401" in str(caught.value) and "top-up" in str(caught.value)
    assert bad not in str(caught.value)


def test_interrupt_says_no_cancel_and_the_job_can_be_resumed(ws, tmp_path):
    statuses = []

    def check():
        if any("running" in s for s in statuses):
            raise Interrupted()

    p = provider(ws)
    with pytest.raises(Interrupted) as caught:
        run(p, p.prepare(request(prompt="x [ws:slow-queue]")), tmp_path / "out.mp4", on_status=statuses.append,
            check_interrupt=check)
    [job_id] = ws.jobs
    note = " ".join(getattr(caught.value, "__notes__", []))
    assert "has no cancel" in note and "still run and bill" in note and job_id in note
    assert any("has no cancel" in s for s in statuses)
    _no_key_leaks(ws, [note, *statuses])
    outcome = resume_job(p, JobRef("wavespeed", T2V, job_id), tmp_path / "resumed.mp4", deadline_s=DEADLINE,
                         poll=(0.01, 0.05))
    assert probe_video(outcome.path)["frames"] == 9 and len(ws.submits()) == 1


@pytest.mark.parametrize(("scenario", "words", "http"), [
    ("never", "did not finish within", {}),
    ("malformed", "malformed JSON", {}),
    ("no-output", "has no video", {}),
    ("oversized", "over the", {"max_download_bytes": 2**20}),
    ("oversized-chunked", "larger than", {"max_download_bytes": 2**20}),
    ("slow-download", "stalled", {"stall_timeout": 0.3}),
    ("wrong-type", "text/html", {}),
    ("redirect-file", "only http and https", {}),
    ("redirect-private", "private", {}),
    ("redirect-metadata", "link-local", {}),
    ("expired", "expired", {}),
])
def test_failure_modes_end_in_a_clear_error_within_the_deadline(ws, tmp_path, scenario, words, http):
    deadline = 1.0 if scenario == "never" else DEADLINE
    p = provider(ws, **http)
    statuses = []
    start = time.monotonic()
    with pytest.raises(HostedError, match=words) as caught:
        run(p, p.prepare(request(prompt=f"x [ws:{scenario}]")), tmp_path / "out.mp4", deadline_s=deadline,
            on_status=statuses.append)
    assert time.monotonic() - start < deadline + 5
    assert len(ws.submits()) == 1
    assert list(tmp_path.glob("*out.mp4*")) == []  # nothing partial left beside the destination
    _no_key_leaks(ws, [str(caught.value), *statuses])


# -- the official SDK against the same fake ------------------------------------------------------------------------------


def test_official_sdk_completes_a_run_against_the_fake(ws, tmp_path, capsys):
    wavespeed = pytest.importorskip("wavespeed")
    client = wavespeed.Client(api_key=ws.key, base_url=ws.url, retry_interval=0.01)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(ws.video)
    url = client.upload(str(clip))
    output = client.run(EXTEND, {"video": url, "prompt": "x [ws:poll-429]", "duration": 3}, timeout=DEADLINE,
                        poll_interval=0.01)
    dest = HttpClient(allow_loopback=True).download(output["outputs"][0], tmp_path / "sdk.mp4")
    assert probe_video(dest)["frames"] == 9
    synced = client.run(T2V, {"prompt": "a lighthouse"}, enable_sync_mode=True)
    assert synced["outputs"][0].endswith(".mp4")
    failed = client.run_no_throw(T2V, {"prompt": "x [ws:fail]"}, timeout=DEADLINE, poll_interval=0.01)
    assert failed["status"] == "failed" and "Content policy violation" in failed["error"]
    submit = ws.submits()[0]
    assert submit.headers["X-Client-Name"] == "wavespeed-python" and submit.headers["Content-Type"] == "application/json"
    assert all("Authorization" not in r.headers for r in ws.calls("PUT", r"/s3/\w+"))
    capsys.readouterr()  # the SDK prints its retries
