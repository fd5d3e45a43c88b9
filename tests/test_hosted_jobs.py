"""The job lifecycle every provider shares (jobs.run_job / resume_job) and its store, driven by a tiny Provider
written here against the generic 127.0.0.1 server; then the vibedream, ByteCompute and LTX clients through every
failure mode of their fakes. Time is a fake clock advanced by the injected sleep, so deadlines and poll intervals
are checked exactly and the tests take no real waiting."""

import dataclasses
import time
from pathlib import Path

import pytest
from fakes import harness
from fakes.generic_server import GenericServer, Reply, loopback_only
from fakes.harness import BYTECOMPUTE, CASES, LTX, VIBEDREAM, Clock, Interrupted

from ltx2_anywhere.pipelines.hosted.base import HostedError, HttpClient
from ltx2_anywhere.pipelines.hosted.jobs import HostedOutcome, resume_job, run_job
from ltx2_anywhere.pipelines.hosted.store import ResultStore, fingerprint
from ltx2_anywhere.pipelines.hosted.types import CostEstimate, JobRef, JobResult, JobStatus, Prepared, Provider
from ltx2_anywhere.pipelines.media import probe_video

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(5000)
KEY = "fake-key-0123456789abcdef"


class FakeProvider(Provider):
    """The smallest honest provider: JSON submit/status/result, optional cancel, uploads, default fetch."""

    name = "fake"
    key_env = "FAKE_KEY"
    modes = ("t2v",)
    can_cancel = True

    def __init__(self, http, key, base_url, clock):
        super().__init__(http, key, base_url)
        self.clock = clock
        self.polled_at = []

    def _auth(self):
        return {"Authorization": f"Bearer {self.key}"}

    def map_request(self, request, endpoint):
        raise NotImplementedError  # the tests build Prepared themselves

    def upload(self, path):
        return self.http.json("POST", f"{self.base_url}/upload", retry=True, data=path.read_bytes(),
                              headers=self._auth())["url"]

    def submit(self, prepared):
        body = self.http.json("POST", f"{self.base_url}/submit", retry=False, json=prepared.payload,
                              headers=self._auth())
        return JobRef(self.name, prepared.endpoint, body["id"], submitted_at=time.time())

    def status(self, job):
        self.polled_at.append(self.clock())
        body = self.http.json("GET", f"{self.base_url}/jobs/{job.job_id}", retry=True, headers=self._auth())
        return JobStatus(body["state"], body.get("position"), body.get("message", ""), body)

    def result(self, job):
        body = self.http.json("GET", f"{self.base_url}/jobs/{job.job_id}/result", retry=True, headers=self._auth())
        return JobResult(body["video_url"], seed=body.get("seed"), adjustments=body.get("adjustments") or {})

    def cancel(self, job):
        if not self.can_cancel:
            return False
        self.http.request("PUT", f"{self.base_url}/jobs/{job.job_id}/cancel", retry=True, headers=self._auth())
        return True


@pytest.fixture
def ft():
    return Clock(1000.0)


@pytest.fixture
def server():
    with GenericServer() as srv, loopback_only() as outside:
        srv.route("POST", "/submit", Reply(json={"id": "j1"}))
        srv.route("GET", "/jobs/j1/result", Reply(json={"video_url": srv.url("/v.mp4"), "seed": 7}))
        srv.route("GET", "/v.mp4", Reply(body=VIDEO, content_type="video/mp4"))
        srv.route("PUT", "/jobs/j1/cancel", Reply(202, json={"status": "CANCELLATION_REQUESTED"}))
        yield srv
        assert outside == []


@pytest.fixture
def provider(server, ft):
    http = HttpClient(allow_loopback=True, max_retries=2, backoff=0.01, stall_timeout=2.0, sleep=ft.sleep)
    return FakeProvider(http, KEY, server.url(""), ft)


def states(server, *replies):
    server.route("GET", "/jobs/j1", *replies)


def queued(position):
    return Reply(json={"state": "queued", "position": position})


RUNNING = Reply(json={"state": "running"})
DONE = Reply(json={"state": "completed"})


