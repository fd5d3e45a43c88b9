"""A local stand-in for vibedream's API (spec hosted-apis.md §5, §10.4), on 127.0.0.1 only, plus the plumbing the
ByteCompute and LTX fakes share (`FakeApi`: server thread, request log, scenarios, misbehaving result files).

vibedream: submit `POST /api/v1/models/ltx-2-19b/generate` answering camelCase `id`, `status: "processing"`,
`statusUrl`, `estimatedTime`, `costCents`, `createdAt`; poll `GET /api/v1/predictions/{id}` going `processing`
(`outputs: null`) → `completed` (`outputs` = one mp4 URL on an "assets" path, `completedAt`) | `failed` (the
content-moderation message). The image must be a public http(s) URL, the seed -1..999999, the resolution
480p/720p/1080p, the duration 5..20; unknown fields are refused (stricter than vibedream is known to be, so a
wrong field name fails here). Error bodies and 401 wording are [UNK]: `{"error": "..."}` is assumed.

Failure modes are chosen per job by a prompt keyword `[vd:<scenario>]`, the submit header `X-Fake-Scenario`, or
`fake.scenario` (the default for jobs without either); see SCENARIOS and COMMON_SCENARIOS.
"""

from __future__ import annotations

import functools
import json
import math
import re
import socket
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

# Scenarios every fake here understands (the job-level ones are run by each fake's own status machine).
COMMON_SCENARIOS = {
    "ok": "queued/running for a few polls, then completed with a real tiny mp4",
    "slow-queue": "stays queued for `slow_queue_polls` polls",
    "fail": "ends failed with the provider's failure message",
    "never": "stays running forever",
    "poll-503": "the first `burst` polls answer 503 (gateway text) with Retry-After: 0",
    "poll-429": "the first `burst` polls answer 429 with Retry-After: 0",
    "drop-poll": "the first `burst` polls drop the connection without an answer",
    "malformed": "every poll answers HTTP 200 with truncated JSON",
    "submit-500": "the submit answers 500 and creates nothing",
    "drop-submit": "the submit creates the job (it bills), then drops the connection",
    "download-503": "the first `burst` downloads answer 503 with Retry-After: 0, then the video",
    "drop-download": "the first download sends half the bytes and drops the connection, then the video",
    "oversized": "the video claims 64 MiB (Content-Length) and streams zeros",
    "slow-download": "the video sends 1 KiB, then stalls",
    "wrong-type": "the video is served as text/html",
    "redirect-file": "the video URL redirects to file:///etc/passwd",
    "redirect-private": "the video URL redirects to http://10.0.0.7/ (a private address)",
    "expired": "the video URL answers 403 'Request has expired' (a lapsed signed URL)",
}
BURSTS = ("poll-503", "poll-429", "drop-poll")


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


