"""A local stand-in for WaveSpeedAI's v3 API (spec hosted-apis.md §4, §10.1, §10.3), on 127.0.0.1 only.

It speaks the wire protocol the official SDK (`wavespeed==2.0.5`) and our client use: the `{code, message, data}`
envelope, submit → `created` → `processing` → `completed` | `failed` by poll count, both upload flows (ticket +
unauthenticated presigned PUT, and the legacy multipart), outputs on a separate "CDN" path serving a real tiny
mp4, sync mode, and the documented error shapes. Every request is recorded so tests can assert e.g. "exactly one
submit" or "no Authorization on the PUT".

Failure modes are chosen per job by a prompt keyword `[ws:<scenario>]` or the header `X-Fake-Scenario` on the
submit (see SCENARIOS), so one server drives every test. Where the real service is undocumented the fake picks a
plausible shape and says so ([UNK] below). It is stricter than the real API is known to be in one place on
purpose: unknown input fields are refused with 400, so a client sending a wrong field name fails here.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from ltx2_anywhere.pipelines.media import write_video

SCENARIOS = {
    "ok": "created → processing → completed with one mp4 URL",
    "slow-queue": "stays `created` for `slow_queue_polls` polls",
    "fail": "ends `failed` with an error string",
    "never": "stays `processing` forever",
    "poll-503": "the first `burst` polls answer 503 (gateway text body) with Retry-After: 0",
    "poll-429": "the first `burst` polls answer 429 (envelope body) with Retry-After: 0",
    "malformed": "every poll answers HTTP 200 with truncated JSON",
    "drop-poll": "the first `burst` polls drop the connection without an answer",
    "drop-submit": "the submit creates the job (it bills), then drops the connection",
    "submit-500": "the submit answers 500 and creates nothing",
    "malformed-submit": "the submit creates the job (it bills), then answers HTTP 200 with truncated JSON",
    "no-output": "ends `completed` with `outputs: []`",
    "oversized": "the output claims 64 MiB (Content-Length) and streams zeros",
    "oversized-chunked": "the output has no Content-Length and streams 4 MiB of zeros, then closes",
    "slow-download": "the output sends 1 KiB, then stalls",
    "wrong-type": "the output is served as text/html",
    "redirect-file": "the output URL redirects to file:///etc/passwd",
    "redirect-private": "the output URL redirects to http://10.0.0.7/ (a private address)",
    "redirect-metadata": "the output URL redirects to http://169.254.169.254/ (link-local cloud metadata)",
    "expired": "the output URL answers 403 with the S3 'Request has expired' XML",
}

_RESOLUTIONS = ("480p", "720p", "1080p")
_ASPECTS = ("16:9", "9:16")
_SEED = (-1, 2147483647)
_FLAGS = {"enable_sync_mode", "enable_base64_output"}
# The documented input fields per model (spec §4.2). [INF] ltx-2.3 text-to-video takes aspect_ratio like the 19B one.
_MODELS = {
    "wavespeed-ai/ltx-2-19b/image-to-video": {"required": {"image", "prompt"}, "optional": {"resolution", "duration", "seed"}, "duration": (5, 20)},
    "wavespeed-ai/ltx-2-19b/text-to-video": {"required": {"prompt"}, "optional": {"resolution", "aspect_ratio", "duration", "seed"}, "duration": (5, 20)},
    "wavespeed-ai/ltx-2.3/image-to-video": {"required": {"image", "prompt"}, "optional": {"resolution", "duration", "seed"}, "duration": (5, 20)},
    "wavespeed-ai/ltx-2.3/text-to-video": {"required": {"prompt"}, "optional": {"resolution", "aspect_ratio", "duration", "seed"}, "duration": (5, 20)},
    "wavespeed-ai/ltx-2.3/extend": {"required": {"video"}, "optional": {"prompt", "duration"}, "duration": (1, 20)},
}


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
    model: str
    input: dict
    scenario: str
    created_at: str
    polls: int = 0
    burst_left: int = 0


@dataclass
class Upload:
    filename: str
    size: int
    content_type: str | None
    data: bytes | None = None


@dataclass
class Settings:
    """Server-wide switches; tests change them between calls."""

    queue_polls: int = 1  # polls answered `created`
    run_polls: int = 1  # then polls answered `processing`
    slow_queue_polls: int = 6
    burst: int = 3  # failing polls for the poll-503/poll-429/drop-poll scenarios
    ticket_uploads: bool = True  # False: POST /media/uploads answers 404 (an older gateway), only multipart works
    upload_error: str | None = None  # answer uploads HTTP 200 with envelope code 400 and this message
    stall_s: float = 30.0  # how long slow-download stalls (ends early when the server stops)


class WaveSpeedServer:
    """The fake, as a context manager: `with WaveSpeedServer(tmp_path) as ws: ws.url ...`."""

    def __init__(self, workdir: Path, key: str = "ws-test-key"):
        self.key = key
        self.settings = Settings()
        self.requests: list[Recorded] = []
        self.jobs: dict[str, Job] = {}
        self.uploads: dict[str, Upload] = {}
        self.errors: list[str] = []  # exceptions inside the fake itself; tests assert it stays empty
        self.video_path = write_video(Path(workdir) / "wavespeed-result.mp4", *_test_clip(), sample_rate=24000)
        self.video = self.video_path.read_bytes()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> WaveSpeedServer:
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
        return self.calls("POST", r"/api/v3/(?!media/).+")

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

    def _prediction(self, job: Job, status: str, outputs=(), error: str = "") -> dict:
        return {
            "id": job.id,
            "model": job.model,
            "status": status,
            "outputs": list(outputs),
            "urls": {"get": f"{self.url}/api/v3/predictions/{job.id}/result"},
            "has_nsfw_contents": [False] * len(outputs),
            "created_at": job.created_at,
            "error": error,
            "timings": {"inference": 4200 if status == "completed" else 0},
        }

    def _advance(self, job: Job) -> dict:
        """One poll: the job's state after `polls` polls, by scenario."""
        job.polls += 1
        s = self.settings
        queue = s.slow_queue_polls if job.scenario == "slow-queue" else s.queue_polls
        if job.polls <= queue:
            return self._prediction(job, "created")
        if job.scenario == "never" or job.polls <= queue + s.run_polls:
            return self._prediction(job, "processing")
        return self._finished(job)

    def _finished(self, job: Job) -> dict:
        if job.scenario == "fail":
            return self._prediction(job, "failed", error="Content policy violation: the prompt was flagged (fake)")
        if job.scenario == "no-output":
            return self._prediction(job, "completed")
        return self._prediction(job, "completed", [f"{self.url}/cdn/outputs/{job.id}.mp4"])


