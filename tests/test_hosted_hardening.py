"""A paying user's guarantees, held on every provider client (fal, WaveSpeed, vibedream, ByteCompute, the LTX API)
against its fake: one corrupted answer does not end a job; a download is held to the size the provider declared or
the request implies; bad numbers are refused before anything is sent, in one shared check, and values above a
provider's maximum are snapped with a note; a crash (a real killed process too) never leads to a second submit;
a deadline cancels where the provider can; status texts carry what Resume needs and prices their precision."""

import json
import math
import os
import subprocess
import sys
import time

import pytest
from fakes import harness
from fakes.generic_server import no_outside_connections  # noqa: F401 (autouse)
from fakes.harness import BYTECOMPUTE, EVERY, FAL, LTX, VIBEDREAM, WAVESPEED

from ltx2_anywhere import cli
from ltx2_anywhere.pipelines.errors import L2AError
from ltx2_anywhere.pipelines.hosted.base import HostedError
from ltx2_anywhere.pipelines.hosted.fal import FalProvider
from ltx2_anywhere.pipelines.hosted.jobs import resume_job
from ltx2_anywhere.pipelines.hosted.limits import download_cap
from ltx2_anywhere.pipelines.hosted.store import ResultStore
from ltx2_anywhere.pipelines.hosted.types import GenerationRequest
from ltx2_anywhere.pipelines.media import probe_video

every = pytest.mark.parametrize("case", EVERY, ids=lambda case: case.name)


class Crash(BaseException):
    """The process dying: nothing of the job runner's own handling runs after it."""


def crash_when_running(texts):
    def on_status(text):
        texts.append(text)
        if " job " in text and ("running" in text or "in queue" in text):
            raise Crash()

    return on_status


def no_partial_files(folder):
    return not folder.exists() or not any(path.name.endswith(".part") for path in folder.rglob("*"))


# -- 1. one corrupted answer -------------------------------------------------------------------------------------------


@every
def test_one_corrupted_status_body_is_retried_and_the_job_completes(case, tmp_path):
    with case.serve() as fake:
        fake.scenario = "malformed-once"
        client = case.connect(fake)
        outcome = harness.run(client, client.prepare(case.request()), tmp_path / "out.mp4")
        assert probe_video(outcome.path)["frames"] == 9
        assert len(fake.submits()) == 1 and len(fake.polls()) >= 2


@every
def test_a_corrupted_submit_answer_is_never_resent(case, tmp_path):
    with case.serve() as fake:
        fake.scenario = "drop-submit"
        client = case.connect(fake)
        with pytest.raises(HostedError, match="not resent") as caught:
            harness.run(client, client.prepare(case.request()), tmp_path / "out.mp4")
        assert caught.value.maybe_accepted and len(fake.submits()) == 1
        harness.assert_no_key_leak(fake, str(caught.value))


# -- 2. downloads held to what was declared or asked -------------------------------------------------------------------


@every
@pytest.mark.parametrize("scenario, when", [("oversized", "before reading"), ("endless", "while reading")])
def test_an_oversized_download_is_refused_and_the_job_kept_for_resume(case, scenario, when, tmp_path):
    dest = tmp_path / "out" / "video.mp4"
    store = ResultStore(tmp_path / "store")
    with case.serve() as fake:
        fake.scenario = scenario
        client = case.connect(fake)  # the client's own cap stays at its default: the job's limit must refuse
        with pytest.raises(HostedError, match=f"refused {when}") as caught:
            harness.run(client, client.prepare(case.request()), dest, store=store)
        text = str(caught.value)
        why = "fal declared" if case is FAL else "the most the requested video can take"
        assert f"-byte limit ({why}" in text and "finished and was billed" in text
        [job] = store.pending()
        assert f"job id {job.job_id}" in text and f"provider {case.name}" in text and f"endpoint {job.endpoint}" in text
        assert not dest.exists() and no_partial_files(dest.parent) and len(fake.submits()) == 1
        fake.jobs[job.job_id].scenario = "ok"  # the CDN is fixed: Resume fetches it without paying again
        outcome = resume_job(client, job, tmp_path / "resumed.mp4", store=store, poll=(0.01, 0.05))
        assert probe_video(outcome.path)["frames"] == 9 and len(fake.submits()) == 1 and store.pending() == []


@pytest.mark.parametrize("scenario, when", [("larger-than-declared", "before reading"),
                                            ("larger-than-declared-chunked", "while reading")])
