"""ByteCompute client against a local fake (spec hosted-apis.md §6): mapping and snapping to the documented
limits, multipart submits (a local image as the `image` file), the POST status call answering 409 until the job
runs, ByteCompute's own adjustments passed on and the POST download. Its failure modes, each ending in a clear error
(never a key) within the deadline, run with the other providers' in test_hosted_jobs.py."""

import pytest
from fakes.bytecompute_server import _fields
from fakes.harness import BYTECOMPUTE, assert_no_key_leak, run
from PIL import Image

from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted.base import HostedError
from ltx2_anywhere.pipelines.hosted.bytecompute import ByteComputeProvider
from ltx2_anywhere.pipelines.media import probe_video

KEY = BYTECOMPUTE.key
request = BYTECOMPUTE.request
provider = BYTECOMPUTE.connect


@pytest.fixture
def fake():
    with BYTECOMPUTE.serve() as server:
        yield server


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "frame.png"
    Image.new("RGB", (640, 480), (200, 80, 20)).save(path)
    return path


def form(rec) -> dict:
    """The multipart fields of a recorded submit: text values, files as (content type, bytes)."""
    return _fields(rec.headers["Content-Type"], rec)


def test_prepare_maps_and_snaps_to_the_documented_limits():
    prepared = ByteComputeProvider(None, "").prepare(request(width=None, height=None, resolution="720p",
                                                            aspect_ratio="16:9"))
    assert prepared.endpoint == "text-to-video"
    assert prepared.payload == {"model": "Lightricks/LTX-2", "prompt": "waves at dusk", "duration": 5, "fps": 25,
                                "resolution": "1280x704"}
    assert any("1280x720 was sent as 1280x704" in n for n in prepared.notes)
    assert any("seed" in n for n in prepared.notes)  # ByteCompute has no seed field: said, not hidden
    assert prepared.cost.usd == pytest.approx(0.10) and "sd" in prepared.cost.formula

    big = ByteComputeProvider(None, "").prepare(request(width=2560, height=1440, duration=12.0, fps=24.0))
    assert big.payload["resolution"] == "1920x1088" and big.payload["duration"] == 10 and big.payload["fps"] == 25
    text = " ".join(big.notes)
    assert "2560x1440 was sent as 1920x1088" in text and "12 s was sent as 10 s" in text and "24 fps" in text
    assert big.cost.usd == pytest.approx(0.40) and "hd" in big.cost.formula

    portrait = ByteComputeProvider(None, "").prepare(request(width=None, height=None, resolution="720p",
                                                            aspect_ratio="9:16", duration=None, num_frames=121))
    assert portrait.payload["resolution"] == "704x1280" and portrait.payload["duration"] == 5  # 121 / 25 fps


def test_image_to_video_inputs(png):
    client = ByteComputeProvider(None, "")
    local = client.prepare(request(mode="i2v", image=png, width=None, height=None, resolution="720p",
                                   aspect_ratio="auto"))
    assert local.endpoint == "image-to-video" and local.uploads == {"image_uri": png}
    assert local.payload["resolution"] == "960x704"  # 720p at the image's 4:3
    remote = client.prepare(request(mode="i2v", image_url="https://example.com/a.png", width=None, height=None,
                                    aspect_ratio="auto"))
    assert remote.payload["image_uri"] == "https://example.com/a.png" and "resolution" not in remote.payload
    assert any("image's own size" in n for n in remote.notes)
    assert client.upload(png).startswith("data:image/png;base64,")


@pytest.mark.parametrize("fields, message", [
    (dict(mode="extend"), "ByteCompute has no video extension: use fal or wavespeed"),
    (dict(mode="i2v"), "needs an image"),
    (dict(mode="i2v", image_url="https://example.com/a.png", end_image_url="https://example.com/b.png"),
     "no end image"),
    (dict(resolution="huge", width=None, height=None), "Unknown resolution"),
])
def test_refusals(fields, message):
    with pytest.raises(L2AError, match=message):
        ByteComputeProvider(None, "").prepare(request(**fields))


def test_a_job_runs_through_409s_to_a_real_mp4(fake, tmp_path):
    fake.settings.queue_polls = 3  # three status calls answered 409 "not ready" first
    client = provider(fake)
    statuses = []
    outcome = run(client, client.prepare(request()), tmp_path / "out.mp4", on_status=statuses.append)
    info = probe_video(outcome.path)
    assert (info["width"], info["height"], info["fps"], info["audio_streams"]) == (256, 160, 25, 1)
    assert len(fake.submits()) == 1
    assert len(fake.polls()) == 6  # 3 x 409, processing, completed, result()
    assert len(fake.downloads()) == 1
    assert any("not ready" in s for s in statuses) and statuses[-1].startswith("bytecompute: done")
    submit = fake.submits()[0]
    assert submit.headers["Content-Type"].startswith("multipart/form-data")
    assert form(submit) == {"model": "Lightricks/LTX-2", "prompt": "waves at dusk", "duration": "5", "fps": "25",
                            "resolution": "256x160"}
    assert all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in fake.requests)
    assert outcome.result.adjustments == {} and outcome.notes == ()
    assert_no_key_leak(fake, *statuses)


def test_a_local_image_travels_as_the_multipart_image_file(fake, tmp_path, png):
    client = provider(fake)
    outcome = run(client, client.prepare(request(mode="i2v", image=png, width=None, height=None,
                                                 aspect_ratio="auto")), tmp_path / "out.mp4")
    fields = form(fake.submits()[0])
    assert fields["image"] == ("image/png", png.read_bytes()) and "image_uri" not in fields
    assert fields["resolution"] == "640x480"
    assert probe_video(outcome.path)["width"] == 640


def test_an_image_url_travels_as_image_uri(fake, tmp_path):
    client = provider(fake)
    run(client, client.prepare(request(mode="i2v", image_url="https://example.com/a.png")), tmp_path / "out.mp4")
    assert form(fake.submits()[0])["image_uri"] == "https://example.com/a.png"


def test_bytecompute_adjustments_are_passed_on(fake, tmp_path):
    client = provider(fake)
    statuses = []
    prepared = client.prepare(request(width=1920, height=1088, fps=50.0, duration=10.0))
    assert prepared.notes == (prepared.notes[0],)  # within the documented limits: only the seed note
    outcome = run(client, prepared, tmp_path / "out.mp4", on_status=statuses.append)
    assert outcome.result.adjustments == {"duration": {"requested": 10, "applied": 5, "reason": "GPU budget"}}
    assert any("bytecompute adjusted the request" in n and "GPU budget" in n for n in outcome.notes)
    assert any("ByteCompute adjusted duration 10 -> 5 (GPU budget)" in s for s in statuses)
    info = probe_video(outcome.path)
    assert (info["width"], info["height"], info["fps"]) == (1920, 1088, 50)  # the output, not the request


def test_an_expired_job_is_reported_not_retried(fake, tmp_path):
    fake.settings.retention_s = 0.0
    client = provider(fake)
    with pytest.raises(HostedError, match="Job '.*' not found.*expired"):
        run(client, client.prepare(request()), tmp_path / "out.mp4")
    assert len(fake.polls()) == 1
