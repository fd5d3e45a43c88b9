"""A local stand-in for fal.ai's queue API and storage (spec hosted-apis.md §3, §10.1, §10.2), on 127.0.0.1 only.

It speaks what `fal-client==1.0.3` and our client send: submit `POST /{owner}/{alias}[/{path}]` answering
`request_id` + `status_url`/`response_url`/`cancel_url` under `/{owner}/{alias}/requests/{id}` (the sub-path
dropped), the status machine IN_QUEUE (a counting-down `queue_position`) → IN_PROGRESS (growing logs) → COMPLETED
(`logs`, `metrics`; a failure is COMPLETED + `error`/`error_type`, never another status string), the result JSON
with `video.url` on a separate "CDN" path serving a real tiny mp4, cancel (202 / 400 ALREADY_COMPLETED / 404),
the CDN token + `/files/upload` upload, multipart, and the storage-initiate fallback. Every request is recorded.

Failure modes are chosen per job by a prompt keyword `[fal:<scenario>]` or the submit header `X-Fake-Scenario`
(see SCENARIOS), so one server drives every test; `settings` holds server-wide switches. Where fal is
undocumented the fake picks a plausible shape and says so ([UNK] below). It is stricter than fal is known to be in
one place on purpose: input fields an endpoint does not document are refused with 422, so a client sending a
wrong field name fails here.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ltx2_anywhere.pipelines.media import write_video

SCENARIOS = {
    "ok": "IN_QUEUE (positions counting down) → IN_PROGRESS → COMPLETED; the result names the mp4",
    "slow-queue": "stays IN_QUEUE for `slow_queue_polls` polls",
    "fail": "COMPLETED + error; the result answers 422 with a pydantic `detail` list and X-Fal-Retryable",
    "fail-5xx": "COMPLETED + error; the result answers 503 `{detail, error_type}` with X-Fal-Error-Type",
    "never": "stays IN_PROGRESS forever",
    "status-503": "the first `burst` status polls answer an ingress 503 (nginx HTML, no x-fal-request-id)",
    "status-429": "the first `burst` status polls answer 429 with Retry-After",
    "drop-status": "the first `burst` status polls drop the connection without an answer",
    "malformed": "status polls answer HTTP 200 with truncated JSON",
    "malformed-result": "the result answers HTTP 200 with truncated JSON",
    "no-video": "the result JSON has no `video`",
    "drop-submit": "the submit creates the job (it bills), then drops the connection",
    "submit-503": "the submit answers an ingress 503 and creates nothing",
    "balance": "the submit answers 403 with an exhausted-balance detail and creates nothing",
    "oversized": "the video claims 64 MiB (Content-Length) and streams zeros",
    "oversized-chunked": "the video has no Content-Length and streams 4 MiB of zeros, then closes",
    "slow-download": "the video sends 1 KiB, then stalls",
    "wrong-type": "the video is served as text/html",
    "redirect-file": "the video URL redirects to file:///etc/passwd",
    "redirect-private": "the video URL redirects to http://10.0.0.7/ (a private address)",
    "redirect-metadata": "the video URL redirects to http://169.254.169.254/ (link-local cloud metadata)",
    "expired": "the video URL answers 404 (the CDN object's lifecycle ended)",
}
BURSTS = ("status-503", "status-429", "drop-status")

# The documented input fields per endpoint (spec §3.7). [INF] the open extend endpoints take the image-to-video
# fields with video_url in place of image_url, as the 22B extend-video/lora page lists.
_OPEN = {"prompt", "num_frames", "video_size", "generate_audio", "use_multiscale", "fps", "guidance_scale",
         "num_inference_steps", "acceleration", "camera_lora", "camera_lora_scale", "negative_prompt", "seed",
         "enable_prompt_expansion", "enable_safety_checker", "video_output_type", "video_quality",
         "video_write_mode", "sync_mode", "interpolation_direction"}
_I2V = _OPEN | {"image_url", "end_image_url", "image_strength", "end_image_strength"}
_EXTEND = _OPEN | {"video_url", "end_image_url", "end_image_strength"}
_PROXY = {"prompt", "duration", "resolution", "aspect_ratio", "fps", "generate_audio"}
ENDPOINTS = {
    "fal-ai/ltx-2-19b/text-to-video": (_OPEN, {"prompt"}),
    "fal-ai/ltx-2-19b/image-to-video": (_I2V, {"prompt", "image_url"}),
    "fal-ai/ltx-2-19b/extend-video": (_EXTEND, {"prompt", "video_url"}),
    "fal-ai/ltx-2.3-22b/text-to-video": (_OPEN, {"prompt"}),
    "fal-ai/ltx-2.3-22b/image-to-video": (_I2V, {"prompt", "image_url"}),
    "fal-ai/ltx-2.3-22b/extend-video": (_EXTEND, {"prompt", "video_url"}),
    "fal-ai/ltx-2.3/text-to-video": (_PROXY, {"prompt"}),
    "fal-ai/ltx-2.3/text-to-video/fast": (_PROXY, {"prompt"}),
    "fal-ai/ltx-2.3/image-to-video": (_PROXY | {"image_url", "end_image_url"}, {"prompt", "image_url"}),
    "fal-ai/ltx-2.3/image-to-video/fast": (_PROXY | {"image_url", "end_image_url"}, {"prompt", "image_url"}),
    "fal-ai/ltx-2.3/extend-video": ({"video_url", "prompt", "duration", "mode", "context"}, {"video_url"}),
}
_RANGES = {"num_frames": (9, 481), "fps": (1, 60), "guidance_scale": (1, 10), "num_inference_steps": (8, 50),
           "camera_lora_scale": (0, 1), "image_strength": (0, 1), "end_image_strength": (0, 1)}
_CHOICES = {
    "acceleration": ("none", "regular", "high", "full"),
    "camera_lora": ("dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down", "static", "none"),
    "video_output_type": ("X264 (.mp4)", "VP9 (.webm)", "PRORES4444 (.mov)", "GIF (.gif)"),
    "video_quality": ("low", "medium", "high", "maximum"),
    "video_write_mode": ("fast", "balanced", "small"),
    "interpolation_direction": ("forward", "backward"),
    "resolution": ("1080p", "1440p", "2160p"),
    "aspect_ratio": ("16:9", "9:16"),
    "mode": ("start", "end"),
}
_PROXY_CHOICES = {"duration": (6, 8, 10), "fps": (24, 25, 48, 50)}
_FAST_DURATIONS = (6, 8, 10, 12, 14, 16, 18, 20)
_URL_FIELDS = ("image_url", "end_image_url", "video_url")


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
    app: str  # owner/alias: where status, result and cancel live
    endpoint: str
    input: dict
    scenario: str
    start_deadline: float | None = None  # X-Fal-Request-Timeout: monotonic time by which it must leave the queue
    polls: int = 0
    burst_left: int = 0
    logs: list = field(default_factory=list)
    outcome: str | None = None  # None while running; "ok", "error", "cancelled" or "timeout" once COMPLETED


@dataclass
class Settings:
    """Server-wide switches; tests change them between calls."""

    queue_polls: int = 3  # polls answered IN_QUEUE (queue_position counts down to 0)
    run_polls: int = 2  # then polls answered IN_PROGRESS
    slow_queue_polls: int = 8
    burst: int = 3  # failing polls for the status-503/status-429/drop-status scenarios
    retry_after: str = "0"  # the Retry-After sent with 429/503 bursts
    cdn_upload_status: int | None = None  # make POST /files/upload answer this HTTP status
    storage_upload_status: int | None = None  # make the storage-initiate fallback answer this HTTP status
    stall_s: float = 30.0  # how long slow-download stalls (ends early when the server stops)


class FalServer:
    """The fake, as a context manager: `with FalServer(tmp_path) as fal: fal.url ...` (the key must be sent as
    `Authorization: Key <key>`)."""

    def __init__(self, workdir: Path, key: str = "fal-test-key:secret"):
        self.key = key
        self.settings = Settings()
        self.requests: list[Recorded] = []
        self.jobs: dict[str, Job] = {}
        self.files: dict[str, bytes] = {}  # uploaded bytes by their access path
        self.tokens: set[str] = set()
        self.errors: list[str] = []  # exceptions inside the fake itself; tests assert it stays empty
        self.video_path = write_video(Path(workdir) / "fal-result.mp4", *_test_clip(), sample_rate=24000)
        self.video = self.video_path.read_bytes()
        self._multipart: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # -------------------------------------------------------------------------------------------- test helpers

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        """Recorded requests whose path matches the regular expression (whole path)."""
        with self._lock:
            return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def submits(self) -> list[Recorded]:
        return [r for r in self.calls("POST", r"/[^/]+/[^/]+(/.+)?") if _route_kind(r.path) == "submit"]

    # ------------------------------------------------------------------------------------------------ protocol

    def _record(self, handler: _Handler, body: bytes) -> Recorded:
        parts = urlsplit(handler.path)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        rec = Recorded(handler.command, parts.path, parts.query, dict(handler.headers.items()), body, parsed)
        with self._lock:
            self.requests.append(rec)
        return rec

    def _urls(self, job: Job) -> dict:
        base = f"{self.url}/{job.app}/requests/{job.id}"
        return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}

    def _advance(self, job: Job, with_logs: bool) -> dict:
        """One status poll (under the lock): the job's state after `polls` polls, by scenario."""
        s = self.settings
        queue = s.slow_queue_polls if job.scenario == "slow-queue" else s.queue_polls
        if job.outcome is None and job.polls < queue and job.start_deadline and time.monotonic() > job.start_deadline:
            job.outcome = "timeout"
        if job.outcome is None:
            job.polls += 1
            if job.polls <= queue:
                return {"status": "IN_QUEUE", "queue_position": queue - job.polls, **self._urls(job)}
            if job.scenario == "never" or job.polls <= queue + s.run_polls:
                job.logs.append({"message": f"step {len(job.logs) + 1}", "level": "INFO", "source": "user",
                                 "timestamp": _now()})
                return {"status": "IN_PROGRESS", "logs": list(job.logs) if with_logs else None, **self._urls(job)}
            job.outcome = "error" if job.scenario in ("fail", "fail-5xx") else "ok"
        data = {"status": "COMPLETED", "logs": list(job.logs) if with_logs else None,
                "metrics": {"inference_time": 1.25}, **self._urls(job)}
        errors = {
            "error": ("Unprocessable input: the image could not be read (fake)", "image_load_error"),
            "cancelled": ("Request was cancelled (fake)", "request_cancelled"),  # [UNK] the exact words and type
            "timeout": ("Request timed out", "request_timeout"),
        }
        if job.outcome in errors:
            if job.scenario == "fail-5xx" and job.outcome == "error":
                data.update(error="Runner disconnected (fake)", error_type="runner_disconnected")
            else:
                data.update(zip(("error", "error_type"), errors[job.outcome]))
        return data

    def _result(self, job: Job) -> dict:
        video = {"url": f"{self.url}/cdn/files/{job.id}/output.mp4", "content_type": "video/mp4",
                 "file_name": "output.mp4", "file_size": len(self.video), "width": 96, "height": 64, "fps": 25.0,
                 "num_frames": 9, "duration": 0.36}
        result = {"video": video, "seed": job.input.get("seed", 1234567), "prompt": job.input.get("prompt", "")}
        if job.scenario == "no-video":
            del result["video"]
        return result