def prepared(cost=0.10, **payload):
    return Prepared("fake", "fake/text-to-video", {"prompt": "a cat", "seed": 3, **payload},
                    cost=CostEstimate(cost, "test formula"))


def run(provider, ft, dest, prep=None, **kwargs):
    return run_job(provider, prep or prepared(), dest, sleep=ft.sleep, clock=ft, **kwargs)


def test_happy_path_reports_status_and_submits_once(server, provider, ft, tmp_path):
    states(server, queued(3), queued(1), RUNNING, RUNNING, DONE)
    texts = []
    outcome = run(provider, ft, tmp_path / "out" / "v.mp4", on_status=texts.append)
    assert isinstance(outcome, HostedOutcome) and not outcome.reused
    assert outcome.path.read_bytes() == VIDEO and outcome.path == tmp_path / "out" / "v.mp4"
    assert outcome.job.job_id == "j1" and outcome.result.seed == 7 and outcome.cost.usd == 0.10
    assert server.count("POST", "/submit") == 1
    assert "fake: in queue (position 3) · 0 s · est. $0.10 · fake/text-to-video job j1" in texts
    assert any(t.startswith("fake: in queue (position 1) · 1 s") for t in texts)
    after_submit = texts[texts.index("fake: submitting · 0 s · est. $0.10") + 1:]
    assert after_submit and all(t.endswith(" · fake/text-to-video job j1") for t in after_submit)  # what Resume needs
    assert any(t.startswith("fake: running · ") for t in texts)
    assert texts[-1].startswith("fake: done")
    gaps = [b - a for a, b in zip(provider.polled_at, provider.polled_at[1:])]
    assert gaps[0] == pytest.approx(1.0, rel=0.11)  # start fast ...
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:]))  # ... and back off
    assert max(ft.slept) <= 1.0  # sliced waits
    assert server.log[0].headers["Authorization"] == f"Bearer {KEY}"


def test_poll_interval_is_capped(server, provider, ft, tmp_path):
    states(server, *[RUNNING] * 12, DONE)
    run(provider, ft, tmp_path / "v.mp4", poll=(1.0, 3.0))
    gaps = [b - a for a, b in zip(provider.polled_at, provider.polled_at[1:])]
    assert max(gaps) <= 3.0 * 1.1 + 1e-9 and gaps[-1] >= 3.0 * 0.9


def test_interrupt_is_checked_every_second(server, provider, ft, tmp_path):
    states(server, *[RUNNING] * 6, DONE)
    seen = []
    run(provider, ft, tmp_path / "v.mp4", poll=(2.0, 5.0), check_interrupt=lambda: seen.append(ft.now))
    assert max(b - a for a, b in zip(seen, seen[1:])) <= 1.0 + 1e-9


def test_spend_limit_refuses_before_anything_is_sent(server, provider, ft, tmp_path):
    image = tmp_path / "in.png"
    image.write_bytes(b"png")
    prep = Prepared("fake", "fake/i2v", {"prompt": "p"}, uploads={"image_url": image},
                    cost=CostEstimate(0.40, "1280x720x121 = 112 MP x $0.0018"))
    with pytest.raises(HostedError, match=r"estimated cost \$0.40 .* over the spend limit \$0.25; nothing was sent"):
        run(provider, ft, tmp_path / "v.mp4", prep, max_cost_usd=0.25)
    assert server.count() == 0
    unknown = prepared(cost=0.0)
    unknown = Prepared(unknown.provider, unknown.endpoint, unknown.payload,
                       cost=CostEstimate(0.0, "unknown: fake publishes no price for x"))
    with pytest.raises(HostedError, match="price is unknown"):
        run(provider, ft, tmp_path / "v.mp4", unknown, max_cost_usd=5.0)
    assert server.count() == 0


def test_unknown_price_runs_without_a_limit_and_says_so(server, provider, ft, tmp_path):
    states(server, DONE)
    prep = Prepared("fake", "fake/x", {"prompt": "p"}, cost=CostEstimate(0.0, "unknown: no price"))
    texts = []
    run(provider, ft, tmp_path / "v.mp4", prep, on_status=texts.append)
    assert any("price unknown" in t for t in texts)