def test_fal_holds_the_file_to_its_declared_size(scenario, when, tmp_path):
    with FAL.serve() as fake:
        fake.scenario = scenario
        client = FAL.connect(fake)
        with pytest.raises(HostedError, match=f"refused {when}.*fal declared {len(fake.video):,} bytes"):
            harness.run(client, client.prepare(FAL.request()), tmp_path / "out.mp4")
        assert no_partial_files(tmp_path) and not (tmp_path / "out.mp4").exists()


def test_the_limit_follows_format_size_and_length():
    h264_720p = download_cap(1280, 720, 5, 25)
    prores_4k = download_cap(3840, 2160, 20, 25, "prores")
    assert 10e6 < h264_720p < 50e6  # a real one is a few MB
    assert 4e9 < prores_4k < 8 * 2**30  # several GB, still under the client's absolute cap
    fal = FalProvider(None, "")
    ask = dict(mode="t2v", prompt="p", seed=1, width=1280, height=720, num_frames=121, fps=25.0)
    plain = fal.prepare(GenerationRequest(**ask)).max_bytes
    prores = fal.prepare(GenerationRequest(**ask, options={"video_output_type": "PRORES4444 (.mov)"})).max_bytes
    assert prores > 5 * plain and plain == download_cap(1280, 704, 121 / 25, 25)


@every
def test_every_provider_limits_by_the_output_it_will_render(case):
    small = case.client(None, "").prepare(case.request(resolution="480p", duration=5.0, width=None, height=None,
                                                       num_frames=None))
    large = case.client(None, "").prepare(case.request(resolution="1080p", duration=10.0, width=None, height=None,
                                                       num_frames=None))
    assert 1e6 < small.max_bytes < large.max_bytes < 2 * 2**30


# -- 3. bad numbers refused before sending, values above a maximum snapped with a note ----------------------------------

BAD = {
    "width 0": (dict(width=0, height=0), "width = 0"),
    "duration -5": (dict(duration=-5.0), "duration = -5"),
    "duration 0": (dict(duration=0.0), "duration = 0"),
    "frames 0": (dict(duration=None, num_frames=0), "num_frames = 0"),
    "fps nan": (dict(fps=math.nan), "fps = nan"),
    "fps 0": (dict(fps=0.0), "fps = 0"),
    "guidance inf": (dict(guidance_scale=math.inf), "guidance_scale = inf"),
    "strength nan": (dict(image_strength=math.nan), "image_strength = nan"),
    "camera -inf": (dict(camera_scale=-math.inf), "camera_scale = -inf"),
    "option nan": (dict(options={"context": [1.0, math.nan]}), r"options\['context'\]\[1\] = nan"),
    "duration text": (dict(duration="5"), "duration = '5' is not a number"),
}


@every
@pytest.mark.parametrize("bad", BAD, ids=list(BAD))
def test_bad_numbers_are_refused_before_anything_is_sent(case, bad, tmp_path):
    fields, words = BAD[bad]
    with case.serve() as fake:
        client = case.connect(fake)
        with pytest.raises(L2AError, match=words) as caught:
            harness.run(client, client.prepare(case.request(**fields)), tmp_path / "out.mp4")
        assert "Nothing was sent" in str(caught.value) and fake.requests == []


@every
@pytest.mark.parametrize("fields, asked", [
    (dict(duration=60.0, num_frames=None), "60"),
    (dict(width=8192, height=4608, resolution=None), "8192x4608"),
    (dict(fps=240.0), "240"),
], ids=["duration", "size", "fps"])
def test_values_above_the_maximum_are_snapped_with_a_note(case, fields, asked):
    prepared = case.client(None, "").prepare(case.request(**fields))
    if case in (WAVESPEED, VIBEDREAM) and "fps" in fields:  # they pick the frame rate: said, not sent
        assert any("frame" in note and "not sent" in note for note in prepared.notes), prepared.notes
        return
    asked = "4608p" if case in (VIBEDREAM, LTX) and "width" in fields else asked  # they take the short side
    assert any(asked in note and "sent as" in note for note in prepared.notes), prepared.notes