def _test_clip():
    """9 frames of a moving gradient at 25 fps with a 440 Hz tone: a real, tiny audio+video mp4."""
    frames = np.zeros((9, 64, 96, 3), dtype=np.uint8)
    for i in range(9):
        frames[i, :, :, 0] = np.linspace(0, 255, 96, dtype=np.uint8)[None, :]
        frames[i, :, :, 2] = (i * 28) % 256
    t = np.arange(int(24000 * 9 / 25)) / 24000
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return frames, 25, np.stack([tone, tone])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _route_kind(path: str) -> str:
    if path.startswith(("/storage/", "/files/", "/cdn/", "/gcs/")):
        return "storage"
    if "/requests/" in path:
        return "queue"
    return "submit"


def _validate(endpoint: str, body) -> list[dict]:
    """pydantic-style `detail` items for what the endpoint would refuse (unknown fields too: see the docstring)."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    allowed, required = ENDPOINTS[endpoint]
    problems = [{"loc": ["body", name], "msg": "Field required", "type": "missing"}
                for name in sorted(required - set(body))]
    for name, value in body.items():
        problem = _field_problem(endpoint, name, value) if name in allowed else (
            "Extra inputs are not permitted", "extra_forbidden")
        if problem:
            problems.append({"loc": ["body", name], "msg": problem[0], "type": problem[1]})
    return problems


def _field_problem(endpoint: str, name: str, value) -> tuple[str, str] | None:
    """(msg, type) when a documented field's value is out of its range or list."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name in _URL_FIELDS:
        return None if isinstance(value, str) and value.startswith(("http", "data:")) else (
            "Input should be a valid URL", "url_parsing")
    if endpoint == "fal-ai/ltx-2.3/extend-video":
        limits = {"duration": (2, 20), "context": (0, 20)}.get(name)
        ok = limits is None or number and limits[0] <= value <= limits[1]
        return None if ok else (f"Input should be between {limits[0]} and {limits[1]}", "range")
    if endpoint.startswith("fal-ai/ltx-2.3/"):
        choices = _PROXY_CHOICES.get(name) or _CHOICES.get(name)
        if name == "duration" and endpoint.endswith("/fast"):
            choices = _FAST_DURATIONS
        return None if not choices or value in choices else (f"Input should be one of {choices}", "enum")
    if name in _RANGES:
        low, high = _RANGES[name]
        if not (number and low <= value <= high):
            return f"Input should be between {low} and {high}", "range"
        if name == "num_frames" and (value - 1) % 8:
            return "num_frames must be 8n+1 (fake: LTX's rule)", "value_error"
    if name in _CHOICES and value not in _CHOICES[name]:
        return f"Input should be one of {_CHOICES[name]}", "enum"
    if name == "video_size" and not (value == "auto" or isinstance(value, dict) and set(value) == {"width", "height"}
                                     and all(isinstance(v, int) and v > 0 and v % 32 == 0 for v in value.values())):
        return "video_size must be auto or {width, height} (fake: multiples of 32)", "value_error"
    if name == "sync_mode" and value is not False:
        return "fake: the pack never asks for sync_mode (it inlines the video)", "value_error"
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    fake: FalServer

    def handle_error(self, request, client_address):  # a client hanging up mid-answer is part of the tests
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall per call
    server: _Server

    def log_message(self, format, *args):  # quiet: the test output stays readable
        pass

    # ------------------------------------------------------------------------------------------------- plumbing

    @property
    def fake(self) -> FalServer:
        return self.server.fake

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None, job: Job | None = None) -> None:
        """A JSON answer; queue answers carry `x-fal-request-id` (ingress errors do not: that is how fal-client tells
        them apart)."""
        extra = {"x-fal-request-id": job.id} if job else {}
        self._send(status, json.dumps(payload).encode(), "application/json", {**extra, **(headers or {})})

    def _drop(self) -> None:
        """Close the socket without a byte of answer (a dropped connection)."""
        self.close_connection = True
        self.connection.close()

    def _ingress_503(self) -> None:
        self._send(503, b"<html><body><h1>503 Service Temporarily Unavailable</h1><hr><center>nginx</center>"
                   b"</body></html>", "text/html", {"Retry-After": self.fake.settings.retry_after})

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Key {self.fake.key}":
            return True
        # [UNK] the exact 401 body; fal answers a flat detail.
        self._json(401, {"detail": "No user found for Key ID and Secret"})
        return False

    def do_GET(self):
        self._dispatch(self._body())

    def do_POST(self):
        self._dispatch(self._body())

    def do_PUT(self):
        self._dispatch(self._body())

    def _dispatch(self, body: bytes) -> None:
        """Route one request; a bug in the fake answers 500 and lands in `fake.errors` (never a silent drop)."""
        rec = self.fake._record(self, body)
        try:
            self._route(rec)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            self.fake.errors.append(repr(exc))
            self._json(500, {"detail": f"fake server bug: {exc!r}"})

    def _route(self, rec: Recorded) -> None:
        routes = [
            ("POST", r"/storage/auth/token", self._token),
            ("POST", r"/storage/upload/initiate", self._initiate),
            ("PUT", r"/gcs/(\w+)/([^/]+)", self._gcs_put),
            ("POST", r"/files/upload", self._cdn_upload),
            ("POST", r"/files/upload/multipart", self._multipart_create),
            ("PUT", r"/files/(\w+)/([^/]+)/multipart/(\w+)/(\d+)", self._multipart_part),
            ("POST", r"/files/(\w+)/([^/]+)/multipart/(\w+)/complete", self._multipart_complete),
            ("GET", r"/files/(\w+)/([^/]+)", self._uploaded_file),
            ("GET", r"/cdn/files/([\w-]+)/output\.mp4", self._video),
            ("GET", r"/([^/]+/[^/]+)/requests/([\w-]+)/status", self._status),
            ("GET", r"/([^/]+/[^/]+)/requests/([\w-]+)", self._result),
            ("PUT", r"/([^/]+/[^/]+)/requests/([\w-]+)/cancel", self._cancel),
            ("POST", r"/(.+)", self._submit),
        ]
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, rec.path)
            if method == rec.method and match and (handler != self._submit or _route_kind(rec.path) == "submit"):
                handler(rec, *match.groups())
                return
        self._json(404, {"detail": "Not Found"})

    # ------------------------------------------------------------------------------------------------- queue

    def _submit(self, rec: Recorded, endpoint: str) -> None:
        if not self._authorized():
            return
        if endpoint not in ENDPOINTS:
            self._json(404, {"detail": f"Application '{endpoint}' not found"})
            return
        problems = _validate(endpoint, rec.json)
        if problems:
            self._json(422, {"detail": problems}, {"X-Fal-Retryable": "false"})
            return
        keyword = re.search(r"\[fal:([\w-]+)\]", str(rec.json.get("prompt", "")))
        scenario = self.headers.get("X-Fake-Scenario") or (keyword.group(1) if keyword else "ok")
        if scenario not in SCENARIOS:
            self._json(400, {"detail": f"fake: unknown scenario {scenario!r}"})
            return
        if scenario == "submit-503":
            self._ingress_503()
            return
        if scenario == "balance":  # [UNK] fal's exact balance error; this shape is assumed
            self._json(403, {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at "
                                       "fal.ai/dashboard/billing."})
            return
        fake = self.fake
        owner, alias = endpoint.split("/")[:2]
        job = Job(str(uuid.uuid4()), f"{owner}/{alias}", endpoint, rec.json, scenario)
        job.burst_left = fake.settings.burst if scenario in BURSTS else 0
        timeout = self.headers.get("X-Fal-Request-Timeout")
        if timeout:
            job.start_deadline = time.monotonic() + float(timeout)
        with fake._lock:
            fake.jobs[job.id] = job
        if scenario == "drop-submit":
            self._drop()
            return
        queue = fake.settings.slow_queue_polls if scenario == "slow-queue" else fake.settings.queue_polls
        self._json(200, {"status": "IN_QUEUE", "request_id": job.id, "queue_position": max(queue - 1, 0),
                         **fake._urls(job)}, job=job)

    def _job(self, app: str, job_id: str) -> Job | None:
        """The job, when the path names its owner/alias (a sub-path in a status URL is a 404, as at fal)."""
        if not self._authorized():
            return None
        job = self.fake.jobs.get(job_id)
        if job is None or job.app != app:
            self._json(404, {"detail": f"Request {job_id} not found"})
            return None
        return job

    def _status(self, rec: Recorded, app: str, job_id: str) -> None:
        job = self._job(app, job_id)
        if job is None:
            return
        fake = self.fake
        with fake._lock:
            burst = job.burst_left > 0
            if burst:
                job.burst_left -= 1
            else:
                with_logs = parse_qs(rec.query).get("logs", ["false"])[0].lower() in ("true", "1")
                data = fake._advance(job, with_logs)
        if burst and job.scenario == "drop-status":
            self._drop()
        elif burst and job.scenario == "status-503":
            self._ingress_503()
        elif burst:
            self._json(429, {"detail": "Too many requests (fake)"}, {"Retry-After": fake.settings.retry_after})
        elif job.scenario == "malformed":
            self._send(200, b'{"status": "IN_PROG', "application/json", {"x-fal-request-id": job.id})
        else:
            self._json(200, data, job=job)

    def _result(self, rec: Recorded, app: str, job_id: str) -> None:
        job = self._job(app, job_id)
        if job is None:
            return
        if job.outcome is None:  # [UNK] the answer before COMPLETED; fal-client never asks then
            self._json(400, {"detail": "Request is still in progress"}, job=job)
        elif job.outcome == "timeout":
            self._json(504, {"detail": "Request timed out", "error_type": "request_timeout"},
                       {"X-Fal-Request-Timeout-Type": "user", "X-Fal-Error-Type": "request_timeout"}, job=job)
        elif job.outcome == "cancelled":
            self._json(400, {"detail": "Request was cancelled"}, job=job)  # [UNK] shape
        elif job.scenario == "fail":
            self._json(422, {"detail": [{"loc": ["body", "image_url"], "msg": "Could not load the image (fake)",
                                         "type": "image_load_error"}]}, {"X-Fal-Retryable": "false"}, job=job)
        elif job.scenario == "fail-5xx":
            self._json(503, {"detail": "Runner disconnected (fake)", "error_type": "runner_disconnected"},
                       {"X-Fal-Error-Type": "runner_disconnected"}, job=job)
        elif job.scenario == "malformed-result":
            self._send(200, b'{"video": {"url": "', "application/json", {"x-fal-request-id": job.id})
        else:
            self._json(200, self.fake._result(job), job=job)

    def _cancel(self, rec: Recorded, app: str, job_id: str) -> None:
        if not self._authorized():
            return
        fake = self.fake
        with fake._lock:
            job = fake.jobs.get(job_id)
            if job is None or job.app != app:
                answer = (404, {"status": "NOT_FOUND"})
            elif job.outcome is not None:
                answer = (400, {"status": "ALREADY_COMPLETED"})
            else:
                job.outcome = "cancelled"
                answer = (202, {"status": "CANCELLATION_REQUESTED"})
        self._json(*answer)

    # --------------------------------------------------------------------------------------------- result file

    def _video(self, rec: Recorded, job_id: str) -> None:
        fake = self.fake
        job = fake.jobs.get(job_id)
        if job is None or job.scenario == "expired":
            self._send(404, b"Not Found", "text/plain")
            return
        if job.scenario.startswith("redirect-"):
            target = {"redirect-file": "file:///etc/passwd",
                      "redirect-private": "http://10.0.0.7/output.mp4",
                      "redirect-metadata": "http://169.254.169.254/latest/meta-data/"}[job.scenario]
            self._send(302, b"", "text/plain", {"Location": target})
        elif job.scenario == "wrong-type":
            self._send(200, b"<html><body>Access denied</body></html>", "text/html")
        elif job.scenario == "oversized":
            self._stream(b"\0" * 65536, 1024, {"Content-Length": str(64 * 2**20)})
        elif job.scenario == "oversized-chunked":
            self.close_connection = True
            self._stream(b"\0" * 65536, 64, {"Connection": "close"})
        elif job.scenario == "slow-download":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(fake.video)))
            self.end_headers()
            self.wfile.write(fake.video[:1024])
            self.wfile.flush()
            fake._stopping.wait(fake.settings.stall_s)
            self.close_connection = True
        else:
            self._send(200, fake.video, "video/mp4")

    def _stream(self, chunk: bytes, count: int, headers: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        for _ in range(count):
            if self.fake._stopping.is_set():
                break
            self.wfile.write(chunk)

    # ------------------------------------------------------------------------------------------------ upload

    def _token(self, rec: Recorded) -> None:
        """Step 1 of fal-client's default upload: a CDN token for `fal-cdn-v3` (spec §3.10)."""
        if not self._authorized():
            return
        if parse_qs(rec.query).get("storage_type") != ["fal-cdn-v3"]:
            self._json(422, {"detail": "storage_type must be fal-cdn-v3 (fake)"})
            return
        token = secrets.token_urlsafe(24)
        self.fake.tokens.add(token)
        expires = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        self._json(200, {"token": token, "token_type": "Bearer", "base_url": self.fake.url, "expires_at": expires})

    def _cdn_authorized(self) -> bool:
        kind, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if kind == "Bearer" and token in self.fake.tokens:
            return True
        self._json(401, {"detail": "Invalid or expired CDN token"})
        return False

    def _store(self, data: bytes) -> str:
        name = re.sub(r"[^\w.-]", "_", self.headers.get("X-Fal-File-Name") or "upload.bin")
        path = f"/files/{secrets.token_hex(8)}/{name}"
        with self.fake._lock:
            self.fake.files[path] = data
        return path

    def _cdn_upload(self, rec: Recorded) -> None:
        if not self._cdn_authorized():
            return
        status = self.fake.settings.cdn_upload_status
        if status:
            self._json(status, {"detail": f"CDN upload failed (fake {status})"})
            return
        self._json(200, {"access_url": self.fake.url + self._store(rec.body)})

    def _multipart_create(self, rec: Recorded) -> None:
        if not self._cdn_authorized():
            return
        path, upload_id = self._store(b""), secrets.token_hex(8)
        with self.fake._lock:
            self.fake._multipart[upload_id] = {"path": path, "parts": {}}
        self._json(200, {"access_url": self.fake.url + path, "uploadId": upload_id})

    def _multipart_part(self, rec: Recorded, file_id: str, name: str, upload_id: str, number: str) -> None:
        if not self._cdn_authorized():
            return
        upload = self.fake._multipart.get(upload_id)
        if upload is None or upload["path"] != f"/files/{file_id}/{name}":
            self._json(404, {"detail": "Upload not found"})
            return
        etag = f'"{hashlib.md5(rec.body, usedforsecurity=False).hexdigest()}"'
        upload["parts"][int(number)] = (etag, rec.body)
        self._send(200, b"", "text/plain", {"ETag": etag})

    def _multipart_complete(self, rec: Recorded, file_id: str, name: str, upload_id: str) -> None:
        if not self._cdn_authorized():
            return
        upload = self.fake._multipart.get(upload_id)
        parts = rec.json.get("parts") if isinstance(rec.json, dict) else None
        if upload is None or not isinstance(parts, list):
            self._json(400, {"detail": "Unknown upload or no parts"})
            return
        stored = upload["parts"]
        numbers = [p.get("partNumber") for p in parts]
        if numbers != list(range(1, len(stored) + 1)) or any(stored[p["partNumber"]][0] != p.get("etag")
                                                              for p in parts):
            self._json(400, {"detail": "Parts do not match the uploaded ones (fake)"})
            return
        with self.fake._lock:
            self.fake.files[upload["path"]] = b"".join(stored[n][1] for n in numbers)
        self._json(200, {"access_url": self.fake.url + upload["path"]})

    def _initiate(self, rec: Recorded) -> None:
        """fal-client's fallback repository `fal`: a signed PUT URL and the file's public URL."""
        if not self._authorized():
            return
        status = self.fake.settings.storage_upload_status
        if status:
            self._json(status, {"detail": f"storage initiate failed (fake {status})"})
            return
        body = rec.json if isinstance(rec.json, dict) else {}
        name = re.sub(r"[^\w.-]", "_", str(body.get("file_name") or "upload.bin"))
        file_id = secrets.token_hex(8)
        self._json(200, {"upload_url": f"{self.fake.url}/gcs/{file_id}/{name}?X-Goog-Signature=fake",
                         "file_url": f"{self.fake.url}/files/{file_id}/{name}"})

    def _gcs_put(self, rec: Recorded, file_id: str, name: str) -> None:
        if "Authorization" in self.headers:  # a signed URL: a second credential is an error at GCS
            self._send(400, b"<Error><Code>InvalidAuthentication</Code></Error>", "application/xml")
            return
        with self.fake._lock:
            self.fake.files[f"/files/{file_id}/{name}"] = rec.body
        self._send(200, b"", "text/plain")

    def _uploaded_file(self, rec: Recorded, file_id: str, name: str) -> None:
        data = self.fake.files.get(f"/files/{file_id}/{name}")
        if data is None:
            self._send(404, b"Not Found", "text/plain")
        else:
            self._send(200, data, "application/octet-stream")