def test_identical_request_reuses_the_stored_file_without_any_request(server, provider, ft, tmp_path):
    states(server, DONE)
    store = ResultStore(tmp_path / "store")
    first = run(provider, ft, tmp_path / "a.mp4", store=store)
    before = server.count()
    texts = []
    again = run(provider, ft, tmp_path / "b.mp4", store=store, on_status=texts.append)
    assert again.reused and again.path == first.path and server.count() == before
    assert again.job.job_id == "j1" and again.result.seed == 7 and "nothing was sent" in again.notes[0]
    assert again.cost.usd == 0.0 and "nothing billed" in again.cost.formula
    assert not (tmp_path / "b.mp4").exists()
    # reuse=False, another seed, or a changed file: a new job
    latest = run(provider, ft, tmp_path / "c.mp4", store=store, reuse=False)  # now the stored file
    run(provider, ft, tmp_path / "d.mp4", prepared(seed=4), store=store)
    assert server.count("POST", "/submit") == 3
    # the stored file overwritten: its job, still on record, is fetched again rather than paid for again
    latest.path.write_bytes(b"overwritten by another run")
    third = run(provider, ft, tmp_path / "e.mp4", store=store)
    assert not third.reused and third.resumed and server.count("POST", "/submit") == 3
    assert third.path.read_bytes() == VIDEO


def test_a_negative_seed_is_a_new_request_every_time(server, provider, ft, tmp_path):
    states(server, DONE)
    store = ResultStore(tmp_path / "store")
    for name in ("a", "b"):
        outcome = run(provider, ft, tmp_path / f"{name}.mp4", dataclasses.replace(prepared(seed=-1), seed=-1),
                      store=store)
        assert not outcome.reused and not outcome.resumed
    assert server.count("POST", "/submit") == 2


def test_uploads_fill_the_payload_and_count_in_the_fingerprint(server, provider, ft, tmp_path):
    states(server, DONE)
    server.route("POST", "/upload", Reply(json={"url": "https://cdn.example/in.png"}))
    image = tmp_path / "in.png"
    image.write_bytes(b"first image")
    prep = Prepared("fake", "fake/i2v", {"prompt": "p"}, uploads={"image_url": image}, cost=CostEstimate(0.1, "f"))
    store = ResultStore(tmp_path / "store")
    run(provider, ft, tmp_path / "a.mp4", prep, store=store)
    submit = [s for s in server.log if s.path == "/submit"][0]
    assert submit.json() == {"prompt": "p", "image_url": "https://cdn.example/in.png"}
    assert server.log[0].path == "/upload" and server.log[0].body == b"first image"
    fp = fingerprint("fake", "fake/i2v", {"prompt": "p"}, {"image_url": image})
    assert store.lookup(fp) == (tmp_path / "a.mp4").resolve()
    image.write_bytes(b"another image")
    assert store.lookup(fingerprint("fake", "fake/i2v", {"prompt": "p"}, {"image_url": image})) is None


def interrupt_after(n):
    calls = []

    def check():
        calls.append(1)
        if len(calls) >= n:
            raise Interrupted("interrupted")

    return check


def test_interrupt_cancels_at_the_provider_and_reraises_the_same_exception(server, provider, ft, tmp_path):
    states(server, *[RUNNING] * 50)
    texts = []
    with pytest.raises(Interrupted) as err:
        run(provider, ft, tmp_path / "v.mp4", on_status=texts.append, check_interrupt=interrupt_after(4))
    assert server.count("PUT", "/jobs/j1/cancel") == 1 and server.count("POST", "/submit") == 1
    assert "job j1 was cancelled at the provider" in texts[-1]
    assert any("cancelled at the provider" in note for note in err.value.__notes__)
    assert list((tmp_path).iterdir()) == []