class FakeApi:
    """A provider fake as a context manager (`with Fake(key) as fake: fake.url ...`): a ThreadingHTTPServer on
    127.0.0.1 (port 0) in a daemon thread, every request recorded, scenarios per job. Subclasses give `tag` (the
    prompt keyword prefix), `SCENARIOS`, `routes()` and their protocol."""

    tag = ""
    SCENARIOS: dict[str, str] = COMMON_SCENARIOS

    def __init__(self, key: str = "test-key-0123456789"):
        self.key = key
        self.settings = Settings()
        self.scenario = "ok"
        self.requests: list[Recorded] = []
        self.jobs: dict[str, Job] = {}
        self.errors: list[str] = []  # exceptions inside the fake itself; tests assert it stays empty
        self.video = clip_bytes()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- test helpers ------------------------------------------------------------------------------------------

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        """Recorded requests whose path matches the regular expression (whole path)."""
        with self.lock:
            return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    # -- used by subclasses ------------------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str, object]]:
        """(method, path regex, handler(h, rec, *groups)) in match order."""
        raise NotImplementedError

    def response_headers(self) -> dict:
        """Headers on every answer (the LTX API adds x-request-id)."""
        return {}

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
        job = Job(job_id or str(uuid.uuid4()), endpoint, body, scenario, time.monotonic(), iso_now())
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

    def phase(self, job: Job) -> str:
        """Advance one poll: "queued", "running" or "done" by poll count and scenario."""
        job.polls += 1
        s = self.settings
        queue = s.slow_queue_polls if job.scenario == "slow-queue" else s.queue_polls
        if job.polls <= queue:
            return "queued"
        if job.scenario == "never" or job.polls <= queue + s.run_polls:
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
        elif job.scenario == "malformed":
            h.send(200, b'{"id": "' + job.id.encode() + b'", "status": "proc', "application/json")
        else:
            return False
        return True

    def serve_video(self, h: Handler, job: Job | None, video: bytes | None = None) -> None:
        """The result file, misbehaving as the job's scenario says (an unknown or expired job: 403 expired)."""
        video = video if video is not None else self.video
        scenario = job.scenario if job else "expired"
        redirects = {"redirect-file": "file:///etc/passwd", "redirect-private": "http://10.0.0.7/out.mp4"}
        first = burst = False
        if job is not None:
            with self.lock:
                job.downloads += 1
                first = job.downloads == 1
                burst = scenario == "download-503" and job.downloads <= self.settings.burst
        if scenario in redirects:
            h.send(302, b"", "text/plain", {"Location": redirects[scenario]})
        elif scenario == "expired":
            body = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>" \
                   b"<Message>Request has expired</Message></Error>"
            h.send(403, body, "application/xml")
        elif scenario == "wrong-type":
            h.send(200, b"<html><body>Sign in to continue</body></html>", "text/html; charset=utf-8")
        elif scenario == "oversized":
            h.stream_zeros(64 * 2**20)
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    fake: FakeApi

    def handle_error(self, request, client_address):  # a client hanging up mid-answer is part of the tests
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls

    def log_message(self, format, *args):  # quiet: the test output stays readable
        pass

    def send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.server.fake.response_headers(), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, payload, headers: dict | None = None) -> None:
        self.send(status, json.dumps(payload).encode(), "application/json", headers)

    def drop(self) -> None:
        """Close the socket without (the rest of) an answer: a dropped connection."""
        self.close_connection = True
        self.connection.close()

    def stream_zeros(self, length: int) -> None:
        """Stream `length` zero bytes as video/mp4 until done or the client leaves."""
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        chunk = bytes(64 * 1024)
        try:
            for _ in range(length // len(chunk)):
                if self.server.fake.stopping.is_set():
                    break
                self.wfile.write(chunk)
        except OSError:
            pass
        self.drop()

    def authorized(self, deny: dict) -> bool:
        """True for `Authorization: Bearer <key>`; otherwise answer 401 with the provider's `deny` body."""
        if self.headers.get("Authorization") == f"Bearer {self.server.fake.key}":
            return True
        self.send_json(401, deny)
        return False

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def _dispatch(self) -> None:
        """Record and route one request; a bug in the fake answers 500 and lands in `fake.errors`."""
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        try:
            parsed = json.loads(body) if body and "json" in self.headers.get("Content-Type", "") else None
        except ValueError:
            parsed = None
        rec = Recorded(self.command, parts.path, parts.query, dict(self.headers.items()), body, parsed)
        with fake.lock:
            fake.requests.append(rec)
        try:
            for method, pattern, handler in fake.routes():
                match = re.fullmatch(pattern, rec.path)
                if method == rec.method and match:
                    handler(self, rec, *match.groups())
                    return
            self.send_json(404, {"error": f"Not found: {rec.method} {rec.path}"})
        except Exception as exc:
            fake.errors.append(repr(exc))
            self.send_json(500, {"error": f"fake server bug: {exc!r}"})


# ---------------------------------------------------------------------------------------------------- vibedream

RESOLUTIONS = {"480p": 0.75, "720p": 1.0, "1080p": 1.5}  # WaveSpeed's multipliers, which vibedream resells [INF]
FIELDS = {"image", "prompt", "resolution", "duration", "seed"}


class VibedreamServer(FakeApi):
    tag = "vd"
    SCENARIOS = {**COMMON_SCENARIOS, "fail": "ends failed with vibedream's content-moderation message"}

    def routes(self):
        return [
            ("POST", r"/api/v1/models/([\w.-]+)/generate", self._submit),
            ("GET", r"/api/v1/predictions/([\w-]+)", self._poll),
            ("GET", r"/assets/outputs/([\w-]+)/(\d+)-0\.mp4", self._asset),
        ]

    def submits(self) -> list[Recorded]:
        return self.calls("POST", r"/api/v1/models/.+/generate")

    def _submit(self, h: Handler, rec: Recorded, model: str) -> None:
        if not h.authorized({"error": "Invalid API key"}):
            return
        if model != "ltx-2-19b":
            h.send_json(404, {"error": f"Model {model} not found"})
            return
        body = rec.json
        problem = _problem(body)
        if problem:
            h.send_json(400, {"error": problem})
            return
        scenario = self.pick_scenario(h, body["prompt"])
        if scenario is None:
            return
        if scenario == "submit-500":
            h.send_json(500, {"error": "Internal server error"})
            return
        job = self.new_job(model, body, scenario)
        resolution, duration = body.get("resolution", "720p"), body.get("duration", 5)
        job.extra["costCents"] = math.ceil(round(12 * RESOLUTIONS[resolution] * duration / 5, 6))
        if scenario == "drop-submit":
            h.drop()
            return
        h.send_json(200, {"id": job.id, "status": "processing", "statusUrl": f"{self.url}/api/v1/predictions/{job.id}",
                          "estimatedTime": "5-20s", "costCents": job.extra["costCents"],
                          "createdAt": job.created_at})

    def _poll(self, h: Handler, rec: Recorded, job_id: str) -> None:
        if not h.authorized({"error": "Invalid API key"}):
            return
        job = self.find_job(job_id)
        if job is None:
            h.send_json(404, {"error": "Prediction not found"})
            return
        if self.poll_misbehaves(h, job, {"error": "Too many requests"}):
            return
        phase = self.phase(job)
        data = {"id": job.id, "modelId": "ltx-2-19b", "modelName": "LTX-2 19B", "status": "processing",
                "outputs": None, "error": None, "createdAt": job.created_at, "completedAt": None}
        if phase == "done" and job.scenario == "fail":
            data.update(status="failed", completedAt=iso_now(),
                        error="Your request was flagged by content moderation. Please modify your prompt.")
        elif phase == "done":
            millis = int(time.time() * 1000)
            data.update(status="completed", completedAt=iso_now(),
                        outputs=[f"{self.url}/assets/outputs/{job.id}/{millis}-0.mp4"])
        h.send_json(200, data)

    def _asset(self, h: Handler, rec: Recorded, job_id: str, _millis: str) -> None:
        self.serve_video(h, self.find_job(job_id))


def _problem(body) -> str | None:
    """The first problem with a submit body, as vibedream-style 400 text [UNK wording]; None when valid."""
    if not isinstance(body, dict):
        return "Request body must be JSON"
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return f"Unknown field(s): {', '.join(unknown)}"
    for name in ("image", "prompt"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            return f"{name} is required"
    if not re.match(r"https?://", body["image"]):
        return "image must be a public URL"
    if "resolution" in body and body["resolution"] not in RESOLUTIONS:
        return f"resolution must be one of {', '.join(RESOLUTIONS)}"
    duration = body.get("duration", 5)
    if not isinstance(duration, (int, float)) or duration != int(duration) or not 5 <= duration <= 20:
        return "duration must be a whole number from 5 to 20"
    seed = body.get("seed", -1)
    if type(seed) is not int or not -1 <= seed <= 999999:
        return "seed must be an integer from -1 to 999999"
    return None
