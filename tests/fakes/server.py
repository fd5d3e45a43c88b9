"""The plumbing every fake here shares, so each fake file holds only its provider's protocol.

`LocalServer`: a threaded HTTP server on 127.0.0.1 (a free port) for the length of a `with` block, answering through
one quiet `Handler`. `FakeApi`, the base of the provider fakes: every request recorded, a route table, jobs that each
follow a scenario (a prompt keyword `[<tag>:<scenario>]`, the submit header `X-Fake-Scenario`, or `fake.scenario`),
the queued/running/done machine, misbehaving submits, polls and result files (COMMON_SCENARIOS).
"""

from __future__ import annotations

import functools
import json
import re
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from ltx2_anywhere.pipelines.media import write_video

# Scenarios every provider fake understands (the job-level ones are run by each fake's own status machine).
COMMON_SCENARIOS = {
    "ok": "queued/running for a few polls, then completed with a real tiny mp4",
    "slow-queue": "stays queued for `slow_queue_polls` polls",
    "fail": "ends failed with the provider's failure message",
    "never": "stays running forever",
    "poll-503": "the first `burst` polls answer 503 (gateway text) with Retry-After: 0",
    "poll-429": "the first `burst` polls answer 429 with Retry-After: 0",
    "drop-poll": "the first `burst` polls drop the connection without an answer",
    "malformed": "every poll answers HTTP 200 with truncated JSON",
    "malformed-once": "the first poll answers HTTP 200 with truncated JSON (one corrupted body), then as ok",
    "submit-500": "the submit answers 500 and creates nothing",
    "drop-submit": "the submit creates the job (it bills), then drops the connection",
    "hold-submit": "the submit creates the job (it bills), holds its answer `hold_s` seconds, then drops the "
                   "connection: a client killed in that window never learns the job id",
    "download-503": "the first `burst` downloads answer 503 with Retry-After: 0, then the video",
    "drop-download": "the first download sends half the bytes and drops the connection, then the video",
    "oversized": "the video claims 16 GiB (Content-Length) and streams zeros",
    "endless": "the video has no Content-Length and streams zeros until the client hangs up (larger than declared "
               "or than anything the request can make)",
    "slow-download": "the video sends 1 KiB, then stalls",
    "wrong-type": "the video is served as text/html",
    "redirect-file": "the video URL redirects to file:///etc/passwd",
    "redirect-private": "the video URL redirects to http://10.0.0.7/ (a private address)",
    "expired": "the video URL answers 403 'Request has expired' (a lapsed signed URL)",
}
BURSTS = ("poll-503", "poll-429", "drop-poll")
REDIRECTS = {"redirect-file": "file:///etc/passwd", "redirect-private": "http://10.0.0.7/out.mp4",
             "redirect-metadata": "http://169.254.169.254/latest/meta-data/"}


@dataclass
class Recorded:
    method: str
    path: str  # without the query
    query: str
    headers: dict
    body: bytes
    json: object = None


@dataclass
class Job:
    id: str
    endpoint: str
    input: dict
    scenario: str
    created: float  # time.monotonic() at submit, for retention
    created_at: str  # ISO 8601, as providers show it
    polls: int = 0
    burst_left: int = 0
    downloads: int = 0
    extra: dict = field(default_factory=dict)  # per-fake facts (cost, adjustments, ...)


@dataclass
class Settings:
    """Server-wide switches; tests change them between calls."""

    queue_polls: int = 1  # polls answered "queued" (or 409 on ByteCompute)
    run_polls: int = 1  # then polls answered "running"
    slow_queue_polls: int = 6
    burst: int = 3  # failing polls/downloads for the burst scenarios
    stall_s: float = 30.0  # how long slow-download stalls (ends early when the server stops)
    hold_s: float = 30.0  # how long hold-submit holds the answer (ends early when the server stops)
    retention_s: float = 24 * 3600.0  # jobs and result URLs older than this answer 404 (providers keep 24 h)


def iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sample_clip(width: int = 96, height: int = 64, fps: int = 24, frames: int = 9):
    """A moving gradient with a 440 Hz tone: frames, fps, audio, for a real tiny audio+video mp4."""
    video = np.zeros((frames, height, width, 3), dtype=np.uint8)
    video[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, None, :]
    video[..., 1] = (np.arange(frames) * 28 % 256)[:, None, None]
    t = np.arange(int(24000 * frames / fps)) / 24000
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return video, fps, np.stack([tone, tone])


@functools.lru_cache(maxsize=8)
def clip_bytes(width: int = 96, height: int = 64, fps: int = 24) -> bytes:
    """The sample clip as mp4 bytes, encoded once per size and rate for the whole test session."""
    with tempfile.TemporaryDirectory() as folder:
        return write_video(Path(folder) / "clip.mp4", *sample_clip(width, height, fps), sample_rate=24000).read_bytes()


@functools.lru_cache(maxsize=8)
def clip_for_audio(audio: bytes, suffix: str = ".wav", fps: int = 25, width: int = 96, height: int = 64) -> bytes:
    """What an audio-to-video endpoint answers: a moving gradient as long as the given audio (whole frames, at
    least 9), with that audio as its sound track, as mp4 bytes."""
    from ltx2_anywhere.pipelines.media import read_audio

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"audio{suffix}"
        source.write_bytes(audio)
        waveform, rate = read_audio(source)
        count = max(9, round(waveform.shape[-1] / rate * fps))
        video = np.zeros((count, height, width, 3), dtype=np.uint8)
        video[..., 2] = np.linspace(0, 255, width, dtype=np.uint8)[None, None, :]
        video[..., 1] = (np.arange(count) * 9 % 256)[:, None, None]
        return write_video(Path(folder) / "clip.mp4", video, fps, audio=waveform.numpy(), sample_rate=rate).read_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up the end of a `with` block
    fake: LocalServer

    def handle_error(self, request, client_address):
        """Clients hanging up mid-answer is what many tests do on purpose: not worth a traceback."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """One connection to a LocalServer: the server's `serve` answers every request, with the helpers below."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall per call
    server: _Server

    def log_message(self, format, *args):  # quiet: the test output stays readable
        pass

    def do_GET(self):
        self.server.fake.serve(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def read_body(self) -> bytes:
        size = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(size) if size else b""

    def send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.server.fake.response_headers(), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_body(self, status: int, body: bytes, content_type: str, *, length: bool) -> None:
        """Send `body` with a Content-Length, or without one (the end of the connection ends it)."""
        if length:
            self.send(status, body, content_type)
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass
        self.drop()

    def send_json(self, status: int, payload, headers: dict | None = None) -> None:
        self.send(status, json.dumps(payload).encode(), "application/json", headers)

    def drop(self) -> None:
        """Close the socket without (the rest of) an answer: a dropped connection."""
        self.close_connection = True
        self.connection.close()

    def stream_zeros(self, length: int | None, total: int) -> None:
        """Stream `total` zero bytes as video/mp4 declaring `length` (None: no Content-Length, the end of the
        connection ends the body) until done or the client leaves."""
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        if length is None:
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        chunk = bytes(64 * 1024)
        try:
            for _ in range(total // len(chunk)):
                if self.server.fake.stopping.is_set():
                    break
                self.wfile.write(chunk)
        except OSError:
            pass
        self.drop()

    def authorized(self, deny: dict) -> bool:
        """True for `Authorization: <scheme> <key>`; otherwise answer 401 with the provider's `deny` body."""
        fake = self.server.fake
        if self.headers.get("Authorization") == f"{fake.auth_scheme} {fake.key}":
            return True
        self.send_json(401, deny)
        return False


class LocalServer:
    """An HTTP server on 127.0.0.1 (port 0) in a daemon thread while in a `with` block; `serve(h)` answers each
    request. `stopping` is set on the way out, so stalls and slow answers end early."""

    def __init__(self):
        self.stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve(self, h: Handler) -> None:
        raise NotImplementedError

    def response_headers(self) -> dict:
        """Headers on every answer sent through `Handler.send`."""
        return {}


class FakeApi(LocalServer):
    """A provider fake (`with Fake(key) as fake: fake.url ...`). Subclasses give `tag` (the prompt keyword prefix),
    `SCENARIOS`, `routes()`, where their submits, polls and result downloads go, and their protocol."""

    tag = ""
    SCENARIOS: dict[str, str] = COMMON_SCENARIOS
    auth_scheme = "Bearer"
    job_type: type[Job] = Job
    # (method, path regex) of each kind of call, for submits(), polls() and downloads()
    SUBMIT: tuple[str, str]
    POLL: tuple[str, str]
    DOWNLOAD: tuple[str, str]

    def __init__(self, key: str = "test-key-0123456789"):
        super().__init__()
        self.key = key
        self.settings = Settings()
        self.scenario = "ok"  # for jobs whose submit names none
        self.requests: list[Recorded] = []
        self.jobs: dict[str, Job] = {}
        self.errors: list[str] = []  # exceptions inside the fake itself; tests assert it stays empty
        self.video = clip_bytes()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- test helpers ------------------------------------------------------------------------------------------

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        """Recorded requests whose path matches the regular expression (whole path)."""
        with self.lock:
            return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def submits(self) -> list[Recorded]:
        return self.calls(*self.SUBMIT)

    def polls(self) -> list[Recorded]:
        return self.calls(*self.POLL)

    def downloads(self) -> list[Recorded]:
        return self.calls(*self.DOWNLOAD)

    # -- used by subclasses ------------------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str, object]]:
        """(method, path regex, handler(h, rec, *groups)) in match order."""
        raise NotImplementedError

    def not_found(self, h: Handler, rec: Recorded) -> None:
        """The answer to a request no route takes, in the provider's error shape."""
        h.send_json(404, {"error": f"Not found: {rec.method} {rec.path}"})

    def serve(self, h: Handler) -> None:
        """Record and route one request; a bug in the fake answers 500 and lands in `errors`."""
        body = h.read_body()
        parts = urlsplit(h.path)
        try:
            parsed = json.loads(body) if body and "json" in h.headers.get("Content-Type", "") else None
        except ValueError:
            parsed = None
        rec = Recorded(h.command, parts.path, parts.query, dict(h.headers.items()), body, parsed)
        with self.lock:
            self.requests.append(rec)
        try:
            for method, pattern, answer in self.routes():
                match = re.fullmatch(pattern, rec.path)
                if method == rec.method and match:
                    answer(h, rec, *match.groups())
                    return
            self.not_found(h, rec)
        except ConnectionError:  # the client hung up mid-answer
            h.close_connection = True
        except Exception as exc:
            self.errors.append(repr(exc))
            h.send_json(500, {"error": f"fake server bug: {exc!r}"})

    def pick_scenario(self, h: Handler, prompt) -> str | None:
        """The job's scenario (header, then `[tag:name]` in the prompt, then `self.scenario`); None after
        answering 400 for an unknown one."""
        keyword = re.search(rf"\[{self.tag}:([\w-]+)\]", prompt if isinstance(prompt, str) else "")
        scenario = h.headers.get("X-Fake-Scenario") or (keyword.group(1) if keyword else self.scenario)
        if scenario not in self.SCENARIOS:
            h.send_json(400, {"error": f"fake: unknown scenario {scenario!r}"})
            return None
        return scenario

    def new_job(self, endpoint: str, body: dict, scenario: str, job_id: str | None = None) -> Job:
        job = self.job_type(job_id or str(uuid.uuid4()), endpoint, body, scenario, time.monotonic(), iso_now())
        job.burst_left = self.settings.burst
        with self.lock:
            self.jobs[job.id] = job
        return job

    def find_job(self, job_id: str) -> Job | None:
        """The job, or None when unknown or past retention."""
        job = self.jobs.get(job_id)
        if job is None or time.monotonic() - job.created > self.settings.retention_s:
            return None
        return job

    def queue_polls(self, job: Job) -> int:
        """How many polls the job spends queued."""
        return self.settings.slow_queue_polls if job.scenario == "slow-queue" else self.settings.queue_polls

    def phase(self, job: Job) -> str:
        """Advance one poll: "queued", "running" or "done" by poll count and scenario."""
        job.polls += 1
        queue = self.queue_polls(job)
        if job.polls <= queue:
            return "queued"
        if job.scenario == "never" or job.polls <= queue + self.settings.run_polls:
            return "running"
        return "done"

    def poll_misbehaves(self, h: Handler, job: Job, rate_limited: dict) -> bool:
        """Answer a burst or malformed poll for the job's scenario (True when answered). `rate_limited` is the
        provider's 429 body."""
        with self.lock:
            burst = job.scenario in BURSTS and job.burst_left > 0
            if burst:
                job.burst_left -= 1
        if burst and job.scenario == "drop-poll":
            h.drop()
        elif burst and job.scenario == "poll-503":
            h.send(503, b"upstream connect error or disconnect/reset before headers", "text/plain",
                   {"Retry-After": "0"})
        elif burst:
            h.send_json(429, rate_limited, {"Retry-After": "0"})
        elif job.scenario == "malformed" or self.glitch_once(job):
            h.send(200, b'{"id": "' + job.id.encode() + b'", "status": "proc', "application/json")
        else:
            return False
        return True

    def glitch_once(self, job: Job) -> bool:
        """True the first time a malformed-once job asks: that answer is the one corrupted body."""
        with self.lock:
            first = job.scenario == "malformed-once" and not job.extra.get("glitched")
            job.extra["glitched"] = True
        return first

    def withhold_answer(self, h: Handler, job: Job) -> bool:
        """After a billable job was created: drop-submit and hold-submit lose the answer (True), others send it."""
        if job.scenario == "hold-submit":
            self.stopping.wait(self.settings.hold_s)
        if job.scenario in ("drop-submit", "hold-submit"):
            h.drop()
            return True
        return False

    def serve_video(self, h: Handler, job: Job | None, video: bytes | None = None) -> None:
        """The result file, misbehaving as the job's scenario says (an unknown or expired job: 403 expired)."""
        video = video if video is not None else self.video
        scenario = job.scenario if job else "expired"
        first = burst = False
        if job is not None:
            with self.lock:
                job.downloads += 1
                first = job.downloads == 1
                burst = scenario == "download-503" and job.downloads <= self.settings.burst
        if scenario in REDIRECTS:
            h.send(302, b"", "text/plain", {"Location": REDIRECTS[scenario]})
        elif scenario == "expired":
            body = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>" \
                   b"<Message>Request has expired</Message></Error>"
            h.send(403, body, "application/xml")
        elif scenario == "wrong-type":
            h.send(200, b"<html><body>Sign in to continue</body></html>", "text/html; charset=utf-8")
        elif scenario == "oversized":
            h.stream_zeros(16 * 2**30, 16 * 2**30)
        elif scenario == "oversized-chunked":
            h.stream_zeros(None, 4 * 2**20)
        elif scenario == "endless":
            h.stream_zeros(None, 2**40)
        elif scenario.startswith("larger-than-declared"):  # the declared file with 2 MiB of padding after it
            h.send_body(200, video + bytes(2 * 2**20), "video/mp4", length=scenario == "larger-than-declared")
        elif scenario == "slow-download" or (scenario == "drop-download" and first):
            h.send_response(200)
            h.send_header("Content-Type", "video/mp4")
            h.send_header("Content-Length", str(len(video)))
            h.end_headers()
            h.wfile.write(video[:1024] if scenario == "slow-download" else video[: len(video) // 2])
            h.wfile.flush()
            if scenario == "slow-download":
                self.stopping.wait(self.settings.stall_s)
            h.drop()
        elif burst:
            h.send(503, b"Service Unavailable", "text/plain", {"Retry-After": "0"})
        else:
            h.send(200, video, "video/mp4")