def _test_clip():
    """9 frames of a moving gradient at 24 fps with a 440 Hz tone: a real, tiny audio+video mp4."""
    frames = np.zeros((9, 64, 96, 3), dtype=np.uint8)
    for i in range(9):
        frames[i, :, :, 0] = np.linspace(0, 255, 96, dtype=np.uint8)[None, :]
        frames[i, :, :, 1] = (i * 28) % 256
    t = np.arange(int(24000 * 9 / 24)) / 24000
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return frames, 24, np.stack([tone, tone])


def _envelope(data, code: int = 200, message: str = "success") -> dict:
    return {"code": code, "message": message, "data": data}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    fake: WaveSpeedServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # quiet: the test output stays readable
        pass

    # ------------------------------------------------------------------------------------------------- plumbing

    @property
    def fake(self) -> WaveSpeedServer:
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
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _error(self, status: int, message: str) -> None:
        """The documented error body `{"code": 4xx, "message", "data": null}` [DOC][INF]."""
        self._json(status, _envelope(None, status, message))

    def _drop(self) -> None:
        """Close the socket without a byte of answer (a dropped connection)."""
        self.close_connection = True
        self.connection.close()

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.fake.key}":
            return True
        # [UNK] the exact 401 body; the hint mirrors the docs (keys work only after the first top-up).
        self._error(401, "Unauthorized: invalid API key, or the account has not been topped up yet")
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
        except Exception as exc:
            self.fake.errors.append(repr(exc))
            self._json(500, {"error": f"fake server bug: {exc!r}"})

    def _route(self, rec: Recorded) -> None:
        path = rec.path
        routes = [
            ("POST", r"/api/v3/media/uploads", self._ticket),
            ("POST", r"/api/v[23]/media/upload/binary", self._multipart),
            ("PUT", r"/s3/(\w+)", self._presigned_put),
            ("GET", r"/files/(\w+)/[^/]+", self._uploaded_file),
            ("GET", r"/cdn/outputs/(\w+)\.mp4", self._output),
            ("GET", r"/api/v[23]/predictions/(\w+)(?:/result)?", self._poll),
            ("POST", r"/api/v3/(.+)", self._submit),
        ]
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if method == rec.method and match:
                handler(rec, *match.groups())
                return
        self._error(404, f"Not found: {rec.method} {path}")

    # ------------------------------------------------------------------------------------------------ submit

    def _submit(self, rec: Recorded, model: str) -> None:
        if not self._authorized():
            return
        spec = _MODELS.get(model)
        if spec is None:
            self._error(404, f"model {model} not found")
            return
        if not isinstance(rec.json, dict):
            self._error(400, "request body must be a JSON object")
            return
        problem = _validate(rec.json, spec)
        if problem:
            self._error(400, problem)
            return
        body = rec.json
        if body.get("enable_base64_output") and "webhook" in rec.query:
            self._json(400, {"error": "webhook callback does not support base64 output, please disable it"})
            return
        prompt = body.get("prompt") or ""
        keyword = re.search(r"\[ws:([\w-]+)\]", prompt)
        scenario = self.headers.get("X-Fake-Scenario") or (keyword.group(1) if keyword else "ok")
        if scenario not in SCENARIOS:
            self._error(400, f"fake: unknown scenario {scenario!r}")
            return
        if scenario == "submit-500":
            self._json(500, {"error": "internal server error (fake)"})
            return
        fake = self.fake
        job = Job(secrets.token_hex(16), model, body, scenario, time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))
        job.burst_left = fake.settings.burst
        with fake._lock:
            fake.jobs[job.id] = job
        if scenario == "drop-submit":
            self._drop()
            return
        if scenario == "malformed-submit":
            self._send(200, b'{"code": 200, "message": "success", "data": {"id": "' + job.id.encode(),
                       "application/json")
            return
        if body.get("enable_sync_mode"):
            if scenario == "never":  # the server-side sync wait ran out; the task goes on [SRC, SDK tests]
                data = fake._prediction(job, "processing", error="Sync mode timed out after 90 seconds. "
                                        "The prediction is still processing asynchronously.")
                data["code"] = 5004
            else:
                job.polls = 10**6
                data = fake._finished(job)
            self._json(200, _envelope(data))
            return
        self._json(200, _envelope(fake._prediction(job, "created")))

    # -------------------------------------------------------------------------------------------------- poll

    def _poll(self, rec: Recorded, job_id: str) -> None:
        if not self._authorized():
            return
        fake = self.fake
        with fake._lock:
            job = fake.jobs.get(job_id)
            burst = job is not None and job.scenario in ("poll-503", "poll-429", "drop-poll") and job.burst_left > 0
            if burst:
                job.burst_left -= 1
            elif job is not None:
                data = fake._advance(job)
        if job is None:
            self._error(404, f"prediction {job_id} not found")
        elif burst and job.scenario == "drop-poll":
            self._drop()
        elif burst and job.scenario == "poll-503":
            self._send(503, b"upstream connect error or disconnect/reset before headers", "text/plain",
                       {"Retry-After": "0"})
        elif burst:
            self._json(429, _envelope(None, 429, "Too many requests: rate limit exceeded"), {"Retry-After": "0"})
        elif job.scenario == "malformed":
            self._send(200, b'{"code": 200, "message": "success", "data": {"id": "', "application/json")
        else:
            self._json(200, _envelope(data))

    # ------------------------------------------------------------------------------------------------ upload

    def _ticket(self, rec: Recorded) -> None:
        """SDK 2.x flow step 1: a presigned PUT and the public URL the file will have (spec §4.5)."""
        if not self._authorized():
            return
        fake = self.fake
        if not fake.settings.ticket_uploads:
            self._error(404, "Not found: POST /api/v3/media/uploads")
            return
        if fake.settings.upload_error:
            self._json(200, _envelope(None, 400, fake.settings.upload_error))
            return
        body = rec.json if isinstance(rec.json, dict) else {}
        name, size = body.get("filename"), body.get("size")
        if not isinstance(name, str) or not name or not isinstance(size, int) or size < 0:
            self._json(200, _envelope(None, 400, "filename and size are required"))
            return
        token = secrets.token_hex(12)
        content_type = body.get("content_type")
        with fake._lock:
            fake.uploads[token] = Upload(Path(name).name, size, content_type)
        headers = {"Content-Type": content_type} if content_type else {}
        self._json(200, _envelope({
            "upload": {"method": "PUT", "url": f"{fake.url}/s3/{token}?X-Amz-Signature={secrets.token_hex(8)}",
                       "headers": headers},
            "download_url": f"{fake.url}/files/{token}/{Path(name).name}",
        }))

    def _presigned_put(self, rec: Recorded, token: str) -> None:
        """Step 2, S3-like: no Authorization allowed, the signed Content-Type must match."""
        fake = self.fake
        upload = fake.uploads.get(token)
        if upload is None:
            self._s3_error(403, "AccessDenied", "Invalid or expired upload URL")
        elif "Authorization" in self.headers:
            self._s3_error(400, "InvalidArgument", "Only one auth mechanism allowed")
        elif upload.content_type and self.headers.get("Content-Type") != upload.content_type:
            self._s3_error(403, "SignatureDoesNotMatch", "Content-Type does not match the signed request")
        else:
            upload.data = rec.body
            self._send(200, b"", "text/plain", {"ETag": f'"{secrets.token_hex(8)}"'})

    def _multipart(self, rec: Recorded) -> None:
        """The legacy flow: multipart field `file` → `{type, download_url, filename, size}` (spec §4.5)."""
        if not self._authorized():
            return
        fake = self.fake
        if fake.settings.upload_error:
            self._json(200, _envelope(None, 400, fake.settings.upload_error))
            return
        part = _multipart_file(self.headers.get("Content-Type", ""), rec.body)
        if part is None:
            self._json(200, _envelope(None, 400, "multipart field 'file' is required"))
            return
        name, content_type, data = part
        token = secrets.token_hex(12)
        with fake._lock:
            fake.uploads[token] = Upload(name, len(data), content_type, data)
        kind = (content_type or "application/octet-stream").split("/")[0]
        self._json(200, _envelope({"type": kind if kind in ("image", "video", "audio") else "file",
                                   "download_url": f"{fake.url}/files/{token}/{name}",
                                   "filename": name, "size": len(data)}))

    def _uploaded_file(self, rec: Recorded, token: str) -> None:
        upload = self.fake.uploads.get(token)
        if upload is None or upload.data is None:
            self._s3_error(404, "NoSuchKey", "The specified key does not exist.")
        else:
            self._send(200, upload.data, upload.content_type or "application/octet-stream")

    def _s3_error(self, status: int, code: str, message: str) -> None:
        body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        self._send(status, body.encode(), "application/xml")

    # ------------------------------------------------------------------------------------------------ output

    def _output(self, rec: Recorded, job_id: str) -> None:
        """The result file on the "CDN": no auth needed; the job's scenario picks how it misbehaves."""
        fake = self.fake
        job = fake.jobs.get(job_id)
        scenario = job.scenario if job else "expired"
        redirects = {"redirect-file": "file:///etc/passwd", "redirect-private": "http://10.0.0.7/out.mp4",
                     "redirect-metadata": "http://169.254.169.254/latest/meta-data/"}
        if scenario in redirects:
            self._send(302, b"", "text/plain", {"Location": redirects[scenario]})
        elif scenario == "expired":
            self._s3_error(403, "AccessDenied", "Request has expired")
        elif scenario == "wrong-type":
            self._send(200, b"<html><body>Sign in to continue</body></html>", "text/html; charset=utf-8")
        elif scenario == "oversized":
            self._stream(64 * 2**20, 64 * 2**20)
        elif scenario == "oversized-chunked":
            self._stream(None, 4 * 2**20)
        elif scenario == "slow-download":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(fake.video)))
            self.end_headers()
            self.wfile.write(fake.video[:1024])
            self.wfile.flush()
            fake._stopping.wait(fake.settings.stall_s)
            self._drop()
        else:
            self._send(200, fake.video, "video/mp4")

    def _stream(self, length: int | None, total: int) -> None:
        """Stream zeros as video/mp4 (close-delimited when `length` is None) until done or the client leaves."""
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
                if self.fake._stopping.is_set():
                    break
                self.wfile.write(chunk)
        except OSError:
            pass
        self._drop()