def test_interrupt_without_cancel_says_the_job_still_bills(server, provider, ft, tmp_path):
    provider.can_cancel = False
    states(server, *[RUNNING] * 50)
    texts = []
    with pytest.raises(Interrupted):
        run(provider, ft, tmp_path / "v.mp4", on_status=texts.append, check_interrupt=interrupt_after(3))
    assert server.count("PUT", "/jobs/j1/cancel") == 0
    assert "fake has no cancel, so job j1 will still run and bill" in texts[-1] and "job id j1" in texts[-1]


def test_a_failing_cancel_is_reported_and_the_interrupt_still_raised(server, provider, ft, tmp_path):
    server.route("PUT", "/jobs/j1/cancel", Reply(500, json={"detail": "cancel broke"}))
    states(server, *[RUNNING] * 50)
    texts = []
    with pytest.raises(Interrupted):
        run(provider, ft, tmp_path / "v.mp4", on_status=texts.append, check_interrupt=interrupt_after(3))
    assert "could not be cancelled (cancelling failed:" in texts[-1] and "cancel broke" in texts[-1]


def test_interrupt_while_uploading_sends_nothing_to_cancel(server, provider, ft, tmp_path):
    image = tmp_path / "in.png"
    image.write_bytes(b"x")
    prep = Prepared("fake", "fake/i2v", {"prompt": "p"}, uploads={"image_url": image}, cost=CostEstimate(0.1, "f"))
    with pytest.raises(Interrupted):
        run(provider, ft, tmp_path / "v.mp4", prep, check_interrupt=interrupt_after(1))
    assert server.count() == 0


def test_interrupt_while_downloading_says_the_job_finished(server, provider, ft, tmp_path):
    states(server, DONE)
    provider.http.chunk_size = 1024
    calls = []

    def check():
        calls.append(1)
        if len(calls) > 3:  # past the polls: inside the download loop
            raise Interrupted

    texts = []
    with pytest.raises(Interrupted):
        run(provider, ft, tmp_path / "v.mp4", on_status=texts.append, check_interrupt=check)
    assert server.count("PUT", "/jobs/j1/cancel") == 0
    assert "has finished and was billed" in texts[-1]
    assert list(tmp_path.iterdir()) == []


def test_deadline_names_the_job_and_how_to_resume(server, provider, ft, tmp_path):
    provider.can_cancel = False
    states(server, *[queued(2)] * 100)
    store = ResultStore(tmp_path / "store")
    start = ft.now
    with pytest.raises(HostedError, match=r"job j1 did not finish within 20 s \(last state: in queue \(position 2\)\)"
                       ".*Resume Job node.*job id j1") as err:
        run(provider, ft, tmp_path / "v.mp4", deadline_s=20, store=store)
    assert ft.now - start <= 20 + 1e-9 and "billing" in str(err.value)
    assert server.count("POST", "/submit") == 1
    assert [job.job_id for job in store.pending()] == ["j1"]  # recorded at submit: resumable
    assert server.count("PUT", "/jobs/j1/cancel") == 0


def test_deadline_cancels_where_the_provider_can(server, provider, ft, tmp_path):
    states(server, *[RUNNING] * 100)
    store = ResultStore(tmp_path / "store")
    texts = []
    with pytest.raises(HostedError, match=r"job j1 did not finish within 20 s \(last state: running\), so it was "
                       "cancelled at fake"):
        run(provider, ft, tmp_path / "v.mp4", deadline_s=20, store=store, on_status=texts.append)
    assert server.count("PUT", "/jobs/j1/cancel") == 1 and server.count("POST", "/submit") == 1
    assert store.pending() == []  # cancelled: the identical request queued again is a new one
    assert list(tmp_path.glob("*.mp4")) == []


def test_failed_and_provider_cancelled_jobs(server, provider, ft, tmp_path):
    states(server, RUNNING, Reply(json={"state": "failed", "message": "flagged by content moderation"}))
    with pytest.raises(HostedError, match="job j1 failed: flagged by content moderation"):
        run(provider, ft, tmp_path / "v.mp4")
    states(server, Reply(json={"state": "cancelled"}))
    with pytest.raises(HostedError, match="job j1 was cancelled by the provider"):
        run(provider, ft, tmp_path / "v.mp4")
    assert server.count("POST", "/submit") == 2 and not (tmp_path / "v.mp4").exists()


