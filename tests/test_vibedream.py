"""vibedream client against a local fake (spec hosted-apis.md §5): mapping and snapping, the public-URL-only
rule (a local image is refused before anything is sent), and a whole job through run_job. Its failure modes, each
ending in a clear error (never a key) within the deadline, run with the other providers' in test_hosted_jobs.py."""

import pytest
from fakes.harness import VIBEDREAM, assert_no_key_leak, run

from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted.vibedream import LOCAL_IMAGE, VibedreamProvider
from ltx2_anywhere.pipelines.media import probe_video

KEY = VIBEDREAM.key
IMAGE_URL = VIBEDREAM.fields["image_url"]
request = VIBEDREAM.request
provider = VIBEDREAM.connect


@pytest.fixture
def fake():
    with VIBEDREAM.serve() as server:
        yield server


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
    assert fake.downloads() and all("Authorization" not in r.headers for r in fake.downloads())
    assert_no_key_leak(fake, *statuses)