def _validate(body: dict, spec: dict) -> str | None:
    """The first problem with a submit body, as WaveSpeed-style 400 text; None when valid."""
    allowed = spec["required"] | spec["optional"] | _FLAGS
    unknown = sorted(set(body) - allowed)
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    for name in sorted(spec["required"]):
        if not isinstance(body.get(name), str) or not body[name].strip():
            return f"{name} is required"
    for name in ("image", "video"):
        if name in body and not re.match(r"https?://", body[name]):
            return f"{name} must be an http(s) URL"
    if "resolution" in body and body["resolution"] not in _RESOLUTIONS:
        return f"resolution must be one of {', '.join(_RESOLUTIONS)}"
    if "aspect_ratio" in body and body["aspect_ratio"] not in _ASPECTS:
        return f"aspect_ratio must be one of {', '.join(_ASPECTS)}"
    lo, hi = spec["duration"]
    if "duration" in body and (type(body["duration"]) is not int or not lo <= body["duration"] <= hi):
        return f"duration must be an integer from {lo} to {hi}"
    if "seed" in body and (type(body["seed"]) is not int or not _SEED[0] <= body["seed"] <= _SEED[1]):
        return f"seed must be an integer from {_SEED[0]} to {_SEED[1]}"
    for flag in _FLAGS:
        if flag in body and not isinstance(body[flag], bool):
            return f"{flag} must be a boolean"
    return None


def _multipart_file(content_type: str, body: bytes) -> tuple[str, str | None, bytes] | None:
    """The `file` part of a multipart/form-data body: (filename, content type, bytes)."""
    if not content_type.startswith("multipart/form-data"):
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_filename() or "upload", part.get_content_type(), part.get_payload(decode=True) or b""
    return None