def test_errors_after_submit_carry_the_job_id(server, provider, ft, tmp_path):
    states(server, Reply(503, json={"detail": "ingress"}))
    with pytest.raises(HostedError, match="after 3 attempts: HTTP 503.*submitted and may still run.*job id j1"):
        run(provider, ft, tmp_path / "v.mp4")
    assert server.count("POST", "/submit") == 1
    states(server, DONE)
    server.route("GET", "/v.mp4", Reply(404, json={"detail": "gone"}))
    with pytest.raises(HostedError, match="has expired.*may have expired at the provider"):
        run(provider, ft, tmp_path / "v.mp4")


def test_status_texts_never_show_the_key(server, provider, ft, tmp_path, monkeypatch):
    monkeypatch.setenv("FAL_KEY", KEY)
    states(server, Reply(json={"state": "running", "message": f"auth {KEY} ok"}), DONE)
    texts = []
    run(provider, ft, tmp_path / "v.mp4", on_status=texts.append)
    assert any("auth *** ok" in t for t in texts) and not any(KEY in t for t in texts)


def test_adjustments_become_notes(server, provider, ft, tmp_path):
    states(server, DONE)
    server.route("GET", "/jobs/j1/result", Reply(json={"video_url": server.url("/v.mp4"),
                                                       "adjustments": {"duration": [12, 10]}}))
    outcome = run(provider, ft, tmp_path / "v.mp4")
    assert outcome.notes == ('fake adjusted the request: {"duration": [12, 10]}',)


def test_resume_fetches_without_submitting_and_fills_the_store(server, provider, ft, tmp_path):
    provider.can_cancel = False
    states(server, *[RUNNING] * 30)
    store = ResultStore(tmp_path / "store")
    with pytest.raises(HostedError, match="did not finish"):
        run(provider, ft, tmp_path / "v.mp4", deadline_s=5, store=store)
    (job,) = store.pending()
    states(server, RUNNING, DONE)
    texts = []
    outcome = resume_job(provider, JobRef("fake", job.endpoint, job.job_id), tmp_path / "r.mp4", store=store,
                         on_status=texts.append, sleep=ft.sleep, clock=ft)
    assert outcome.path.read_bytes() == VIDEO and outcome.cost is None and not outcome.reused
    assert server.count("POST", "/submit") == 1 and texts[0] == "fake: resuming · 0 s · fake/text-to-video job j1"
    assert store.pending() == []
    again = run(provider, ft, tmp_path / "x.mp4", store=store)
    assert again.reused and again.path == outcome.path.resolve()


def test_store_survives_a_damaged_index_and_writes_atomically(tmp_path):
    store = ResultStore(tmp_path)
    store.remember_job("fp", JobRef("fake", "e", "j9"))
    assert store.job("fp") == JobRef("fake", "e", "j9") and store.find("fake", "j9") == "fp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]
    (tmp_path / "index.json").write_text("{not json")
    assert store.lookup("fp") is None and store.pending() == []
    assert any(p.name.startswith("index.json.damaged-") for p in tmp_path.iterdir())
    video = tmp_path / "v.mp4"
    video.write_bytes(b"v")
    store.remember_result("fp2", video)
    assert store.lookup("fp2") == video.resolve()
    video.unlink()
    assert store.lookup("fp2") is None


def test_fingerprint_is_stable_and_order_independent(tmp_path):
    a = fingerprint("fal", "e", {"b": 1, "a": {"y": 2, "x": Path("p")}})
    b = fingerprint("fal", "e", {"a": {"x": Path("p"), "y": 2}, "b": 1})
    assert a == b and a != fingerprint("wavespeed", "e", {"b": 1, "a": {"y": 2, "x": Path("p")}})


# --------------------------------------------------------------- the vibedream, ByteCompute and LTX clients and fakes