def test_cli_sends_nothing_for_a_zero_size_and_a_negative_duration(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LTX2_ANYWHERE_TEST_ALLOW_LOOPBACK", "1")
    monkeypatch.setenv("LTX2_ANYWHERE_CACHE", str(tmp_path / "cache"))
    with BYTECOMPUTE.serve() as fake:
        monkeypatch.setenv("BYTECOMPUTE_API_KEY", fake.key)
        code = cli.main(["generate", "--backend", "bytecompute", "--base-url", fake.url, "--prompt", "waves",
                         "--width", "0", "--height", "0", "--duration", "-5", "--out", str(tmp_path / "o.mp4")])
        assert code == 2 and fake.requests == []
    assert "width = 0" in capsys.readouterr().err


# -- 4. never billed twice after a crash ---------------------------------------------------------------------------------


@every
def test_a_crash_mid_job_then_the_same_request_resumes_the_recorded_job(case, tmp_path):
    store = ResultStore(tmp_path / "store")
    with case.serve() as fake:
        fake.scenario = "never"
        client = case.connect(fake)
        texts = []
        with pytest.raises(Crash):
            harness.run(client, client.prepare(case.request()), tmp_path / "a.mp4", store=store,
                        on_status=crash_when_running(texts))
        [job] = fake.jobs.values()
        [record] = json.loads(store.index_path.read_text())["entries"].values()
        assert record["seed"] == case.fields["seed"] and record["job"]["job_id"] == job.id  # written at submit
        job.scenario, job.polls = "ok", 100  # it finished while nobody watched
        again = []
        outcome = harness.run(client, client.prepare(case.request()), tmp_path / "b.mp4", store=store,
                              on_status=again.append)
        assert outcome.resumed and not outcome.reused and outcome.job.job_id == job.id
        assert probe_video(outcome.path)["frames"] == 9 and len(fake.submits()) == 1
        assert "resuming the job of an identical earlier request" in again[0] and job.id in again[0]
        assert "resumed, not submitted again" in outcome.notes[0]
        fake.scenario = "ok"
        other = client.prepare(case.request(seed=case.fields["seed"] + 1))  # another seed: another request
        harness.run(client, other, tmp_path / "c.mp4", store=store)
        assert len(fake.submits()) == 2


@every
def test_a_request_sent_without_an_answer_is_refused_until_resubmitted_on_purpose(case, tmp_path):
    store = ResultStore(tmp_path / "store")
    with case.serve() as fake:
        fake.scenario, fake.settings.hold_s = "hold-submit", 0.1
        client = case.connect(fake)
        with pytest.raises(HostedError, match="recorded as sent"):
            harness.run(client, client.prepare(case.request()), tmp_path / "a.mp4", store=store)
        with pytest.raises(HostedError, match="was sent at .* never recorded") as caught:
            harness.run(client, client.prepare(case.request()), tmp_path / "a.mp4", store=store)
        text = str(caught.value)
        assert f"seed {case.fields['seed']}" in text and "may bill" in text and "--no-reuse" in text
        assert len(fake.submits()) == 1
        fake.scenario = "ok"
        outcome = harness.run(client, client.prepare(case.request()), tmp_path / "b.mp4", store=store, reuse=False)
        assert probe_video(outcome.path)["frames"] == 9 and len(fake.submits()) == 2


def test_a_failed_or_refused_submit_leaves_nothing_that_blocks_the_next_one(tmp_path):
    store = ResultStore(tmp_path / "store")
    with BYTECOMPUTE.serve() as fake:
        client = BYTECOMPUTE.connect(fake)
        for scenario in ("submit-500", "fail"):
            fake.scenario = scenario
            with pytest.raises(HostedError):
                harness.run(client, client.prepare(BYTECOMPUTE.request()), tmp_path / "a.mp4", store=store)
        fake.scenario = "ok"
        outcome = harness.run(client, client.prepare(BYTECOMPUTE.request()), tmp_path / "a.mp4", store=store)
        assert not outcome.resumed and len(fake.submits()) == 3  # submit-500 created nothing, "fail" ended


def _cli(args, env):
    code = "import sys; from ltx2_anywhere.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process, what):
    end = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"the CLI ended before {what}: {process.communicate()}"
        assert time.monotonic() < end, f"no {what} within 60 s"
        time.sleep(0.02)


@pytest.mark.parametrize("case, extra", [
    (FAL, ["--width", "96", "--height", "64", "--frames", "9", "--fps", "25"]),
    (BYTECOMPUTE, ["--width", "256", "--height", "160", "--duration", "5", "--fps", "25"]),
], ids=["fal", "bytecompute"])
def test_a_killed_cli_and_the_same_command_again_bill_once(case, extra, tmp_path, monkeypatch, capsys):
    env = {**os.environ, "LTX2_ANYWHERE_TEST_ALLOW_LOOPBACK": "1", "LTX2_ANYWHERE_CACHE": str(tmp_path / "cache")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with case.serve() as fake:
        monkeypatch.setenv(case.client.key_env, case.key)
        env[case.client.key_env] = case.key
        args = ["generate", "--backend", case.name, "--base-url", fake.url, "--prompt", "a quiet harbour",
                "--seed", "7", *extra, "--out", str(tmp_path / "clip.mp4")]

        fake.settings.queue_polls = fake.settings.run_polls = 0  # the CLI polls 1 s, then slower: finish at once
        fake.scenario = "never"  # killed mid-job, then the same command: the recorded job is resumed
        process = _cli(args, env)
        _wait_for(lambda: fake.polls(), process, "a status poll")
        process.kill()
        process.communicate()
        [job] = fake.jobs.values()
        job.scenario, job.polls = "ok", 100
        assert cli.main(args) == 0
        assert "resumed, not submitted again" in capsys.readouterr().out
        assert probe_video(tmp_path / "clip.mp4")["frames"] == 9 and len(fake.submits()) == 1

        fake.scenario = "hold-submit"  # killed between sending and the answer: refused, then resent on purpose
        args[args.index("7")] = "8"
        process = _cli(args, env)
        _wait_for(lambda: len(fake.jobs) == 2, process, "the second submit")
        process.kill()
        process.communicate()
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert "seed 8" in err and "never recorded" in err and "--no-reuse" in err and case.key not in err
        assert len(fake.submits()) == 2
        fake.scenario = "ok"
        assert cli.main([*args, "--no-reuse"]) == 0 and len(fake.submits()) == 3


# -- 5. a deadline cancels where the provider can --------------------------------------------------------------------------


@every
def test_a_deadline_cancels_where_the_provider_can(case, tmp_path):
    store = ResultStore(tmp_path / "store")
    with case.serve() as fake:
        fake.scenario = "never"
        client = case.connect(fake)
        with pytest.raises(HostedError, match="did not finish within 60 s") as caught:
            harness.run(client, client.prepare(case.request()), tmp_path / "out.mp4", store=store)
        [job] = fake.jobs.values()
        if case is FAL:
            assert "so it was cancelled at fal" in str(caught.value) and job.outcome == "cancelled"
            assert len(fake.calls("PUT", r".*/cancel")) == 1 and store.pending() == []
        else:
            assert "may still be running and billing" in str(caught.value) and f"job id {job.id}" in str(caught.value)
            assert [pending.job_id for pending in store.pending()] == [job.id]
        assert len(fake.submits()) == 1


# -- 6. status texts: what Resume needs, and prices to their precision ----------------------------------------------------


@every
def test_status_texts_show_provider_endpoint_job_id_and_a_precise_price(case, tmp_path):
    with case.serve() as fake:
        client = case.connect(fake)
        prepared = client.prepare(case.request())
        texts = []
        outcome = harness.run(client, prepared, tmp_path / "out.mp4", on_status=texts.append)
        after = texts[[text.split(" · ")[0] for text in texts].index(f"{case.name}: submitting") + 1:]
        assert after and all(text.startswith(f"{case.name}: ") for text in after)
        assert all(text.endswith(f" · {prepared.endpoint} job {outcome.job.job_id}") for text in after)
        harness.assert_no_key_leak(fake, *texts)
    if case is FAL:  # 96x64x9 = 0.06 MP, billed as 1 MP at $0.0018
        assert "est. $0.0018" in texts[0]
    if case is WAVESPEED:  # $0.08 x 0.75 (480p) for 5 s
        assert "est. $0.06" in texts[0]


def test_ltx_and_bytecompute_requests_differ_by_seed_though_their_payload_has_none(tmp_path):
    for case in (BYTECOMPUTE, LTX):
        first, second = (case.client(None, "").prepare(case.request(seed=seed)) for seed in (1, 2))
        assert "seed" not in first.payload and first.payload == second.payload
        fingerprints = {ResultStore.fingerprint(p.provider, p.endpoint, p.payload, p.uploads, p.seed)
                        for p in (first, second)}
        assert len(fingerprints) == 2