FAILED_JOBS = [(VIBEDREAM, "fail", "flagged by content moderation"), (BYTECOMPUTE, "fail", "GPU worker crashed"),
               (LTX, "fail", "Generation failed"), (LTX, "filtered", "content_filtered_error")]
BURSTS = ("poll-503", "poll-429", "drop-poll", "download-503", "drop-download", "slow-queue")
COMMON_FAILURES = {
    "malformed": "malformed JSON",
    "never": "did not finish within 60 s",
    "oversized": "over the 1,048,576-byte limit",
    "slow-download": "stalled",
    "wrong-type": "text/html",
    "redirect-file": "only http and https",
    "redirect-private": "private address",
    "expired": "expired",
}
SUBMIT_FAILURES = {"submit-500": "HTTP 500", "drop-submit": "was not resent"}
FAILURES = [  # (provider, {scenario: what the error says})
    (VIBEDREAM, {**COMMON_FAILURES, **SUBMIT_FAILURES}),
    (BYTECOMPUTE, {**COMMON_FAILURES, **SUBMIT_FAILURES, "expired": "HTTP 404"}),  # a lapsed job's download: 404
    (LTX, COMMON_FAILURES),  # its submit failures are checked with the request id they quote, in test_ltx_api.py
]


def each(rows):
    """pytest params named provider-scenario."""
    return [pytest.param(case, scenario, *rest, id=f"{case.name}-{scenario}") for case, scenario, *rest in rows]


@pytest.mark.parametrize("case, scenario, message", each(FAILED_JOBS))
def test_a_failed_job_says_why_and_downloads_nothing(case, scenario, message, tmp_path):
    with case.serve() as fake:
        client = case.connect(fake)
        prompt = f"{case.fields['prompt']} [{fake.tag}:{scenario}]"
        with pytest.raises(HostedError, match=message) as failed:
            harness.run(client, client.prepare(case.request(prompt=prompt)), tmp_path / "out.mp4")
        assert len(fake.submits()) == 1 and fake.downloads() == []
        harness.assert_no_key_leak(fake, str(failed.value))
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("case, scenario", each([(case, burst) for case in CASES for burst in BURSTS]
                                                + [(LTX, "poll-529")]))
def test_bursts_are_retried_and_submit_is_sent_once(case, scenario, tmp_path):
    with case.serve() as fake:
        fake.scenario = scenario
        client = case.connect(fake)
        outcome = harness.run(client, client.prepare(case.request()), tmp_path / "out.mp4")
        assert probe_video(outcome.path)["frames"] == 9
        assert len(fake.submits()) == 1


@pytest.mark.parametrize("case, scenario, message", each(
    (case, scenario, message) for case, failures in FAILURES for scenario, message in failures.items()))
def test_failure_modes_end_in_a_clear_error(case, scenario, message, tmp_path):
    dest = tmp_path / "out" / "video.mp4"
    with case.serve() as fake:
        fake.scenario = scenario
        client = case.connect(fake, max_download_bytes=2**20)
        with pytest.raises(HostedError, match=message) as failed:
            harness.run(client, client.prepare(case.request()), dest)
        assert len(fake.submits()) == 1
        harness.assert_no_key_leak(fake, str(failed.value))
    assert not dest.exists() and not any(dest.parent.glob(".*.part"))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_interrupt_stops_polling_and_says_the_job_still_bills(case, tmp_path):
    with case.serve() as fake:
        fake.scenario = "never"
        client = case.connect(fake)

        def check_interrupt():
            if len(fake.polls()) >= 2:
                raise Interrupted()

        statuses = []
        with pytest.raises(Interrupted) as stopped:
            harness.run(client, client.prepare(case.request()), tmp_path / "out.mp4", check_interrupt=check_interrupt,
                        on_status=statuses.append)
        note = " ".join(getattr(stopped.value, "__notes__", [])) or statuses[-1]
        assert f"{case.name} has no cancel" in note and "will still run and bill" in note and "job id" in note
        assert len(fake.submits()) == 1
        harness.assert_no_key_leak(fake, note, *statuses)
